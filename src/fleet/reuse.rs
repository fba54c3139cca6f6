//! `node_view`, which reuses a node's judgement (`judgement.rs`) while nothing it depends on changed, and
//! judges it afresh (`view.rs`) otherwise.

use std::time::Instant;

use super::judgement::{shows_ages, Judgement, Key};
use super::node::NodeState;
use super::state::FleetState;
use super::view::{Counted, GpuView, NodeView, Pending, Summary};
use crate::inventory::NodeId;

/// The owned part of `view`, to keep.
pub(super) fn judgement_of(view: &NodeView) -> Judgement {
    Judgement {
        state: view.state,
        data_state: view.data_state,
        operations: view.operations.clone(),
        verdict: view.verdict.clone(),
        gpus: view.gpus.iter().map(|g| g.verdict.clone()).collect(),
        error: view.error.clone(),
        tenant: view.tenant.clone(),
    }
}

impl FleetState {
    /// The node's view, its judgement reused when nothing it depends on changed (live views only: a one-pass
    /// snapshot judges once).
    pub fn node_view(&self, id: NodeId, now: Instant, pending: Pending) -> NodeView<'_> {
        let key = match pending {
            Pending::Connecting => self.judgement_key(id, now),
            Pending::TimedOut { .. } => None,
        };
        let Some(key) = key else {
            return self.judge_node(id, now, pending);
        };
        if let Some(judgement) = self.judged.get(id, key) {
            return self.view_of(id, now, judgement);
        }
        let view = self.judge_node(id, now, pending);
        self.judged.put(id, key, judgement_of(&view));
        view
    }

    /// Fleet totals at `now`, as [`Summary::of`] the live views gives them, without building the views: a
    /// reused judgement is read where it is kept, not copied (the line mode's summary, every node each second).
    pub fn summary(&self, now: Instant) -> Summary {
        let mut summary = Summary::default();
        for (id, status) in self.nodes.iter().enumerate() {
            let expected_gpus = self.inventory.nodes[id].expected_gpus;
            let gpus = status.sample.iter().flat_map(|s| &s.gpus);
            let reused = self.judgement_key(id, now).and_then(|key| {
                self.judged.read(id, key, |j| {
                    summary.add(&Counted {
                        data_state: j.data_state,
                        operations: j.operations.as_ref(),
                        health: j.verdict.health,
                        expected_gpus,
                        // As `view_of` pairs them.
                        gpus: gpus.clone().zip(&j.gpus).map(|(g, _)| g),
                    })
                })
            });
            if reused.is_none() {
                summary.add_view(&self.node_view(id, now, Pending::Connecting));
            }
        }
        summary
    }

    /// How many live views reused a node's judgement and how many judged it afresh (and kept it), since the
    /// start: what the benchmarks print to say whether the cache hits.
    pub fn judgements_reused(&self) -> (u64, u64) {
        self.judged.counts()
    }

    /// What a judgement of `id` at `now` depends on, or `None` when it changes with the clock alone.
    fn judgement_key(&self, id: NodeId, now: Instant) -> Option<Key> {
        let status = self.nodes.get(id)?;
        let state = self.state(id, now);
        let timeless = state != NodeState::Stale
            && self.ops.get(id).is_none_or(|o| o.restart.is_none())
            && status.watch.quiet(now)
            && !status.sample.as_ref().is_some_and(shows_ages);
        timeless.then(|| Key {
            node: self.generations.get(id).copied().unwrap_or_default(),
            fleet: self.fleet_generation,
            state,
        })
    }

    /// A view of `id` from a judgement made earlier, with what borrows from fleet state as it is now.
    fn view_of(&self, id: NodeId, now: Instant, judgement: Judgement) -> NodeView<'_> {
        let inv = &self.inventory;
        let spec = &inv.nodes[id];
        let status = &self.nodes[id];
        let gpus = status
            .sample
            .iter()
            .flat_map(|s| &s.gpus)
            .zip(judgement.gpus)
            .map(|(sample, verdict)| GpuView { sample, verdict })
            .collect();
        NodeView {
            id,
            name: &spec.name,
            cabinet: &inv.cabinets[spec.cabinet].name,
            tenant: judgement.tenant,
            state: judgement.state,
            data_state: judgement.data_state,
            operations: judgement.operations,
            verdict: judgement.verdict,
            source: status.source,
            sample_age: status.sample_at.map(|at| now.saturating_duration_since(at)),
            error: judgement.error,
            expected_gpus: spec.expected_gpus,
            gpus,
            sample: status.sample.as_ref(),
            hello: status.hello.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests;
