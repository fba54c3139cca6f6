//! The workflow's steps, each advancing every node that stands at it: drain (or hold a lemon), wait for jobs
//! (and `--kill-after`), reboot, wait until back, undrain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::act::{act, nodes_in, request, set};
use super::audited::{audit_intent, audit_outcome, audit_wait, close_wait};
use super::workflow::{now_ms, Context, Event, Step, Workflow, REASON_PREFIX};
use crate::actions::exec::Executor;
use crate::actions::jobs;
use crate::actions::status::{self, DrainState};
use crate::actions::ActionKind;
use crate::fleet::restart::{judge_return, Look, Return};
use crate::inventory::NodeId;
use crate::telemetry::health::Health;

pub(super) fn drain(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| *s == Step::Drain);
    if waiting.is_empty() {
        return Ok(());
    }
    // A resumed repair finds its own drain done already: it does not drain twice.
    let ids: Vec<NodeId> = waiting.iter().map(|&(_, id)| id).collect();
    let states = status::query(ctx.inv, ctx.exec, &ids).unwrap_or_default();
    let mut to_drain = Vec::new();
    let log = crate::actions::run::audit_path(ctx.inv);
    for &(i, id) in &waiting {
        // A GPU repaired too often for the same cause is not repaired again: drained, held for inspection.
        let held = wf.nodes[i].plan.as_ref().and_then(|plan| {
            super::history::held(
                &log,
                crate::actions::run::scope(ctx.inv),
                &ctx.inv.actions.repair,
                &wf.nodes[i].node,
                plan,
                std::time::SystemTime::now(),
            )
        });
        if let Some(held) = held {
            hold(ctx, wf, i, id, &held, report)?;
            continue;
        }
        match states.get(&id) {
            Some(d)
                if d.ours() && matches!(d.state, DrainState::Drained | DrainState::Draining) =>
            {
                enter_wait_jobs(ctx, wf, i, "already drained by fleetop".into(), report)?;
            }
            _ => to_drain.push((i, id)),
        }
    }
    if !to_drain.is_empty() {
        let req = request(
            ctx,
            wf,
            ActionKind::Drain,
            to_drain.iter().map(|&(_, id)| id).collect(),
            format!("{REASON_PREFIX}{}", wf.reason),
        );
        for (node, result) in act(ctx, &req)? {
            let Some(&(i, _)) = to_drain.iter().find(|&&(_, id)| id == node) else {
                continue;
            };
            match result {
                Ok(command) => enter_wait_jobs(ctx, wf, i, format!("drained ({command})"), report)?,
                Err(why) => set(wf, i, Step::Failed { why }, String::new(), report),
            }
        }
    }
    save(wf)
}

/// Drains node `i` with the hold as its reason and stops its repair there.
fn hold(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    id: NodeId,
    held: &str,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let why = match drain_saying(ctx, wf, id, held)? {
        Some(Ok(command)) => format!("{held}; drained ({command}), not repaired again"),
        Some(Err(e)) => format!("{held}; not repaired again, and the drain failed: {e}"),
        None => format!("{held}; not repaired again"),
    };
    set(wf, i, Step::Failed { why }, String::new(), report);
    Ok(())
}

fn enter_wait_jobs(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    note: String,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let what = format!(
        "wait until no job or pod runs (at most {})",
        humantime::format_duration(Duration::from_secs(wf.max_wait_s))
    );
    wf.nodes[i].wait_audit = Some(audit_wait(ctx, wf, i, "repair-wait-jobs", &what)?);
    set(
        wf,
        i,
        Step::WaitJobs {
            since_ms: now_ms(),
            killed: false,
        },
        note,
        report,
    );
    Ok(())
}

