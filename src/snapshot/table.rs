//! The human table: one aligned row per node, worst first, then fleet totals.

use std::fmt::Write;

use super::report::Report;
use crate::fleet::view::{NodeView, Summary};
use crate::inventory::site_of;

const HEADERS: [&str; 11] = [
    "NODE", "CABINET", "TENANT", "STATE", "HEALTH", "SOURCE", "AGE", "GPUS", "UTIL", "TEMP",
    "POWER",
];

fn cells(v: &NodeView) -> [String; 11] {
    let utils: Vec<u32> = v.gpus.iter().filter_map(|g| g.sample.util_pct).collect();
    let avg_util =
        (!utils.is_empty()).then(|| utils.iter().sum::<u32>() as f64 / utils.len() as f64);
    let max_temp = v.gpus.iter().filter_map(|g| g.sample.temp_c).max();
    let power = crate::telemetry::total(v.gpus.iter().filter_map(|g| g.sample.power_w));
    let dash = || "-".to_string();
    [
        v.name.to_string(),
        v.cabinet.to_string(),
        v.tenant.clone().unwrap_or_else(|| "spare".into()),
        v.state.as_str().to_string(),
        v.verdict.health.as_str().to_string(),
        v.source.map_or_else(dash, |s| s.as_str().to_string()),
        v.sample_age
            .map_or_else(dash, |a| format!("{:.1}s", a.as_secs_f64())),
        format!(
            "{}/{}",
            crate::fleet::view::gpus_seen(&v.gpus),
            v.expected_gpus
        ),
        avg_util.map_or_else(dash, |u| format!("{u:.0}%")),
        max_temp.map_or_else(dash, |t| format!("{t}°C")),
        if v.gpus.is_empty() {
            dash()
        } else {
            format!("{:.0}W", power)
        },
    ]
}

pub fn render(report: &Report) -> String {
    let mut order: Vec<&NodeView> = report.nodes.iter().collect();
    // Worst first: the operator reads the top of the table.
    order.sort_by(|a, b| {
        b.verdict
            .health
            .cmp(&a.verdict.health)
            .then_with(|| a.id.cmp(&b.id))
    });
    // Several sites (`--context all`): a SITE column first.
    let sited = !report.sites.is_empty();
    let site_cell = |v: &NodeView| sited.then(|| site_of(v.name).unwrap_or("-").to_string());
    // Where a scheduler was asked: a JOBS column, `-` for a node it was not asked about.
    let jobs_cell = |v: &NodeView| {
        report
            .workload
            .map(|_| report.jobs(v).map_or("-".into(), |j| j.len().to_string()))
    };
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|v| {
            site_cell(v)
                .into_iter()
                .chain(cells(v))
                .chain(jobs_cell(v))
                .collect()
        })
        .collect();
    let headers: Vec<String> = sited
        .then_some("SITE")
        .into_iter()
        .chain(HEADERS)
        .chain(report.workload.map(|_| "JOBS"))
        .map(String::from)
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String], note: &str| {
        for (cell, &w) in row.iter().zip(&widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{note}");
    };
    line(&mut out, &headers, "NOTES");
    for (row, v) in rows.iter().zip(&order) {
        let mut notes = v.verdict.reasons.join("; ");
        // Who took the node out and why, before its reasons: the operator sees it is owned.
        if let Some(o) = v
            .operations
            .as_ref()
            .filter(|o| o.activity.out_of_service())
        {
            notes = if notes.is_empty() {
                o.describe()
            } else {
                format!("{}; {notes}", o.describe())
            };
        }
        if let (Some(e), false) = (&v.error, v.state.is_failure()) {
            notes = if notes.is_empty() {
                e.clone()
            } else {
                format!("{notes}; {e}")
            };
        }
        line(&mut out, row, &notes);
    }
    let s = &report.summary;
    let out_of_service = if s.out_of_service > 0 {
        format!(
            ", {} out of service (health in service {})",
            s.out_of_service,
            s.health_in_service.as_str()
        )
    } else {
        String::new()
    };
    let _ = writeln!(out, "\n{}{out_of_service}", totals(s));
    for (site, s) in &report.sites {
        let _ = writeln!(out, "  {site}: {}", totals(s));
    }
    drift_summary(&mut out, report);
    out
}

/// Most node names listed for one drifting value.
const NAMES_SHOWN: usize = 12;

/// The drift section: each value some nodes run that differs from the reference, with the nodes.
fn drift_summary(out: &mut String, report: &Report) {
    let differing: Vec<(&str, &super::report::DriftValue, Option<&str>)> = report
        .drift
        .iter()
        .flat_map(|d| {
            d.values
                .iter()
                .filter(|v| !v.is_reference)
                .map(move |v| (d.aspect, v, d.reference.as_deref()))
        })
        .collect();
    if differing.is_empty() {
        let _ = writeln!(
            out,
            "drift: none (agent, driver, GPU model, VBIOS and GPU count agree on every node that reported)"
        );
        return;
    }
    let _ = writeln!(out, "drift:");
    for (aspect, v, reference) in differing {
        let mut names = v.nodes[..v.nodes.len().min(NAMES_SHOWN)].join(" ");
        if v.nodes.len() > NAMES_SHOWN {
            let _ = write!(names, " and {} more", v.nodes.len() - NAMES_SHOWN);
        }
        let plural = if v.count == 1 { "" } else { "s" };
        let versus = reference.map_or(String::new(), |r| format!(" ({r})"));
        let flag = if v.drift.is_some() { "warn" } else { "note" };
        let _ = writeln!(
            out,
            "  {flag}  {aspect:<9} {} on {} node{plural}{versus}: {names}",
            crate::text::escape(&v.value),
            v.count
        );
    }
}

/// `12 nodes (11 up), 96 of 96 GPUs seen, 1 warn, 0 crit, 8.4 kW — health warn`: the fleet's or one site's.
fn totals(s: &Summary) -> String {
    format!(
        "{} nodes ({} up), {} of {} GPUs seen, {} warn, {} crit, {:.1} kW — health {}",
        s.nodes,
        s.nodes_up,
        s.gpus_seen,
        s.gpus_expected,
        s.warn,
        s.crit,
        s.power_watts / 1000.0,
        s.health.as_str()
    )
}
