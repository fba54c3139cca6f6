//! The demo fleet as an `App` after some samples per node, at the simulator's fixed seed: the fixture of the TUI
//! snapshot tests and the fleet the render benchmark draws.

use std::sync::Arc;
use std::time::Instant;

use super::state::App;
use crate::inventory::Inventory;
use crate::transport::sim;
use crate::tui::keymap::Keymap;

/// An `App` holding the demo fleet after `ticks` samples per node, at a fixed seed; the clock is `now`.
pub fn demo_app(ticks: u64, now: Instant) -> App {
    fleet_app(Arc::new(Inventory::demo()), ticks, now)
}

/// Any inventory's fleet, simulated as the demo's is, with `ticks` samples of history per node.
pub fn fleet_app(inventory: Arc<Inventory>, ticks: u64, now: Instant) -> App {
    let mut app = App::new(Arc::clone(&inventory), Keymap::default(), now);
    let interval = inventory.settings.interval;
    for tick in 0..ticks {
        let at = now - interval * u32::try_from(ticks - 1 - tick).unwrap_or(0);
        for msg in sim::messages(&inventory, sim::DEMO_SEED, tick, at) {
            app.on_msg(msg);
        }
    }
    app.tick(now);
    app.refresh();
    app
}
