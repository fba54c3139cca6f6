//! Several sites under `--context all`, each by its own rules: its `[thresholds]`, `[expect]` and drift
//! majorities, its own drain backend read back, and a `site` label on its Prometheus series — against two
//! fleets of real sshd nodes (and a real Slurm).

use crate::common;
use crate::contexts::{config_dir, json, snapshot_all, text};
use crate::tui_common::{gpu, msg, sample, wall};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Behaviour, Fleet, Quirks, Spec};

/// A node's spec on another driver than the fake NVML's default (550.90.07).
fn on_driver(seed: u32, driver: &str) -> Behaviour {
    let spec = Spec::node(seed, 8);
    Behaviour::Agent(Spec {
        text: spec
            .text
            .replacen("driver 550.90.07", &format!("driver {driver}"), 1),
    })
}

/// Writes `fleet`'s inventory with `extra` sections after its nodes, as `NAME.toml`.
/// A site draining by a command: no scheduler to read drain state or jobs back from.
pub(crate) const DRAINS_BY_COMMAND: &str =
    "[drain]\nbackend = \"command\"\ndrain_command = \"true {node}\"\nundrain_command = \"true {node}\"\n";

pub(crate) fn inventory_with(fleet: &Fleet, name: &str, extra: &str) -> PathBuf {
    let path = fleet.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, format!("{}{extra}", fleet.inventory(&[]))).unwrap();
    path
}

/// The `[[context]]` entries for `east` and `west`, written under east's config directory.
pub(crate) fn two_contexts(
    east: &Fleet,
    east_inv: &std::path::Path,
    west_inv: &std::path::Path,
) -> PathBuf {
    config_dir(
        east,
        east_inv,
        &format!(
            "[[context]]\nname = \"west\"\ninventory = {:?}\n",
            west_inv.display().to_string()
        ),
    )
}

fn reasons(node: &serde_json::Value) -> Vec<String> {
    node["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_site_is_judged_by_its_own_thresholds_expectations_and_majority() {
    // east: two nodes on 550.90.07, strict temperature limits, and [expect] driver 550.90.07.
    let east = Fleet::agents(2);
    let east_inv = inventory_with(
        &east,
        "east",
        "[thresholds]\ngpu_temp_warn_c = 33\ngpu_temp_crit_c = 36\n[expect]\ndriver = \"550.90.07\"\n",
    );
    // west: the same readings on tn01 and tn02 (same seeds), on 560.35.03; tn03 on east's driver. No limits of
    // its own, no [expect]: its majority decides, and across both sites 550.90.07 would be the majority.
    let west = Fleet::start(
        vec![
            on_driver(0, "560.35.03"),
            on_driver(1, "560.35.03"),
            Behaviour::Agent(Spec::node(2, 8)),
        ],
        Quirks::default(),
    );
    let west_inv = inventory_with(&west, "west", "");
    let config = two_contexts(&east, &east_inv, &west_inv);

    let out = snapshot_all(&east, &config, "json", &[]);
    let doc = json(&out);
    let logs = format!("{}\n{}", east.logs(), west.logs());
    assert_eq!(doc["summary"]["nodes_up"], 5, "{doc:#}\n{logs}");

    // GPU 7 of tn01 reads 37 °C on both sites: crit by east's limit of 36 °C, fine by west's (the device's).
    let east_tn01 = common::node(&doc, "east/tn01");
    assert_eq!(east_tn01["health"], "crit", "{east_tn01:#}");
    assert!(
        reasons(east_tn01).contains(&"GPU 7: GPU temperature 37 °C ≥ 36 °C".to_string()),
        "{east_tn01:#}"
    );
    assert!(
        reasons(east_tn01).contains(&"GPU 4: GPU temperature 34 °C ≥ 33 °C".to_string()),
        "{east_tn01:#}"
    );
    let west_tn01 = common::node(&doc, "west/tn01");
    assert_eq!(west_tn01["gpus"][7]["temp_c"], 37, "{west_tn01:#}");
    assert_eq!(
        west_tn01["health"], "ok",
        "not judged by east's rules: {west_tn01:#}"
    );
    assert_eq!(reasons(west_tn01), Vec::<String>::new());

    // Drift is counted within a site: west's majority runs 560.35.03, so its one node on 550.90.07 drifts,
    // though east's [expect] (and both sites together) say 550.90.07.
    let west_tn03 = common::node(&doc, "west/tn03");
    assert_eq!(west_tn03["health"], "warn", "{west_tn03:#}");
    assert_eq!(
        reasons(west_tn03),
        ["drift: driver 550.90.07, fleet runs 560.35.03"],
        "{west_tn03:#}"
    );
    assert_eq!(common::node(&doc, "west/tn02")["health"], "ok");
    let driver: Vec<&serde_json::Value> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["aspect"] == "driver")
        .collect();
    assert_eq!(driver.len(), 1, "east's nodes agree: {:#}", doc["drift"]);
    assert_eq!(driver[0]["site"], "west");
    assert_eq!(driver[0]["reference"], "fleet runs 560.35.03");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_tui_judges_each_sites_nodes_by_that_sites_thresholds() {
    let now = Instant::now();
    let nodes = "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n1\"\n";
    let east = fleetop::inventory::Inventory::parse(
        "east.toml",
        &format!("{nodes}[thresholds]\ngpu_temp_crit_c = 55\n"),
    )
    .unwrap();
    let west = fleetop::inventory::Inventory::parse("west.toml", nodes).unwrap();
    let merged = fleetop::inventory::Inventory::merge(&[
        ("east".into(), east.into()),
        ("west".into(), west.into()),
    ])
    .unwrap();
    let mut app = fleetop::tui::app::App::new(
        std::sync::Arc::new(merged),
        fleetop::tui::keymap::Keymap::default(),
        now,
    );
    app.wall_base = (now, wall());
    for node in [0, 1] {
        app.on_msg(msg(
            node,
            now - Duration::from_secs(1),
            sample((0..2).map(|i| gpu(i, 50, 60)).collect()),
        ));
    }
    app.tick(now);
    app.refresh();
    app.view = fleetop::tui::app::View::Nodes;
    let (screen, _) =
        crate::tui_common::draw(&mut app, &fleetop::tui::theme::Theme::default(), 100, 12);
    let row = |site: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(site) && l.contains("c01n1"))
            .unwrap_or_else(|| panic!("no {site} row: {screen}"))
            .to_string()
    };
    assert!(row("east").contains(" crit "), "{screen}");
    assert!(row("west").contains(" ok "), "{screen}");
    assert!(screen.contains("east     1 up of 1 · 1 crit"), "{screen}");
    assert!(screen.contains("west     1 up of 1 · 0 crit"), "{screen}");
}

