//! The ledger over message sequences decoded from a real GPU's agent lines (`tests/fixtures/real-gpu/`), with
//! known outages: exact milliseconds expected.

use std::sync::Arc;
use std::time::Instant;

use super::{Hours, Ledger, Tally};
use crate::inventory::Inventory;
use crate::ledger::repairs::{self, Overlay};
use crate::ledger::Cause;
use crate::store::{kind, Event};
use crate::telemetry::Source;
use crate::transport::decode::StreamDecoder;
use crate::transport::{FailureKind, Msg, NodeEvent};

pub(super) const BUSY: &str = include_str!("../../tests/fixtures/real-gpu/h200-agent-busy.ndjson");
pub(super) const IDLE: &str = include_str!("../../tests/fixtures/real-gpu/h200-agent-idle.ndjson");

/// 2026-11-27T00:00:00Z, Unix ms.
pub(super) const T0: u64 = 1_795_737_600_000;
pub(super) const MIN: u64 = 60_000;

pub(super) fn inventory() -> Arc<Inventory> {
    Arc::new(
        Inventory::parse(
            "ledger.toml",
            "[defaults]\ninterval_ms = 1000\ngpus_per_node = 1\n\
             [[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n\
             [[tenant]]\nname = \"acme\"\nnodes = \"n1\"\n",
        )
        .unwrap(),
    )
}

/// The events a node's agent output makes, as the SSH transport decodes them.
fn decoded(text: &str) -> Vec<NodeEvent> {
    let mut decoder = StreamDecoder::agent(Source::Agent);
    let mut out = Vec::new();
    decoder.feed(text.as_bytes(), &mut |e| {
        out.push(e);
        true
    });
    out
}

/// The fixture's hello and its sample; `crit`: the same sample with 3 uncorrected ECC errors.
pub(super) fn node_events(text: &str, crit: bool) -> (NodeEvent, NodeEvent) {
    let text = if crit {
        let changed = text.replace("\"ecc_uncorrected\":0", "\"ecc_uncorrected\":3");
        assert_ne!(changed, text, "the fixture reports ECC");
        changed
    } else {
        text.to_string()
    };
    let mut events = decoded(&text).into_iter();
    let hello = events.next().unwrap();
    let sample = events.next().unwrap();
    assert!(matches!(hello, NodeEvent::Streaming { .. }), "{hello:?}");
    assert!(matches!(sample, NodeEvent::Sample(_)), "{sample:?}");
    (hello, sample)
}

pub(super) fn msg(node: usize, event: NodeEvent) -> Msg {
    // The ledger stamps every message with its own clock from the wall time.
    Msg {
        node,
        at: Instant::now(),
        event,
    }
}

/// An hour from T0: n1 (acme, busy) sends a sample every second but none for ten minutes from T0+10 min (and
/// its transport says it is unreachable meanwhile); n2 (idle) every second, with 3 uncorrected ECC errors from
/// T0+30 min to T0+40 min.
fn hour(overlay: Overlay, window: (u64, u64)) -> Hours {
    let (hello1, busy) = node_events(BUSY, false);
    let (hello2, idle) = node_events(IDLE, false);
    let (_, idle_crit) = node_events(IDLE, true);
    let mut ledger = Ledger::new(inventory(), window, overlay);
    ledger.feed(T0, msg(0, hello1));
    ledger.feed(T0, msg(1, hello2));
    for s in 0..3600 {
        let t = T0 + s * 1000;
        if !(10 * MIN..20 * MIN).contains(&(s * 1000)) {
            ledger.feed(t, msg(0, busy.clone()));
        } else if s * 1000 == 10 * MIN + 5000 {
            let failed = NodeEvent::Failed {
                kind: FailureKind::Unreachable,
                detail: "connection timed out".into(),
            };
            ledger.feed(t, msg(0, failed));
        }
        let crit = (30 * MIN..40 * MIN).contains(&(s * 1000));
        ledger.feed(
            t,
            msg(
                1,
                if crit {
                    idle_crit.clone()
                } else {
                    idle.clone()
                },
            ),
        );
    }
    ledger.finish(T0 + 60 * MIN)
}

pub(super) fn lost(t: &Tally) -> Vec<(Cause, &str, u64)> {
    t.lost_ms
        .iter()
        .map(|((c, r), ms)| (*c, r.as_str(), *ms))
        .collect()
}

