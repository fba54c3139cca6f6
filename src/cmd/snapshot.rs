//! `fleetop snapshot`: one pass over the fleet, rendered as table, JSON, CSV or Prometheus text.

use std::time::{Duration, Instant};

use crate::actions::exec::Executor;
use crate::actions::status;
use crate::cli::{Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::inventory::Inventory;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::snapshot::{self, Report};
use crate::transport::{Msg, NodeEvent};
use crate::workload::operations::OperationEvent;
use crate::workload::Workload;

pub fn run(g: &Global, args: &SnapshotArgs) -> i32 {
    let mut phases = crate::timings::Phases::start();
    let filter = match Filter::parse(args.filter.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            crate::text::warn(&format!("--filter: {e}"));
            return EXIT_CANNOT_RUN;
        }
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        crate::text::warn(&format!(
            "--timeout: {} is not a number of seconds between 0 and 86400 (one day)",
            args.timeout
        ));
        return EXIT_CANNOT_RUN;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    if let Some(dir) = &g.replay {
        return super::replayed::snapshot(g, dir, args, &filter, timeout);
    }
    // `--at`: the fleet as its Prometheus store (each site's own, under `--context all`) held it then.
    let prepared = match args.at.as_deref().map(past) {
        None => super::load::prepare(g, true),
        Some(Ok(at)) => super::load::prepare_at(g, at),
        Some(Err(e)) => Err(e),
    };
    let (inv, transport) = match prepared {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e.to_string());
            return EXIT_CANNOT_RUN;
        }
    };
    phases.lap(format!(
        "start-up: configuration, inventory of {} nodes",
        inv.nodes.len()
    ));
    let Some(runtime) = crate::runtime::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    let started = Instant::now();
    // XIDs from before a GPU's last audited reset or reboot are history, not faults.
    let resets = crate::actions::resets::read_fleet(&inv);
    // The drain backends (each site's own, under `--context all`) are asked once each, beside the pass; a past
    // snapshot (`--at`) has no drains to ask.
    let (drains, jobs) = if args.at.is_none() && !g.demo {
        (
            beside(&inv, "drain-readback", status::query_every_site, |e| {
                vec![Err(e)]
            }),
            beside(
                &inv,
                "workload-readback",
                crate::actions::jobs::query,
                |e| Workload {
                    problems: vec![format!("jobs unknown: {e}")],
                    ..Workload::default()
                },
            ),
        )
    } else {
        (None, None)
    };
    let mut state = runtime.block_on(snapshot::collect(
        std::sync::Arc::clone(&inv),
        transport.as_ref(),
        timeout,
    ));
    state.note_resets(&resets);
    if let Some(drains) = drains {
        operations(&mut state, &drains, started + timeout);
    }
    let workload = jobs.map(|jobs| workload(&jobs, started + timeout));
    if args.at.is_none() {
        repairs(&mut state);
    }
    phases.lap("collect: until every node answered");
    if args.at.is_none() && !inv.simulated {
        remember(&mut state, &filter, started, timeout);
    }
    let mut report = Report::new(&state, &filter, started, Instant::now(), timeout);
    if let Some(workload) = &workload {
        report.note_workload(workload, &inv);
    }
    phases.lap("judge: views, verdicts, drift");
    let text = report.render(args.format);
    phases.lap(format!(
        "render {:?}: {:.1} MB",
        args.format,
        text.len() as f64 / 1e6
    ));
    // A reader that went away (`| head`) ends the output quietly; the verdict stands.
    crate::text::print(&text);
    if args.timings {
        phases.lap("write");
        let source = transport.timings().unwrap_or_default();
        eprint!("{}{source}", phases.render());
    }
    report.summary.exit_code(args.include_drained)
}

/// Tells the history store what this pass saw, and flags the nodes it names repeat offenders.
fn remember(
    state: &mut crate::fleet::FleetState,
    filter: &Filter,
    started: Instant,
    timeout: Duration,
) {
    use crate::fleet::memory;
    let stores = crate::actions::run::stores(state.inventory());
    let seen =
        memory::sightings(&Report::new(state, filter, started, Instant::now(), timeout).nodes);
    let lemons = memory::remember_in(&stores, &seen, crate::telemetry::unix_ms());
    state.note_lemons(&lemons);
}

/// One answer per site asked (one for a single site's inventory).
type DrainAnswer =
    Vec<Result<std::collections::HashMap<usize, crate::actions::status::NodeDrain>, String>>;

