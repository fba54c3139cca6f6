//! Lemons: a GPU with `max_repairs` incidents (health turning crit, repairs) within `repair_window` is held for
//! hardware inspection instead of being reset or rebooted again. One rule and one source with the nodes table's
//! `L` flag and `snapshot`'s warning: `fleet::memory::lemons` over the history store beside the audit log. The
//! repair writes its `repaired` records to the audit log, the record of actions, whose writer indexes them in
//! the store.

use std::path::Path;
use std::time::SystemTime;

use super::remedy::{Plan, Remedy};
use crate::actions::audit::{self, AuditLog, Record, Repaired};
use crate::inventory::RepairSettings;
use crate::store::query::Sighting;
use crate::store::Scope;

/// Writes one `repaired` record per fault of `plan` whose GPU has an identity, marked with the `scope` the repair
/// runs in (its `[[context]]`'s site, else its inventory file).
pub(super) fn record(
    log: &Path,
    scope: Scope,
    operator: &str,
    node: &str,
    plan: &Plan,
    remedy: Remedy,
) -> Result<(), String> {
    let mut out = AuditLog::open(log)?.in_scope(scope);
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
            site: None,
            inventory: None,
            demo: false,
        }))?;
    }
    Ok(())
}

/// `held for hardware inspection: repeat offender: GPU 3 (SN …) 2 incidents in 30 days` when a GPU of `plan`
/// reached the limit on `node`'s history (the store beside `log`, as `scope` reads it), else
/// `None`. A store that cannot be read holds no one, with a warning: the repair goes on as it would without a
/// history.
pub fn held(
    log: &Path,
    scope: Scope,
    settings: &RepairSettings,
    node: &str,
    plan: &Plan,
    now: SystemTime,
) -> Option<String> {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())?;
    let window_ms = u64::try_from(settings.repair_window.as_millis()).unwrap_or(u64::MAX);
    let store = crate::store::beside(log);
    let incidents = match crate::store::Store::open(&store)
        .and_then(|s| s.incidents(now_ms.saturating_sub(window_ms), scope))
    {
        Ok(i) => i,
        Err(e) => {
            crate::text::warn(&format!(
                "history store {}: {e} (no GPU is held for inspection)",
                store.display()
            ));
            return None;
        }
    };
    // The faults' GPUs as the store knows them: `SN …` is a serial, anything else the UUID (`remedy::identity`).
    let seen: Vec<Sighting> = plan
        .faults
        .iter()
        .filter_map(|f| {
            let id = f.id.as_ref()?;
            let serial = id.strip_prefix("SN ").map(str::to_string);
            Some(Sighting {
                node: node.into(),
                gpu: Some(f.gpu),
                uuid: serial.is_none().then(|| id.clone()),
                serial,
                ..Sighting::default()
            })
        })
        .collect();
    let lemons = crate::fleet::memory::lemons(
        &incidents,
        &seen,
        settings.max_repairs,
        settings.repair_window,
    );
    lemons
        .get(node)
        .map(|why| format!("held for hardware inspection: {why}"))
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
    fn a_gpu_with_too_many_incidents_in_the_store_is_held_wherever_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let settings = RepairSettings::default();
        let now = SystemTime::now();
        assert_eq!(
            held(
                &log,
                Scope::default(),
                &settings,
                "n7",
                &plan("XID 79"),
                now
            ),
            None
        );
        record(
            &log,
            Scope::default(),
            "ana",
            "n1",
            &plan("XID 79"),
            Remedy::Reboot,
        )
        .unwrap();
        assert_eq!(
            held(
                &log,
                Scope::default(),
                &settings,
                "n7",
                &plan("XID 79"),
                now
            ),
            None,
            "once is not a lemon"
        );
        // Repaired on another node, then moved here: the board is the same GPU, and any cause counts.
        record(
            &log,
            Scope::default(),
            "ana",
            "n3",
            &plan("XID 48"),
            Remedy::Reset,
        )
        .unwrap();
        assert_eq!(
            held(&log, Scope::default(), &settings, "n7", &plan("XID 79"), now).as_deref(),
            Some("held for hardware inspection: repeat offender: GPU 3 (SN 1652) 2 incidents in 30 days")
        );
        let later = now + std::time::Duration::from_secs(31 * 86_400);
        assert_eq!(
            held(
                &log,
                Scope::default(),
                &settings,
                "n7",
                &plan("XID 79"),
                later
            ),
            None,
            "outside the window"
        );
        // The store is the index of the log: the audit log keeps the repairs as actions.
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("\"record\":\"repaired\"").count(), 2, "{text}");
    }
}
