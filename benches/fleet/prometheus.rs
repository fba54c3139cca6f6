//! `FLEETOP_BENCH_ONLY=prometheus`: fleetop reading 100,000 GPUs (12,500 nodes of 8) from a real Prometheus,
//! against `promtool query instant` asking the same queries of the same server in the same run (the floor: what
//! the store itself costs). One static target serves dcgm-exporter's families for every GPU. Writes
//! docs/benchmarks-prometheus.md.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::free_port;
use crate::measure::{measure, proc_cpu, secs};
use crate::refresh::{bare_client, range, snapshots, Run};

/// The dcgm-exporter families served: the ones a fleet view needs every refresh.
const FAMILIES: [(&str, &str); 8] = [
    ("DCGM_FI_DEV_GPU_UTIL", "util"),
    ("DCGM_FI_DEV_FB_USED", "fb_used"),
    ("DCGM_FI_DEV_FB_FREE", "fb_free"),
    ("DCGM_FI_DEV_GPU_TEMP", "temp"),
    ("DCGM_FI_DEV_MEMORY_TEMP", "memtemp"),
    ("DCGM_FI_DEV_POWER_USAGE", "power"),
    ("DCGM_FI_DEV_SM_CLOCK", "clock"),
    ("DCGM_FI_DEV_XID_ERRORS", "xid"),
];
const NODES_PER_CABINET: usize = 25;

fn node_name(n: usize) -> String {
    format!(
        "b{:03}n{:02}",
        n / NODES_PER_CABINET + 1,
        n % NODES_PER_CABINET + 1
    )
}

/// dcgm-exporter's text for `nodes` nodes of 8 GPUs, values varying by node and GPU.
fn metrics(nodes: usize) -> String {
    let mut out = String::with_capacity(nodes * 8 * FAMILIES.len() * 170);
    for (family, kind) in FAMILIES {
        let _ = writeln!(out, "# TYPE {family} gauge");
        for n in 0..nodes {
            let host = node_name(n);
            for g in 0..8 {
                let v = match kind {
                    "util" => ((n * 7 + g * 13) % 101) as f64,
                    "fb_used" => (40_000 + (n + g) % 30_000) as f64,
                    "fb_free" => 10_000.0,
                    "temp" => (35 + (n + g) % 40) as f64,
                    "memtemp" => (40 + (n + g) % 40) as f64,
                    "power" => 100.0 + ((n * 3 + g) % 600) as f64 + 0.5,
                    "clock" => 1980.0,
                    _ => 0.0,
                };
                let _ = writeln!(
                    out,
                    "{family}{{gpu=\"{g}\",UUID=\"GPU-{n:08x}-0000-4000-8000-{g:012x}\",device=\"nvidia{g}\",\
                     modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"{host}\",DCGM_FI_DRIVER_VERSION=\"550.90.07\"}} {v}"
                );
            }
        }
    }
    out
}

fn inventory(nodes: usize, interval_ms: u64, url: &str) -> String {
    let cabinets = nodes.div_ceil(NODES_PER_CABINET);
    let mut out = format!(
        "[defaults]\ninterval_ms = {interval_ms}\ngpus_per_node = 8\n\n[source]\nkind = \"prometheus\"\nurl = \"{url}\"\n\n"
    );
    for c in 0..cabinets {
        let last = (nodes - c * NODES_PER_CABINET).min(NODES_PER_CABINET);
        let _ = writeln!(
            out,
            "[[cabinet]]\nname = \"b{:03}\"\nnodes = \"b{:03}n[01-{last:02}]\"\n",
            c + 1,
            c + 1
        );
    }
    out
}

