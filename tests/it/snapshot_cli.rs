//! `fleetop snapshot --demo`: the reference fleet through the real pipeline, every format, filters and exit codes.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common;

fn snapshot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .arg("snapshot")
        .args(args)
        .env_remove("FLEETOP_INVENTORY")
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--demo", "--format", "json"];
    all.extend_from_slice(args);
    let out = snapshot(&all);
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &str) -> BTreeSet<String> {
    names.split_whitespace().map(String::from).collect()
}

#[test]
fn json_is_the_full_reference_fleet_in_the_documented_schema() {
    let (code, doc) = json(&[]);
    assert_eq!(code, 2, "two unreachable nodes and an XID 79 are crit");
    assert_eq!(
        keys(&doc),
        set("schema taken_at inventory summary nodes drift")
    );
    assert_eq!(doc["schema"], "fleetop.snapshot/1");
    assert_eq!(doc["inventory"], "demo");
    assert!(humantime::parse_rfc3339(doc["taken_at"].as_str().unwrap()).is_ok());
    let s = &doc["summary"];
    assert_eq!(
        keys(s),
        set("nodes nodes_up gpus_expected gpus_seen health power_watts out_of_service health_in_service")
    );
    assert_eq!(s["out_of_service"], 0);
    assert_eq!(s["health_in_service"], "crit");
    assert_eq!(
        (s["nodes"].as_u64(), s["nodes_up"].as_u64()),
        (Some(1025), Some(1023))
    );
    assert_eq!(
        (s["gpus_expected"].as_u64(), s["gpus_seen"].as_u64()),
        (Some(8200), Some(8182)),
        "c042n3 lost GPU 5, c150n2 came back from repair without GPU 7"
    );
    assert_eq!(s["health"], "crit");
    let agent = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["aspect"] == "agent")
        .expect("agents of another build are drift");
    let old = agent["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["value"] == "0.0.9")
        .unwrap();
    assert_eq!(
        old["nodes"],
        serde_json::json!(["c301n1", "c301n2", "c302n1"])
    );
    assert_eq!(old["count"], 3);
    assert!(old["drift"]
        .as_str()
        .unwrap()
        .starts_with("agent 0.0.9, jump host "));
    let nodes = doc["nodes"].as_array().unwrap();
    let cabinets: BTreeSet<&str> = nodes
        .iter()
        .map(|n| n["cabinet"].as_str().unwrap())
        .collect();
    assert_eq!(cabinets.len(), 384);
    let tenants: BTreeSet<&str> = nodes.iter().filter_map(|n| n["tenant"].as_str()).collect();
    assert!(tenants.len() >= 20, "{tenants:?}");
    for n in nodes {
        assert_eq!(
            keys(n),
            set("name cabinet tenant state health source sample_age_ms error operations driver cuda agent_version kernel reasons ib gpus")
        );
        // The demo asks no drain backend: not checked.
        assert_eq!(n["operations"], Value::Null);
        for g in n["gpus"].as_array().unwrap() {
            assert_eq!(
                keys(g),
                set("index uuid name util_pct mem_util_pct mem_used_mib mem_total_mib temp_c mem_temp_c power_w \
                     power_limit_w sm_clock_mhz throttle ecc_uncorrected remapped_rows_pending \
                     remapped_rows_failed remapped_rows_uncorrectable mig_enabled pci_bus_id serial vbios tlimit_margin_c \
                     xid xid_events recovery_action nvlink processes pcie_gen pcie_width pcie_max_gen pcie_max_width \
                     pcie_replay pcie_replay_rise pcie_aer fabric sram_threshold_exceeded memory_unrepairable remap_banks \
                     mem_temp_max_c clock_violation errors health reasons")
            );
        }
    }
    let by_name = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap();
    for name in ["c017n2", "c203n1"] {
        assert_eq!(by_name(name)["state"], "unreachable");
        assert_eq!(by_name(name)["gpus"], Value::Array(vec![]));
    }
    let fell_off = &by_name("c042n3")["gpus"][5];
    assert_eq!(fell_off["health"], "crit");
    assert_eq!(fell_off["xid"], serde_json::json!([79]));
    assert_eq!(fell_off["errors"][0]["kind"], "lost");
    assert_eq!(
        fell_off["util_pct"],
        Value::Null,
        "a GPU that fell off the bus reports nothing, not 0"
    );
    let remap = &by_name("c118n1")["gpus"][2];
    assert_eq!(remap["remapped_rows_pending"], true);
    assert_eq!(remap["health"], "warn");
    assert_eq!(by_name("c077n1")["health"], "warn");
    assert_eq!(by_name("c352n1")["tenant"], Value::Null, "spare");
    assert_eq!(by_name("c351n1")["tenant"], "piedpiper+duff");
}

#[test]
fn filters_select_nodes_and_set_the_exit_code() {
    let (code, doc) = json(&["--filter", "cabinet=c001"]);
    assert_eq!((code, doc["summary"]["nodes"].as_u64()), (0, Some(3)));
    let (code, doc) = json(&["--filter", "cabinet=c077"]);
    assert_eq!((code, doc["summary"]["health"].as_str()), (1, Some("warn")));
    let (code, _) = json(&["--filter", "node=c042*"]);
    assert_eq!(code, 2);
    let (_, doc) = json(&["--filter", "state=unreachable"]);
    assert_eq!(doc["summary"]["nodes"], 2);
    let (_, doc) = json(&["--filter", "tenant=duff"]);
    assert_eq!(doc["summary"]["nodes"], 2);
    let (code, doc) = json(&["--filter", "tenant=acme health=ok"]);
    assert_eq!(code, 0);
    assert_eq!(
        doc["summary"]["nodes"], 119,
        "acme has 120 nodes, one unreachable"
    );
    let bad = snapshot(&["--demo", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown filter key \"colour\""));
}

