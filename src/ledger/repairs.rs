//! Repairs as the history store holds them (the audit log's records, indexed by `actions::audit`): each repair's
//! phases (detect → drain → jobs ended → reboot/reset → healthy → validated → undrained) and, for the ledger,
//! when a repair or its validation held a node.
//!
//! The store keeps each record as a line of text (`drain by alice: repair: XID 79 (slurm: scontrol …)` for an
//! intent, `repair-validate succeeded (exit 0): …` for an outcome); the action is its first word, and a repair's
//! intents carry its reason after `repair: ` (`repair::REASON_PREFIX`).

use std::collections::HashMap;

use super::classify::Cause;
use crate::inventory::{Inventory, NodeId};
use crate::store::{kind, Event};

/// The phases' ends, in order; the first, `detect`, is where the first phase starts.
pub(crate) const MARKS: [&str; 7] = [
    "detect",
    "drain",
    "jobs ended",
    "reboot/reset",
    "healthy",
    "validated",
    "undrained",
];

/// How a repair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Undrained: back in service.
    Done,
    /// A step failed (or another repair began): the node stayed drained.
    Failed,
    /// Still running at the end of what the store holds.
    Open,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Open => "open",
        }
    }
}

/// One repair of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    pub node: String,
    /// The repair's drain intent, Unix ms: when it began.
    pub started_ms: u64,
    /// The time of each of [`MARKS`], where the store has it (a reset writes no wait-back: its `healthy` is
    /// the start of validation, which the same look allows; no validation configured: no `validated`).
    pub marks: [Option<u64>; 7],
    pub status: Status,
    /// When it stopped holding the node: the undrain, or the next repair's start.
    pub ended_ms: Option<u64>,
    /// Validation runs: (start, end) of each `repair-validate`, the end `None` while running.
    validations: Vec<(u64, Option<u64>)>,
}

impl Repair {
    /// How long each phase took, in ms: from one mark to the next present one (a phase whose end mark is
    /// missing is `None`, and the following phase starts at the last mark present).
    pub(crate) fn phases(&self) -> [Option<u64>; 6] {
        let mut out = [None; 6];
        let mut last = self.marks[0];
        for (i, mark) in self.marks.iter().enumerate().skip(1) {
            if let (Some(from), Some(to)) = (last, *mark) {
                out[i - 1] = Some(to.saturating_sub(from));
            }
            if mark.is_some() {
                last = *mark;
            }
        }
        out
    }

    /// From detection (else the drain) to the undrain.
    pub fn total(&self) -> Option<u64> {
        let from = self.marks[0].or(Some(self.started_ms))?;
        Some(self.marks[6]?.saturating_sub(from))
    }
}

/// `(action, rest)` of a stored intent or outcome: its first word and what follows.
fn action(e: &Event) -> (&str, &str) {
    e.detail.split_once(' ').unwrap_or((e.detail.as_str(), ""))
}

fn succeeded(rest: &str) -> bool {
    rest.starts_with("succeeded")
}

/// A repair's intent: `drain by OPERATOR: repair: …`.
fn repair_drain(e: &Event) -> bool {
    let (act, rest) = action(e);
    e.kind == kind::ACTION
        && act == "drain"
        && rest
            .strip_prefix("by ")
            .and_then(|r| r.split_once(": "))
            .is_some_and(|(_, reason)| reason.starts_with("repair: "))
}

/// The repairs in `events` (any order; health, action and outcome events of any nodes), oldest first.
///
/// Every repair opens one `repair-wait-jobs` wait per node, so that intent marks a repair: it begins at the
/// repair drain just before it (a node the repair found drained already has none: the wait is its start). A
/// repair's later drains (keeping a failed node drained with a new reason) belong to it.
pub fn find(events: &[Event]) -> Vec<Repair> {
    let mut by_node: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in events {
        by_node.entry(e.node.as_str()).or_default().push(e);
    }
    let mut out = Vec::new();
    for (node, mut evs) in by_node {
        evs.sort_by_key(|e| e.time_ms);
        let mut open: Option<Repair> = None;
        // A repair drain not yet followed by its wait: (intent, the drain's success).
        let mut drain: Option<(u64, Option<u64>)> = None;
        for (i, e) in evs.iter().enumerate() {
            let t = e.time_ms;
            let (act, rest) = action(e);
            let ok = succeeded(rest);
            if repair_drain(e) {
                if open.is_none() {
                    drain = Some((t, None));
                }
                continue;
            }
            if e.kind == kind::ACTION && act == "repair-wait-jobs" {
                let (started, drained) = drain.take().map_or((t, t), |(s, d)| (s, d.unwrap_or(t)));
                if let Some(mut r) = open.take() {
                    r.ended_ms.get_or_insert(started);
                    out.push(r);
                }
                let mut marks = [None; 7];
                marks[0] = detected(&evs[..i], started);
                marks[1] = Some(drained);
                open = Some(Repair {
                    node: node.to_string(),
                    started_ms: started,
                    marks,
                    status: Status::Open,
                    ended_ms: None,
                    validations: Vec::new(),
                });
                continue;
            }
            if e.kind == kind::OUTCOME && act == "drain" && ok {
                if let Some((_, d)) = drain.as_mut() {
                    d.get_or_insert(t);
                }
            }
            let Some(r) = open.as_mut() else { continue };
            match (e.kind.as_str(), act) {
                (kind::ACTION, "repair-validate") => {
                    r.marks[4].get_or_insert(t);
                    r.validations.push((t, None));
                }
                (kind::OUTCOME, "repair-validate") => {
                    if let Some(v) = r.validations.last_mut().filter(|v| v.1.is_none()) {
                        v.1 = Some(t);
                    }
                    if ok {
                        r.marks[5].get_or_insert(t);
                    } else {
                        r.status = Status::Failed;
                    }
                }
                (kind::OUTCOME, "undrain") if ok => {
                    r.marks[6] = Some(t);
                    if r.status == Status::Open {
                        r.status = Status::Done;
                    }
                    r.ended_ms = Some(t);
                    out.extend(open.take());
                }
                (kind::OUTCOME, _) if r.status != Status::Open => {}
                (kind::OUTCOME, "repair-wait-jobs") if ok => {
                    r.marks[2].get_or_insert(t);
                }
                // A failed reset escalates to a reboot: the last restart that succeeded before the node was
                // back counts.
                (kind::OUTCOME, "reboot" | "reset") if ok && r.marks[4].is_none() => {
                    r.marks[3] = Some(t);
                }
                (kind::OUTCOME, "repair-wait-back") if ok => {
                    r.marks[4].get_or_insert(t);
                }
                (kind::OUTCOME, "repair-wait-jobs" | "repair-wait-back" | "reboot") => {
                    r.status = Status::Failed;
                }
                _ => {}
            }
        }
        out.extend(open);
    }
    out.sort_by(|a, b| (a.started_ms, &a.node).cmp(&(b.started_ms, &b.node)));
    out
}

