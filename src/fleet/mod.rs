//! The one owner of fleet data: applies transport messages and derives node state and health from them.

mod acks;
pub mod drift;
pub mod events;
pub mod filter;
pub mod history;
pub mod memory;
pub mod operations;
mod resets;
pub use resets::AuditedReset;
mod rates;
pub mod restart;
pub mod view;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::inventory::{Inventory, NodeId};
use crate::telemetry::{NodeSample, Source};
use crate::transport::{FailureKind, Msg, NodeEvent};
use acks::XidAck;
pub use acks::{AckedXid, Acknowledged};

/// A fresh sample is one younger than this many intervals; older ones are `stale`.
pub(crate) const STALE_AFTER_INTERVALS: u32 = 3;
/// How much history the rings keep for sparklines.
pub(crate) const HISTORY_SPAN: Duration = Duration::from_secs(600);

/// What fleetop tracks per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    Connecting,
    Up,
    Stale,
    Unreachable,
    AuthFailed,
    HostKeyMismatch,
    NoGpuDriver,
    /// The source holds nothing for it (no series in Prometheus).
    NoData,
    /// Operations states, from fleet state's operations record (`operations.rs`): drains read back from the
    /// scheduler, restarts asked by actions, repairs.
    Draining,
    Drained,
    Rebooting,
    Resetting,
    InRepair,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Connecting => "connecting",
            NodeState::Up => "up",
            NodeState::Stale => "stale",
            NodeState::Unreachable => "unreachable",
            NodeState::AuthFailed => "auth-failed",
            NodeState::HostKeyMismatch => "host-key-mismatch",
            NodeState::NoGpuDriver => "no-gpu-driver",
            NodeState::NoData => "no-data",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Rebooting => "rebooting",
            NodeState::Resetting => "resetting",
            NodeState::InRepair => "in-repair",
        }
    }

    /// At most nine characters, for narrow tables.
    pub fn short(self) -> &'static str {
        match self {
            NodeState::Connecting => "waiting",
            NodeState::Up => "up",
            NodeState::Stale => "stale",
            NodeState::Unreachable => "unreach",
            NodeState::AuthFailed => "auth-fail",
            NodeState::HostKeyMismatch => "host-key!",
            NodeState::NoGpuDriver => "no-driver",
            NodeState::NoData => "no-data",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Rebooting => "rebooting",
            NodeState::Resetting => "resetting",
            NodeState::InRepair => "in-repair",
        }
    }

    /// States in which the node gives no data at all: always `crit`, and exit status 2.
    pub(crate) fn is_failure(self) -> bool {
        matches!(
            self,
            NodeState::Unreachable
                | NodeState::AuthFailed
                | NodeState::HostKeyMismatch
                | NodeState::NoGpuDriver
                | NodeState::NoData
        )
    }
}

/// The last failure a node's transport reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
    pub at: Instant,
}

/// Everything known about one node.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub source: Option<Source>,
    /// What the remote side said about itself (agent version, driver).
    pub detail: Option<String>,
    /// The agent's hello (version, driver, CUDA, kernel); `None` for nvidia-smi.
    pub hello: Option<crate::telemetry::wire::AgentHello>,
    pub sample: Option<NodeSample>,
    pub sample_at: Option<Instant>,
    /// Cleared by the next sample or stream start.
    pub failure: Option<Failure>,
    pub bad_lines: u64,
    pub last_bad: Option<String>,
    pub samples: u64,
    /// Per-GPU history by GPU index, for sparklines.
    pub history: Vec<history::GpuHistory>,
    /// Fabric error counters that rose, over the last samples.
    pub(crate) watch: watch::Watch,
}

impl NodeStatus {
    /// GPU `index`'s history ring, made on first use; `None` past the most GPUs a sample may hold.
    fn history_of(&mut self, index: u32) -> Option<&mut history::GpuHistory> {
        let i = index as usize;
        if i >= crate::telemetry::wire::MAX_GPUS_PER_SAMPLE {
            return None;
        }
        if self.history.len() <= i {
            self.history.resize_with(i + 1, Default::default);
        }
        self.history.get_mut(i)
    }
}