pub(super) fn wait_jobs(
    ctx: &Context,
    wf: &mut Workflow,
    last: &mut [String],
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| matches!(s, Step::WaitJobs { .. }));
    if waiting.is_empty() {
        return Ok(());
    }
    let workload = jobs::query(ctx.inv, ctx.exec);
    for p in &workload.problems {
        report(Event::Problem(p.clone()));
    }
    // A scheduler that did not answer leaves the jobs unknown: wait, never assume none.
    let unknown = !workload.problems.is_empty();
    let mut changed = false;
    for (i, id) in waiting {
        let Step::WaitJobs { since_ms, killed } = wf.nodes[i].step.clone() else {
            continue;
        };
        let waited = Duration::from_millis(now_ms().saturating_sub(since_ms));
        let running = workload.jobs(id);
        if running.is_empty() && !unknown {
            close_wait(ctx, wf, i, true, "no job or pod runs")?;
            let next = match wf.nodes[i].remedy() {
                super::remedy::Remedy::Reset => Step::Reset,
                super::remedy::Remedy::Reboot => Step::Reboot,
            };
            set(wf, i, next, "no job or pod runs".into(), report);
            changed = true;
            continue;
        }
        let list = workload
            .hits(&[id], 5)
            .unwrap_or_else(|| "jobs unknown".into());
        if waited > Duration::from_secs(wf.max_wait_s) {
            let why = format!(
                "still running after {}: {list}; the node stays drained",
                humantime::format_duration(Duration::from_secs(wf.max_wait_s))
            );
            close_wait(ctx, wf, i, false, &why)?;
            set(wf, i, Step::Failed { why }, String::new(), report);
            changed = true;
            continue;
        }
        let kill_due = wf
            .kill_after_s
            .is_some_and(|k| waited > Duration::from_secs(k));
        if kill_due && !killed && !running.is_empty() {
            let note = kill(ctx, wf, id, running)?;
            wf.nodes[i].step = Step::WaitJobs {
                since_ms,
                killed: true,
            };
            report(Event::Step {
                node: wf.nodes[i].node.clone(),
                step: wf.nodes[i].step.clone(),
                note,
            });
            changed = true;
        } else if last[i] != ids_of(running) {
            // Said again only when the jobs change, not as their clocks tick.
            last[i] = ids_of(running);
            report(Event::Step {
                node: wf.nodes[i].node.clone(),
                step: wf.nodes[i].step.clone(),
                note: format!("waiting for {list}"),
            });
        }
    }
    if changed {
        save(wf)?;
    }
    Ok(())
}

fn ids_of(jobs: &[Arc<crate::workload::Job>]) -> String {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    ids.join(",")
}

/// `--kill-after`: requeues each Slurm job (or cancels one that cannot be requeued), deletes each pod; every
/// command audited through the runner's log like any other.
fn kill(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    running: &[Arc<crate::workload::Job>],
) -> Result<String, String> {
    use crate::actions::plan::{Argv, Invocation, Place};
    let place = ctx
        .inv
        .actions
        .controller
        .clone()
        .map_or(Place::Local, Place::Controller);
    let mut notes = Vec::new();
    for job in running {
        let argvs: Vec<Argv> = match job.scheduler {
            crate::workload::Scheduler::Slurm => vec![
                Argv::new("scontrol", vec!["requeue".into(), job.id.clone()]),
                Argv::new("scancel", vec![job.id.clone()]),
            ],
            crate::workload::Scheduler::Kubernetes => {
                let (ns, pod) = job.id.split_once('/').unwrap_or(("default", &job.id));
                vec![Argv::new(
                    "kubectl",
                    vec![
                        "delete".into(),
                        "pod".into(),
                        "-n".into(),
                        ns.into(),
                        "--".into(),
                        pod.into(),
                    ],
                )]
            }
        };
        for argv in argvs {
            let invocation = Invocation {
                place: place.clone(),
                argv,
                env: Vec::new(),
            };
            let command = invocation.display(ctx.inv);
            let id = audit_intent(ctx, wf, node, "repair-kill-job", &command)?;
            let result = ctx.exec.capture(ctx.inv, &invocation);
            audit_outcome(
                ctx,
                wf,
                node,
                &id,
                "repair-kill-job",
                &command,
                crate::actions::audit::Ending {
                    ok: result.is_ok(),
                    detail: result.as_ref().map_or_else(String::clone, String::clone),
                    ..Default::default()
                },
            )?;
            if result.is_ok() {
                notes.push(format!("{} ended ({command})", job.id));
                break;
            }
        }
    }
    Ok(if notes.is_empty() {
        "--kill-after: no job could be requeued or cancelled".into()
    } else {
        format!("--kill-after: {}", notes.join(", "))
    })
}

