//! The ledger as a table, CSV or JSON: GPU-hours grouped by tenant, cabinet or cause, then each repair's phases
//! and their median and maximum. Node and reason text is escaped (`text.rs`); CSV cells go through the
//! snapshot's cell writer, which opens a would-be formula as text.

use std::collections::BTreeMap;

use super::book::{Hours, Tally, MS_PER_HOUR};
use super::classify::Cause;
use super::repairs::{self, Repair, MARKS};
use crate::snapshot::csv::field;
use crate::text::escape;

/// How the hours are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Tenant,
    Cabinet,
    /// The whole fleet, one row per cause and reason.
    Cause,
}

impl By {
    fn as_str(self) -> &'static str {
        match self {
            By::Tenant => "tenant",
            By::Cabinet => "cabinet",
            By::Cause => "cause",
        }
    }
}

/// What `fleetop report` prints.
pub(crate) struct Report<'a> {
    /// `None`: no recording covers the window, so GPU-hours are unknown.
    pub hours: Option<&'a Hours>,
    /// The window asked for, Unix ms.
    pub window: (u64, u64),
    pub repairs: &'a [Repair],
    pub by: By,
}

/// The GPU's tenant: the tenancy holding its index (or the whole node); `-` for none.
fn tenant_of(hours: &Hours, node: usize, gpu: u32) -> String {
    let inv = &hours.inventory;
    inv.nodes[node]
        .tenancy
        .iter()
        .find(|t| t.gpus.as_ref().is_none_or(|g| g.contains(&gpu)))
        .map_or_else(|| "-".into(), |t| inv.tenants[t.tenant].name.clone())
}

/// Each group's tally, by name, and the fleet's.
pub fn groups(hours: &Hours, by: By) -> (BTreeMap<String, Tally>, Tally) {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for (node, tallies) in hours.gpus.iter().enumerate() {
        for (gpu, tally) in tallies.iter().enumerate() {
            all.add(tally);
            let key = match by {
                By::Tenant => tenant_of(hours, node, gpu as u32),
                By::Cabinet => {
                    let cabinet = hours.inventory.nodes[node].cabinet;
                    hours.inventory.cabinets[cabinet].name.clone()
                }
                By::Cause => continue,
            };
            out.entry(key).or_default().add(tally);
        }
    }
    (out, all)
}

fn h(ms: u64) -> String {
    format!("{:.2}", ms as f64 / MS_PER_HOUR)
}

fn time(ms: u64) -> String {
    crate::text::rfc3339_ms(ms)
}

/// Where the recorder was stopped inside the recorded part, the first [`GAPS_SHOWN`] of them.
fn gaps_lines(hours: &Hours) -> String {
    let mut out = String::new();
    for &(a, b) in hours.gaps.iter().take(GAPS_SHOWN) {
        out += &format!(
            "not recorded {} to {} ({}): the recorder was stopped\n",
            time(a),
            time(b),
            span(Some(b - a))
        );
    }
    let more = hours.gaps.len().saturating_sub(GAPS_SHOWN) + hours.gaps_unlisted;
    if more > 0 {
        out += &format!("not recorded: {more} more gaps (--format json lists them)\n");
    }
    out
}

/// Recorder stops the table lists; JSON lists them all.
const GAPS_SHOWN: usize = 8;

fn span(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| crate::workload::duration(ms / 1000))
}

/// The columns of a grouped row, after its name.
const COLUMNS: [&str; 9] = [
    "inventory",
    "healthy",
    "in_use",
    "unreachable",
    "crit",
    "repair",
    "validation",
    "drained",
    "unrecorded",
];

fn row_values(t: &Tally) -> [u64; 9] {
    [
        t.inventory_ms,
        t.healthy_ms,
        t.in_use_ms,
        t.lost(Cause::Unreachable),
        t.lost(Cause::Crit),
        t.lost(Cause::Repair),
        t.lost(Cause::Validation),
        t.lost(Cause::Drained),
        t.lost(Cause::Unrecorded),
    ]
}

