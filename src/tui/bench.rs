//! `fleetop --demo --bench-render N` and `--bench-memory SECS` (built with `--features bench`, as
//! `scripts/bench-fleet` builds it): renders N frames of the full demo fleet off-screen and prints frame times,
//! or holds the demo fleet's history and prints the peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{demo_app, fleet_app, View};
use super::theme::Theme;
use super::ui;
use crate::inventory::Inventory;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Renders `frames` frames of each view at 200×50 for `inventory`'s fleet (simulated); returns the report
/// printed by the CLI.
pub fn run(frames: usize, inventory: Inventory) -> String {
    let frames = frames.max(1);
    let started = Instant::now();
    let mut app = fleet_app(Arc::new(inventory), 60, Instant::now());
    let build = started.elapsed();
    let refresh = {
        let t = Instant::now();
        app.refresh();
        t.elapsed()
    };
    app.viewport = (200, 50);
    let theme = Theme::default();
    let mut out = format!(
        "{} fleet: {} nodes, {} GPUs, 60 samples of history each (built in {:.0} ms)\n\
         refresh (rows, verdicts, tenants; at most 4×/s): {:.2} ms\n\
         {:<10} {:>8} {:>8} {:>8}   (200×50, {frames} frames each, off-screen)\n",
        app.fleet.inventory().source,
        app.fleet.nodes().len(),
        app.totals.summary.gpus_seen,
        build.as_secs_f64() * 1e3,
        refresh.as_secs_f64() * 1e3,
        "view",
        "median",
        "p99",
        "max"
    );
    for view in [View::Overview, View::Nodes, View::Detail, View::Tenants] {
        app.view = view;
        let mut terminal = match Terminal::new(TestBackend::new(200, 50)) {
            Ok(t) => t,
            Err(e) => return format!("cannot create the off-screen terminal: {e}"),
        };
        let mut times = Vec::with_capacity(frames);
        for i in 0..frames {
            // Move the selection so frames differ, as they would with live data.
            app.selected = (i * 7) % app.fleet.nodes().len();
            let t = Instant::now();
            let _ = terminal.draw(|f| ui::render(&app, &theme, f));
            times.push(t.elapsed());
        }
        times.sort();
        out += &format!(
            "{:<10} {:>6.2}ms {:>6.2}ms {:>6.2}ms\n",
            view.title(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    out
}

/// Builds the demo fleet with `secs` samples of 1 Hz history per node (the rings keep at most 10 minutes)
/// and reports the process's peak RSS.
pub fn memory(secs: u64) -> String {
    let started = Instant::now();
    let app = demo_app(secs.max(1), Instant::now());
    format!(
        "demo fleet: {} nodes, {} GPUs, {} samples of history each (ring capacity {}), built in {:.1} s\npeak RSS: {:.1} MiB\n",
        app.fleet.nodes().len(),
        app.totals.summary.gpus_seen,
        secs,
        app.fleet.history_len(),
        started.elapsed().as_secs_f64(),
        crate::timings::peak_rss_mib()
    )
}
