//! Waits as audit records: an intent when a wait starts, its outcome when it ends, in the action runner's log,
//! so the log shows every step of a repair, not only its commands.

use super::workflow::{Context, Step, Workflow, REASON_PREFIX};
use crate::actions::audit;
use crate::actions::{record_id, run};
use crate::inventory::NodeId;

/// Opens an audited wait for node `i`: its intent id, to close with [`close_wait`].
pub(super) fn audit_wait(
    ctx: &Context,
    wf: &Workflow,
    i: usize,
    action: &str,
    what: &str,
) -> Result<String, String> {
    let node = ctx.inv.find_node(&wf.nodes[i].node).unwrap_or_default();
    audit_intent(ctx, wf, node, action, what)
}

pub(super) fn close_wait(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    ok: bool,
    detail: &str,
) -> Result<(), String> {
    let Some(id) = wf.nodes[i].wait_audit.take() else {
        return Ok(());
    };
    let node = ctx.inv.find_node(&wf.nodes[i].node).unwrap_or_default();
    let action = match wf.nodes[i].step {
        Step::WaitJobs { .. } => "repair-wait-jobs",
        _ => "repair-wait-back",
    };
    let ending = audit::Ending {
        ok,
        detail: detail.to_string(),
        ..audit::Ending::default()
    };
    audit_outcome(ctx, wf, node, &id, action, "wait", ending)
}

/// What every record of a repair's step says: the operator, the action, the node, the repair's reason.
fn entry<'a>(
    ctx: &'a Context,
    wf: &'a Workflow,
    node: NodeId,
    action: &'a str,
    command: &'a str,
    reason: &'a str,
) -> audit::Entry<'a> {
    audit::Entry {
        operator: &wf.operator,
        action,
        node: &ctx.inv.nodes[node].name,
        reason: Some(reason),
        backend: "fleetop",
        command,
    }
}

pub(super) fn audit_intent(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    action: &str,
    command: &str,
) -> Result<String, String> {
    let id = record_id();
    let reason = format!("{REASON_PREFIX}{}", wf.reason);
    let record = entry(ctx, wf, node, action, command, &reason).intent(&id);
    run::open_audit(ctx.inv)?.write(&record)?;
    Ok(id)
}

pub(super) fn audit_outcome(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    id: &str,
    action: &str,
    command: &str,
    ending: audit::Ending,
) -> Result<(), String> {
    let reason = format!("{REASON_PREFIX}{}", wf.reason);
    let record = entry(ctx, wf, node, action, command, &reason).outcome(id, ending);
    run::open_audit(ctx.inv)?.write(&record)
}