/// (cause, reason, ms) rows of the fleet's tally: healthy and in use first, then each loss.
fn cause_rows(all: &Tally) -> Vec<(String, String, u64)> {
    let mut rows = vec![
        ("healthy".to_string(), String::new(), all.healthy_ms),
        ("in_use".to_string(), String::new(), all.in_use_ms),
    ];
    for cause in Cause::ALL {
        for ((c, reason), ms) in &all.lost_ms {
            if *c == cause {
                rows.push((cause.as_str().into(), reason.clone(), *ms));
            }
        }
    }
    rows
}

impl Report<'_> {
    pub fn table(&self) -> String {
        let mut out = format!(
            "GPU-hours from {} to {}",
            time(self.window.0),
            time(self.window.1)
        );
        match self.hours {
            None => out += ": unknown (no recording covers this window)\n",
            Some(hours) => {
                match hours.recorded {
                    Some((a, b)) => out += &format!("; recorded {} to {}\n", time(a), time(b)),
                    None => out += "; nothing recorded\n",
                }
                out += &gaps_lines(hours);
                let (groups, all) = groups(hours, self.by);
                if self.by == By::Cause {
                    out += &format!(
                        "{:<12} {:<48} {:>12} {:>7}\n",
                        "CAUSE", "REASON", "GPU-HOURS", "SHARE"
                    );
                    for (cause, reason, ms) in cause_rows(&all) {
                        let cause = cause.replace('_', " ");
                        let share = 100.0 * ms as f64 / all.inventory_ms.max(1) as f64;
                        out += &format!(
                            "{cause:<12} {:<48} {:>12} {share:>6.2}%\n",
                            escape(&reason),
                            h(ms)
                        );
                    }
                    out += &format!(
                        "{:<12} {:<48} {:>12}\n",
                        "inventory",
                        "",
                        h(all.inventory_ms)
                    );
                } else {
                    out += &format!("{:<16}", self.by.as_str().to_uppercase());
                    for c in COLUMNS {
                        out += &format!(" {:>11}", c.to_uppercase().replace('_', " "));
                    }
                    out += "\n";
                    for (name, t) in groups
                        .iter()
                        .map(|(n, t)| (n.as_str(), t))
                        .chain([("(all)", &all)])
                    {
                        out += &format!("{:<16}", escape(name));
                        for v in row_values(t) {
                            out += &format!(" {:>11}", h(v));
                        }
                        out += "\n";
                    }
                }
            }
        }
        out += &format!("\nRepairs begun in the window: {}\n", self.repairs.len());
        if !self.repairs.is_empty() {
            out += &format!("{:<14} {:<20} {:<7}", "NODE", "STARTED", "STATUS");
            for i in 0..6 {
                out += &format!(" {:>13}", format!("→{}", MARKS[i + 1]));
            }
            out += &format!(" {:>8}\n", "TOTAL");
            for r in self.repairs {
                out += &format!(
                    "{:<14} {:<20} {:<7}",
                    escape(&r.node),
                    time(r.started_ms),
                    r.status.as_str()
                );
                for p in r.phases() {
                    out += &format!(" {:>13}", span(p));
                }
                out += &format!(" {:>8}\n", span(r.total()));
            }
            out += &format!(
                "\n{:<28} {:>7} {:>8} {:>8}\n",
                "PHASE", "REPAIRS", "MEDIAN", "MAX"
            );
            for p in repairs::summary(self.repairs) {
                out += &format!(
                    "{:<28} {:>7} {:>8} {:>8}\n",
                    p.phase,
                    p.repairs,
                    span(p.median_ms),
                    span(p.max_ms)
                );
            }
        }
        out
    }

    /// Long form, one value a row: `section,group,cause,reason,node,started,value,unit`.
    pub fn csv(&self) -> String {
        let mut out = String::from("section,group,cause,reason,node,started,value,unit\n");
        let mut row = |cells: [&str; 8]| {
            let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
            out += &cells.join(",");
            out += "\n";
        };
        if let Some(hours) = self.hours {
            let (groups, all) = groups(hours, self.by);
            if self.by == By::Cause {
                for (cause, reason, ms) in cause_rows(&all) {
                    row([
                        "hours",
                        "(all)",
                        &cause,
                        &reason,
                        "",
                        "",
                        &h(ms),
                        "gpu-hours",
                    ]);
                }
                row([
                    "hours",
                    "(all)",
                    "inventory",
                    "",
                    "",
                    "",
                    &h(all.inventory_ms),
                    "gpu-hours",
                ]);
            } else {
                for (name, t) in groups
                    .iter()
                    .map(|(n, t)| (n.as_str(), t))
                    .chain([("(all)", &all)])
                {
                    for (c, v) in COLUMNS.iter().zip(row_values(t)) {
                        row(["hours", name, c, "", "", "", &h(v), "gpu-hours"]);
                    }
                }
            }
        }
        for r in self.repairs {
            let started = time(r.started_ms);
            for (i, p) in r.phases().iter().enumerate() {
                if let Some(ms) = p {
                    let phase = format!("{} → {}", MARKS[i], MARKS[i + 1]);
                    let secs = (ms / 1000).to_string();
                    row([
                        "repair",
                        r.status.as_str(),
                        &phase,
                        "",
                        &r.node,
                        &started,
                        &secs,
                        "seconds",
                    ]);
                }
            }
        }
        for p in repairs::summary(self.repairs) {
            for (stat, v) in [("median", p.median_ms), ("max", p.max_ms)] {
                if let Some(ms) = v {
                    let secs = (ms / 1000).to_string();
                    row(["phase", stat, &p.phase, "", "", "", &secs, "seconds"]);
                }
            }
        }
        out
    }

    pub fn json(&self) -> String {
        let hours = self.hours.map(|hours| {
            let (groups, all) = groups(hours, self.by);
            let tally = |t: &Tally| {
                let mut lost = serde_json::Map::new();
                for cause in Cause::ALL {
                    let reasons: serde_json::Map<String, serde_json::Value> = t
                        .lost_ms
                        .iter()
                        .filter(|((c, _), _)| *c == cause)
                        .map(|((_, r), ms)| {
                            (r.clone(), serde_json::json!(*ms as f64 / MS_PER_HOUR))
                        })
                        .collect();
                    lost.insert(
                        cause.as_str().into(),
                        serde_json::json!({
                            "gpu_hours": t.lost(cause) as f64 / MS_PER_HOUR,
                            "by_reason": reasons,
                        }),
                    );
                }
                serde_json::json!({
                    "inventory": t.inventory_ms as f64 / MS_PER_HOUR,
                    "healthy": t.healthy_ms as f64 / MS_PER_HOUR,
                    "in_use": t.in_use_ms as f64 / MS_PER_HOUR,
                    "lost": lost,
                })
            };
            serde_json::json!({
                "recorded": hours.recorded.map(|(a, b)| [time(a), time(b)]),
                "not_recorded": hours.gaps.iter().map(|&(a, b)| [time(a), time(b)]).collect::<Vec<_>>(),
                "not_recorded_unlisted": hours.gaps_unlisted,
                "by": self.by.as_str(),
                "fleet": tally(&all),
                "groups": groups.iter().map(|(name, t)| {
                    let mut v = tally(t);
                    v["name"] = serde_json::json!(name);
                    v
                }).collect::<Vec<_>>(),
            })
        });
        let secs = |ms: Option<u64>| ms.map(|ms| ms as f64 / 1000.0);
        let doc = serde_json::json!({
            "schema": "fleetop.report/1",
            "window": [time(self.window.0), time(self.window.1)],
            "gpu_hours": hours,
            "repairs": self.repairs.iter().map(|r| {
                let marks: serde_json::Map<String, serde_json::Value> = MARKS.iter().zip(r.marks)
                    .map(|(m, t)| (m.to_string(), serde_json::json!(t.map(time))))
                    .collect();
                let phases: serde_json::Map<String, serde_json::Value> = r.phases().iter().enumerate()
                    .map(|(i, p)| (format!("{} → {}", MARKS[i], MARKS[i + 1]), serde_json::json!(secs(*p))))
                    .collect();
                serde_json::json!({
                    "node": r.node,
                    "started": time(r.started_ms),
                    "status": r.status.as_str(),
                    "times": marks,
                    "phases_s": phases,
                    "total_s": secs(r.total()),
                })
            }).collect::<Vec<_>>(),
            "phases": repairs::summary(self.repairs).iter().map(|p| serde_json::json!({
                "phase": p.phase,
                "repairs": p.repairs,
                "median_s": secs(p.median_ms),
                "max_s": secs(p.max_ms),
            })).collect::<Vec<_>>(),
        });
        crate::text::json_safe(format!("{doc:#}\n"))
    }
}
