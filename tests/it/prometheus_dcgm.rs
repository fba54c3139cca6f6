//! dcgm-exporter through a real Prometheus (Debian's `prometheus` on 127.0.0.1, scraping a target that serves
//! dcgm-exporter's exposition): a later last XID 13 does not hide the XID 79 before it, the power limit is the
//! enforced one, and the requested one only where the enforced family is absent; a fleet where most nodes
//! miss a GPU does not make the whole node drift from them.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, node};
use serde_json::Value;

/// dcgm-exporter's exposition for gpu01 (two GPUs, both power limits), gpu02 (one GPU of two, an exporter
/// whose counters file lists only the requested limit) and gpu03 (one GPU of two), gpu01's GPU 0 with last
/// XID `xid`.
fn exposition(xid: u32) -> String {
    let labels = |host: &str, gpu: u32| {
        format!(
            "gpu=\"{gpu}\",UUID=\"GPU-{host}-{gpu}\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",\
             Hostname=\"{host}\""
        )
    };
    let mut out = String::new();
    let mut family = |name: &str, values: &[(&str, u32, f64)]| {
        out.push_str(&format!(
            "# HELP {name} fleetop test.\n# TYPE {name} gauge\n"
        ));
        for (host, gpu, v) in values {
            out.push_str(&format!("{name}{{{}}} {v}\n", labels(host, *gpu)));
        }
    };
    let all = |v: f64| {
        [
            ("gpu01", 0, v),
            ("gpu01", 1, v),
            ("gpu02", 0, v),
            ("gpu03", 0, v),
        ]
    };
    family("DCGM_FI_DEV_GPU_UTIL", &all(40.0));
    family("DCGM_FI_DEV_GPU_TEMP", &all(45.0));
    family("DCGM_FI_DEV_POWER_USAGE", &all(300.5));
    family(
        "DCGM_FI_DEV_XID_ERRORS",
        &[
            ("gpu01", 0, f64::from(xid)),
            ("gpu01", 1, 0.0),
            ("gpu02", 0, 0.0),
        ],
    );
    family(
        "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
        &[("gpu01", 0, 500.0), ("gpu01", 1, 500.0)],
    );
    family(
        "DCGM_FI_DEV_POWER_MGMT_LIMIT",
        &[
            ("gpu01", 0, 700.0),
            ("gpu01", 1, 700.0),
            ("gpu02", 0, 650.0),
        ],
    );
    out
}

/// The value of `query`'s first series, once the store has one.
fn value(base: &str, query: &str) -> Option<String> {
    let body: Value = ureq::get(&format!("{base}/api/v1/query"))
        .query("query", query)
        .timeout(Duration::from_secs(2))
        .call()
        .ok()?
        .into_json()
        .ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_string)
}

/// Waits (a minute at most) until the store holds `want` as the value of `query`.
fn wait_for(base: &str, query: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while value(base, query).as_deref() != Some(want) {
        assert!(
            Instant::now() < deadline,
            "the store never held {query} = {want}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_later_last_xid_does_not_hide_an_xid_79_and_the_limit_is_the_enforced_one() {
    let dir = tempfile::tempdir().unwrap();
    let body = Arc::new(Mutex::new(exposition(79)));
    let port = free_port();
    let server = tiny_http::Server::http(("127.0.0.1", port)).unwrap();
    let served = Arc::clone(&body);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let text = served.lock().map(|b| b.clone()).unwrap_or_default();
            let _ = request.respond(tiny_http::Response::from_string(text));
        }
    });
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: dcgm\n    \
             static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let (_prometheus, base) = common::prometheus(dir.path(), &config);
    // XID 79 (the GPU fell off the bus) is stored, then dcgm-exporter's last XID becomes 13.
    let last = "DCGM_FI_DEV_XID_ERRORS{Hostname=\"gpu01\",gpu=\"0\"}";
    wait_for(&base, last, "79");
    *body.lock().unwrap() = exposition(13);
    wait_for(&base, last, "13");

    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        "[defaults]\ngpus_per_node = 2\n[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-03]\"\n",
    )
    .unwrap();
    let out = Command::new(common::fleetop_bin())
        .args(["snapshot", "--format", "json", "--inventory"])
        .arg(&inventory)
        .arg(format!("--source=prometheus={base}"))
        .env("HOME", dir.path())
        .env_remove("FLEETOP_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });

    let gpu01 = node(&doc, "gpu01");
    let g = &gpu01["gpus"][0];
    assert_eq!(g["xid"], serde_json::json!([13, 79]), "{gpu01:#}");
    assert_eq!(g["health"], "crit", "{g:#}");
    assert!(
        g["reasons"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("79")))),
        "{g:#}"
    );
    assert_eq!(gpu01["gpus"][1]["xid"], serde_json::json!([]));
    // DCGM field 164, the enforced limit, not field 160's requested 700 W.
    assert_eq!(g["power_limit_w"], 500.0, "{g:#}");
    // An exporter without the enforced family: the requested limit.
    let gpu02 = node(&doc, "gpu02");
    assert_eq!(gpu02["gpus"][0]["power_limit_w"], 650.0, "{gpu02:#}");

    // gpus_per_node = 2 and two of three nodes show one GPU: those drift from the inventory, not gpu01 from them.
    let drift = |n: &Value| -> Vec<String> {
        n["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .filter(|r| r.starts_with("drift:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(drift(gpu01), Vec::<String>::new(), "{gpu01:#}");
    assert_eq!(
        drift(gpu02),
        ["drift: 1 GPUs, inventory lists 2"],
        "{gpu02:#}"
    );
}
