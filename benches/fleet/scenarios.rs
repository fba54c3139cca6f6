//! The scenarios: cold snapshots by fleetop, pdsh and clush on fleets of real sshd nodes, live following
//! against polling, and the agent's own cost.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{shared, Fleet, Spec};
use crate::measure::*;

/// ssh options every OpenSSH-based peer gets: the fleet's key, known_hosts, port, and curve25519.
pub(crate) fn ssh_options(fleet: &Fleet, kex: bool) -> Vec<String> {
    let d = fleet.dir.path().display();
    let mut o = vec![
        "-o BatchMode=yes".to_string(),
        format!("-o UserKnownHostsFile={d}/known_hosts"),
        "-o StrictHostKeyChecking=yes".into(),
        format!("-i {d}/client_key"),
        format!("-p {}", fleet.port),
    ];
    if kex {
        o.push("-o KexAlgorithms=curve25519-sha256".into());
    }
    o
}

pub(crate) const REMOTE: &str = "fleetop agent --once";

pub(crate) fn pdsh(fleet: &Fleet, fanout: usize, kex: bool) -> Measured {
    let hosts: Vec<&str> = fleet.nodes.iter().map(|n| n.addr.as_str()).collect();
    let args = format!("{} -l%u %h", ssh_options(fleet, kex).join(" "));
    measure(
        Command::new("pdsh")
            .args([
                "-R",
                "ssh",
                "-f",
                &fanout.to_string(),
                "-l",
                &fleet.user,
                "-w",
                &hosts.join(","),
                REMOTE,
            ])
            .env("PDSH_SSH_ARGS", args)
            .env("HOME", fleet.dir.path()),
    )
}

pub(crate) fn clush(fleet: &Fleet, fanout: usize) -> Measured {
    let hosts: Vec<&str> = fleet.nodes.iter().map(|n| n.addr.as_str()).collect();
    measure(
        Command::new("clush")
            .args([
                "-f",
                &fanout.to_string(),
                "-l",
                &fleet.user,
                "-o",
                &ssh_options(fleet, true).join(" "),
            ])
            .args(["-w", &hosts.join(","), REMOTE])
            .env("HOME", fleet.dir.path()),
    )
}

/// fleetop's arguments for one cold JSON snapshot of `inventory`.
pub(crate) fn snapshot_args(inventory: &std::path::Path) -> [&str; 7] {
    [
        "snapshot",
        "--format",
        "json",
        "--timeout",
        "120",
        "--inventory",
        inventory.to_str().unwrap_or(""),
    ]
}

pub(crate) fn fleetop_snapshot(fleet: &Fleet, inventory: &std::path::Path) -> Measured {
    let mut m = measure(&mut fleet.fleetop(&snapshot_args(inventory)));
    let doc: serde_json::Value = serde_json::from_str(&m.stdout).unwrap_or_default();
    let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
    m.answered = nodes.iter().filter(|n| n["state"] == "up").count();
    for n in nodes.iter().filter(|n| n["state"] != "up").take(5) {
        eprintln!("  fleetop: {} {}: {}", n["name"], n["state"], n["error"]);
    }
    m
}

/// The harness's inventory with the production timeouts (the tests use short ones to fail fast).
pub(crate) fn realistic_inventory(fleet: &Fleet) -> std::path::PathBuf {
    let text = fleet
        .inventory(&[])
        .replace("connect_timeout_ms = 2000", "connect_timeout_ms = 5000")
        .replace(
            "handshake_timeout_ms = 3000",
            "handshake_timeout_ms = 10000",
        )
        .replace(
            "first_sample_timeout_ms = 5000",
            "first_sample_timeout_ms = 10000",
        );
    let path = fleet.dir.path().join("bench.toml");
    std::fs::write(&path, text).expect("write inventory");
    path
}

pub(crate) struct Cold {
    pub(crate) n: usize,
    pub(crate) fleetop: Measured,
    pub(crate) pdsh: (usize, Measured),
    pub(crate) pdsh_default_kex: Option<Measured>,
    pub(crate) clush: (usize, Measured),
}

