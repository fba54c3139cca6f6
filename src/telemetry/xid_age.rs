//! How long ago an XID last happened, and whether it predates the GPU's last reset.
//!
//! The kernel log keeps a GPU's XIDs until the node reboots, so after a GPU reset the XID that asked for it is
//! still there. An XID whose last occurrence is older than the GPU's last successful reset or its node's last
//! reboot (both from fleetop's audit log), or older than an XID 154 that says the driver's recovery action went
//! back to none ("… to 0x0 (None)", NVIDIA's XID catalogue: XID 154 summarises the recovery the XIDs before it
//! need), is history: "before the last reset", information, not a current fault.
//!
//! XID times come from the node's clock (its kernel log), so their age is measured against the node's clock too
//! (the sample's time plus how old the sample is); the reset time comes from the jump host's audit log, whose
//! clock may differ by seconds, which matters little beside a reset.

use super::age::ago;
use super::recovery::{parse_xid154, XID_RECOVERY_ACTION_CHANGED};
use super::sample::{RecoveryAction, XidEvent};

/// What a GPU's XIDs are measured against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct XidClock {
    /// Now on the node's clock, Unix ms; `None`: ages are not known (no sample time).
    pub now_ms: Option<u64>,
    /// The GPU's last successful reset or its node's last successful reboot, Unix ms (fleetop's audit log).
    pub last_reset_ms: Option<u64>,
    /// Its node's last successful reboot alone: what XIDs whose catalogue remedy is a reboot wait for.
    pub last_reboot_ms: Option<u64>,
}

/// `; last 40 min ago` for an event with a time, measured on `clock`; empty otherwise.
pub(crate) fn last_seen(e: Option<&XidEvent>, clock: &XidClock) -> String {
    match (e.and_then(|e| e.last_ms), clock.now_ms) {
        (Some(last), Some(now)) => format!("; last {}", ago(now.saturating_sub(last))),
        _ => String::new(),
    }
}

/// Why `e` is history rather than a current fault, if it is: it last happened before the GPU's last reset, or
/// before an XID 154 (among `events`, the GPU's) that set the recovery action back to none.
pub(crate) fn before_reset(e: &XidEvent, events: &[XidEvent], clock: &XidClock) -> Option<String> {
    let last = e.last_ms?;
    // NVIDIA's catalogue says a RESTART_BM XID (79: fallen off the bus, …) needs the node rebooted: a GPU reset
    // does not make it history.
    let needs_reboot = super::catalogue::xid(e.code).is_some_and(|x| x.action == "RESTART_BM");
    let remedied = if needs_reboot {
        clock.last_reboot_ms
    } else {
        clock.last_reset_ms
    };
    if let Some(reset) = remedied.filter(|&r| last < r) {
        let when = clock
            .now_ms
            .map(|now| format!(", {}", ago(now.saturating_sub(reset))))
            .unwrap_or_default();
        return Some(format!(
            "before the last reset (reset or reboot audited{when})"
        ));
    }
    if e.code == XID_RECOVERY_ACTION_CHANGED {
        return None;
    }
    let cleared = events.iter().find(|x| {
        x.code == XID_RECOVERY_ACTION_CHANGED
            && x.last_ms.is_some_and(|t| t >= last)
            && x.text.as_deref().and_then(parse_xid154) == Some(RecoveryAction::None)
    })?;
    let when = match (cleared.last_ms, clock.now_ms) {
        (Some(t), Some(now)) => format!(" {}", ago(now.saturating_sub(t))),
        _ => String::new(),
    };
    Some(format!(
        "before the last reset (XID 154: recovery action back to none{when})"
    ))
}

/// The codes of `gpu`'s XIDs that are current faults: all but those [`before_reset`] makes history (a code
/// without a timed event cannot be placed before a reset, and stays).
pub(crate) fn current_codes(gpu: &super::GpuSample, clock: &XidClock) -> Vec<u32> {
    let events = gpu.xid_events.as_deref().unwrap_or_default();
    gpu.xid
        .iter()
        .flatten()
        .copied()
        .filter(|&code| {
            events
                .iter()
                .find(|e| e.code == code)
                .and_then(|e| before_reset(e, events, clock))
                .is_none()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(code: u32, last_ms: u64, text: Option<&str>) -> XidEvent {
        XidEvent {
            code,
            count: 1,
            first_ms: Some(last_ms),
            last_ms: Some(last_ms),
            text: text.map(str::to_string),
            fatal: None,
        }
    }

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        assert_eq!(ago(59_999), "59 s ago");
        assert_eq!(ago(40 * 60_000), "40 min ago");
        assert_eq!(ago(5 * 3_600_000 + 1), "5 h ago");
        assert_eq!(ago(3 * 86_400_000), "3 d ago");
        let clock = XidClock {
            now_ms: Some(10 * 60_000),
            last_reset_ms: None,
            last_reboot_ms: None,
        };
        assert_eq!(
            last_seen(Some(&at(79, 0, None)), &clock),
            "; last 10 min ago"
        );
        assert_eq!(last_seen(None, &clock), "");
    }

    #[test]
    fn a_gpu_reset_does_not_make_an_xid_that_needs_a_reboot_history() {
        let reset_only = XidClock {
            now_ms: Some(3_600_000),
            last_reset_ms: Some(1_800_000),
            last_reboot_ms: None,
        };
        // 79 is RESTART_BM in NVIDIA's catalogue; 119 (GSP RPC timeout) is RESET_GPU.
        assert_eq!(
            before_reset(&at(79, 1_000_000, None), &[], &reset_only),
            None
        );
        assert!(before_reset(&at(119, 1_000_000, None), &[], &reset_only).is_some());
    }

    #[test]
    fn an_xid_before_the_audited_reset_is_history() {
        let clock = XidClock {
            now_ms: Some(3_600_000),
            last_reset_ms: Some(1_800_000),
            last_reboot_ms: Some(1_800_000),
        };
        let old = at(79, 1_000_000, None);
        let why = before_reset(&old, &[], &clock).unwrap();
        assert_eq!(
            why,
            "before the last reset (reset or reboot audited, 30 min ago)"
        );
        assert_eq!(before_reset(&at(79, 2_000_000, None), &[], &clock), None);
        let untimed = XidEvent {
            last_ms: None,
            ..old
        };
        assert_eq!(
            before_reset(&untimed, &[], &clock),
            None,
            "no time, no verdict"
        );
    }

    #[test]
    fn an_xid_154_back_to_none_closes_what_came_before() {
        // NVIDIA/NVSentinel's syslog monitor test line (pkg/xid/parser/csv_test.go).
        let cleared = "GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)";
        let set = "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)";
        let clock = XidClock::default();
        let xid48 = at(48, 1_000, None);
        let events = [xid48.clone(), at(154, 2_000, Some(cleared))];
        assert!(before_reset(&xid48, &events, &clock).is_some());
        let later = at(48, 3_000, None);
        assert_eq!(
            before_reset(&later, &events, &clock),
            None,
            "it happened again"
        );
        let still = [xid48.clone(), at(154, 2_000, Some(set))];
        assert_eq!(before_reset(&xid48, &still, &clock), None);
    }
}
