//! `fleetop check`: validates an inventory and summarises what it describes.

use std::fmt::Write;

use crate::cli::Global;
use crate::config::{Context, ContextSource};
use crate::inventory::Inventory;
use crate::runtime::EXIT_CANNOT_RUN;

pub fn run(g: &Global) -> i32 {
    let loaded =
        super::load::load_inventory(g).and_then(|inv| Ok((inv, crate::config::Config::load()?)));
    match loaded {
        Ok((inv, config)) => {
            crate::text::print(&summary(&inv));
            crate::text::print(&contexts(&config.contexts, super::load::chosen_context(g)));
            for warning in super::load::shared_audit_logs(&config.contexts) {
                crate::text::warn(&warning);
            }
            0
        }
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

/// The `[[context]]`s of config.toml, the chosen one marked `*`; nothing when there are none.
pub fn contexts(contexts: &[Context], chosen: Option<String>) -> String {
    let mut out = String::new();
    if contexts.is_empty() {
        return out;
    }
    let _ = writeln!(out, "  contexts      {}", contexts.len());
    for c in contexts {
        let mark = if chosen.as_deref() == Some(c.name.as_str()) {
            '*'
        } else {
            ' '
        };
        let source = match &c.source {
            None => "the inventory's [source]".to_string(),
            Some(ContextSource::Given(None)) => "ssh".to_string(),
            Some(ContextSource::Given(Some(p))) => format!("prometheus {}", p.url),
            Some(ContextSource::FromInventory(path)) => format!("[source] of {}", path.display()),
        };
        // Records carry the site: two contexts of one site share them, so say which.
        let site = if c.site == c.name {
            String::new()
        } else {
            format!("  site: {}", c.site)
        };
        let _ = writeln!(
            out,
            "   {mark}context {:<12} {}  source: {}{site}",
            c.name,
            crate::text::escape(&c.inventory.display().to_string()),
            crate::text::escape(&source)
        );
    }
    out
}

pub fn summary(inv: &Inventory) -> String {
    let split = inv
        .nodes
        .iter()
        .filter(|n| n.tenancy.iter().any(|t| t.gpus.is_some()))
        .count();
    let shared = inv.nodes.iter().filter(|n| n.tenancy.len() > 1).count();
    let spare = inv.nodes.iter().filter(|n| n.tenancy.is_empty()).count();
    let budget = crate::telemetry::total(inv.cabinets.iter().filter_map(|c| c.power_budget_kw));
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", inv.source);
    let _ = writeln!(out, "  cabinets      {}", inv.cabinets.len());
    let _ = writeln!(out, "  nodes         {} ({spare} spare)", inv.nodes.len());
    let _ = writeln!(out, "  GPUs expected {}", inv.gpus_expected());
    let _ = writeln!(out, "  tenants       {}", inv.tenants.len());
    let _ = writeln!(
        out,
        "  split nodes   {split} held per GPU, {shared} shared by two or more tenants"
    );
    let _ = writeln!(
        out,
        "  overlaps      none (a node held twice on the same GPUs is an error)"
    );
    let _ = writeln!(out, "  power budget  {budget:.1} kW");
    let _ = writeln!(
        out,
        "  interval      {} ms",
        inv.settings.interval.as_millis()
    );
    for t in &inv.tenants {
        let gpus: u64 = t
            .nodes
            .iter()
            .map(|&n| {
                let node = &inv.nodes[n];
                node.tenancy
                    .iter()
                    .filter(|h| inv.tenants[h.tenant].name == t.name)
                    .map(|h| {
                        h.gpus
                            .as_ref()
                            .map_or(u64::from(node.expected_gpus), |g| g.len() as u64)
                    })
                    .sum::<u64>()
            })
            .sum();
        let _ = writeln!(
            out,
            "    tenant {:<12} {:>4} nodes {:>5} GPUs",
            t.name,
            t.nodes.len(),
            gpus
        );
    }
    out
}
