//! What fleetop knows about one node: its state, its last failure, and its status (sample, history, fabric
//! watch).

use std::time::{Duration, Instant};

use super::{history, watch};
use crate::telemetry::{NodeSample, Source};
use crate::transport::FailureKind;

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
