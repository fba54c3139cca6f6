//! Measuring the store's refresh: fleetop's snapshots with their `--timings` phases, and the bare client that
//! reads the same queries and does nothing with the answers (what the store alone costs).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::measure::{measure, secs};
use crate::scenarios::snapshot_args;

/// One snapshot: whole-process wall and CPU, the refresh phase's (from `--timings`), nodes up, the report.
pub(crate) struct Run {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    pub(crate) refresh_wall: f64,
    pub(crate) refresh_cpu: f64,
    pub(crate) up: usize,
    pub(crate) timings: String,
}

/// `runs` snapshots of the store by `command` (fleetop, or fleetop under `taskset`), sorted by wall time: the
/// median is the middle one.
pub(crate) fn snapshots(runs: usize, inv: &std::path::Path, command: &[&str]) -> Vec<Run> {
    let mut out = Vec::new();
    for _ in 0..runs {
        let (program, prefix) = match command.split_first() {
            Some((p, rest)) => (p.to_string(), rest.to_vec()),
            None => (env!("CARGO_BIN_EXE_fleetop").to_string(), Vec::new()),
        };
        let m = measure(
            Command::new(program)
                .args(prefix)
                .args(snapshot_args(inv))
                .arg("--timings"),
        );
        // The JSON is pretty-printed: `"state": "up"` once per node that answered.
        let up = m.stdout.matches("\"state\": \"up\"").count();
        let (refresh_wall, refresh_cpu) = phase(&m.stderr, "collect:");
        out.push(Run {
            wall: secs(m.wall),
            cpu: secs(m.cpu),
            refresh_wall,
            refresh_cpu,
            up,
            timings: m.stderr,
        });
    }
    out.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    out
}

/// The lowest and highest of `f` over `runs`, as `lo–hi s`.
pub(crate) fn range(runs: &[Run], f: fn(&Run) -> f64) -> String {
    let (lo, hi) = runs
        .iter()
        .map(f)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    format!("{lo:.2}–{hi:.2} s")
}

/// Wall and CPU seconds of the `--timings` phase whose name starts with `name`.
fn phase(timings: &str, name: &str) -> (f64, f64) {
    let line = timings
        .lines()
        .find(|l| {
            l.split("  ")
                .any(|part| part.trim_start().starts_with(name))
        })
        .unwrap_or("");
    let mut words = line.split_whitespace();
    let mut duration = || -> f64 {
        let value: f64 = words
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        match words.next() {
            Some("ms") => value / 1e3,
            _ => value,
        }
    };
    (duration(), duration())
}

/// Wall seconds for `queries`, four in flight, each answer read to the end and dropped; `cpu`: the client's
/// threads run on that CPU only.
pub(crate) fn bare_client(base: &str, queries: &[String], cpu: Option<usize>) -> f64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                if let Some(cpu) = cpu {
                    crate::pinned::pin_thread(cpu);
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                if let Ok(r) = ureq::get(&format!("{base}/api/v1/query"))
                    .query("query", q)
                    .timeout(Duration::from_secs(60))
                    .call()
                {
                    let _ = std::io::copy(&mut r.into_reader(), &mut std::io::sink());
                }
            });
        }
    });
    secs(started.elapsed())
}
