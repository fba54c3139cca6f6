//! Reads the node detail's history off the loop: one bounded store query on a blocking task, its answer sent
//! back for `App::on_history` (the store's busy timeout never stalls drawing).

use std::path::PathBuf;

use crate::inventory::NodeId;
use crate::store::{Event, Store};
use crate::tui::app::history::{MAX_EVENTS, SINCE};

/// The store's answer for one node.
pub(super) type Answer = (NodeId, Result<Vec<Event>, String>);

/// Reads `name`'s last [`SINCE`] from the store at `path`, as the scope (`site`, `inventory`) counts it, and sends it
/// for `node`; a full channel (an answer not taken yet) drops this one: the pane asks again.
pub(super) fn read(
    path: PathBuf,
    node: NodeId,
    (name, (site, inventory)): (String, (Option<String>, Option<String>)),
    tx: tokio::sync::mpsc::Sender<Answer>,
) {
    tokio::task::spawn_blocking(move || {
        let since_ms = crate::telemetry::unix_ms()
            .saturating_sub(u64::try_from(SINCE.as_millis()).unwrap_or(u64::MAX));
        let limit = u32::try_from(MAX_EVENTS).unwrap_or(u32::MAX);
        let events = if path.exists() {
            Store::open(&path).and_then(|s| {
                let scope = crate::store::Scope::new(site.as_deref(), inventory.as_deref());
                s.history_bounded(&name, since_ms, limit, scope)
            })
        } else {
            // No store yet is no history, not an error (and opening would create the file).
            Ok(Vec::new())
        };
        let _ = tx.try_send((node, events));
    });
}
