//! Following nodes over time through the SSH transport: crashes, restarts, ssh-agent auth and jump hosts.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run_bounded, Behaviour, Fleet, Quirks, Spec};
use fleetop::inventory::Inventory;
use fleetop::transport::ssh::SshTransport;
use fleetop::transport::{FailureKind, Msg, NodeEvent, Transport};
use tokio::sync::mpsc::UnboundedReceiver;

/// Follows `inventory` and hands back the message stream (workers stop when the guard drops).
fn follow(inventory: &str) -> (UnboundedReceiver<Msg>, fleetop::transport::Following) {
    let inv = Arc::new(Inventory::parse("test.toml", inventory).unwrap());
    let transport = SshTransport::new(&inv).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let following = transport.follow(&inv, tx);
    (rx, following)
}

/// Receives until `pred` matches, within `limit`; returns every message seen on the way.
fn until(
    rx: &mut UnboundedReceiver<Msg>,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&Msg) -> bool,
) -> Vec<Msg> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(msg) => {
                let done = pred(&msg);
                seen.push(msg);
                if done {
                    return seen;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("gave up waiting for {what}; saw {seen:#?}");
}

fn is_sample(m: &Msg, node: usize) -> bool {
    m.node == node && m.event.is_sample()
}

#[test]
fn an_agent_dying_mid_stream_is_reported_and_restarted() {
    // The fake NVML aborts the agent on its third sample; every new agent process counts afresh.
    let fleet = Fleet::start(
        vec![Behaviour::Agent(
            Spec::node(5, 2).with_line("abort_after 3"),
        )],
        Quirks::default(),
    );
    let (mut rx, _following) = follow(&fleet.inventory(&[]));
    until(&mut rx, Duration::from_secs(20), "first sample", |m| {
        is_sample(m, 0)
    });
    let seen = until(&mut rx, Duration::from_secs(20), "the crash", |m| {
        matches!(m.event, NodeEvent::Failed { .. })
    });
    match &seen.last().unwrap().event {
        NodeEvent::Failed { kind, detail } => {
            assert_eq!(*kind, FailureKind::StreamEnded);
            assert!(detail.contains("killed by signal ABRT"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let after = until(
        &mut rx,
        Duration::from_secs(20),
        "a sample after reconnecting",
        |m| is_sample(m, 0),
    );
    assert!(
        after.iter().any(|m| m.event == NodeEvent::Connecting),
        "reconnected through a new session"
    );
}

#[test]
fn nodes_come_back_after_sshd_restarts() {
    let mut fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks::default(),
    );
    let (mut rx, _following) = follow(&fleet.inventory(&[]));
    let mut first = [false; 2];
    until(
        &mut rx,
        Duration::from_secs(20),
        "samples from both nodes",
        |m| {
            if m.event.is_sample() {
                first[m.node] = true;
            }
            first == [true, true]
        },
    );
    fleet.stop_sshd();
    let mut lost = [false; 2];
    until(&mut rx, Duration::from_secs(30), "both nodes lost", |m| {
        if matches!(m.event, NodeEvent::Failed { .. }) {
            lost[m.node] = true;
        }
        lost == [true, true]
    });
    fleet.restart_sshd();
    let mut back = [false; 2];
    until(
        &mut rx,
        Duration::from_secs(60),
        "samples after the restart",
        |m| {
            if m.event.is_sample() {
                back[m.node] = true;
            }
            back == [true, true]
        },
    );
}

#[test]
fn ssh_agent_keys_are_used_when_no_key_file_works() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(3, 1))], Quirks::default());
    let dir = fleet.dir.path();
    let socket = dir.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(dir.join("client_key"))
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let inventory = dir.join("agent-only.toml");
    let text = fleet.inventory(&[]).replace(
        &format!("\"{}/client_key\"", dir.display()),
        "\"/nonexistent/key\"",
    );
    std::fs::write(&inventory, text).unwrap();
    let args = [
        "snapshot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--format",
        "json",
        "--timeout",
        "10",
    ];

    let out = run_bounded(
        fleet.fleetop(&args).env("SSH_AUTH_SOCK", &socket),
        Duration::from_secs(30),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["nodes"][0]["state"], "up", "{doc:#}");
    assert_eq!(doc["nodes"][0]["gpus"][0]["uuid"], "GPU-0003-0000");

    let out = run_bounded(&mut fleet.fleetop(&args), Duration::from_secs(30));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["nodes"][0]["state"], "auth-failed",
        "without the agent no key works: {doc:#}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
}

