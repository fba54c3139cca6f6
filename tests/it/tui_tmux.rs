//! End to end in a real terminal: tmux runs fleetop, send-keys drives it, capture-pane reads the screen.

use crate::common;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{Behaviour, Fleet, Quirks, Spec};

/// The command line of fleetop following `inventory`.
fn on(inventory: &std::path::Path) -> String {
    format!(
        "{} --inventory {}",
        bin(),
        shlex::try_quote(inventory.to_str().unwrap()).unwrap()
    )
}

fn bin() -> String {
    shlex::try_quote(env!("CARGO_BIN_EXE_fleetop"))
        .unwrap()
        .into_owned()
}

#[test]
fn demo_fleet_navigates_to_a_node_detail() {
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(&format!("{} --demo", bin()), home.path());
    let screen = tmux.wait_for(
        &["1023 up", "GPUs 8182/8200", "384 cabinets"],
        Duration::from_secs(30),
    );
    assert!(screen.contains("c001 "), "{screen}");
    tmux.keys(&["2"]);
    tmux.wait_for(&["NODE▲", "c001n1"], Duration::from_secs(10));
    tmux.keys(&["/", "node=c042n3", "Enter"]);
    tmux.wait_for(&["filter: node=c042n3 (1 nodes)"], Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    let detail = tmux.wait_for(
        &["c042n3 cabinet c042", "tenant globex", "XID 79"],
        Duration::from_secs(10),
    );
    assert!(detail.contains("GPU UTIL"), "{detail}");
    assert!(detail.contains("X79"), "GPU 5's flag column: {detail}");
    // `:drift` groups the nodes that run something else than the fleet.
    tmux.keys(&[":", "drift", "Enter"]);
    tmux.wait_for(
        &[
            "driver  (fleet runs 550.90.07)",
            "550.54.15",
            "c088n1 c088n2",
            "0.0.9",
            "c301n1 c301n2 c302n1",
        ],
        Duration::from_secs(10),
    );
    // A resize to 80×24 re-lays the overview out, paging it.
    tmux.keys(&["1"]);
    let _ = tmux.tmux(&["resize-window", "-t", "0", "-x", "80", "-y", "24"]);
    tmux.wait_for(&["lines 1-19 of 22"], Duration::from_secs(10));
    let _ = tmux.tmux(&["resize-window", "-t", "0", "-x", "200", "-y", "50"]);
    tmux.keys(&["?"]);
    tmux.wait_for(&["show or hide this help"], Duration::from_secs(10));
    // Escape and q in one burst read as Alt-q: wait for the help to close before quitting.
    tmux.keys(&["Escape"]);
    tmux.wait_until("Escape to close the help", Duration::from_secs(10), |s| {
        !s.contains("show or hide this help")
    });
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "q did not quit fleetop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ssh_fleet_shows_an_unreachable_node_as_such() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks::default(),
    );
    let inventory = fleet.dir.path().join("tui.toml");
    std::fs::write(
        &inventory,
        fleet.inventory(&[("tn09".into(), fleet.refusing_addr())]),
    )
    .unwrap();
    let command = on(&inventory);
    let tmux = Tmux::start(&command, fleet.dir.path());
    tmux.wait_for(&["2 up", "1 no data"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let table = tmux.wait_for(&["tn01", "tn02", "tn09"], Duration::from_secs(10));
    let row = table.lines().find(|l| l.starts_with("tn09")).unwrap();
    assert!(row.contains("unreachable") && row.contains("crit"), "{row}");
    assert!(row.contains("Connection refused"), "{row}");
    let up = table.lines().find(|l| l.starts_with("tn01")).unwrap();
    assert!(up.contains(" up ") && up.contains("agent"), "{up}");
    tmux.keys(&["q"]);
}

#[test]
fn demo_drain_goes_through_reason_and_confirm_and_is_audited() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let command = format!(
        "env XDG_STATE_HOME={} {} --demo",
        shlex::try_quote(state.to_str().unwrap()).unwrap(),
        bin()
    );
    let tmux = Tmux::start(&command, home.path());
    tmux.wait_for(&["1023 up"], Duration::from_secs(30));
    tmux.keys(&["2", "D"]);
    tmux.wait_for(&["reason for drain of 1 node(s)"], Duration::from_secs(10));
    tmux.keys(&["GPU 3 uncorrectable ECC", "Enter"]);
    let dialog = tmux.wait_for(
        &[
            "drain 1 node",
            "[ Cancel ]",
            "scontrol update NodeName=c001n1 State=DRAIN",
        ],
        Duration::from_secs(10),
    );
    assert!(dialog.contains("c001n1 hosts acme: 8 GPUs at"), "{dialog}");
    tmux.keys(&["Tab", "Enter"]);
    let table = tmux.wait_for(&["drain: ok"], Duration::from_secs(10));
    let row = table.lines().find(|l| l.starts_with("c001n1")).unwrap();
    assert!(row.contains("drained"), "{row}");
    let audit = std::fs::read_to_string(state.join("fleetop/audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("GPU 3 uncorrectable ECC"));
    tmux.keys(&["q"]);
}

#[test]
fn demo_reset_needs_the_drain_first_then_resets_the_gpus_and_is_audited() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let command = format!(
        "env XDG_STATE_HOME={} {} --demo",
        shlex::try_quote(state.to_str().unwrap()).unwrap(),
        bin()
    );
    let tmux = Tmux::start(&command, home.path());
    tmux.wait_for(&["1023 up"], Duration::from_secs(30));
    // In service: the dialog refuses.
    tmux.keys(&["2", "X"]);
    tmux.wait_for(&["reason for reset of 1 node(s)"], Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &["ssh c001n1 -- nvidia-smi -r", "[ Cancel ]", "not drained"],
        Duration::from_secs(10),
    );
    tmux.keys(&["Escape"]);
    // ESC and a letter read together are Alt+letter to the terminal: let the dialog close first.
    tmux.wait_until("the dialog to close", Duration::from_secs(10), |s| {
        !s.contains("[ Cancel ]")
    });
    tmux.keys(&["D"]);
    tmux.wait_for(&["reason for drain of 1 node(s)"], Duration::from_secs(10));
    tmux.keys(&["XID 79", "Enter"]);
    tmux.wait_for(&["[ Cancel ]"], Duration::from_secs(10));
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait_for(&["drain: ok"], Duration::from_secs(10));
    // Drained: the practice drain ended its processes, so the runner's look lets the reset through.
    tmux.keys(&["X"]);
    tmux.wait_for(&["reason for reset of 1 node(s)"], Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &["ssh c001n1 -- nvidia-smi -r", "[ Cancel ]"],
        Duration::from_secs(10),
    );
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait_for(&["reset: ok"], Duration::from_secs(10));
    let audit = std::fs::read_to_string(state.join("fleetop/audit.jsonl")).unwrap();
    let resets: Vec<&str> = audit.lines().filter(|l| l.contains("\"reset\"")).collect();
    assert_eq!(resets.len(), 2, "intent and outcome: {audit}");
    assert!(
        resets[1].contains("every GPU answering without error afterwards"),
        "{audit}"
    );
    tmux.keys(&["q"]);
}

#[test]
fn read_only_tui_refuses_on_screen() {
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(&format!("{} --demo --read-only", bin()), home.path());
    tmux.wait_for(&["1023 up", "read-only"], Duration::from_secs(30));
    tmux.keys(&["R"]);
    tmux.wait_for(
        &["read-only: reboot refused", "enter or esc acknowledges"],
        Duration::from_secs(10),
    );
    tmux.keys(&["Enter"]);
    tmux.wait_until(
        "the acknowledged failure to clear",
        Duration::from_secs(10),
        |s| !s.contains("read-only: reboot refused"),
    );
    tmux.keys(&["q"]);
}

#[test]
fn ssh_fleet_shows_lost_gpus_and_xids_and_an_acknowledgement_clears_the_xid() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2).with_line("lost 1 0")),
            // GPU 0 is on bus 01 (the fake library's default: index + 1); XID 79 logged before the agent started.
            Behaviour::Agent(Spec::node(3, 2).with_kernel_log(
                "[   12.000000] NVRM: Xid (PCI:0000:01:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
            )),
        ],
        Quirks::default(),
    );
    let inventory = fleet.dir.path().join("tui.toml");
    std::fs::write(&inventory, fleet.inventory(&[])).unwrap();
    let state = fleet.dir.path().join("state");
    let command = format!(
        "env XDG_STATE_HOME={} {}",
        shlex::try_quote(state.to_str().unwrap()).unwrap(),
        on(&inventory)
    );
    let tmux = Tmux::start(&command, fleet.dir.path());
    tmux.wait_for(&["3 up", "2 crit"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let table = tmux.wait_for(&["tn01", "tn02", "tn03"], Duration::from_secs(10));
    let lost = table.lines().find(|l| l.starts_with("tn02")).unwrap();
    assert!(
        lost.contains("crit") && lost.contains("GPU 1: GPU lost"),
        "{lost}"
    );
    let xid = table.lines().find(|l| l.starts_with("tn03")).unwrap();
    assert!(xid.contains("crit") && xid.contains("XID 79"), "{xid}");
    tmux.keys(&["5"]);
    tmux.wait_for(&["tn03: GPU 0 XID 79 ×1"], Duration::from_secs(10));

    tmux.keys(&[":", "node tn03", "Enter"]);
    tmux.wait_for(&["tn03 cabinet"], Duration::from_secs(10));
    tmux.keys(&["a"]);
    tmux.wait_for(
        &["acknowledge the XIDs of 1 node(s)"],
        Duration::from_secs(10),
    );
    tmux.keys(&["known bad GPU, RMA open", "Enter"]);
    tmux.wait_for(
        &["acknowledged: known bad GPU, RMA open"],
        Duration::from_secs(10),
    );
    tmux.keys(&["2"]);
    let table = tmux.wait_for(&["tn03"], Duration::from_secs(10));
    let acked = table.lines().find(|l| l.starts_with("tn03")).unwrap();
    assert!(acked.contains(" ok "), "{acked}");
    let audit = std::fs::read_to_string(state.join("fleetop/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"record\":\"ack\"") && audit.contains("GPU 0 XID 79 ×1"),
        "{audit}"
    );
    tmux.keys(&["q"]);
    // A restarted TUI reads the acknowledgement back from the audit log: the XID stays acknowledged.
    tmux.wait_until("fleetop to quit", Duration::from_secs(10), |_| {
        !tmux.alive()
    });
    let again = Tmux::start(&command, fleet.dir.path());
    again.wait_for(&["3 up"], Duration::from_secs(30));
    again.keys(&["2"]);
    let row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.starts_with("tn03"))
            .unwrap_or("")
            .to_string()
    };
    let table = again.wait_until("tn03 up with its sample", Duration::from_secs(10), |s| {
        // The note is cut to the terminal's width: "[acknowledged …]" may end as "[ackno…".
        row(s).contains(" up ") && row(s).contains("[ackno")
    });
    let kept = row(&table);
    assert!(kept.contains(" ok ") && !kept.contains("crit"), "{kept}");
    again.keys(&["q"]);
}

