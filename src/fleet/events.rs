//! XID lines for the events view: which XIDs in a new sample are new or happened again, described once.

use crate::telemetry::health::{classify_xid_event, Health};
use crate::telemetry::xid_age::{self, XidClock};
use crate::telemetry::{GpuSample, XidEvent};

/// The XIDs of `new` that `old` did not have, or had with a lower count, each with its verdict and a line; ages
/// and "before the last reset" are measured on `clock`.
pub(crate) fn new_xids(
    old: Option<&GpuSample>,
    new: &GpuSample,
    clock: &XidClock,
) -> Vec<(Health, String)> {
    let events = new.xid_events.as_deref().unwrap_or_default();
    let count_in = |g: &GpuSample, code: u32| {
        g.xid_counts()
            .into_iter()
            .find(|&(c, _)| c == code)
            .map(|(_, n)| n)
    };
    new.xid
        .iter()
        .flatten()
        .filter(|&&code| {
            let now = count_in(new, code).unwrap_or(1);
            old.and_then(|o| count_in(o, code))
                .is_none_or(|before| now > before)
        })
        .map(|&code| {
            let event = new
                .xid_events
                .iter()
                .flatten()
                .find(|e| e.code == code)
                .cloned()
                .unwrap_or(XidEvent {
                    code,
                    count: 1,
                    ..Default::default()
                });
            let history = xid_age::before_reset(&event, events, clock);
            let health = match history {
                Some(_) => Health::Ok,
                None => classify_xid_event(&event).0,
            };
            let mut line = describe(new.index, &event);
            line += &xid_age::last_seen(Some(&event), clock);
            if let Some(history) = history {
                line += &format!("; {history}, not a current fault");
            }
            (health, line)
        })
        .collect()
}

/// `GPU 3 XID 79 ×2, first … last …: what it means — "driver message"`.
pub(crate) fn describe(gpu: u32, e: &XidEvent) -> String {
    let (_, what) = classify_xid_event(e);
    let mut line = format!("GPU {gpu} XID {} ×{}", e.code, e.count);
    if let Some(first) = e.first_ms {
        line += &format!(", first {}", crate::text::rfc3339_ms(first));
    }
    if let Some(last) = e.last_ms.filter(|&l| Some(l) != e.first_ms) {
        line += &format!(", last {}", crate::text::rfc3339_ms(last));
    }
    line += &format!(": {what}");
    if let Some(text) = &e.text {
        line += &format!(" — \"{text}\"");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(count: u64) -> GpuSample {
        GpuSample {
            index: 5,
            xid: Some(vec![79]),
            xid_events: Some(vec![XidEvent {
                code: 79,
                count,
                first_ms: Some(0),
                last_ms: Some(60_000),
                text: Some("GPU has fallen off the bus.".into()),
                fatal: None,
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn new_and_repeated_xids_are_journaled_once() {
        let clock = XidClock {
            now_ms: Some(60_000 + 40 * 60_000),
            last_reset_ms: None,
            last_reboot_ms: None,
        };
        let first = new_xids(None, &gpu(1), &clock);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, Health::Crit);
        assert_eq!(
            first[0].1,
            "GPU 5 XID 79 ×1, first 1970-01-01T00:00:00Z, last 1970-01-01T00:01:00Z: \
             reboot the node (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS; NVIDIA: RESTART_BM) \
             — \"GPU has fallen off the bus.\"; last 40 min ago"
        );
        assert!(new_xids(Some(&gpu(1)), &gpu(1), &clock).is_empty());
        assert_eq!(new_xids(Some(&gpu(1)), &gpu(3), &clock).len(), 1);
        // A reboot: what XID 79 (RESTART_BM) waits for.
        let reset = XidClock {
            last_reset_ms: Some(120_000),
            last_reboot_ms: Some(120_000),
            ..clock
        };
        let history = new_xids(None, &gpu(1), &reset);
        assert_eq!(
            history[0].0,
            Health::Ok,
            "an XID from before the last reset is information"
        );
        assert!(
            history[0].1.ends_with(
                "before the last reset (reset or reboot audited, 39 min ago), not a current fault"
            ),
            "{}",
            history[0].1
        );
    }

    #[test]
    fn times_no_calendar_can_write_are_shown_not_panicked_on() {
        let mut far = gpu(1);
        if let Some(e) = far.xid_events.as_mut().and_then(|v| v.first_mut()) {
            e.first_ms = Some(u64::MAX);
            e.last_ms = Some(253_402_300_800_000);
        }
        let clock = XidClock {
            now_ms: Some(60_000),
            last_reset_ms: None,
            last_reboot_ms: None,
        };
        let line = &new_xids(None, &far, &clock)[0].1;
        assert!(
            line.contains("first 18446744073709551615 ms after 1970 (not a date)"),
            "{line}"
        );
        assert!(
            line.contains("last 253402300800000 ms after 1970"),
            "{line}"
        );
    }
}
