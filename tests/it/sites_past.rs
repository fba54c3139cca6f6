//! `snapshot --at TIME --context all`: each site answered as of TIME from its own Prometheus store, merged as
//! the live snapshot is; a site read over SSH keeps no history and says so — against a real Prometheus
//! scraping two agents and a fleet of real sshd nodes.

use crate::common;
use crate::contexts::{config_dir, fleetop, json, snapshot_all, text};

use std::time::{Duration, Instant};

#[test]
fn a_past_snapshot_asks_each_site_its_own_store() {
    let east = common::Fleet::agents(1);
    let east_inventory = east.write_inventory(&[]);
    let dir = east.dir.path().join("labs");
    std::fs::create_dir_all(&dir).unwrap();
    let (port1, port2) = (common::free_port(), common::free_port());
    let _gpu1 = common::exporter_agent(&dir, "gpu1", "GPU-lab1", 42, port1);
    let mut gpu2 = Some(common::exporter_agent(&dir, "gpu2", "GPU-lab2", 17, port2));
    let prometheus_yml = dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fleetop\n    \
             static_configs:\n      - targets: ['127.0.0.1:{port1}']\n        labels: {{node: gpu1}}\n      \
             - targets: ['127.0.0.1:{port2}']\n        labels: {{node: gpu2}}\n"
        ),
    )
    .unwrap();
    let (_prometheus, base) = common::prometheus(&dir, &prometheus_yml);
    common::wait_for_series(&base, "fleetop_gpu_power_limit_watts", 2);
    // Two sites, one node each, each read from the store by its own inventory.
    let mut contexts = String::new();
    for (site, node) in [("lab1", "gpu1"), ("lab2", "gpu2")] {
        let inventory = dir.join(format!("{site}.toml"));
        std::fs::write(
            &inventory,
            format!("[[cabinet]]\nname = \"r1\"\nnodes = \"{node}\"\n[[node]]\nname = \"{node}\"\ngpus = 1\n"),
        )
        .unwrap();
        contexts += &format!(
            "[[context]]\nname = \"{site}\"\ninventory = {:?}\n[context.source]\nkind = \"prometheus\"\nurl = \"{base}\"\n",
            inventory.display().to_string()
        );
    }
    let config = config_dir(&east, &east_inventory, &contexts);

    // A moment well inside the series' life; then lab2's agent stops, and its series with it.
    std::thread::sleep(Duration::from_secs(3));
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    gpu2.take();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = fleetop(
            &east,
            &config,
            None,
            &[
                "--context",
                "lab2",
                "snapshot",
                "--format",
                "json",
                "--timeout",
                "10",
            ],
        );
        if common::node(&json(&out), "gpu2")["state"] == "no-data" {
            break;
        }
        assert!(Instant::now() < deadline, "gpu2 never lost its series");
        std::thread::sleep(Duration::from_millis(500));
    }

    let at = humantime::format_rfc3339_seconds(before).to_string();
    let out = snapshot_all(&east, &config, "json", &["--at", &at]);
    let doc = json(&out);
    let lab1 = common::node(&doc, "lab1/gpu1");
    assert_eq!(lab1["state"], "up", "{doc:#}\n{}", text(&out));
    assert_eq!(lab1["gpus"][0]["util_pct"], 42);
    let lab2 = common::node(&doc, "lab2/gpu2");
    assert_eq!(lab2["state"], "up", "as it was at {at}: {lab2:#}");
    assert_eq!(lab2["gpus"][0]["util_pct"], 17);
    assert_eq!(lab2["site"], "lab2");
    // The SSH site's nodes keep no history: no data, saying why.
    let ssh = common::node(&doc, "east/tn01");
    assert_eq!(ssh["state"], "no-data", "{ssh:#}");
    assert!(
        ssh["error"]
            .as_str()
            .unwrap_or("")
            .contains("keep no history"),
        "{ssh:#}"
    );
    let sites: Vec<&str> = doc["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["site"].as_str())
        .collect();
    assert_eq!(sites, ["east", "lab1", "lab2"]);

    // Where no site has a store, the past is refused as for one site read over SSH.
    let ssh_only = config_dir(&east, &east_inventory, "");
    let out = fleetop(
        &east,
        &ssh_only,
        None,
        &["--context", "all", "snapshot", "--at", &at],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("--at needs a Prometheus source"),
        "{}",
        text(&out)
    );
}
