//! The Prometheus refresh with the store and fleetop on cores of their own (`taskset`): Prometheus and the
//! scrape target it reads on CPU 0, fleetop (and the bare client standing in for it) on CPU 1, so a refresh's
//! wall time says what the store needs and what fleetop adds, rather than two programs sharing two cores.
//! Part of `FLEETOP_BENCH_ONLY=prometheus`; `FLEETOP_BENCH_ONLY=prometheus-pinned` runs it alone and rewrites
//! its section of docs/benchmarks-prometheus.md.

use std::fmt::Write as _;
use std::process::Command;

use crate::measure::load_average;
use crate::prometheus::Store;
use crate::refresh::{bare_client, range, snapshots};

/// Where the store (Prometheus and its scrape target) runs; in pinned live following, the fleet.
pub(crate) const STORE_CPU: usize = 0;
/// Where fleetop and the bare client run.
pub(crate) const CLIENT_CPU: usize = 1;
/// The section's first line: `prometheus-pinned` replaces the file from here to the next `## ` or its end.
const HEADING: &str = "## The store and fleetop on cores of their own";

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_thread(cpu: usize) {
    pin(0, cpu);
}

/// Pins thread or process `tid` (0: the calling thread) to `cpu`.
fn pin(tid: i32, cpu: usize) -> bool {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// `taskset -a -p -c CPUS PID`: every thread of `pid` (Prometheus's Go threads; new ones inherit it).
fn taskset_all(pid: u32, cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Measures the pinned refresh on `store` (left unpinned afterwards) and returns its markdown section.
pub(crate) fn measure_pinned(store: &Store, queries: &[String]) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut md = format!("\n{HEADING}\n\n");
    if cpus < 2 {
        let _ = writeln!(md, "Not measured: this machine has {cpus} CPU.");
        return md;
    }
    let pid = store.prometheus.0.id();
    let all = format!("0-{}", cpus - 1);
    if store.target_tid <= 0
        || !taskset_all(pid, &STORE_CPU.to_string())
        || !pin(store.target_tid, STORE_CPU)
    {
        let _ = writeln!(md, "Not measured: `taskset` could not pin Prometheus.");
        return md;
    }
    let load_before = load_average();
    // The store alone: the same queries, four in flight, read to the end and dropped by a client on fleetop's CPU.
    let mut bare: Vec<f64> = (0..3)
        .map(|_| bare_client(&store.base, queries, Some(CLIENT_CPU)))
        .collect();
    bare.sort_by(f64::total_cmp);
    let cpu = CLIENT_CPU.to_string();
    let runs = snapshots(
        3,
        &store.inv,
        &["taskset", "-c", &cpu, env!("CARGO_BIN_EXE_fleetop")],
    );
    let load_after = load_average();
    taskset_all(pid, &all);
    unpin(store.target_tid, cpus);
    let median = &runs[1];
    println!(
        "  pinned: store alone {:.2} s (bare client); fleetop refresh {:.2} s wall, {:.2} s CPU; {} nodes up",
        bare[1], median.refresh_wall, median.refresh_cpu, median.up
    );
    let _ = writeln!(
        md,
        "Measured {} (UTC). Prometheus and the scrape target it reads pinned to CPU {STORE_CPU}, fleetop (and the \
         bare client) to CPU {CLIENT_CPU}, with `taskset`; the store set up as above, fleetop asking its {} queries \
         four in flight (medians of 3). Load average {load_before} before, {load_after} after (1, 5, 15 min): \
         whatever else runs on the machine shares these two cores.\n",
        today(),
        queries.len()
    );
    let _ = writeln!(md, "| measure (pinned) | result |\n|---|---|");
    let _ = writeln!(
        md,
        "| the store alone: the {} queries read by a bare client on CPU {CLIENT_CPU}, 4 in flight, wall | {:.2} s ({:.2}–{:.2} s) |",
        queries.len(),
        bare[1],
        bare[0],
        bare[2]
    );
    let _ = writeln!(
        md,
        "| fleetop's refresh on CPU {CLIENT_CPU}, wall | {:.2} s ({}) |",
        median.refresh_wall,
        range(&runs, |r| r.refresh_wall)
    );
    let _ = writeln!(
        md,
        "| fleetop's refresh, fleetop CPU | {:.2} s ({}) |",
        median.refresh_cpu,
        range(&runs, |r| r.refresh_cpu)
    );
    let _ = writeln!(
        md,
        "| the whole `snapshot --format json` on CPU {CLIENT_CPU} | {:.2} s wall, {:.2} s CPU |",
        median.wall, median.cpu
    );
    let _ = writeln!(md, "| nodes up in it | {} |", median.up);
    let beyond = median.refresh_wall - bare[1];
    let compared = if beyond > 0.0 {
        format!("{beyond:.2} s more than the store alone")
    } else {
        "no longer than the store alone (the difference is the machine's noise)".to_string()
    };
    let _ = writeln!(
        md,
        "\nOn its own core the store needs {:.2} s to answer the refresh's queries; fleetop's refresh takes {:.2} s, \
         {compared}, while fleetop's own work (receiving, parsing, merging, judging) is {:.2} s of CPU on the other \
         core, overlapping the store's answers: the refresh's wall time is the store's.",
        bare[1], median.refresh_wall, median.refresh_cpu
    );
    md
}

/// Today's date, UTC, as `2026-12-07`.
fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .take(10)
        .collect()
}

/// Lets thread `tid` run on every CPU again.
fn unpin(tid: i32, cpus: usize) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// `FLEETOP_BENCH_ONLY=prometheus-pinned`: the pinned refresh alone, written into its section of
/// docs/benchmarks-prometheus.md (the rest of the file is the last full run's).
pub fn only(nodes: usize) {
    let store = crate::prometheus::start_store(nodes);
    let queries = fleetop::transport::prometheus::queries("Hostname");
    let section = measure_pinned(&store, &queries);
    drop(store);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks-prometheus.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::write(&path, splice(&old, &section));
    print!("{section}");
}

/// `doc` with its pinned section (from its heading to the next heading or the end) replaced by `section`, or
/// `section` appended.
fn splice(doc: &str, section: &str) -> String {
    let section = section.trim_start_matches('\n');
    let Some(start) = doc.find(HEADING) else {
        return format!("{}\n\n{section}", doc.trim_end());
    };
    let after = start + HEADING.len();
    let end = doc[after..]
        .find("\n## ")
        .map_or(doc.len(), |i| after + i + 1);
    format!("{}{section}{}", &doc[..start], &doc[end..])
}