#[test]
fn an_outage_and_a_fault_are_booked_to_the_millisecond() {
    let hours = hour(Overlay::default(), (T0 - 10 * MIN, T0 + 60 * MIN));
    assert_eq!(hours.recorded, Some((T0, T0 + 60 * MIN)));
    let n1 = &hours.gpus[0][0];
    // Last sample before the gap at T0+9:59; fresh for 3 intervals (3 s), unreachable from 1 ms later until the
    // sample at T0+20:00.
    let unreachable = 20 * MIN - (10 * MIN - 1000 + 3000 + 1);
    assert_eq!(n1.inventory_ms, 70 * MIN);
    // Stale until the transport's failure at T0+10:05, then unreachable: both no fresh data, each named.
    let stale = 10 * MIN + 5000 - (10 * MIN + 2001);
    assert_eq!(
        lost(n1),
        vec![
            (Cause::Unreachable, "stale", stale),
            (Cause::Unreachable, "unreachable", unreachable - stale),
            (Cause::Unrecorded, "", 10 * MIN)
        ]
    );
    assert_eq!(n1.healthy_ms, 60 * MIN - unreachable);
    assert_eq!(
        n1.in_use_ms, n1.healthy_ms,
        "busy the whole time it answered"
    );
    let n2 = &hours.gpus[1][0];
    assert_eq!(
        lost(n2),
        vec![
            (Cause::Crit, "N uncorrected ECC errors", 10 * MIN),
            (Cause::Unrecorded, "", 10 * MIN)
        ]
    );
    assert_eq!(n2.healthy_ms, 50 * MIN);
    assert_eq!(n2.in_use_ms, 0, "idle");
}

#[test]
fn the_stale_spell_before_a_failure_is_unreachable_too() {
    // Between the last sample and the transport's failure the node is only stale: still no fresh data.
    let hours = hour(Overlay::default(), (T0, T0 + 60 * MIN));
    let n1 = &hours.gpus[0][0];
    let stale = 10 * MIN + 2001;
    let failed = 10 * MIN + 5000;
    assert!(stale < failed);
    assert_eq!(n1.lost(Cause::Unreachable), 20 * MIN - stale);
    assert_eq!(n1.lost(Cause::Unrecorded), 0);
}

fn action(time_ms: u64, node: &str, detail: &str) -> Event {
    Event::node(time_ms, node, kind::ACTION, detail)
}

fn outcome(time_ms: u64, node: &str, detail: &str) -> Event {
    Event::node(time_ms, node, kind::OUTCOME, detail)
}

/// A repair of n2 as the store holds it: crit at T0+30 min, drained at +31, jobs ended +32, rebooted +33, back
/// +35, validated +36 to +38, undrained +39.
pub(crate) fn repair_events() -> Vec<Event> {
    let n = "n2";
    let mut crit = Event::node(
        T0 + 30 * MIN,
        n,
        kind::HEALTH,
        "crit: 3 uncorrected ECC errors",
    );
    crit.gpu = Some(0);
    let reason = "repair: ECC";
    vec![
        Event::node(T0, n, kind::HEALTH, "ok:"),
        crit,
        action(
            T0 + 31 * MIN,
            n,
            &format!("drain by alice: {reason} (slurm: scontrol update)"),
        ),
        outcome(T0 + 31 * MIN + 2000, n, "drain succeeded (exit 0)"),
        action(
            T0 + 31 * MIN + 3000,
            n,
            &format!("repair-wait-jobs by alice: {reason} (fleetop: wait)"),
        ),
        outcome(T0 + 32 * MIN, n, "repair-wait-jobs succeeded: no jobs"),
        action(
            T0 + 32 * MIN + 1000,
            n,
            &format!("repair-wait-back by alice: {reason} (fleetop: wait)"),
        ),
        action(
            T0 + 32 * MIN + 2000,
            n,
            &format!("reboot by alice: {reason} (ssh: systemctl reboot)"),
        ),
        outcome(T0 + 33 * MIN, n, "reboot succeeded"),
        outcome(
            T0 + 35 * MIN,
            n,
            "repair-wait-back succeeded: back, agent answering",
        ),
        action(
            T0 + 36 * MIN,
            n,
            &format!("repair-validate by alice: {reason} (fleetop: dcgmi diag -r 1)"),
        ),
        outcome(T0 + 38 * MIN, n, "repair-validate succeeded (exit 0): pass"),
        action(
            T0 + 39 * MIN - 1000,
            n,
            &format!("undrain by alice: {reason} (slurm: scontrol update)"),
        ),
        outcome(T0 + 39 * MIN, n, "undrain succeeded (exit 0)"),
    ]
}