fn query_count(base: &str, q: &str) -> usize {
    ureq::get(&format!("{base}/api/v1/query"))
        .query("query", q)
        .timeout(Duration::from_secs(30))
        .call()
        .ok()
        .and_then(|r| r.into_json::<serde_json::Value>().ok())
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak RSS of a finished child, from /proc while it runs: the caller samples it.
fn vm_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A running store holding every GPU, the scrape target it reads, and an inventory naming it.
pub(crate) struct Store {
    pub(crate) prometheus: crate::common::Killed,
    pub(crate) base: String,
    pub(crate) inv: std::path::PathBuf,
    /// The scrape target's thread, by its kernel thread id (to pin it beside the store).
    pub(crate) target_tid: i32,
    _dir: tempfile::TempDir,
}

/// Starts the scrape target and Prometheus for `nodes` nodes of 8 GPUs, and waits until every GPU is stored.
pub(crate) fn start_store(nodes: usize) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let body = metrics(nodes);
    let gpus = nodes * 8;
    println!(
        "prometheus bench: {nodes} nodes, {gpus} GPUs, {} families, /metrics of {:.0} MB",
        FAMILIES.len(),
        body.len() as f64 / 1e6
    );
    let target = free_port();
    let server = tiny_http::Server::http(("127.0.0.1", target)).unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tid_tx.send(unsafe { libc::gettid() });
        for request in server.incoming_requests() {
            let _ = request.respond(tiny_http::Response::from_string(body.clone()));
        }
    });
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 15s\n  scrape_timeout: 14s\nscrape_configs:\n  - job_name: dcgm\n    \
             sample_limit: 0\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let (prometheus, base) = crate::common::prometheus(dir.path(), &config);
    let started = Instant::now();
    while query_count(&base, "count(DCGM_FI_DEV_XID_ERRORS)") < gpus {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "Prometheus never stored every GPU"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    println!("  stored after {:.0} s", started.elapsed().as_secs_f64());
    let inv = dir.path().join("inventory.toml");
    std::fs::write(&inv, inventory(nodes, 15_000, &base)).unwrap();
    Store {
        prometheus,
        base,
        inv,
        target_tid: tid_rx.recv().unwrap_or(0),
        _dir: dir,
    }
}

