//! The one way a repair starts, for `fleetop repair` and the TUI alike: where its state is saved, the refusal
//! while another repair is unfinished, each node's remedy diagnosed before the drain changes anything, and (for the TUI) the run on a thread of its own under the same lock.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::remedy;
use super::run::run;
use super::store;
use super::workflow::{Context, Event, Limits, Workflow};
use crate::actions::exec::Executor;
use crate::actions::Request;
use crate::inventory::{Inventory, NodeId};

/// Where the repair in progress is saved (and locked), so `fleetop repair --resume` finds it.
pub(crate) fn state_path() -> Result<PathBuf, String> {
    store::default_path()
        .ok_or_else(|| "no state directory: set HOME or XDG_STATE_HOME".to_string())
}

/// Why a new repair may not start while `saved` is unfinished.
pub fn unfinished(saved: &Workflow) -> String {
    format!(
        "an unfinished repair of {} ({}) started {}: fleetop repair --resume or --abandon it first",
        node_names(saved),
        saved.reason,
        saved.started
    )
}

/// The workflow's nodes, by name, comma-separated.
pub(crate) fn node_names(wf: &Workflow) -> String {
    let all: Vec<&str> = wf.nodes.iter().map(|n| n.node.as_str()).collect();
    all.join(",")
}

/// A new workflow for `nodes`, each node's remedy diagnosed from what it says now, before the drain changes
/// anything.
pub(crate) fn new_workflow(
    inv: &Arc<Inventory>,
    nodes: &[NodeId],
    reason: &str,
    operator: &str,
    limits: Limits,
) -> Workflow {
    let mut wf = Workflow::new(inv, nodes, reason, operator, limits);
    let plans = remedy::diagnose(inv, nodes);
    for (n, plan) in wf.nodes.iter_mut().zip(plans) {
        n.plan = Some(plan);
    }
    wf
}

/// `repair done: 3 of 4 nodes back in service`.
pub fn done(wf: &Workflow) -> String {
    let failed = wf.failed();
    format!(
        "repair done: {} of {} nodes back in service",
        wf.nodes.len() - failed,
        wf.nodes.len()
    )
}

/// How a finished repair ended, as the TUI's journal takes it: `Ok` only when every node is back in service;
/// a node that failed makes it an error (the journal's crit line), never a green "repair done".
pub fn outcome(wf: &Workflow) -> Result<String, String> {
    match wf.failed() {
        0 => Ok(done(wf)),
        failed => Err(format!(
            "{failed} of {} nodes not back in service (each node's line says why)",
            wf.nodes.len()
        )),
    }
}

/// Starts the repair `request` asks for on a thread of its own, saving its state where `fleetop repair
/// --resume` finds it: each step goes to `report`, and how it ended to `ended`. A front end that quits leaves it
/// resumable from the command line.
pub fn spawn(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    request: Request,
    limits: Limits,
    mut report: impl FnMut(Event) + Send + 'static,
    ended: impl FnOnce(Result<String, String>) + Send + 'static,
) {
    let (inv, exec) = (Arc::clone(inv), Arc::clone(exec));
    // `ended` is shared with the thread so that a thread that cannot start still reports why: the front end
    // must not wait forever on a repair that never ran.
    let ended = Arc::new(std::sync::Mutex::new(Some(ended)));
    let ended_there = Arc::clone(&ended);
    let spawned = std::thread::Builder::new()
        .name("repair".into())
        .spawn(move || {
            let result = start_and_run(&inv, &exec, &request, limits, &mut report);
            if let Some(ended) = ended_there.lock().ok().and_then(|mut e| e.take()) {
                ended(result);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the repair thread: {e}");
        if let Some(ended) = ended.lock().ok().and_then(|mut e| e.take()) {
            ended(Err(format!("cannot start the repair thread: {e}")));
        }
    }
}

/// Takes the lock, refuses while another repair is unfinished, plans and runs the workflow to its end.
fn start_and_run(
    inv: &Arc<Inventory>,
    exec: &Executor,
    request: &Request,
    limits: Limits,
    report: &mut dyn FnMut(Event),
) -> Result<String, String> {
    let path = state_path()?;
    let _lock = store::lock(&path)?;
    if let Some(wf) = store::load(&path)?.filter(|w| !w.finished()) {
        return Err(unfinished(&wf));
    }
    let reason = request.reason.clone().unwrap_or_default();
    let mut wf = new_workflow(inv, &request.nodes, &reason, &request.operator, limits);
    let stop = AtomicBool::new(false);
    let ctx = Context {
        inv,
        exec,
        read_only: request.read_only,
        stop: &stop,
    };
    let mut save = |wf: &Workflow| store::save(&path, wf);
    run(&ctx, &mut wf, &mut save, report)?;
    store::remove(&path)?;
    outcome(&wf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair::Step;

    #[test]
    fn a_repair_with_a_failed_node_does_not_end_ok() {
        let inv = Inventory::demo();
        let limits = Limits {
            max_wait: std::time::Duration::from_secs(7200),
            kill_after: None,
            poll: std::time::Duration::from_secs(10),
        };
        let mut wf = Workflow::new(&inv, &[0, 1], "XID 79", "ana", limits);
        wf.nodes[0].step = Step::Done;
        wf.nodes[1].step = Step::Failed {
            why: "came back crit".into(),
        };
        let err = outcome(&wf).unwrap_err();
        assert!(err.starts_with("1 of 2 nodes not back in service"), "{err}");
        wf.nodes[1].step = Step::Done;
        assert_eq!(
            outcome(&wf),
            Ok("repair done: 2 of 2 nodes back in service".into())
        );
    }
}
