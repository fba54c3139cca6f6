//! `fleetop` with no subcommand: the TUI on a terminal, else plain live mode, which follows the fleet and
//! prints a one-line summary per interval until interrupted.

use std::sync::Arc;
use std::time::Instant;

use crate::actions::exec::Executor;
use crate::actions::{jobs, status};
use crate::cli::Global;
use crate::config::Config;
use crate::fleet::view::Summary;
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::transport::Transport;
use crate::tui::keymap::Keymap;
use crate::tui::{self, theme};
use crate::workload::Workload;

/// The TUI on a terminal; one summary line per interval when stdout is a pipe.
/// With `--replay DIR`, the TUI on that recording from `at` at `speed`.
pub fn run(g: &Global, interactive: bool, at: Option<&str>, speed: f64) -> i32 {
    if let Some(dir) = &g.replay {
        return replayed(g, dir, interactive, at, speed);
    }
    let mut g = g.clone();
    // After `:ctx NAME`: the view and filter the fresh TUI keeps, and the context to go back to if NAME fails.
    let mut resume: Option<tui::Resume> = None;
    let mut fallback: Option<Global> = None;
    loop {
        match setup(&g, interactive) {
            Ok((inv, transport, Some((theme, keymap, config_read_only)))) => {
                let options = tui::Options {
                    read_only: g.read_only || config_read_only,
                    simulated: g.demo,
                };
                let ended = tui::run(
                    inv,
                    transport.as_ref(),
                    (theme, keymap),
                    options,
                    resume.take(),
                );
                match ended {
                    tui::Ended::Exit(code) => return code,
                    tui::Ended::Switch {
                        context,
                        resume: kept,
                    } => {
                        fallback = Some(g.clone());
                        g.context = Some(context);
                        g.inventory = None;
                        g.demo = false;
                        resume = Some(kept);
                    }
                }
            }
            Ok((inv, transport, None)) => return lines(inv, transport.as_ref(), g.demo),
            Err(e) => match (fallback.take(), resume.as_mut()) {
                // The context switched to cannot be followed: back to the one before, saying why.
                (Some(previous), Some(kept)) => {
                    kept.status = Some(format!("ctx: {e}"));
                    g = previous;
                }
                _ => {
                    crate::text::warn(&e.to_string());
                    return EXIT_CANNOT_RUN;
                }
            },
        }
    }
}

type Setup = (
    Arc<Inventory>,
    Box<dyn Transport>,
    Option<(theme::Theme, Keymap, bool)>,
);

/// Everything that can fail on bad input fails here, before the terminal is touched.
fn setup(g: &Global, interactive: bool) -> Result<Setup, String> {
    super::load::prepare(g, false).and_then(|(inv, transport)| {
        if !interactive {
            return Ok((inv, transport, None));
        }
        let config = Config::load()?;
        // Said before the terminal is taken, where the operator reads it.
        if super::load::chosen_context(g).is_some() {
            for warning in super::load::shared_audit_logs(&config.contexts) {
                crate::text::warn(&warning);
            }
        }
        let theme = theme::choose(g.theme.as_deref(), config.theme.as_deref())?;
        let keymap = Keymap::default().with_overrides(&config.key_overrides())?;
        Ok((inv, transport, Some((theme, keymap, config.read_only))))
    })
}

