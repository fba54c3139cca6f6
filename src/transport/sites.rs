//! Several sites followed at once: each site's own transport (its jump host, or its Prometheus store) follows
//! its own inventory, and its messages come into the one channel renumbered to the merged inventory's nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::follow::{Following, Transport};
use super::message::{FailureKind, Msg, MsgSender, NodeEvent};
use crate::inventory::Inventory;

/// One site: its inventory, its transport, and where its nodes start in the merged inventory.
pub(crate) struct Site {
    pub inventory: Arc<Inventory>,
    pub transport: Box<dyn Transport>,
    pub first_node: usize,
}

/// Follows every site through its own transport.
pub(crate) struct SitesTransport {
    sites: Vec<Arc<Site>>,
}

impl SitesTransport {
    pub fn new(sites: Vec<Site>) -> Self {
        SitesTransport {
            sites: sites.into_iter().map(Arc::new).collect(),
        }
    }
}

/// A site that cannot answer what was asked (`snapshot --at` of a site without a store of its past): each of
/// its nodes answers no data, saying why, once.
pub(crate) struct Unanswered(pub String);

impl Transport for Unanswered {
    fn follow(&self, inventory: &Arc<Inventory>, tx: MsgSender) -> Following {
        let at = std::time::Instant::now();
        for node in 0..inventory.nodes.len() {
            let event = NodeEvent::Failed {
                kind: FailureKind::NoData,
                detail: self.0.clone(),
            };
            if tx.send(Msg { node, at, event }).is_err() {
                break;
            }
        }
        Following::new(Arc::new(AtomicBool::new(false)))
    }
}

impl Transport for SitesTransport {
    /// The merged inventory is not needed: each site follows its own.
    fn follow(&self, _merged: &Arc<Inventory>, tx: MsgSender) -> Following {
        let stop = Arc::new(AtomicBool::new(false));
        for site in &self.sites {
            let (site_tx, mut site_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
            let following = site.transport.follow(&site.inventory, site_tx);
            let (tx, stop, first, count) = (
                tx.clone(),
                Arc::clone(&stop),
                site.first_node,
                site.inventory.nodes.len(),
            );
            // A thread, as the SSH workers are: it ends when the site's workers have all stopped (their senders
            // dropped), when the merged channel's receiver is gone, or at the first message after the stop.
            let spawned = std::thread::Builder::new()
                .name("fleetop-site".into())
                .spawn(move || {
                    let _following = following;
                    while let Some(mut msg) = site_rx.blocking_recv() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if msg.node >= count {
                            continue;
                        }
                        msg.node += first;
                        if tx.send(msg).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a site's forwarding thread: {e}");
            }
        }
        Following::new(stop)
    }

    fn reconnects(&self) -> bool {
        self.sites.iter().any(|s| s.transport.reconnects())
    }
}