#[test]
fn each_sites_own_drain_backend_is_read_back() {
    // east drains by a command (no read-back); west, the second site, through Slurm, where tn01 is drained. A
    // Slurm node named tn01 is west's: east's tn01 is not asked about there.
    let east = Fleet::agents(1);
    let east_inv = inventory_with(&east, "east", DRAINS_BY_COMMAND);
    let west = Fleet::agents(2);
    let west_inv = inventory_with(&west, "west", "[drain]\nbackend = \"slurm\"\n");
    let config = two_contexts(&east, &east_inv, &west_inv);
    let slurm = common::slurm::Slurm::with_nodes(&["tn01"]);
    let drain = slurm.client(
        "scontrol",
        &["update", "nodename=tn01", "state=drain", "reason=psu swap"],
    );
    assert!(drain.status.success(), "{}", text(&drain));

    let mut cmd = east.fleetop(&[
        "--context",
        "all",
        "snapshot",
        "--format",
        "json",
        "--timeout",
        "20",
    ]);
    cmd.env("XDG_CONFIG_HOME", &config)
        .env("SLURM_CONF", slurm.conf());
    let out = common::run_bounded(&mut cmd, Duration::from_secs(60));
    let doc = json(&out);
    let drained = common::node(&doc, "west/tn01");
    assert_eq!(drained["state"], "drained", "{drained:#}\n{}", text(&out));
    assert_eq!(drained["operations"]["state"], "drained");
    assert_eq!(drained["operations"]["reason"], "psu swap");
    assert_eq!(
        common::node(&doc, "west/tn02")["operations"]["reason"],
        "not known to Slurm"
    );
    let not_asked = common::node(&doc, "east/tn01");
    assert_eq!(not_asked["state"], "up", "{not_asked:#}");
    assert_eq!(not_asked["operations"], serde_json::Value::Null);
    assert_eq!(doc["summary"]["out_of_service"], 1);
    assert_eq!(doc["sites"][1]["summary"]["out_of_service"], 1);
}

#[test]
fn prometheus_text_across_sites_labels_every_series_with_its_site() {
    let (east, west) = (Fleet::agents(1), Fleet::agents(2));
    let (east_inv, west_inv) = (
        inventory_with(&east, "east", ""),
        inventory_with(&west, "west", ""),
    );
    let config = two_contexts(&east, &east_inv, &west_inv);
    let out = snapshot_all(&east, &config, "prom", &[]);
    let prom = String::from_utf8_lossy(&out.stdout).into_owned();
    common::promtool_check(&prom);
    // The fleet's gauges are each site's, with no unlabelled total to count twice.
    assert!(
        prom.contains("\nfleetop_fleet_nodes{site=\"east\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("\nfleetop_fleet_nodes{site=\"west\"} 2\n"),
        "{prom}"
    );
    assert!(!prom.contains("\nfleetop_fleet_nodes "), "{prom}");
    assert!(
        prom.contains(
            "fleetop_node_up{site=\"west\",node=\"west/tn02\",cabinet=\"west/t1\",tenant=\"\"} 1"
        ),
        "{prom}\n{}",
        text(&out)
    );
    // Every series is one site's, and none repeats.
    let series: Vec<&str> = prom
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
        .collect();
    assert!(series.iter().all(|s| s.contains("{site=\"")), "{prom}");
    let mut distinct = series.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), series.len(), "{prom}");
    let gpu = |site: &str| {
        format!("fleetop_gpu_utilization_ratio{{site=\"{site}\",node=\"{site}/tn01\",gpu=\"0\"")
    };
    assert!(
        prom.contains(&gpu("east")) && prom.contains(&gpu("west")),
        "{prom}"
    );
}