#[test]
fn a_fleet_without_agents_moves_to_the_agent_after_one_deploy_while_the_tui_runs() {
    let fleet = Fleet::start(vec![Behaviour::smi_h100(); 3], Quirks::default());
    for i in 0..3 {
        fleet.write_spec(i, &Spec::node(i as u32, 8));
    }
    let inventory = fleet.write_inventory_with_agent_dirs();
    // Nodes followed through nvidia-smi are asked every second whether an agent is there now.
    let text = std::fs::read_to_string(&inventory).unwrap().replacen(
        "[defaults]\n",
        "[defaults]\nagent_recheck_ms = 1000\n",
        1,
    );
    std::fs::write(&inventory, text).unwrap();
    let command = on(&inventory);
    let tmux = Tmux::start(&command, fleet.dir.path());
    tmux.wait_for(&["3 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let rows = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| l.starts_with("tn0"))
            .map(str::to_string)
            .collect()
    };
    let before = tmux.wait_for(&["tn01", "tn02", "tn03"], Duration::from_secs(10));
    for row in rows(&before) {
        assert!(row.contains("nvidia-smi"), "{row}");
    }

    let out = fleet.deploy(&inventory, &["tn[01-03]", "--yes"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("3 updated, 0 already current, 0 failed"),
        "{said}"
    );

    // The running TUI picks the agent up on each node's own session, without a restart.
    tmux.wait_until(
        "every node on the agent",
        Duration::from_secs(30),
        |screen| {
            let rows = rows(screen);
            rows.len() == 3
                && rows
                    .iter()
                    .all(|r| r.contains(" agent ") && r.contains(" up "))
        },
    );
    tmux.keys(&["q"]);
}

#[test]
fn fabric_faults_and_an_old_driver_show_while_following() {
    let spec = Spec::node(1, 2)
        .with_line("nvlink 0 18")
        .with_line("nvlink_down 0 3 12")
        .with_line("nvlink 1 18")
        .with_line("nvlink_errors 1 4 0 0 0 0 1");
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(spec),
            Behaviour::Agent(Spec::node(2, 2)),
            Behaviour::Agent(Spec::node(3, 2).with_line("driver 550.54.15")),
            Behaviour::Agent(Spec::node(4, 2)),
        ],
        Quirks::default(),
    );
    let mut ports = Vec::new();
    for i in 0..4 {
        let port = fleet.give_sysfs(i, "procfs-mlx5").join("mlx5_0/ports/1");
        std::fs::write(port.join("rate"), "400 Gb/sec (4X NDR)\n").unwrap();
        std::fs::write(port.join("phys_state"), "5: LinkUp\n").unwrap();
        ports.push(port);
    }
    // tn02's port is down; tn03 runs an older driver and its port trained at HDR.
    std::fs::write(ports[1].join("state"), "1: DOWN\n").unwrap();
    std::fs::write(ports[1].join("phys_state"), "3: Disabled\n").unwrap();
    std::fs::write(ports[2].join("rate"), "200 Gb/sec (4X HDR)\n").unwrap();
    let command = on(&fleet.write_inventory(&[]));
    let tmux = Tmux::start(&command, fleet.dir.path());
    tmux.wait_for(&["4 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let table = tmux.wait_for(&["tn02", "IB mlx5_0 port 1 down"], Duration::from_secs(10));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}: {table}"))
            .to_string()
    };
    assert!(row("tn02").contains("warn"), "{table}");
    assert!(row("tn03").contains("warn"), "{table}");
    tmux.keys(&[":", "drift", "Enter"]);
    tmux.wait_for(
        &[
            "driver  (fleet runs 550.90.07)",
            "550.54.15",
            "IB rate  (fleet runs 400)",
            "200",
        ],
        Duration::from_secs(10),
    );
    tmux.keys(&[":", "node tn03", "Enter"]);
    tmux.wait_for(
        &[
            "drift: driver 550.54.15, fleet runs 550.90.07",
            "IB mlx5_0 port 1 at 200 Gb/s, fleet runs 400 Gb/s",
        ],
        Duration::from_secs(10),
    );
    tmux.keys(&[":", "node tn01", "Enter"]);
    tmux.wait_for(
        &[
            "IB mlx5_0 port 1: 4: ACTIVE, 5: LinkUp · 400 Gb/s",
            "NVLink 18/18 active",
        ],
        Duration::from_secs(10),
    );
    // tn01's port starts taking symbol errors while fleetop follows it.
    for errors in ["5", "9"] {
        std::thread::sleep(Duration::from_millis(600));
        std::fs::write(
            ports[0].join("counters/symbol_error"),
            format!("{errors}\n"),
        )
        .unwrap();
    }
    tmux.wait_for(
        &[
            "IB mlx5_0 port 1: symbol_error rose by 9 in the last 5 min",
            "GPU 0: NVLink 3 down (17 of 18 active)",
            "GPU 1 NVLink 4: replay rose by",
            ", crc_data rose by",
            "NVLink 17/18 active",
        ],
        Duration::from_secs(20),
    );
    tmux.keys(&["q"]);
}

