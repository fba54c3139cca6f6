//! The agent as an exporter, scraped by a real Prometheus server (Debian's `prometheus`, which scripts/test
//! installs with promtool) on 127.0.0.1: the values Prometheus stores are the ones the fake NVML reported,
//! and an agent that stops is seen as down.

use crate::common;

use std::time::{Duration, Instant};

use common::{free_port, Killed};
use serde_json::Value;

/// An agent on the fake NVML library serving `/metrics` on `port`, with one GPU at `util` %.
fn agent(dir: &std::path::Path, name: &str, port: u16, util: u32) -> Killed {
    common::exporter_agent(dir, name, &format!("GPU-{name}"), util, port)
}

/// An instant query's result vector, or why not.
fn query(base: &str, q: &str) -> Result<Vec<Value>, String> {
    let body: Value = ureq::get(&format!("{base}/api/v1/query"))
        .query("query", q)
        .timeout(Duration::from_secs(2))
        .call()
        .map_err(|e| e.to_string())?
        .into_json()
        .map_err(|e| e.to_string())?;
    body["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no result: {body}"))
}

/// Waits until `done` holds for the query's result; fails with the last result after `limit`.
fn wait_query(base: &str, q: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let last = query(base, q);
        if let Ok(r) = &last {
            if done(r) {
                return r.clone();
            }
        }
        assert!(Instant::now() < deadline, "{q}: {last:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_agents_and_sees_one_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (free_port(), free_port());
    let _first = agent(dir.path(), "aaa", a, 37);
    let mut second = Some(agent(dir.path(), "bbb", b, 81));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: fleetop\n    static_configs:\n      \
             - targets: ['127.0.0.1:{a}', '127.0.0.1:{b}']\n"
        ),
    )
    .unwrap();
    let (_prometheus, base) = common::prometheus(dir.path(), &config);

    let util = wait_query(
        &base,
        "fleetop_gpu_utilization_ratio",
        Duration::from_secs(30),
        |r| r.len() == 2,
    );
    let mut by_uuid: Vec<(String, String)> = util
        .iter()
        .map(|s| {
            (
                s["metric"]["uuid"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_uuid.sort();
    assert_eq!(
        by_uuid,
        [
            ("GPU-aaa".to_string(), "0.37".to_string()),
            ("GPU-bbb".to_string(), "0.81".to_string())
        ]
    );
    let health = query(&base, "fleetop_gpu_health").unwrap();
    assert!(health.iter().all(|s| s["value"][1] == "0"), "{health:?}");

    // The second agent stops: Prometheus marks its target down.
    second.take();
    let down = format!("up{{instance=\"127.0.0.1:{b}\"}} == 0");
    wait_query(&base, &down, Duration::from_secs(20), |r| r.len() == 1);
    let up = query(&base, &format!("up{{instance=\"127.0.0.1:{a}\"}}")).unwrap();
    assert_eq!(up[0]["value"][1], "1");
}
