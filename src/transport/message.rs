//! What a node's worker sends into the one channel: a [`Msg`] (node, arrival time, [`NodeEvent`]), stamped by
//! its [`NodeSink`].

use std::time::Instant;

use crate::inventory::NodeId;
use crate::telemetry::{NodeSample, Source};

/// One GPU's past, by index: (utilisation %, temperature °C) per refresh interval, oldest first.
pub(crate) type GpuPast = (u32, Vec<(Option<u32>, Option<u32>)>);

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
    /// What changed since the node's previous sample, to apply to it in place (a compact stream whose samples
    /// need no sanitizing: its values are already as sanitizing leaves them). Only a node's own stream sends
    /// it, after a whole sample; a consumer that keeps no fleet state turns it into the whole sample with
    /// fleet state's help (`fleetop record`).
    Delta(Box<crate::telemetry::delta::NodeDelta>),
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

impl NodeEvent {
    /// A sample, whole or as a delta.
    pub fn is_sample(&self) -> bool {
        matches!(self, NodeEvent::Sample(_) | NodeEvent::Delta(_))
    }
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
