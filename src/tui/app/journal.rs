//! The events log: state changes, health changes and XIDs, newest last, bounded.

use std::collections::VecDeque;
use std::time::Instant;

use crate::inventory::NodeId;
use crate::telemetry::health::Health;

/// Most entries kept; older ones are dropped.
pub(crate) const CAPACITY: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: Instant,
    pub node: Option<NodeId>,
    pub severity: Health,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct Journal {
    entries: VecDeque<Entry>,
}

impl Journal {
    pub fn push(&mut self, at: Instant, node: Option<NodeId>, severity: Health, text: String) {
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            at,
            node,
            severity,
            text,
        });
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().rev()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
