//! `fleetop reset` on the sshd test fleet: the node's `nvidia-smi -r` (a stand-in that records its calls), the
//! Slurm drain read-back from a controller over SSH, the agent's process list read just before, and the fresh
//! sample that decides success afterwards.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{run_bounded, Behaviour, Fleet, Quirks, Spec};

/// A fleet whose first node is the Slurm controller; the other nodes are the ones reset.
fn inventory(fleet: &Fleet) -> PathBuf {
    let dir = fleet.dir.path();
    let controller = &fleet.nodes[0].addr;
    let text = fleet.inventory(&[]).replacen(
        "[defaults]\n",
        &format!("[defaults]\nport = {}\n", fleet.port),
        1,
    ) + &format!(
        "[drain]\nbackend = \"slurm\"\ncontroller = \"{controller}\"\n[actions]\naudit_log = \"{}/audit.jsonl\"\n",
        dir.display()
    );
    let path = dir.join("reset.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn drain(fleet: &Fleet, node: &str) {
    std::fs::write(fleet.dir.path().join("drained").join(node), "").unwrap();
}

fn reset(fleet: &Fleet, inventory: &Path, args: &[&str]) -> Output {
    let mut all = vec!["reset"];
    all.extend_from_slice(args);
    all.extend(["--inventory", inventory.to_str().unwrap()]);
    run_bounded(&mut fleet.fleetop(&all), Duration::from_secs(60))
}

/// What the node's `nvidia-smi -r` stand-in was called with, one line per call.
fn resets(fleet: &Fleet, i: usize) -> Vec<String> {
    std::fs::read_to_string(
        fleet
            .dir
            .path()
            .join(format!("records/{}.nvidia-smi-reset", fleet.nodes[i].addr)),
    )
    .unwrap_or_default()
    .lines()
    .map(String::from)
    .collect()
}

fn audit(fleet: &Fleet) -> Vec<serde_json::Value> {
    std::fs::read_to_string(fleet.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_drained_idle_gpu_is_reset_and_judged_on_a_fresh_sample() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 1)),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks::default(),
    );
    let inv = inventory(&fleet);
    drain(&fleet, "tn02");

    let dry = reset(&fleet, &inv, &["tn02", "--gpu", "1", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        "ssh tn02 -- nvidia-smi -r -i 1\n"
    );
    assert!(resets(&fleet, 1).is_empty(), "a dry run resets nothing");

    let out = reset(&fleet, &inv, &["tn02", "--gpu", "1", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = &doc["nodes"][0];
    assert_eq!(node["ok"], true, "{doc:#}");
    assert_eq!(node["command"], "ssh tn02 -- nvidia-smi -r -i 1");
    let detail = node["detail"].as_str().unwrap();
    assert!(
        detail.contains("GPU 1 answering without error afterwards"),
        "{detail}"
    );
    assert_eq!(resets(&fleet, 1), ["-r -i 1"]);
    assert!(resets(&fleet, 0).is_empty(), "only the target node");
    let records = audit(&fleet);
    assert_eq!(records.len(), 2, "intent and outcome: {records:?}");
    assert_eq!(records[0]["action"], "reset");
    assert_eq!(records[1]["ok"], true, "{records:?}");

    // Without --gpu: every GPU of the node, in one command.
    let out = reset(&fleet, &inv, &["tn02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(resets(&fleet, 1), ["-r -i 1", "-r"]);
}

#[test]
fn a_reset_is_refused_unless_drained_idle_and_writable() {
    // A live process (this test), so the agent finds it under /proc.
    let pid = std::process::id();
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 1)),
            // In service.
            Behaviour::Agent(Spec::node(3, 2)),
            // Drained, but a process still holds GPU 1.
            Behaviour::Agent(Spec::node(4, 2).with_line(&format!("proc 1 {pid} 1000 c"))),
        ],
        Quirks::default(),
    );
    let inv = inventory(&fleet);
    drain(&fleet, "tn03");

    let out = reset(&fleet, &inv, &["tn02", "--gpu", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("tn02: not drained (idle); drain it first"),
        "{}",
        text(&out)
    );

    let out = reset(&fleet, &inv, &["tn03", "--gpu", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("tn03: processes hold GPU 1 (pid {pid})")),
        "{}",
        text(&out)
    );

    let out = reset(&fleet, &inv, &["tn03", "--read-only"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("read-only: reset refused"),
        "{}",
        text(&out)
    );

    // --force passes the drain guard, but only with the typed count (or --yes): stdin is no terminal here.
    let out = reset(&fleet, &inv, &["tn02", "--gpu", "0", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("reset of 1 nodes needs --yes"),
        "{}",
        text(&out)
    );

    assert!(resets(&fleet, 1).is_empty() && resets(&fleet, 2).is_empty());
    assert!(audit(&fleet).is_empty(), "nothing ran, nothing to audit");

    // Forced and confirmed, an idle node in service is reset; a held GPU never is.
    let out = reset(&fleet, &inv, &["tn02", "--gpu", "0", "--force", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(resets(&fleet, 1), ["-r -i 0"]);
    let out = reset(&fleet, &inv, &["tn03", "--force", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(resets(&fleet, 2).is_empty());
}

#[test]
fn a_reset_whose_gpu_still_fails_afterwards_is_a_failure_in_the_nodes_words() {
    let hello =
        r#"{"fleetop_agent":1,"version":"0.1.0","driver":"565.57.01","cuda":"12070","gpus":1}"#;
    let sample = r#"{"t":1,"gpus":[{"index":0,"uuid":"GPU-r","name":"NVIDIA H100 80GB HBM3","processes":[],"recovery_action":1}]}"#;
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 1)),
            // The driver keeps asking for a GPU reset.
            Behaviour::Script(format!("echo '{hello}'\necho '{sample}'\n")),
            // GPU 0 still requires a reset (NVML_ERROR_RESET_REQUIRED on its queries, the process list's too:
            // only --force resets a GPU whose processes cannot be listed).
            Behaviour::Agent(Spec::node(5, 1).with_line("reset 0")),
            // nvidia-smi -r itself fails.
            Behaviour::Agent(Spec::node(6, 1)),
        ],
        Quirks::default(),
    );
    let inv = inventory(&fleet);
    for n in ["tn02", "tn03", "tn04"] {
        drain(&fleet, n);
    }
    std::fs::write(
        fleet
            .dir
            .path()
            .join(format!("nodes/{}.reset.sh", fleet.nodes[3].addr)),
        "echo 'GPU 00000000:19:00.0: In use by another client.' >&2; exit 255\n",
    )
    .unwrap();

    let out = reset(&fleet, &inv, &["tn03", "--gpu", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("tn03: cannot tell whether a process holds GPU 0"),
        "{}",
        text(&out)
    );
    for (node, words) in [
        ("tn02", "GPU 0: the driver still asks for gpu_reset"),
        ("tn03", "the reset command exited 0 but GPU 0:"),
        ("tn04", "In use by another client"),
    ] {
        let mut args = vec![node, "--gpu", "0", "--format", "json"];
        if node == "tn03" {
            args.extend(["--force", "--yes"]);
        }
        let out = reset(&fleet, &inv, &args);
        assert_eq!(out.status.code(), Some(1), "{node}: {}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["nodes"][0]["ok"], false, "{doc:#}");
        let detail = doc["nodes"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{node}: {detail}");
    }
    for i in 1..=3 {
        assert_eq!(resets(&fleet, i), ["-r -i 0"], "node {i}");
    }
    let records = audit(&fleet);
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records.iter().skip(1).step_by(2).all(|r| r["ok"] == false),
        "{records:?}"
    );
}