/// A loopback fleet of `n` sshd nodes, each running the real agent on 8 fake GPUs.
pub(crate) fn agent_fleet(n: usize) -> Fleet {
    Fleet::agents(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(crate) fn cold(n: usize) -> Cold {
    eprintln!("cold snapshot: starting {n} sshd nodes…");
    let fleet = agent_fleet(n);
    let inventory = realistic_inventory(&fleet);
    // One unmeasured pass first: a fresh fleet's first connections cost its sshds more (cold caches), and
    // whichever tool ran first would pay for it.
    let _ = fleetop_snapshot(&fleet, &inventory);
    let fleetop = with_rest_of_machine(|| fleetop_snapshot(&fleet, &inventory));
    let fanouts = [32, 64, 128];
    let pdsh_runs = fanouts
        .iter()
        .map(|&f| (f, with_rest_of_machine(|| pdsh(&fleet, f, true))))
        .collect();
    let clush_runs = fanouts
        .iter()
        .map(|&f| (f, with_rest_of_machine(|| clush(&fleet, f))))
        .collect();
    let best_pdsh = best(pdsh_runs);
    let pdsh_default_kex =
        (n <= 256).then(|| with_rest_of_machine(|| pdsh(&fleet, best_pdsh.0, false)));
    Cold {
        n,
        fleetop,
        pdsh: best_pdsh,
        pdsh_default_kex,
        clush: best(clush_runs),
    }
}

/// fleetop's and pdsh's cold snapshots alone, three rounds on one fleet: wall, jump-host CPU and what the
/// rest of the machine used.
pub(crate) fn cold_fleetop_only(n: usize) {
    eprintln!("cold snapshot: starting {n} sshd nodes…");
    let fleet = agent_fleet(n);
    let inventory = realistic_inventory(&fleet);
    let _ = fleetop_snapshot(&fleet, &inventory);
    // FLEETOP_BENCH_PERF=FILE: one more snapshot first, recorded by `perf record --call-graph dwarf` into FILE.
    if let Ok(file) = std::env::var("FLEETOP_BENCH_PERF") {
        let client = fleet.fleetop(&[]);
        let mut perf = Command::new("perf");
        // The client's environment as `Fleet::fleetop` sets it: its variables set and removed.
        for (key, value) in client.get_envs() {
            match value {
                Some(v) => perf.env(key, v),
                None => perf.env_remove(key),
            };
        }
        let status = perf
            .args([
                "record",
                "--call-graph",
                "dwarf",
                "-F",
                "1999",
                "-o",
                &file,
                "--",
            ])
            .arg(client.get_program())
            .args(snapshot_args(&inventory))
            .stdout(Stdio::null())
            .status();
        eprintln!("perf record into {file}: {status:?}");
    }
    for _ in 0..3 {
        for (name, m) in [
            (
                "fleetop",
                with_rest_of_machine(|| fleetop_snapshot(&fleet, &inventory)),
            ),
            (
                "pdsh -f 32",
                with_rest_of_machine(|| pdsh(&fleet, 32, true)),
            ),
        ] {
            println!(
                "cold {n} nodes: {name} {:.2} s wall, {:.2} s CPU, {} answered; rest of the machine {:.2} s CPU",
                secs(m.wall),
                secs(m.cpu),
                m.answered,
                m.rest_cpu
            );
        }
    }
}

/// fleetop's cold snapshot of a fleet without agents (nvidia-smi prints captured H100 rows), three rounds:
/// the node choosing in one command (no agent on its PATH), against a node whose agent path exists but
/// exits 127 (the shell's "not found"), which costs the second exec every node paid before.
pub(crate) fn cold_agentless(n: usize) {
    eprintln!("cold agentless snapshot: starting {n} sshd nodes…");
    let fleet = Fleet::start(
        (0..n)
            .map(|_| crate::common::Behaviour::smi_h100())
            .collect(),
        crate::common::Quirks::default(),
    );
    let one_exec = realistic_inventory(&fleet);
    let stub = fleet.dir.path().join("bin/fleetop");
    let two_execs = fleet.dir.path().join("bench-two-execs.toml");
    let text = std::fs::read_to_string(&one_exec)
        .unwrap_or_default()
        .replace(
            "agent_path = \"fleetop\"",
            &format!("agent_path = \"{}\"", stub.display()),
        );
    std::fs::write(&two_execs, text).expect("write inventory");
    let _ = fleetop_snapshot(&fleet, &one_exec);
    for _ in 0..3 {
        for (name, inventory) in [("one exec", &one_exec), ("two execs", &two_execs)] {
            let m = with_rest_of_machine(|| fleetop_snapshot(&fleet, inventory));
            println!(
                "cold agentless {n} nodes, {name}: {:.2} s wall, {:.2} s CPU, {} answered; rest of the machine {:.2} s CPU",
                secs(m.wall),
                secs(m.cpu),
                m.answered,
                m.rest_cpu
            );
        }
    }
}

/// Polling each second with a peer: what it cost while polling back to back, and per poll.
pub(crate) struct Polling {
    /// CPU per minute while polling as often as it could (at most once a second).
    pub(crate) cpu_per_min: f64,
    /// CPU one poll costs, and how long one poll took.
    pub(crate) cpu_per_poll: f64,
    pub(crate) wall_per_poll: f64,
}

impl Polling {
    /// CPU a minute of polling once per second needs: 60 polls.
    pub(crate) fn at_one_hz(&self) -> f64 {
        self.cpu_per_poll * 60.0
    }
}

pub(crate) struct Live {
    pub(crate) n: usize,
    pub(crate) seconds: u64,
    pub(crate) fleetop_cpu_per_min: f64,
    pub(crate) pdsh: Polling,
    pub(crate) clush: Polling,
}

pub(crate) fn live(n: usize, seconds: u64) -> Live {
    eprintln!("live following: {n} nodes for {seconds} s per tool…");
    let fleet = agent_fleet(n);
    let inventory = crate::follow::one_hz_inventory(&fleet);
    let turn = crate::follow::follow(&fleet, &inventory, n, seconds, None);
    let per_min = |cpu: f64| cpu * 60.0 / seconds as f64;
    let poll = |run: &dyn Fn() -> Measured| {
        let (mut cpu, mut wall, mut polls) = (0.0, 0.0, 0u32);
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            let tick = Instant::now();
            let m = run();
            cpu += secs(m.cpu);
            wall += secs(m.wall);
            polls += 1;
            std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
        }
        let polls = f64::from(polls.max(1));
        Polling {
            cpu_per_min: per_min(cpu),
            cpu_per_poll: cpu / polls,
            wall_per_poll: wall / polls,
        }
    };
    Live {
        n,
        seconds,
        fleetop_cpu_per_min: turn.cpu_per_min,
        pdsh: poll(&|| pdsh(&fleet, 64, true)),
        clush: poll(&|| clush(&fleet, 64)),
    }
}

/// Per-sample CPU and peak RSS of the agent on the fake NVML library (8 GPUs).
// Reaped with wait4 for its rusage, as in `measure`.
#[allow(clippy::zombie_processes)]
pub(crate) fn agent_cost() -> (f64, f64, usize) {
    let spec = std::env::temp_dir().join(format!("fleetop-bench-spec-{}", std::process::id()));
    std::fs::write(&spec, Spec::node(1, 8).text).expect("spec");
    let mut child = Command::new(&shared().fleetop)
        .args(["agent", "--interval", "5"])
        .env("FAKE_NVML_SPEC", &spec)
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
        .stdout(Stdio::piped())
        .spawn()
        .expect("agent");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s.lines().count()
    });
    std::thread::sleep(Duration::from_secs(5));
    // The agent's own high-water mark: rusage's maxrss would include what it inherited from this process
    // across fork and exec.
    let hwm_kib: f64 = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0);
    // SAFETY: kill on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let cpu = reap(&child);
    let samples = reader.join().unwrap_or(1).saturating_sub(1).max(1);
    let _ = std::fs::remove_file(spec);
    (
        secs(cpu) * 1000.0 / samples as f64,
        hwm_kib / 1024.0,
        samples,
    )
}

pub(crate) fn fleetop_output(args: &[&str]) -> String {
    let out = Command::new(&shared().fleetop)
        .args(args)
        .output()
        .expect("fleetop");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