#[test]
fn a_repair_holds_its_node_from_drain_to_undrain() {
    let found = repairs::find(&repair_events());
    assert_eq!(found.len(), 1, "{found:?}");
    let hours = hour(Overlay::new(&inventory(), &found), (T0, T0 + 60 * MIN));
    let n2 = &hours.gpus[1][0];
    // Crit from +30 until the drain at +31; the repair to +39 except its validation, +36 to +38; crit again
    // from the undrain to +40, when the samples stop reporting the errors.
    assert_eq!(
        lost(n2),
        vec![
            (Cause::Validation, "", 2 * MIN),
            (Cause::Repair, "", 6 * MIN),
            (Cause::Crit, "N uncorrected ECC errors", 2 * MIN),
        ]
    );
    assert_eq!(n2.healthy_ms, 50 * MIN);
    assert_eq!(hours.gpus[0][0].lost(Cause::Repair), 0, "n1 had none");
    assert_eq!(
        hours.crit_spells[1],
        vec![
            (T0 + 30 * MIN, T0 + 31 * MIN),
            (T0 + 39 * MIN, T0 + 40 * MIN)
        ]
    );

    // A store without the health event (no view judged the node): the recording's crit spell is the detection.
    let mut events = repair_events();
    events.retain(|e| e.kind != kind::HEALTH);
    let mut found = repairs::find(&events);
    assert_eq!(found[0].marks[0], None);
    repairs::detect_from(&mut found, &inventory(), &hours.crit_spells);
    assert_eq!(found[0].marks[0], Some(T0 + 30 * MIN));
}

#[test]
fn no_message_means_the_whole_window_is_unrecorded() {
    let ledger = Ledger::new(inventory(), (T0, T0 + MIN), Overlay::default());
    let hours = ledger.finish(T0 + MIN);
    assert_eq!(hours.recorded, None);
    for gpu in hours.gpus.iter().flatten() {
        assert_eq!(gpu.lost(Cause::Unrecorded), MIN);
        assert_eq!(gpu.inventory_ms, MIN);
    }
}

#[test]
fn the_renderers_agree_and_escape_node_text() {
    use crate::ledger::render::{By, Report};
    let mut hours = hour(Overlay::default(), (T0, T0 + 60 * MIN));
    // A reason carrying a node's text: a would-be formula and a terminal control.
    hours.gpus[1][0]
        .lost_ms
        .insert((Cause::Crit, "=HYPERLINK(\"x\")\x1b[2J".into()), 1000);
    let found = repairs::find(&repair_events());
    let report = |by| Report {
        hours: Some(&hours),
        window: (T0, T0 + 60 * MIN),
        repairs: &found,
        by,
    };
    let csv = report(By::Cause).csv();
    assert!(
        csv.contains("hours,(all),crit,\"'=HYPERLINK(\"\"x\"\")\x1b[2J\",,,0.00,gpu-hours"),
        "{csv}"
    );
    assert!(
        csv.contains("hours,(all),crit,N uncorrected ECC errors,,,0.17,gpu-hours"),
        "{csv}"
    );
    assert!(
        csv.contains("repair,done,detect → drain,,n2,2026-11-27T00:31:00Z,62,seconds"),
        "{csv}"
    );
    assert!(csv.contains("phase,max,total,,,,540,seconds"), "{csv}");
    let table = report(By::Tenant).table();
    assert!(!table.contains('\x1b'), "{table}");
    let acme = table.lines().find(|l| l.starts_with("acme")).unwrap();
    assert!(acme.contains("1.00"), "n1's hour: {acme}");
    let cause = report(By::Cause).table();
    assert!(cause.contains("\\x1b[2J"), "escaped: {cause}");
    let json: serde_json::Value = serde_json::from_str(&report(By::Cabinet).json()).unwrap();
    assert_eq!(json["schema"], "fleetop.report/1");
    assert_eq!(json["gpu_hours"]["groups"][0]["name"], "c1");
    let crit = &json["gpu_hours"]["fleet"]["lost"]["crit"]["by_reason"]["N uncorrected ECC errors"];
    assert_eq!(crit.as_f64(), Some(10.0 / 60.0));
    assert_eq!(json["repairs"][0]["status"], "done");
    assert_eq!(json["repairs"][0]["phases_s"]["healthy → validated"], 180.0);
    assert_eq!(json["phases"][6]["max_s"], 540.0);
}

#[test]
fn a_sample_restated_from_before_the_window_is_as_old_as_it_is() {
    // A recording starts the window with each node's last messages from before it, at their own times.
    let (hello, idle) = node_events(IDLE, false);
    let mut ledger = Ledger::new(inventory(), (T0, T0 + MIN), Overlay::default());
    for node in [0, 1] {
        ledger.feed(T0 - 10 * MIN, msg(node, hello.clone()));
        ledger.feed(T0 - 10 * MIN, msg(node, idle.clone()));
    }
    for s in 1..60 {
        ledger.feed(T0 + s * 1000, msg(1, idle.clone()));
    }
    let hours = ledger.finish(T0 + MIN);
    assert_eq!(hours.recorded, Some((T0, T0 + MIN)));
    assert_eq!(
        lost(&hours.gpus[0][0]),
        vec![(Cause::Unreachable, "stale", MIN)]
    );
    assert_eq!(
        lost(&hours.gpus[1][0]),
        vec![(Cause::Unreachable, "stale", 1000)]
    );
    assert_eq!(hours.gpus[1][0].healthy_ms, MIN - 1000);
}
