//! `fleetop snapshot` against a loopback fleet of real sshd nodes: exact values, and every failure mode.

use crate::common;

use std::time::Duration;

use common::{fixture, node, noheader_row, run_bounded, Behaviour, Fleet, Quirks, Spec};
use fleetop::telemetry::smi_csv::{legacy_fields, modern_fields};
use serde_json::Value;

/// Eight rows as nvidia-smi's loop prints them for an 8-GPU node, from one captured real row.
fn smi_rows(capture: &str, fields: &[String]) -> String {
    common::gpu_rows(&noheader_row(&fixture(capture), fields), 8)
}

fn snapshot(fleet: &Fleet, inventory: &std::path::Path, timeout: &str) -> (i32, Value, String) {
    let out = fleet.snapshot(inventory, "json", timeout);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json, fleet.logs())
}

#[test]
fn forty_nodes_report_exactly_what_they_emitted() {
    let mut behaviours: Vec<Behaviour> = (0..32)
        .map(|i| Behaviour::Agent(Spec::node(i, 8)))
        .collect();
    for _ in 0..4 {
        behaviours.push(Behaviour::Smi {
            rows: smi_rows(
                "nvidia-smi/nvidia-h100-80gb-hbm3.load.csv",
                &modern_fields(),
            ),
            legacy: false,
        });
    }
    for _ in 0..4 {
        behaviours.push(Behaviour::Smi {
            rows: smi_rows("nvidia-smi/nvidia-h200.idle.csv", &legacy_fields()),
            legacy: true,
        });
    }
    let fleet = Fleet::start(behaviours, Quirks::default());
    let inventory = fleet.write_inventory(&[]);
    // A fleet of two models says so; without this the H200 nodes would drift from the H100 majority.
    let mut text = std::fs::read_to_string(&inventory).unwrap();
    text += "[expect]\ngpu_model = [\"NVIDIA H100 80GB HBM3\", \"NVIDIA H200\"]\n";
    std::fs::write(&inventory, text).unwrap();
    let (code, doc, logs) = snapshot(&fleet, &inventory, "20");

    assert_eq!(doc["schema"], "fleetop.snapshot/1");
    assert_eq!(doc["summary"]["nodes"], 40, "{logs}");
    assert_eq!(doc["summary"]["nodes_up"], 40, "{doc:#}\n{logs}");
    assert_eq!(doc["summary"]["gpus_seen"], 320);
    assert_eq!(doc["summary"]["health"], "ok");
    assert_eq!(code, 0);
    // A snapshot asks each node for one sample rather than a stream.
    let args = std::fs::read_to_string(
        fleet
            .dir
            .path()
            .join(format!("records/{}.args", fleet.nodes[0].addr)),
    )
    .unwrap();
    assert_eq!(args, "agent --once --interval 200\n");
    // A node without an agent chooses nvidia-smi itself: one remote command per node, agent or not (every
    // node answered, so each ran at least one).
    assert_eq!(fleet.execs(), fleet.nodes.len(), "{logs}");

    for seed in 0..32u32 {
        let n = node(&doc, &format!("tn{:02}", seed + 1));
        assert_eq!(n["state"], "up");
        assert_eq!(n["source"], "agent");
        assert_eq!(n["error"], Value::Null);
        let gpus = n["gpus"].as_array().unwrap();
        assert_eq!(gpus.len(), 8);
        for (i, g) in gpus.iter().enumerate() {
            let v = u64::from(seed) * 10 + i as u64;
            assert_eq!(g["index"], i as u64);
            assert_eq!(g["uuid"], format!("GPU-{seed:04}-{i:04}"));
            assert_eq!(g["util_pct"], v % 101);
            assert_eq!(g["mem_util_pct"], (v * 3) % 101);
            assert_eq!(g["mem_used_mib"], 1000 + v * 7);
            assert_eq!(g["mem_total_mib"], 81559);
            assert_eq!(g["temp_c"], 30 + v % 40);
            assert_eq!(g["mem_temp_c"], 35 + v % 40);
            assert_eq!(
                g["power_w"].as_f64().unwrap(),
                (100_000 + v * 1250) as f64 / 1000.0
            );
            assert_eq!(g["power_limit_w"].as_f64().unwrap(), 700.0);
            assert_eq!(g["sm_clock_mhz"], 1000 + v);
            assert_eq!(g["xid"], serde_json::json!([]));
            assert_eq!(g["health"], "ok");
        }
    }
    // H100 under gpu-burn, driver 590, read through nvidia-smi's CSV.
    for name in ["tn33", "tn34", "tn35", "tn36"] {
        let n = node(&doc, name);
        assert_eq!(n["source"], "nvidia-smi", "{n:#}");
        let g = &n["gpus"][3];
        assert_eq!(g["index"], 3);
        assert_eq!(g["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(g["util_pct"], 100);
        assert_eq!(g["mem_util_pct"], 11);
        assert_eq!(g["mem_used_mib"], 19818);
        assert_eq!(g["temp_c"], 59);
        assert_eq!(g["mem_temp_c"], 54);
        assert_eq!(g["power_w"].as_f64().unwrap(), 631.95);
        assert_eq!(g["sm_clock_mhz"], 1980);
        assert_eq!(g["throttle"], serde_json::json!([]));
        assert_eq!(g["remapped_rows_pending"], false);
        assert_eq!(g["xid"], Value::Null, "nvidia-smi cannot see XIDs");
    }
    // An older driver that rejects clocks_event_reasons: the legacy query answers, remapped rows are unknown.
    for name in ["tn37", "tn38", "tn39", "tn40"] {
        let n = node(&doc, name);
        assert_eq!(n["source"], "nvidia-smi");
        let g = &n["gpus"][0];
        assert_eq!(g["name"], "NVIDIA H200");
        assert_eq!(g["remapped_rows_pending"], Value::Null);
        assert!(g["temp_c"].as_u64().is_some());
        assert!(g["throttle"].is_array(), "{g:#}");
    }
}

#[test]
fn every_failure_ends_in_its_own_state_within_the_timeout() {
    let garbage = r#"echo '{"fleetop_agent":1,"version":"test","driver":"x","cuda":"y","gpus":1}'
echo 'this is not json {'
head -c 1048576 /dev/zero | tr '\0' 'x'; echo
while :; do echo '{"t":1,"gpus":[{"index":0,"util_pct":42,"temp_c":50,"xid":[]}]}'; sleep 0.2; done
"#;
    let behaviours = vec![
        Behaviour::Agent(Spec::node(1, 8)),
        Behaviour::Agent(Spec::node(2, 8)),
        Behaviour::Agent(Spec::node(3, 8)),
        Behaviour::Agent(Spec::node(4, 8)),
        Behaviour::NoNvml,
        Behaviour::Nothing,
        Behaviour::Script(garbage.into()),
        Behaviour::Agent(Spec::node(8, 7)),
    ];
    let quirks = Quirks {
        refuse_keys: vec!["tn02".into()],
        wrong_host_key: vec!["tn03".into()],
        unknown_host_key: vec!["tn04".into()],
        ..Quirks::default()
    };
    let mut fleet = Fleet::start(behaviours, quirks);
    let refusing = fleet.refusing_addr();
    let silent = fleet.silent_addr();
    let inventory = fleet.inventory(&[("tn90".into(), refusing), ("tn91".into(), silent)]);
    let path = fleet.dir.path().join("failures.toml");
    std::fs::write(&path, fix_gpu_counts(&inventory)).unwrap();

    let (code, doc, logs) = snapshot(&fleet, &path, "8");
    assert_eq!(code, 2, "{doc:#}");
    let expect = |name: &str, state: &str, error_has: &str| {
        let n = node(&doc, name);
        assert_eq!(n["state"], state, "{name}: {n:#}\n{logs}");
        let error = n["error"].as_str().unwrap_or("");
        assert!(
            error.contains(error_has),
            "{name}: error {error:?} lacks {error_has:?}"
        );
    };
    expect("tn01", "up", "");
    expect("tn02", "auth-failed", "refused authentication");
    expect("tn03", "host-key-mismatch", "HOST KEY CHANGED");
    expect("tn04", "host-key-mismatch", "unknown host key SHA256:");
    expect("tn05", "no-gpu-driver", "cannot use NVML");
    expect(
        "tn06",
        "no-gpu-driver",
        "neither the fleetop agent nor nvidia-smi",
    );
    expect("tn07", "up", "2 bad line(s)");
    expect("tn08", "up", "");
    expect("tn90", "unreachable", "Connection refused");
    expect("tn91", "unreachable", "no SSH answer within 3 s");

    assert_eq!(node(&doc, "tn01")["gpus"][2]["util_pct"], 12);
    assert_eq!(
        node(&doc, "tn07")["gpus"][0]["util_pct"],
        42,
        "the valid line after the garbage counts"
    );
    assert_eq!(node(&doc, "tn08")["health"], "crit", "7 of 8 GPUs seen");
    assert_eq!(node(&doc, "tn02")["health"], "crit");
    assert_eq!(doc["summary"]["nodes_up"], 3);
}

/// tn07 runs a one-GPU script and tn08 has seven GPUs while its inventory expects eight.
fn fix_gpu_counts(inventory: &str) -> String {
    inventory
        .split("[[node]]")
        .map(|block| {
            if block.contains("name = \"tn07\"") {
                block.replace("gpus = 8", "gpus = 1")
            } else if block.contains("name = \"tn08\"") {
                block.replace("gpus = 7", "gpus = 8")
            } else {
                block.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("[[node]]")
}

/// Writes a key pair of `kind` into the fleet's directory; `authorized` adds it to authorized_keys.
fn extra_key(fleet: &Fleet, name: &str, kind: &str, authorized: bool) -> std::path::PathBuf {
    let path = fleet.dir.path().join(name);
    let out = run_bounded(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "ssh-keygen -t {kind}");
    if authorized {
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let keys = fleet.dir.path().join("authorized_keys");
        let mut all = std::fs::read_to_string(&keys).unwrap();
        all.push_str(&public);
        std::fs::write(keys, all).unwrap();
    }
    path
}

#[test]
fn every_key_kind_logs_in_and_a_refused_key_falls_through_to_the_next() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 8)),
            Behaviour::Agent(Spec::node(2, 8)),
        ],
        Quirks::default(),
    );
    // ed25519 keys sign in-process; ECDSA and RSA keys are read by libssh2, with or without a .pub file.
    let stranger = extra_key(&fleet, "stranger_ed25519", "ed25519", false);
    let ecdsa = extra_key(&fleet, "ecdsa_key", "ecdsa", true);
    let rsa = extra_key(&fleet, "rsa_key", "rsa", true);
    std::fs::remove_file(rsa.with_extension("pub")).unwrap();
    let client = fleet.dir.path().join("client_key").display().to_string();
    for (keys, up) in [
        (vec![&stranger, &ecdsa], 2),
        (vec![&rsa], 2),
        (vec![&stranger], 0),
    ] {
        let list: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", k.display()))
            .collect();
        let text = fleet.inventory(&[]).replace(
            &format!("identity_files = [\"{client}\"]"),
            &format!("identity_files = [{}]", list.join(", ")),
        );
        assert!(text.contains(&list[0]), "identity_files replaced");
        let path = fleet.dir.path().join("keys.toml");
        std::fs::write(&path, text).unwrap();
        let (_, doc, logs) = snapshot(&fleet, &path, "8");
        assert_eq!(
            doc["summary"]["nodes_up"], up,
            "keys {list:?}: {doc:#}\n{logs}"
        );
        if up == 0 {
            let error = node(&doc, "tn01")["error"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(error.contains("stranger_ed25519"), "{error}");
        }
    }
}

#[test]
fn a_connection_lost_once_is_tried_again_within_the_timeout() {
    let marks = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        marks.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // First login: kill this session's sshd, as a reset under load would. Second: answer like an agent.
    let flaky = format!(
        r#"m="{}/tried"
if [ ! -e "$m" ]; then
  : > "$m"
  p=$PPID
  while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != sshd ]; do p=$(awk '{{print $4}}' /proc/$p/stat); done
  [ "$p" -gt 1 ] && kill -9 "$p"
  sleep 5; exit 1
fi
echo '{{"fleetop_agent":1,"version":"{version}","driver":"x","cuda":"y","gpus":1}}'
echo '{{"t":1,"gpus":[{{"index":0,"util_pct":42,"temp_c":50,"xid":[]}}]}}'
"#,
        marks.path().display(),
        version = env!("CARGO_PKG_VERSION")
    );
    let fleet = Fleet::start(
        vec![Behaviour::Agent(Spec::node(1, 8)), Behaviour::Script(flaky)],
        Quirks::default(),
    );
    let inventory: Vec<String> = fleet
        .inventory(&[])
        .split("[[node]]")
        .map(|block| {
            if block.contains("name = \"tn02\"") {
                block.replace("gpus = 8", "gpus = 1")
            } else {
                block.to_string()
            }
        })
        .collect();
    let path = fleet.dir.path().join("flaky.toml");
    std::fs::write(&path, inventory.join("[[node]]")).unwrap();

    let (code, doc, logs) = snapshot(&fleet, &path, "8");
    assert!(
        marks.path().join("tried").exists(),
        "the first login ran the script"
    );
    let tn02 = node(&doc, "tn02");
    assert_eq!(tn02["state"], "up", "{tn02:#}\n{logs}");
    assert_eq!(tn02["gpus"][0]["util_pct"], 42);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        logs.matches("Accepted publickey").count(),
        3,
        "tn01 once, tn02 twice"
    );
}