pub(super) fn reboot(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let ready = nodes_in(ctx, wf, |s| *s == Step::Reboot);
    if ready.is_empty() {
        return Ok(());
    }
    // The reboot guard's limit holds across the workflow: nodes still coming back count against it.
    let in_flight = wf
        .nodes
        .iter()
        .filter(|n| matches!(n.step, Step::WaitBack { .. }))
        .count();
    let room = ctx
        .inv
        .actions
        .max_concurrent_reboots
        .saturating_sub(in_flight);
    for &(i, id) in ready.iter().take(room) {
        // Saved before the command runs: a crash between the two waits for a reboot that may not have happened
        // (and says so at the deadline) rather than rebooting a node twice.
        let what = format!(
            "wait until the node went down and came back answering (at most {})",
            humantime::format_duration(ctx.inv.actions.reboot_deadline)
        );
        wf.nodes[i].wait_audit = Some(audit_wait(ctx, wf, i, "repair-wait-back", &what)?);
        wf.nodes[i].step = Step::WaitBack {
            since_ms: now_ms(),
            went_down: false,
        };
        save(wf)?;
        let req = request(
            ctx,
            wf,
            ActionKind::Reboot,
            vec![id],
            format!("{REASON_PREFIX}{}", wf.reason),
        );
        for (_, result) in act(ctx, &req)? {
            match result {
                Ok(command) => {
                    if let Some(plan) = wf.nodes[i].plan.clone() {
                        super::reset::record(ctx, wf, i, &plan, super::remedy::Remedy::Reboot)?;
                    }
                    let step = wf.nodes[i].step.clone();
                    let practice = matches!(ctx.exec, Executor::Simulated(_));
                    // The runner reports such a reboot ok only once it saw the node down.
                    let seen =
                        !practice && crate::actions::probe::reboot_confirms_down(ctx.inv, id);
                    let note = if seen {
                        format!("reboot asked ({command}); went down")
                    } else {
                        format!("reboot asked ({command})")
                    };
                    set(wf, i, step, note, report);
                    // The runner already saw it go down (an SSH reboot is ok only then); practice: the simulated
                    // fleet does not drop off. Either way, count the reboot as seen.
                    if seen || practice {
                        wf.nodes[i].step = Step::WaitBack {
                            since_ms: now_ms(),
                            went_down: true,
                        };
                    }
                }
                Err(why) => {
                    close_wait(ctx, wf, i, false, &why)?;
                    set(wf, i, Step::Failed { why }, String::new(), report);
                }
            }
        }
        save(wf)?;
    }
    Ok(())
}

