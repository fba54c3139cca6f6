//! `FleetState`, the one owner of fleet data: it applies transport messages, keeps each node's status, identity,
//! operations, audited resets and acknowledgements, and answers what a node's state is now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::acks::{xid_last_ms, xid_times, AckedXid, Acknowledged, XidAck};
use super::node::{Failure, NodeState, NodeStatus, HISTORY_SPAN, STALE_AFTER_INTERVALS};
use super::operations::{NodeDrain, Operations, Restart};
use super::resets::AuditedReset;
use super::restart::Return;
use super::{drift, history, judgement, operations, rates, resets, watch};
use crate::inventory::{Inventory, NodeId};
use crate::telemetry::xid_age::XidClock;
use crate::telemetry::GpuSample;
use crate::transport::{FailureKind, Msg, NodeEvent};

/// What a patch, or a whole sample, is known to have left as it was.
#[derive(Debug, Clone, Copy, Default)]
struct Unchanged {
    identity: bool,
    rates: bool,
    /// Every fabric counter the watch reads: the sample is stamped, not walked.
    fabric: bool,
}

/// The fleet as last heard from.
#[derive(Debug, Clone)]
pub struct FleetState {
    pub(super) inventory: Arc<Inventory>,
    pub(super) nodes: Vec<NodeStatus>,
    /// Per node, the operator's XID acknowledgement, if any.
    pub(super) acks: Vec<Option<XidAck>>,
    /// Samples each history ring holds (`HISTORY_SPAN` at the inventory's interval).
    pub(super) history_len: usize,
    /// Per node, what it runs (agent, driver, GPU model, VBIOS, GPU count), and each site's tallies of them
    /// (by `Inventory::site_index`: two sites may rightly run different drivers).
    pub(super) identities: Vec<drift::Identity>,
    pub(super) tallies: Vec<drift::Tally>,
    /// The rate each InfiniBand port usually runs at across each site.
    pub(super) rates: Vec<rates::PortRates>,
    /// Per node, its drain, restart and repair as last reported.
    pub(super) ops: Vec<operations::NodeOps>,
    /// Per node, its last audited GPU resets and reboot (grown on first use).
    pub(super) resets: Vec<resets::NodeResets>,
    /// Per node, why the history store calls it a repeat offender (grown on first use; see `memory`).
    pub(super) lemons: Vec<Option<String>>,
    /// Per node, bumped by everything that may change its judgement (its messages, its acknowledgement).
    pub(super) generations: Vec<u64>,
    /// Bumped by what may change any node's judgement: drift tallies, usual port rates, resets, lemons.
    pub(super) fleet_generation: u64,
    /// Each node's last judgement, reused while nothing it depends on changed.
    pub(super) judged: judgement::Judged,
}

impl FleetState {
    pub fn new(inventory: Arc<Inventory>) -> Self {
        let nodes = vec![NodeStatus::default(); inventory.nodes.len()];
        let interval_ms = inventory.settings.interval.as_millis().max(1);
        let history_len = (HISTORY_SPAN.as_millis() / interval_ms).clamp(1, 3600) as usize;
        FleetState {
            acks: vec![None; nodes.len()],
            ops: vec![operations::NodeOps::default(); nodes.len()],
            identities: vec![drift::Identity::default(); nodes.len()],
            rates: vec![rates::PortRates::new(nodes.len()); inventory.site_count()],
            tallies: vec![drift::Tally::default(); inventory.site_count()],
            inventory,
            history_len,
            resets: Vec::new(),
            lemons: Vec::new(),
            generations: vec![0; nodes.len()],
            fleet_generation: 0,
            judged: judgement::Judged::default(),
            nodes,
        }
    }

    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// Every node's status, by node id. Only [`FleetState::apply`] changes them.
    pub fn nodes(&self) -> &[NodeStatus] {
        &self.nodes
    }

    /// Samples each history ring holds.
    pub fn history_len(&self) -> usize {
        self.history_len
    }

