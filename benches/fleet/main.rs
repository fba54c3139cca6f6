//! `scripts/bench-fleet`: fleetop against pdsh and clush on a loopback fleet of real sshd nodes, plus render,
//! memory and agent costs. Prints a table and writes docs/benchmarks.md and docs/benchmarks.svg.
//!
//! Fairness: every tool uses the same sshd, keys, user and key exchange (curve25519-sha256), and the same
//! cheap remote work (the real agent on the fake NVML library, one sample). CPU is the jump-host side only:
//! the measured process plus the children it waited for (pdsh's and clush's ssh processes).

#[path = "../../tests/it/common/mod.rs"]
mod common;
mod deploy;
mod follow;
mod ledger;
mod measure;
mod pinned;
mod prometheus;
mod record;
mod refresh;
mod replay;
mod report;
mod scenarios;

use report::{chart, report};
use scenarios::*;

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
    // FLEETOP_BENCH_ONLY=cold-agentless: fleetop's cold snapshot of a fleet without agents, one exec per node
    // against two.
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("cold-agentless") {
        for &n in &sizes {
            cold_agentless(n);
        }
        return;
    }
    // FLEETOP_BENCH_ONLY=prometheus: 100,000 GPUs read from a real Prometheus (docs/benchmarks-prometheus.md).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("prometheus") {
        let nodes = prometheus::nodes_from_env();
        // Ten minutes: the rings then hold all the history a view keeps (40 samples at 15 s).
        let follow = std::env::var("FLEETOP_BENCH_PROM_FOLLOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600);
        prometheus::prometheus(nodes, follow);
        return;
    }
    // FLEETOP_BENCH_ONLY=prometheus-pinned: the refresh with the store and fleetop on cores of their own.
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("prometheus-pinned") {
        let nodes = prometheus::nodes_from_env();
        pinned::only(nodes);
        return;
    }
    // FLEETOP_BENCH_ONLY=record: a recording's size, CPU and seek time on the demo fleet (docs/benchmarks.md).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("record") {
        print!("{}", record::from_env());
        return;
    }
    // FLEETOP_BENCH_ONLY=ledger: what `fleetop report` costs per recorded message, against following.
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("ledger") {
        let seconds = std::env::var("FLEETOP_BENCH_LEDGER_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        print!("{}", ledger::ledger(seconds));
        return;
    }
    // FLEETOP_BENCH_ONLY=deploy: the agent deployed to a fleet (FLEETOP_BENCH_DEPLOY_NODES=256), twice.
    let deploy_n = std::env::var("FLEETOP_BENCH_DEPLOY_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("deploy") {
        println!("{}", deploy::section(&deploy::deploy(deploy_n)));
        return;
    }
    let live_n = std::env::var("FLEETOP_BENCH_LIVE_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    // Turns each binary takes at following the full-sample fleet.
    let rounds: usize = std::env::var("FLEETOP_BENCH_LIVE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    // FLEETOP_BENCH_ONLY=live-full: the full H100 sample followed by this build and, with
    // FLEETOP_BENCH_PREVIOUS, the previous release in turns (the section is printed, no report written).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("live-full") {
        println!(
            "{}",
            follow::full_sample_section(live_n, live_seconds, rounds)
        );
        return;
    }
    // FLEETOP_BENCH_ONLY=live measures live following alone (and writes no report).
    if std::env::var("FLEETOP_BENCH_ONLY").as_deref() == Ok("live") {
        let l = live(live_n, live_seconds);
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
    let live = live(live_n, live_seconds);
    let full_sample = follow::full_sample_section(live_n, live_seconds, rounds);
    let render = fleetop_output(&["--demo", "--bench-render", "300"]);
    let memory = fleetop_output(&["--demo", "--bench-memory", "600"]);
    let (agent_ms, agent_rss, agent_samples) = agent_cost();
    let deployed = deploy::deploy(deploy_n);
    let mut report = report(
        &colds,
        &live,
        &render,
        &memory,
        (agent_ms, agent_rss, agent_samples),
    );
    report += &full_sample;
    report += &deploy::section(&deployed);
    report += &record::from_env();
    print!("{report}");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let _ = std::fs::write(docs.join("benchmarks.md"), &report);
    let _ = std::fs::write(docs.join("benchmarks.svg"), chart(&colds));
}