#[test]
fn ssh_config_host_name_user_port_and_proxy_jump_are_honoured() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(7, 1)),
            Behaviour::Agent(Spec::node(8, 2)),
            Behaviour::Agent(Spec::node(9, 2)),
        ],
        Quirks::default(),
    );
    let dir = fleet.dir.path();
    let (jump, target, far) = (&fleet.nodes[0], &fleet.nodes[1], &fleet.nodes[2]);
    let key = dir.join("client_key");
    // gpu-node is one hop behind bastion; gpu-far two, behind bastion and then gpu-node (OpenSSH's `-J a,b`).
    let config = format!(
        "Host bastion\n  HostName {}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n\n\
         Host gpu-node\n  HostName {}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  ProxyJump bastion\n\n\
         Host gpu-far\n  HostName {}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  ProxyJump bastion,gpu-node\n",
        jump.addr,
        target.addr,
        far.addr,
        port = fleet.port,
        user = fleet.user,
        key = key.display()
    );
    std::fs::write(dir.join("ssh_config"), config).unwrap();
    // Nothing about how to reach the nodes is in the inventory: it all comes from the ssh config.
    let inventory = format!(
        "[defaults]\ninterval_ms = 200\nknown_hosts = \"{d}/known_hosts\"\nssh_config = \"{d}/ssh_config\"\n\
         agent_path = \"fleetop\"\ngpus_per_node = 2\n\n[[cabinet]]\nname = \"j1\"\nnodes = \"gpu-node,gpu-far\"\n",
        d = dir.display()
    );
    let path = dir.join("jump.toml");
    std::fs::write(&path, inventory).unwrap();
    let out = run_bounded(
        &mut fleet.fleetop(&[
            "snapshot",
            "--inventory",
            path.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "15",
        ]),
        Duration::from_secs(40),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let near = common::node(&doc, "gpu-node");
    assert_eq!(near["state"], "up", "{doc:#}\n{}", fleet.logs());
    assert_eq!(
        near["gpus"][1]["uuid"], "GPU-0008-0001",
        "the target's own values, not the jump host's"
    );
    let two_hops = common::node(&doc, "gpu-far");
    assert_eq!(two_hops["state"], "up", "{doc:#}\n{}", fleet.logs());
    assert_eq!(two_hops["gpus"][1]["uuid"], "GPU-0009-0001");
    // sshd logs the local address of each connection: the jump host was dialled, and sessions reached
    // both targets through it.
    let logs = fleet.logs();
    for addr in [&jump.addr, &target.addr, &far.addr] {
        assert!(
            logs.contains(&format!("on {addr} port {}", fleet.port)),
            "{addr}: {logs}"
        );
    }
}

