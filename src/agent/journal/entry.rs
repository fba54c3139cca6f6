//! One journal line (`Entry`) and the entries a sample gives: each XID's tally and each state (recovery
//! action, ECC, row remap, NVLinks down, lost) of a GPU; `fabric.rs` adds the fabric's and the node's.

use serde::{Deserialize, Serialize};

use crate::telemetry::past::MAX_TEXT;
use crate::telemetry::{GpuErrorKind, GpuSample, XidEvent};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// When the agent wrote it, Unix ms.
    pub(super) t: u64,
    pub(super) gpu: u32,
    pub(super) serial: Option<String>,
    pub(super) uuid: Option<String>,
    pub(super) kind: String,
    pub(super) code: Option<u64>,
    /// The source's tally when written (an XID's count since boot), 1 for a change.
    pub(super) count: u64,
    pub(super) first_ms: Option<u64>,
    pub(super) last_ms: u64,
    pub(super) text: Option<String>,
    /// About the node (an SXid, an InfiniBand port), not one GPU.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) node: bool,
}

/// The key of the node's own entries: no GPU serial or UUID is empty.
pub(super) const NODE_KEY: &str = "";

impl Entry {
    /// What it is about: the node, else the GPU by its serial, which moves with the board, else its UUID.
    pub(super) fn gpu_key(&self) -> Option<&str> {
        if self.node {
            return Some(NODE_KEY);
        }
        self.serial.as_deref().or(self.uuid.as_deref())
    }

    /// What tells one written state from the next: an XID's last occurrence; a state's text (which NVLinks or
    /// ports are down), so a change of set is written.
    pub(super) fn stamp(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        if !self.is_state() {
            return self.last_ms;
        }
        // SipHash with fixed keys: the same text gives the same stamp in every run.
        let mut h = std::hash::DefaultHasher::new();
        self.text.hash(&mut h);
        h.finish()
    }
}

/// The entries `gpu` gives at `now`: each XID's current tally, and the other kinds' current state.
pub(super) fn changes(gpu: &GpuSample, now: u64) -> Vec<Entry> {
    let entry = |kind: &str,
                 code: Option<u64>,
                 count: u64,
                 first: Option<u64>,
                 last: u64,
                 text: Option<String>| {
        Entry::about(Some(gpu), now, kind, text).with(code, count, first, last)
    };
    let mut out = tallies(Some(gpu), "xid", gpu.xid_events.as_deref(), now);
    if let Some(action) = gpu.recovery_action.filter(|&a| a != 0) {
        out.push(entry("recovery", Some(u64::from(action)), 1, None, now, None).keyed_by_value());
    }
    if let Some(n) = gpu.ecc_uncorrected.filter(|&n| n > 0) {
        out.push(entry("ecc", Some(n), 1, None, now, None).keyed_by_value());
    }
    for (flag, what) in [
        (gpu.remapped_rows_pending, "row remap pending"),
        (gpu.remapped_rows_failed, "row remapping failed"),
    ] {
        if flag == Some(true) {
            out.push(entry("remap", None, 1, None, now, Some(what.into())).keyed_by_value());
        }
    }
    if let Some(links) = gpu
        .nvlink
        .as_ref()
        .filter(|l| !l.down.is_empty() && gpu.mig_enabled != Some(true))
    {
        let down: Vec<String> = links.down.iter().map(u32::to_string).collect();
        let text = format!("NVLinks down: {}", down.join(", "));
        out.push(entry("nvlink", None, 1, None, now, Some(text)).keyed_by_value());
    }
    if gpu.errors.iter().any(|e| e.kind == GpuErrorKind::Lost) {
        out.push(entry("lost", None, 1, None, now, None).keyed_by_value());
    }
    out
}

/// An entry per timed event of `events` (an XID's or SXid's tally), about `gpu` or the node.
pub(super) fn tallies(
    gpu: Option<&GpuSample>,
    kind: &str,
    events: Option<&[XidEvent]>,
    now: u64,
) -> Vec<Entry> {
    // An event without a time (no source gave one) could not be told from the same one seen again: not journaled.
    events
        .unwrap_or_default()
        .iter()
        .filter_map(|x| {
            let e = Entry::about(gpu, now, kind, x.text.clone());
            Some(e.with(Some(u64::from(x.code)), x.count, x.first_ms, x.last_ms?))
        })
        .collect()
}

impl Entry {
    /// An entry about `gpu` (the node for `None`), its text bounded as a summary keeps it.
    pub(super) fn about(
        gpu: Option<&GpuSample>,
        now: u64,
        kind: &str,
        text: Option<String>,
    ) -> Entry {
        Entry {
            t: now,
            gpu: gpu.map_or(0, |g| g.index),
            serial: gpu.and_then(|g| g.serial.clone()),
            uuid: gpu.and_then(|g| g.uuid.clone()),
            kind: kind.into(),
            code: None,
            count: 1,
            first_ms: None,
            last_ms: now,
            text: text.map(|t| t.chars().take(MAX_TEXT).collect()),
            node: gpu.is_none(),
        }
    }

    pub(super) fn with(
        mut self,
        code: Option<u64>,
        count: u64,
        first: Option<u64>,
        last: u64,
    ) -> Entry {
        self.code = code;
        self.count = count;
        self.first_ms = first;
        self.last_ms = last;
        self
    }

    /// A state (not a tally): written when its value first appears, not at every sample while it lasts; its
    /// `first_ms` of 0 marks it.
    pub(super) fn keyed_by_value(mut self) -> Entry {
        self.first_ms = Some(0);
        self
    }

    pub(super) fn is_state(&self) -> bool {
        self.first_ms == Some(0)
    }
}
