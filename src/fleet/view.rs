//! Derived, read-only views of [`FleetState`]: per-node verdicts and fleet totals that every renderer shares.

use std::time::{Duration, Instant};

use super::node::NodeState;
use super::state::FleetState;
use crate::inventory::NodeId;
use crate::telemetry::fabric::{judge_port_rate, judge_port_state};
use crate::telemetry::health::board::{node_power_brake, POWER_BRAKE_REASON};
use crate::telemetry::health::{
    classify_xid_event, judge_gpu_at, judge_gpu_count, judge_sxids_at, Health, Verdict,
};
use crate::telemetry::identity::judge_gpu_identity;
use crate::telemetry::past::before_reboot;
use crate::telemetry::rise::{judge_nvlink_rise, judge_port_rise, judge_port_saturation};
use crate::telemetry::xid_age;
use crate::telemetry::{GpuSample, Source};

/// One GPU with its verdict.
#[derive(Debug, Clone)]
pub struct GpuView<'a> {
    pub sample: &'a GpuSample,
    pub verdict: Verdict,
}

/// One node as a renderer sees it.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    pub id: NodeId,
    pub name: &'a str,
    pub cabinet: &'a str,
    pub tenant: Option<String>,
    /// What views show: the node's state from its data, with operations over it (drained, rebooting, …).
    pub state: NodeState,
    /// The node's state from its own data alone (up, stale, unreachable, …).
    pub data_state: NodeState,
    /// What is being done to it: drained by whom and why, a restart, a repair (`None`: not checked).
    pub operations: Option<super::operations::Operations>,
    pub verdict: Verdict,
    pub source: Option<Source>,
    pub sample_age: Option<Duration>,
    pub error: Option<String>,
    pub expected_gpus: u32,
    pub gpus: Vec<GpuView<'a>>,
    /// The last sample, for node-level data (SXids, unmatched XIDs, warnings).
    pub sample: Option<&'a crate::telemetry::NodeSample>,
    /// The agent's hello: driver, CUDA, agent version, kernel.
    pub hello: Option<&'a crate::telemetry::wire::AgentHello>,
}

/// How to treat nodes that have not answered yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pending {
    /// Live views: they are still connecting.
    Connecting,
    /// One-pass snapshots: the deadline `limit` passed, so they are unreachable; and a sample that arrived
    /// after the pass `started` is current for the snapshot, however long the slowest node took.
    TimedOut { limit: Duration, started: Instant },
}

