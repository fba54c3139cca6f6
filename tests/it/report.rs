//! `fleetop report` on a recording with a known outage: a recording written by `recording::Writer` from a real
//! GPU's agent lines (`tests/fixtures/real-gpu/`), at fixed wall times, a repair in the history store beside
//! the audit log; the command's JSON and CSV give the GPU-hours to the millisecond.

use std::time::{Duration, Instant};

use fleetop::inventory::Inventory;
use fleetop::recording::{Options, Writer};
use fleetop::store::{kind, Event, Store};
use fleetop::telemetry::wire::{decode_agent_line, AgentLine};
use fleetop::telemetry::Source;
use fleetop::transport::{FailureKind, Msg, NodeEvent};
use serde_json::Value;

use crate::common;

const BUSY: &str = include_str!("../fixtures/real-gpu/h200-agent-busy.ndjson");
const IDLE: &str = include_str!("../fixtures/real-gpu/h200-agent-idle.ndjson");

/// 2026-11-27T00:00:00Z.
const T0: u64 = 1_795_737_600_000;
pub(crate) const S: u64 = 1000;
const MIN: u64 = 60 * S;

fn inventory(dir: &std::path::Path) -> String {
    format!(
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 1\n[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n\
         [[tenant]]\nname = \"acme\"\nnodes = \"n1\"\n[actions]\naudit_log = \"{}/audit.jsonl\"\n",
        dir.display()
    )
}

/// A node's hello and sample as the agent printed them; `crit`: the sample with 3 uncorrected ECC errors.
fn events(text: &str, crit: bool) -> (NodeEvent, NodeEvent) {
    let text = if crit {
        text.replace("\"ecc_uncorrected\":0", "\"ecc_uncorrected\":3")
    } else {
        text.to_string()
    };
    let mut lines = text.lines().map(decode_agent_line);
    let Some(AgentLine::Hello(hello)) = lines.next() else {
        panic!("no hello")
    };
    let Some(AgentLine::Sample(mut sample)) = lines.next() else {
        panic!("no sample")
    };
    sample.sanitize(64);
    let hello = NodeEvent::Streaming {
        source: Source::Agent,
        detail: "agent".into(),
        hello: Some(Box::new(hello)),
    };
    (hello, NodeEvent::Sample(sample))
}

/// Twenty minutes from T0: n1 (acme, busy) silent from 5:00 to 10:00, its transport failing at 5:05; n2 (idle)
/// with uncorrected ECC errors from 12:00 to 14:00.
fn record(dir: &std::path::Path, text: &str) {
    let inv = Inventory::parse("report.toml", text).unwrap();
    let options = Options {
        period: Duration::from_secs(600),
        retain: None,
    };
    let mut writer = Writer::create(dir, &inv, text, options).unwrap();
    let (hello1, busy) = events(BUSY, false);
    let (hello2, idle) = events(IDLE, false);
    let (_, crit) = events(IDLE, true);
    let at = Instant::now();
    let mut write = |t: u64, node: usize, event: &NodeEvent| {
        let msg = Msg {
            node,
            at,
            event: event.clone(),
        };
        writer.write(t, &msg).unwrap();
    };
    write(T0, 0, &hello1);
    write(T0, 1, &hello2);
    for s in 0..=20 * 60 {
        let t = T0 + s * S;
        if !(5 * MIN..10 * MIN).contains(&(s * S)) {
            write(t, 0, &busy);
        } else if s * S == 5 * MIN + 5 * S {
            let failed = NodeEvent::Failed {
                kind: FailureKind::Unreachable,
                detail: "connection timed out".into(),
            };
            write(t, 0, &failed);
        }
        let bad = (12 * MIN..14 * MIN).contains(&(s * S));
        write(t, 1, if bad { &crit } else { &idle });
    }
    writer.close().unwrap();
}

/// A repair of n2 as the audit writer indexes it: crit at 12:00, drained at 13:00, back 14:30, validated 15:00 to
/// 15:30, undrained at 16:00.
fn repair(store: &std::path::Path) {
    let n = "n2";
    let mut crit = Event::node(
        T0 + 12 * MIN,
        n,
        kind::HEALTH,
        "crit: 3 uncorrected ECC errors",
    );
    crit.gpu = Some(0);
    let why = "repair: ECC";
    let intent = |t: u64, d: String| Event::node(t, n, kind::ACTION, &d);
    let outcome = |t: u64, d: &str| Event::node(t, n, kind::OUTCOME, d);
    let events = vec![
        crit,
        intent(
            T0 + 13 * MIN,
            format!("drain by alice: {why} (slurm: scontrol)"),
        ),
        outcome(T0 + 13 * MIN + S, "drain succeeded (exit 0)"),
        intent(
            T0 + 13 * MIN + 2 * S,
            format!("repair-wait-jobs by alice: {why} (fleetop: wait)"),
        ),
        outcome(
            T0 + 13 * MIN + 30 * S,
            "repair-wait-jobs succeeded: no jobs",
        ),
        intent(
            T0 + 13 * MIN + 31 * S,
            format!("reboot by alice: {why} (ssh: reboot)"),
        ),
        outcome(T0 + 14 * MIN, "reboot succeeded"),
        outcome(T0 + 14 * MIN + 30 * S, "repair-wait-back succeeded: back"),
        intent(
            T0 + 15 * MIN,
            format!("repair-validate by alice: {why} (fleetop: dcgmi)"),
        ),
        outcome(
            T0 + 15 * MIN + 30 * S,
            "repair-validate succeeded (exit 0): pass",
        ),
        outcome(T0 + 16 * MIN, "undrain succeeded (exit 0)"),
    ];
    Store::open(store).unwrap().append(&events).unwrap();
}

fn report(inv: &std::path::Path, rec: &std::path::Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(common::fleetop_bin());
    cmd.arg("report")
        .arg("--inventory")
        .arg(inv)
        .arg("--recording")
        .arg(rec)
        .args([
            "--since",
            "2026-11-26T23:50:00Z",
            "--until",
            "2026-11-27T00:20:00Z",
        ])
        .args(args)
        .env_remove("FLEETOP_INVENTORY");
    common::stdout_of_success(&mut cmd, Duration::from_secs(60))
}

/// Hours in the JSON as the milliseconds they were booked from.
pub(crate) fn ms(v: &Value) -> u64 {
    (v.as_f64().unwrap_or_else(|| panic!("{v}")) * 3_600_000.0).round() as u64
}

#[test]
fn report_on_a_recording_with_a_known_outage() {
    let dir = tempfile::tempdir().unwrap();
    let text = inventory(dir.path());
    let inv = dir.path().join("report.toml");
    std::fs::write(&inv, &text).unwrap();
    let rec = dir.path().join("rec");
    record(&rec, &text);
    repair(&dir.path().join("fleet.sqlite"));

    let doc: Value =
        serde_json::from_str(&report(&inv, &rec, &["--format", "json", "--by", "tenant"])).unwrap();
    assert_eq!(doc["schema"], "fleetop.report/1");
    let hours = &doc["gpu_hours"];
    assert_eq!(hours["recorded"][0], "2026-11-27T00:00:00Z");
    let fleet = &hours["fleet"];
    assert_eq!(ms(&fleet["inventory"]), 2 * 30 * MIN);
    // n1: fresh until 3 intervals and 1 ms after its 4:59 sample, then stale until the failure at 5:05, then
    // unreachable until its sample at 10:00.
    let lost = &fleet["lost"];
    let stale = 5 * MIN + 5 * S - (4 * MIN + 59 * S + 3 * S + 1);
    assert_eq!(ms(&lost["unreachable"]["by_reason"]["stale"]), stale);
    assert_eq!(
        ms(&lost["unreachable"]["by_reason"]["unreachable"]),
        5 * MIN - 5 * S
    );
    // n2: crit from 12:00 until the repair's drain at 13:00; the repair holds it to 16:00, 30 s of it validating.
    assert_eq!(
        ms(&lost["crit"]["by_reason"]["N uncorrected ECC errors"]),
        MIN
    );
    assert_eq!(ms(&lost["repair"]["gpu_hours"]), 3 * MIN - 30 * S);
    assert_eq!(ms(&lost["validation"]["gpu_hours"]), 30 * S);
    assert_eq!(ms(&lost["unrecorded"]["gpu_hours"]), 2 * 10 * MIN);
    let n1_healthy = 20 * MIN - stale - (5 * MIN - 5 * S);
    assert_eq!(ms(&fleet["healthy"]), n1_healthy + 20 * MIN - 4 * MIN);
    assert_eq!(ms(&fleet["in_use"]), n1_healthy, "n1 is busy, n2 idle");
    let groups = hours["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["-", "acme"], "n2 holds no tenant");
    assert_eq!(ms(&groups[1]["healthy"]), n1_healthy);

    let repairs = doc["repairs"].as_array().unwrap();
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert_eq!(repairs[0]["node"], "n2");
    assert_eq!(repairs[0]["status"], "done");
    assert_eq!(repairs[0]["phases_s"]["detect → drain"], 61.0);
    assert_eq!(repairs[0]["total_s"], 240.0);

    // `--replay DIR` names the recording as for snapshot (without the inventory's store beside it: no repairs).
    let state = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::fleetop_bin());
    cmd.arg("--replay")
        .arg(&rec)
        .args(["report", "--format", "json"])
        .args([
            "--since",
            "2026-11-26T23:50:00Z",
            "--until",
            "2026-11-27T00:20:00Z",
        ])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("FLEETOP_INVENTORY");
    let out = common::run_bounded(&mut cmd, Duration::from_secs(60));
    let replayed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let unreachable = &replayed["gpu_hours"]["fleet"]["lost"]["unreachable"];
    assert_eq!(unreachable, &lost["unreachable"]);
    assert_eq!(replayed["repairs"], serde_json::json!([]));

    let csv = report(&inv, &rec, &["--format", "csv", "--by", "cabinet"]);
    assert!(
        csv.starts_with("section,group,cause,reason,node,started,value,unit\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\nhours,c1,validation,,,,0.01,gpu-hours\n"),
        "{csv}"
    );
    let table = report(&inv, &rec, &["--by", "cause"]);
    assert!(table.contains("N uncorrected ECC errors"), "{table}");
    assert!(table.contains("Repairs begun in the window: 1"), "{table}");
}
