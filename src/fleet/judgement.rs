//! Each node's last judgement (state, operations, verdicts, drift reasons), kept so that live views, which
//! refresh every node up to four times a second, judge again only the nodes something changed about
//! (`reuse.rs`): judging is the costliest part of a view.
//!
//! A judgement is keyed by the node's generation (bumped by each of its messages and acknowledgements), the
//! fleet's generation (bumped by drift tallies, usual port rates, audited resets and lemons, which feed every
//! node's reasons) and the node's state now, so the crossing of the stale limit re-judges it. What changes with
//! the clock alone is never cached: a stale node's age, XIDs and past events whose ages are shown, a restart in
//! flight, fabric counters that rose within the watch window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::node::NodeState;
use super::operations::Operations;
use crate::inventory::NodeId;
use crate::telemetry::health::Verdict;
use crate::telemetry::NodeSample;

/// What a node's judgement was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub node: u64,
    pub fleet: u64,
    pub state: NodeState,
}

/// The owned part of a node's view (`view.rs`): everything but what borrows from fleet state.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Judgement {
    pub state: NodeState,
    pub data_state: NodeState,
    pub operations: Option<Operations>,
    pub verdict: Verdict,
    pub gpus: Vec<Verdict>,
    pub error: Option<String>,
    pub tenant: Option<String>,
}

/// The judgements, by node id. A clone of fleet state starts with none (they are found again on first use).
#[derive(Default)]
pub(super) struct Judged {
    entries: Mutex<Vec<Option<(Key, Judgement)>>>,
    /// Judgements handed out again and judgements kept, for the benchmarks to say how often the cache hits.
    reused: AtomicU64,
    kept: AtomicU64,
}

impl Clone for Judged {
    fn clone(&self) -> Self {
        Judged::default()
    }
}

impl std::fmt::Debug for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Judged")
    }
}

impl Judged {
    pub(super) fn get(&self, id: NodeId, key: Key) -> Option<Judgement> {
        self.read(id, key, Judgement::clone)
    }

    /// What `read` makes of node `id`'s judgement where it was made from `key`, read where it is kept.
    pub(super) fn read<R>(
        &self,
        id: NodeId,
        key: Key,
        read: impl FnOnce(&Judgement) -> R,
    ) -> Option<R> {
        let entries = self.entries.lock().ok()?;
        match entries.get(id)? {
            Some((k, judgement)) if *k == key => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                Some(read(judgement))
            }
            _ => None,
        }
    }

    pub(super) fn put(&self, id: NodeId, key: Key, judgement: Judgement) {
        // A poisoned lock only loses the cache: views are judged afresh.
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() <= id {
            entries.resize_with(id + 1, || None);
        }
        entries[id] = Some((key, judgement));
        self.kept.fetch_add(1, Ordering::Relaxed);
    }

    /// How many judgements were reused and how many made afresh and kept, since the start.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.reused.load(Ordering::Relaxed),
            self.kept.load(Ordering::Relaxed),
        )
    }
}

/// Whether a sample's verdict shows ages on the node's clock (XIDs, SXids, past events), which change with
/// time alone.
pub(super) fn shows_ages(sample: &NodeSample) -> bool {
    fn listed<T>(list: &Option<Vec<T>>) -> bool {
        list.as_ref().is_some_and(|l| !l.is_empty())
    }
    !sample.unmatched_xid.is_empty()
        || listed(&sample.sxid)
        || listed(&sample.past)
        || sample
            .gpus
            .iter()
            .any(|g| listed(&g.xid) || listed(&g.xid_events) || listed(&g.past))
}