/// The fleet as last heard from.
#[derive(Debug, Clone)]
pub struct FleetState {
    inventory: Arc<Inventory>,
    nodes: Vec<NodeStatus>,
    /// Per node, the operator's XID acknowledgement, if any.
    acks: Vec<Option<XidAck>>,
    /// Samples each history ring holds (`HISTORY_SPAN` at the inventory's interval).
    history_len: usize,
    /// Per node, what it runs (agent, driver, GPU model, VBIOS, GPU count), and the fleet's tallies of them.
    identities: Vec<drift::Identity>,
    tally: drift::Tally,
    /// The rate each InfiniBand port usually runs at across the fleet.
    rates: rates::PortRates,
    /// Per node, its drain, restart and repair as last reported.
    ops: Vec<operations::NodeOps>,
    /// Per node, its last audited GPU resets and reboot (grown on first use).
    resets: Vec<resets::NodeResets>,
    /// Per node, why the history store calls it a repeat offender (grown on first use; see `memory`).
    lemons: Vec<Option<String>>,
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
            rates: rates::PortRates::new(nodes.len()),
            tally: drift::Tally::default(),
            inventory,
            nodes,
            history_len,
            resets: Vec::new(),
            lemons: Vec::new(),
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
    pub(crate) fn history_len(&self) -> usize {
        self.history_len
    }

    pub fn apply(&mut self, msg: Msg) {
        let Some(node) = self.nodes.get_mut(msg.node) else {
            return;
        };
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
                for gpu in &sample.gpus {
                    if let Some(ring) = node.history_of(gpu.index) {
                        ring.push(self.history_len, gpu.util_pct, gpu.temp_c);
                    }
                }
                let identity = self.identities[msg.node].with_sample(&sample);
                node.watch.observe(&sample, msg.at);
                self.rates.observe(msg.node, sample.ib.as_deref());
                node.sample = Some(sample);
                node.sample_at = Some(msg.at);
                node.samples += 1;
                node.failure = None;
                if let Some(identity) = identity {
                    self.set_identity(msg.node, identity);
                }
            }
            // Only a ring nothing has filled yet takes the past: live samples always win.
            NodeEvent::History(gpus) => {
                for (index, points) in gpus {
                    let Some(ring) = node.history_of(index).filter(|r| r.is_empty()) else {
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

    fn set_identity(&mut self, id: NodeId, identity: drift::Identity) {
        if let Some(old) = self.identities.get_mut(id) {
            if *old != identity {
                self.tally.replace(old, &identity);
                *old = identity;
            }
        }
    }

    /// What a node runs, as far as it said.
    pub fn identity(&self, id: NodeId) -> Option<&drift::Identity> {
        self.identities.get(id)
    }

    /// Why a node drifts from `[expect]`, the fleet majority or the jump host's build.
    pub fn drift_reasons(&self, id: NodeId) -> Vec<String> {
        self.identities
            .get(id)
            .map(|i| {
                drift::reasons(
                    i,
                    &self.tally,
                    &self.inventory.expect,
                    self.declared_gpus(id),
                )
            })
            .unwrap_or_default()
    }

    /// Every aspect on which nodes differ, nodes grouped by value.
    pub fn drift(&self) -> Vec<drift::AspectDrift> {
        let declared: Vec<Option<u32>> = (0..self.identities.len())
            .map(|id| self.declared_gpus(id))
            .collect();
        drift::groups(
            &self.identities,
            &self.tally,
            &self.inventory.expect,
            &declared,
        )
    }

    /// The node's GPU count where the inventory gives one (not the default of 8).
    fn declared_gpus(&self, id: NodeId) -> Option<u32> {
        self.inventory
            .nodes
            .get(id)
            .filter(|n| n.gpus_declared)
            .map(|n| n.expected_gpus)
    }

    pub(crate) fn stale_after(&self) -> Duration {
        self.inventory.settings.interval * STALE_AFTER_INTERVALS
    }

    /// The node's state at `now`: a current failure wins, then the age of its last sample.
    pub fn state(&self, id: NodeId, now: Instant) -> NodeState {
        let node = &self.nodes[id];
        let by_age = || match node.sample_at {
            Some(at) if now.saturating_duration_since(at) <= self.stale_after() => NodeState::Up,
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
