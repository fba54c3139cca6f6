//! What one GPU is at one moment, for the ledger: in service and healthy (and busy or not), or lost to one cause.
//! Every verdict here is fleet state's own (`FleetState::node_view`: health from `telemetry::health`, state
//! from the age of the data, operations from `fleet/operations.rs`); this only picks the cause that explains
//! a GPU's time, in a fixed order.

use std::time::Instant;

use crate::fleet::operations::Activity;
use crate::fleet::view::{NodeView, Pending};
use crate::fleet::{FleetState, NodeState};
use crate::inventory::NodeId;
use crate::telemetry::health::Health;

/// Why a GPU's time was not available, most specific first: a repair's validation, the repair, another
/// operator's drain or restart, no fresh data, a crit verdict. The order decides when several hold at once (a
/// node rebooting in a repair gives no data, and its time is the repair's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// A repair's validation was running (from its audited `repair-validate` intent to the outcome).
    Validation,
    /// Drained for a repair: from the repair's drain to its undrain (or the node still drained).
    Repair,
    /// Out of service otherwise: drained, draining, rebooting or resetting by an operator.
    Drained,
    /// No fresh sample: the node or the GPU gave no data for longer than fleet state's staleness rule.
    Unreachable,
    /// Answering, and judged crit (by the reason that set the verdict).
    Crit,
    /// Outside every recording: nothing is known about the time.
    Unrecorded,
}

impl Cause {
    pub const ALL: [Cause; 6] = [
        Cause::Unreachable,
        Cause::Crit,
        Cause::Repair,
        Cause::Validation,
        Cause::Drained,
        Cause::Unrecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Validation => "validation",
            Cause::Repair => "repair",
            Cause::Drained => "drained",
            Cause::Unreachable => "unreachable",
            Cause::Crit => "crit",
            Cause::Unrecorded => "unrecorded",
        }
    }
}

/// One GPU at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GpuClass {
    /// `None`: in service and not crit (ok or warn).
    pub lost: Option<(Cause, String)>,
    /// Healthy and running something: processes on it, or utilisation above zero.
    pub busy: bool,
}

/// Each expected GPU of node `id` (indices `0..expected_gpus`) at `now`; `repair` is what the history store
/// says of the node then (a repair or its validation running).
pub fn node(state: &FleetState, id: NodeId, now: Instant, repair: Option<Cause>) -> Vec<GpuClass> {
    let view = state.node_view(id, now, Pending::Connecting);
    (0..view.expected_gpus)
        .map(|index| gpu(&view, index, repair))
        .collect()
}

fn gpu(view: &NodeView, index: u32, repair: Option<Cause>) -> GpuClass {
    let lost = |cause: Cause, why: &str| GpuClass {
        lost: Some((cause, why.to_string())),
        busy: false,
    };
    if let Some(cause) = repair {
        return lost(cause, "");
    }
    if let Some(ops) = view
        .operations
        .as_ref()
        .filter(|o| o.activity.out_of_service())
    {
        // A repair fleet state heard of (the TUI's or `repair`'s step, recorded) without the store's record.
        if ops.activity == Activity::InRepair {
            return lost(Cause::Repair, "");
        }
        return lost(Cause::Drained, ops.activity.as_str());
    }
    if view.data_state != NodeState::Up {
        return lost(Cause::Unreachable, view.data_state.as_str());
    }
    let Some(g) = view.gpus.iter().find(|g| g.sample.index == index) else {
        return lost(Cause::Unreachable, "GPU missing from the node's sample");
    };
    if g.verdict.health == Health::Crit {
        return lost(Cause::Crit, &reason_key(g.verdict.worst_reason()));
    }
    // A node-level fault (an NVSwitch SXid, a restart overdue, a GPU missing) takes every GPU of the node; a
    // node crit only through another of its GPUs (`GPU 3: …`) does not take this one.
    if view.verdict.health == Health::Crit {
        if let Some(why) = view.verdict.worst_reason().filter(|r| !names_a_gpu(r)) {
            return lost(Cause::Crit, &reason_key(Some(why)));
        }
    }
    let s = g.sample;
    GpuClass {
        lost: None,
        busy: s.processes.as_ref().is_some_and(|p| !p.is_empty())
            || s.util_pct.is_some_and(|u| u > 0),
    }
}

/// `GPU 3: …`: a node reason that repeats one of its GPUs' reasons (`fleet/view.rs` writes them so).
fn names_a_gpu(reason: &str) -> bool {
    reason
        .strip_prefix("GPU ")
        .and_then(|r| r.split_once(": "))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A crit reason as a group key: `XID 79` or `NVSwitch SXid 12028` by code; otherwise the reason up to its
/// first `:` or ` (`, every number written `N` (`N uncorrected ECC errors`), so counts, ages and readings do not
/// split one cause into many rows. Escaped: node text may be in it.
pub(crate) fn reason_key(reason: Option<&str>) -> String {
    let Some(reason) = reason else {
        return "unknown".into();
    };
    for prefix in ["XID ", "NVSwitch SXid "] {
        if let Some(rest) = reason.strip_prefix(prefix) {
            let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !code.is_empty() {
                return format!("{prefix}{code}");
            }
        }
    }
    let head = reason
        .split([':'])
        .next()
        .unwrap_or(reason)
        .split(" (")
        .next()
        .unwrap_or(reason);
    let mut key = String::new();
    let mut in_number = false;
    for c in head.trim().chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                key.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            key.push(c);
        }
    }
    crate::text::cut(&key, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_group_by_code_or_by_their_words() {
        let key = |r: &str| reason_key(Some(r));
        assert_eq!(
            key("XID 79 (2×): GPU has fallen off the bus, 3 min ago"),
            "XID 79"
        );
        assert_eq!(
            key("NVSwitch SXid 12028 (1×): fatal"),
            "NVSwitch SXid 12028"
        );
        assert_eq!(key("3 uncorrected ECC errors"), "N uncorrected ECC errors");
        assert_eq!(
            key("memory temperature 97.5 °C above its maximum 95 °C"),
            "memory temperature N °C above its maximum N °C"
        );
        assert_eq!(
            key("row remapping failed: RMA the GPU"),
            "row remapping failed"
        );
        assert_eq!(key("\x1b[31mred"), "\\x1b[Nmred");
        assert_eq!(reason_key(None), "unknown");
        assert!(names_a_gpu("GPU 3: XID 79"));
        assert!(!names_a_gpu("GPU count: 7 of 8"));
        assert!(!names_a_gpu("7 of 8 GPUs seen"));
    }
}
