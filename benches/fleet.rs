//! `scripts/bench-fleet`: fleetop against pdsh and clush on a loopback fleet of real sshd nodes, plus render,
//! memory and agent costs. Prints a table and writes docs/benchmarks.md and docs/benchmarks.svg.
//!
//! Fairness: every tool uses the same sshd, keys, user and key exchange (curve25519-sha256), and the same
//! cheap remote work (the real agent on the fake NVML library, one sample). CPU is the jump-host side only:
//! the measured process plus the children it waited for (pdsh's and clush's ssh processes).

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{shared, Behaviour, Fleet, Quirks, Spec};

/// Wall time, jump-host CPU (user + system of the process and its reaped children), exit status, stdout.
struct Measured {
    wall: Duration,
    cpu: Duration,
    stdout: String,
    /// Nodes that returned a sample.
    answered: usize,
    /// CPU seconds the rest of the machine used meanwhile: the fleet's sshds, the commands they ran and the
    /// kernel's share of the traffic (cold snapshots only).
    rest_cpu: f64,
}

// The child is reaped with wait4, which also returns its CPU usage; clippy cannot see that.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut pipe = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let cpu = reap(&child);
    let wall = started.elapsed();
    let stdout = reader.join().unwrap_or_default();
    // pdsh and clush print each node's agent output: one hello line per node that answered.
    let answered = stdout.matches("\"fleetop_agent\"").count();
    Measured {
        wall,
        cpu,
        stdout,
        answered,
        rest_cpu: 0.0,
    }
}

/// Busy CPU seconds of the whole machine so far (user, nice, system, irq, softirq from /proc/stat).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks_to_secs([0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum())
}