/// Plays a node's reboot: once its `systemctl reboot` was recorded, every sshd of the fleet goes away for three
/// seconds, as a rebooting node's does.
fn go_down_when_rebooted(fleet: &mut Fleet, node: usize) {
    let record = fleet
        .dir
        .path()
        .join(format!("records/{}.systemctl", fleet.nodes[node].addr));
    let deadline = Instant::now() + Duration::from_secs(40);
    while !std::fs::read_to_string(&record).is_ok_and(|r| r.contains("reboot")) {
        assert!(Instant::now() < deadline, "no reboot asked");
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.stop_sshd();
    std::thread::sleep(Duration::from_secs(3));
    fleet.restart_sshd();
}

fn reboot_inventory(fleet: &Fleet, deadline_s: u64) -> std::path::PathBuf {
    let dir = fleet.dir.path();
    let inventory = dir.join("reboot.toml");
    let text = format!(
        "{}[reboot]\nbackend = \"ssh\"\nrequire_drained = false\ndeadline_s = {deadline_s}\n[actions]\naudit_log = \"{}/audit.jsonl\"\n",
        fleet.inventory(&[]),
        dir.display()
    );
    std::fs::write(&inventory, text).unwrap();
    inventory
}

#[test]
fn ssh_reboot_runs_systemctl_on_the_node_and_is_ok_once_the_node_went_down() {
    let mut fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(4, 1)),
            Behaviour::Agent(Spec::node(5, 1)),
        ],
        Quirks::default(),
    );
    let inventory = reboot_inventory(&fleet, 60);
    let child = fleet
        .fleetop(&[
            "reboot",
            "tn02",
            "--inventory",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    go_down_when_rebooted(&mut fleet, 1);
    let out = common::wait_bounded(child, Duration::from_secs(60));
    let dir = fleet.dir.path();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("tn02: reboot accepted"),
        "accepted is said before ok: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["nodes"][0]["ok"], true, "{doc:#}");
    assert_eq!(doc["nodes"][0]["command"], "ssh tn02 -- systemctl reboot");
    assert!(
        doc["nodes"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("went down ("),
        "{doc:#}"
    );
    let recorded =
        std::fs::read_to_string(dir.join(format!("records/{}.systemctl", fleet.nodes[1].addr)))
            .unwrap();
    assert!(recorded.starts_with("reboot | 127.0.0.1 "), "{recorded}");
    assert_eq!(
        recorded.lines().count(),
        1,
        "one reboot of the target node only"
    );
    assert!(!dir
        .join(format!("records/{}.systemctl", fleet.nodes[0].addr))
        .exists());
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 2, "intent and outcome: {audit}");
}

#[test]
fn a_reboot_whose_connection_dropped_but_node_stayed_up_is_not_ok() {
    // The fleet's systemctl drops the SSH session, but the node's sshd stays: the node never goes down.
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(4, 1))], Quirks::default());
    let inventory = reboot_inventory(&fleet, 3);
    let out = run_bounded(
        &mut fleet.fleetop(&[
            "reboot",
            "tn01",
            "--inventory",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["nodes"][0]["ok"], false, "{doc:#}");
    let detail = doc["nodes"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("the reboot was accepted but the node was not seen down within 3s"),
        "{detail}"
    );
    let audit = std::fs::read_to_string(fleet.dir.path().join("audit.jsonl")).unwrap();
    let outcome: serde_json::Value = serde_json::from_str(audit.lines().nth(1).unwrap()).unwrap();
    assert_eq!(outcome["ok"], false, "{audit}");
}

#[test]
fn a_tui_reboot_runs_through_the_telemetry_session_and_the_node_comes_back() {
    use fleetop::actions::exec::Executor;
    use fleetop::actions::{audit::AuditLog, execute_step, plan, ActionKind, Request};

    let mut fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(6, 1))], Quirks::default());
    let text = format!(
        "{}[reboot]\nbackend = \"ssh\"\nrequire_drained = false\ndeadline_s = 60\n",
        fleet.inventory(&[])
    );
    let inv = Arc::new(Inventory::parse("test.toml", &text).unwrap());
    let transport = SshTransport::new(&inv).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _following = transport.follow(&inv, tx);
    until(&mut rx, Duration::from_secs(20), "first sample", |m| {
        is_sample(m, 0)
    });

    let exec = Executor::real(&inv)
        .unwrap()
        .with_sessions(transport.node_commands());
    let request = Request {
        kind: ActionKind::Reboot,
        nodes: vec![0],
        reason: None,
        operator: "test".into(),
        force: false,
        read_only: false,
        gpu: None,
        keep_drained: false,
    };
    let steps = plan::plan(&inv, &request).unwrap();
    let mut log = AuditLog::open(&fleet.dir.path().join("audit.jsonl")).unwrap();
    // The runner reports the reboot ok only once it saw the node down: the node goes down meanwhile.
    let result = std::thread::scope(|scope| {
        let node = scope.spawn(|| go_down_when_rebooted(&mut fleet, 0));
        let result = execute_step(&inv, &request, &steps[0], &exec, &mut log).unwrap();
        node.join().unwrap();
        result
    });
    assert!(result.ok, "{result:?}");

    // The reboot ran inside the telemetry session, the first login (same client port), not in a second
    // connection. (The harness's TCP readiness probe connects but never logs in.)
    let logs = fleet.logs();
    let ports: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("Accepted publickey for "))
        .filter_map(|l| l.split_whitespace().nth(7))
        .collect();
    assert!(!ports.is_empty(), "{logs}");
    let recorded = std::fs::read_to_string(
        fleet
            .dir
            .path()
            .join(format!("records/{}.systemctl", fleet.nodes[0].addr)),
    )
    .unwrap();
    assert!(
        recorded.contains(&format!("127.0.0.1 {} ", ports[0])),
        "{recorded} vs port {}",
        ports[0]
    );

    // The node "went down" (its session was dropped) and comes back with a fresh sample.
    until(&mut rx, Duration::from_secs(20), "the drop", |m| {
        m.node == 0 && matches!(m.event, NodeEvent::Failed { .. })
    });
    until(
        &mut rx,
        Duration::from_secs(30),
        "a sample after the reboot",
        |m| is_sample(m, 0),
    );
}

