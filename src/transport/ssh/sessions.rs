//! The session each node's worker holds right now, shared with actions so a command can run through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::oneshot;
use crate::inventory::NodeId;
use crate::transport::{Completed, NodeCommands};

/// The session each node's worker holds right now, so an action can run a command through it
/// instead of opening a second connection.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<NodeId, ssh2::Session>>>);

impl Sessions {
    pub fn get(&self, node: NodeId) -> Option<ssh2::Session> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
    }

    pub(super) fn set(&self, node: NodeId, session: Option<ssh2::Session>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match session {
            Some(s) => map.insert(node, s),
            None => map.remove(&node),
        };
    }
}

impl NodeCommands for Sessions {
    fn run(&self, node: NodeId, command: &str, limit: Duration) -> Option<Completed> {
        oneshot::run_on(&self.get(node)?, command, limit).ok()
    }
}
