//! The guards: why a request is refused before anything runs. The read-only rule, the drained rule for
//! reboots and resets, the foreign-drain rule for undrains and the fraction rule for drains live here, for
//! the command line, the TUI and repair alike.

use std::collections::HashMap;

use super::request::{ActionKind, Request};
use super::status::{DrainState, NodeDrain};
use crate::inventory::{DrainBackend, Inventory, NodeId, RebootBackend};

/// Whether actions are refused: asked for (`--read-only`, `read_only` in config.toml) or set by the
/// inventory (`[actions] read_only`). The one spelling of the read-only rule.
pub fn read_only(asked: bool, inv: &Inventory) -> bool {
    asked || inv.actions.read_only
}

/// The refusal a read-only fleetop gives for `action` (`drain`, `deploy`, `repair`…).
pub(crate) fn read_only_refusal(action: &str) -> String {
    format!("read-only: {action} refused (--read-only or [actions] read_only)")
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
    if self::read_only(read_only, inv) {
        refusals.push(read_only_refusal(req.kind.as_str()));
        return refusals;
    }
    // A merged inventory holds the first site's backends and SSH settings: acting on another site's node
    // through them would reach the wrong controller.
    if !inv.sites().is_empty() {
        refusals.push(format!(
            "{} refused across sites (--context all): act in the node's own context (:ctx SITE, or SITE/NODESET \
             on the command line)",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_across_sites_are_refused_and_one_sites_are_not() {
        let text = "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-4]\"\n";
        let east = Inventory::parse("east.toml", text).unwrap();
        let west = Inventory::parse("west.toml", text).unwrap();
        let sites = [
            ("east".into(), east.into()),
            ("west".into(), west.clone().into()),
        ];
        let merged = Inventory::merge(&sites).unwrap();
        let req = Request {
            kind: ActionKind::Drain,
            nodes: vec![4],
            reason: Some("psu".into()),
            operator: "ops".into(),
            force: false,
            read_only: false,
            gpu: None,
            keep_drained: false,
        };
        let refused = guard(&merged, &req, false, &HashMap::new());
        assert!(
            refused
                .iter()
                .any(|r| r.contains("drain refused across sites")),
            "{refused:?}"
        );
        let one_site = guard(
            &west,
            &Request {
                nodes: vec![0],
                ..req
            },
            false,
            &HashMap::new(),
        );
        assert!(
            one_site.iter().all(|r| !r.contains("across sites")),
            "{one_site:?}"
        );
    }
}
