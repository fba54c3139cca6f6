//! Sites as contexts: `[[context]]` in config.toml chosen with `--context NAME` or `$FLEETOP_CONTEXT`, against a
//! loopback fleet of real sshd nodes, and every refusal.

use crate::common;

use std::path::PathBuf;
use std::process::Output;

use common::Fleet;
use serde_json::Value;

/// Writes `config.toml` (with `[[context]]` "east" naming `inventory`) under the fleet's own config directory.
pub(crate) fn config_dir(fleet: &Fleet, inventory: &std::path::Path, extra: &str) -> PathBuf {
    let dir = fleet.dir.path().join("xdg-config");
    std::fs::create_dir_all(dir.join("fleetop")).unwrap();
    let text = format!(
        "[[context]]\nname = \"east\"\ninventory = {:?}\n{extra}",
        inventory.display().to_string()
    );
    std::fs::write(dir.join("fleetop/config.toml"), text).unwrap();
    dir
}

pub(crate) fn fleetop(
    fleet: &Fleet,
    config: &std::path::Path,
    env_context: Option<&str>,
    args: &[&str],
) -> Output {
    let mut cmd = fleet.fleetop(args);
    cmd.env("XDG_CONFIG_HOME", config);
    match env_context {
        Some(name) => cmd.env("FLEETOP_CONTEXT", name),
        None => cmd.env_remove("FLEETOP_CONTEXT"),
    };
    common::run_bounded(&mut cmd, std::time::Duration::from_secs(60))
}

/// `fleetop --context all snapshot --format FORMAT --timeout 20 EXTRA…` with the config at `config`.
pub(crate) fn snapshot_all(
    fleet: &Fleet,
    config: &std::path::Path,
    format: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "--context",
        "all",
        "snapshot",
        "--format",
        format,
        "--timeout",
        "20",
    ];
    args.extend_from_slice(extra);
    fleetop(fleet, config, None, &args)
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[test]
fn a_context_is_followed_by_flag_and_by_environment() {
    let fleet = Fleet::agents(2);
    let inventory = fleet.write_inventory(&[]);
    let config = config_dir(&fleet, &inventory, "");
    let snapshot = ["snapshot", "--format", "json", "--timeout", "20"];

    let mut by_flag = vec!["--context", "east"];
    by_flag.extend_from_slice(&snapshot);
    let out = fleetop(&fleet, &config, None, &by_flag);
    let doc = json(&out);
    assert_eq!(doc["summary"]["nodes"], 2, "{}", text(&out));
    assert_eq!(doc["summary"]["nodes_up"], 2, "{doc:#}\n{}", fleet.logs());
    assert_eq!(out.status.code(), Some(0));

    let out = fleetop(&fleet, &config, Some("east"), &snapshot);
    assert_eq!(json(&out)["summary"]["nodes_up"], 2, "{}", text(&out));

    // `--inventory` wins over the environment's context, as it does over `$FLEETOP_INVENTORY`; this one is broken.
    let broken = fleet.dir.path().join("broken.toml");
    std::fs::write(&broken, "[defaults]\ninterval_ms = 1\n").unwrap();
    let mut by_inventory = vec!["--inventory", broken.to_str().unwrap()];
    by_inventory.extend_from_slice(&snapshot);
    let out = fleetop(&fleet, &config, Some("east"), &by_inventory);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("broken.toml:2:"), "{}", text(&out));

    let out = fleetop(&fleet, &config, None, &["--context", "east", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains("contexts      1"), "{listed}");
    assert!(listed.contains("*context east"), "{listed}");
    assert!(
        listed.contains("source: the inventory's [source]"),
        "{listed}"
    );
}

