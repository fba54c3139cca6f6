//! Debian's Prometheus and promtool, for the exporter and the Prometheus source.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{free_port, Killed};

/// Debian's `prometheus` on 127.0.0.1 with `config`, its data under `dir`: the server and its base URL, once it
/// answers `/-/ready` with 200 (not merely once its port accepts connections).
pub fn prometheus(dir: &Path, config: &Path) -> (Killed, String) {
    let web = free_port();
    let server = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) is installed by scripts/test"),
    );
    let base = format!("http://127.0.0.1:{web}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ureq::get(&format!("{base}/-/ready"))
        .timeout(Duration::from_secs(2))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "prometheus never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    (server, base)
}

/// Fails unless `promtool check metrics` accepts `text` as Prometheus exposition.
pub fn promtool_check(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by scripts/test");
    if let Some(mut stdin) = promtool.stdin.take() {
        std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap();
    }
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Waits, boundedly, until the store at `base` answers `query` with `series` series (at the protocol level:
/// stored once scraped).
pub fn wait_for_series(base: &str, query: &str, series: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = ureq::get(&format!("{base}/api/v1/query"))
            .query("query", query)
            .timeout(Duration::from_secs(2))
            .call()
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok())
            .and_then(|b| b["data"]["result"].as_array().map(Vec::len));
        if stored == Some(series) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never held {series} series of {query}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
