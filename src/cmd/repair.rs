//! `fleetop repair NODESET --reason TEXT` (and `--resume`, `--abandon`): the repair workflow on the command
//! line, progress on stderr. Exit status: 0 every node repaired, 1 some node failed or the run was
//! interrupted (resumable), 2 refused, 3 bad input.

use std::sync::atomic::{AtomicBool, Ordering};

use super::actions::{confirm_count, refused, resolve_nodes};
use crate::actions::exec::Executor;
use crate::actions::{self, jobs};
use crate::cli::{Global, RepairArgs};
use crate::repair::{self, start, store, Context, Event, Limits, Workflow};
use crate::runtime::{EXIT_CANNOT_RUN, EXIT_FAILED};

/// Set by SIGINT: the workflow stops after its current step, its state saved.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

pub fn run(g: &Global, args: &RepairArgs) -> i32 {
    match repair_run(g, args) {
        Ok(code) => code,
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

fn repair_run(g: &Global, args: &RepairArgs) -> Result<i32, String> {
    // `--resume` and `--abandon` name no nodes: under `--context all` they need the site's own `--context`.
    let (g, nodeset) = super::load::site_scoped(g, args.nodes.as_deref().unwrap_or_default())?;
    let g = &g;
    let path = start::state_path()?;
    // One repair at a time: the lock is held until this process ends, so two repairs started together cannot
    // both load the state, and the one that loses says who runs.
    let _lock = if args.dry_run {
        None
    } else {
        match store::lock(&path) {
            Ok(lock) => Some(lock),
            Err(why) => return Ok(refused(&[why])),
        }
    };
    if args.abandon {
        return abandon(&path);
    }
    let saved = store::load(&path)?;
    let inv = std::sync::Arc::new(super::load::load_inventory(g)?);
    let read_only = g.read_only || crate::config::Config::load()?.read_only;
    let mut wf = if args.resume {
        // This process holds the repair lock, so no other process runs this workflow now (a TUI whose repair
        // stopped keeps running, but no longer holds it).
        let wf = saved.ok_or("no unfinished repair to resume")?;
        if wf.inventory != inv.source {
            return Ok(refused(&[format!(
                "the repair was started with inventory {}; resume it with --inventory {}",
                wf.inventory, wf.inventory
            )]));
        }
        wf
    } else {
        if let Some(wf) = saved.filter(|w| !w.finished()) {
            return Ok(refused(&[start::unfinished(&wf)]));
        }
        let reason = args
            .reason
            .clone()
            .filter(|r| !r.trim().is_empty())
            .ok_or("repair needs --reason TEXT")?;
        let nodes = resolve_nodes(&inv, &nodeset)?;
        let limits = Limits {
            max_wait: args.max_wait,
            kill_after: args.kill_after,
            poll: args.poll,
        };
        start::new_workflow(&inv, &nodes, &reason, &actions::operator(), limits)
    };
    wf.pid = std::process::id();
    let exec = if g.demo {
        Executor::simulated()
    } else {
        Executor::real(&inv)?
    };
    let ids: Vec<usize> = wf
        .nodes
        .iter()
        .filter_map(|n| inv.find_node(&n.node))
        .collect();
    let workload = jobs::query(&inv, &exec);
    for p in &workload.problems {
        crate::text::warn(&format!("warning: {p}"));
    }
    if let Some(hits) = workload.hits(&ids, 5) {
        crate::text::warn(&format!("repair waits for {hits}"));
    }
    // Each node's remedy and why, before anything runs.
    for n in &wf.nodes {
        if let (Some(id), Some(plan)) = (inv.find_node(&n.node), &n.plan) {
            let line = repair::remedy_lines(&inv, &[id], std::slice::from_ref(plan));
            crate::text::warn(&line.join(""));
        }
    }
    if args.dry_run {
        return dry_run(&inv, &exec, &wf, &ids);
    }
    if crate::actions::read_only(read_only, &inv) {
        return Ok(refused(&[
            "read-only: repair drains and reboots nodes".into()
        ]));
    }
    if ids.len() > 1 && !args.yes && !args.resume {
        let lines: Vec<String> = ids
            .iter()
            .map(|&n| {
                let jobs = workload
                    .hits(&[n], 2)
                    .unwrap_or_else(|| "jobs unknown".into());
                format!("{}: {jobs}", inv.nodes[n].name)
            })
            .collect();
        if let Err(why) = confirm_count("repair", &lines) {
            return Ok(refused(&[why]));
        }
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    let ctx = Context {
        inv: &inv,
        exec: &exec,
        read_only,
        stop: &INTERRUPTED,
    };
    let mut save = |wf: &Workflow| store::save(&path, wf);
    let mut report = |event: Event| {
        crate::text::warn(&match event {
            Event::Step { node, step, note } if note.is_empty() => {
                format!("{node}: {}", step.label())
            }
            Event::Step { node, step, note } => format!("{node}: {} — {note}", step.label()),
            Event::Problem(p) => format!("warning: {p}"),
        });
    };
    let result = repair::run(&ctx, &mut wf, &mut save, &mut report);
    if let Err(e) = result {
        crate::text::warn(&format!(
            "stopped: {e}; the state is kept in {}: fleetop repair --resume",
            path.display()
        ));
        return Ok(EXIT_FAILED);
    }
    if !wf.finished() {
        crate::text::warn(&format!(
            "interrupted; the state is kept in {}: fleetop repair --resume goes on",
            path.display()
        ));
        return Ok(EXIT_FAILED);
    }
    store::remove(&path)?;
    let outcome = start::outcome(&wf);
    crate::text::warn(outcome.as_ref().unwrap_or_else(|why| why));
    Ok(if outcome.is_err() { EXIT_FAILED } else { 0 })
}

/// `--dry-run`: each node's remedy and why (stderr), then every command the repair may run (stdout), the
/// validation where one is configured, and the nodes a lemon would hold.
fn dry_run(
    inv: &std::sync::Arc<crate::inventory::Inventory>,
    exec: &Executor,
    wf: &Workflow,
    ids: &[usize],
) -> Result<i32, String> {
    let plans: Vec<repair::remedy::Plan> = wf
        .nodes
        .iter()
        .filter(|n| inv.find_node(&n.node).is_some())
        .map(|n| {
            n.plan
                .clone()
                .unwrap_or_else(|| repair::remedy::Plan::unknown("no remedy saved"))
        })
        .collect();
    let log = actions::run::audit_path(inv);
    let now = std::time::SystemTime::now();
    let mut checks = Vec::new();
    for (&id, plan) in ids.iter().zip(&plans) {
        let name = &inv.nodes[id].name;
        if let Some(held) = repair::history::held(
            &log,
            actions::run::scope(inv),
            &inv.actions.repair,
            name,
            plan,
            now,
        ) {
            crate::text::warn(&format!("{name}: {held}: the repair stops after the drain"));
        }
        match repair::validate::command_for(exec, inv, id) {
            Ok(Some(c)) => checks.push(format!("ssh {name} -- {}", crate::text::escape(&c))),
            Ok(None) => crate::text::warn(&format!("{name}: no validation configured")),
            Err(e) => crate::text::warn(&format!(
                "{name}: cannot tell whether dcgmi is installed ({e}): the repair will fail its validation"
            )),
        }
    }
    for command in repair::commands(inv, ids, &plans, &checks, &wf.reason, &wf.operator)? {
        crate::text::println(&command);
    }
    Ok(0)
}

/// `--abandon`: forgets the saved repair, its nodes left as they are. A state file that cannot be read is moved
/// aside (kept for a look), never a reason to refuse: abandoning is the way out of it.
fn abandon(path: &std::path::Path) -> Result<i32, String> {
    match store::read(path) {
        Ok(Some(wf)) => {
            store::remove(path)?;
            crate::text::warn(&format!(
                "abandoned the repair of {} started {} ({}); its nodes stay as they are",
                start::node_names(&wf),
                wf.started,
                wf.reason
            ));
        }
        Ok(None) => crate::text::warn("no unfinished repair"),
        Err(why) => {
            let aside = store::move_aside(path)?;
            crate::text::warn(&format!(
                "{why}; moved it aside to {}: the nodes it named stay as they are (drained ones need an \
                 undrain by hand once repaired)",
                aside.display()
            ));
        }
    }
    Ok(0)
}
