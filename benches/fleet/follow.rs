//! Live following measured as the jump host sees it: one fleetop following every node of a loopback fleet
//! in its line mode, CPU between two points once every node is up, and peak RSS. With
//! `FLEETOP_BENCH_PREVIOUS=<a previous release's fleetop>` the two follow the same fleet in turns (previous,
//! this, previous, this…), so the shared machine's noise falls on both alike and the ratio is what to read.
//! `FLEETOP_BENCH_ALSO=<another build's fleetop>` (say, the branch point of a change) takes turns as well.
//! `FLEETOP_BENCH_PIN=1`: the fleet (sshds, agents or replayers) on CPU 0 and the following fleetop on CPU 1
//! (`taskset`), so the fleet's load neither preempts fleetop nor evicts its caches.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Behaviour, Fleet, Quirks, Spec};
use crate::measure::{proc_cpu, secs};

/// One fleetop's turn at following.
pub(crate) struct Turn {
    pub(crate) cpu_per_min: f64,
    pub(crate) peak_rss_mib: f64,
    pub(crate) all_up_after_s: Option<f64>,
    /// The machine's load average over the last minute at the turn's end.
    pub(crate) load: String,
}

/// `cmd` with its arguments and environment, run as `binary` instead.
pub(crate) fn as_program(cmd: &Command, binary: &Path) -> Command {
    let mut other = Command::new(binary);
    other.args(cmd.get_args());
    with_env_of(cmd, other)
}

/// `cmd` run by `taskset -c CPU`, so it and every thread it starts stay on that core.
fn on_cpu(cmd: &Command, cpu: usize) -> Command {
    let mut other = Command::new("taskset");
    other
        .arg("-c")
        .arg(cpu.to_string())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    with_env_of(cmd, other)
}

/// `other` given the environment changes of `cmd`.
fn with_env_of(cmd: &Command, mut other: Command) -> Command {
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => other.env(key, v),
            None => other.env_remove(key),
        };
    }
    other
}

/// `FLEETOP_BENCH_PIN=1`: the fleet and the following fleetop on cores of their own.
fn pinned() -> bool {
    std::env::var("FLEETOP_BENCH_PIN").as_deref() == Ok("1")
}

/// The fleet at 1 Hz with the bench's timeouts, as live following reads it.
pub(crate) fn one_hz_inventory(fleet: &Fleet) -> std::path::PathBuf {
    let inventory = fleet.dir.path().join("live.toml");
    let text = std::fs::read_to_string(crate::scenarios::realistic_inventory(fleet)).expect("read");
    std::fs::write(
        &inventory,
        text.replace("interval_ms = 200", "interval_ms = 1000"),
    )
    .expect("write");
    inventory
}

/// Follows `n` nodes with this build (or `binary`), waits until every node is up, then measures `seconds`.
pub(crate) fn follow(
    fleet: &Fleet,
    inventory: &Path,
    n: usize,
    seconds: u64,
    binary: Option<&Path>,
) -> Turn {
    // stdout is a pipe, so fleetop follows in its line mode: the same transport and state as the TUI.
    let mut cmd = fleet.fleetop(&["--inventory", inventory.to_str().unwrap_or("")]);
    if let Some(binary) = binary {
        cmd = as_program(&cmd, binary);
    }
    if pinned() {
        cmd = on_cpu(&cmd, crate::pinned::CLIENT_CPU);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("fleetop");
    // Following is about the steady state: wait until every node is up (connecting 1,024 nodes takes
    // over ten seconds of both cores here), then a little longer for the last first samples.
    let all_up = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().expect("stdout");
    let flag = Arc::clone(&all_up);
    let up_line = format!("{n} nodes, {n} up,");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with(&up_line) {
                flag.store(true, Ordering::Relaxed);
            }
        }
    });
    let connecting = Instant::now();
    while !all_up.load(Ordering::Relaxed) && connecting.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let up = all_up.load(Ordering::Relaxed);
    let up_after = secs(connecting.elapsed());
    eprintln!(
        "  {}: {} after {:.1} s",
        binary.map_or("fleetop".into(), |b| b.display().to_string()),
        if up {
            "every node up"
        } else {
            "NOT every node up"
        },
        up_after
    );
    std::thread::sleep(Duration::from_secs(3));
    if let Ok(file) = std::env::var("FLEETOP_BENCH_PERF") {
        let status = Command::new("perf")
            // Every 100 µs of a thread's CPU rather than at a frequency: the per-thread clocks of 1,024 node
            // threads, each awake for microseconds a second, would hardly ever reach a 5 ms period.
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-c",
                "100000",
                "--call-graph",
                "dwarf",
            ])
            .args(["-o", &file])
            .args(["-p", &child.id().to_string(), "--", "sleep", "10"])
            .status();
        eprintln!("perf record into {file}: {status:?}");
    }
    let before = proc_cpu(child.id());
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = proc_cpu(child.id()) - before;
    let peak_rss_mib = peak_rss_kib(child.id()) as f64 / 1024.0;
    let load = crate::measure::load_average()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    let _ = child.kill();
    let _ = child.wait();
    Turn {
        cpu_per_min: cpu * 60.0 / seconds as f64,
        peak_rss_mib,
        all_up_after_s: up.then_some(up_after),
        load,
    }
}