#[test]
fn slurm_commands_run_on_the_controller_over_ssh_with_the_reason_intact() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 1)),
            Behaviour::Agent(Spec::node(2, 1)),
        ],
        Quirks::default(),
    );
    let dir = fleet.dir.path();
    let controller = fleet.nodes[0].addr.clone();
    let text = fleet.inventory(&[]).replacen("[defaults]\n", &format!("[defaults]\nport = {}\n", fleet.port), 1)
        + &format!("[drain]\nbackend = \"slurm\"\ncontroller = \"{controller}\"\n[actions]\naudit_log = \"{}/audit.jsonl\"\n", dir.display());
    let inventory = dir.join("controller.toml");
    std::fs::write(&inventory, text).unwrap();
    let reason = "it's \"bad\"; $(reboot) `id` \\ ünï\nsecond line";
    let out = run_bounded(
        &mut fleet.fleetop(&[
            "drain",
            "tn02",
            &format!("--reason={reason}"),
            "--inventory",
            inventory.to_str().unwrap(),
        ]),
        Duration::from_secs(40),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = std::fs::read(dir.join(format!("records/{controller}.scontrol"))).unwrap();
    let calls: Vec<Vec<String>> = String::from_utf8(recorded)
        .unwrap()
        .split('\x1e')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.split('\0')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(
        calls,
        vec![vec![
            "update".to_string(),
            "NodeName=tn02".into(),
            "State=DRAIN".into(),
            format!("Reason=fleetop: {reason}")
        ]],
        "the remote shell received exactly these arguments"
    );
}

#[test]
fn a_reboot_that_hangs_or_fails_is_never_reported_as_success() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(6, 1)),
            Behaviour::Agent(Spec::node(7, 1)),
        ],
        Quirks::default(),
    );
    let dir = fleet.dir.path();
    // tn01's systemctl hangs; tn02's fails after a moment.
    std::fs::write(
        dir.join(format!("nodes/{}.systemctl.sh", fleet.nodes[0].addr)),
        "sleep 60\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("nodes/{}.systemctl.sh", fleet.nodes[1].addr)),
        "sleep 1; echo 'Failed to reboot: Access denied' >&2; exit 1\n",
    )
    .unwrap();
    let inventory = dir.join("reboot.toml");
    std::fs::write(
        &inventory,
        format!(
            "{}[drain]\ntimeout_s = 3\n[reboot]\nbackend = \"ssh\"\nrequire_drained = false\n[actions]\naudit_log = \"{}/audit.jsonl\"\n",
            fleet.inventory(&[]),
            dir.display()
        ),
    )
    .unwrap();
    for (node, expected) in [
        (
            "tn01",
            "no exit status within 3 s: the command may still be running",
        ),
        ("tn02", "Failed to reboot: Access denied"),
    ] {
        let out = run_bounded(
            &mut fleet.fleetop(&[
                "reboot",
                node,
                "--inventory",
                inventory.to_str().unwrap(),
                "--format",
                "json",
            ]),
            Duration::from_secs(40),
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(doc["nodes"][0]["ok"], false, "{doc:#}");
        assert!(
            doc["nodes"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{doc:#}"
        );
        assert_eq!(out.status.code(), Some(1), "a failed action exits 1");
    }
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let outcomes: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["record"] == "outcome")
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o["ok"] == false), "{audit}");
}

