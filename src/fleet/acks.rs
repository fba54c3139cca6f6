//! Operators' XID acknowledgements, by time: what was seen up to the acknowledgement, never what happens later.

use crate::telemetry::GpuSample;

/// An operator's acknowledgement of a node's XIDs as they stood: each XID it covers, by time. An XID seen
/// after that (a new one, the same one again, or the same one after a reboot or an agent restart, whose
/// count starts again at 1) is not covered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct XidAck {
    pub reason: String,
    pub covered: Vec<AckedXid>,
}

/// One acknowledged XID: `code` on GPU `gpu`, as seen up to `last_ms` (Unix ms of its last occurrence then),
/// when it had occurred `count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckedXid {
    pub gpu: u32,
    pub code: u32,
    pub count: u64,
    pub last_ms: u64,
}

/// How far a repeated report of an acknowledged XID's time may move without it counting as a new
/// occurrence, when its count has not grown: the agent turns the kernel log's boot-relative times into
/// wall time through its own start's clock reading (`agent/kernel.rs` `boot_unix_ms`), so an agent
/// restarted without a reboot reports the same old record a few milliseconds apart. A real repeat grows
/// the count; one after a reboot comes minutes later.
const ACK_CLOCK_SLACK_MS: u64 = 2_000;

impl AckedXid {
    /// Whether this acknowledgement covers `code` on `gpu` last seen at `last_ms` with `count` occurrences.
    /// An occurrence with no time (the Prometheus store's series carry none) is never covered: nothing
    /// tells it from a later one.
    pub(super) fn covers(&self, gpu: u32, code: u32, count: u64, last_ms: Option<u64>) -> bool {
        let Some(last) = last_ms else {
            return false;
        };
        self.gpu == gpu
            && self.code == code
            && (last <= self.last_ms
                || (count <= self.count && last <= self.last_ms.saturating_add(ACK_CLOCK_SLACK_MS)))
    }
}

/// Each XID of a GPU as (code, count, last occurrence's Unix ms when the source gave a time).
pub(super) fn xid_times(g: &GpuSample) -> Vec<(u32, u64, Option<u64>)> {
    g.xid_counts()
        .into_iter()
        .map(|(code, count)| (code, count, xid_last_ms(g, code)))
        .collect()
}

pub(super) fn xid_last_ms(g: &GpuSample, code: u32) -> Option<u64> {
    g.xid_events
        .iter()
        .flatten()
        .find(|e| e.code == code)
        .and_then(|e| e.last_ms)
}

/// What acknowledging a node's XIDs did: what it covers, and the XIDs it could not cover (no time).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Acknowledged {
    pub covered: Vec<AckedXid>,
    /// (GPU index, code) of XIDs whose source gave no time: they keep raising health.
    pub timeless: Vec<(u32, u32)>,
}
