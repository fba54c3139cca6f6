//! How samples reach the jump host: a [`Transport`] follows every node and sends [`Msg`]s into one channel.

pub mod decode;
pub mod prometheus;
pub mod sim;
pub mod ssh;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::inventory::{Inventory, NodeId};
use crate::telemetry::{NodeSample, Source};

/// One GPU's past, by index: (utilisation %, temperature °C) per refresh interval, oldest first.
pub type GpuPast = (u32, Vec<(Option<u32>, Option<u32>)>);

/// One thing that happened to one node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A connection attempt started.
    Connecting,
    /// The remote command is running; `detail` says which (agent version, driver).
    Streaming {
        source: Source,
        detail: String,
        /// What the agent said about itself; `None` for nvidia-smi.
        hello: Option<Box<crate::telemetry::wire::AgentHello>>,
    },
    Sample(NodeSample),
    /// Past utilisation and temperature per GPU index, oldest first at the refresh interval, read from a store
    /// that keeps history: it fills the sparklines of a view that just started. `None` where a point is absent.
    History(Vec<GpuPast>),
    /// A line that could not be used (garbage, oversized, not UTF-8); counted, never fatal.
    BadLine(String),
    /// What an operator or scheduler did to the node (a drain read back, a restart asked, a repair's step):
    /// sent by read-backs and actions, never by a node.
    Operation(crate::workload::operations::OperationEvent),
    /// The connection or the remote command failed; the transport retries with backoff.
    Failed {
        kind: FailureKind,
        detail: String,
    },
}

/// Why a node is not streaming. Each maps to a node state shown to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureKind {
    Unreachable,
    AuthFailed,
    HostKeyMismatch,
    NoGpuDriver,
    /// The session worked but the remote command ended or stalled; old data goes stale.
    StreamEnded,
    /// The source holds nothing for this node (no series in Prometheus).
    NoData,
}

/// A node event stamped with the node and the jump host's time of arrival.
#[derive(Debug, Clone)]
pub struct Msg {
    pub node: NodeId,
    pub at: Instant,
    pub event: NodeEvent,
}

pub(crate) type MsgSender = tokio::sync::mpsc::UnboundedSender<Msg>;

/// Sends a node's events, stamping each with the time it arrived.
#[derive(Debug, Clone)]
pub(crate) struct NodeSink {
    pub node: NodeId,
    pub tx: MsgSender,
}

impl NodeSink {
    /// False once the receiver is gone, which tells the node's worker to stop.
    pub fn send(&self, event: NodeEvent) -> bool {
        self.tx
            .send(Msg {
                node: self.node,
                at: Instant::now(),
                event,
            })
            .is_ok()
    }
}

/// Follows a fleet: starts one worker per node, each streaming samples until [`Following`] is dropped.
pub trait Transport: Send + Sync {
    fn follow(&self, inventory: &Arc<Inventory>, tx: MsgSender) -> Following;

    /// Runs commands on nodes through the connections this transport holds, for actions that should not
    /// open a second one; `None` for a transport that holds none.
    fn node_commands(&self) -> Option<Arc<dyn NodeCommands>> {
        None
    }

    /// True when a node whose connection failed (`Unreachable`) is tried again after a backoff: a snapshot
    /// then waits, within its timeout, for that second try before taking the failure as the answer.
    fn reconnects(&self) -> bool {
        false
    }

    /// Where the latest refresh's time went, for `snapshot --timings`; `None` where the transport keeps no
    /// account beyond the command's own phases.
    fn timings(&self) -> Option<String> {
        None
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// The connection dropped after the command was accepted, before an exit status came back: what a
    /// successful `systemctl reboot` can look like.
    Dropped(String),
    /// No exit status within the time limit; the command may still be running.
    TimedOut(Duration),
    /// The remote process was killed by this signal.
    Signalled(String),
}

/// What a remote command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub ending: Ending,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command (already quoted for the node's shell) over a connection the transport holds now.
pub trait NodeCommands: Send + Sync {
    /// `None` when the node has no live connection, or the connection could not take the command.
    fn run(&self, node: NodeId, command: &str, limit: Duration) -> Option<Completed>;
}

/// Keeps the node workers running; dropping it asks them all to stop.
#[derive(Debug, Default)]
pub struct Following {
    stop: Arc<AtomicBool>,
}

impl Following {
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        Following { stop }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
