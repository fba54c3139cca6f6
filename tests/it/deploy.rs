//! `fleetop deploy` against a loopback fleet of real sshd nodes: agentless and old nodes are updated with a
//! stripped, compressed agent (a small fraction of the binary on the wire), a current one is skipped, a
//! read-only one fails cleanly, a re-run changes nothing, and the fleet moves from nvidia-smi to the agent; a
//! node without SFTP is deployed over exec, and a corrupted transfer is caught by the SHA-256 check.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{shared, Behaviour, Fleet, Quirks, Spec};
use serde_json::Value;

fn json(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn deploy(fleet: &Fleet, inventory: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["tn[01-04]", "--yes", "--format", "json"];
    args.extend_from_slice(extra);
    let out = fleet.deploy(inventory, &args);
    (out.status.code().unwrap_or(-1), json(&out))
}

fn outcome<'a>(doc: &'a Value, node: &str) -> &'a Value {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("no {node} in {doc:#}"))
}

/// Each node's name, source, agent version and reasons.
fn snapshot_sources(fleet: &Fleet, inventory: &Path) -> Vec<(String, Value, Value, String)> {
    let doc = json(&fleet.snapshot(inventory, "json", "20"));

    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["source"].clone(),
                n["agent_version"].clone(),
                n["reasons"].to_string(),
            )
        })
        .collect()
}

/// A directory made read-only: a read-only bind mount of itself where this runs as root (a read-only
/// file system, as on a node booted from a read-only image), else a mode that forbids writing.
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        let root = unsafe { libc::geteuid() } == 0;
        let mounted = root
            && Command::new("mount")
                .args(["--bind"])
                .arg(dir)
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
            && Command::new("mount")
                .args(["-o", "remount,ro,bind"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        }
        ReadOnly(dir.to_path_buf(), mounted)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("umount").arg(&self.0).status();
        }
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o777));
    }
}

/// An older agent: its hello names version 0.0.9 and no build (as agents before builds were named did).
fn old_agent(fleet: &Fleet, i: usize) -> String {
    let out = Command::new(&shared().fleetop)
        .args(["agent", "--once", "--interval", "200"])
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
        .env(
            "FAKE_NVML_SPEC",
            fleet
                .dir
                .path()
                .join("nodes")
                .join(format!("{}.spec", fleet.nodes[i].addr)),
        )
        .env("FLEETOP_KERNEL_LOG", "/dev/null")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("{\"fleetop_agent\""), "{said}");
    let hello_end = said.find('\n').unwrap();
    // Edited as text: the hello's first key must stay first.
    let hello = &said[..hello_end];
    let version = format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(hello.contains(&version), "{hello}");
    let build_at = hello.find(",\"build\":").unwrap();
    let old = format!("{}}}", &hello[..build_at]).replace(&version, "\"version\":\"0.0.9\"");
    let captured = fleet.agent_dir(i).join("old-agent.ndjson");
    fs::write(&captured, format!("{old}{}", &said[hello_end..])).unwrap();
    format!(
        "#!/bin/sh\ncase \"$1\" in --version) echo 'fleetop 0.0.9' ;; *) cat '{}' ;; esac\n",
        captured.display()
    )
}

