//! The real `fleetop agent` loading a fake libnvidia-ml.so built by the test suite.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{shared, wait_bounded};
use serde_json::{json, Value};

fn spec_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn agent(spec: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::fleetop_bin());
    cmd.arg("agent")
        .args(args)
        .env("FAKE_NVML_SPEC", spec)
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml);
    cmd
}

const SPEC: &str = "driver 550.90.07\ncuda 12040\n\
gpu 0|GPU-aaa|NVIDIA H100 80GB HBM3|97|41|70000|81559|71|NA|650500|700000|1980|8|0|0|0|0|5|16|89|92|95\n\
gpu 1|GPU-bbb|NVIDIA H100 80GB HBM3|NA|0|0|81559|35|40|70000|700000|345|129|2|1|1|79|NA|NA|89|92|95\n";

#[test]
fn once_prints_hello_and_one_exact_sample() {
    let spec = spec_file(SPEC);
    let out = wait_bounded(
        agent(spec.path(), &["--once"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        json!({"fleetop_agent": 1, "version": env!("CARGO_PKG_VERSION"), "driver": "550.90.07", "cuda": "12.4", "gpus": 2})
    );
    let g0 = &lines[1]["gpus"][0];
    assert_eq!(g0["uuid"], "GPU-aaa");
    assert_eq!(g0["util_pct"], 97);
    assert_eq!(g0["mem_util_pct"], 41);
    assert_eq!(g0["mem_used_mib"], 70000);
    assert_eq!(g0["mem_total_mib"], 81559);
    assert_eq!(g0["temp_c"], 71);
    assert_eq!(
        g0["mem_temp_c"],
        Value::Null,
        "unsupported memory temperature is null, not 0"
    );
    assert_eq!(g0["power_w"], 650.5);
    assert_eq!(g0["power_limit_w"], 700.0);
    assert_eq!(g0["sm_clock_mhz"], 1980);
    assert_eq!(g0["throttle"], json!(["hw_slowdown"]));
    assert_eq!(g0["pcie_gen"], 5);
    assert_eq!(g0["pcie_width"], 16);
    assert_eq!(g0["temp_slowdown_c"], 89);
    assert_eq!(g0["mem_temp_max_c"], 95);
    let g1 = &lines[1]["gpus"][1];
    assert_eq!(g1["util_pct"], Value::Null);
    assert_eq!(
        g1["throttle"],
        json!(["gpu_idle", "hw_power_brake_slowdown"])
    );
    assert_eq!(g1["ecc_uncorrected"], 2);
    assert_eq!(g1["remapped_rows_pending"], true);
    assert_eq!(g1["remapped_rows_failed"], true);
    assert_eq!(g1["pcie_gen"], Value::Null);
    assert!(lines[1]["t"].as_u64().unwrap() > 1_700_000_000_000);
}

#[test]
fn streaming_reports_xid_events_from_the_event_set() {
    let spec = spec_file(SPEC);
    let mut child = agent(spec.path(), &["--interval", "100"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen_xid = None;
    for line in BufReader::new(stdout).lines().take(40) {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(xid) = v["gpus"][1]["xid"].as_array().filter(|x| !x.is_empty()) {
            seen_xid = Some(xid.clone());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen_xid,
        Some(vec![json!(79)]),
        "XID 79 on GPU 1 arrives through the event set"
    );
}

#[test]
fn missing_nvml_is_one_clear_line_and_exit_69() {
    let out = Command::new(common::fleetop_bin())
        .args([
            "agent",
            "--once",
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fleetop agent: cannot use NVML (/nonexistent/libnvidia-ml.so.1)"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn a_closed_stdout_ends_the_agent_quietly() {
    let spec = spec_file(SPEC);
    let mut child = agent(spec.path(), &["--interval", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let out = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
