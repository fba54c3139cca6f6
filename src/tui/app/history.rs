//! The node detail's history pane, as data: the history store's events for the node in the detail view and its
//! GPUs (by serial and UUID, wherever they were), newest first. The loop reads the store off the render path
//! when [`NodeHistory::wanted`] names a node and hands the answer to [`NodeHistory::answer`]; drawing only reads it.

use std::time::{Duration, Instant};

use crate::inventory::NodeId;
use crate::store::Event;

/// Most events the pane holds (the store answers with at most this many).
pub const MAX_EVENTS: usize = 50;
/// How far back the pane reaches.
pub(crate) const SINCE: Duration = Duration::from_secs(30 * 86_400);
/// A shown history is read again this often while the detail view stays open.
const REREAD_EVERY: Duration = Duration::from_secs(30);

/// What the pane shows: one node's events, or why they could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHistory {
    /// The node the answer is about; `None`: nothing read yet.
    pub node: Option<NodeId>,
    /// The events, newest first, at most [`MAX_EVENTS`]; an error is shown in their place.
    pub events: Result<Vec<Event>, String>,
    /// When the last read for `asked` was asked for.
    asked: Option<(NodeId, Instant)>,
}

impl Default for NodeHistory {
    fn default() -> Self {
        NodeHistory {
            node: None,
            events: Ok(Vec::new()),
            asked: None,
        }
    }
}

impl NodeHistory {
    /// The node whose history should be read now: `shown` (the node in the detail view, `None` when the view
    /// shows no node's history), when its history was not asked for yet or was asked for [`REREAD_EVERY`] ago.
    /// Marks it asked.
    pub(crate) fn wanted(&mut self, shown: Option<NodeId>, now: Instant) -> Option<NodeId> {
        let node = shown?;
        let fresh = self
            .asked
            .is_some_and(|(n, at)| n == node && now.saturating_duration_since(at) < REREAD_EVERY);
        if fresh {
            return None;
        }
        self.asked = Some((node, now));
        Some(node)
    }

    /// The store's answer for `node`, bounded to [`MAX_EVENTS`].
    pub fn answer(&mut self, node: NodeId, events: Result<Vec<Event>, String>) {
        self.node = Some(node);
        self.events = events.map(|mut e| {
            e.truncate(MAX_EVENTS);
            e
        });
    }
}