fn audit_records(fleet: &Fleet) -> Vec<Value> {
    fs::read_to_string(fleet.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn deploy_updates_old_and_agentless_nodes_skips_current_ones_and_fails_read_only_ones_cleanly() {
    let fleet = Fleet::start(
        vec![
            Behaviour::smi_h100(),
            Behaviour::Agent(Spec::node(2, 8)),
            Behaviour::Agent(Spec::node(3, 8)),
            Behaviour::Agent(Spec::node(4, 8)),
        ],
        Quirks::default(),
    );
    fleet.write_spec(0, &Spec::node(1, 8));
    let inventory = fleet.write_inventory_with_agent_dirs();
    // tn01 has no agent; tn02 and tn04 run an old one; tn03 already runs this build.
    let old = old_agent(&fleet, 1);
    for i in [1, 3] {
        fs::write(fleet.agent_path(i), &old).unwrap();
        fs::set_permissions(fleet.agent_path(i), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::copy(&shared().fleetop, fleet.agent_path(2)).unwrap();
    let _read_only = ReadOnly::make(&fleet.agent_dir(3));

    let before = snapshot_sources(&fleet, &inventory);
    assert_eq!(before[0].1, "nvidia-smi", "{before:?}");
    assert_eq!(before[1].2, "0.0.9", "{before:?}");
    // The old agent is version skew: a warn with both versions, until it is updated.
    assert!(
        before[1].3.contains("drift: agent 0.0.9, jump host "),
        "{before:?}"
    );
    assert!(!before[2].3.contains("drift"), "{before:?}");

    // Read-only refuses before anything is looked at.
    let out = fleet.deploy(&inventory, &["tn[01-04]", "--yes", "--read-only"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");
    assert_eq!(out.status.code(), Some(2));

    // A dry run says what would change and changes nothing.
    let (code, doc) = deploy(&fleet, &inventory, &["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(outcome(&doc, "tn01")["outcome"], "would-update");
    assert_eq!(outcome(&doc, "tn02")["outcome"], "would-update");
    assert_eq!(outcome(&doc, "tn02")["from"], "fleetop 0.0.9");
    assert_eq!(outcome(&doc, "tn03")["outcome"], "current");
    assert!(!fleet.agent_path(0).exists());
    assert_eq!(fs::read_to_string(fleet.agent_path(1)).unwrap(), old);
    assert!(
        audit_records(&fleet).is_empty(),
        "a dry run writes no audit records"
    );

    let (code, doc) = deploy(&fleet, &inventory, &["--reason", "agent rollout"]);
    assert_eq!(code, 1, "one node failed: {doc:#}");
    for (i, node) in ["tn01", "tn02"].iter().enumerate() {
        let o = outcome(&doc, node);
        assert_eq!(o["outcome"], "updated", "{o:#}");
        let to = o["to"].as_str().unwrap();
        assert!(
            to.starts_with(&format!("fleetop {}", env!("CARGO_PKG_VERSION"))),
            "{to}"
        );
        assert_eq!(o["upload"]["via"], "sftp", "{o:#}");
        assert_installed_small(&doc, o, &fleet.agent_path(i));
    }
    assert_eq!(
        outcome(&doc, "tn01")["from"],
        Value::Null,
        "tn01 had no agent"
    );
    assert_eq!(outcome(&doc, "tn02")["from"], "fleetop 0.0.9");
    assert_eq!(outcome(&doc, "tn03")["outcome"], "current");
    let failed = outcome(&doc, "tn04");
    assert_eq!(failed["outcome"], "failed");
    let why = failed["detail"].as_str().unwrap();
    assert!(
        why.contains("cannot create") && why.contains(".fleetop-deploy-"),
        "{why}"
    );
    // The read-only node keeps its old agent, whole, and no temporary file.
    assert_eq!(fs::read_to_string(fleet.agent_path(3)).unwrap(), old);
    let leftovers: Vec<_> = fs::read_dir(fleet.agent_dir(3))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("fleetop-deploy"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for i in [0, 1] {
        let names: Vec<_> = fs::read_dir(fleet.agent_dir(i))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("fleetop-deploy")),
            "{names:?}"
        );
    }

    // Every change is bracketed by an intent and an outcome; the current node got none.
    let records = audit_records(&fleet);
    let of = |node: &str, kind: &str| {
        records
            .iter()
            .filter(|r| r["node"] == node && r["record"] == kind && r["action"] == "deploy")
            .count()
    };
    for node in ["tn01", "tn02", "tn04"] {
        assert_eq!(
            (of(node, "intent"), of(node, "outcome")),
            (1, 1),
            "{node}: {records:#?}"
        );
    }
    assert_eq!(of("tn03", "intent"), 0);
    let tn04 = records
        .iter()
        .find(|r| r["node"] == "tn04" && r["record"] == "outcome")
        .unwrap();
    assert_eq!(tn04["ok"], false);
    assert!(records.iter().any(|r| r["reason"] == "agent rollout"));

    // A re-run is a no-op for every node that took the update.
    let (code, again) = deploy(&fleet, &inventory, &[]);
    assert_eq!(code, 1, "tn04 is still read-only");
    for node in ["tn01", "tn02", "tn03"] {
        assert_eq!(outcome(&again, node)["outcome"], "current", "{again:#}");
    }
    assert_eq!(
        audit_records(&fleet).len(),
        records.len() + 2,
        "only tn04 tried again"
    );

    // The fleet now runs this build where it could be installed.
    let after = snapshot_sources(&fleet, &inventory);
    for (name, source, version, reasons) in &after[..3] {
        assert_eq!(source, "agent", "{name}: {after:?}");
        assert_eq!(version, env!("CARGO_PKG_VERSION"), "{name}");
        assert!(!reasons.contains("drift"), "{name}: {reasons}");
    }
    assert_eq!(after[3].2, "0.0.9");
    assert!(after[3].3.contains("drift: agent 0.0.9"), "{after:?}");
}

fn fleetop_bin() -> &'static Path {
    common::fleetop_bin()
}

/// Bytes on the wire for one node: a stripped, compressed copy of the (debug) test binary, well under 10 MB.
const WIRE_BUDGET: u64 = 10 * 1000 * 1000;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The node's agent at `installed` is the stripped build the deploy named (its SHA-256), smaller than this
/// binary, and it runs; what went over the wire for it was a small fraction of this binary.
fn assert_installed_small(doc: &Value, node: &Value, installed: &Path) {
    let ours = fs::metadata(fleetop_bin()).unwrap().len();
    let sent = node["upload"]["bytes"].as_u64().unwrap();
    assert!(
        sent > 0 && sent <= WIRE_BUDGET,
        "{sent} bytes sent: {node:#}"
    );
    assert!(
        sent < ours / 10,
        "{sent} bytes sent for a {ours}-byte binary"
    );
    assert_eq!(doc["bytes"]["compressed"], sent, "{doc:#}");
    assert_eq!(doc["bytes"]["given"], ours, "{doc:#}");
    let landed = fs::read(installed).unwrap();
    assert_eq!(sha256_hex(&landed), doc["sha256"].as_str().unwrap());
    assert!(landed.len() as u64 == doc["bytes"]["installed"].as_u64().unwrap());
    assert!((landed.len() as u64) < ours / 2, "debug sections stripped");
    let version = Command::new(installed).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(
        String::from_utf8_lossy(&version.stdout)
            .starts_with(&format!("fleetop {}", env!("CARGO_PKG_VERSION"))),
        "{version:?}"
    );
}

/// The names in a node's agent directory: nothing but what is installed may stay there.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_node_without_sftp_is_deployed_over_exec_and_a_rerun_skips_it() {
    let fleet = Fleet::start(
        vec![Behaviour::Agent(Spec::node(1, 8))],
        Quirks {
            no_sftp: vec!["tn01".into()],
            ..Quirks::default()
        },
    );
    let inventory = fleet.write_inventory_with_agent_dirs();
    let out = fleet.deploy(&inventory, &["tn01", "--format", "json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    let o = outcome(&doc, "tn01");
    assert_eq!(o["outcome"], "updated", "{o:#}");
    assert_eq!(o["upload"]["via"], "exec", "{o:#}");
    assert_installed_small(&doc, o, &fleet.agent_path(0));
    assert_eq!(
        names_in(&fleet.agent_dir(0)),
        ["fleetop"],
        "nothing left behind"
    );
    assert!(
        fleet.logs().contains("subsystem not found"),
        "the node's sshd refused SFTP: {}",
        fleet.logs()
    );

    let out = fleet.deploy(&inventory, &["tn01", "--format", "json"]);
    let again = json(&out);
    assert_eq!(outcome(&again, "tn01")["outcome"], "current", "{again:#}");
    assert_eq!(outcome(&again, "tn01")["upload"], Value::Null);
}

#[test]
fn a_corrupted_transfer_fails_the_sha256_check_and_leaves_the_old_agent() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 8)),
            Behaviour::Agent(Spec::node(2, 8)),
        ],
        Quirks {
            corrupting_gzip: vec!["tn01".into(), "tn02".into()],
            no_sftp: vec!["tn02".into()],
            ..Quirks::default()
        },
    );
    let inventory = fleet.write_inventory_with_agent_dirs();
    let old = "#!/bin/sh\necho 'fleetop 0.0.9'\n";
    for i in 0..2 {
        fs::write(fleet.agent_path(i), old).unwrap();
        fs::set_permissions(fleet.agent_path(i), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = fleet.deploy(&inventory, &["tn[01-02]", "--yes", "--format", "json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    for (i, node) in ["tn01", "tn02"].iter().enumerate() {
        let o = outcome(&doc, node);
        assert_eq!(o["outcome"], "failed", "{o:#}");
        let why = o["detail"].as_str().unwrap();
        assert!(
            why.contains("checksum mismatch after upload"),
            "{node}: {why}"
        );
        assert_eq!(fs::read_to_string(fleet.agent_path(i)).unwrap(), old);
        assert_eq!(
            names_in(&fleet.agent_dir(i)),
            ["fleetop"],
            "{node}: the corrupted upload is removed"
        );
    }
    let records = audit_records(&fleet);
    assert_eq!(
        records.iter().filter(|r| r["ok"] == false).count(),
        2,
        "{records:#?}"
    );
}

/// Stops the agents the fleet's stand-in `systemctl restart` started (`records/*.pid`) when the test ends.
struct Services<'a>(&'a Fleet);

impl Drop for Services<'_> {
    fn drop(&mut self) {
        let Ok(records) = fs::read_dir(self.0.dir.path().join("records")) else {
            return;
        };
        for entry in records.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".pid") {
                if let Ok(pid) = fs::read_to_string(entry.path()) {
                    let _ = Command::new("kill")
                        .arg(pid.trim())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// The fleet's unit directory, where its stand-in `systemctl` finds the units it starts.
fn unit_dir(fleet: &Fleet) -> PathBuf {
    let units = fleet.dir.path().join("units");
    fs::create_dir_all(&units).unwrap();
    fs::set_permissions(&units, fs::Permissions::from_mode(0o777)).unwrap();
    units
}

/// The HTTP status `GET /metrics` gets from `addr`, asked from here.
fn metrics_status(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    tcp.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    tcp.take(64 * 1024).read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().map(str::to_string)
}

#[test]
fn systemd_installs_enables_and_restarts_the_unit_and_a_rerun_leaves_it() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 8))], Quirks::default());
    let _services = Services(&fleet);
    let inventory = fleet.write_inventory_with_agent_dirs();
    let units = unit_dir(&fleet);
    let first = format!("127.0.0.1:{}", common::free_port());
    let second = format!("127.0.0.1:{}", common::free_port());
    let systemd = |listen: &str, dir: &Path| -> (i32, Value) {
        let out = fleet.deploy(
            &inventory,
            &[
                "tn01",
                "--systemd",
                "--listen",
                listen,
                "--unit-dir",
                dir.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        (out.status.code().unwrap_or(-1), json(&out))
    };
    let calls = || {
        fs::read_to_string(
            fleet
                .dir
                .path()
                .join(format!("records/{}.systemctl", fleet.nodes[0].addr)),
        )
        .unwrap_or_default()
    };
    let unit = units.join("fleetop-agent.service");

    let (code, doc) = systemd(&first, &units);
    assert_eq!(code, 0, "{doc:#}");
    let o = outcome(&doc, "tn01");
    assert_eq!(o["outcome"], "updated");
    assert_eq!(
        o["detail"],
        format!("agent installed; fleetop-agent.service enabled and restarted; its exporter answers on {first}")
    );
    let text = fs::read_to_string(&unit).unwrap();
    let exec = format!(
        "ExecStart={} agent --listen {first}\n",
        fleet.agent_path(0).display()
    );
    assert!(text.contains(&exec), "{text}");
    assert!(text.contains("WantedBy=multi-user.target"), "{text}");
    let recorded = calls();
    let verbs: Vec<&str> = recorded
        .lines()
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    assert_eq!(
        verbs,
        [
            "daemon-reload",
            "enable fleetop-agent.service",
            "restart fleetop-agent.service"
        ]
    );

    // Nothing changed: nothing is touched, systemd included.
    let (code, doc) = systemd(&first, &units);
    assert_eq!(
        (code, &outcome(&doc, "tn01")["outcome"]),
        (0, &Value::from("current"))
    );
    assert_eq!(calls().lines().count(), 3);

    // Another address changes the unit only: the agent is not uploaded again.
    let (code, doc) = systemd(&second, &units);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        outcome(&doc, "tn01")["detail"],
        format!("fleetop-agent.service enabled and restarted; its exporter answers on {second}")
    );
    assert!(fs::read_to_string(&unit)
        .unwrap()
        .contains(&format!("--listen {second}")));
    assert_eq!(calls().lines().count(), 6);

    // A unit directory that does not exist fails the node and says what was done before.
    let (code, doc) = systemd(&first, &fleet.dir.path().join("no-such-dir"));
    assert_eq!(code, 1);
    let o = outcome(&doc, "tn01");
    assert_eq!(o["outcome"], "failed");
    let why = o["detail"].as_str().unwrap();
    assert!(why.starts_with("the systemd unit: exit 3: "), "{why}");
}

#[test]
fn a_binary_the_node_cannot_run_is_refused_or_rolled_back_never_half_installed() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 8))], Quirks::default());
    let inventory = fleet.write_inventory_with_agent_dirs();
    let old = "#!/bin/sh\necho 'fleetop 0.0.9'\n";
    fs::write(fleet.agent_path(0), old).unwrap();
    fs::set_permissions(fleet.agent_path(0), fs::Permissions::from_mode(0o755)).unwrap();
    let ours = fs::read(fleetop_bin()).unwrap();
    let deploy_binary = |bytes: &[u8]| -> Value {
        let path = fleet.dir.path().join("candidate");
        fs::write(&path, bytes).unwrap();
        let out = fleet.deploy(
            &inventory,
            &[
                "tn01",
                "--binary",
                path.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        outcome(&json(&out), "tn01").clone()
    };
    let untouched = || {
        assert_eq!(fs::read_to_string(fleet.agent_path(0)).unwrap(), old);
        let names: Vec<String> = fs::read_dir(fleet.agent_dir(0))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["fleetop"], "nothing left behind");
    };

    // Built for another architecture: refused before anything is uploaded.
    let mut arm = ours[..64].to_vec();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let refused = deploy_binary(&arm);
    assert_eq!(refused["outcome"], "failed");
    let why = refused["detail"].as_str().unwrap();
    assert!(why.contains("the binary is built for aarch64"), "{why}");
    untouched();

    // An x86-64 header over garbage: uploaded, fails to run there, removed; the old agent stays.
    let mut broken = ours[..64].to_vec();
    broken.extend(std::iter::repeat_n(0xAB, 4096));
    let rolled_back = deploy_binary(&broken);
    assert_eq!(rolled_back["outcome"], "failed");
    let why = rolled_back["detail"].as_str().unwrap();
    assert!(
        why.contains("the binary does not run on this node"),
        "{why}"
    );
    untouched();
}