#[test]
fn a_repair_from_the_tui_shows_the_job_it_waits_for_and_brings_the_node_back() {
    let mut fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 2))], Quirks::default());
    let slurm = common::slurm::Slurm::with_nodes(&["tn01"]);
    let dir = fleet.dir.path().to_path_buf();
    let inventory = dir.join("repair.toml");
    std::fs::write(
        &inventory,
        format!(
            "{}[drain]\nbackend = \"slurm\"\n[reboot]\nbackend = \"ssh\"\nrequire_drained = true\ndeadline_s = 60\n\
             [actions]\naudit_log = \"{}/audit.jsonl\"\n",
            fleet.inventory(&[]).replace("gpus = 8", "gpus = 2"),
            dir.display()
        ),
    )
    .unwrap();
    let job = slurm.sleep_job("tn01", "acme", 15);
    let command = format!(
        "env SLURM_CONF={} XDG_STATE_HOME={} {}",
        shlex::try_quote(slurm.conf().to_str().unwrap()).unwrap(),
        shlex::try_quote(dir.to_str().unwrap()).unwrap(),
        on(&inventory)
    );
    let tmux = Tmux::start(&command, &dir);
    tmux.wait_for(&["1 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    // The JOBS column counts the job once squeue answered.
    tmux.wait_until("tn01 to show its job", Duration::from_secs(30), |screen| {
        screen
            .lines()
            .find(|l| l.starts_with("tn01"))
            .is_some_and(|row| row.split_whitespace().any(|w| w == "1"))
    });
    tmux.keys(&["F"]);
    tmux.wait_for(&["reason for repair"], Duration::from_secs(10));
    tmux.keys(&["XID 79 on GPU 1", "Enter"]);
    let dialog = tmux.wait_for(
        &["repair 1 node", "[ Cancel ]", &format!("1 job: {job} ")],
        Duration::from_secs(10),
    );
    for command in [
        "tn01: reboot — no GPU fault that a reset clears",
        "scontrol update NodeName=tn01 State=DRAIN",
        "ssh tn01 -- systemctl reboot",
        "validate on each node: dcgmi diag -r 1 where dcgmi is installed",
        "scontrol update NodeName=tn01 State=RESUME",
    ] {
        assert!(dialog.contains(command), "{command}: {dialog}");
    }
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait_for(&["repair: waiting for jobs"], Duration::from_secs(30));
    // The job ends by itself; then the node reboots: its sshd goes away for three seconds.
    let record = dir.join(format!("records/{}.systemctl", fleet.nodes[0].addr));
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(&record).is_ok_and(|r| r.contains("reboot")) {
        assert!(Instant::now() < deadline, "no reboot: {}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    fleet.stop_sshd();
    std::thread::sleep(Duration::from_secs(3));
    fleet.restart_sshd();
    tmux.wait_for(&["repair: repaired"], Duration::from_secs(60));
    assert!(
        slurm.node("tn01").starts_with("idle|"),
        "{}",
        slurm.node("tn01")
    );
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    for action in [
        "\"drain\"",
        "\"repair-wait-jobs\"",
        "\"reboot\"",
        "\"repair-wait-back\"",
        "\"undrain\"",
    ] {
        assert_eq!(audit.matches(action).count(), 2, "{action}: {audit}");
    }
    tmux.keys(&["q"]);
}

#[test]
fn a_shell_on_the_selected_node_runs_in_the_terminal_and_the_view_comes_back() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2)),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks {
            wrong_host_key: vec!["tn02".into()],
            ..Quirks::default()
        },
    );
    let inventory = fleet.write_inventory(&[]);
    let tmux = Tmux::start(&on(&inventory), fleet.dir.path());
    tmux.wait_for(&["1 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    tmux.wait_for(&["tn01", "tn02"], Duration::from_secs(10));
    // The table is sorted by name: tn01 is selected. `x` hands the terminal to OpenSSH on it.
    tmux.keys(&["x"]);
    tmux.wait_for(&["fleetop: ssh -t", "-- tn01"], Duration::from_secs(10));
    tmux.keys(&["echo shell-on-$((40+2))", "Enter"]);
    tmux.wait_for(&["shell-on-42"], Duration::from_secs(20));
    tmux.keys(&["exit", "Enter"]);
    let back = tmux.wait_until("the view back", Duration::from_secs(10), |s| {
        !s.contains("shell-on-42") && s.contains("tn01") && s.contains("tn02")
    });
    assert!(back.contains("up"), "{back}");
    // tn02's host key is not the one known_hosts holds: OpenSSH refuses, says why, and fleetop reports it.
    tmux.keys(&["j", "x"]);
    tmux.wait_for(
        &["HOST IDENTIFICATION HAS CHANGED", "press Enter to return"],
        Duration::from_secs(10),
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &["shell on tn02: ssh failed (exit 255)"],
        Duration::from_secs(10),
    );
    assert!(tmux.alive());
    tmux.keys(&["Enter", "q"]);
}

#[test]
fn a_node_drained_in_slurm_shows_as_drained_with_who_and_why() {
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2).with_line("lost 1 0")),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks::default(),
    );
    let slurm = common::slurm::Slurm::with_nodes(&["tn01"]);
    let drain = slurm.client(
        "scontrol",
        &[
            "update",
            "nodename=tn01",
            "state=drain",
            "reason=psu swap, ticket 4411",
        ],
    );
    assert!(drain.status.success());
    let dir = fleet.dir.path().to_path_buf();
    let inventory = dir.join("drained.toml");
    std::fs::write(
        &inventory,
        format!(
            "{}[drain]\nbackend = \"slurm\"\n",
            fleet.inventory(&[]).replace("gpus = 8", "gpus = 2")
        ),
    )
    .unwrap();
    let command = format!(
        "env SLURM_CONF={} XDG_STATE_HOME={} {}",
        shlex::try_quote(slurm.conf().to_str().unwrap()).unwrap(),
        shlex::try_quote(dir.to_str().unwrap()).unwrap(),
        on(&inventory)
    );
    let tmux = Tmux::start(&command, &dir);
    tmux.wait_for(&["2 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.starts_with("tn01"))
            .unwrap_or("")
            .to_string()
    };
    let table = tmux.wait_until("tn01 drained", Duration::from_secs(30), |s| {
        row(s).contains("drained by")
    });
    let drained = row(&table);
    assert!(
        drained.contains(" drained ")
            && drained.contains(" crit ")
            && drained.contains(": psu swap, ticket 4411; GPU 1: GPU lost"),
        "{drained}"
    );
    tmux.keys(&[":", "node tn01", "Enter"]);
    let detail = tmux.wait_for(
        &["tn01 cabinet", "operations: drained by "],
        Duration::from_secs(10),
    );
    assert!(
        detail.contains("· drained · crit"),
        "the detail shows fleet state's drain too: {detail}"
    );
    tmux.keys(&["q"]);
}
