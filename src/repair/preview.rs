//! What a repair will do, before it does it: each node's remedy and why, and every command in order, for
//! `--dry-run` and the TUI's confirm dialog.

use super::remedy::{self, Plan};
use super::workflow::REASON_PREFIX;
use crate::actions::{ActionKind, Request};
use crate::inventory::{Inventory, NodeId};

/// Every command a repair of `nodes` may run, in order (drain, each node's remedy, `checks` (the validation),
/// undrain), exactly as the workflow will run them: for confirm dialogs and `--dry-run`. `plans` holds each node's remedy (a missing
/// one: reboot); a failed reset may still escalate to the reboot listed after it.
pub fn commands(
    inv: &Inventory,
    nodes: &[NodeId],
    plans: &[Plan],
    checks: &[String],
    reason: &str,
    operator: &str,
) -> Result<Vec<String>, String> {
    let remedy = |k: usize| plans.get(k).map_or(remedy::Remedy::Reboot, |p| p.remedy);
    let by_remedy = |wanted: remedy::Remedy| -> Vec<NodeId> {
        (0..nodes.len())
            .filter(|&k| remedy(k) == wanted)
            .map(|k| nodes[k])
            .collect()
    };
    let mut out = Vec::new();
    for (kind, targets) in [
        (ActionKind::Drain, nodes.to_vec()),
        (ActionKind::Reboot, by_remedy(remedy::Remedy::Reboot)),
        (ActionKind::Undrain, nodes.to_vec()),
    ] {
        if kind == ActionKind::Reboot {
            // Resets first (each node its own GPU): the workflow resets before any escalated reboot.
            for k in (0..nodes.len()).filter(|&k| remedy(k) == remedy::Remedy::Reset) {
                let gpu = plans.get(k).and_then(Plan::reset_gpu);
                let reset = one_command(inv, ActionKind::Reset, nodes[k], gpu, reason, operator)?;
                let reboot =
                    one_command(inv, ActionKind::Reboot, nodes[k], None, reason, operator)?;
                out.push(format!("{reset}   # if the reset fails: {reboot}"));
            }
        }
        if kind == ActionKind::Undrain {
            out.extend(checks.iter().cloned());
        }
        if targets.is_empty() {
            continue;
        }
        let req = Request {
            kind,
            nodes: targets,
            reason: Some(format!("{REASON_PREFIX}{reason}")),
            operator: operator.into(),
            force: false,
            read_only: false,
            gpu: None,
            // The repair's own reboots, as `repair::request` makes them.
            keep_drained: true,
        };
        let steps = crate::actions::plan::plan(inv, &req)?;
        out.extend(steps.iter().map(|s| s.invocation.display(inv)));
    }
    Ok(out)
}

/// The command of one `kind` action on one node, as a line.
fn one_command(
    inv: &Inventory,
    kind: ActionKind,
    node: NodeId,
    gpu: Option<u32>,
    reason: &str,
    operator: &str,
) -> Result<String, String> {
    let req = Request {
        kind,
        nodes: vec![node],
        reason: Some(format!("{REASON_PREFIX}{reason}")),
        operator: operator.into(),
        force: false,
        read_only: false,
        gpu,
        keep_drained: true,
    };
    let steps = crate::actions::plan::plan(inv, &req)?;
    Ok(steps
        .iter()
        .map(|s| s.invocation.display(inv))
        .collect::<Vec<_>>()
        .join("; "))
}

/// `tn01: GPU reset — GPU 3: driver asks for a GPU reset`: each node's remedy and why, for the dry run and the
/// confirm dialog.
pub(crate) fn remedy_lines(inv: &Inventory, nodes: &[NodeId], plans: &[Plan]) -> Vec<String> {
    nodes
        .iter()
        .zip(plans)
        .map(|(&n, p)| format!("{}: {} — {}", inv.nodes[n].name, p.remedy.as_str(), p.why))
        .collect()
}