/// `fleetop --replay DIR [--at TIME] [--speed N]`: the TUI on a recording.
fn replayed(
    g: &Global,
    dir: &std::path::Path,
    interactive: bool,
    at: Option<&str>,
    speed: f64,
) -> i32 {
    let setup = (|| {
        if !interactive {
            return Err(
                "--replay needs a terminal; for text, use snapshot --replay DIR --at TIME"
                    .to_string(),
            );
        }
        if !(speed.is_finite() && speed > 0.0) {
            return Err(format!("--speed: {speed} is not a positive number"));
        }
        let reader = crate::recording::Reader::open(dir)?;
        let at = match (at, reader.span()) {
            (None, _) | (_, None) => None,
            (Some(text), Some((_, last))) => {
                Some(crate::recording::parse_time(text, last).map_err(|e| format!("--at: {e}"))?)
            }
        };
        let config = Config::load()?;
        let theme = theme::choose(g.theme.as_deref(), config.theme.as_deref())?;
        let keymap = Keymap::default().with_overrides(&config.key_overrides())?;
        Ok((reader, at, theme, keymap))
    })();
    match setup {
        Ok((reader, at, theme, keymap)) => tui::replay::run(&reader, theme, keymap, at, speed),
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

/// `, 2 out of service: n0001 drained by root: psu swap; …` (nothing when every node is in service or unknown);
/// looked for only where the summary counted some.
fn out_of_service(state: &FleetState, now: Instant, summary: &Summary) -> String {
    const NAMED: usize = 4;
    if summary.out_of_service == 0 {
        return String::new();
    }
    let out: Vec<String> = (0..state.nodes().len())
        .filter_map(|id| {
            let o = state
                .operations(id, now)
                .filter(|o| o.activity.out_of_service())?;
            Some(format!(
                "{} {}",
                state.inventory().nodes[id].name,
                o.describe()
            ))
        })
        .collect();
    if out.is_empty() {
        return String::new();
    }
    let more = out.len().saturating_sub(NAMED);
    let mut text = format!(
        ", {} out of service: {}",
        out.len(),
        out[..out.len().min(NAMED)].join("; ")
    );
    if more > 0 {
        text += &format!("; and {more} more");
    }
    text
}

/// `, 3 jobs on 2 nodes` as the schedulers' latest answer has it; `(1 node's jobs unknown)` where a node's were
/// not asked (a site without a scheduler, `--context all`), `, perhaps more` where an answer was not whole.
fn running(workload: &Workload, nodes: usize) -> String {
    let all: Vec<usize> = (0..nodes).collect();
    let busy = all
        .iter()
        .filter(|&&n| !workload.jobs(n).is_empty())
        .count();
    let unknown = all.iter().filter(|&&n| !workload.knows(n)).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut text = format!(
        ", {} on {}",
        plural(workload.on(&all).len(), "job"),
        plural(busy, "node")
    );
    match unknown {
        0 => {}
        1 => text += " (1 node's jobs unknown)",
        n => text += &format!(" ({n} nodes' jobs unknown)"),
    }
    if workload.incomplete() {
        text += ", perhaps more";
    }
    text
}

/// How often the line mode merges telemetry.
const MERGE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How often the line mode asks the drain backends which nodes are out of service (as the TUI does).
const DRAIN_READBACK: std::time::Duration = std::time::Duration::from_secs(30);

/// One summary line per interval, for a pipe.
fn lines(inv: Arc<Inventory>, transport: &dyn Transport, demo: bool) -> i32 {
    let Some(runtime) = crate::runtime::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Drains read back go into fleet state through the same channel as the nodes' samples; the schedulers'
        // jobs (each site's, under `--context all`) come on their own, the latest answer kept.
        let (jobs_tx, mut jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        if !demo && inv.any_scheduler() {
            match Executor::real(&inv) {
                Ok(exec) => {
                    let exec = Arc::new(exec);
                    status::follow(&inv, &exec, tx.clone(), DRAIN_READBACK);
                    jobs::follow(&inv, &exec, jobs::READBACK_EVERY, move |w| {
                        jobs_tx.send(w).is_ok()
                    });
                }
                Err(e) => crate::text::warn(&format!("drain read-back: {e}")),
            }
        }
        let mut workload: Option<Workload> = None;
        let _following = transport.follow(&inv, tx);
        let mut state = FleetState::new(Arc::clone(&inv));
        // XIDs from before a GPU's last audited reset or reboot are history here too, as in the TUI and snapshot.
        state.note_resets(&crate::actions::resets::read_fleet(&inv));
        let mut tick = tokio::time::interval(inv.settings.interval);
        // Messages are merged in batches on a timer: awaiting each one would wake this task once per
        // sample per node, a thousand times a second at fleet size.
        let mut merge = tokio::time::interval(MERGE_EVERY);
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
                    // Totals from the judgements kept, without a view of each node each second.
                    let now = Instant::now();
                    let s = state.summary(now);
                    let mut line = format!(
                        "{} nodes, {} up, {}/{} GPUs, {} warn, {} crit, {:.1} kW",
                        s.nodes, s.nodes_up, s.gpus_seen, s.gpus_expected, s.warn, s.crit, s.power_watts / 1000.0
                    );
                    // The jobs before the nodes out of service, whose free-text reasons end the line.
                    line += &workload.as_ref().map_or(String::new(), |w| running(w, s.nodes));
                    line += &out_of_service(&state, now, &s);
                    // `fleetop | head -1`: the reader went away, which ends the line mode normally.
                    if !crate::text::println(&line) {
                        return 0;
                    }
                }
                Some(answer) = jobs_rx.recv() => workload = Some(answer),
                _ = tokio::signal::ctrl_c() => return 0,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::running;
    use crate::workload::{Scheduler, Workload};

    #[test]
    fn the_jobs_part_says_which_nodes_are_unknown_and_a_partial_answer() {
        let mut w = Workload::default();
        assert_eq!(
            running(&w, 2),
            ", 0 jobs on 0 nodes (2 nodes' jobs unknown)"
        );
        w.checked.push(Scheduler::Slurm);
        assert_eq!(running(&w, 2), ", 0 jobs on 0 nodes");
        w.unasked.insert(1);
        w.problems.push("squeue: 1 line not understood".into());
        assert_eq!(
            running(&w, 2),
            ", 0 jobs on 0 nodes (1 node's jobs unknown), perhaps more"
        );
    }
}