#[test]
fn bad_inputs_exit_3_with_the_reason_on_stderr() {
    let out = snapshot(&["--inventory", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
    let out = snapshot(&["--demo", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(3));
    let out = snapshot(&["--demo", "--format", "yaml"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn prometheus_output_passes_promtool() {
    let out = snapshot(&["--demo", "--format", "prom"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fleetop_fleet_gpus_seen 8182\n"),
        "{}",
        &text[..500.min(text.len())]
    );
    assert!(text.contains("fleetop_node_up{node=\"c017n2\",cabinet=\"c017\",tenant=\"acme\"} 0"));
    assert!(text.contains("fleetop_gpu_temperature_celsius{node=\"c077n1\",gpu=\"3\","));
    common::promtool_check(&text);
}

#[test]
fn csv_has_one_row_per_gpu_and_one_per_silent_node() {
    let out = snapshot(&["--demo", "--format", "csv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let columns = lines[0].split(',').count();
    assert!(lines[0].starts_with("node,cabinet,tenant,state,node_health"));
    assert_eq!(lines.len(), 1 + 8183 + 2);
    let quoted = lines.iter().filter(|l| l.contains('"')).count();
    // Rows without quoted fields must have exactly the header's number of columns.
    for l in lines.iter().filter(|l| !l.contains('"')) {
        assert_eq!(l.split(',').count(), columns, "{l}");
    }
    assert!(quoted > 0, "rows with reasons containing commas are quoted");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("c017n2,c017,acme,unreachable,crit,")));
}

#[test]
fn table_lists_the_worst_nodes_first_and_sums_up() {
    let out = snapshot(&["--demo"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NODE "));
    assert!(lines[1].contains(" crit "), "{}", lines[1]);
    assert!(
        text.contains("1025 nodes (1023 up), 8182 of 8200 GPUs seen"),
        "{text}"
    );
    // Drift: in each node's notes, and summed up at the end, grouped by what differs.
    let c088 = lines.iter().find(|l| l.starts_with("c088n1")).unwrap();
    assert!(
        c088.contains(" warn ") && c088.contains("drift: driver 550.54.15, fleet runs 550.90.07"),
        "{c088}"
    );
    // The demo's fabric: a port down, a port trained at HDR.
    let c099 = lines.iter().find(|l| l.starts_with("c099n2")).unwrap();
    assert!(
        c099.contains("IB mlx5_3 port 1 down: 1: DOWN, 3: Disabled"),
        "{c099}"
    );
    let c123 = lines.iter().find(|l| l.starts_with("c123n1")).unwrap();
    assert!(
        c123.contains("IB mlx5_5 port 1 at 200 Gb/s, fleet runs 400 Gb/s"),
        "{c123}"
    );
    let c301 = lines.iter().find(|l| l.starts_with("c301n1")).unwrap();
    assert!(c301.contains("drift: agent 0.0.9, jump host "), "{c301}");
    let drift = &text[text
        .find("\ndrift:\n")
        .expect("a drift section ends the table")..];
    for expected in [
        "warn  agent     0.0.9 on 3 nodes (jump host ",
        "c301n1 c301n2 c302n1",
        "warn  driver    550.54.15 on 2 nodes (fleet runs 550.90.07): c088n1 c088n2",
        "warn  VBIOS     96.00.74.00.0B + 96.00.99.00.01 on 1 node (fleet runs 96.00.99.00.01): c210n1",
        // c042n3's lost GPU 5 is still installed: its own crit, not drift.
        "warn  GPUs      7 on 1 node (inventory lists 8): c150n2",
    ] {
        assert!(drift.contains(expected), "{expected:?} not in {drift}");
    }
    let c042 = lines.iter().find(|l| l.starts_with("c042n3")).unwrap();
    assert!(
        c042.contains("GPU 5: XID 79: reboot the node (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"),
        "{c042}"
    );
}

#[test]
fn without_a_terminal_fleetop_prints_summary_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .arg("--demo")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("1025 nodes, "), "{first}");
}

/// Runs fleetop with stdout a pipe whose reader keeps `keep` bytes and then closes it.
fn with_closed_stdout(args: &[&str], keep: usize) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(args)
        .env_remove("FLEETOP_INVENTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; keep];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    drop(stdout);
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < limit,
            "fleetop kept running with stdout closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly() {
    // `fleetop --demo | head -1`: the line mode stops at its next line, with status 0.
    let out = with_closed_stdout(&["--demo"], 10);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    // `fleetop snapshot --demo | head`: the verdict (2, the demo has crit nodes) stands, nothing panics.
    let out = with_closed_stdout(&["snapshot", "--demo"], 10);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_and_impossible_values_exit_3() {
    for args in [
        &["--bogus"][..],
        &["snapshot", "--format"],
        &["drain"],
        &["snapshot", "--demo", "--timeout", "1e20"],
        &["snapshot", "--demo", "--timeout", "NaN"],
        &["snapshot", "--demo", "--source", "bogus"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fleetop"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let help = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
}
