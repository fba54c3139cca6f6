//! `fleetop deploy NODESET`: install the agent binary on nodes and report each node and a summary.
//! Exit status: 0 every node is current or updated, 1 some node failed, 2 refused, 3 bad input.

use super::actions::{confirm_count, refused, resolve_nodes};
use super::load::load_inventory;
use crate::actions::deploy::{self, DeployProgress, DeployRequest, NodeDeploy};
use crate::cli::{ActionFormat, DeployArgs, Global};
use crate::runtime::{EXIT_CANNOT_RUN, EXIT_FAILED};

pub fn run(g: &Global, args: &DeployArgs) -> i32 {
    let prepared = (|| -> Result<_, String> {
        let (g, nodeset) = super::load::site_scoped(g, &args.nodes)?;
        let inv = load_inventory(&g)?;
        let read_only = crate::config::Config::load()?.read_only;
        let nodes = resolve_nodes(&inv, &nodeset)?;
        let payload = deploy::payload(args.binary.as_deref())?;
        Ok((inv, read_only, nodes, payload))
    })();
    let (inv, config_read_only, nodes, payload) = match prepared {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    let req = DeployRequest {
        nodes,
        dry_run: args.dry_run,
        read_only: g.read_only || config_read_only,
        operator: crate::actions::operator(),
        reason: args.reason.clone(),
        parallel: args.parallel,
        systemd: args.systemd.then(|| deploy::Systemd {
            unit_dir: args.unit_dir.clone(),
            listen: args.listen.clone(),
        }),
    };
    let will_ask = !(args.dry_run || args.yes || crate::actions::read_only(req.read_only, &inv));
    if will_ask && req.nodes.len() > 1 {
        let lines: Vec<String> = req
            .nodes
            .iter()
            .map(|&n| {
                format!(
                    "{}: {}",
                    inv.nodes[n].name,
                    deploy::install_path(&inv, n).unwrap_or_else(|e| e)
                )
            })
            .collect();
        if let Err(why) = confirm_count("deploy the agent to", &lines) {
            return refused(&[why]);
        }
    }
    let table = args.format == ActionFormat::Table;
    if table {
        crate::text::warn(&format!(
            "deploying sha256:{} ({} bytes, {}; {} bytes as given, {}; {} bytes per node on the wire) to {} nodes",
            payload.sha256.get(..12).unwrap_or(""),
            payload.installed_len,
            payload.arch,
            payload.source_len,
            payload.stripped,
            payload.compressed.len(),
            req.nodes.len()
        ));
    }
    let mut results: Vec<NodeDeploy> = Vec::new();
    let mut refusals = Vec::new();
    let mut stopped = None;
    deploy::deploy(&inv, &req, &payload, g.demo, |progress| match progress {
        DeployProgress::Refused(r) => refusals = r,
        DeployProgress::Finished(result) => {
            if table {
                // Printed as each node ends, so a long deploy shows progress; the node's words are escaped.
                crate::text::println(&format!(
                    "{:<12} {:<12} {:>6} ms  {}",
                    result.node,
                    result.outcome,
                    result.duration_ms,
                    crate::text::escape(&line(&result))
                ));
            }
            results.push(result);
        }
        DeployProgress::Stopped(why) => stopped = Some(why),
    });
    if !refusals.is_empty() {
        return refused(&refusals);
    }
    let reached: std::collections::HashSet<&str> =
        results.iter().map(|r| r.node.as_str()).collect();
    let untouched: Vec<&str> = req
        .nodes
        .iter()
        .map(|&n| inv.nodes[n].name.as_str())
        .filter(|n| !reached.contains(n))
        .collect();
    let count = |o: &str| results.iter().filter(|r| r.outcome == o).count();
    match args.format {
        ActionFormat::Json => {
            let doc = serde_json::json!({
                "action": "deploy",
                "sha256": payload.sha256,
                "source_sha256": payload.source_sha256,
                "stripped": payload.stripped,
                "bytes": {
                    "given": payload.source_len,
                    "installed": payload.installed_len,
                    "compressed": payload.compressed.len(),
                },
                "operator": req.operator,
                "dry_run": req.dry_run,
                "nodes": results,
                "not_attempted": untouched,
            });
            crate::text::println(&crate::text::json_safe(
                serde_json::to_string_pretty(&doc).unwrap_or_default(),
            ));
        }
        ActionFormat::Table => {
            let mut summary = format!(
                "{} updated, {} already current, {} failed",
                count("updated"),
                count("current"),
                count("failed")
            );
            if req.dry_run {
                summary = format!(
                    "{} would be updated, {} already current, {} failed",
                    count("would-update"),
                    count("current"),
                    count("failed")
                );
            }
            if !untouched.is_empty() {
                summary += &format!(", {} not attempted", untouched.len());
            }
            crate::text::println(&summary);
        }
    }
    if let Some(why) = &stopped {
        crate::text::warn(&format!(
            "stopped: nodes not yet started were not touched: {why}"
        ));
    }
    if count("failed") > 0 || stopped.is_some() || !untouched.is_empty() {
        EXIT_FAILED
    } else {
        0
    }
}

/// One line about a node: what it ran and runs now, or why it failed.
fn line(r: &NodeDeploy) -> String {
    match (r.outcome, &r.from, &r.to) {
        ("updated", from, Some(to)) => format!(
            "{} → {to} at {}",
            from.as_deref().unwrap_or("nothing"),
            r.path
        ),
        ("current", from, _) => {
            format!("{} at {}", from.as_deref().unwrap_or("this build"), r.path)
        }
        ("would-update", from, _) => format!(
            "{} → this build at {}",
            from.as_deref().unwrap_or("nothing"),
            r.path
        ),
        _ => r.detail.clone(),
    }
}
