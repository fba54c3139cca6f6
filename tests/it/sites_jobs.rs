//! Jobs under `--context all`: each site's scheduler asked through its own settings, its jobs filed under the
//! merged inventory's `SITE/NODE` and billed to `SITE/ACCOUNT`, a site without a scheduler not asked — two sshd
//! fleets as two sites, a real Slurm on one, the TUI in a real terminal.

use crate::common;
use crate::contexts::{json, text};
use crate::sites_rules::{inventory_with, two_contexts, DRAINS_BY_COMMAND};

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::Fleet;

/// The JOBS cell of `site`'s `node` in the nodes table on `screen` (SITE and NODE its first columns), read under
/// the header's `JOBS`.
fn jobs_cell(screen: &str, site: &str, node: &str) -> Option<String> {
    let header = screen.lines().find(|l| l.contains("JOBS"))?;
    let column = header[..header.find("JOBS")?].chars().count();
    let row = screen
        .lines()
        .find(|l| l.split_whitespace().take(2).eq([site, node]))?;
    let cell: String = row.chars().skip(column).take(4).collect();
    Some(cell.trim().to_string())
}

#[test]
fn a_job_on_one_sites_slurm_shows_on_that_sites_node_only() {
    // east drains by a command (no scheduler to ask); west through Slurm, where a job runs on tn01. Both sites
    // have a tn01: only west's runs the job.
    let east = Fleet::agents(1);
    let east_inv = inventory_with(&east, "east", DRAINS_BY_COMMAND);
    let west = Fleet::agents(2);
    // West takes its tenants from the scheduler: a node's tenant is its jobs' account.
    let west_inv = west.dir.path().join("west.toml");
    std::fs::write(
        &west_inv,
        west.inventory(&[]).replacen(
            "[defaults]\n",
            "[defaults]\ntenant_from = \"scheduler\"\n",
            1,
        ) + "[drain]\nbackend = \"slurm\"\n",
    )
    .unwrap();
    let config = two_contexts(&east, &east_inv, &west_inv);
    let slurm = common::slurm::Slurm::with_nodes(&["tn01", "tn02"]);
    let job = slurm.sleep_job("tn01", "acme", 120);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(
        &slurm
            .client("squeue", &["-h", "-t", "RUNNING", "-o", "%i"])
            .stdout,
    )
    .lines()
    .any(|l| l.trim() == job)
    {
        assert!(Instant::now() < deadline, "job {job} never ran");
        std::thread::sleep(Duration::from_millis(200));
    }

    let snapshot = |format: &str| {
        let mut cmd = east.fleetop(&[
            "--context",
            "all",
            "snapshot",
            "--format",
            format,
            "--timeout",
            "20",
        ]);
        cmd.env("XDG_CONFIG_HOME", &config)
            .env("SLURM_CONF", slurm.conf());
        common::run_bounded(&mut cmd, Duration::from_secs(60))
    };
    let out = snapshot("json");
    let doc = json(&out);
    let west_tn01 = common::node(&doc, "west/tn01");
    assert_eq!(
        west_tn01["jobs"][0]["id"],
        job.as_str(),
        "{west_tn01:#}\n{}",
        text(&out)
    );
    assert_eq!(west_tn01["jobs"][0]["scheduler"], "slurm");
    assert_eq!(west_tn01["jobs"][0]["tenant"], "west/acme");
    assert_eq!(west_tn01["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(west_tn01["tenant"], "west/acme", "{west_tn01:#}");
    let west_tn02 = common::node(&doc, "west/tn02");
    assert_eq!(west_tn02["jobs"], serde_json::json!([]), "{west_tn02:#}");
    assert_eq!(west_tn02["tenant"], serde_json::Value::Null);
    // East was asked of no scheduler: its tn01's jobs are unknown, not west's, not none.
    let east_tn01 = common::node(&doc, "east/tn01");
    assert_eq!(east_tn01["jobs"], serde_json::Value::Null, "{east_tn01:#}");
    assert!(!text(&out).contains("site east"), "{}", text(&out));
    let csv = String::from_utf8_lossy(&snapshot("csv").stdout).into_owned();
    assert!(
        csv.lines().next().is_some_and(|h| h.ends_with(",jobs")),
        "{csv}"
    );
    let cells = |site: &str| -> Vec<String> {
        csv.lines()
            .filter(|l| l.starts_with(&format!("{site},{site}/tn01,")))
            .map(|l| l.rsplit(',').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(cells("west"), vec!["1"; 8], "{csv}");
    assert_eq!(cells("east"), vec![""; 8], "{csv}");
    let table = String::from_utf8_lossy(&snapshot("table").stdout).into_owned();
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("  JOBS  NOTES")),
        "{table}"
    );

    let quote = |p: &std::path::Path| shlex::try_quote(p.to_str().unwrap()).unwrap().into_owned();
    let command = format!(
        "env SLURM_CONF={} XDG_CONFIG_HOME={} {} --context all",
        quote(&slurm.conf()),
        quote(&config),
        quote(std::path::Path::new(env!("CARGO_BIN_EXE_fleetop")))
    );
    let tmux = Tmux::start(&command, east.dir.path());
    tmux.wait_for(&["3 up"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    // West's answer fills west's rows; east's, asked of no scheduler, stay unknown ("–"), not "0".
    let table = tmux.wait_until("west/tn01's job", Duration::from_secs(30), |screen| {
        jobs_cell(screen, "west", "tn01").as_deref() == Some("1")
    });
    assert_eq!(
        jobs_cell(&table, "west", "tn02").as_deref(),
        Some("0"),
        "{table}"
    );
    assert_eq!(
        jobs_cell(&table, "east", "tn01").as_deref(),
        Some("–"),
        "{table}"
    );
    tmux.keys(&["/", "node=west/tn01", "Enter"]);
    tmux.wait_for(&["(1 nodes)"], Duration::from_secs(10));
    tmux.keys(&["Enter"]);
    let detail = tmux.wait_for(&[&format!("jobs: {job} ")], Duration::from_secs(10));
    assert!(detail.contains(" (west/acme) "), "{detail}");
    // Back to the table, the filter cleared.
    // One key at a time: two escapes in one write read as one Alt-Escape.
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["NODE▲"], Duration::from_secs(10));
    tmux.keys(&["Escape"]);
    tmux.wait_until("the filter cleared", Duration::from_secs(10), |screen| {
        !screen.contains("filter:")
    });
    tmux.keys(&["/", "node=east/tn01", "Enter"]);
    tmux.wait_for(
        &["filter: node=east/tn01 (1 nodes)"],
        Duration::from_secs(10),
    );
    tmux.keys(&["Enter"]);
    let detail = tmux.wait_for(&["east/tn01 cabinet"], Duration::from_secs(10));
    assert!(!detail.contains("jobs:"), "{detail}");
    tmux.keys(&["q"]);
    slurm.client("scancel", &[&job]);
}
