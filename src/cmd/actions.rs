//! `fleetop drain|undrain|reboot|reset NODESET`: plan, guard, confirm, audit, run, report.
//! Exit status: 0 every node succeeded, 1 some node failed, 2 refused, 3 bad input.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};

use super::load::load_inventory;
use crate::actions::audit;
use crate::actions::exec::Executor;
use crate::actions::run::{self, Progress};
use crate::actions::{self, plan, ActionKind, Request};
use crate::cli::{ActionArgs, ActionFormat, Global};
use crate::inventory::{nodeset, Inventory, NodeId};
use crate::runtime::{EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_REFUSED};

/// `gpu`: a reset's one GPU (`--gpu N`).
pub fn run(g: &Global, kind: ActionKind, args: &ActionArgs, gpu: Option<u32>) -> i32 {
    let (g, nodeset) = match super::load::site_scoped(g, &args.nodes) {
        Ok(scoped) => scoped,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let g = &g;
    let inv = match load_inventory(g) {
        Ok(i) => i,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let audit_path = run::audit_path(&inv);
    for warning in audit::scan(&audit_path, inv.simulated).warnings(&audit_path) {
        crate::text::warn(&format!("warning: {warning}"));
    }
    let config_read_only = match crate::config::Config::load() {
        Ok(c) => c.read_only,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let nodes = match resolve_nodes(&inv, &nodeset) {
        Ok(n) => n,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let req = Request {
        kind,
        nodes,
        reason: args.reason.clone(),
        operator: actions::operator(),
        force: args.force,
        read_only: g.read_only || config_read_only,
        gpu,
        keep_drained: false,
    };
    let steps = match plan::plan(&inv, &req) {
        Ok(s) => s,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let exec = if g.demo {
        Executor::simulated()
    } else {
        match Executor::real(&inv) {
            Ok(e) => e,
            Err(e) => {
                crate::text::warn(&e);
                return EXIT_CANNOT_RUN;
            }
        }
    };
    // What a drain or reboot would end: asked of the schedulers before anything runs, shown, never a guard.
    let workload = (kind != ActionKind::Undrain).then(|| crate::actions::jobs::query(&inv, &exec));
    if let Some(w) = &workload {
        for problem in &w.problems {
            crate::text::warn(&format!("warning: {problem}"));
        }
    }
    let hits = workload
        .as_ref()
        .and_then(|w| w.hits(&req.nodes, MAX_JOBS_SHOWN))
        .map(|h| format!("{} hits {h}", kind.as_str()));
    if args.dry_run {
        for step in &steps {
            if !crate::text::println(&step.invocation.display(&inv)) {
                break;
            }
        }
        if let Some(hits) = &hits {
            crate::text::println(&format!("# {hits}"));
        }
        if crate::actions::read_only(req.read_only, &inv) {
            crate::text::warn("note: read-only is set, so this would be refused");
        }
        return 0;
    }
    // The guards are asked before the operator types the count; the runner asks them again, on the drain
    // state as it is when the commands run. A forced reset (of a node maybe still in service) always asks.
    let forced_reset = kind == ActionKind::Reset && args.force;
    if (req.nodes.len() > 1 || forced_reset) && !args.yes {
        let refusals = run::check(&inv, &req, &exec);
        if !refusals.is_empty() {
            return refused(&refusals);
        }
        if let Err(why) = confirm(&inv, &req, &steps, workload.as_ref(), hits.as_deref()) {
            return refused(&[why]);
        }
    } else if let Some(hits) = &hits {
        crate::text::warn(hits);
    }
    let mut results = Vec::new();
    let mut refusals = Vec::new();
    let mut stopped = None;
    run::run(&inv, &req, &exec, |progress| match progress {
        Progress::Refused(r) => refusals = r,
        Progress::Started { .. } => {}
        Progress::Accepted { node, kind, note } => crate::text::warn(&format!(
            "{}: {} {}",
            inv.nodes[node].name,
            kind.as_str(),
            crate::text::escape(&note)
        )),
        Progress::Finished { result, .. } => results.push(result),
        Progress::Stopped(why) => stopped = Some(why),
    });
    if !refusals.is_empty() {
        return refused(&refusals);
    }
    if results.is_empty() {
        if let Some(why) = &stopped {
            return refused(std::slice::from_ref(why));
        }
    }
    match args.format {
        ActionFormat::Json => {
            let doc = serde_json::json!({ "action": kind, "operator": req.operator, "reason": req.reason, "nodes": results });
            crate::text::println(&crate::text::json_safe(
                serde_json::to_string_pretty(&doc).unwrap_or_default(),
            ));
        }
        ActionFormat::Table => {
            for r in &results {
                let status = if r.ok { "ok" } else { "FAILED" };
                // The detail may quote a remote command's output: one escaped line, never raw.
                crate::text::println(&format!(
                    "{:<12} {:<7} {:>6} ms  {}  {}",
                    r.node,
                    status,
                    r.duration_ms,
                    r.command,
                    crate::text::escape(&r.detail)
                ));
            }
        }
    }
    let mut failed = !results.iter().all(|r| r.ok);
    for r in results.iter().filter(|r| r.audit_error.is_some()) {
        crate::text::warn(&format!(
            "error: {} ran on {} but its outcome is not in the audit log: {}",
            r.command,
            r.node,
            r.audit_error.as_deref().unwrap_or("")
        ));
        failed = true;
    }
    if let Some(why) = &stopped {
        crate::text::warn(&format!(
            "stopped: the remaining nodes were not touched: {why}"
        ));
        failed = true;
    }
    if failed {
        EXIT_FAILED
    } else {
        0
    }
}

/// Says why on stderr and gives the "refused" exit status: nothing ran.
pub(crate) fn refused(reasons: &[String]) -> i32 {
    for r in reasons {
        crate::text::warn(&format!("refused: {r}"));
    }
    EXIT_REFUSED
}

/// Expands a nodeset and checks every node is in the inventory.
pub(crate) fn resolve_nodes(inv: &Inventory, expr: &str) -> Result<Vec<NodeId>, String> {
    let names = nodeset::expand(expr)
        .map_err(|e| format!("bad nodeset {}: {e}", crate::text::cut(expr, 80)))?;
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .map(|n| {
            inv.find_node(&n)
                .ok_or_else(|| format!("unknown node {n:?}: not in {}", inv.source))
        })
        .collect()
}

/// Jobs named in one line of a confirmation; the rest are counted.
const MAX_JOBS_SHOWN: usize = 5;

/// Asks on a terminal for the node count; refuses without one. Each node's line says which jobs it runs.
fn confirm(
    inv: &Inventory,
    req: &Request,
    steps: &[plan::Step],
    workload: Option<&crate::workload::Workload>,
    hits: Option<&str>,
) -> Result<(), String> {
    let lines: Vec<String> = steps
        .iter()
        .map(|step| {
            let tenant = inv
                .tenant_label(step.node)
                .unwrap_or_else(|| "spare".into());
            let jobs = workload
                .and_then(|w| w.hits(&[step.node], 2))
                .map_or(String::new(), |h| format!(" — {h}"));
            format!(
                "{} ({tenant}): {}{jobs}",
                inv.nodes[step.node].name,
                step.invocation.display(inv)
            )
        })
        .collect();
    if let Some(hits) = hits {
        crate::text::warn(hits);
    }
    confirm_count(req.kind.as_str(), &lines)
}

/// Lists what is about to happen, one line per node, and asks on a terminal for the number of nodes;
/// refuses when stdin is not a terminal (`--yes` skips the question).
pub(crate) fn confirm_count(verb: &str, lines: &[String]) -> Result<(), String> {
    let n = lines.len();
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{verb} of {n} nodes needs --yes when stdin is not a terminal"
        ));
    }
    crate::text::warn(&format!("About to {verb} {n} nodes:"));
    for line in lines {
        crate::text::warn(&format!("  {line}"));
    }
    eprint!("Type {n} to go ahead: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer.trim() == n.to_string() {
        Ok(())
    } else {
        Err(format!("confirmation {:?} is not {n}", answer.trim()))
    }
}