/// Starts asking the schedulers (Slurm, Kubernetes; each site's own under `--context all`) through `ask`, on a
/// thread of its own beside the pass, `or` standing for an answer when no executor can be made; `None` when the
/// inventory names no scheduler.
fn beside<T: Send + 'static>(
    inv: &std::sync::Arc<Inventory>,
    name: &str,
    ask: fn(&Inventory, &Executor) -> T,
    or: fn(String) -> T,
) -> Option<std::sync::mpsc::Receiver<T>> {
    if !inv.any_scheduler() {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let inv = std::sync::Arc::clone(inv);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let answer = match Executor::real(&inv) {
                Ok(exec) => ask(&inv, &exec),
                Err(e) => or(e),
            };
            let _ = tx.send(answer);
        })
        .ok()?;
    Some(rx)
}

/// The schedulers' answer, waited for until `deadline` (the pass's own): without one every node's jobs are
/// unknown (`null`); stderr says what a scheduler could not tell.
fn workload(jobs: &std::sync::mpsc::Receiver<Workload>, deadline: Instant) -> Workload {
    let wait = deadline.saturating_duration_since(Instant::now());
    let workload = jobs.recv_timeout(wait).unwrap_or_else(|_| Workload {
        problems: vec!["jobs unknown: no answer within the snapshot's timeout".into()],
        ..Workload::default()
    });
    for problem in &workload.problems {
        crate::text::warn(&format!("warning: {problem}"));
    }
    workload
}

/// Files the drain backends' answer into fleet state, waiting for it until `deadline` (the pass's own): without
/// an answer the nodes' operations stay unknown (`null`), and stderr says why.
fn operations(
    state: &mut crate::fleet::FleetState,
    drains: &std::sync::mpsc::Receiver<DrainAnswer>,
    deadline: Instant,
) {
    let wait = deadline.saturating_duration_since(Instant::now());
    let answers = drains
        .recv_timeout(wait)
        .unwrap_or_else(|_| vec![Err("no answer within the snapshot's timeout".into())]);
    for answer in answers {
        match answer {
            Ok(states) => {
                let at = Instant::now();
                for (node, drain) in states {
                    state.apply(Msg {
                        node,
                        at,
                        event: NodeEvent::Operation(OperationEvent::Drain(drain)),
                    });
                }
            }
            Err(e) => crate::text::warn(&format!(
                "drain read-back: {e}; drained nodes are not known and count for the exit status"
            )),
        }
    }
}

/// Nodes a running repair works on (`fleetop repair`, or one started in the TUI, as this user's state directory
/// holds it) are in repair; a repair that stopped is not, and its nodes stay as their drain shows them.
fn repairs(state: &mut crate::fleet::FleetState) {
    use crate::repair::store;
    let Some(path) = store::default_path() else {
        return;
    };
    // A repair runs only while its process holds the lock: a stopped one (its TUI still open) holds no node.
    if store::lock(&path).is_ok() {
        return;
    }
    let wf = match store::load(&path) {
        Ok(Some(wf)) if !wf.finished() => wf,
        Ok(_) => return,
        Err(e) => {
            crate::text::warn(&format!("repair state: {e}"));
            return;
        }
    };
    // A repair of another inventory (the demo's practice fleet shares node names with the real one) holds none
    // of these nodes; under `--context all`, it holds the nodes of the site whose inventory it repairs.
    let at = Instant::now();
    let inv = std::sync::Arc::clone(state.inventory());
    for n in wf.nodes.iter().filter(|n| !n.step.finished()) {
        let Some(node) = inv.find_node_of(&wf.inventory, &n.node) else {
            continue;
        };
        let text = format!("repair: {} ({})", n.step.label(), wf.reason);
        let event = OperationEvent::Repair {
            text: crate::text::escape(&text).into_owned(),
            active: true,
            by: Some(crate::text::escape(&wf.operator).into_owned()),
        };
        state.apply(Msg {
            node,
            at,
            event: NodeEvent::Operation(event),
        });
    }
}

/// `--at`: an RFC 3339 time (`2026-11-27T03:12:00Z`), a UTC time of day (`03:12`) or an age before now (`2h`),
/// read by the one time rule recordings use too.
fn past(text: &str) -> Result<std::time::SystemTime, String> {
    crate::recording::parse_time(text, crate::telemetry::unix_ms())
        .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms))
        .map_err(|e| format!("--at: {e}"))
}

#[cfg(test)]
mod at_tests {
    use super::past;

    #[test]
    fn an_age_before_the_epoch_is_refused_not_read_as_1970() {
        let err = past("1000000000years").unwrap_err();
        assert!(err.contains("before 1970-01-01"), "{err}");
        assert!(past("60years").is_err());
        let hour = past("1h").unwrap();
        assert!(hour > std::time::UNIX_EPOCH);
        assert!(past("2026-11-27T03:12:00Z").is_ok());
        assert!(past("soon").unwrap_err().contains("neither a time"));
    }
}