    pub fn apply(&mut self, msg: Msg) {
        let Some(node) = self.nodes.get_mut(msg.node) else {
            return;
        };
        // A delta that carries only the node's time (an idle node's second), or a whole sample that differs
        // from the last one in its time alone, keeps the node fresh and changes nothing its judgement reads,
        // unless it clears a failure: the judgement made before stands.
        let same_but_time = match &msg.event {
            NodeEvent::Delta(d) => d.carries_time_only(),
            NodeEvent::Sample(new) => node
                .sample
                .as_mut()
                .is_some_and(|old| same_but_time(old, new)),
            _ => false,
        };
        let judged_alike = node.failure.is_none() && same_but_time;
        if let Some(generation) = self.generations.get_mut(msg.node).filter(|_| !judged_alike) {
            *generation += 1;
        }
        match msg.event {
            NodeEvent::Connecting => {}
            // A running command is not yet data: a node that says hello and never samples keeps its last
            // failure until a sample clears it, instead of looking like it is still connecting.
            NodeEvent::Streaming {
                source,
                detail,
                hello,
            } => {
                node.source = Some(source);
                node.detail = Some(detail);
                node.hello = hello.map(|h| *h);
                let mut identity = self.identities[msg.node].clone();
                identity.streaming(source, node.hello.as_ref());
                self.set_identity(msg.node, identity);
            }
            NodeEvent::Sample(sample) => {
                node.sample = Some(sample);
                let unchanged = Unchanged {
                    fabric: same_but_time,
                    ..Default::default()
                };
                self.sampled(msg.node, msg.at, unchanged);
            }
            // Patched in place: no whole sample is rebuilt, sent and dropped per node per second.
            NodeEvent::Delta(delta) => {
                // A node's stream sends its whole sample first; a delta without one has nothing to patch.
                let Some(sample) = node.sample.as_mut() else {
                    return;
                };
                let unchanged = Unchanged {
                    identity: drift::kept_by(&delta, sample),
                    rates: rates::kept_by(&delta),
                    fabric: watch::kept_by(&delta),
                };
                delta.apply_to(sample);
                self.sampled(msg.node, msg.at, unchanged);
            }
            // Only a ring nothing has filled yet takes the past: live samples always win.
            NodeEvent::History(gpus) => {
                for (index, points) in gpus {
                    let Some(ring) =
                        history::ring(&mut node.history, index).filter(|r| r.is_empty())
                    else {
                        continue;
                    };
                    for (util, temp) in points {
                        ring.push(self.history_len, util, temp);
                    }
                }
            }
            NodeEvent::BadLine(why) => {
                node.bad_lines += 1;
                node.last_bad = Some(why);
            }
            NodeEvent::Operation(event) => self.ops[msg.node].record(event, msg.at),
            NodeEvent::Failed { kind, detail } => {
                self.ops[msg.node].failed(msg.at);
                node.failure = Some(Failure {
                    kind,
                    detail,
                    at: msg.at,
                });
            }
        }
    }

    /// Takes what the node's sample, just replaced or patched, says: history, fabric counters, port rates,
    /// identity (the last two looked at only where a patch may have changed them).
    fn sampled(&mut self, id: NodeId, at: Instant, unchanged: Unchanged) {
        let node = &mut self.nodes[id];
        let Some(sample) = node.sample.as_ref() else {
            return;
        };
        for gpu in &sample.gpus {
            if let Some(ring) = history::ring(&mut node.history, gpu.index) {
                ring.push(self.history_len, gpu.util_pct, gpu.temp_c);
            }
        }
        let identity = if unchanged.identity {
            None
        } else {
            self.identities[id].with_sample(sample)
        };
        if unchanged.fabric {
            node.watch.observe_same(sample, at);
        } else {
            node.watch.observe(sample, at);
        }
        let site = self.inventory.site_index(id);
        let rates = self.rates.get_mut(site).filter(|_| !unchanged.rates);
        if rates.is_some_and(|r| r.observe(id, sample.ib.as_deref())) {
            self.fleet_generation += 1;
        }
        node.sample_at = Some(at);
        node.samples += 1;
        node.failure = None;
        if let Some(identity) = identity {
            self.set_identity(id, identity);
        }
    }

