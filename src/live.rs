//! Plain live mode: follows the fleet and prints a one-line summary per interval until interrupted.

use std::sync::Arc;
use std::time::Instant;

use crate::fleet::view::{Pending, Summary};
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::transport::Transport;

pub fn run(inv: Arc<Inventory>, transport: &dyn Transport) -> i32 {
    let Some(runtime) = crate::app::runtime() else {
        return crate::app::EXIT_CANNOT_RUN;
    };
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _following = transport.follow(&inv, tx);
        let mut state = FleetState::new(Arc::clone(&inv));
        let mut tick = tokio::time::interval(inv.settings.interval);
        // Messages are merged in batches on a timer: awaiting each one would wake this task once per
        // sample per node, a thousand times a second at fleet size.
        let mut merge = tokio::time::interval(crate::tui::MERGE_EVERY);
        loop {
            tokio::select! {
                _ = merge.tick() => {
                    while let Ok(msg) = rx.try_recv() {
                        state.apply(msg);
                    }
                }
                _ = tick.tick() => {
                    while let Ok(msg) = rx.try_recv() {
                        state.apply(msg);
                    }
                    let views = state.node_views(Instant::now(), Pending::Connecting);
                    let s = Summary::of(&views);
                    let line = format!(
                        "{} nodes, {} up, {}/{} GPUs, {} warn, {} crit, {:.1} kW",
                        s.nodes, s.nodes_up, s.gpus_seen, s.gpus_expected, s.warn, s.crit, s.power_watts / 1000.0
                    );
                    // `fleetop | head -1`: the reader went away, which ends the line mode normally.
                    if !crate::text::println(&line) {
                        return 0;
                    }
                }
                _ = tokio::signal::ctrl_c() => return 0,
            }
        }
    })
}
