//! The one action runner, for the command line and the TUI alike: plan → guards (on the drain state read
//! now) → audit intent → backend → audit outcome, node by node. Front ends decide nothing here; they render
//! the [`Progress`] it reports.

use std::collections::HashMap;
use std::path::PathBuf;

use super::audit::{self, AuditLog};
use super::exec::Executor;
use super::status::{self, DrainState, NodeDrain};
use super::{execute_step_noting, guard, needs_drain_state, plan, ActionKind, NodeResult, Request};
use crate::inventory::{expand_home, Inventory, NodeId};

/// What a run reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Refused before anything ran, with every reason.
    Refused(Vec<String>),
    /// A node's command is about to run.
    Started { node: NodeId, kind: ActionKind },
    /// The node took the command; the runner now waits to see it act (a reboot going down) before `Finished`.
    Accepted {
        node: NodeId,
        kind: ActionKind,
        note: String,
    },
    /// A node's command ended (its outcome is in the audit log unless `result.audit_error` says otherwise).
    Finished {
        node: NodeId,
        kind: ActionKind,
        result: NodeResult,
    },
    /// The run stopped early because the audit log could not be written; later nodes were not touched.
    Stopped(String),
}

/// The audit log's path: the inventory's `[actions] audit_log`, else `$XDG_STATE_HOME/fleetop/audit.jsonl`.
pub(crate) fn audit_path(inv: &Inventory) -> PathBuf {
    inv.actions
        .audit_log
        .as_deref()
        .map_or_else(audit::default_path, expand_home)
}

/// Opens the inventory's audit log for appending; `--demo`'s simulated fleet marks its records as practice.
pub(crate) fn open_audit(inv: &Inventory) -> Result<AuditLog, String> {
    AuditLog::open(&audit_path(inv)).map(|log| log.practice(inv.simulated))
}

/// Every node the guards look at: the request's own and, for a drain, all of their cabinets and tenants
/// (the fraction guard counts how many of each would be out).
pub(crate) fn affected(inv: &Inventory, req: &Request) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = req.nodes.clone();
    if req.kind == ActionKind::Drain {
        for &n in &req.nodes {
            all.extend(&inv.cabinets[inv.nodes[n].cabinet].nodes);
            for t in &inv.nodes[n].tenancy {
                all.extend(&inv.tenants[t.tenant].nodes);
            }
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// The guards' refusals, on the drain state the backend reports now (one query, only when a guard needs
/// it). An unreadable state refuses unless the request is forced.
pub fn check(inv: &Inventory, req: &Request, exec: &Executor) -> Vec<String> {
    let read_only = req.read_only || inv.actions.read_only;
    let mut refusals = Vec::new();
    let drain: HashMap<NodeId, NodeDrain> = if !read_only && needs_drain_state(inv, req) {
        match status::query(inv, exec, &affected(inv, req)) {
            Ok(d) => d,
            Err(e) => {
                if !req.force {
                    refusals.push(format!(
                        "cannot read the drain state ({e}); override with --force on the command line"
                    ));
                }
                let unknown = NodeDrain {
                    state: DrainState::Unknown(e),
                    reason: None,
                    user: None,
                };
                req.nodes.iter().map(|&n| (n, unknown.clone())).collect()
            }
        }
    } else {
        HashMap::new()
    };
    refusals.extend(guard(inv, req, read_only, &drain));
    // The processes on a reset's GPUs, from a look taken now (only when nothing else refused: it costs a pass).
    if req.kind == ActionKind::Reset && refusals.is_empty() {
        refusals.extend(super::reset::guard(inv, req, exec));
    }
    refusals
}

/// Runs `req` to the end (or to the first audit failure), reporting each step.
pub fn run(inv: &Inventory, req: &Request, exec: &Executor, mut report: impl FnMut(Progress)) {
    let steps = match plan::plan(inv, req) {
        Ok(s) => s,
        Err(e) => return report(Progress::Refused(vec![e])),
    };
    let refusals = check(inv, req, exec);
    if !refusals.is_empty() {
        return report(Progress::Refused(refusals));
    }
    // Nothing runs without an audit record: a log that cannot be opened refuses the whole request.
    let mut log = match open_audit(inv) {
        Ok(l) => l,
        Err(e) => {
            return report(Progress::Refused(vec![format!(
                "cannot write the audit log: {e}"
            )]))
        }
    };
    for step in &steps {
        report(Progress::Started {
            node: step.node,
            kind: req.kind,
        });
        let node = step.node;
        let mut accepted = |note: &str| {
            report(Progress::Accepted {
                node,
                kind: req.kind,
                note: note.to_string(),
            })
        };
        let ran = execute_step_noting(inv, req, step, exec, &mut log, &mut accepted);
        match ran {
            Ok(result) => {
                let unrecorded = result.audit_error.clone();
                report(Progress::Finished {
                    node: step.node,
                    kind: req.kind,
                    result,
                });
                if let Some(e) = unrecorded {
                    return report(Progress::Stopped(format!(
                        "the command ran but its outcome is not in the audit log: {e}"
                    )));
                }
            }
            Err(e) => {
                return report(Progress::Stopped(format!(
                    "cannot write the audit log: {e}"
                )))
            }
        }
    }
}
