//! `fleetop history` on a real sshd fleet: snapshots feed the history store beside the audit log, and a GPU
//! (same serial) that moves to another node keeps its past.

use std::time::Duration;

use crate::common::{self, run_bounded, Behaviour, Fleet, Quirks, Spec};
use serde_json::Value;

/// XID 79 on the GPU at PCI 0000:02:00 (GPU 1 of the fake library).
const XID_79: &str =
    "6,2001,5000000,-;NVRM: Xid (PCI:0000:02:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n";

/// Two GPUs; GPU 1 is the board `GPU-board-<tail>` wherever it is, serial `1652<tail>` (the fake library's
/// serial repeats the UUID's last four characters).
fn spec(seed: u32, tail: &str) -> Spec {
    Spec::node(seed, 2).with_gpu_column(1, 1, &format!("GPU-board-{tail}"))
}

fn write_node(fleet: &Fleet, i: usize, spec: &Spec, kmsg: &str) {
    let base = fleet.dir.path().join("nodes").join(&fleet.nodes[i].addr);
    std::fs::write(format!("{}.spec", base.display()), &spec.text).unwrap();
    std::fs::write(format!("{}.kmsg", base.display()), kmsg).unwrap();
}

fn history(fleet: &Fleet, inventory: &std::path::Path, key: &str, format: &str) -> (i32, String) {
    let out = run_bounded(
        &mut fleet.fleetop(&[
            "history",
            "--inventory",
            inventory.to_str().unwrap(),
            key,
            "--format",
            format,
        ]),
        Duration::from_secs(30),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_gpu_that_moves_to_another_node_keeps_its_history_newest_first() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(spec(1, "7001")),
            Behaviour::Agent(spec(2, "7002")),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let (a, b) = (fleet.nodes[0].name.clone(), fleet.nodes[1].name.clone());
    // Pass 1: the GPU of serial 16527001 is on node a, with XID 79 in its kernel log.
    write_node(&fleet, 0, &spec(1, "7001"), XID_79);
    let first = fleet.snapshot(&inventory, "json", "20");
    assert_eq!(first.status.code(), Some(2), "XID 79 is crit");
    // Pass 2: the board is now in node b (same serial and UUID); node a has a new GPU there.
    write_node(&fleet, 0, &spec(1, "7003"), "");
    write_node(&fleet, 1, &spec(2, "7001"), "");
    let second = fleet.snapshot(&inventory, "json", "20");
    assert!(second.status.code().is_some());

    let (code, text) = history(&fleet, &inventory, "16527001", "json");
    assert_eq!(code, 0, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["schema"], "fleetop.history/1");
    let events = doc["events"].as_array().unwrap();
    let line = |e: &Value| format!("{} {} {}", e["node"], e["kind"], e["detail"]);
    let lines: Vec<String> = events.iter().map(line).collect();
    let moved = events
        .iter()
        .position(|e| e["kind"] == "moved")
        .unwrap_or_else(|| panic!("no move in {lines:#?}"));
    assert_eq!(
        events[moved]["detail"],
        format!("from {a} to {b}"),
        "{lines:#?}"
    );
    let xid = events
        .iter()
        .position(|e| e["kind"] == "xid")
        .unwrap_or_else(|| panic!("no XID in {lines:#?}"));
    assert!(moved < xid, "newest first: {lines:#?}");
    assert_eq!(events[xid]["node"], a.as_str());
    assert!(events[xid]["detail"]
        .as_str()
        .unwrap()
        .starts_with("XID 79 ×1"));
    // Crit on node a, then ok on node b: both the GPU's.
    let health: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "health" && e["gpu"] == 1)
        .map(|e| (e["node"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert!(
        health.iter().any(|(n, d)| *n == a && d.starts_with("crit")),
        "{health:?}"
    );
    assert!(
        health.iter().any(|(n, d)| *n == b && d.starts_with("ok")),
        "{health:?}"
    );
    // Times run newest first.
    let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // The table names both nodes; the GPU's new node's history holds the old node's XID.
    let (code, table) = history(&fleet, &inventory, &b, "table");
    assert_eq!(code, 0);
    assert!(table.contains(&a) && table.contains("XID 79"), "{table}");
    // Nothing recorded: an empty list, said on stderr, not an error.
    let (code, none) = history(&fleet, &inventory, "no-such-gpu", "json");
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&none).unwrap();
    assert_eq!(doc["events"], serde_json::json!([]));
}

/// The reasons snapshot JSON gives GPU `gpu` of node `name`.
fn gpu_reasons(doc: &Value, name: &str, gpu: u64) -> Vec<String> {
    let node = common::node(doc, name);
    let g = node["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["index"] == gpu)
        .unwrap_or_else(|| panic!("no GPU {gpu} in {node}"));
    g["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_agent_s_journal_outlives_a_restart_and_a_torn_tail() {
    let fleet = Fleet::start(vec![Behaviour::Agent(spec(1, "7001"))], Quirks::default());
    let inventory = fleet.write_inventory(&[]);
    let name = fleet.nodes[0].name.clone();
    let base = fleet.dir.path().join("nodes").join(&fleet.nodes[0].addr);
    let journal = std::path::PathBuf::from(format!("{}.journal", base.display()));
    std::fs::create_dir_all(&journal).unwrap();
    common::run_bounded(
        std::process::Command::new("chmod").arg("777").arg(&journal),
        Duration::from_secs(10),
    );
    // An NVSwitch SXid too: the node's own event, journaled under the node.
    let sxid = "6,2002,5000001,-;nvidia-nvswitch1: SXid (PCI:0000:05:00.0): 22013, Non-fatal, Link 00 Minion Link DLREQ interrupt\n";
    write_node(&fleet, 0, &spec(1, "7001"), &format!("{XID_79}{sxid}"));
    let before = fleet.snapshot(&inventory, "json", "20");
    assert_eq!(before.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&before.stdout).unwrap();
    let reasons = gpu_reasons(&doc, &name, 1);
    assert!(
        !reasons.iter().any(|r| r.contains("before reboot")),
        "{reasons:?}"
    );
    let file = journal.join("journal.jsonl");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains(r#""serial":"16527001""#)
            && written.contains(r#""code":79"#)
            && written.contains(r#""kind":"sxid","code":22013"#),
        "{written}"
    );
    // The node reboots: its kernel log starts empty, the agent is a new process; the last write was torn.
    write_node(&fleet, 0, &spec(1, "7001"), "");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"t":1,"gpu":1,"serial":"165"#).unwrap();
    drop(f);
    let after = fleet.snapshot(&inventory, "json", "20");
    let doc: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(
        after.status.code(),
        Some(0),
        "history is information: {doc}"
    );
    let reasons = gpu_reasons(&doc, &name, 1);
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("XID 79, last ") && r.ends_with("ago, before reboot")),
        "{reasons:?}"
    );
    let node_reasons: Vec<&str> = common::node(&doc, &name)["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        node_reasons
            .iter()
            .any(|r| r.starts_with("SXid 22013, last ") && r.ends_with("ago, before reboot")),
        "{node_reasons:?}"
    );
    // The journal stays bounded: the torn line is not rewritten, the next record starts on a line of its own.
    let again = std::fs::read_to_string(&file).unwrap();
    assert!(again.len() < 64 * 1024);
}

#[test]
fn a_node_that_keeps_failing_is_flagged_a_repeat_offender_in_snapshot() {
    let fleet = Fleet::start(vec![Behaviour::Agent(spec(1, "7001"))], Quirks::default());
    let path = fleet.dir.path().join("inventory.toml");
    let text = fleet.inventory(&[]) + "[repair]\nmax_repairs = 2\nrepair_window = \"30d\"\n";
    std::fs::write(&path, text).unwrap();
    let name = fleet.nodes[0].name.clone();
    let pass = |kmsg: &str| {
        write_node(&fleet, 0, &spec(1, "7001"), kmsg);
        let out = fleet.snapshot(&path, "json", "20");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reasons: Vec<String> = common::node(&doc, &name)["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        (out.status.code(), reasons)
    };
    // Crit once, then well: one incident is not a lemon.
    assert_eq!(pass(XID_79).0, Some(2));
    let (code, reasons) = pass("");
    assert_eq!(code, Some(0), "{reasons:?}");
    // Crit again: the second incident within 30 days.
    pass(XID_79);
    let (code, reasons) = pass("");
    assert_eq!(code, Some(1), "a repeat offender warns: {reasons:?}");
    let flagged = reasons
        .iter()
        .find(|r| r.starts_with("repeat offender: 2 incidents in 30 days"))
        .unwrap_or_else(|| panic!("{reasons:?}"));
    assert!(
        flagged.contains("GPU 1 (SN 16527001) 2 incidents in 30 days"),
        "{flagged}"
    );
}
