//! Prometheus as the source, on real parts: Debian's `prometheus` on 127.0.0.1 scrapes real agents (`--listen`,
//! on the fake NVML, the same specs the sshd fleet's nodes use) and a static target serving a real
//! dcgm-exporter capture; `fleetop snapshot --source prometheus=URL` must show what SSH shows, a node without
//! series is "no data", and a target that stops turns stale, then no data.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, node, shared, Behaviour, Fleet, Killed, Quirks, Spec};
use serde_json::Value;

/// An agent serving `/metrics` for the fleet's node `i`, reading that node's spec.
fn exporter(fleet: &Fleet, i: usize, port: u16) -> Killed {
    let nodes = fleet.dir.path().join("nodes");
    let addr = &fleet.nodes[i].addr;
    Killed(
        Command::new(common::fleetop_bin())
            .args(["agent", "--interval", "200", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("FAKE_NVML_SPEC", nodes.join(format!("{addr}.spec")))
            .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
            .env("FLEETOP_KERNEL_LOG", fleet.dir.path().join("empty.kmsg"))
            .env("FLEETOP_SYSFS_ROOT", fleet.dir.path().join("nosysfs"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Serves the dcgm-exporter capture at any path, as a scrape target, with the recovery-action family a counters
/// file listing DCGM field 1523 adds (the capture's driver, 460, predates it): the capture's own labels, value 0.
fn dcgm_target(port: u16) {
    let capture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dcgm-exporter/tesla-t4.prom"
    ))
    .unwrap();
    let util = capture
        .lines()
        .find(|l| l.starts_with("DCGM_FI_DEV_GPU_UTIL{"))
        .unwrap();
    let body = format!(
        "{capture}# HELP DCGM_FI_DEV_GPU_RECOVERY_ACTION GPU recovery action.\n\
         # TYPE DCGM_FI_DEV_GPU_RECOVERY_ACTION gauge\n{}\n",
        util.replace("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_RECOVERY_ACTION")
    );
    let server = tiny_http::Server::http(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let _ = request.respond(tiny_http::Response::from_string(body.clone()));
        }
    });
}

fn query(base: &str, q: &str) -> Vec<Value> {
    ureq::get(&format!("{base}/api/v1/query"))
        .query("query", q)
        .timeout(Duration::from_secs(2))
        .call()
        .ok()
        .and_then(|r| r.into_json::<Value>().ok())
        .and_then(|b| b["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

struct Setup {
    fleet: Fleet,
    base: String,
    exporters: Vec<Option<Killed>>,
    _prometheus: Killed,
}

impl Setup {
    fn new() -> Setup {
        let fleet = Fleet::start(
            vec![
                // tn01's GPU 0: 18 NVLinks, link 11 down, link 7 with replay and CRC flit errors.
                Behaviour::Agent(
                    Spec::node(1, 2)
                        .with_line("nvlink 0 18")
                        .with_line("nvlink_down 0 11 0")
                        .with_line("nvlink_errors 0 7 2 0 5 0 0"),
                ),
                // tn02's GPU 1: its driver asks for a node reboot (NVML field 230).
                Behaviour::Agent(Spec::node(2, 2).with_recovery_action(1, 2)),
            ],
            Quirks::default(),
        );
        let ports = [free_port(), free_port()];
        let exporters = (0..2)
            .map(|i| Some(exporter(&fleet, i, ports[i])))
            .collect();
        let dcgm = free_port();
        dcgm_target(dcgm);
        let dir = fleet.dir.path();
        // Each agent's target carries the inventory name as `node`; the agent's own `node` label (this host's
        // name) is kept by Prometheus as `exported_node`.
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: fleetop\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{}']\n        labels: {{node: tn01}}\n      \
                 - targets: ['127.0.0.1:{}']\n        labels: {{node: tn02}}\n  - job_name: dcgm\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{dcgm}']\n",
                ports[0], ports[1]
            ),
        )
        .unwrap();
        let (prometheus, base) = common::prometheus(dir, &config);
        // Every family of both exporters stored once: four agent GPUs and the T4.
        let deadline = Instant::now() + Duration::from_secs(60);
        while query(
            &base,
            "fleetop_gpu_xid_errors or fleetop_gpu_power_limit_watts",
        )
        .len()
            < 4
            || query(&base, "DCGM_FI_DEV_FB_FREE").is_empty()
        {
            assert!(
                Instant::now() < deadline,
                "prometheus never stored both exporters' series"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Setup {
            fleet,
            base,
            exporters,
            _prometheus: prometheus,
        }
    }

    /// The fleet's inventory, its nodes sampled every second, plus the T4 host and a node nothing exports.
    fn inventory(&self) -> std::path::PathBuf {
        let path = self.fleet.dir.path().join("prom.toml");
        let text = self
            .fleet
            .inventory(&[])
            .replace("gpus = 8", "gpus = 2")
            .replace("interval_ms = 200", "interval_ms = 1000")
            .replace(
                "nodes = \"tn01,tn02\"",
                "nodes = \"tn01,tn02,tn09,424773df46e0\"",
            );
        let text = format!(
            "{text}[[node]]\nname = \"tn09\"\ngpus = 2\n\n[[node]]\nname = \"424773df46e0\"\ngpus = 1\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn snapshot(&self, inventory: &std::path::Path, source: Option<&str>) -> Value {
        let mut args = vec![
            "snapshot",
            "--inventory",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ];
        let flag;
        if let Some(s) = source {
            flag = format!("--source={s}");
            args.push(&flag);
        }
        let out = self.fleet.run(&args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

#[test]
fn prometheus_shows_what_ssh_shows_and_a_silent_node_is_no_data() {
    let mut s = Setup::new();
    let inventory = s.inventory();
    let through_prometheus = s.snapshot(&inventory, Some(&format!("prometheus={}", s.base)));

    // The same fleet over SSH: only the two nodes SSH can reach.
    let ssh_inventory = s.fleet.dir.path().join("ssh.toml");
    std::fs::write(
        &ssh_inventory,
        s.fleet.inventory(&[]).replace("gpus = 8", "gpus = 2"),
    )
    .unwrap();
    let through_ssh = s.snapshot(&ssh_inventory, None);

    for name in ["tn01", "tn02"] {
        let (p, h) = (node(&through_prometheus, name), node(&through_ssh, name));
        assert_eq!(p["state"], "up", "{p:#}");
        assert_eq!(p["source"], "prometheus");
        assert_eq!(p["health"], h["health"], "{p:#}\n{h:#}");
        for i in 0..2 {
            let (pg, hg) = (&p["gpus"][i], &h["gpus"][i]);
            assert!(
                pg["util_pct"].is_u64() && pg["power_w"].is_f64(),
                "values, not nulls: {pg:#}"
            );
            for field in [
                "index",
                "uuid",
                "util_pct",
                "mem_util_pct",
                "mem_used_mib",
                "mem_total_mib",
                "temp_c",
                "mem_temp_c",
                "power_w",
                "power_limit_w",
                "sm_clock_mhz",
                "ecc_uncorrected",
                "remapped_rows_pending",
                "recovery_action",
                "health",
            ] {
                assert_eq!(
                    pg[field], hg[field],
                    "{name} GPU {i} {field}: {pg:#}\n{hg:#}"
                );
            }
        }
    }

    // The driver's recovery action through the store: fleetop's family, judged as over SSH.
    let tn02 = node(&through_prometheus, "tn02");
    assert_eq!(
        tn02["gpus"][1]["recovery_action"], "node_reboot",
        "{tn02:#}"
    );
    assert_eq!(tn02["gpus"][0]["recovery_action"], Value::Null);
    assert_eq!(tn02["health"], "crit");
    assert!(
        tn02["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("GPU 1: driver asks for a node reboot")),
        "{tn02:#}"
    );

    // NVLink through the store: which links are down, and the counters summed over the links.
    let (p, h) = (
        &node(&through_prometheus, "tn01")["gpus"][0]["nvlink"],
        &node(&through_ssh, "tn01")["gpus"][0]["nvlink"],
    );
    assert_eq!(h["total"], 18, "{h:#}");
    assert_eq!(
        (&p["total"], &p["down"]),
        (&h["total"], &h["down"]),
        "{p:#}\n{h:#}"
    );
    assert_eq!(p["down"], serde_json::json!([11]));
    assert_eq!(
        p["summed"],
        serde_json::json!({"replay": 2, "recovery": 0, "crc_flit": 5, "crc_data": 0}),
        "{p:#}"
    );
    assert_eq!(h["errors"][0]["link"], 7, "{h:#}");
    assert!(
        node(&through_prometheus, "tn02")["gpus"][0]["nvlink"].is_null(),
        "a GPU without NVLink has none through the store either"
    );

    // dcgm-exporter's families, labelled by Hostname, as the capture has them.
    let t4 = node(&through_prometheus, "424773df46e0");
    assert_eq!(t4["state"], "up", "{t4:#}");
    let g = &t4["gpus"][0];
    assert_eq!(g["name"], "Tesla T4");
    assert_eq!(g["uuid"], "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e");
    assert_eq!(
        (g["util_pct"].as_u64(), g["temp_c"].as_u64()),
        (Some(0), Some(25))
    );
    assert_eq!(g["power_w"], 8.969);
    assert_eq!(g["sm_clock_mhz"], 300);
    assert_eq!(
        (g["mem_used_mib"].as_u64(), g["mem_total_mib"].as_u64()),
        (Some(0), Some(15109))
    );
    assert_eq!(g["xid"], serde_json::json!([]), "DCGM's last XID 0: none");
    assert_eq!(
        g["recovery_action"], "none",
        "dcgm-exporter's recovery-action family"
    );

    // Where the time went: each phase, and one line per query that answered series.
    let timed = s.fleet.run(&[
        "snapshot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--format",
        "json",
        "--timings",
        "--source",
        &format!("prometheus={}", s.base),
    ]);
    let report = String::from_utf8_lossy(&timed.stderr);
    for phase in [
        "start-up: configuration, inventory of 4 nodes",
        "collect: until every node answered",
        "judge:",
        "render Json:",
        "write",
        "total",
    ] {
        assert!(report.contains(phase), "{phase}: {report}");
    }
    let series_of = |query: &str| -> Option<u64> {
        let line = report
            .lines()
            .find(|l| l.ends_with(&format!("  {query}")))?;
        line.split_whitespace().nth(6)?.parse().ok()
    };
    assert_eq!(
        series_of("fleetop_gpu_utilization_ratio"),
        Some(4),
        "{report}"
    );
    assert_eq!(series_of("DCGM_FI_DEV_GPU_UTIL"), Some(1), "{report}");
    assert!(
        report.contains("queries that answered no series"),
        "{report}"
    );
    assert!(
        report.contains("merging every answer by node and GPU"),
        "{report}"
    );

    let silent = node(&through_prometheus, "tn09");
    assert_eq!(silent["state"], "no-data", "{silent:#}");
    assert_eq!(silent["health"], "crit");
    assert!(
        silent["error"]
            .as_str()
            .unwrap()
            .contains("no series in Prometheus"),
        "{silent:#}"
    );

    // History: tn02's exporter stops; now it has no series, but `--at` a moment ago shows it as it was.
    // A moment well inside the series' life (Prometheus began storing them only seconds ago).
    std::thread::sleep(Duration::from_secs(3));
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    let was = node(&through_prometheus, "tn02")["gpus"][0]["util_pct"].clone();
    s.exporters[1].take();
    let source = format!("prometheus={}", s.base);
    let deadline = Instant::now() + Duration::from_secs(30);
    while node(&s.snapshot(&inventory, Some(&source)), "tn02")["state"] != "no-data" {
        assert!(Instant::now() < deadline, "tn02 never lost its series");
        std::thread::sleep(Duration::from_millis(500));
    }
    let at = humantime::format_rfc3339_seconds(before).to_string();
    let out = s.fleet.run(&[
        "snapshot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--format",
        "json",
        "--source",
        &source,
        "--at",
        &at,
    ]);
    let then: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tn02 = node(&then, "tn02");
    assert_eq!(
        tn02["state"],
        "up",
        "at {at}: {tn02:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tn02["gpus"][0]["util_pct"], was);
    let refused = s.fleet.run(&[
        "snapshot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--at",
        "1h",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "--at needs a Prometheus source"
    );
}

#[test]
fn a_target_that_stops_turns_stale_then_no_data_while_following() {
    let mut s = Setup::new();
    // A few seconds of scrapes in the store before the view starts: its sparklines begin with them.
    std::thread::sleep(Duration::from_secs(4));
    let inv = Arc::new(fleetop::inventory::Inventory::load(&s.inventory()).unwrap());
    let source = fleetop::inventory::PrometheusSource::at(&s.base);
    let transport = fleetop::transport::prometheus::PrometheusTransport::new(source);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _following = fleetop::transport::Transport::follow(&transport, &inv, tx);
    let mut state = fleetop::fleet::FleetState::new(Arc::clone(&inv));
    let tn02 = inv.find_node("tn02").unwrap();
    let mut states = Vec::new();
    let mut watch = |state: &mut fleetop::fleet::FleetState,
                     limit: Duration,
                     until: fleetop::fleet::NodeState| {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(msg) = rx.try_recv() {
                state.apply(msg);
            }
            let now = state.state(tn02, Instant::now());
            if states.last() != Some(&now) {
                states.push(now);
            }
            if now == until {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tn02 went {states:?}, never {until:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    use fleetop::fleet::NodeState;
    watch(&mut state, Duration::from_secs(20), NodeState::Up);
    let tn01 = inv.find_node("tn01").unwrap();
    let filled = |state: &fleetop::fleet::FleetState| {
        state.nodes()[tn01]
            .history
            .first()
            .map_or(0, |h| h.util().iter().filter(|&&u| u != u8::MAX).count())
    };
    assert!(
        filled(&state) >= 3,
        "the store's past fills the sparkline at once: {} points",
        filled(&state)
    );
    s.exporters[1].take();
    watch(&mut state, Duration::from_secs(30), NodeState::NoData);
    assert!(
        states.ends_with(&[NodeState::Up, NodeState::Stale, NodeState::NoData]),
        "{states:?}"
    );
    let why = state.nodes()[tn02]
        .failure
        .as_ref()
        .map(|f| f.detail.clone())
        .unwrap_or_default();
    assert!(why.contains("its scrape target is down (up == 0)"), "{why}");
    let tn01 = inv.find_node("tn01").unwrap();
    assert_eq!(
        state.state(tn01, Instant::now()),
        NodeState::Up,
        "the other node is untouched"
    );
}

#[test]
fn the_tui_on_prometheus_shows_the_fleet_with_the_verdicts_ssh_gives() {
    let s = Setup::new();
    let inventory = s.inventory();
    let command = format!(
        "{} --inventory {} --source prometheus={}",
        shlex::try_quote(common::fleetop_bin().to_str().unwrap()).unwrap(),
        shlex::try_quote(inventory.to_str().unwrap()).unwrap(),
        s.base
    );
    let tmux = common::tmux::Tmux::start(&command, s.fleet.dir.path());
    // tn01, tn02 and the T4 host have series; tn09 has none.
    tmux.wait_for(&["3 up", "1 no data"], Duration::from_secs(30));
    tmux.keys(&["2"]);
    let table = tmux.wait_for(&["tn01", "tn02", "tn09"], Duration::from_secs(10));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{table}"))
            .to_string()
    };
    assert!(row("tn01").contains("prometheus"), "{table}");
    // tn01's GPU 0 has NVLink 11 down: the warning SSH gives, read from the store.
    assert!(row("tn01").contains("NVLink 11 down"), "{table}");
    let silent = row("tn09");
    assert!(
        silent.contains("no-data") && silent.contains("crit"),
        "{silent}"
    );
    // Its detail: the GPU line names the links, as over SSH.
    tmux.keys(&["g", "enter"]);
    tmux.wait_for(&["NVLink 17/18 active"], Duration::from_secs(10));
    tmux.keys(&["q"]);
}
