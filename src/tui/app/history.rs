//! The node detail's history pane, as data: the history store's events for the node in the detail view and its
//! GPUs (by serial and UUID, wherever they were), newest first. The loop reads the store off the render path
//! when [`App::history_wanted`] names a node and hands the answer to [`App::on_history`]; drawing only reads it.

use std::time::{Duration, Instant};

use super::{App, View};
use crate::inventory::NodeId;
use crate::store::Event;

/// Most events the pane holds (the store answers with at most this many).
pub const MAX_EVENTS: usize = 50;
/// How far back the pane reaches.
pub const SINCE: Duration = Duration::from_secs(30 * 86_400);
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

impl App {
    /// The node whose history the loop should read now: the one in the detail view, when its history was not
    /// asked for yet or was asked for [`REREAD_EVERY`] ago. Marks it asked.
    pub fn history_wanted(&mut self) -> Option<NodeId> {
        if self.view != View::Detail || self.fleet.inventory().simulated {
            return None;
        }
        let node = self.selected;
        let fresh = self.history.asked.is_some_and(|(n, at)| {
            n == node && self.now.saturating_duration_since(at) < REREAD_EVERY
        });
        if fresh {
            return None;
        }
        self.history.asked = Some((node, self.now));
        Some(node)
    }

    /// The store's answer for `node`, bounded to [`MAX_EVENTS`].
    pub fn on_history(&mut self, node: NodeId, events: Result<Vec<Event>, String>) {
        self.history.node = Some(node);
        self.history.events = events.map(|mut e| {
            e.truncate(MAX_EVENTS);
            e
        });
        self.dirty = true;
    }
}
