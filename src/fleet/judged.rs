//! Each node's last judgement (state, operations, verdicts, drift reasons), reused while nothing it depends on
//! changed: live views refresh every node every second, and judging a thousand unchanged nodes again was most of
//! the jump host's CPU.
//!
//! A judgement is keyed by the node's generation (bumped by each of its messages and acknowledgements), the
//! fleet's generation (bumped by drift tallies, usual port rates, audited resets and lemons, which feed every
//! node's reasons) and the node's state now, so the crossing of the stale limit re-judges it. What changes with
//! the clock alone is never cached: a stale node's age, XIDs and past events whose ages are shown, a restart in
//! flight, fabric counters that rose within the watch window.

use std::sync::Mutex;
use std::time::Instant;

use super::node::NodeState;
use super::operations::Operations;
use super::state::FleetState;
use super::view::{GpuView, NodeView, Pending};
use crate::inventory::NodeId;
use crate::telemetry::health::Verdict;
use crate::telemetry::NodeSample;

/// What a node's judgement was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    node: u64,
    fleet: u64,
    state: NodeState,
}

/// The owned part of a [`NodeView`]: everything but what borrows from fleet state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    pub state: NodeState,
    pub data_state: NodeState,
    pub operations: Option<Operations>,
    pub verdict: Verdict,
    pub gpus: Vec<Verdict>,
    pub error: Option<String>,
    pub tenant: Option<String>,
}

impl Judgement {
    pub(crate) fn of(view: &NodeView) -> Judgement {
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
}

/// The judgements, by node id. A clone of fleet state starts with none (they are found again on first use).
#[derive(Default)]
pub(super) struct Judged {
    entries: Mutex<Vec<Option<(Key, Judgement)>>>,
}

impl Clone for Judged {
    fn clone(&self) -> Self {
        Judged::default()
    }
}

impl std::fmt::Debug for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Judged")
    }
}

impl Judged {
    fn get(&self, id: NodeId, key: Key) -> Option<Judgement> {
        let entries = self.entries.lock().ok()?;
        match entries.get(id)? {
            Some((k, judgement)) if *k == key => Some(judgement.clone()),
            _ => None,
        }
    }

    fn put(&self, id: NodeId, key: Key, judgement: Judgement) {
        // A poisoned lock only loses the cache: views are judged afresh.
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() <= id {
            entries.resize_with(id + 1, || None);
        }
        entries[id] = Some((key, judgement));
    }
}

/// Whether a sample's verdict shows ages on the node's clock (XIDs, SXids, past events), which change with
/// time alone.
fn shows_ages(sample: &NodeSample) -> bool {
    fn listed<T>(list: &Option<Vec<T>>) -> bool {
        list.as_ref().is_some_and(|l| !l.is_empty())
    }
    !sample.unmatched_xid.is_empty()
        || listed(&sample.sxid)
        || listed(&sample.past)
        || sample
            .gpus
            .iter()
            .any(|g| listed(&g.xid) || listed(&g.xid_events) || listed(&g.past))
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
        self.judged.put(id, key, Judgement::of(&view));
        view
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
