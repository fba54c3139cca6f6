//! `fleetop record`: follows the fleet as the TUI does (same transport, same channel, the drain and jobs
//! read-backs) and writes every message and scheduler answer into a recording; the history store hears what the fleet shows, as from the TUI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::actions::exec::Executor;
use crate::actions::status;
use crate::cli::{Global, RecordArgs};
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::recording::{Options, Writer};
use crate::runtime::EXIT_CANNOT_RUN;
use crate::transport::NodeEvent;

/// The recorder beats this often: a second with nothing to write still says it ran, and every
/// `recording::BEATS_PER_BLOCK` beats a block is written (a recorder killed outright loses at most that; Ctrl-C and
/// SIGTERM write it first).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the channel is drained into the recording.
const MERGE_EVERY: Duration = Duration::from_millis(250);
/// How often the drain backends are asked which nodes are out of service (as the TUI does).
const DRAIN_READBACK: Duration = Duration::from_secs(30);
/// How often the history store hears what the fleet shows (as from the TUI).
const MEMORY_EVERY: Duration = Duration::from_secs(30);

pub fn run(g: &Global, args: &RecordArgs) -> i32 {
    if super::load::every_site_chosen(g) {
        return record_every_site(g, args);
    }
    let started = super::load::prepare(g, false).and_then(|(inv, transport)| {
        let dir = args
            .out
            .clone()
            .or_else(crate::recording::default_dir)
            .ok_or(
            "no state directory for the recording: pass --out DIR, or set HOME or XDG_STATE_HOME",
        )?;
        let options = Options {
            period: args.segment,
            retain: args.retain,
        };
        let writer = Writer::create(&dir, &inv, &inventory_text(&inv)?, options)?;
        Ok((inv, transport, writer, dir))
    });
    let (inv, transport, mut writer, dir) = match started {
        Ok(s) => s,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let Some(runtime) = crate::runtime::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    crate::text::warn(&format!(
        "recording {} nodes into {} (Ctrl-C ends it)",
        inv.nodes.len(),
        crate::text::escape(&dir.display().to_string())
    ));
    let status = runtime.block_on(follow(&inv, transport.as_ref(), &mut writer, g.demo));
    if writer.dropped > 0 {
        crate::text::warn(&format!(
            "{} frames past the frame size cap were not recorded",
            writer.dropped
        ));
    }
    match (status, writer.close()) {
        (Ok(()), Ok(())) => 0,
        (Err(e), _) | (_, Err(e)) => {
            crate::text::warn(&format!("recording: {e}"));
            1
        }
    }
}

/// The directory of site `site`'s recording in a recording of every site (`--context all`): `DIR/SITE/`.
pub(super) fn site_dir(dir: &std::path::Path, site: &str) -> std::path::PathBuf {
    dir.join(site)
}

/// Refuses sites whose names differ only in case: on a case-insensitive file system (macOS's default) their
/// [`site_dir`]s are one directory, which two recorders would write at once.
fn distinct_dirs(names: &[String]) -> Result<(), String> {
    for (k, name) in names.iter().enumerate() {
        if let Some(other) = names[..k].iter().find(|o| o.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "record --context all: sites {other:?} and {name:?} differ only in case, and their recordings \
                 (DIR/SITE/) would be one directory on a case-insensitive file system: rename one [[context]]"
            ));
        }
    }
    Ok(())
}

/// `--context all`: each site recorded as `--context SITE` records it, into [`site_dir`], on a thread of its own
/// with its own transport and runtime (Ctrl-C ends them all); the worst status of them.
fn record_every_site(g: &Global, args: &RecordArgs) -> i32 {
    let dir = args.out.clone().or_else(crate::recording::default_dir);
    let (names, dir) = match (super::load::site_names(), dir) {
        (Ok(names), Some(dir)) => (names, dir),
        (Err(e), _) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
        (_, None) => {
            crate::text::warn(
                "no state directory for the recording: pass --out DIR, or set HOME or XDG_STATE_HOME",
            );
            return EXIT_CANNOT_RUN;
        }
    };
    if let Err(e) = distinct_dirs(&names) {
        crate::text::warn(&e);
        return EXIT_CANNOT_RUN;
    }
    let recorders: Vec<_> = names
        .into_iter()
        .map(|site| {
            let mut own = g.clone();
            own.context = Some(site.clone());
            let args = RecordArgs {
                out: Some(site_dir(&dir, &site)),
                retain: args.retain,
                segment: args.segment,
            };
            std::thread::spawn(move || run(&own, &args))
        })
        .collect();
    recorders
        .into_iter()
        .map(|r| r.join().unwrap_or(1))
        .max()
        .unwrap_or(EXIT_CANNOT_RUN)
}