#[test]
fn a_unit_runs_the_agent_at_a_path_with_a_space_and_one_that_does_not_start_is_a_failure() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 8))], Quirks::default());
    let _services = Services(&fleet);
    let units = unit_dir(&fleet);
    let spaced = fleet.agent_dir(0).join("my agent");
    fs::create_dir_all(&spaced).unwrap();
    fs::set_permissions(&spaced, fs::Permissions::from_mode(0o777)).unwrap();
    let agent = spaced.join("fleetop");
    let inventory = fleet.write_inventory_with_agent_dirs();
    let text = fs::read_to_string(&inventory).unwrap().replace(
        &format!("agent_path = \"{}\"", fleet.agent_path(0).display()),
        &format!("agent_path = \"{}\"", agent.display()),
    );
    assert!(text.contains("my agent"));
    fs::write(&inventory, text).unwrap();
    let systemd = |listen: &str| -> (i32, Value) {
        let out = fleet.deploy(
            &inventory,
            &[
                "tn01",
                "--systemd",
                "--listen",
                listen,
                "--unit-dir",
                units.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        (out.status.code().unwrap_or(-1), json(&out))
    };

    // Quoted as systemd reads it: the unit runs the agent, not a program called ".../my".
    let listen = format!("127.0.0.1:{}", common::free_port());
    let (code, doc) = systemd(&listen);
    assert_eq!(code, 0, "{doc:#}");
    let detail = outcome(&doc, "tn01")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.ends_with(&format!("its exporter answers on {listen}")),
        "{detail}"
    );
    let unit = fs::read_to_string(units.join("fleetop-agent.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{}\" agent --listen {listen}\n",
            agent.display()
        )),
        "{unit}"
    );
    let status = metrics_status(&listen).unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.") && status.ends_with(" 200 OK"),
        "the agent the unit names serves metrics: {status}"
    );

    // An agent that cannot listen (port 1 is privileged; the node's user is not root) exits at once:
    // restarted, but not deployed.
    let (code, doc) = systemd("127.0.0.1:1");
    assert_eq!(code, 1, "{doc:#}");
    let o = outcome(&doc, "tn01");
    assert_eq!(o["outcome"], "failed");
    let why = o["detail"].as_str().unwrap();
    assert!(
        why.contains(
            "fleetop-agent.service was restarted but its exporter did not answer on 127.0.0.1:1"
        ) && why.contains("systemctl is-active: failed"),
        "{why}"
    );
    let last = audit_records(&fleet).pop().unwrap();
    assert_eq!(
        (&last["record"], &last["ok"]),
        (&Value::from("outcome"), &Value::from(false))
    );
}

