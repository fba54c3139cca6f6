//! `fleetop deploy` on a loopback fleet: bytes on the wire per node, and the time to put the agent on every
//! node (every node new) and to run it again (every node current, skipped). The binary deployed is the one
//! benchmarked (the release build, line tables kept); before the stripped, compressed upload, deploy sent
//! that file whole. With `FLEETOP_BENCH_PREVIOUS=<a previous release's fleetop>`, that release deploys itself
//! to the same fleet first (every node new), measured the same way.

use crate::common::Fleet;
use crate::measure::{measure, Measured};

pub(crate) struct Deploy {
    pub(crate) n: usize,
    /// Size of the binary deploy was given (what earlier releases sent to every node).
    pub(crate) given: u64,
    /// Size of the stripped binary each node installs.
    pub(crate) installed: u64,
    /// Compressed bytes sent to each node (all the same; the largest seen).
    pub(crate) sent_per_node: u64,
    pub(crate) updated: usize,
    pub(crate) first: Measured,
    pub(crate) current: usize,
    pub(crate) rerun: Measured,
    /// The previous release deploying itself: its size (sent whole) and the run.
    pub(crate) previous: Option<(u64, usize, Measured)>,
}

fn run(
    fleet: &Fleet,
    inventory: &std::path::Path,
    n: usize,
    binary: Option<&std::path::Path>,
) -> (Measured, serde_json::Value) {
    let nodes = format!("tn[01-{n:02}]");
    let inventory = inventory.to_str().unwrap_or_default();
    let args = [
        "deploy",
        "--inventory",
        inventory,
        &nodes,
        "--yes",
        "--format",
        "json",
    ];
    let mut cmd = fleet.fleetop(&args);
    if let Some(binary) = binary {
        cmd = crate::follow::as_program(&cmd, binary);
    }
    let m = measure(&mut cmd);
    let doc = serde_json::from_str(&m.stdout)
        .unwrap_or_else(|e| panic!("deploy printed no JSON ({e}): {}\n{}", m.stdout, m.stderr));
    (m, doc)
}

fn count(doc: &serde_json::Value, outcome: &str) -> usize {
    doc["nodes"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|n| n["outcome"] == outcome).count())
}

pub(crate) fn deploy(n: usize) -> Deploy {
    eprintln!("deploy: starting {n} sshd nodes…");
    let fleet = Fleet::agents(u32::try_from(n).unwrap_or(u32::MAX));
    let inventory = fleet.write_inventory_with_agent_dirs();
    let previous = std::env::var_os("FLEETOP_BENCH_PREVIOUS").map(|binary| {
        let binary = std::path::PathBuf::from(binary);
        let size = std::fs::metadata(&binary).map_or(0, |m| m.len());
        let (m, doc) = run(&fleet, &inventory, n, Some(&binary));
        (size, count(&doc, "updated"), m)
    });
    let (first, doc) = run(&fleet, &inventory, n, None);
    let sent_per_node = doc["nodes"].as_array().map_or(0, |a| {
        a.iter()
            .filter_map(|node| node["upload"]["bytes"].as_u64())
            .max()
            .unwrap_or(0)
    });
    let (rerun, again) = run(&fleet, &inventory, n, None);
    Deploy {
        n,
        given: doc["bytes"]["given"].as_u64().unwrap_or(0),
        installed: doc["bytes"]["installed"].as_u64().unwrap_or(0),
        sent_per_node,
        updated: count(&doc, "updated"),
        first,
        current: count(&again, "current"),
        rerun,
        previous,
    }
}

/// The report's section (and the one line `FLEETOP_BENCH_ONLY=deploy` prints).
pub(crate) fn section(d: &Deploy) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let previous = match &d.previous {
        Some((size, updated, m)) => format!(
            "| previous release, every node new (its binary sent whole) | {:.1} MB | {:.1} MB | {:.1} | {:.1} | {updated} updated |",
            mb(*size),
            mb(*size) * d.n as f64,
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64()
        ),
        None => format!(
            "| previous release (the binary as built, sent whole; not run) | {:.1} MB | {:.1} MB | | | |",
            mb(d.given),
            mb(d.given) * d.n as f64
        ),
    };
    format!(
        "\n\n## Deploy ({n} nodes, `fleetop deploy`, 16 at a time)\n\n\
         | | bytes per node | total for {n} nodes | wall s | jump-host CPU s | nodes |\n|---|---:|---:|---:|---:|---:|\n\
         {previous}\n\
         | stripped + gzip, every node new | {sent:.1} MB | {sent_all:.1} MB | {w1:.1} | {c1:.1} | {u} updated |\n\
         | re-run, every node current | 0 | 0 | {w2:.1} | {c2:.1} | {c} skipped |\n\n\
         The binary deployed is {given:.1} MB; each node installs it stripped ({inst:.1} MB) after `gzip -dc`, its \
         SHA-256 and a `--version` run.",
        n = d.n,
        given = mb(d.given),
        sent = mb(d.sent_per_node),
        sent_all = mb(d.sent_per_node) * d.n as f64,
        w1 = d.first.wall.as_secs_f64(),
        c1 = d.first.cpu.as_secs_f64(),
        u = d.updated,
        w2 = d.rerun.wall.as_secs_f64(),
        c2 = d.rerun.cpu.as_secs_f64(),
        c = d.current,
        inst = mb(d.installed),
    )
}
