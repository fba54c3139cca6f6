//! What operators and schedulers are doing to nodes, as read back or reported: a drain (who set it and why), a
//! reboot or GPU reset in flight, a repair's step. The vocabulary that read-backs and actions send into fleet
//! state through the one message channel; `fleet/operations.rs` holds it and derives what every view shows.

/// A node's drain as its backend reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DrainState {
    /// In service; the backend's own word for it (`idle`, `mixed`, `allocated`, `schedulable`).
    Active(String),
    Draining,
    Drained,
    /// The backend cannot tell (no read-back for the command backend, or the node is unknown to it).
    Unknown(String),
}

/// A node's drain with who set it and why (Slurm's `%E` reason and `%u` user; a cordoned Kubernetes node's
/// taints). Text from the backend, bounded and made inert by the read-back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeDrain {
    pub state: DrainState,
    pub reason: Option<String>,
    pub user: Option<String>,
}

/// A restart that takes a node's GPUs (or the whole node) away for a while and brings them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Restart {
    Reboot,
    /// A GPU reset (`nvidia-smi -r`): the GPUs drop out and come back without a reboot.
    Reset,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Reboot => "reboot",
            Restart::Reset => "reset",
        }
    }
}

/// One thing an operator or a scheduler did to a node, for fleet state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OperationEvent {
    /// The drain backend's read-back for this node.
    Drain(NodeDrain),
    /// A reboot or reset was asked for and accepted: the node should go down and come back within the
    /// inventory's deadline. `practice`: a simulated node that never drops off counts as down after this long.
    /// `seen_down`: the action runner already saw the node down (it confirms an SSH reboot that way), so the
    /// watch starts from "went down" and waits only for the return.
    Restarting {
        kind: Restart,
        by: Option<String>,
        practice: Option<std::time::Duration>,
        seen_down: bool,
    },
    /// A GPU reset asked of this node is running (`true`) or has ended (`false`). A reset does not take the node
    /// down, so it is not watched like a reboot: the runner judges it on a fresh look before it ends.
    Resetting(bool),
    /// A repair's latest step on this node (`active`: the repair still works on it), and who started it.
    Repair {
        text: String,
        active: bool,
        by: Option<String>,
    },
}

/// Longest drain reason or user kept from a backend's answer.
const MAX_REASON_CHARS: usize = 256;

/// A backend's reason or user as fleet state keeps it: trimmed, bounded, terminal controls made visible; empty
/// or a placeholder (`none`, `Unknown`, `(null)`) is no reason.
pub(crate) fn inert(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || matches!(t, "none" | "Unknown" | "(null)" | "N/A") {
        return None;
    }
    let escaped = crate::text::escape(t);
    Some(match escaped.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_inert() {
        assert_eq!(
            inert(" psu swap, ticket 4411 ").as_deref(),
            Some("psu swap, ticket 4411")
        );
        assert_eq!(inert("none"), None);
        assert_eq!(inert("Unknown"), None);
        assert_eq!(inert("\x1b]0;x\x07").as_deref(), Some("\\x1b]0;x\\x07"));
        assert!(inert(&"r".repeat(5000)).is_some_and(|r| r.chars().count() == MAX_REASON_CHARS + 1));
    }
}
