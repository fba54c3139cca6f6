//! Measuring a run: wall time and jump-host CPU (the process and the children it reaped), machine-wide
//! busy time, and small helpers over those numbers.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall time, jump-host CPU (user + system of the process and its reaped children), exit status, stdout.
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Nodes that returned a sample.
    pub(crate) answered: usize,
    /// CPU seconds the rest of the machine used meanwhile: the fleet's sshds, the commands they ran and the
    /// kernel's share of the traffic (cold snapshots only).
    pub(crate) rest_cpu: f64,
}

// The child is reaped with wait4, which also returns its CPU usage; clippy cannot see that.

#[allow(clippy::zombie_processes)]
pub(crate) fn measure(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().expect("stdout")));
    let err = read_all(Box::new(child.stderr.take().expect("stderr")));
    let cpu = reap(&child);
    let wall = started.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    // pdsh and clush print each node's agent output: one hello line per node that answered.
    let answered = stdout.matches("\"fleetop_agent\"").count();
    Measured {
        wall,
        cpu,
        stdout,
        stderr,
        answered,
        rest_cpu: 0.0,
    }
}

/// Busy CPU seconds of the whole machine so far (user, nice, system, irq, softirq from /proc/stat).
pub(crate) fn machine_busy() -> f64 {
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
pub(crate) fn reap(child: &std::process::Child) -> Duration {
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
pub(crate) fn ticks_to_secs(ticks: f64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Runs one cold measurement and adds what the rest of the machine used meanwhile. Machine-wide, because
/// per-process accounting (the tool's rusage plus the sshd listeners' reaped children) missed about a
/// third of the machine's busy time during pdsh runs here, and almost none during fleetop's: it would
/// flatter the peers.
pub(crate) fn with_rest_of_machine(run: impl FnOnce() -> Measured) -> Measured {
    let before = machine_busy();
    let mut m = run();
    // Connections wind down just after the client leaves; let them finish inside the measurement.
    std::thread::sleep(Duration::from_millis(500));
    m.rest_cpu = (machine_busy() - before - secs(m.cpu)).max(0.0);
    m
}

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg` gives them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU of process `pid` so far (utime + stime from /proc), in seconds.
pub(crate) fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the ')' come state (not numeric, skipped) then ppid…; utime and stime are fields 14 and 15 of stat.
    ticks_to_secs(fields.get(10).copied().unwrap_or(0.0) + fields.get(11).copied().unwrap_or(0.0))
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The best of several fanouts: most nodes answered, then lowest wall time.
pub(crate) fn best(runs: Vec<(usize, Measured)>) -> (usize, Measured) {
    runs.into_iter()
        .min_by(|a, b| {
            b.1.answered
                .cmp(&a.1.answered)
                .then(a.1.wall.cmp(&b.1.wall))
        })
        .expect("at least one fanout")
}
