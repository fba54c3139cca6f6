//! A GPU's last 30 days as the agent's journal on the node keeps them (`GpuSample::past`): XIDs, recovery-action
//! changes, ECC and row-remap changes, NVLink faults and losses that outlive a reboot, which the kernel log does
//! not. Each line is information, like an XID from before the last reset (`xid_age`: "history, not a current
//! fault"): the reboot that cleared the kernel log was the remedy NVIDIA's catalogue gives the RESTART_BM XIDs,
//! and what the GPU does now is judged from its live values. A GPU that keeps coming back is the lemon rule's
//! (`[repair] max_repairs`, the history store).

use serde::{Deserialize, Serialize};

use super::age::ago;

/// Most past entries one GPU's summary carries on the wire.
pub(crate) const MAX_PAST: usize = 32;
/// How far back the summary reaches.
pub(crate) const SUMMARY_DAYS: u64 = 30;

/// What happened, as the journal summarises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastEvent {
    /// `xid`, `recovery`, `ecc`, `remap`, `nvlink` (links down), `nvlink_errors` (counters that rose past
    /// health's rules), `lost` for a GPU; `sxid`, `ib` (ports down), `ib_errors` for the node.
    pub kind: String,
    /// The XID code, the recovery action's raw value, the ECC count; `None` where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u64>,
    /// Occurrences within the window.
    pub count: u64,
    /// Unix ms (the node's clock) of the last occurrence.
    pub last_ms: u64,
    /// It happened before the node's last boot (it is gone from the kernel log).
    #[serde(default)]
    pub before_reboot: bool,
    /// The driver's message for the last occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The kinds a summary may name; others are dropped when sanitized.
pub(crate) const KINDS: [&str; 10] = [
    "xid",
    "sxid",
    "recovery",
    "ecc",
    "remap",
    "nvlink",
    "nvlink_errors",
    "lost",
    "ib",
    "ib_errors",
];
/// Longest text kept.
pub(crate) const MAX_TEXT: usize = 160;

/// `XID 79 ×2, last 40 min ago, before reboot` for each entry of the summary that happened before the node's last
/// boot (what happened since, the live values say); information, never a health of its own (`health` says them
/// as such).
pub(crate) fn before_reboot(past: Option<&[PastEvent]>, now_ms: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    for p in past.unwrap_or_default().iter().filter(|p| p.before_reboot) {
        let what = match (p.kind.as_str(), p.code) {
            ("xid", Some(c)) => format!("XID {c}"),
            ("sxid", Some(c)) => format!("SXid {c}"),
            ("recovery", Some(c)) => format!("recovery action {c}"),
            ("ecc", Some(c)) => format!("{c} uncorrected ECC errors"),
            // The fabric's entries say their links and ports.
            ("nvlink" | "nvlink_errors" | "ib" | "ib_errors", _) => {
                p.text.clone().unwrap_or_else(|| p.kind.clone())
            }
            (kind, _) => kind.to_string(),
        };
        let times = if p.count > 1 {
            format!(" ×{}", p.count)
        } else {
            String::new()
        };
        let age = now_ms
            .map(|now| format!(", last {}", ago(now.saturating_sub(p.last_ms))))
            .unwrap_or_default();
        out.push(format!("{what}{times}{age}, before reboot"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_from_before_the_reboot_is_said_and_bounded() {
        let past = vec![
            PastEvent {
                kind: "xid".into(),
                code: Some(79),
                count: 2,
                last_ms: 1_000,
                before_reboot: true,
                text: Some("GPU has fallen off the bus.\u{1b}[2J".into()),
            },
            PastEvent {
                kind: "xid".into(),
                code: Some(13),
                count: 1,
                last_ms: 2_000,
                before_reboot: false,
                text: None,
            },
            PastEvent {
                kind: "melted".into(),
                code: None,
                count: 1,
                last_ms: 0,
                before_reboot: true,
                text: None,
            },
        ];
        let mut gpu = crate::telemetry::GpuSample {
            past: Some(past.clone()),
            ..Default::default()
        };
        gpu.sanitize();
        let clean = gpu.past.unwrap();
        assert_eq!(clean.len(), 2, "an unknown kind is dropped");
        assert!(!clean[0].text.as_ref().unwrap().contains('\u{1b}'));
        assert_eq!(
            before_reboot(Some(&clean), Some(1_000 + 40 * 60_000)),
            ["XID 79 ×2, last 40 min ago, before reboot"]
        );
    }
}
