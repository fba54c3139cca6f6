//! Waits as audit records: an intent when a wait starts, its outcome when it ends, in the action runner's log,
//! so the log shows every step of a repair, not only its commands.

use super::{Context, Step, Workflow, REASON_PREFIX};
use crate::actions::audit::{self, AuditLog, Intent, Outcome, Record};
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
    audit_outcome(ctx, wf, node, &id, action, "wait", ok, detail.to_string())
}

pub(super) fn audit_intent(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    action: &str,
    command: &str,
) -> Result<String, String> {
    let id = record_id();
    let mut log = AuditLog::open(&run::audit_path(ctx.inv))?;
    log.write(&Record::Intent(Intent {
        id: id.clone(),
        time: audit::now(),
        operator: wf.operator.clone(),
        action: action.into(),
        node: ctx.inv.nodes[node].name.clone(),
        reason: Some(format!("{REASON_PREFIX}{}", wf.reason)),
        backend: "fleetop".into(),
        command: command.into(),
        pid: std::process::id(),
    }))?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn audit_outcome(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    id: &str,
    action: &str,
    command: &str,
    ok: bool,
    detail: String,
) -> Result<(), String> {
    let mut log = AuditLog::open(&run::audit_path(ctx.inv))?;
    log.write(&Record::Outcome(Outcome {
        id: id.into(),
        time: audit::now(),
        operator: wf.operator.clone(),
        action: action.into(),
        node: ctx.inv.nodes[node].name.clone(),
        backend: "fleetop".into(),
        command: command.into(),
        ok,
        exit_status: None,
        duration_ms: 0,
        detail,
    }))
}
