//! `snapshot --replay DIR --at TIME` shows the jobs the recording holds at that time — the last scheduler answer
//! recorded by then, as the replay TUI shows it — in JSON (`jobs`), CSV (`jobs`) and the table (`JOBS`); before
//! any answer they are unknown, as in a live pass without one.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fleetop::inventory::Inventory;
use fleetop::recording::{Options, Writer};
use serde_json::Value;

use crate::common;

const INVENTORY: &str =
    "[defaults]\ninterval_ms = 1000\ngpus_per_node = 8\n[[cabinet]]\nname = \"c01\"\n\
nodes = \"c01n[1-2]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"c01n[1-2]\"\n";

/// 2026-12-06T12:00:00Z, the recording's first second.
const START_MS: u64 = 1_796_558_400_000;

/// What Slurm answers at second `tick` (`squeue`'s lines, as `slurm::parse` reads them): a job on both nodes,
/// then another on c01n1 alone.
fn answer(tick: u64) -> Option<&'static str> {
    match tick {
        2 => Some("4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=16|3-02:00:00|1:00:00|RUNNING|\n"),
        6 => Some("4250|bob|acme|debug|c01n1|cpu=2,gres/gpu=1|0:40|UNLIMITED|RUNNING|\n"),
        _ => None,
    }
}

/// Ten seconds of the simulated fleet's messages and the scheduler's answers (a failure at second 9), written by
/// the recorder's writer.
fn record(dir: &Path) {
    let inv = Inventory::parse("fixture.toml", INVENTORY).unwrap();
    let options = Options {
        period: Duration::from_secs(300),
        retain: None,
    };
    let mut writer = Writer::create(dir, &inv, INVENTORY, options).unwrap();
    let base = Instant::now();
    for tick in 0..10 {
        let wall = START_MS + tick * 1000;
        for m in fleetop::transport::sim::messages(&inv, 7, tick, base + Duration::from_secs(tick))
        {
            writer.write(wall, &m).unwrap();
        }
        if tick == 9 {
            // The scheduler stops answering: a recorded failure, checked nothing.
            let failed = fleetop::workload::Workload {
                problems: vec!["slurm: squeue: Unable to contact slurm controller".into()],
                ..Default::default()
            };
            writer.write_workload(wall, &failed).unwrap();
        }
        if let Some(answer) = answer(tick) {
            let mut workload = fleetop::workload::Workload::default();
            fleetop::workload::slurm::parse(&inv, answer, &mut workload);
            writer.write_workload(wall, &workload).unwrap();
        }
        writer.flush().unwrap();
    }
    writer.close().unwrap();
}

fn snapshot(dir: &Path, second: u64, format: &str) -> String {
    let at = humantime::format_rfc3339(
        std::time::UNIX_EPOCH + Duration::from_millis(START_MS + second * 1000),
    )
    .to_string();
    let out = Command::new(common::fleetop_bin())
        .args(["snapshot", "--format", format, "--replay"])
        .arg(dir)
        .args(["--at", &at])
        .env_remove("FLEETOP_INVENTORY")
        .env_remove("FLEETOP_CONTEXT")
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c < 3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each node's job ids in a JSON snapshot; `None`: its jobs unknown.
fn job_ids(doc: &Value, node: &str) -> Option<Vec<String>> {
    let jobs = common::node(doc, node)["jobs"].as_array()?;
    Some(
        jobs.iter()
            .map(|j| j["id"].as_str().unwrap_or_default().to_string())
            .collect(),
    )
}

#[test]
fn a_snapshot_of_a_recording_shows_the_jobs_recorded_by_then() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path());

    // Before the scheduler's first answer: unknown, not none.
    let doc: Value = serde_json::from_str(&snapshot(dir.path(), 1, "json")).unwrap();
    assert_eq!(job_ids(&doc, "c01n1"), None, "{doc:#}");

    let doc: Value = serde_json::from_str(&snapshot(dir.path(), 4, "json")).unwrap();
    assert_eq!(job_ids(&doc, "c01n1").unwrap(), ["4242"], "{doc:#}");
    assert_eq!(job_ids(&doc, "c01n2").unwrap(), ["4242"]);
    assert_eq!(common::node(&doc, "c01n1")["jobs"][0]["scheduler"], "slurm");

    // The later answer replaces it: c01n2 runs nothing then (checked, none).
    let doc: Value = serde_json::from_str(&snapshot(dir.path(), 8, "json")).unwrap();
    assert_eq!(job_ids(&doc, "c01n1").unwrap(), ["4250"], "{doc:#}");
    assert_eq!(job_ids(&doc, "c01n2").unwrap(), Vec::<String>::new());

    // After the scheduler failed: unknown again, neither none nor the last answer that came.
    let doc: Value = serde_json::from_str(&snapshot(dir.path(), 9, "json")).unwrap();
    assert_eq!(job_ids(&doc, "c01n1"), None, "{doc:#}");
    assert_eq!(job_ids(&doc, "c01n2"), None, "{doc:#}");

    let csv = snapshot(dir.path(), 4, "csv");
    assert!(
        csv.lines().next().is_some_and(|h| h.ends_with(",jobs")),
        "{csv}"
    );
    let jobs_cells: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    assert_eq!(jobs_cells, vec!["1"; 16], "{csv}");
    let table = snapshot(dir.path(), 8, "table");
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains("  JOBS  NOTES"), "{table}");
    let column = header.find("JOBS").unwrap();
    let cell = |node: &str| -> String {
        let row = table.lines().find(|l| l.starts_with(node)).unwrap();
        row[column..].split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(
        (cell("c01n1"), cell("c01n2")),
        ("1".into(), "0".into()),
        "{table}"
    );
}