pub(super) fn wait_back(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| matches!(s, Step::WaitBack { .. }));
    if waiting.is_empty() {
        return Ok(());
    }
    // One pass over just these nodes, as `snapshot` would make it, over a transport of their own: one made
    // for the whole inventory would number its nodes otherwise.
    let ids: Vec<NodeId> = waiting.iter().map(|&(_, id)| id).collect();
    let (mut state, pending) = runtime
        .block_on(crate::snapshot::look(ctx.inv, &ids))
        .map_err(|e| format!("cannot look at the nodes: {e}"))?;
    // The XIDs a reset or reboot just dealt with are history, as the TUI and snapshot judge them: a node is
    // "back crit" only for what is still wrong after its audited remedy.
    state.note_resets(&crate::actions::resets::read_fleet(ctx.inv));
    let deadline = ctx.inv.actions.reboot_deadline;
    let mut changed = false;
    for (k, &(i, _)) in waiting.iter().enumerate() {
        let Step::WaitBack {
            since_ms,
            went_down,
        } = wf.nodes[i].step.clone()
        else {
            continue;
        };
        let view = state.node_view(k, Instant::now(), pending);
        // Each pass starts after the last one: an answer now is an answer after it was seen down.
        let answering = crate::actions::probe::answering(&view);
        let waited = Duration::from_millis(now_ms().saturating_sub(since_ms));
        let look = Look {
            down: !answering,
            answering,
        };
        match judge_return(went_down, look, waited, deadline) {
            Return::WentDown => {
                let note = format!(
                    "went down ({})",
                    view.error.as_deref().unwrap_or(view.data_state.as_str())
                );
                set(
                    wf,
                    i,
                    Step::WaitBack {
                        since_ms,
                        went_down: true,
                    },
                    note,
                    report,
                );
                changed = true;
                continue;
            }
            Return::NeverWentDown => {
                let why = format!(
                    "did not go down within {} of the reboot (was it issued? see the audit log); the node stays drained",
                    humantime::format_duration(deadline)
                );
                close_wait(ctx, wf, i, false, &why)?;
                set(wf, i, Step::Failed { why }, String::new(), report);
                changed = true;
                continue;
            }
            Return::NotDownYet | Return::StillDown => continue,
            Return::CameBack | Return::NeverCameBack => {}
        }
        if answering {
            if view.verdict.health == Health::Crit {
                let reasons = view.verdict.reasons.join("; ");
                let why = format!("came back crit: {reasons}");
                close_wait(ctx, wf, i, false, &format!("{why}; the node stays drained"))?;
                stay_drained(ctx, wf, i, waiting[k].1, &why, report)?;
            } else {
                let source = view.source.map_or("node", |s| s.as_str());
                close_wait(ctx, wf, i, true, &format!("back, {source} answering"))?;
                let note = format!(
                    "back, {source} answering, health {}",
                    view.verdict.health.as_str()
                );
                set(wf, i, Step::Validate, note, report);
            }
            changed = true;
        } else if waited > deadline {
            let why = format!(
                "did not come back within {} ({}); the node stays drained",
                humantime::format_duration(deadline),
                view.error.as_deref().unwrap_or(view.state.as_str())
            );
            close_wait(ctx, wf, i, false, &why)?;
            set(wf, i, Step::Failed { why }, String::new(), report);
            changed = true;
        }
    }
    if changed {
        save(wf)?;
    }
    Ok(())
}

/// Drains node `id` (again) with `why` as its repair reason, where the scheduler shows it: the node's result
/// (the command, or why it failed), `None` where the runner gave none.
fn drain_saying(
    ctx: &Context,
    wf: &Workflow,
    id: NodeId,
    why: &str,
) -> Result<Option<Result<String, String>>, String> {
    let req = request(
        ctx,
        wf,
        ActionKind::Drain,
        vec![id],
        format!("{REASON_PREFIX}{why}"),
    );
    Ok(act(ctx, &req)?.into_iter().next().map(|(_, result)| result))
}

/// Keeps node `i` drained, its drain reason saying why (where the scheduler shows it), and fails it.
pub(super) fn stay_drained(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    id: NodeId,
    why: &str,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    if let Some(Err(e)) = drain_saying(ctx, wf, id, why)? {
        report(Event::Problem(format!(
            "{}: drain reason not updated: {e}",
            wf.nodes[i].node
        )));
    }
    let why = format!("{why}; the node stays drained");
    set(wf, i, Step::Failed { why }, String::new(), report);
    Ok(())
}

pub(super) fn undrain(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let ready = nodes_in(ctx, wf, |s| *s == Step::Undrain);
    if ready.is_empty() {
        return Ok(());
    }
    // A node already back in service (resumed by someone else meanwhile) leaves nothing to undrain.
    let ids: Vec<NodeId> = ready.iter().map(|&(_, id)| id).collect();
    let states = status::query(ctx.inv, ctx.exec, &ids).unwrap_or_default();
    let mut ready = ready;
    ready.retain(|&(i, id)| match states.get(&id).map(|d| &d.state) {
        Some(DrainState::Active(word)) => {
            set(
                wf,
                i,
                Step::Done,
                format!("back in service ({word})"),
                report,
            );
            false
        }
        _ => true,
    });
    if ready.is_empty() {
        return save(wf);
    }
    let req = request(
        ctx,
        wf,
        ActionKind::Undrain,
        ready.iter().map(|&(_, id)| id).collect(),
        format!("{REASON_PREFIX}{}", wf.reason),
    );
    for (node, result) in act(ctx, &req)? {
        let Some(&(i, _)) = ready.iter().find(|&&(_, id)| id == node) else {
            continue;
        };
        match result {
            Ok(command) => set(
                wf,
                i,
                Step::Done,
                format!("back in service ({command})"),
                report,
            ),
            Err(why) => set(wf, i, Step::Failed { why }, String::new(), report),
        }
    }
    save(wf)
}