/// The inventory's text as the recording keeps it: the file it was read from, or the demo's built-in one.
fn inventory_text(inv: &Inventory) -> Result<String, String> {
    // A recording holds one inventory's text, and a replay reads its nodes from it: several sites' are not one
    // file (`--context all` records each site into a directory of its own).
    if !inv.merged_sites().is_empty() {
        return Err("a recording holds one site's inventory".into());
    }
    if inv.simulated {
        return Ok(crate::inventory::DEMO_INVENTORY.to_string());
    }
    let text = std::fs::read_to_string(&inv.source).map_err(|e| format!("{}: {e}", inv.source))?;
    // The file changed since it was read: the recording would name other nodes.
    let again = Inventory::parse(&inv.source, &text).map_err(|e| e.to_string())?;
    if again.nodes.len() != inv.nodes.len()
        || again
            .nodes
            .iter()
            .zip(&inv.nodes)
            .any(|(a, b)| a.name != b.name)
    {
        return Err(format!(
            "{}: changed while fleetop read it; try again",
            inv.source
        ));
    }
    Ok(text)
}

async fn follow(
    inv: &Arc<Inventory>,
    transport: &dyn crate::transport::Transport,
    writer: &mut Writer,
    demo: bool,
) -> Result<(), String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (jobs_tx, mut jobs_rx) = tokio::sync::mpsc::unbounded_channel();
    let executor = if demo {
        Some(Executor::simulated())
    } else {
        Executor::real(inv)
            .map_err(|e| {
                if inv.any_scheduler() {
                    crate::text::warn(&format!("drain and jobs read-back: {e}"));
                }
            })
            .ok()
    };
    if let Some(exec) = executor.map(Arc::new) {
        if !demo && inv.any_scheduler() {
            status::follow(inv, &exec, tx.clone(), DRAIN_READBACK);
        }
        // The jobs on each node, asked as the TUI asks.
        let every = crate::actions::jobs::READBACK_EVERY;
        crate::actions::jobs::follow(inv, &exec, every, move |w| jobs_tx.send(w).is_ok());
    }
    let _following = transport.follow(inv, tx);
    let mut state = FleetState::new(Arc::clone(inv));
    state.note_resets(&crate::actions::resets::read_fleet(inv));
    let stores = crate::actions::run::stores(inv);
    let mut merge = tokio::time::interval(MERGE_EVERY);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    // A late tick waits its period rather than firing at once: behind, merging must leave room for the flush.
    merge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut memory = tokio::time::interval(MEMORY_EVERY);
    memory.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Ctrl-C and SIGTERM (systemd, kill) are heard on a task of their own and stop a merge between two
    // messages: a backlog (a slow disk, a busy machine) must not keep the recorder from ending, and the block
    // being filled is written when it does.
    let interrupted = Arc::new(AtomicBool::new(false));
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    let flag = Arc::clone(&interrupted);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("listen for SIGTERM: {e}"))?;
    tokio::spawn(async move {
        tokio::select! {
            Ok(()) = tokio::signal::ctrl_c() => {}
            Some(()) = terminate.recv() => {}
            else => return,
        }
        flag.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(());
    });
    loop {
        tokio::select! {
            biased;
            Ok(()) = &mut stop => return Ok(()),
            _ = merge.tick() => {
                let (now, wall) = (Instant::now(), crate::telemetry::unix_ms());
                // Only what was queued when the pass began: a recorder behind a busy fleet would otherwise merge
                // for ever while messages keep coming, and no block would be flushed.
                let queued = rx.len();
                let mut merged = 0usize;
                while merged < queued && !interrupted.load(Ordering::Relaxed) {
                    let Ok(msg) = rx.try_recv() else { break };
                    // The runtime has one thread: yielding now and then lets the Ctrl-C task run.
                    merged += 1;
                    if merged.is_multiple_of(256) {
                        tokio::task::yield_now().await;
                    }
                    let age = u64::try_from(now.saturating_duration_since(msg.at).as_millis()).unwrap_or(0);
                    // A compact stream's delta is recorded as the whole sample fleet state made of it.
                    if let NodeEvent::Delta(_) = msg.event {
                        let node = msg.node;
                        state.apply(msg);
                        if let Some(sample) = state.nodes().get(node).and_then(|n| n.sample.as_ref()) {
                            writer.write_sample(wall.saturating_sub(age), node, sample)?;
                        }
                        continue;
                    }
                    writer.write(wall.saturating_sub(age), &msg)?;
                    // Fleet state serves the history store and holds the samples deltas patch.
                    state.apply(msg);
                }
            }
            Some(workload) = jobs_rx.recv() => {
                writer.write_workload(crate::telemetry::unix_ms(), &workload)?;
            }
            _ = flush.tick() => writer.beat(crate::telemetry::unix_ms())?,
            _ = memory.tick(), if !inv.simulated => {
                let views = state.node_views(Instant::now(), crate::fleet::view::Pending::Connecting);
                let seen = crate::fleet::memory::sightings(&views);
                let stores = stores.clone();
                // SQLite may wait for another writer; the recording must not.
                tokio::task::spawn_blocking(move || {
                    crate::fleet::memory::remember_in(&stores, &seen, crate::telemetry::unix_ms())
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sites_whose_names_differ_only_in_case_are_not_recorded_into_one_directory() {
        let names = |n: &[&str]| -> Vec<String> { n.iter().map(|s| s.to_string()).collect() };
        assert!(super::distinct_dirs(&names(&["east", "west", "east-2"])).is_ok());
        let refused = super::distinct_dirs(&names(&["east", "west", "East"])).unwrap_err();
        assert!(refused.contains("\"east\" and \"East\""), "{refused}");
    }
}
