//! Repairs found in the store's records: phases, a failed repair, and the format the audit writer stores.

use super::*;
use crate::ledger::book::tests::repair_events;

const MIN: u64 = 60_000;

#[test]
fn a_repair_has_every_phase_and_the_summary_takes_median_and_max() {
    let events = repair_events();
    let t0 = events[0].time_ms;
    let found = find(&events);
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!((r.node.as_str(), r.status), ("n2", Status::Done));
    assert_eq!(r.started_ms, t0 + 31 * MIN);
    let at = |m: u64| Some(t0 + m);
    assert_eq!(
        r.marks,
        [
            at(30 * MIN),
            at(31 * MIN + 2000),
            at(32 * MIN),
            at(33 * MIN),
            at(35 * MIN),
            at(38 * MIN),
            at(39 * MIN)
        ]
    );
    assert_eq!(
        r.phases(),
        [
            Some(MIN + 2000),
            Some(MIN - 2000),
            Some(MIN),
            Some(2 * MIN),
            Some(3 * MIN),
            Some(MIN)
        ]
    );
    assert_eq!(r.total(), Some(9 * MIN));
    // A second, slower repair of another node: median is the lower middle, max the slower.
    let mut slow: Vec<Event> = events
        .iter()
        .map(|e| Event {
            node: "n1".into(),
            time_ms: t0 + (e.time_ms - t0) * 2,
            ..e.clone()
        })
        .collect();
    slow.extend(events);
    let both = find(&slow);
    assert_eq!(both.len(), 2);
    let total = summary(&both).pop().unwrap();
    assert_eq!(
        (
            total.phase.as_str(),
            total.repairs,
            total.median_ms,
            total.max_ms
        ),
        ("total", 2, Some(9 * MIN), Some(18 * MIN))
    );
}

#[test]
fn a_failed_validation_keeps_the_repair_until_someone_undrains() {
    let mut events = repair_events();
    let t0 = events[0].time_ms;
    events.retain(|e| {
        !e.detail.starts_with("repair-validate succeeded") && !e.detail.starts_with("undrain")
    });
    events.push(Event::node(
        t0 + 38 * MIN,
        "n2",
        kind::OUTCOME,
        "repair-validate failed (exit 1): fail",
    ));
    // The repair keeps the node drained with the failure as its reason: the same repair.
    events.push(Event::node(
        t0 + 38 * MIN + 1000,
        "n2",
        kind::ACTION,
        "drain by alice: repair: validation failed (slurm: scontrol update)",
    ));
    let found = find(&events);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].status, found[0].ended_ms, found[0].marks[5]),
        (Status::Failed, None, None)
    );
    events.push(Event::node(
        t0 + 50 * MIN,
        "n2",
        kind::OUTCOME,
        "undrain succeeded (exit 0)",
    ));
    let found = find(&events);
    assert_eq!(
        (found[0].status, found[0].ended_ms),
        (Status::Failed, Some(t0 + 50 * MIN))
    );
    assert_eq!(
        found[0].total(),
        Some(20 * MIN),
        "from detection to the undrain"
    );
}

#[test]
fn the_audit_writer_s_records_read_back_as_a_repair() {
    use crate::actions::audit::{AuditLog, Ending, Entry};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut audit = AuditLog::open(&log).unwrap();
    let step = |action: &'static str, backend: &'static str| Entry {
        operator: "alice",
        action,
        node: "n2",
        reason: Some("repair: XID 79"),
        backend,
        command: "cmd",
    };
    let ok = || Ending {
        ok: true,
        ..Ending::default()
    };
    for (action, backend) in [
        ("drain", "slurm"),
        ("repair-wait-jobs", "fleetop"),
        ("reset", "ssh"),
        ("repair-validate", "fleetop"),
        ("undrain", "slurm"),
    ] {
        let entry = step(action, backend);
        audit.write(&entry.intent("id")).unwrap();
        audit.write(&entry.outcome("id", ok())).unwrap();
    }
    let store = crate::store::Store::open(&crate::store::beside(&log)).unwrap();
    let events = store
        .between(
            0,
            u64::MAX >> 1,
            &[kind::HEALTH, kind::ACTION, kind::OUTCOME],
            crate::store::Scope::new(None, None),
        )
        .unwrap();
    let found = find(&events);
    assert_eq!(found.len(), 1, "{events:?}");
    let r = &found[0];
    assert_eq!(r.status, Status::Done);
    // The detection is not in the store (no health event); every other mark is, a reset's `healthy` being the
    // start of its validation.
    assert_eq!(r.marks[0], None);
    assert!(r.marks[1..].iter().all(Option::is_some), "{r:?}");
    assert!(r.marks[1..].windows(2).all(|w| w[0] <= w[1]), "{r:?}");
}
