//! `FLEETOP_BENCH_ONLY=ledger`: what `fleetop report` costs per recorded message on the demo fleet (1,025 nodes ×
//! 8 GPUs at 1 Hz), against following the same messages in the same run: every message applied to fleet state
//! and every node judged once a second, as the TUI's rows are. In-process, on the simulated fleet's messages
//! (`sim::messages`, what `--demo`'s transport sends) over `FLEETOP_BENCH_LEDGER_SECS` of recorded time; the
//! reader's own cost (decompressing segments) is the record scenario's seek figure, not counted here.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetop::fleet::view::Pending;
use fleetop::fleet::FleetState;
use fleetop::inventory::Inventory;
use fleetop::ledger::repairs::Overlay;
use fleetop::ledger::{Cause, Ledger};
use fleetop::transport::Msg;

pub(crate) fn ledger(seconds: u64) -> String {
    let inv = Arc::new(Inventory::demo());
    let wall0 = 1_795_489_200_000u64;
    let base = Instant::now();
    eprintln!("ledger: {seconds} s of the demo fleet, in-process…");
    let batches: Vec<Vec<Msg>> = (0..seconds)
        .map(|tick| {
            fleetop::transport::sim::messages(&inv, 2026, tick, base + Duration::from_secs(tick))
        })
        .collect();
    let messages: usize = batches.iter().map(Vec::len).sum();

    let started = Instant::now();
    let mut state = FleetState::new(Arc::clone(&inv));
    for (tick, batch) in (0u64..).zip(&batches) {
        for m in batch {
            state.apply(m.clone());
        }
        let now = base + Duration::from_secs(tick);
        for id in 0..inv.nodes.len() {
            black_box(state.node_view(id, now, Pending::Connecting));
        }
    }
    let follow = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let window = (wall0, wall0 + seconds * 1000);
    let mut ledger = Ledger::new(Arc::clone(&inv), window, Overlay::default());
    for (tick, batch) in (0u64..).zip(&batches) {
        for m in batch {
            ledger.feed(wall0 + tick * 1000, m.clone());
        }
    }
    let hours = ledger.finish(window.1);
    let booked = started.elapsed().as_secs_f64();
    let healthy: u64 = hours.gpus.iter().flatten().map(|t| t.healthy_ms).sum();
    let unreachable: u64 = hours
        .gpus
        .iter()
        .flatten()
        .map(|t| t.lost(Cause::Unreachable))
        .sum();

    let per = |secs: f64| secs * 1e6 / messages.max(1) as f64;
    let week = booked / seconds.max(1) as f64 * 7.0 * 86_400.0;
    format!(
        "ledger over {seconds} s of the demo fleet ({} nodes, {messages} messages)\n\
         following (apply + judge every node once a second): {follow:.2} s, {:.2} µs a message\n\
         ledger (apply + judge the node at each of its messages): {booked:.2} s, {:.2} µs a message, \
         {:.2}× following\n\
         a week of this fleet: about {:.0} min of one core\n\
         booked: {:.1} GPU-hours healthy, {:.1} unreachable\n",
        inv.nodes.len(),
        per(follow),
        per(booked),
        booked / follow.max(1e-9),
        week / 60.0,
        healthy as f64 / 3.6e6,
        unreachable as f64 / 3.6e6,
    )
}
