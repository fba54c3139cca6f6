//! What an operator asks of nodes: the action, its nodes and reason, and who asks.

use serde::Serialize;

use crate::inventory::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Drain,
    Undrain,
    Reboot,
    /// `nvidia-smi -r` on the node: one GPU ([`Request::gpu`]) or all of them.
    Reset,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Drain => "drain",
            ActionKind::Undrain => "undrain",
            ActionKind::Reboot => "reboot",
            ActionKind::Reset => "reset",
        }
    }
}

/// What an operator asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: ActionKind,
    pub nodes: Vec<NodeId>,
    pub reason: Option<String>,
    pub operator: String,
    /// Overrides the fraction guard, the foreign-reason guard and an unverifiable drain state.
    pub force: bool,
    /// `--read-only` or `read_only` in config.toml (the inventory's own setting is added by the guards).
    pub read_only: bool,
    /// A reset's one GPU (`--gpu N`); `None`: every GPU of the node. Other actions ignore it.
    pub gpu: Option<u32>,
    /// A reboot that must leave the node drained (a repair returns it itself, after validation): the Slurm
    /// backend then reboots without `nextstate=RESUME`, so Slurm keeps the drain it had. Other actions ignore it.
    pub keep_drained: bool,
}

/// The operator's name: `$SUDO_USER` (the human behind sudo), then `$USER`.
pub fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}