#[test]
fn an_agent_path_naming_a_directory_is_refused_every_time() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 8))], Quirks::default());
    let inventory = fleet.write_inventory_with_agent_dirs();
    let dir = fleet.agent_dir(0);
    let text = fs::read_to_string(&inventory).unwrap().replace(
        &format!("agent_path = \"{}\"", fleet.agent_path(0).display()),
        &format!("agent_path = \"{}\"", dir.display()),
    );
    fs::write(&inventory, text).unwrap();
    for _ in 0..2 {
        let out = fleet.deploy(&inventory, &["tn01", "--format", "json"]);
        assert_eq!(out.status.code(), Some(1));
        let doc = json(&out);
        let o = outcome(&doc, "tn01");
        assert_eq!(o["outcome"], "failed", "{doc:#}");
        let why = o["detail"].as_str().unwrap();
        assert!(why.contains("is a directory on the node"), "{why}");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing moved into it"
        );
    }
}

#[test]
fn a_stalled_upload_times_out_cleans_up_and_is_audited() {
    // tn01 stalls over SFTP; tn02 has no SFTP and stalls over exec.
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 8)),
            Behaviour::Agent(Spec::node(2, 8)),
        ],
        Quirks {
            stalled_sftp: vec!["tn01".into(), "tn02".into()],
            no_sftp: vec!["tn02".into()],
            ..Quirks::default()
        },
    );
    let inventory = fleet.write_inventory_with_agent_dirs();
    let out = fleet.deploy(&inventory, &["tn[01-02]", "--yes", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    for (i, (node, reader)) in [("tn01", "SFTP server"), ("tn02", "decompressor")]
        .into_iter()
        .enumerate()
    {
        let o = outcome(&doc, node);
        assert_eq!(o["outcome"], "failed", "{doc:#}");
        let why = o["detail"].as_str().unwrap();
        assert!(
            why.contains("no progress for")
                && why.contains(&format!("the node's {reader} stalled")),
            "{why}\n{}",
            fs::read_to_string(fleet.dir.path().join("records/stalling-sftp.log"))
                .unwrap_or_default()
        );
        assert!(!why.contains("may remain"), "{why}");
        let left = names_in(&fleet.agent_dir(i));
        assert!(
            left.is_empty(),
            "{node}: the partial upload is removed: {left:?}"
        );
    }
    let records = audit_records(&fleet);
    for node in ["tn01", "tn02"] {
        let kinds: Vec<(&str, Option<bool>)> = records
            .iter()
            .filter(|r| r["node"] == node)
            .map(|r| (r["record"].as_str().unwrap(), r["ok"].as_bool()))
            .collect();
        assert_eq!(
            kinds,
            [("intent", None), ("outcome", Some(false))],
            "{node}"
        );
    }
}
