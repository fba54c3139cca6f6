//! The GPU reset step, for nodes whose remedy is a reset: through the action runner (its guards, audit and
//! read-back: a reset succeeds only once the GPU answers again). A reset that fails escalates to a reboot,
//! the escalation audited like every step.

use super::act::{act, nodes_in, request, set};
use super::audited::{audit_intent, audit_outcome};
use super::history;
use super::remedy::{Plan, Remedy};
use super::workflow::{now_ms, Context, Event, Step, Workflow, REASON_PREFIX};
use crate::actions::audit::Ending;
use crate::actions::reset::scope;
use crate::actions::ActionKind;
use crate::inventory::NodeId;

pub(super) fn reset(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    for (i, id) in nodes_in(ctx, wf, |s| *s == Step::Reset) {
        let gpu = wf.nodes[i].plan.as_ref().and_then(Plan::reset_gpu);
        match run_reset(ctx, wf, id, gpu)? {
            Ok(command) => {
                if let Some(plan) = wf.nodes[i].plan.clone() {
                    record(ctx, wf, i, &plan, Remedy::Reset)?;
                }
                // The runner judged only the GPUs it reset; the node as a whole must be healthy before it is
                // validated and returned, as after a reboot: the same look and rule decide (`wait_back`).
                set(
                    wf,
                    i,
                    Step::WaitBack {
                        since_ms: now_ms(),
                        went_down: true,
                    },
                    format!("GPU reset ({command}); looking at the whole node before validation"),
                    report,
                );
            }
            Err(why) => escalate(ctx, wf, i, id, &why, report)?,
        }
        save(wf)?;
    }
    Ok(())
}

/// The reset through the runner (its guards, audit and the look afterwards): the command line when it
/// succeeded, else why not. `Err`: the runner stopped (the audit log cannot be written).
fn run_reset(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    gpu: Option<u32>,
) -> Result<Result<String, String>, String> {
    let mut req = request(
        ctx,
        wf,
        ActionKind::Reset,
        vec![node],
        format!("{REASON_PREFIX}{}", wf.reason),
    );
    req.gpu = gpu;
    Ok(match act(ctx, &req)?.into_iter().next() {
        Some((_, result)) => result,
        None => Err(format!("reset of {}: no result", scope(gpu))),
    })
}

/// A failed reset: the node is rebooted instead, and the log says why.
fn escalate(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    node: NodeId,
    why: &str,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let command = "reboot instead of the failed GPU reset";
    let id = audit_intent(ctx, wf, node, "repair-escalate", command)?;
    let ending = Ending {
        ok: true,
        detail: why.to_string(),
        ..Ending::default()
    };
    audit_outcome(ctx, wf, node, &id, "repair-escalate", command, ending)?;
    if let Some(plan) = &mut wf.nodes[i].plan {
        plan.remedy = Remedy::Reboot;
    }
    set(
        wf,
        i,
        Step::Reboot,
        format!("{why}: escalating to a reboot"),
        report,
    );
    Ok(())
}

/// The lemon rule's history: this remedy was applied to the plan's GPUs (not in practice mode).
pub(super) fn record(
    ctx: &Context,
    wf: &Workflow,
    i: usize,
    plan: &Plan,
    remedy: Remedy,
) -> Result<(), String> {
    if matches!(ctx.exec, crate::actions::exec::Executor::Simulated(_)) {
        return Ok(());
    }
    let log = crate::actions::run::audit_path(ctx.inv);
    let scope = crate::actions::run::scope(ctx.inv);
    history::record(&log, scope, &wf.operator, &wf.nodes[i].node, plan, remedy)
}
