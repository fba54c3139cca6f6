//! The ledger where the recorder was stopped: a silence of the whole fleet longer than a followed fleet keeps
//! is unrecorded, a shorter one (or one node's) the nodes' own.

use super::tests::{inventory, lost, msg, node_events, BUSY, IDLE, MIN, T0};
use super::Ledger;
use crate::ledger::repairs::Overlay;
use crate::ledger::Cause;
use crate::transport::{FailureKind, NodeEvent};

/// Both nodes every second over `seconds` (from T0), skipping the seconds `silent` names.
fn both_streaming(ledger: &mut Ledger, seconds: u64, silent: impl Fn(u64) -> bool) {
    let (hello1, busy) = node_events(BUSY, false);
    let (hello2, idle) = node_events(IDLE, false);
    ledger.feed(T0, msg(0, hello1));
    ledger.feed(T0, msg(1, hello2));
    for s in (0..seconds).filter(|s| !silent(*s)) {
        ledger.feed(T0 + s * 1000, msg(0, busy.clone()));
        ledger.feed(T0 + s * 1000, msg(1, idle.clone()));
    }
}

#[test]
fn a_stopped_recorder_is_unrecorded_not_unreachable() {
    // Nothing from either node from 10:00 to 20:00: no followed fleet is that quiet, so the recorder was stopped
    // from the last frame (9:59) to the next (20:00).
    let mut ledger = Ledger::new(inventory(), (T0, T0 + 30 * MIN), Overlay::default());
    both_streaming(&mut ledger, 30 * 60, |s| (600..1200).contains(&s));
    let hours = ledger.finish(T0 + 30 * MIN - 1000);
    let gap = (T0 + 10 * MIN - 1000, T0 + 20 * MIN);
    assert_eq!(hours.gaps, vec![gap]);
    for gpu in hours.gpus.iter().flatten() {
        // The gap, and the second after the last frame (outside the recorded part).
        assert_eq!(
            lost(gpu),
            vec![(Cause::Unrecorded, "", gap.1 - gap.0 + 1000)]
        );
        assert_eq!(gpu.inventory_ms, 30 * MIN);
        assert_eq!(gpu.healthy_ms, 30 * MIN - (gap.1 - gap.0 + 1000));
    }
    assert_eq!(hours.gpus[0][0].in_use_ms, hours.gpus[0][0].healthy_ms);
    let json: serde_json::Value = serde_json::from_str(
        &crate::ledger::render::Report {
            hours: Some(&hours),
            window: (T0, T0 + 30 * MIN),
            repairs: &[],
            by: crate::ledger::render::By::Cause,
        }
        .json(),
    )
    .unwrap();
    assert_eq!(
        json["gpu_hours"]["not_recorded"],
        serde_json::json!([["2026-11-27T00:09:59Z", "2026-11-27T00:20:00Z"]])
    );
}

#[test]
fn a_fleet_quiet_for_less_than_a_followed_one_can_be_is_unreachable() {
    // Streaming nodes are heard within their stall limit (10 s here) and a grace: 12 s of silence is theirs.
    let mut ledger = Ledger::new(inventory(), (T0, T0 + MIN), Overlay::default());
    both_streaming(&mut ledger, 60, |s| (20..32).contains(&s));
    let hours = ledger.finish(T0 + MIN - 1000);
    assert_eq!(hours.gaps, vec![]);
    // Fresh for 3 intervals and 1 ms after the sample at 0:19, stale to 0:32.
    let stale = 32_000 - (19_000 + 3001);
    for gpu in hours.gpus.iter().flatten() {
        assert_eq!(
            lost(gpu),
            vec![
                (Cause::Unreachable, "stale", stale),
                (Cause::Unrecorded, "", 1000)
            ]
        );
    }

    // Nodes that failed are tried again within a connection attempt and the longest backoff: a minute of
    // silence after their failures is theirs too, and more than that is the recorder's.
    for (quiet_s, unrecorded) in [(60, false), (75, true)] {
        let mut ledger = Ledger::new(inventory(), (T0, T0 + 5 * MIN), Overlay::default());
        for node in [0, 1] {
            let failed = NodeEvent::Failed {
                kind: FailureKind::Unreachable,
                detail: "connection timed out".into(),
            };
            ledger.feed(T0, msg(node, failed));
        }
        ledger.feed(T0 + quiet_s * 1000, msg(0, NodeEvent::Connecting));
        let hours = ledger.finish(T0 + 5 * MIN);
        let gaps = if unrecorded {
            vec![(T0, T0 + quiet_s * 1000)]
        } else {
            vec![]
        };
        assert_eq!(hours.gaps, gaps, "{quiet_s} s");
        assert_eq!(
            hours.gpus[0][0].lost(Cause::Unreachable),
            5 * MIN - if unrecorded { quiet_s * 1000 } else { 0 },
            "{quiet_s} s"
        );
    }
}