/// `FLEETOP_BENCH_PROM_NODES` (12,500 nodes of 8 GPUs: 100,000 GPUs).
pub fn nodes_from_env() -> usize {
    std::env::var("FLEETOP_BENCH_PROM_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12_500)
}

pub fn prometheus(nodes: usize, follow_secs: u64) {
    let store = start_store(nodes);
    let (base, inv) = (store.base.clone(), store.inv.clone());
    let gpus = nodes * 8;

    // One full refresh: a snapshot (start, every query, judging 12,500 nodes, JSON out), three times, each
    // telling where its time went (`--timings`).
    let runs = snapshots(3, &inv, &[]);
    let median = &runs[1];
    let range = |f: fn(&Run) -> f64| range(&runs, f);
    println!(
        "  snapshot: median {:.2} s wall, {:.2} s CPU; refresh {:.2} s wall, {:.2} s CPU; {} nodes up",
        median.wall, median.cpu, median.refresh_wall, median.refresh_cpu, median.up
    );

    // The floors: the same queries answered to a client that only reads the bytes, four in flight as fleetop
    // asks them (what the store alone costs), and asked one after another by Prometheus's own promtool.
    let queries: Vec<String> = fleetop::transport::prometheus::queries("Hostname");
    let bare = bare_client(&base, &queries, None);
    println!("  bare client, 4 in flight: {bare:.2} s wall");
    let floor_started = Instant::now();
    let mut floor_cpu = 0.0;
    for q in &queries {
        let m = measure(Command::new("promtool").args(["query", "instant", &base, q]));
        floor_cpu += secs(m.cpu);
    }
    let floor_wall = secs(floor_started.elapsed());
    println!(
        "  promtool: {} queries, {floor_wall:.2} s wall, {floor_cpu:.2} s CPU",
        queries.len()
    );
    // The store and fleetop on cores of their own: the refresh's wall time split between them.
    let pinned = crate::pinned::measure_pinned(&store, &queries);

    // Following at a 15 s refresh: CPU per minute and peak RSS.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .arg("--inventory")
        .arg(&inv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = follower.id();
    let before = proc_cpu(pid);
    std::thread::sleep(Duration::from_secs(follow_secs));
    let used = proc_cpu(pid) - before;
    let rss = vm_hwm_mib(pid);
    let _ = follower.kill();
    let _ = follower.wait();
    let share = used / follow_secs as f64 * 100.0;
    println!("  following: {share:.1} % of a core over {follow_secs} s, peak RSS {rss:.0} MiB");

    // Drawing at 100,000 GPUs: the same inventory, simulated in-process.
    let render = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(["--bench-render", "200", "--inventory"])
        .arg(&inv)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .replace(&inv.display().to_string(), "the benchmark's");
    print!("{render}");
    drop(store);

    let mut md = String::new();
    let _ = writeln!(md, "# Prometheus as the source: 100,000 GPUs\n");
    let _ = writeln!(
        md,
        "Written by `FLEETOP_BENCH_ONLY=prometheus scripts/bench-fleet` on this repository's 2-core test machine, \
         Debian's Prometheus on the same machine: one static target serving dcgm-exporter's {} families for \
         {nodes} nodes × 8 GPUs ({gpus} GPUs, {} series), scraped every 15 s. fleetop asks one instant query per \
         family it knows ({} queries; the fleetop and other dcgm families answer empty), keeping only the labels it \
         reads.\n",
        FAMILIES.len(),
        gpus * FAMILIES.len(),
        queries.len()
    );
    let _ = writeln!(md, "| measure | result | budget |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| one full refresh (every query answered, parsed and merged, every node judged; median of 3), wall | {:.2} s ({}) | < 2 s |",
        median.refresh_wall,
        range(|r| r.refresh_wall)
    );
    let _ = writeln!(
        md,
        "| one full refresh, fleetop CPU | {:.2} s ({}) | < 1 s |",
        median.refresh_cpu,
        range(|r| r.refresh_cpu)
    );
    let _ = writeln!(
        md,
        "| the whole `snapshot --format json` (start-up, refresh, ~100 MB of JSON written) | {:.2} s wall, {:.2} s CPU | — |",
        median.wall, median.cpu
    );
    let _ = writeln!(md, "| nodes up in it | {} of {nodes} | all |", median.up);
    let _ = writeln!(
        md,
        "| floor: the store alone, the same {} queries read by a bare client, 4 in flight | {bare:.2} s wall | — |",
        queries.len()
    );
    let _ = writeln!(
        md,
        "| floor: `promtool query instant` of the same {} queries, one after another | {floor_wall:.2} s wall, {floor_cpu:.2} s CPU | — |",
        queries.len()
    );
    let _ = writeln!(
        md,
        "| following at a 15 s refresh ({follow_secs} s) | {share:.1} % of one core | < 10 % |"
    );
    let _ = writeln!(
        md,
        "| peak RSS while following, rings full ({follow_secs} s of history) | {rss:.0} MiB | < 400 MiB |"
    );
    let _ = writeln!(
        md,
        "\nWhere a refresh's wall time goes: the store alone, read by a client that does nothing with the answers, \
         needed {bare:.2} s for the same queries with the same concurrency; fleetop's refresh took {:.2} s, of which \
         {:.2} s of CPU was fleetop's (parsing, merging, judging), on the same two cores as the store and its \
         scraping of 800,000 series every 15 s. fleetop waits on the store for {:.0} % of its refresh.",
        median.refresh_wall,
        median.refresh_cpu,
        (bare / median.refresh_wall * 100.0).min(100.0)
    );
    let _ = writeln!(
        md,
        "\nWhere the median snapshot's time went (`snapshot --timings`: wall and CPU per phase; per query, the \
         time from asking until the store began to answer, receiving, and parsing on fleetop's side):\n\n```\n{}```",
        median.timings
    );
    let _ = writeln!(
        md,
        "\nDrawing the same fleet (simulated, 200×50, off-screen):\n\n```\n{render}```"
    );
    md += &pinned;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks-prometheus.md");
    let _ = std::fs::write(path, md);
}
