//! The one action runner, for the command line and the TUI alike: plan → guards (on the drain state read
//! now) → audit intent → backend → audit outcome, node by node. Front ends decide nothing here; they render
//! the [`Progress`] it reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::audit::{self, AuditLog};
use super::exec::{self, Executor};
use super::guard::{guard, needs_drain_state};
use super::plan::{self, Step};
use super::request::{ActionKind, Request};
use super::status::{self, DrainState, NodeDrain};
use super::{probe, reset};
use crate::inventory::{expand_home, Inventory, NodeId};
use crate::store::Scope;

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

/// An audit log (and the history store beside it) and the sites of a merged inventory whose actions it records;
/// no sites: one site's own inventory, whose names are its own, read in its `scope` (its `[[context]]`'s site,
/// its inventory file).
pub(crate) struct SiteLog<'a> {
    pub path: PathBuf,
    pub sites: Vec<&'a crate::inventory::MergedSite>,
    pub scope: Scope<'a>,
}

/// The site a record or row carries and, without one, the inventory file it is marked with ([`Scope::counts`]).
pub(crate) type Origin = (Option<String>, Option<String>);

/// Whose records a session over `inv` writes and counts: its `[[context]]`'s site, its inventory file.
pub(crate) fn scope(inv: &Inventory) -> Scope<'_> {
    Scope::new(inv.site.as_deref(), inv.file.as_deref())
}

impl SiteLog<'_> {
    /// The names, as the inventory names its nodes, of the nodes a record naming `name` is about, the record
    /// carrying `origin` (its site; without one, the inventory file it is marked with): each node whose site's
    /// scope counts it ([`Scope::counts`]): its own site's node, or for a record written before records carried
    /// their site every site's node of that name, as each site read alone counts it. See `docs/security.md`.
    pub(crate) fn node_names(
        &self,
        origin: (Option<&str>, Option<&str>),
        name: &str,
    ) -> Vec<String> {
        let (site, inventory) = origin;
        if self.sites.is_empty() {
            return if self.scope.counts(site, inventory) {
                vec![name.to_string()]
            } else {
                Vec::new()
            };
        }
        self.sites
            .iter()
            .filter(|s| scope(&s.inventory).counts(site, inventory))
            .filter(|s| s.inventory.find_node(name).is_some())
            .map(|s| s.merged_name(name))
            .collect()
    }
}

/// Every audit log of `inv`'s nodes, each once: under `--context all` each site's own (sites may share one).
pub(crate) fn audit_logs(inv: &Inventory) -> Vec<SiteLog<'_>> {
    let mut logs: Vec<SiteLog> = Vec::new();
    for site in inv.merged_sites() {
        let path = audit_path(&site.inventory);
        match logs.iter_mut().find(|l| l.path == path) {
            Some(log) => log.sites.push(site),
            None => logs.push(SiteLog {
                path,
                sites: vec![site],
                scope: Scope::default(),
            }),
        }
    }
    if logs.is_empty() {
        logs.push(SiteLog {
            path: audit_path(inv),
            sites: Vec::new(),
            scope: scope(inv),
        });
    }
    logs
}

/// The history stores of `inv`'s nodes, beside its audit logs ([`audit_logs`]: each site's own under `--context
/// all`), each with the `[repair]` lemon rule of the first site it keeps.
pub(crate) fn stores(inv: &Inventory) -> Vec<crate::fleet::memory::SiteStore> {
    audit_logs(inv)
        .into_iter()
        .map(|log| {
            let rules = log.sites.first().map_or(inv, |s| s.inventory.as_ref());
            crate::fleet::memory::SiteStore {
                path: crate::store::beside(&log.path),
                sites: log.sites.into_iter().cloned().collect(),
                site: log.scope.site.map(str::to_string),
                inventory: log.scope.inventory.map(str::to_string),
                max_repairs: rules.actions.repair.max_repairs,
                repair_window: rules.actions.repair.repair_window,
            }
        })
        .collect()
}

/// Node `id`'s own inventory and site: its site's under `--context all`, else `inv` and its `[[context]]`.
fn own_site(inv: &Inventory, id: NodeId) -> (&Inventory, Option<String>) {
    match inv.merged_sites().get(inv.site_index(id)) {
        Some(s) => (s.inventory.as_ref(), Some(s.record_site().to_string())),
        None => (inv, inv.site.clone()),
    }
}

/// Where node `id`'s history is kept, its name there and the scope whose rows are its (site, inventory file):
/// its own site's store under `--context all`.
pub(crate) fn history_of(inv: &Inventory, id: NodeId) -> Option<(PathBuf, String, Origin)> {
    let name = &inv.nodes.get(id)?.name;
    let (own, site) = own_site(inv, id);
    let path = crate::store::beside(&audit_path(own));
    Some((
        path,
        crate::inventory::name_within_site(name).to_string(),
        (site, own.file.clone()),
    ))
}

/// Opens the inventory's audit log for appending; `--demo`'s simulated fleet marks its records as practice, and
/// a `[[context]]`'s inventory marks them with its site.
pub(crate) fn open_audit(inv: &Inventory) -> Result<AuditLog, String> {
    AuditLog::open(&audit_path(inv)).map(|log| log.practice(inv.simulated).in_scope(scope(inv)))
}

/// [`open_audit`] of node `id`'s own inventory (its site's under `--context all`, marking its records with the
/// site), and the node's name there.
pub(crate) fn open_audit_of(inv: &Inventory, id: NodeId) -> Result<(AuditLog, String), String> {
    let name = &inv
        .nodes
        .get(id)
        .ok_or_else(|| format!("no node {id} in {}", inv.source))?
        .name;
    let (own, site) = own_site(inv, id);
    let log = open_audit(own)?.in_scope(Scope::new(site.as_deref(), own.file.as_deref()));
    Ok((log, crate::inventory::name_within_site(name).to_string()))
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
    let read_only = super::guard::read_only(req.read_only, inv);
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

/// Runs `req` through [`run`] on a thread of its own, so a front end goes on drawing: each step goes to
/// `report` (the front end's channel).
pub fn spawn(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    req: Request,
    mut report: impl FnMut(Progress) + Send + 'static,
) {
    let (inv, exec) = (Arc::clone(inv), Arc::clone(exec));
    let spawned = std::thread::Builder::new()
        .name("action".into())
        .spawn(move || run(&inv, &req, &exec, &mut report));
    if let Err(e) = spawned {
        tracing::error!("cannot start the action thread: {e}");
    }
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
pub(crate) fn execute_step_noting(
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
