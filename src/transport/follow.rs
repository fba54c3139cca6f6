//! The transport contract: [`Transport`] follows a fleet until its [`Following`] is dropped, and
//! [`NodeCommands`] runs a command over a connection it holds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::message::MsgSender;
use crate::inventory::{Inventory, NodeId};

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