impl FleetState {
    /// Judges node `id` afresh; [`FleetState::node_view`] reuses the judgement while nothing changed.
    pub(crate) fn judge_node(&self, id: NodeId, now: Instant, pending: Pending) -> NodeView<'_> {
        let inv = &self.inventory;
        let rules = inv.rules(id);
        let spec = &inv.nodes[id];
        let status = &self.nodes[id];
        let mut state = self.state(id, now);
        let mut error = status.failure.as_ref().map(|f| f.detail.clone());
        if let Pending::TimedOut { limit, started } = pending {
            if state == NodeState::Connecting {
                state = NodeState::Unreachable;
                error = Some(format!(
                    "no answer within the {} s timeout",
                    limit.as_secs_f64()
                ));
            }
            if state == NodeState::Stale && status.sample_at.is_some_and(|at| at >= started) {
                state = NodeState::Up;
            }
        }
        if error.is_none() && status.bad_lines > 0 {
            error = Some(format!(
                "{} bad line(s) from node; last: {}",
                status.bad_lines,
                status.last_bad.as_deref().unwrap_or("?")
            ));
        }
        let sample_age = status.sample_at.map(|at| now.saturating_duration_since(at));
        let gpus: Vec<GpuView> = status
            .sample
            .iter()
            .flat_map(|s| &s.gpus)
            .map(|g| {
                let mut verdict = judge_gpu_at(
                    g,
                    rules.thresholds,
                    &|code, count| self.acknowledged(id, g, code, count),
                    &self.xid_clock(id, Some(g.index), sample_age),
                );
                // What the GPU's NVLink counters rose by since the agent's previous one-pass run.
                let rose = g.nvlink.as_ref().and_then(|l| l.rose.as_ref());
                for (health, reason) in rose.into_iter().flat_map(judge_nvlink_rise) {
                    verdict.add(health, reason);
                }
                GpuView { sample: g, verdict }
            })
            .collect();
        let mut verdict = Verdict::default();
        // An overdue restart first: it is what the operator must look at.
        if let Some((kind, _)) = self.restart(id, now).filter(|(_, r)| r.overdue()) {
            verdict.add(
                Health::Crit,
                super::restart::overdue_reason(kind, rules.actions.reboot_deadline),
            );
        }
        if state.is_failure() {
            verdict.add(
                Health::Crit,
                format!(
                    "{}: {}",
                    state.as_str(),
                    error.as_deref().unwrap_or("no data")
                ),
            );
        } else if let Some(sample) = &status.sample {
            for warning in &sample.warnings {
                verdict.add(Health::Warn, warning.clone());
            }
            let node_clock = self.xid_clock(id, None, sample_age);
            let switches = judge_sxids_at(sample.sxid.as_deref().unwrap_or_default(), &node_clock);
            for reason in switches.reasons {
                verdict.add(switches.health, reason);
            }
            // The journal's node events from before the last boot: information, as each GPU's are.
            for reason in before_reboot(sample.past.as_deref(), node_clock.now_ms) {
                verdict.add(Health::Ok, reason);
            }
            for e in &sample.unmatched_xid {
                let (health, what) = classify_xid_event(e);
                let text = e.text.as_deref().unwrap_or("");
                let age = xid_age::last_seen(Some(e), &node_clock);
                // A GPU that is not listed has no reset of its own: only the node's reboot makes it history.
                match xid_age::before_reset(e, &sample.unmatched_xid, &node_clock) {
                    Some(history) => verdict.add(
                        Health::Ok,
                        format!(
                            "XID {} ({}×): {history}, not a current fault{age}; was: {what}; {text}",
                            e.code, e.count
                        ),
                    ),
                    None => verdict.add(
                        health,
                        format!("XID {} ({}×): {what}; {text}{age}", e.code, e.count),
                    ),
                }
            }
            // A power brake on several GPUs has one cause: one node reason instead of one per GPU.
            let brake = node_power_brake(gpus.iter().map(|g| g.sample));
            // The GPUs' own reasons first: they say what to do; the count follows from them.
            for gpu in &gpus {
                for reason in &gpu.verdict.reasons {
                    if brake.is_some() && reason == POWER_BRAKE_REASON {
                        continue;
                    }
                    verdict.add(
                        gpu.verdict.health,
                        format!("GPU {}: {reason}", gpu.sample.index),
                    );
                }
            }
            if let Some(reason) = brake {
                verdict.add(Health::Warn, reason);
            }
            if let Some(short) = judge_gpu_count(gpus_seen(&gpus), spec.expected_gpus) {
                verdict.add(short.health, short.reasons.join("; "));
            }
            if let Some(identity) = judge_gpu_identity(&sample.gpus, spec.expected_gpus) {
                for reason in identity.reasons {
                    verdict.add(identity.health, reason);
                }
            }
            if let Some(reason) = self.lemon(id) {
                verdict.add(Health::Warn, reason.to_string());
            }
            for reason in self.drift_reasons(id) {
                verdict.add(Health::Warn, format!("drift: {reason}"));
            }
            for port in sample.ib.iter().flatten() {
                // Ports down by design (`[expect] ib_ignore`) are not judged at all.
                if rules.expect.ib_ignored(&port.hca, port.port) {
                    continue;
                }
                // The same port on other nodes sets the rate, unless the inventory says it; only up
                // InfiniBand ports are looked up (every port is judged on every refresh).
                let reason = judge_port_state(port).or_else(|| {
                    if !port.is_infiniband() {
                        return None;
                    }
                    let (reference, from) = match rules.expect.ib_rate_gbps {
                        Some(r) => (r, "expected"),
                        None => (self.usual_rate(id, &port.hca, port.port)?, "fleet runs"),
                    };
                    judge_port_rate(port, reference, from)
                });
                if let Some(reason) = reason {
                    verdict.add(Health::Warn, reason);
                }
                for (health, reason) in judge_port_saturation(port)
                    .into_iter()
                    .chain(judge_port_rise(port))
                {
                    verdict.add(health, reason);
                }
            }
            let ignored = |hca: &str, port: u32| rules.expect.ib_ignored(hca, port);
            for (health, reason) in status.watch.reasons(now, &ignored) {
                verdict.add(health, reason);
            }
            if state == NodeState::Stale {
                let age = sample_age.unwrap_or_default().as_secs();
                verdict.add(Health::Warn, format!("stale: last sample {age} s ago"));
            }
        }
        let operations = self.operations(id, now);
        NodeView {
            id,
            name: &spec.name,
            cabinet: &inv.cabinets[spec.cabinet].name,
            tenant: inv.tenant_label(id),
            state: operations
                .as_ref()
                .map_or(state, |o| o.activity.shown(state)),
            data_state: state,
            operations,
            verdict,
            source: status.source,
            sample_age,
            error,
            expected_gpus: spec.expected_gpus,
            gpus,
            sample: status.sample.as_ref(),
            hello: status.hello.as_ref(),
        }
    }

    pub(crate) fn node_views(&self, now: Instant, pending: Pending) -> Vec<NodeView<'_>> {
        (0..self.nodes.len())
            .map(|id| self.node_view(id, now, pending))
            .collect()
    }
}