/// Peak resident memory of a running process (`VmHWM`, KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `n` healthy nodes each reporting the full H100 sample: 8 GPUs with a process each and 18 NVLinks, and 8
/// InfiniBand ports up at 400 Gb/s (one sysfs tree of 8 ConnectX HCAs, shared by every node).
pub(crate) fn full_h100_fleet(n: usize) -> Fleet {
    let behaviours = (0..u32::try_from(n).unwrap_or(u32::MAX))
        .map(|i| {
            let mut spec = Spec::node(i, 8);
            for g in 0..8 {
                spec = spec
                    .with_line(&format!("nvlink {g} 18"))
                    .with_line(&format!("proc {g} {} 71000 c", 10_000 + g))
                    .with_line(&format!("pcie_max {g} 5 16"))
                    .with_line(&format!("pcie_replay {g} 0 0"));
            }
            Behaviour::Agent(spec)
        })
        .collect();
    let fleet = Fleet::start(behaviours, Quirks::default());
    // One node's tree made of eight copies of the captured mlx5 HCA, then linked from every other node.
    let first = fleet.give_sysfs(0, "procfs-mlx5");
    for hca in 1..8 {
        let status = Command::new("cp")
            .arg("-r")
            .arg(first.join("mlx5_0"))
            .arg(first.join(format!("mlx5_{hca}")))
            .status();
        assert!(status.is_ok_and(|s| s.success()), "copy HCA {hca}");
    }
    // The captured port reports an odd physical state and an EDR rate: made an up NDR port, as on an H100 node.
    for hca in 0..8 {
        let port = first.join(format!("mlx5_{hca}/ports/1"));
        std::fs::write(port.join("phys_state"), "5: LinkUp\n").expect("phys_state");
        std::fs::write(port.join("rate"), "400 Gb/sec (4X NDR)\n").expect("rate");
    }
    let tree = first
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("sysfs root")
        .to_path_buf();
    for i in 1..n {
        let link = tree.with_file_name(format!("{}.sysfs", fleet.nodes[i].addr));
        std::os::unix::fs::symlink(&tree, link).expect("link sysfs");
    }
    fleet
}

