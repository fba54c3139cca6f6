//! What a connection attempt gives: an authenticated session (with the jump tunnel under it, if any), or
//! why not, as shown to the operator.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ssh2::Session;

use crate::transport::FailureKind;

/// Why a node could not be followed, as shown to the operator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeFailure {
    pub kind: FailureKind,
    pub detail: String,
}

pub fn fail(kind: FailureKind, detail: impl Into<String>) -> NodeFailure {
    NodeFailure {
        kind,
        detail: detail.into(),
    }
}

/// An authenticated session, plus the tunnel it runs through when a jump host is used.
pub(crate) struct Connected {
    pub session: Session,
    /// The socket the session reads, for `poll` by a tunnel built on top of it.
    pub fd: RawFd,
    /// Keeps the jump host's tunnel alive as long as the session.
    pub _tunnel: Option<Tunnel>,
}

/// Stops the pump thread when dropped, which closes the tunnel and the jump session.
pub(crate) struct Tunnel {
    stop: Arc<AtomicBool>,
}

impl Tunnel {
    /// A tunnel whose pump thread watches `stop`.
    pub(super) fn new(stop: Arc<AtomicBool>) -> Tunnel {
        Tunnel { stop }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