#[test]
fn a_context_with_inventory_unknown_names_and_broken_configs_are_refused() {
    let fleet = Fleet::agents(1);
    let inventory = fleet.write_inventory(&[]);
    let config = config_dir(&fleet, &inventory, "");
    let inv = inventory.to_str().unwrap();

    let out = fleetop(
        &fleet,
        &config,
        None,
        &["--context", "east", "--inventory", inv, "check"],
    );
    // A usage error, which fleetop exits with as "could not run".
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot be used with"), "{}", text(&out));

    let out = fleetop(&fleet, &config, None, &["--context", "north", "snapshot"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("\"north\": no such [[context]]"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("known: east"), "{}", text(&out));

    let out = fleetop(
        &fleet,
        &config,
        Some("north"),
        &["drain", "tn01", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no such [[context]]"), "{}", text(&out));

    let config = config_dir(
        &fleet,
        &inventory,
        &format!("[[context]]\nname = \"east\"\ninventory = {inv:?}\n[[context]]\nname = \"west\"\ninventory = \"x\"\n"),
    );
    let out = fleetop(&fleet, &config, None, &["--context", "east", "check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // Every problem is reported, each at its place.
    assert!(
        text(&out).contains("config.toml:5:8: context \"east\" is defined twice"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("config.toml:9:13: inventory "),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("fleetop/x: No such file"),
        "{}",
        text(&out)
    );
}

/// Two sshd fleets as two sites with the same node names; the second has a node that refuses connections.
fn two_sites() -> (Fleet, Fleet, PathBuf) {
    let east = Fleet::agents(2);
    let west = Fleet::agents(2);
    let east_inventory = east.write_inventory(&[]);
    let west_inventory = west.write_inventory(&[("tn09".into(), west.refusing_addr())]);
    let config = config_dir(
        &east,
        &east_inventory,
        &format!(
            "[[context]]\nname = \"west\"\ninventory = {:?}\n",
            west_inventory.display().to_string()
        ),
    );
    (east, west, config)
}

#[test]
fn every_site_at_once_in_json_csv_and_table() {
    let (east, west, config) = two_sites();
    let all = [
        "--context",
        "all",
        "snapshot",
        "--timeout",
        "20",
        "--format",
    ];
    let run = |format: &str| {
        let mut args = all.to_vec();
        args.push(format);
        fleetop(&east, &config, None, &args)
    };

    let out = run("json");
    let doc = json(&out);
    let logs = format!("{}\n{}", east.logs(), west.logs());
    assert_eq!(doc["summary"]["nodes"], 5, "{}", text(&out));
    assert_eq!(doc["summary"]["nodes_up"], 4, "{doc:#}\n{logs}");
    // The refusing node is unreachable: exit 2, as for one site.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let sites: Vec<(&str, u64, u64)> = doc["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["site"].as_str().unwrap(),
                s["summary"]["nodes"].as_u64().unwrap(),
                s["summary"]["nodes_up"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sites, [("east", 2, 2), ("west", 3, 2)]);
    let names: Vec<(&str, &str, &str)> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["site"].as_str().unwrap(),
                n["name"].as_str().unwrap(),
                n["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("east", "east/tn01", "up"),
            ("east", "east/tn02", "up"),
            ("west", "west/tn01", "up"),
            ("west", "west/tn02", "up"),
            ("west", "west/tn09", "unreachable"),
        ]
    );
    // Each site was reached through its own sshd: both fleets' nodes ran the agent.
    assert!(east.execs() >= 2 && west.execs() >= 2, "{logs}");

    let out = run("csv");
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(csv.starts_with("site,node,cabinet,"), "{csv}");
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("east,east/tn01,"))
            .count(),
        8,
        "{csv}"
    );
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("west,west/tn09,"))
            .count(),
        1,
        "{csv}"
    );

    let out = run("table");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.starts_with("SITE  NODE"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("west  west/tn09")),
        "{table}"
    );
    assert!(table.contains("\n  east: 2 nodes (2 up)"), "{table}");
    assert!(table.contains("\n  west: 3 nodes (2 up)"), "{table}");
}

#[test]
fn actions_across_sites_must_name_their_site() {
    let (east, _west, config) = two_sites();
    for nodes in ["tn01", "east/tn01,west/tn01", "/tn01", "east/"] {
        let out = fleetop(
            &east,
            &config,
            None,
            &[
                "--context",
                "all",
                "drain",
                nodes,
                "--reason",
                "x",
                "--dry-run",
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{nodes}: {}", text(&out));
        assert!(
            text(&out).contains("an action names its site, as SITE/NODESET"),
            "{}",
            text(&out)
        );
    }
    // Named with its site, the action is the site's own: west's tn09 exists only there.
    let out = fleetop(
        &east,
        &config,
        Some("all"),
        &["drain", "west/tn09", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tn09"),
        "{}",
        text(&out)
    );
    let out = fleetop(
        &east,
        &config,
        Some("all"),
        &["drain", "east/tn09", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn a_prometheus_site_beside_an_ssh_site() {
    let east = Fleet::agents(1);
    let east_inventory = east.write_inventory(&[]);
    let dir = east.dir.path().join("lab");
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let _agent = common::exporter_agent(&dir, "lab1", "GPU-lab1", 42, port);
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fleetop\n    \
             static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{node: gpu1}}\n"
        ),
    )
    .unwrap();
    let (_prometheus, base) = common::prometheus(&dir, &config);
    common::wait_for_series(&base, "fleetop_gpu_power_limit_watts", 1);
    let lab_inventory = dir.join("lab.toml");
    std::fs::write(
        &lab_inventory,
        "[[cabinet]]\nname = \"r1\"\nnodes = \"gpu1\"\n[[node]]\nname = \"gpu1\"\ngpus = 1\n",
    )
    .unwrap();
    let config = config_dir(
        &east,
        &east_inventory,
        &format!(
            "[[context]]\nname = \"lab\"\ninventory = {:?}\n[context.source]\nkind = \"prometheus\"\nurl = \"{base}\"\n",
            lab_inventory.display().to_string()
        ),
    );
    let out = fleetop(
        &east,
        &config,
        Some("all"),
        &["snapshot", "--format", "json", "--timeout", "20"],
    );
    let doc = json(&out);
    assert_eq!(doc["summary"]["nodes_up"], 2, "{doc:#}\n{}", text(&out));
    let lab = common::node(&doc, "lab/gpu1");
    assert_eq!(lab["site"], "lab");
    assert_eq!(lab["source"], "prometheus", "{lab:#}");
    assert_eq!(lab["gpus"][0]["util_pct"], 42, "{lab:#}");
    assert_eq!(common::node(&doc, "east/tn01")["source"], "agent");
    let out = fleetop(&east, &config, None, &["--context", "lab", "check"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains("*context lab"), "{listed}");
    assert!(
        listed.contains(&format!("source: prometheus {base}")),
        "{listed}"
    );
}

#[test]
fn the_tui_switches_sites_with_ctx_keeping_the_view() {
    let (east, west, xdg) = two_sites();
    // The TUI's config is under its home: the same config.toml.
    let home = east.dir.path().join("tui-home");
    std::fs::create_dir_all(home.join(".config/fleetop")).unwrap();
    std::fs::copy(
        xdg.join("fleetop/config.toml"),
        home.join(".config/fleetop/config.toml"),
    )
    .unwrap();
    let bin = shlex::try_quote(env!("CARGO_BIN_EXE_fleetop"))
        .unwrap()
        .into_owned();
    let tmux = common::tmux::Tmux::start(&format!("{bin} --context east"), &home);
    tmux.wait_for(&["2 up", "0 no data"], std::time::Duration::from_secs(30));
    tmux.keys(&["2"]);
    tmux.wait_for(
        &["NODE", "tn01", "tn02"],
        std::time::Duration::from_secs(10),
    );

    tmux.keys(&["/", "state=up", "Enter"]);
    tmux.wait_for(
        &["filter: state=up (2 nodes)"],
        std::time::Duration::from_secs(10),
    );
    tmux.keys(&[":", "ctx all", "Enter"]);
    // The filter is kept: west's unreachable node is not listed.
    tmux.wait_for(
        &["filter: state=up (4 nodes)"],
        std::time::Duration::from_secs(30),
    );
    tmux.keys(&[":", "filter", "Enter"]);
    let screen = tmux.wait_for(
        &[
            "4 up",
            "1 no data",
            "east     2 up of 2",
            "west     2 up of 3",
            "SITE",
            "tn09",
        ],
        std::time::Duration::from_secs(30),
    );
    // Still the nodes view, now with a row per site's node.
    let row = screen
        .lines()
        .find(|l| l.starts_with("west") && l.contains("tn09"));
    assert!(
        row.is_some_and(|r| r.contains("unreach")),
        "{screen}\n{}",
        west.logs()
    );

    tmux.keys(&[":", "ctx north", "Enter"]);
    let screen = tmux.wait_for(
        &["ctx: --context \"north\": no such [[context]]"],
        std::time::Duration::from_secs(30),
    );
    assert!(screen.contains("SITE"), "back on every site: {screen}");

    tmux.keys(&[":", "ctx west", "Enter"]);
    let screen = tmux.wait_until("west alone", std::time::Duration::from_secs(30), |s| {
        s.contains("2 up") && s.contains("1 no data") && !s.contains("SITE") && s.contains("tn09")
    });
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("tn09") && l.contains("unreach")),
        "{screen}"
    );
    tmux.keys(&["q"]);
}