#[test]
fn lost_gpus_reset_rows_and_xids_before_the_agent_started_are_crit() {
    let healthy = Spec::node(1, 8);
    let lost = Spec::node(2, 8).with_line("lost 3 0");
    // GPU 5 sits on bus 06 (the fake library's default: index + 1); its XID 79 was logged before the agent ran.
    let xid79 = Spec::node(3, 8).with_kernel_log(
        "6,2001,5000000,-;NVRM: Xid (PCI:0000:06:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    );
    let mut rows = smi_rows(
        "nvidia-smi/nvidia-h100-80gb-hbm3.load.csv",
        &modern_fields(),
    );
    let columns = modern_fields().len();
    let reset_row = format!("2{}\n", ", [GPU requires reset]".repeat(columns - 1));
    rows = rows
        .lines()
        .enumerate()
        .map(|(i, r)| {
            if i == 2 {
                reset_row.clone()
            } else {
                format!("{r}\n")
            }
        })
        .collect();
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(healthy),
            Behaviour::Agent(lost),
            Behaviour::Smi {
                rows,
                legacy: false,
            },
            Behaviour::Agent(xid79),
            Behaviour::Smi {
                rows: "No devices were found\n".into(),
                legacy: false,
            },
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let (code, doc, logs) = snapshot(&fleet, &inventory, "20");
    assert_eq!(code, 2, "{doc:#}\n{logs}");

    let ok = node(&doc, "tn01");
    assert_eq!(ok["health"], "ok", "{ok:#}");
    // Identity: what the agent says about the node and each GPU.
    assert_eq!(ok["driver"], "550.90.07");
    assert_eq!(ok["cuda"], "12.4");
    assert_eq!(ok["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        ok["kernel"].as_str().is_some_and(|k| !k.is_empty()),
        "{ok:#}"
    );
    let g = &ok["gpus"][3];
    assert_eq!(g["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(g["uuid"], "GPU-0001-0003");
    assert_eq!(g["serial"], "16520003");
    assert_eq!(g["vbios"], "96.00.99.00.01");
    assert_eq!(g["pci_bus_id"], "00000000:04:00.0");
    assert_eq!(
        node(&doc, "tn03")["driver"],
        serde_json::Value::Null,
        "nvidia-smi: not known"
    );
    assert_eq!(ok["gpus"][0]["xid"], serde_json::json!([]), "checked, none");

    let n = node(&doc, "tn02");
    assert_eq!(n["health"], "crit");
    let g3 = &n["gpus"][3];
    assert_eq!(g3["health"], "crit");
    assert!(
        g3["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("GPU lost (NVML: "),
        "{g3:#}"
    );
    assert!(g3["reasons"][0]
        .as_str()
        .unwrap()
        .ends_with("reboot the node"));
    assert_eq!(g3["util_pct"], Value::Null);
    assert!(
        n["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "7 of 8 GPUs seen"),
        "{n:#}"
    );

    let n = node(&doc, "tn03");
    assert_eq!(n["source"], "nvidia-smi");
    assert_eq!(n["health"], "crit");
    let g2 = &n["gpus"][2];
    assert_eq!(g2["errors"][0]["kind"], "reset_required");
    assert!(g2["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("GPU requires reset (nvidia-smi: [GPU requires reset])"));

    let n = node(&doc, "tn04");
    assert_eq!(n["health"], "crit");
    let g5 = &n["gpus"][5];
    assert_eq!(g5["xid"], serde_json::json!([79]));
    let reason = g5["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with(
            "XID 79: reboot the node (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS; NVIDIA: RESTART_BM); last "
        ) && reason.ends_with(" ago"),
        "the catalogue's action and the XID's age (its kernel log time): {reason}"
    );
    assert_eq!(g5["xid_events"][0]["text"], "GPU has fallen off the bus.");

    let n = node(&doc, "tn05");
    assert_eq!(n["state"], "no-gpu-driver", "{n:#}");
    assert!(
        n["error"]
            .as_str()
            .unwrap()
            .contains("No devices were found"),
        "{n:#}"
    );

    assert_eq!(doc["summary"]["gpus_seen"], 8 + 7 + 7 + 8);

    // The prom format carries the XID count per GPU.
    let out = fleet.snapshot(&inventory, "prom", "20");
    let prom = String::from_utf8_lossy(&out.stdout);
    assert!(
        prom.contains(
            "fleetop_gpu_xid_errors{node=\"tn04\",gpu=\"5\",uuid=\"GPU-0003-0005\",xid=\"79\"} 1"
        ),
        "{prom}"
    );
}

#[test]
fn remote_commands_end_with_the_session() {
    // The node's agent hangs before its first sample; its child process too.
    let fleet = Fleet::start(
        vec![Behaviour::Script(
            "ip=${SSH_CONNECTION#* * }; ip=${ip%% *}\nsleep 300 &\necho $! > \"$RECORDS/$ip.child\"\necho $$ > \"$RECORDS/$ip.pid\"\nwait\n"
                .replace("$RECORDS", "RECORDS_DIR"),
        )],
        Quirks::default(),
    );
    let records = fleet.dir.path().join("records");
    let script = fleet
        .dir
        .path()
        .join(format!("nodes/{}.sh", fleet.nodes[0].addr));
    let text = std::fs::read_to_string(&script)
        .unwrap()
        .replace("RECORDS_DIR", records.to_str().unwrap());
    std::fs::write(&script, text).unwrap();
    let inventory = fleet.write_inventory(&[]);
    let (code, doc, _) = snapshot(&fleet, &inventory, "3");
    assert_eq!(code, 2);
    assert_eq!(node(&doc, "tn01")["state"], "unreachable");
    let pid_of = |what: &str| -> u32 {
        std::fs::read_to_string(records.join(format!("{}.{what}", fleet.nodes[0].addr)))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (pid, child) = (pid_of("pid"), pid_of("child"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::path::Path::new(&format!("/proc/{child}")).exists()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the remote command ({pid}) or its child ({child}) outlived the snapshot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_hostile_node_cannot_reach_the_terminal_or_poison_totals() {
    // Terminal controls (OSC 52 clipboard write, clear screen, C1 CSI, bidi override) in every string the
    // agent sends, and values no GPU can report.
    let hello = r#"{"fleetop_agent":1,"version":"0.1.0\u001b]0;pwned\u0007","driver":"\u001b]52;c;cHduZWQ=\u0007","cuda":"x","gpus":1}"#;
    let sample = r#"{"t":1,"gpus":[{"index":0,"uuid":"GPU-\u009b2J","name":"H100\u001b[2J\u202eevil","util_pct":4294967295,"power_w":1.7e308,"power_limit_w":-5,"temp_c":60,"mem_total_mib":81559,"mem_used_mib":1,"xid":[],"throttle":["x\u001b[31m"]}]}"#;
    let fleet = Fleet::start(
        vec![
            Behaviour::Script(format!(
                "cat <<'EOF'\n{hello}\n{sample}\nEOF\necho 'bye\u{1b}]52;c;AAAA\u{7}' >&2\n"
            )),
            Behaviour::Agent(Spec::node(4, 1)),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    for format in ["table", "csv", "prom", "json"] {
        let out = fleet.snapshot(&inventory, format, "15");
        let text = String::from_utf8(out.stdout).unwrap();
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(!text.contains(bad), "{format} carries {bad:?} raw:\n{text}");
        }
        if format == "json" {
            let doc: Value = serde_json::from_str(&text).unwrap();
            let n = node(&doc, "tn01");
            assert_eq!(n["gpus"].as_array().map(Vec::len), Some(1), "{n:#}");
            let g = &n["gpus"][0];
            assert_eq!(g["util_pct"], Value::Null);
            assert_eq!(g["power_w"], Value::Null);
            assert_eq!(g["power_limit_w"], Value::Null);
            assert_eq!(
                g["name"], "H100\\x1b[2J\\u{202e}evil",
                "escaped visibly, still readable"
            );
            assert!(g["reasons"][0]
                .as_str()
                .unwrap()
                .starts_with("implausible value ignored"));
            let power = doc["summary"]["power_watts"].as_f64().unwrap();
            assert!(power.is_finite() && power < 10_000.0, "{power}");
        }
    }
}

#[test]
fn an_agent_of_the_previous_release_is_read_and_judged_as_before() {
    // Its hello names no build: the same version is no drift.
    let previous = include_str!("../fixtures/wire/agent-0.1.0-48d9a18.ndjson");
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Script(format!("cat <<'EOF'\n{previous}EOF\n")),
        ],
        Quirks::default(),
    );
    // The script node (tn02) is listed with the default 8 GPUs; the capture has 2.
    let path = fleet.dir.path().join("previous.toml");
    std::fs::write(&path, fleet.inventory(&[]).replace("gpus = 8", "gpus = 2")).unwrap();
    let (code, doc, logs) = snapshot(&fleet, &path, "10");
    let old = node(&doc, "tn02");
    assert_eq!(old["state"], "up", "{old:#}\n{logs}");
    assert_eq!(old["source"], "agent");
    assert_eq!(old["agent_version"], "0.1.0");
    let reasons = old["reasons"].to_string();
    assert!(!reasons.contains("drift"), "{reasons}");
    assert_eq!(old["gpus"][0]["util_pct"], 97);
    assert_eq!(old["gpus"][0]["uuid"], "GPU-aaa");
    assert_eq!(old["gpus"][1]["health"], "crit");
    assert!(reasons.contains("XID 79"), "{reasons}");
    assert_eq!(code, 2, "the previous agent's XID 79 is crit as before");
}

/// Edits one file of a node's copied sysfs tree.
fn set(ib: &std::path::Path, file: &str, value: &str) {
    std::fs::write(ib.join(file), format!("{value}\n")).unwrap();
}

#[test]
fn a_down_port_a_slow_port_and_an_old_driver_warn_with_the_port_named() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2)),
            Behaviour::Agent(Spec::node(3, 2).with_line("driver 550.54.15")),
            Behaviour::Agent(
                Spec::node(4, 2)
                    .with_line("nvlink 0 18")
                    .with_line("nvlink_down 0 7 0")
                    .with_line("nvlink 1 18"),
            ),
        ],
        Quirks::default(),
    );
    for i in 0..4 {
        // procfs' mlx5_0 as an NDR port that is up; then each node's own trouble.
        let ib = fleet.give_sysfs(i, "procfs-mlx5");
        set(&ib, "mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)");
        set(&ib, "mlx5_0/ports/1/phys_state", "5: LinkUp");
        match i {
            1 => {
                set(&ib, "mlx5_0/ports/1/state", "1: DOWN");
                set(&ib, "mlx5_0/ports/1/phys_state", "3: Disabled");
            }
            2 => set(&ib, "mlx5_0/ports/1/rate", "200 Gb/sec (4X HDR)"),
            _ => {}
        }
    }
    let path = fleet.write_inventory(&[]);

    let (code, doc, logs) = snapshot(&fleet, &path, "10");
    assert_eq!(code, 2, "tn04's down NVLink is crit: {doc:#}\n{logs}");
    for name in ["tn01", "tn04"] {
        let n = node(&doc, name);
        assert_eq!(n["ib"][0]["rate_gbps"], 400.0);
        assert_eq!(n["ib"][0]["hca_type"], "MT4118");
    }
    assert_eq!(node(&doc, "tn01")["health"], "ok");
    assert_eq!(
        node(&doc, "tn01")["gpus"][0]["nvlink"],
        Value::Null,
        "no NVLink: null, not zeros"
    );
    // A GPU with an NVLink down fails as in DCGM's health watch: the GPU and its node are crit, naming the link.
    let short = node(&doc, "tn04");
    assert_eq!(short["gpus"][0]["nvlink"]["down"], serde_json::json!([7]));
    assert_eq!(short["gpus"][0]["health"], "crit");
    assert_eq!(short["gpus"][1]["health"], "ok");
    assert_eq!(
        short["reasons"],
        serde_json::json!(["GPU 0: NVLink 7 down (17 of 18 active)"])
    );
    let down = node(&doc, "tn02");
    assert_eq!(down["health"], "warn");
    assert_eq!(
        down["reasons"],
        serde_json::json!(["IB mlx5_0 port 1 down: 1: DOWN, 3: Disabled"])
    );
    let slow = node(&doc, "tn03");
    assert_eq!(
        slow["reasons"],
        serde_json::json!([
            "drift: driver 550.54.15, fleet runs 550.90.07",
            "IB mlx5_0 port 1 at 200 Gb/s, fleet runs 400 Gb/s"
        ])
    );

    // The table's drift section, CSV's InfiniBand columns and Prometheus' port families say the same.
    let table = String::from_utf8_lossy(&fleet.snapshot(&path, "table", "10").stdout).into_owned();
    assert!(
        table.contains("warn  driver    550.54.15 on 1 node (fleet runs 550.90.07): tn03"),
        "{table}"
    );
    assert!(
        table.contains("warn  IB rate   200 on 1 node (fleet runs 400): tn03"),
        "{table}"
    );
    let csv = String::from_utf8_lossy(&fleet.snapshot(&path, "csv", "10").stdout).into_owned();
    // The default drain backend is Slurm, which is asked for jobs too: a last `jobs` column follows the ports.
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",ib_ports,ib_ports_up,ib_slowest_up_gbps,jobs"),
        "{header}"
    );
    let tn02 = csv.lines().find(|l| l.starts_with("tn02,")).unwrap();
    assert!(
        tn02.rsplit_once(',')
            .is_some_and(|(ports, _)| ports.ends_with(",1,0,")),
        "{tn02}"
    );
    let prom = String::from_utf8_lossy(&fleet.snapshot(&path, "prom", "10").stdout).into_owned();
    assert!(
        prom.contains("fleetop_ib_port_up{node=\"tn02\",hca=\"mlx5_0\",port=\"1\"} 0\n"),
        "{prom}"
    );
    assert!(prom.contains("fleetop_ib_port_rate_bytes_per_second{node=\"tn03\",hca=\"mlx5_0\",port=\"1\"} 25000000000\n"));
}

/// A fake agent that says hello and sends one sample of GPUs with these indices and UUIDs.
fn lying_agent(gpus: &[(u32, String)]) -> Behaviour {
    let hello =
        r#"{"fleetop_agent":1,"version":"0.1.0","driver":"550.90.07","cuda":"12.4","gpus":8}"#;
    let gpus: Vec<String> = gpus
        .iter()
        .map(|(index, uuid)| {
            format!(
                r#"{{"index":{index},"uuid":"{uuid}","name":"NVIDIA H100 80GB HBM3","util_pct":5,"temp_c":40,"mem_total_mib":81559,"mem_used_mib":1,"xid":[]}}"#
            )
        })
        .collect();
    let sample = format!(r#"{{"t":1,"gpus":[{}]}}"#, gpus.join(","));
    Behaviour::Script(format!("cat <<'EOF'\n{hello}\n{sample}\nEOF\n"))
}

#[test]
fn gpus_that_lie_about_who_they_are_make_the_node_crit_naming_them() {
    let uuid = |i: u32| format!("GPU-{i:04}");
    let fleet = Fleet::start(
        vec![
            lying_agent(
                &(0..8)
                    .map(|i| (i, "GPU-same".to_string()))
                    .collect::<Vec<_>>(),
            ),
            lying_agent(
                &(0..7)
                    .chain([u32::MAX])
                    .map(|i| (i, uuid(i)))
                    .collect::<Vec<_>>(),
            ),
            lying_agent(&(0..8).map(|i| (i * 9, uuid(i))).collect::<Vec<_>>()),
            Behaviour::Agent(Spec::node(4, 8)),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let (code, doc, logs) = snapshot(&fleet, &inventory, "15");
    let reasons = |name: &str| node(&doc, name)["reasons"].to_string();
    for (name, expected) in [
        (
            "tn01",
            "UUID GPU-same reported by GPUs 0, 1, 2, 3, 4, 5, 6, 7",
        ),
        ("tn02", "GPU index 4294967295 outside 0–7"),
        ("tn03", "GPU index 9, 18, 27, 36, 45, 54, 63 outside 0–7"),
    ] {
        let n = node(&doc, name);
        assert_eq!(n["state"], "up", "{n:#}\n{logs}");
        assert_eq!(n["health"], "crit", "{n:#}");
        assert!(
            reasons(name).contains(expected),
            "{name}: {}",
            reasons(name)
        );
    }
    assert_eq!(node(&doc, "tn04")["health"], "ok", "{}", reasons("tn04"));
    assert_eq!(code, 2);
}

#[test]
fn a_forged_xid_is_ignored_and_junk_codes_cannot_hide_a_real_one() {
    // tn01: a tenant's binary named after an XID line crashed; the kernel's segfault report quotes the name.
    let forged = Spec::node(1, 8).with_kernel_log(
        "6,3001,5000000,-;a.out[4242]: segfault at 0 ip 0000000000401000 sp 00007ffd8c0e9a30 error 4 in \
         NVRM: Xid (PCI:0000:01:00): 79, pid=1, name=x, GPU has fallen off the bus.[400000+1000]",
    );
    // tn02: 64 distinct junk codes on GPU 0 (bus 01), then the real XID 79.
    let mut flooded = Spec::node(2, 8);
    for (seq, code) in (1000..1064).enumerate() {
        flooded = flooded.with_kernel_log(&format!(
            "4,{seq},1000000,-;NVRM: Xid (PCI:0000:01:00): {code}, pid=1, name=x, junk"
        ));
    }
    flooded = flooded.with_kernel_log(
        "4,99,2000000,-;NVRM: Xid (PCI:0000:01:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    );
    let fleet = Fleet::start(
        vec![Behaviour::Agent(forged), Behaviour::Agent(flooded)],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let (code, doc, logs) = snapshot(&fleet, &inventory, "15");
    let quiet = node(&doc, "tn01");
    assert_eq!(quiet["health"], "ok", "{quiet:#}\n{logs}");
    assert_eq!(quiet["gpus"][0]["xid"], serde_json::json!([]));
    let hit = node(&doc, "tn02");
    let gpu0 = &hit["gpus"][0];
    assert_eq!(gpu0["health"], "crit", "{gpu0:#}");
    assert!(
        gpu0["xid"].as_array().unwrap().contains(&79.into()),
        "{gpu0:#}"
    );
    assert!(
        hit["reasons"]
            .to_string()
            .contains("XID tally of GPU 0 truncated"),
        "the node says the tally is full: {}",
        hit["reasons"]
    );
    assert_eq!(code, 2);
}

#[test]
fn a_snapshot_judges_what_rose_since_the_previous_one_and_skips_nvlinks_under_mig() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2).with_line("nvlink 0 18")),
            Behaviour::Agent(
                Spec::node(2, 2)
                    .with_line("mig 0")
                    .with_line("nvlink 0 18")
                    .with_line("nvlink_down 0 3 0"),
            ),
            Behaviour::Agent(Spec::node(3, 2)),
        ],
        Quirks::default(),
    );
    let mut ports = Vec::new();
    for i in 0..3 {
        let ib = fleet.give_sysfs(i, "procfs-mlx5");
        set(&ib, "mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)");
        set(&ib, "mlx5_0/ports/1/phys_state", "5: LinkUp");
        ports.push(ib);
    }
    // tn03's HCA (a storage rail, say) is down by design, and the inventory says so.
    set(&ports[2], "mlx5_0/ports/1/state", "1: DOWN");
    set(&ports[2], "mlx5_0/ports/1/phys_state", "3: Disabled");
    std::fs::rename(ports[2].join("mlx5_0"), ports[2].join("mlx5_9")).unwrap();
    let mut text = fleet.inventory(&[]);
    text.insert_str(0, "[expect]\nib_ignore = [\"mlx5_9\"]\n\n");
    let path = fleet.dir.path().join("ignore.toml");
    std::fs::write(&path, text).unwrap();

    let (code, doc, logs) = snapshot(&fleet, &path, "10");
    assert_eq!(code, 0, "{doc:#}\n{logs}");
    assert_eq!(
        node(&doc, "tn01")["ib"][0].get("rose"),
        None,
        "a first pass knows no rise"
    );
    // Under MIG, NVML reports the links as down; DCGM skips the check and so does fleetop, saying why.
    let mig = node(&doc, "tn02");
    assert_eq!(mig["health"], "ok");
    assert!(
        mig["gpus"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r
                .as_str()
                .unwrap()
                .starts_with("NVLink check skipped: MIG enabled")),
        "{mig:#}"
    );
    assert_eq!(
        node(&doc, "tn03")["health"],
        "ok",
        "ignored port: not judged"
    );

    // Between two passes tn01's port takes symbol errors and drops packets, and a counter saturates.
    set(&ports[0], "mlx5_0/ports/1/counters/symbol_error", "7");
    set(
        &ports[0],
        "mlx5_0/ports/1/counters/port_xmit_discards",
        "30",
    );
    set(
        &ports[0],
        "mlx5_0/ports/1/counters/local_link_integrity_errors",
        "15",
    );
    // …and GPU 0's NVLink 4 takes two replay errors: within a minute, DCGM's rate for a failure.
    fleet.write_spec(
        0,
        &Spec::node(1, 2)
            .with_line("nvlink 0 18")
            .with_line("nvlink_errors 0 4 2 0 0 0 0"),
    );
    let (code, doc, logs) = snapshot(&fleet, &path, "10");
    assert_eq!(code, 2, "{doc:#}\n{logs}");
    let risen = node(&doc, "tn01");
    assert_eq!(
        risen["ib"][0]["rose"]["counters"],
        serde_json::json!({"symbol_error": 7, "port_xmit_discards": 30})
    );
    assert_eq!(
        risen["gpus"][0]["nvlink"]["rose"]["links"],
        serde_json::json!([{"link": 4, "replay": 2}])
    );
    assert_eq!(risen["gpus"][0]["health"], "crit");
    let reasons: Vec<&str> = risen["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("GPU 0: NVLink 4: replay rose by 2 in ")
            && reasons[0].ends_with(" (since the agent's previous run)"),
        "{reasons:?}"
    );
    let reasons = &reasons[1..];
    assert!(reasons[0].starts_with(
        "IB mlx5_0 port 1: local_link_integrity_errors at 15 saturated — rises unknown; clear with `perfquery -R`"
    ));
    assert!(
        reasons[1].starts_with(
            "IB mlx5_0 port 1: symbol_error rose by 7, port_xmit_discards rose by 30 (congestion) in "
        ) && reasons[1].ends_with(" (since the agent's previous run)"),
        "{reasons:?}"
    );
    assert_eq!(node(&doc, "tn03")["health"], "ok");
}

#[test]
fn two_nodes_that_each_lost_a_gpu_do_not_make_the_healthy_one_drift() {
    // Issue 21: three nodes of two GPUs in the inventory, two of them with GPU 1 lost (GPU_IS_LOST from the
    // first sample). The lost GPUs are installed: no node drifts, and each lost GPU is crit on its own.
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2).with_line("lost 1 0")),
            Behaviour::Agent(Spec::node(3, 2).with_line("lost 1 0")),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let (_, doc, logs) = snapshot(&fleet, &inventory, "20");
    for name in ["tn01", "tn02", "tn03"] {
        let n = node(&doc, name);
        let reasons = n["reasons"].to_string();
        assert!(!reasons.contains("drift"), "{name}: {n:#}\n{logs}");
    }
    assert_eq!(node(&doc, "tn01")["health"], "ok");
    assert_eq!(node(&doc, "tn02")["gpus"][1]["health"], "crit");
    assert!(
        doc["drift"]
            .as_array()
            .is_some_and(|d| d.iter().all(|a| a["aspect"] != "GPUs")),
        "{:#}",
        doc["drift"]
    );
}

/// fleetop offers no CBC cipher (libssh2 would, after its others): a node whose sshd takes only CBC ciphers is
/// refused at the handshake, with the reason, and its neighbour is read as usual.
#[test]
fn a_node_offering_only_cbc_ciphers_is_refused_at_the_handshake() {
    let behaviours = vec![
        Behaviour::Agent(Spec::node(1, 8)),
        Behaviour::Agent(Spec::node(2, 8)),
    ];
    let quirks = Quirks {
        cbc_only: vec!["tn02".into()],
        ..Quirks::default()
    };
    let fleet = Fleet::start(behaviours, quirks);
    let inventory = fleet.write_inventory(&[]);
    let (code, doc, logs) = snapshot(&fleet, &inventory, "10");
    assert_eq!(code, 2, "{doc:#}\n{logs}");
    assert_eq!(node(&doc, "tn01")["state"], "up", "{logs}");
    let refused = node(&doc, "tn02");
    assert_eq!(refused["state"], "unreachable", "{refused:#}\n{logs}");
    let error = refused["error"].as_str().unwrap_or("");
    assert!(error.contains("SSH handshake"), "{error:?}\n{logs}");
    // sshd saw the offer and found no cipher in common.
    assert!(logs.contains("no matching cipher"), "{logs}");
}