    fn set_identity(&mut self, id: NodeId, identity: drift::Identity) {
        let site = self.inventory.site_index(id);
        if let (Some(old), Some(tally)) = (self.identities.get_mut(id), self.tallies.get_mut(site))
        {
            if *old != identity {
                tally.replace(old, &identity);
                *old = identity;
                self.fleet_generation += 1;
            }
        }
    }

    /// What a node runs, as far as it said.
    pub fn identity(&self, id: NodeId) -> Option<&drift::Identity> {
        self.identities.get(id)
    }

    /// Why a node drifts from its site's `[expect]`, its site's majority or the jump host's build.
    pub(crate) fn drift_reasons(&self, id: NodeId) -> Vec<String> {
        let site = self.inventory.site_index(id);
        match (self.identities.get(id), self.tallies.get(site)) {
            (Some(i), Some(tally)) => drift::reasons(
                i,
                tally,
                self.inventory.rules(id).expect,
                self.declared_gpus(id),
            ),
            _ => Vec::new(),
        }
    }

    /// The node's GPU count where the inventory gives one (not the default of 8).
    pub(super) fn declared_gpus(&self, id: NodeId) -> Option<u32> {
        self.inventory
            .nodes
            .get(id)
            .filter(|n| n.gpus_declared)
            .map(|n| n.expected_gpus)
    }

    /// How old node `id`'s last sample may be and still be current: intervals of its own site.
    pub(crate) fn stale_after(&self, id: NodeId) -> Duration {
        self.inventory.rules(id).settings.interval * STALE_AFTER_INTERVALS
    }

    /// The node's state at `now`: a current failure wins, then the age of its last sample.
    pub fn state(&self, id: NodeId, now: Instant) -> NodeState {
        let node = &self.nodes[id];
        let by_age = || match node.sample_at {
            Some(at) if now.saturating_duration_since(at) <= self.stale_after(id) => NodeState::Up,
            Some(_) => NodeState::Stale,
            None => NodeState::Unreachable,
        };
        match &node.failure {
            Some(f) => match f.kind {
                FailureKind::Unreachable => NodeState::Unreachable,
                FailureKind::AuthFailed => NodeState::AuthFailed,
                FailureKind::HostKeyMismatch => NodeState::HostKeyMismatch,
                FailureKind::NoGpuDriver => NodeState::NoGpuDriver,
                FailureKind::NoData => NodeState::NoData,
                FailureKind::StreamEnded => by_age(),
            },
            None if node.sample_at.is_none() => NodeState::Connecting,
            None => by_age(),
        }
    }
}

/// Whether `old` and `new` differ in their time alone (compared in place: `old` is given its time back).
fn same_but_time(
    old: &mut crate::telemetry::NodeSample,
    new: &crate::telemetry::NodeSample,
) -> bool {
    let t = std::mem::replace(&mut old.t, new.t);
    let same = *old == *new;
    old.t = t;
    same
}

/// Operators' XID acknowledgements (`acks.rs`).
impl FleetState {
    /// Acknowledges every XID the node reports now, each up to the time it was last seen; an XID without a
    /// time cannot be acknowledged (see [`AckedXid`]). Replaces the node's earlier acknowledgement.
    pub(crate) fn acknowledge_xids(&mut self, id: NodeId, reason: &str) -> Acknowledged {
        let mut done = Acknowledged::default();
        let gpus = self
            .nodes
            .get(id)
            .and_then(|n| n.sample.as_ref())
            .map(|s| s.gpus.as_slice())
            .unwrap_or_default();
        for g in gpus {
            for (code, count, last_ms) in xid_times(g) {
                match last_ms {
                    Some(last_ms) => done.covered.push(AckedXid {
                        gpu: g.index,
                        code,
                        count,
                        last_ms,
                    }),
                    None => done.timeless.push((g.index, code)),
                }
            }
        }
        self.restore_ack(id, reason, done.covered.clone());
        done
    }