#[test]
fn nodes_that_stall_after_login_are_timed_out_by_whole_samples() {
    let hello = r#"echo '{"fleetop_agent":1,"version":"0.1.0","driver":"x","cuda":"x","gpus":8}'"#;
    let fleet = Fleet::start(
        vec![
            // The hello, then silence.
            Behaviour::Script(format!("{hello}\nsleep 60\n")),
            // Half a sample line, then silence.
            Behaviour::Script(format!(
                "{hello}\nprintf '{{\"t\":1,\"gpus\":['\nsleep 60\n"
            )),
            // Bytes without a newline, forever (bounded here: 60 s at most).
            Behaviour::Script(format!(
                "{hello}\ni=0\nwhile [ $i -lt 1200 ]; do printf 'x'; sleep 0.05; i=$((i+1)); done\n"
            )),
            Behaviour::Agent(Spec::node(8, 2)),
        ],
        Quirks::default(),
    );
    let inventory = fleet.inventory(&[]);
    let inv = Arc::new(Inventory::parse("test.toml", &inventory).unwrap());
    let (mut rx, _following) = follow(&inventory);
    let mut state = fleetop::fleet::FleetState::new(Arc::clone(&inv));
    let mut failed = [false; 3];
    until(
        &mut rx,
        Duration::from_secs(40),
        "every stalled node to fail",
        |m| {
            if let NodeEvent::Failed { kind, detail } = &m.event {
                if m.node < 3 {
                    assert_eq!(*kind, FailureKind::StreamEnded, "{detail}");
                    assert!(detail.contains("no first sample"), "{detail}");
                    // Issue #25 (6): the command the node ran, not fleetop's wrapper around it.
                    assert!(detail.contains(" agent --interval "), "{detail}");
                    assert!(!detail.contains("exec 3<&0"), "{detail}");
                    failed[m.node] = true;
                }
            }
            state.apply(m.clone());
            failed.iter().all(|f| *f)
        },
    );
    // Whatever comes next (a reconnect, another hello), the nodes do not look healthy or "connecting".
    let more = until(&mut rx, Duration::from_secs(20), "a reconnect", |m| {
        m.node == 0 && matches!(m.event, NodeEvent::Streaming { .. })
    });
    for m in more {
        state.apply(m);
    }
    let now = Instant::now();
    for node in 0..3 {
        let view = state.node_view(node, now, fleetop::fleet::view::Pending::Connecting);
        assert_eq!(
            view.state,
            fleetop::fleet::NodeState::Unreachable,
            "node {node}"
        );
        assert_eq!(
            view.verdict.health,
            fleetop::telemetry::health::Health::Crit
        );
    }
    assert_eq!(state.state(3, now), fleetop::fleet::NodeState::Up);
}

/// Peak resident memory of a running process, from /proc (KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_of_huge_valid_samples_keeps_memory_flat() {
    // Six nodes stream valid samples of ~250 KiB (tens of thousands of empty GPU objects each) as fast as
    // SSH carries them, for at most 4,000 lines each.
    let hello = r#"echo '{"fleetop_agent":1,"version":"0.1.0","driver":"x","cuda":"x","gpus":8}'"#;
    let fleet_dir = tempfile::tempdir().unwrap();
    let line_path = fleet_dir.path().join("flood.jsonl");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fleet_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let line = format!("{{\"t\":1,\"gpus\":[{}{{}}]}}\n", "{},".repeat(83_000));
        assert!(line.len() < 256 * 1024);
        std::fs::write(&line_path, line).unwrap();
        std::fs::set_permissions(&line_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let flood = format!(
        "{hello}\ni=0\nwhile [ $i -lt 4000 ]; do cat {}; i=$((i+1)); done\n",
        line_path.display()
    );
    let mut behaviours: Vec<Behaviour> = (0..6).map(|_| Behaviour::Script(flood.clone())).collect();
    behaviours.push(Behaviour::Agent(Spec::node(9, 8)));
    let fleet = Fleet::start(behaviours, Quirks::default());
    let inventory = fleet.write_inventory(&[]);
    let mut child = fleet
        .fleetop(&["--inventory", inventory.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        peak = peak.max(peak_rss_kib(child.id()));
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(
        lines.contains("7 nodes"),
        "the line mode kept reporting: {lines}"
    );
    assert!(peak > 0, "no memory reading");
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB under the flood");
}