/// This build and the previous release (`FLEETOP_BENCH_PREVIOUS`) following the same full-sample fleet in
/// turns, `rounds` turns each; the markdown section for docs/benchmarks.md.
pub(crate) fn full_sample_section(n: usize, seconds: u64, rounds: usize) -> String {
    eprintln!("live following, full H100 sample: starting {n} sshd nodes…");
    // Pinned: this thread, and so every sshd, agent and replayer started from it, on the fleet's core.
    let pin = pinned();
    if pin {
        crate::pinned::pin_thread(crate::pinned::STORE_CPU);
    }
    let fleet = full_h100_fleet(n);
    // FLEETOP_BENCH_FLEET=replay: the nodes replay the agent's captured stream (`replay.rs`).
    let replayed = (std::env::var("FLEETOP_BENCH_FLEET").as_deref() == Ok("replay"))
        .then(|| crate::replay::replay_node_zero(&fleet));
    let inventory = one_hz_inventory(&fleet);
    let previous = std::env::var_os("FLEETOP_BENCH_PREVIOUS").map(std::path::PathBuf::from);
    let also = std::env::var_os("FLEETOP_BENCH_ALSO").map(std::path::PathBuf::from);
    let mut rows = Vec::new();
    for round in 0..rounds {
        if let Some(binary) = &previous {
            rows.push((
                "previous release",
                round,
                follow(&fleet, &inventory, n, seconds, Some(binary)),
            ));
        }
        if let Some(binary) = &also {
            rows.push((
                "other build",
                round,
                follow(&fleet, &inventory, n, seconds, Some(binary)),
            ));
        }
        rows.push((
            "this build",
            round,
            follow(&fleet, &inventory, n, seconds, None),
        ));
    }
    let mean = |who: &str, f: &dyn Fn(&Turn) -> f64| {
        let picked: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 == who)
            .map(|r| f(&r.2))
            .collect();
        picked.iter().sum::<f64>() / picked.len().max(1) as f64
    };
    let fleet_kind = match &replayed {
        Some(c) => format!(
            "Each node replays, at 1 Hz, the stream the agent wrote on the fake NVML (`benches/fleet/replay.c`): \
             a whole sample of {} bytes, then {} deltas ({} of them carrying a value; the last {} bytes), a whole \
             sample every 60 lines; whole samples each second to a jump host that asks for no compact stream.",
            c.whole_bytes, c.deltas, c.moving, c.last_delta_bytes
        ),
        None => "Each node runs the agent on the fake NVML.".into(),
    };
    let fleet_programs = if replayed.is_some() {
        "replayers"
    } else {
        "agents"
    };
    let pinning = if pin {
        format!(
            "\nPinned (`FLEETOP_BENCH_PIN=1`): the fleet (sshds, {}) on CPU {}, fleetop on CPU {} (`taskset`).",
            fleet_programs,
            crate::pinned::STORE_CPU,
            crate::pinned::CLIENT_CPU
        )
    } else {
        String::new()
    };
    let mut out = format!(
        "## Live following, full H100 sample ({n} nodes at 1 Hz, {seconds} s a turn)\n\n\
         Each node sends 8 GPUs (a process each, 18 NVLinks, PCIe maxima and replays) and 8 InfiniBand ports.\n\
         {fleet_kind}\n\
         The binaries follow the same fleet in turns, so the noise of the shared machine falls on both.{pinning}\n\n\
         | turn | binary | CPU s per minute | share of one core | peak RSS MiB | every node up after s | load average (1 min) |\n\
         |---:|---|---:|---:|---:|---:|---:|\n"
    );
    for (who, round, t) in &rows {
        out += &format!(
            "| {} | {who} | {:.2} | {:.2} % | {:.1} | {} | {} |\n",
            round + 1,
            t.cpu_per_min,
            t.cpu_per_min / 60.0 * 100.0,
            t.peak_rss_mib,
            t.all_up_after_s
                .map_or("not all".into(), |s| format!("{s:.1}")),
            t.load
        );
    }
    let this = mean("this build", &|t| t.cpu_per_min);
    out += &format!(
        "\nThis build: {:.2} % of one core (budget 2 %), peak RSS {:.1} MiB.",
        this / 60.0 * 100.0,
        mean("this build", &|t| t.peak_rss_mib)
    );
    if previous.is_some() {
        let before = mean("previous release", &|t| t.cpu_per_min);
        out += &format!(
            " Previous release: {:.2} % of one core, peak RSS {:.1} MiB; this build uses {:.1}× less CPU.",
            before / 60.0 * 100.0,
            mean("previous release", &|t| t.peak_rss_mib),
            before / this.max(f64::MIN_POSITIVE)
        );
    }
    if let Some(binary) = &also {
        let other = mean("other build", &|t| t.cpu_per_min);
        out += &format!(
            " Other build (`{}`): {:.2} % of one core, peak RSS {:.1} MiB; this build uses {:.1}× less CPU.",
            binary.display(),
            other / 60.0 * 100.0,
            mean("other build", &|t| t.peak_rss_mib),
            other / this.max(f64::MIN_POSITIVE)
        );
    }
    out + "\n"
}
