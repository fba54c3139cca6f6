//! An XID from before the GPU's last audited reset is history, not a current fault: the audit log written by a
//! reset, read back by `actions::resets`, changes the node's verdict; a failed reset changes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetop::fleet::view::Pending;
use fleetop::fleet::FleetState;
use fleetop::inventory::Inventory;
use fleetop::telemetry::health::Health;
use fleetop::telemetry::{GpuSample, NodeSample, XidEvent};
use fleetop::transport::{Msg, NodeEvent};

/// 2026-12-06T17:00:00Z and 18:00:00Z.
const XID_AT_MS: u64 = 1_796_576_400_000;
const SAMPLE_AT_MS: u64 = 1_796_580_000_000;

fn fleet_with_xid79(now: Instant) -> FleetState {
    fleet_with(now, false)
}

/// XID 79 on GPU 0, or (`unmatched`) on a PCI address no listed GPU has: a GPU lost before the agent started.
fn fleet_with(now: Instant, unmatched: bool) -> FleetState {
    let inv = Inventory::parse(
        "fixture.toml",
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 1\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[1-2]\"\n",
    )
    .unwrap();
    let mut fleet = FleetState::new(Arc::new(inv));
    let gpu = GpuSample {
        index: 0,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        util_pct: Some(0),
        temp_c: Some(40),
        xid: Some(vec![79]),
        xid_events: Some(vec![XidEvent {
            code: 79,
            count: 1,
            first_ms: Some(XID_AT_MS),
            last_ms: Some(XID_AT_MS),
            text: Some("GPU has fallen off the bus.".into()),
            fatal: None,
        }]),
        ..Default::default()
    };
    let (gpu, unmatched_xid) = if unmatched {
        let event = gpu.xid_events.clone().unwrap_or_default();
        let clean = GpuSample {
            xid: Some(vec![]),
            xid_events: None,
            ..gpu
        };
        (clean, event)
    } else {
        (gpu, Vec::new())
    };
    fleet.apply(Msg {
        node: 0,
        at: now,
        event: NodeEvent::Sample(NodeSample {
            t: SAMPLE_AT_MS,
            gpus: vec![gpu],
            unmatched_xid,
            ..Default::default()
        }),
    });
    fleet
}

fn audit_line(action: &str, ok: bool, time: &str, command: &str) -> String {
    format!(
        r#"{{"record":"outcome","id":"1","time":"{time}","operator":"ann","action":"{action}","node":"c01n1","backend":"ssh","command":"{command}","ok":{ok},"exit_status":0,"duration_ms":4000,"detail":""}}"#
    )
}

fn verdict_after(log: &[String]) -> (Health, Vec<String>) {
    let now = Instant::now();
    let mut fleet = fleet_with_xid79(now);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, log.join("\n") + "\n").unwrap();
    fleet.note_resets(&fleetop::actions::resets::read(
        &path,
        Default::default(),
        false,
    ));
    let view = fleet.node_view(0, now + Duration::from_secs(60), Pending::Connecting);
    let gpu = &view.gpus[0].verdict;
    (gpu.health, gpu.reasons.clone())
}

#[test]
fn an_xid_before_the_audited_reset_is_not_a_current_fault() {
    let (health, reasons) = verdict_after(&[]);
    assert_eq!(health, Health::Crit, "{reasons:?}");
    assert!(
        reasons[0].ends_with("; last 1 h ago"),
        "every XID shows its age: {reasons:?}"
    );

    let reset = audit_line(
        "reset",
        true,
        "2026-12-06T17:30:00.000Z",
        "ssh c01n1 -- nvidia-smi -r -i 0",
    );
    // XID 79 is RESTART_BM in NVIDIA's catalogue: a GPU reset is not its remedy, so it stays a fault.
    let (health, reasons) = verdict_after(std::slice::from_ref(&reset));
    assert_eq!(health, Health::Crit, "{reasons:?}");

    let reboot = audit_line(
        "reboot",
        true,
        "2026-12-06T17:30:00.000Z",
        "systemctl reboot",
    );
    let (health, reasons) = verdict_after(&[reset, reboot]);
    assert_eq!(health, Health::Ok, "a reboot resets every GPU: {reasons:?}");
    assert!(
        reasons[0].starts_with("XID 79: before the last reset (reset or reboot audited, 31 min ago), not a current fault"),
        "{reasons:?}"
    );
}

#[test]
fn a_failed_or_earlier_reset_or_another_gpus_changes_nothing() {
    for line in [
        audit_line("reset", false, "2026-12-06T17:30:00.000Z", "nvidia-smi -r"),
        audit_line("reset", true, "2026-12-06T16:30:00.000Z", "nvidia-smi -r"),
        audit_line(
            "reset",
            true,
            "2026-12-06T17:30:00.000Z",
            "nvidia-smi -r -i 3",
        ),
        audit_line("drain", true, "2026-12-06T17:30:00.000Z", "scontrol update"),
    ] {
        let (health, reasons) = verdict_after(std::slice::from_ref(&line));
        assert_eq!(health, Health::Crit, "{line}: {reasons:?}");
    }
}

#[test]
fn an_unlisted_gpus_xid_is_history_only_after_a_reboot() {
    let node_verdict = |log: &[String]| {
        let now = Instant::now();
        let mut fleet = fleet_with(now, true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, log.join("\n") + "\n").unwrap();
        fleet.note_resets(&fleetop::actions::resets::read(
            &path,
            Default::default(),
            false,
        ));
        let view = fleet.node_view(0, now, Pending::Connecting);
        (view.verdict.health, view.verdict.reasons)
    };
    let (health, reasons) = node_verdict(&[]);
    assert_eq!(health, Health::Crit, "{reasons:?}");
    let reset = audit_line("reset", true, "2026-12-06T17:30:00.000Z", "nvidia-smi -r");
    assert_eq!(
        node_verdict(&[reset]).0,
        Health::Crit,
        "a GPU reset cannot reach an unlisted GPU"
    );
    let reboot = audit_line(
        "reboot",
        true,
        "2026-12-06T17:45:00.000Z",
        "systemctl reboot",
    );
    let (health, reasons) = node_verdict(&[reboot]);
    assert!(health < Health::Crit, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("XID 79 (1×): before the last reset")),
        "{reasons:?}"
    );
}