/// The Prometheus transport says `NoData` once per node and then nothing until its series come back: a fleet-wide
/// outage seen through Prometheus (every exporter gone for ten minutes while the recorder ran) is a fleet-wide
/// silence after failures. The recorder's heartbeats (its beat frames, once a second) say it ran: the outage is
/// the nodes', not unrecorded.
#[test]
fn a_silent_fleet_while_the_recorder_beats_is_not_unrecorded() {
    let mut ledger = Ledger::new(inventory(), (T0, T0 + 30 * MIN), Overlay::default());
    let (hello1, busy) = node_events(BUSY, false);
    let (hello2, idle) = node_events(IDLE, false);
    ledger.feed(T0, msg(0, hello1.clone()));
    ledger.feed(T0, msg(1, hello2.clone()));
    for s in 0..600 {
        ledger.feed(T0 + s * 1000, msg(0, busy.clone()));
        ledger.feed(T0 + s * 1000, msg(1, idle.clone()));
    }
    for node in [0, 1] {
        let no_data = NodeEvent::Failed {
            kind: FailureKind::NoData,
            detail: "no series in Prometheus for this node".into(),
        };
        ledger.feed(T0 + 600_000, msg(node, no_data));
    }
    for s in 601..1200 {
        ledger.recorder_alive(T0 + s * 1000);
    }
    ledger.feed(T0 + 1200 * 1000, msg(0, hello1));
    ledger.feed(T0 + 1200 * 1000, msg(1, hello2));
    for s in 1200..1800 {
        ledger.feed(T0 + s * 1000, msg(0, busy.clone()));
        ledger.feed(T0 + s * 1000, msg(1, idle.clone()));
    }
    let hours = ledger.finish(T0 + 30 * MIN - 1000);
    assert_eq!(
        hours.gaps,
        vec![],
        "the outage was booked as the recorder's"
    );
    for gpu in hours.gpus.iter().flatten() {
        let unrecorded: u64 = lost(gpu)
            .iter()
            .filter(|(cause, ..)| *cause == Cause::Unrecorded)
            .map(|(.., ms)| ms)
            .sum();
        // The second after the last frame only (outside the recorded part).
        assert_eq!(unrecorded, 1000);
    }
}

/// Heartbeats that stop are a stopped recorder again: the silence from the last beat to the next frame is a gap.
#[test]
fn a_recorder_whose_heartbeats_stop_is_unrecorded() {
    let mut ledger = Ledger::new(inventory(), (T0, T0 + 30 * MIN), Overlay::default());
    both_streaming(&mut ledger, 600, |_| false);
    for s in 600..700 {
        ledger.recorder_alive(T0 + s * 1000);
    }
    let (_, busy) = node_events(BUSY, false);
    let (_, idle) = node_events(IDLE, false);
    for s in 1200..1800 {
        ledger.feed(T0 + s * 1000, msg(0, busy.clone()));
        ledger.feed(T0 + s * 1000, msg(1, idle.clone()));
    }
    let hours = ledger.finish(T0 + 30 * MIN - 1000);
    assert_eq!(hours.gaps, vec![(T0 + 699 * 1000, T0 + 20 * MIN)]);
}