/// GPUs that reported values, each index once: a lost GPU is listed but not seen.
pub fn gpus_seen(gpus: &[GpuView]) -> usize {
    seen(gpus.iter().map(|g| g.sample))
}

fn seen<'a>(gpus: impl Iterator<Item = &'a GpuSample>) -> usize {
    // Samples hold at most 64 GPUs with distinct indices (sanitize drops repeats): a bitmask counts them
    // without allocating, once per node per refresh.
    let mut seen: u64 = 0;
    let mut beyond = 0;
    for g in gpus.filter(|g| g.reported_values()) {
        match 1u64.checked_shl(g.index) {
            Some(bit) => seen |= bit,
            None => beyond += 1,
        }
    }
    seen.count_ones() as usize + beyond
}

/// What fleet totals count of one node: its view's, or its kept judgement's and sample's.
pub(super) struct Counted<'a, G: Iterator<Item = &'a GpuSample>> {
    pub data_state: NodeState,
    pub operations: Option<&'a super::operations::Operations>,
    pub health: Health,
    pub expected_gpus: u32,
    pub gpus: G,
}

/// Fleet totals over a set of node views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub nodes: usize,
    pub nodes_up: usize,
    pub gpus_expected: u64,
    pub gpus_seen: u64,
    pub health: Health,
    pub power_watts: f64,
    pub warn: usize,
    pub crit: usize,
    /// Nodes someone took out of service (drained, draining, restarting, in repair).
    pub out_of_service: usize,
    /// The worst health of the nodes in service: what `snapshot`'s exit status goes by.
    pub health_in_service: Health,
}

impl Summary {
    pub fn of(views: &[NodeView]) -> Self {
        let mut s = Summary::default();
        views.iter().for_each(|v| s.add_view(v));
        s
    }

    /// Counts one node's view in.
    pub(super) fn add_view(&mut self, v: &NodeView) {
        self.add(&Counted {
            data_state: v.data_state,
            operations: v.operations.as_ref(),
            health: v.verdict.health,
            expected_gpus: v.expected_gpus,
            gpus: v.gpus.iter().map(|g| g.sample),
        });
    }

    /// Counts one node in.
    pub(super) fn add<'a>(
        &mut self,
        node: &Counted<'a, impl Iterator<Item = &'a GpuSample> + Clone>,
    ) {
        self.nodes += 1;
        // Up by its data: a drained node that answers is up.
        self.nodes_up += usize::from(node.data_state == NodeState::Up);
        let out = node.operations.is_some_and(|o| o.activity.out_of_service());
        self.out_of_service += usize::from(out);
        if !out {
            self.health_in_service = self.health_in_service.max(node.health);
        }
        self.gpus_expected += u64::from(node.expected_gpus);
        self.gpus_seen += seen(node.gpus.clone()) as u64;
        self.health = self.health.max(node.health);
        self.warn += usize::from(node.health == Health::Warn);
        self.crit += usize::from(node.health == Health::Crit);
        self.power_watts += crate::telemetry::total(node.gpus.clone().filter_map(|g| g.power_w));
    }

    /// Monitoring-plugin exit status: 0 ok, 1 warn, 2 crit or a node giving no data. Only nodes in service
    /// count, unless `include_out_of_service`: a node someone drained already has an owner and must not page.
    pub(crate) fn exit_code(&self, include_out_of_service: bool) -> i32 {
        let health = if include_out_of_service {
            self.health
        } else {
            self.health_in_service
        };
        match health {
            Health::Ok => 0,
            Health::Warn => 1,
            Health::Crit => 2,
        }
    }
}
