//! Drain, undrain, reboot and GPU reset: plans of exact commands, guards, the audit log, and execution.

pub mod audit;
pub mod deploy;
pub mod exec;
pub mod jobs;
pub mod plan;
pub mod probe;
mod redfish;
pub mod reset;
pub mod resets;
pub mod run;
pub mod slim;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::inventory::{DrainBackend, Inventory, NodeId, RebootBackend};
use audit::AuditLog;
use exec::Executor;
use plan::Step;
use status::{DrainState, NodeDrain};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Drain,
    Undrain,
    Reboot,
    /// `nvidia-smi -r` on the node: one GPU ([`Request::gpu`]) or all of them.
    Reset,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Drain => "drain",
            ActionKind::Undrain => "undrain",
            ActionKind::Reboot => "reboot",
            ActionKind::Reset => "reset",
        }
    }
}

/// What an operator asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: ActionKind,
    pub nodes: Vec<NodeId>,
    pub reason: Option<String>,
    pub operator: String,
    /// Overrides the fraction guard, the foreign-reason guard and an unverifiable drain state.
    pub force: bool,
    /// `--read-only` or `read_only` in config.toml (the inventory's own setting is added by the guards).
    pub read_only: bool,
    /// A reset's one GPU (`--gpu N`); `None`: every GPU of the node. Other actions ignore it.
    pub gpu: Option<u32>,
}

/// The operator's name: `$SUDO_USER` (the human behind sudo), then `$USER`.
pub fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Why a request is refused before anything runs, one line each.
pub fn guard(
    inv: &Inventory,
    req: &Request,
    read_only: bool,
    drain: &HashMap<NodeId, NodeDrain>,
) -> Vec<String> {
    let mut refusals = Vec::new();
    let name = |n: NodeId| inv.nodes[n].name.as_str();
    if read_only || inv.actions.read_only {
        refusals.push(format!(
            "read-only: {} refused (--read-only or [actions] read_only)",
            req.kind.as_str()
        ));
        return refusals;
    }
    if req.kind == ActionKind::Drain && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        refusals.push("a drain needs a reason (--reason TEXT)".into());
    }
    match req.kind {
        ActionKind::Reboot => {
            let max = inv.actions.max_concurrent_reboots;
            if req.nodes.len() > max {
                refusals.push(format!(
                    "{} reboots at once is more than [reboot] max_concurrent = {max}",
                    req.nodes.len()
                ));
            }
            // The Slurm reboot backend drains by itself (scontrol reboot ASAP).
            let self_draining = |n: NodeId| *inv.reboot_backend(n) == RebootBackend::Slurm;
            if inv.actions.require_drained {
                let nodes: Vec<NodeId> = req
                    .nodes
                    .iter()
                    .copied()
                    .filter(|&n| !self_draining(n))
                    .collect();
                refusals.extend(drained_guard(inv, &nodes, req.force, false, drain));
            }
        }
        // A reset ends whatever runs on the GPU: the node must be out of service (nvidia-smi(1): "there can't be
        // any applications using these devices"); `--force` overrides, with the typed count.
        ActionKind::Reset => {
            refusals.extend(drained_guard(inv, &req.nodes, req.force, true, drain))
        }
        ActionKind::Undrain if !req.force => {
            for &n in req
                .nodes
                .iter()
                .filter(|&&n| *inv.drain_backend(n) == DrainBackend::Slurm)
            {
                if let Some(d) = drain.get(&n).filter(|d| d.is_out() && !d.ours()) {
                    refusals.push(format!(
                        "{}: drained by someone else for {:?}; override with --force on the command line",
                        name(n),
                        d.reason.as_deref().unwrap_or("no reason")
                    ));
                }
            }
        }
        ActionKind::Drain if !req.force => refusals.extend(fraction_guard(inv, req, drain)),
        _ => {}
    }
    refusals
}

/// Refuses nodes that are not drained. `--force` passes a state that cannot be read, and with `force_any` any
/// state at all (a reset, whose own guard then asks for the typed count).
fn drained_guard(
    inv: &Inventory,
    nodes: &[NodeId],
    force: bool,
    force_any: bool,
    drain: &HashMap<NodeId, NodeDrain>,
) -> Vec<String> {
    let name = |n: NodeId| inv.nodes[n].name.as_str();
    let mut refusals = Vec::new();
    for &n in nodes {
        match drain.get(&n).map(|d| &d.state) {
            Some(DrainState::Drained) => {}
            _ if force && force_any => {}
            Some(DrainState::Unknown(_)) if force => {}
            Some(DrainState::Unknown(why)) => refusals.push(format!(
                "{}: cannot tell whether it is drained ({why}); override with --force on the command line",
                name(n)
            )),
            Some(DrainState::Draining) => {
                refusals.push(format!("{}: still draining; wait until it is drained", name(n)))
            }
            Some(DrainState::Active(s)) => {
                refusals.push(format!("{}: not drained ({s}); drain it first", name(n)))
            }
            None => refusals.push(format!("{}: no drain state", name(n))),
        }
    }
    refusals
}