/// When the fault the repair answers was seen: the earliest start of a crit spell (the node's or one of its
/// GPUs', by index) still running when the repair began. The store keeps health only when it changes, so each
/// GPU's last health event before the repair says how it stood.
fn detected(before: &[&Event], started: u64) -> Option<u64> {
    let mut last: HashMap<Option<u32>, &Event> = HashMap::new();
    for e in before
        .iter()
        .filter(|e| e.kind == kind::HEALTH && e.time_ms <= started)
    {
        last.insert(e.gpu, e);
    }
    last.values()
        .filter(|e| e.detail.starts_with("crit"))
        .map(|e| e.time_ms)
        .min()
}

/// Fills in the detection of repairs the store has none for (no view wrote the node's health) from a recording:
/// the start of the node's crit spell (`Hours::crit_spells`) still running when the repair began.
pub(crate) fn detect_from(
    repairs: &mut [Repair],
    inventory: &Inventory,
    crit_spells: &[Vec<(u64, u64)>],
) {
    for r in repairs.iter_mut().filter(|r| r.marks[0].is_none()) {
        let Some(spells) = inventory
            .find_node(&r.node)
            .and_then(|id| crit_spells.get(id))
        else {
            continue;
        };
        r.marks[0] = spells
            .iter()
            .find(|&&(from, to)| from <= r.started_ms && r.started_ms <= to)
            .map(|&(from, _)| from);
    }
}

/// Per node, when a repair or its validation held it, for the ledger.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// By node id: (start, end or open, cause), by start.
    spans: Vec<Vec<(u64, Option<u64>, Cause)>>,
}

impl Overlay {
    /// The spans of `repairs` on `inventory`'s nodes (others are skipped).
    pub fn new(inventory: &Inventory, repairs: &[Repair]) -> Overlay {
        let mut spans = vec![Vec::new(); inventory.nodes.len()];
        for r in repairs {
            let Some(id) = inventory.find_node(&r.node) else {
                continue;
            };
            spans[id].push((r.started_ms, r.ended_ms, Cause::Repair));
            for &(from, to) in &r.validations {
                spans[id].push((from, to.or(r.ended_ms), Cause::Validation));
            }
        }
        Overlay { spans }
    }

    /// What holds node `id` at `ms`: validation over the repair around it.
    pub fn at(&self, id: NodeId, ms: u64) -> Option<Cause> {
        self.spans
            .get(id)?
            .iter()
            .filter(|(from, to, _)| *from <= ms && to.is_none_or(|to| ms < to))
            .map(|(_, _, cause)| *cause)
            .min()
    }

    /// The next start or end of a span on node `id` after `ms`.
    pub(crate) fn next_change(&self, id: NodeId, ms: u64) -> Option<u64> {
        self.spans
            .get(id)?
            .iter()
            .flat_map(|(from, to, _)| [Some(*from), *to])
            .flatten()
            .filter(|&b| b > ms)
            .min()
    }
}

/// One phase over many repairs.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSummary {
    /// `detect → drain`, …, and `total`.
    pub phase: String,
    pub repairs: usize,
    pub median_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// Median (the lower of the middle two) and maximum of each phase and of the total, over the repairs that
/// have it.
pub fn summary(repairs: &[Repair]) -> Vec<PhaseSummary> {
    let mut columns: Vec<(String, Vec<u64>)> = (0..6)
        .map(|i| (format!("{} → {}", MARKS[i], MARKS[i + 1]), Vec::new()))
        .collect();
    columns.push(("total".into(), Vec::new()));
    for r in repairs {
        for (i, ms) in r.phases().iter().enumerate() {
            columns[i].1.extend(ms);
        }
        columns[6].1.extend(r.total());
    }
    columns
        .into_iter()
        .map(|(phase, mut ms)| {
            ms.sort_unstable();
            PhaseSummary {
                phase,
                repairs: ms.len(),
                median_ms: ms.get(ms.len().saturating_sub(1) / 2).copied(),
                max_ms: ms.last().copied(),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "repairs_tests.rs"]
mod tests;
