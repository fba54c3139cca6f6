//! Lemons: a GPU that fleetop repaired `max_repairs` times for the same cause within `repair_window` is held
//! for hardware inspection instead of being reset or rebooted again. The history is the audit log's `repaired`
//! records (one per GPU and remedy), so it survives a restart and travels with the log.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::remedy::{Plan, Remedy};
use crate::actions::audit::{self, AuditLog, Record, Repaired};
use crate::inventory::RepairSettings;

/// The newest part of the log read for the history: a window of repairs is far smaller than this.
const HISTORY_BYTES: u64 = 64 * 1024 * 1024;

/// Writes one `repaired` record per fault of `plan` whose GPU has an identity.
pub(super) fn record(
    log: &Path,
    operator: &str,
    node: &str,
    plan: &Plan,
    remedy: Remedy,
) -> Result<(), String> {
    let mut out = AuditLog::open(log)?;
    for f in &plan.faults {
        let Some(id) = &f.id else {
            continue;
        };
        out.write(&Record::Repaired(Repaired {
            time: audit::now(),
            operator: operator.into(),
            node: node.into(),
            gpu: f.gpu,
            gpu_id: id.clone(),
            cause: f.cause.clone(),
            remedy: match remedy {
                Remedy::Reset => "reset".into(),
                Remedy::Reboot => "reboot".into(),
            },
            demo: false,
        }))?;
    }
    Ok(())
}

/// `held for hardware inspection: GPU 3 (SN …) repaired 2× in 30 days for XID 79` when a GPU of `plan` reached
/// the limit, else `None`.
pub fn held(log: &Path, settings: &RepairSettings, plan: &Plan, now: SystemTime) -> Option<String> {
    let since = now.checked_sub(settings.repair_window)?;
    let past = read(log);
    let mut lemons = Vec::new();
    for f in &plan.faults {
        let Some(id) = &f.id else {
            continue;
        };
        let times = past
            .iter()
            .filter(|r| r.gpu_id == *id && r.cause == f.cause)
            .filter(|r| humantime::parse_rfc3339_weak(&r.time).is_ok_and(|t| t >= since))
            .count();
        if times >= settings.max_repairs as usize {
            lemons.push(format!(
                "GPU {} ({id}) repaired {times}× in {} for {}",
                f.gpu,
                window(settings.repair_window),
                f.cause
            ));
        }
    }
    (!lemons.is_empty()).then(|| format!("held for hardware inspection: {}", lemons.join("; ")))
}

/// `30 days`, or humantime's words for a window that is not whole days.
fn window(d: Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 && s / 86_400 == 1 => "1 day".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// The log's `repaired` records, from its newest [`HISTORY_BYTES`]; lines of any other kind, or torn, are
/// skipped (the file is one anyone may have edited).
fn read(log: &Path) -> Vec<Repaired> {
    let Some(text) = audit::tail(log, HISTORY_BYTES) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| l.contains("\"record\":\"repaired\""))
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(Record::Repaired(r)) => Some(r),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair::remedy::Fault;

    fn plan(cause: &str) -> Plan {
        Plan {
            remedy: Remedy::Reboot,
            why: String::new(),
            faults: vec![Fault {
                gpu: 3,
                id: Some("SN 1652".into()),
                cause: cause.into(),
                remedy: Remedy::Reboot,
            }],
        }
    }

    #[test]
    fn the_same_gpu_and_cause_twice_in_the_window_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let settings = RepairSettings::default();
        let now = SystemTime::now();
        assert_eq!(held(&log, &settings, &plan("XID 79"), now), None);
        record(&log, "ana", "n1", &plan("XID 79"), Remedy::Reboot).unwrap();
        assert_eq!(
            held(&log, &settings, &plan("XID 79"), now),
            None,
            "once is not a lemon"
        );
        // Moved to another node, the board is the same GPU.
        record(&log, "ana", "n7", &plan("XID 79"), Remedy::Reboot).unwrap();
        assert_eq!(
            held(&log, &settings, &plan("XID 79"), now).as_deref(),
            Some("held for hardware inspection: GPU 3 (SN 1652) repaired 2× in 30 days for XID 79")
        );
        assert_eq!(
            held(&log, &settings, &plan("XID 48"), now),
            None,
            "another cause"
        );
        let later = now + Duration::from_secs(31 * 86_400);
        assert_eq!(
            held(&log, &settings, &plan("XID 79"), later),
            None,
            "outside the window"
        );
        // A torn line and an unrelated record are skipped, not a reason to forget.
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"record\":\"repaired\",\"time\n{\"record\":\"ack\"}\n");
        std::fs::write(&log, text).unwrap();
        assert!(held(&log, &settings, &plan("XID 79"), now).is_some());
    }
}
