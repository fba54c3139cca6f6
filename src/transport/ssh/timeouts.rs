//! The SSH transport's time limits, from the inventory's settings: its own leaf, so the session, jump,
//! one-shot, stream and worker code that apply them import nothing back.

use std::time::Duration;

/// How long a node's connection may take at each stage, and how a streaming node is judged.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub handshake: Duration,
    pub first_sample: Duration,
    /// Silence after which a streaming node is considered hung and reconnected.
    pub stall: Duration,
    /// Samples closer together than this are dropped (and counted): a node streaming faster than its
    /// interval cannot flood the jump host's queue.
    pub min_sample_gap: Duration,
    /// A node followed through nvidia-smi runs the choice again this often, so an agent installed since
    /// (`fleetop deploy`) is picked up on the same session.
    pub agent_recheck: Duration,
}

impl Timeouts {
    /// The inventory's connection timeouts.
    pub(crate) fn from_settings(s: &crate::inventory::Settings) -> Timeouts {
        Timeouts {
            connect: s.connect_timeout,
            handshake: s.handshake_timeout,
            first_sample: s.first_sample_timeout,
            agent_recheck: s.agent_recheck,
            stall: (s.interval * 5).max(Duration::from_secs(10)),
            min_sample_gap: s.interval / 4,
        }
    }

    /// The longest a followed node goes without a message: a streaming node sends a sample each interval or,
    /// silent for `stall` (`first_sample` after its hello), a failure; any other node ends its connection attempt
    /// within the three connection timeouts and, after its retry backoff, begins the next. A recording in which
    /// every node was silent for longer was not being written then (`fleetop report` books that as unrecorded).
    pub(crate) fn longest_silence(&self, streaming: bool) -> Duration {
        if streaming {
            self.stall.max(self.first_sample)
        } else {
            self.connect + self.handshake + self.first_sample + super::backoff::longest()
        }
    }
}
