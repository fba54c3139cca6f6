//! `fleetop report` where the recorder was stopped: two runs of the real recorder (`fleetop record`) following an
//! sshd fleet into one directory, with a pause between them; the pause is unrecorded, not unreachable.

use std::time::{Duration, Instant};

use fleetop::recording::Reader;
use serde_json::Value;

use crate::common;
use crate::report::{ms, S};
/// `fleetop record` of `inv` into `rec` until its recording reaches `until` (Unix ms; bounded by two minutes),
/// then Ctrl-C; returns the recording's last frame time.
fn record_until(
    inv: &std::path::Path,
    rec: &std::path::Path,
    state: &std::path::Path,
    until: u64,
) -> u64 {
    let mut child = std::process::Command::new(common::fleetop_bin())
        .arg("record")
        .arg("--inventory")
        .arg(inv)
        .arg("--out")
        .arg(rec)
        .env("XDG_STATE_HOME", state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Reader::open(rec)
        .ok()
        .and_then(|r| r.span())
        .is_none_or(|(_, last)| last < until)
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the recording never reached {until}: {:?}",
                Reader::open(rec).map(|r| r.span())
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let ended = common::wait_bounded(child, Duration::from_secs(120));
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    Reader::open(rec).unwrap().span().unwrap().1
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A time as the report writes it: to the second.
fn reported(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `fleetop --replay REC report` over `from..to` as JSON (no history store: no repairs).
fn replay_report(
    rec: &std::path::Path,
    state: &std::path::Path,
    from: u64,
    to: u64,
    format: &str,
) -> String {
    let mut cmd = std::process::Command::new(common::fleetop_bin());
    cmd.arg("--replay")
        .arg(rec)
        .args(["report", "--by", "cause", "--format", format])
        .args(["--since", &rfc3339(from), "--until", &rfc3339(to)])
        .env("XDG_STATE_HOME", state)
        .env_remove("FLEETOP_INVENTORY");
    common::stdout_of_success(&mut cmd, Duration::from_secs(120))
}

/// Two runs of the real recorder on an sshd fleet (two nodes with agents, one address that refuses) into one
/// directory, stopped for 25 s between them: the report books that stop as unrecorded for every GPU, from the
/// first run's last frame to the second's first, and only what the recorder saw as unreachable (the refusing
/// node, each node until its first sample).
#[test]
fn a_stopped_recorder_is_unrecorded_not_unreachable() {
    let fleet = common::Fleet::start(
        vec![
            common::Behaviour::Agent(common::Spec::node(1, 8)),
            common::Behaviour::Agent(common::Spec::node(2, 8)),
        ],
        common::Quirks::default(),
    );
    let refusing = fleet.refusing_addr();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("fleet.toml");
    std::fs::write(&inv, fleet.inventory(&[("tn90".into(), refusing)])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let started = wall_ms();
    let last1 = record_until(&inv, &rec, state.path(), started + 5 * S);
    let first1 = Reader::open(&rec).unwrap().span().unwrap().0;
    // Longer than a followed fleet stays silent (a streaming node's 10 s stall limit and a 5 s grace).
    std::thread::sleep(Duration::from_secs(25));
    let last2 = record_until(&inv, &rec, state.path(), wall_ms() + 5 * S);
    let reader = Reader::open(&rec).unwrap();
    // The second run's first frame: the first message after the first run's last (the state restated before).
    let first2 = reader
        .messages(last1 + 1, last2)
        .map(|m| m.unwrap().0)
        .find(|&t| t > last1)
        .unwrap();
    assert!(first2 - last1 >= 25 * S, "{last1} → {first2}");
    let gpus: u64 = reader
        .inventory()
        .nodes
        .iter()
        .map(|n| u64::from(n.expected_gpus))
        .sum();

    let json = |from, to| -> Value {
        serde_json::from_str(&replay_report(&rec, state.path(), from, to, "json")).unwrap()
    };
    let whole = json(first1, last2);
    let hours = &whole["gpu_hours"];
    assert_eq!(
        hours["not_recorded"],
        serde_json::json!([[reported(last1), reported(first2)]])
    );
    let fleet = &hours["fleet"];
    assert_eq!(ms(&fleet["inventory"]), gpus * (last2 - first1));
    assert_eq!(
        ms(&fleet["lost"]["unrecorded"]["gpu_hours"]),
        gpus * (first2 - last1),
        "every GPU, the whole stop, to the millisecond"
    );
    // What the recorder saw unreachable is what each run alone saw: the stop adds nothing to it.
    let unreachable =
        |doc: &Value| ms(&doc["gpu_hours"]["fleet"]["lost"]["unreachable"]["gpu_hours"]);
    let (run1, run2) = (json(first1, last1), json(first2, last2));
    assert!(unreachable(&run1) > 0, "the refusing node");
    assert_eq!(unreachable(&whole), unreachable(&run1) + unreachable(&run2));
    for run in [&run1, &run2] {
        assert_eq!(run["gpu_hours"]["not_recorded"], serde_json::json!([]));
    }
    let claimed = ms(&fleet["healthy"])
        + ["unreachable", "crit", "repair", "validation", "drained"]
            .iter()
            .map(|c| ms(&fleet["lost"][c]["gpu_hours"]))
            .sum::<u64>();
    assert!(
        claimed.abs_diff(gpus * (last2 - first1 - (first2 - last1))) <= 8,
        "healthy and lost claim only the recorded time (rounding of each JSON figure aside)"
    );

    let csv = replay_report(&rec, state.path(), first1, last2, "csv");
    let unrecorded = format!(
        "\nhours,(all),unrecorded,,,,{:.2},gpu-hours\n",
        (gpus * (first2 - last1)) as f64 / 3_600_000.0
    );
    assert!(csv.contains(&unrecorded), "{csv}");
    let table = replay_report(&rec, state.path(), first1, last2, "table");
    assert!(
        table.contains(&format!(
            "not recorded {} to {}",
            reported(last1),
            reported(first2)
        )),
        "{table}"
    );
}