    /// Restores an acknowledgement read back from the audit log (a restarted TUI keeps what was acknowledged;
    /// an XID seen since is not covered, as before).
    pub(crate) fn restore_ack(&mut self, id: NodeId, reason: &str, covered: Vec<AckedXid>) {
        if let Some(generation) = self.generations.get_mut(id) {
            *generation += 1;
        }
        if let Some(slot) = self.acks.get_mut(id) {
            *slot = (!covered.is_empty()).then(|| XidAck {
                reason: reason.to_string(),
                covered,
            });
        }
    }

    /// The reason XID `code` (seen `count` times) on GPU `g` is acknowledged, if it has not been seen since.
    pub fn acknowledged(&self, id: NodeId, g: &GpuSample, code: u32, count: u64) -> Option<String> {
        let ack = self.acks.get(id)?.as_ref()?;
        let last_ms = xid_last_ms(g, code);
        ack.covered
            .iter()
            .any(|a| a.covers(g.index, code, count, last_ms))
            .then(|| ack.reason.clone())
    }
}

/// Audited resets and reboots (`resets.rs`).
impl FleetState {
    /// Records audited resets and reboots (nodes the inventory does not name are skipped).
    pub fn note_resets(&mut self, resets: &[AuditedReset]) {
        let ids: HashMap<&str, NodeId> = self
            .inventory
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| (n.name.as_str(), id))
            .collect();
        for r in resets {
            let Some(&id) = ids.get(r.node.as_str()) else {
                continue;
            };
            if self.resets.len() <= id {
                self.resets.resize_with(id + 1, Default::default);
            }
            self.resets[id].note(r.gpu, r.reboot, r.at_ms);
        }
        self.fleet_generation += 1;
    }

    /// What GPU `gpu` of node `id`'s XIDs are measured against: the node's clock now (its last sample's time
    /// plus the sample's age) and the GPU's last audited reset.
    pub(crate) fn xid_clock(
        &self,
        id: NodeId,
        gpu: Option<u32>,
        sample_age: Option<std::time::Duration>,
    ) -> XidClock {
        let status = &self.nodes[id];
        let now_ms = status
            .sample
            .as_ref()
            .map(|s| s.t)
            .filter(|&t| t > 0)
            .zip(sample_age)
            .map(|(t, age)| t.saturating_add(age.as_millis() as u64));
        let resets = self.resets.get(id);
        let last_reset_ms = match gpu {
            Some(g) => resets.and_then(|r| r.last_for(g)),
            None => resets.and_then(|r| r.reboot_ms),
        };
        XidClock {
            now_ms,
            last_reset_ms,
            last_reboot_ms: resets.and_then(|r| r.reboot_ms),
        }
    }
}

/// Operations: drains, restarts and repairs (`operations.rs`).
impl FleetState {
    /// How the reboot or reset in flight on `id` stands at `now`, if one was asked.
    pub fn restart(&self, id: NodeId, now: Instant) -> Option<(Restart, Return)> {
        let node = self.nodes.get(id)?;
        self.ops
            .get(id)
            .filter(|o| o.restart.is_some())?
            .restart_return(
                node.sample_at,
                self.state(id, now),
                now,
                self.inventory.rules(id).actions.reboot_deadline,
            )
    }

    /// What is being done to `id` at `now` (`None`: nothing was read back or asked).
    pub fn operations(&self, id: NodeId, now: Instant) -> Option<Operations> {
        self.ops.get(id)?.view(self.restart(id, now))
    }

    /// The drain backend's last read-back for `id`.
    pub fn drain(&self, id: NodeId) -> Option<&NodeDrain> {
        self.ops.get(id)?.drain.as_ref()
    }

    /// A repair's latest step on `id`, active or ended.
    pub(crate) fn repair_note(&self, id: NodeId) -> Option<&str> {
        Some(self.ops.get(id)?.repair.as_ref()?.text.as_str())
    }
}