/// Refuses draining more than `max_drained_fraction` of a cabinet or tenant (counting nodes already out).
/// One node per group is always allowed: a three-node cabinet must be able to lose its sick node.
fn fraction_guard(
    inv: &Inventory,
    req: &Request,
    drain: &HashMap<NodeId, NodeDrain>,
) -> Vec<String> {
    let max = inv.actions.max_drained_fraction;
    let out = |n: &NodeId| req.nodes.contains(n) || drain.get(n).is_some_and(|d| d.is_out());
    let mut refusals = Vec::new();
    let mut groups: Vec<(String, &[NodeId])> = Vec::new();
    for &n in &req.nodes {
        let cab = &inv.cabinets[inv.nodes[n].cabinet];
        groups.push((format!("cabinet {}", cab.name), &cab.nodes));
        for t in &inv.nodes[n].tenancy {
            let tenant = &inv.tenants[t.tenant];
            groups.push((format!("tenant {}", tenant.name), &tenant.nodes));
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups.dedup_by(|a, b| a.0 == b.0);
    for (label, members) in groups {
        let drained = members.iter().filter(|n| out(n)).count();
        let allowed = ((max * members.len() as f64).floor() as usize).max(1);
        if drained > allowed {
            refusals.push(format!(
                "{label}: {drained} of {} nodes would be drained, more than max_drained_fraction = {max}; override with --force on the command line",
                members.len()
            ));
        }
    }
    refusals
}

/// The nodes whose drain state the guards need, if any.
pub(crate) fn needs_drain_state(inv: &Inventory, req: &Request) -> bool {
    match req.kind {
        ActionKind::Reboot => {
            inv.actions.require_drained
                && req
                    .nodes
                    .iter()
                    .any(|&n| *inv.reboot_backend(n) != RebootBackend::Slurm)
        }
        ActionKind::Undrain => {
            !req.force
                && req
                    .nodes
                    .iter()
                    .any(|&n| *inv.drain_backend(n) == DrainBackend::Slurm)
        }
        ActionKind::Drain => !req.force,
        ActionKind::Reset => true,
    }
}

/// What happened on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeResult {
    pub node: String,
    pub ok: bool,
    pub exit_status: Option<i32>,
    pub command: String,
    pub duration_ms: u64,
    pub detail: String,
    /// The command ran but its outcome could not be written to the audit log: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_error: Option<String>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn record_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{t}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs one step between its intent and outcome records. `Err`: the intent could not be written, nothing ran.
pub fn execute_step(
    inv: &Inventory,
    req: &Request,
    step: &Step,
    exec: &Executor,
    log: &mut AuditLog,
) -> Result<NodeResult, String> {
    execute_step_noting(inv, req, step, exec, log, &mut |_| {})
}

/// [`execute_step`], telling `accepted` when the node took the command and the runner now waits to see it act
/// (a reboot going down).
pub fn execute_step_noting(
    inv: &Inventory,
    req: &Request,
    step: &Step,
    exec: &Executor,
    log: &mut AuditLog,
    accepted: &mut dyn FnMut(&str),
) -> Result<NodeResult, String> {
    let node = inv.nodes[step.node].name.clone();
    let command = step.invocation.display(inv);
    let id = record_id();
    let entry = audit::Entry {
        operator: &req.operator,
        action: req.kind.as_str(),
        node: &node,
        reason: req.reason.as_deref(),
        backend: step.backend,
        command: &command,
    };
    log.write(&entry.intent(&id))?;
    let ran = exec.run(inv, step, req.kind, req.gpu);
    let ran = confirmed(inv, req, step.node, exec, ran, accepted);
    let duration_ms = ran.duration.as_millis() as u64;
    let recorded = log.write(&entry.outcome(
        &id,
        audit::Ending {
            ok: ran.ok,
            exit_status: ran.exit_status,
            duration_ms,
            detail: ran.detail.clone(),
        },
    ));
    let mut result = NodeResult {
        node,
        ok: ran.ok,
        exit_status: ran.exit_status,
        command,
        duration_ms,
        detail: ran.detail,
        audit_error: None,
    };
    // The command ran: its result is reported whatever the log says, with the log's failure beside it.
    result.audit_error = recorded.err();
    Ok(result)
}

/// Success only when the node shows it: a reset's GPUs answer cleanly in a fresh look; a reboot asked of the node
/// over SSH is seen down. A command that failed is already a failure.
fn confirmed(
    inv: &Inventory,
    req: &Request,
    node: NodeId,
    exec: &Executor,
    ran: exec::Ran,
    accepted: &mut dyn FnMut(&str),
) -> exec::Ran {
    if !ran.ok {
        return ran;
    }
    match req.kind {
        ActionKind::Reset => reset::confirm(inv, node, req.gpu, exec, ran),
        ActionKind::Reboot if probe::reboot_confirms_down(inv, node) => {
            probe::confirm_down(inv, node, exec, ran, accepted)
        }
        _ => ran,
    }
}