/// Waits for `child` with wait4 and returns the CPU (user + system) it and the children it reaped used.
fn reap(child: &std::process::Child) -> Duration {
    let mut status = 0;
    // SAFETY: wait4 writes the status and rusage of our own child into the locals passed by pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Seconds of CPU in `ticks` of the kernel's clock (the unit of /proc/stat and /proc/PID/stat).
fn ticks_to_secs(ticks: f64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Runs one cold measurement and adds what the rest of the machine used meanwhile. Machine-wide, because
/// per-process accounting (the tool's rusage plus the sshd listeners' reaped children) missed about a
/// third of the machine's busy time during pdsh runs here, and almost none during fleetop's: it would
/// flatter the peers.
fn with_rest_of_machine(run: impl FnOnce() -> Measured) -> Measured {
    let before = machine_busy();
    let mut m = run();
    // Connections wind down just after the client leaves; let them finish inside the measurement.
    std::thread::sleep(Duration::from_millis(500));
    m.rest_cpu = (machine_busy() - before - secs(m.cpu)).max(0.0);
    m
}

/// ssh options every OpenSSH-based peer gets: the fleet's key, known_hosts, port, and curve25519.
fn ssh_options(fleet: &Fleet, kex: bool) -> Vec<String> {
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

const REMOTE: &str = "fleetop agent --once";

fn pdsh(fleet: &Fleet, fanout: usize, kex: bool) -> Measured {
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

fn clush(fleet: &Fleet, fanout: usize) -> Measured {
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
fn snapshot_args(inventory: &std::path::Path) -> [&str; 7] {
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

fn fleetop_snapshot(fleet: &Fleet, inventory: &std::path::Path) -> Measured {
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
fn realistic_inventory(fleet: &Fleet) -> std::path::PathBuf {
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

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The best of several fanouts: most nodes answered, then lowest wall time.
fn best(runs: Vec<(usize, Measured)>) -> (usize, Measured) {
    runs.into_iter()
        .min_by(|a, b| {
            b.1.answered
                .cmp(&a.1.answered)
                .then(a.1.wall.cmp(&b.1.wall))
        })
        .expect("at least one fanout")
}

struct Cold {
    n: usize,
    fleetop: Measured,
    pdsh: (usize, Measured),
    pdsh_default_kex: Option<Measured>,
    clush: (usize, Measured),
}

/// A loopback fleet of `n` sshd nodes, each running the real agent on 8 fake GPUs.
fn agent_fleet(n: usize) -> Fleet {
    Fleet::start(
        (0..n)
            .map(|i| Behaviour::Agent(Spec::node(i as u32, 8)))
            .collect(),
        Quirks::default(),
    )
}

fn cold(n: usize) -> Cold {
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
fn cold_fleetop_only(n: usize) {
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

/// CPU of process `pid` so far (utime + stime from /proc), in seconds.
fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the ')' come state (not numeric, skipped) then ppid…; utime and stime are fields 14 and 15 of stat.
    ticks_to_secs(fields.get(10).copied().unwrap_or(0.0) + fields.get(11).copied().unwrap_or(0.0))
}

/// Polling each second with a peer: what it cost while polling back to back, and per poll.
struct Polling {
    /// CPU per minute while polling as often as it could (at most once a second).
    cpu_per_min: f64,
    /// CPU one poll costs, and how long one poll took.
    cpu_per_poll: f64,
    wall_per_poll: f64,
}

impl Polling {
    /// CPU a minute of polling once per second needs: 60 polls.
    fn at_one_hz(&self) -> f64 {
        self.cpu_per_poll * 60.0
    }
}

struct Live {
    n: usize,
    seconds: u64,
    fleetop_cpu_per_min: f64,
    pdsh: Polling,
    clush: Polling,
}

fn live(n: usize, seconds: u64) -> Live {
    eprintln!("live following: {n} nodes for {seconds} s per tool…");
    let fleet = agent_fleet(n);
    let inventory = fleet.dir.path().join("live.toml");
    let text = std::fs::read_to_string(realistic_inventory(&fleet)).expect("read");
    std::fs::write(
        &inventory,
        text.replace("interval_ms = 200", "interval_ms = 1000"),
    )
    .expect("write");
    // stdout is a pipe, so fleetop follows in its line mode: the same transport and state as the TUI.
    let mut child = fleet
        .fleetop(&["--inventory", inventory.to_str().unwrap_or("")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("fleetop");
    // Following is about the steady state: wait until every node is up (connecting 1,024 nodes takes
    // over ten seconds of both cores here), then a little longer for the last first samples.
    let all_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stdout = child.stdout.take().expect("stdout");
    let flag = std::sync::Arc::clone(&all_up);
    let up_line = format!("{n} nodes, {n} up,");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with(&up_line) {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let connecting = Instant::now();
    while !all_up.load(std::sync::atomic::Ordering::Relaxed)
        && connecting.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "  fleetop: {} after {:.1} s",
        if all_up.load(std::sync::atomic::Ordering::Relaxed) {
            "every node up"
        } else {
            "NOT every node up"
        },
        secs(connecting.elapsed())
    );
    std::thread::sleep(Duration::from_secs(3));
    if let Ok(file) = std::env::var("FLEETOP_BENCH_PERF") {
        let status = Command::new("perf")
            .args(["record", "-F", "999", "-o", &file])
            .args(["-p", &child.id().to_string(), "--", "sleep", "10"])
            .status();
        eprintln!("perf record into {file}: {status:?}");
    }
    let before = proc_cpu(child.id());
    std::thread::sleep(Duration::from_secs(seconds));
    let fleetop_cpu = proc_cpu(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
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
        fleetop_cpu_per_min: per_min(fleetop_cpu),
        pdsh: poll(&|| pdsh(&fleet, 64, true)),
        clush: poll(&|| clush(&fleet, 64)),
    }
}

/// Per-sample CPU and peak RSS of the agent on the fake NVML library (8 GPUs).
// Reaped with wait4 for its rusage, as in `measure`.
#[allow(clippy::zombie_processes)]
fn agent_cost() -> (f64, f64, usize) {
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

fn fleetop_output(args: &[&str]) -> String {
    let out = Command::new(&shared().fleetop)
        .args(args)
        .output()
        .expect("fleetop");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("fleet benchmark: run it with `scripts/bench-fleet` (cargo bench --bench fleet)");
        return;
    }
    let sizes: Vec<usize> = std::env::var("FLEETOP_BENCH_SIZES")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let live_seconds: u64 = std::env::var("FLEETOP_BENCH_LIVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    // FLEETOP_BENCH_ONLY=cold runs fleetop's cold snapshot alone, three times a size (no report written).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("cold") {
        for &n in &sizes {
            cold_fleetop_only(n);
        }
        return;
    }
    // FLEETOP_BENCH_ONLY=live measures live following alone (and writes no report).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("live") {
        let n = std::env::var("FLEETOP_BENCH_LIVE_NODES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024);
        let l = live(n, live_seconds);
        println!(
            "live {} nodes: fleetop {:.2} CPU s/min ({:.1} % of a core); pdsh {:.1} at 1 Hz; clush {:.1} at 1 Hz",
            l.n,
            l.fleetop_cpu_per_min,
            l.fleetop_cpu_per_min / 60.0 * 100.0,
            l.pdsh.at_one_hz(),
            l.clush.at_one_hz()
        );
        return;
    }
    let colds: Vec<Cold> = sizes.iter().map(|&n| cold(n)).collect();
    let live_n = std::env::var("FLEETOP_BENCH_LIVE_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let live = live(live_n, live_seconds);
    let render = fleetop_output(&["--demo", "--bench-render", "300"]);
    let memory = fleetop_output(&["--demo", "--bench-memory", "600"]);
    let (agent_ms, agent_rss, agent_samples) = agent_cost();
    let report = report(
        &colds,
        &live,
        &render,
        &memory,
        (agent_ms, agent_rss, agent_samples),
    );
    print!("{report}");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let _ = std::fs::write(docs.join("benchmarks.md"), &report);
    let _ = std::fs::write(docs.join("benchmarks.svg"), chart(&colds));
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    format!("{cores} cores, {mem} memory, measured {date}")
}

fn report(
    colds: &[Cold],
    live: &Live,
    render: &str,
    memory: &str,
    agent: (f64, f64, usize),
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# fleetop benchmarks\n\nMachine: {}. Produced by `scripts/bench-fleet`; every number below comes from that one run.\n", machine());
    let _ = writeln!(r, "Client and server share the machine: each node is a real OpenSSH sshd on its own loopback address,");
    let _ = writeln!(r, "running the real `fleetop agent --once` on the fake NVML library (8 GPUs). All tools use the same keys,");
    let _ = writeln!(r, "user and key exchange (curve25519-sha256). CPU is jump-host CPU only (the tool plus its ssh children).\n");
    let _ = writeln!(r, "## Cold snapshot\n\nRatios say how much faster fleetop's wall time was and how much less jump-host CPU it used.");
    let _ = writeln!(r, "\"Rest of the machine\" is the busy CPU of the whole machine meanwhile minus the tool's own: the");
    let _ = writeln!(r, "fleet's sshds, the commands they ran and the kernel's share of the traffic, on the same cores. On a real");
    let _ = writeln!(
        r,
        "fleet each node pays its part on its own CPU; here it bounds wall time from below, at"
    );
    let _ = writeln!(r, "(rest of the machine + jump-host CPU) / cores.\n");
    let _ = writeln!(r, "| nodes | tool | fanout | answered | wall s | jump-host CPU s | rest of the machine CPU s | fleetop wall | fleetop CPU |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in colds {
        let f = &c.fleetop;
        let _ = writeln!(
            r,
            "| {} | fleetop snapshot | {} | {} | {:.2} | {:.2} | {:.2} | | |",
            c.n,
            96,
            f.answered,
            secs(f.wall),
            secs(f.cpu),
            f.rest_cpu
        );
        for (name, (fanout, m)) in [("pdsh", &c.pdsh), ("clush", &c.clush)] {
            let _ = writeln!(
                r,
                "| {} | {name} | {fanout} | {} | {:.2} | {:.2} | {:.2} | {:.1}× faster | {:.1}× less |",
                c.n,
                m.answered,
                secs(m.wall),
                secs(m.cpu),
                m.rest_cpu,
                secs(m.wall) / secs(f.wall).max(1e-9),
                secs(m.cpu) / secs(f.cpu).max(1e-9)
            );
        }
        if let Some(m) = &c.pdsh_default_kex {
            let _ = writeln!(
                r,
                "| {} | pdsh, OpenSSH default kex | {} | {} | {:.2} | {:.2} | {:.2} | | |",
                c.n,
                c.pdsh.0,
                m.answered,
                secs(m.wall),
                secs(m.cpu),
                m.rest_cpu
            );
        }
    }
    let _ = writeln!(
        r,
        "\n## Live following at 1 Hz ({} nodes, {} s each, scaled to a minute)\n\n\
         fleetop keeps one session and one streaming channel per node; its CPU is measured once every node is up\n\
         (connecting them all is the cold snapshot's work, above). The peers poll: each poll is a full pdsh or\n\
         clush run over every node. Polling once per second costs 60 polls a minute; where one poll takes longer\n\
         than a second the peer cannot follow at 1 Hz at all, and the middle column is what it used while polling\n\
         back to back.\n\n\
         | tool | seconds per poll | CPU s per minute, as measured | CPU s per minute at 1 Hz | share of one core at 1 Hz |\n|---|---:|---:|---:|---:|",
        live.n, live.seconds
    );
    let f = live.fleetop_cpu_per_min;
    let _ = writeln!(
        r,
        "| fleetop (persistent sessions) | (streaming) | {f:.2} | {f:.2} | {:.1} % |",
        f / 60.0 * 100.0
    );
    for (name, p) in [("pdsh -f 64", &live.pdsh), ("clush -f 64", &live.clush)] {
        let _ = writeln!(
            r,
            "| {name} | {:.2} | {:.2} | {:.1} | {:.0} % |",
            p.wall_per_poll,
            p.cpu_per_min,
            p.at_one_hz(),
            p.at_one_hz() / 60.0 * 100.0
        );
    }
    let better = live.pdsh.at_one_hz().min(live.clush.at_one_hz());
    let measured = live.pdsh.cpu_per_min.min(live.clush.cpu_per_min);
    let _ = writeln!(
        r,
        "\nAt 1 Hz fleetop uses {:.0}× less jump-host CPU than the better poller would; against what the pollers used while\n\
         falling behind, {:.0}× less.",
        better / f.max(1e-9),
        measured / f.max(1e-9)
    );
    let _ = writeln!(
        r,
        "\n## Render (8,200 GPUs, off-screen, 200×50)\n\n```\n{}```",
        render
    );
    let _ = writeln!(
        r,
        "\n## Memory (1,025 nodes, 10 minutes of 1 Hz history)\n\n```\n{}```",
        memory
    );
    let _ = writeln!(
        r,
        "\n## Agent (fake NVML, 8 GPUs, {} samples at 5 ms)\n\nCPU per sample: {:.3} ms. Peak RSS: {:.1} MiB.",
        agent.2, agent.0, agent.1
    );
    r
}

/// A grouped bar chart of cold-snapshot wall time and CPU per tool and fleet size.
fn chart(colds: &[Cold]) -> String {
    let (w, h, pad) = (760.0, 360.0, 50.0);
    let max = colds
        .iter()
        .flat_map(|c| {
            [
                c.fleetop.wall,
                c.fleetop.cpu,
                c.pdsh.1.wall,
                c.pdsh.1.cpu,
                c.clush.1.wall,
                c.clush.1.cpu,
            ]
        })
        .map(secs)
        .fold(1e-9, f64::max);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <text x='{pad}' y='20' font-size='14'>Cold snapshot: wall s (solid) and jump-host CPU s (pale), lower is better</text>"
    );
    let group = (w - 2.0 * pad) / colds.len().max(1) as f64;
    let colours = [
        ("fleetop", "#0072B2"),
        ("pdsh", "#E69F00"),
        ("clush", "#009E73"),
    ];
    for (gi, c) in colds.iter().enumerate() {
        let x0 = pad + gi as f64 * group;
        let bars = [(&c.fleetop, 0), (&c.pdsh.1, 1), (&c.clush.1, 2)];
        for (m, ti) in bars {
            for (k, v) in [secs(m.wall), secs(m.cpu)].iter().enumerate() {
                let bw = group / 8.0;
                let x = x0 + (ti * 2 + k) as f64 * bw + bw * 0.5;
                let bh = v / max * (h - 2.0 * pad);
                let opacity = if k == 0 { 1.0 } else { 0.45 };
                let _ = write!(
                    svg,
                    "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{bh:.1}' fill='{}' fill-opacity='{opacity}'/>",
                    h - pad - bh,
                    bw * 0.9,
                    colours[ti].1
                );
            }
        }
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}'>{} nodes</text>",
            x0 + group / 3.0,
            h - pad + 20.0,
            c.n
        );
    }
    for (i, (name, colour)) in colours.iter().enumerate() {
        let _ = write!(svg, "<rect x='{}' y='30' width='12' height='12' fill='{colour}'/><text x='{}' y='41'>{name}</text>", pad + i as f64 * 90.0, pad + 16.0 + i as f64 * 90.0);
    }
    let _ = write!(
        svg,
        "<text x='{}' y='{:.1}'>max {:.1} s</text></svg>",
        w - 110.0,
        pad - 5.0,
        max
    );
    svg
}
