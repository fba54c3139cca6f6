//! Redfish reboots against a real emulator: sushy-tools' `sushy-emulator --fake` on 127.0.0.1.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Emulator {
    child: Child,
    port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the emulator with its own TMPDIR: the fake driver keeps power state there between runs.
fn start(state: &std::path::Path) -> Emulator {
    start_with(state, &[])
}

fn start_with(state: &std::path::Path, extra: &[&str]) -> Emulator {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("sushy-emulator")
        .args(["--fake", "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(extra)
        .env("TMPDIR", state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sushy-emulator (pip install sushy-tools; scripts/test installs it)");
    // Ready means answering Redfish, not just accepting TCP: a connect alone raced on a fresh machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut probe = ureq::AgentBuilder::new().timeout(Duration::from_secs(2));
    let mut scheme = "http";
    if let Some(i) = extra.iter().position(|a| *a == "--ssl-certificate") {
        let pem = std::fs::read(extra[i + 1]).unwrap();
        let tls = native_tls::TlsConnector::builder()
            .add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        probe = probe.tls_connector(std::sync::Arc::new(tls));
        scheme = "https";
    }
    let probe = probe.build();
    while probe
        .get(&format!("{scheme}://127.0.0.1:{port}/redfish/v1/Systems"))
        .call()
        .map_or(true, |r| r.status() != 200)
    {
        assert!(
            Instant::now() < deadline,
            "sushy-emulator never answered HTTP 200"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Emulator { child, port }
}

fn power_state(port: u16) -> String {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let systems: serde_json::Value = agent
        .get(&format!("http://127.0.0.1:{port}/redfish/v1/Systems"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let path = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    let system: serde_json::Value = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    system["PowerState"].as_str().unwrap_or("?").to_string()
}

fn fleetop(dir: &std::path::Path, port: u16, reset_type: &str) -> std::process::Output {
    fleetop_at(dir, &format!("http://127.0.0.1:{port}"), reset_type, "")
}

fn fleetop_at(
    dir: &std::path::Path,
    bmc: &str,
    reset_type: &str,
    extra: &str,
) -> std::process::Output {
    let inventory = dir.join(format!("inv-{reset_type}.toml"));
    std::fs::write(
        &inventory,
        format!(
            "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu01\"\n[[node]]\nname = \"gpu01\"\nbmc = \"{bmc}\"\n\
             [reboot]\nbackend = \"redfish\"\nrequire_drained = false\nredfish_reset_type = \"{reset_type}\"\n\
             redfish_credentials_env = \"BMC_CREDS\"\n{extra}"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args([
            "reboot",
            "gpu01",
            "--inventory",
            inventory.to_str().unwrap(),
        ])
        .env("BMC_CREDS", "admin:s3cret")
        .env("XDG_STATE_HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn redfish_reset_changes_the_emulated_power_state() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(dir.path());
    assert_eq!(
        power_state(emu.port),
        "Off",
        "the fake driver starts powered off"
    );

    // The fake BMC offers no PowerCycle: fleetop reads the allowed values and refuses before posting.
    let refused = fleetop(dir.path(), emu.port, "PowerCycle");
    assert_eq!(refused.status.code(), Some(1));
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(
        out.contains("does not offer ResetType PowerCycle") && out.contains("ForceRestart"),
        "{out}"
    );

    let done = fleetop(dir.path(), emu.port, "ForceOn");
    let out = String::from_utf8_lossy(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        out.contains("ComputerSystem.Reset ResetType=ForceOn"),
        "{out}"
    );
    // The fake driver applies the change after 1-11 s.
    let deadline = Instant::now() + Duration::from_secs(40);
    while power_state(emu.port) != "On" {
        assert!(Instant::now() < deadline, "the system never powered on");
        std::thread::sleep(Duration::from_millis(300));
    }
    let audit = std::fs::read_to_string(dir.path().join("fleetop/audit.jsonl")).unwrap();
    assert!(
        !audit.contains("s3cret"),
        "credentials never reach the audit log"
    );
}

#[test]
fn https_bmcs_are_trusted_through_the_ca_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("bmc.pem"), dir.path().join("bmc.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let emu = start_with(
        dir.path(),
        &[
            "--ssl-certificate",
            cert.to_str().unwrap(),
            "--ssl-key",
            key.to_str().unwrap(),
        ],
    );
    let bmc = format!("https://127.0.0.1:{}", emu.port);
    let untrusted = fleetop_at(dir.path(), &bmc, "ForceOn", "");
    assert_eq!(
        untrusted.status.code(),
        Some(1),
        "a self-signed BMC is not trusted by default"
    );
    let trusted = fleetop_at(
        dir.path(),
        &bmc,
        "ForceOn",
        &format!("redfish_ca_file = \"{}\"\n", cert.display()),
    );
    let out = String::from_utf8_lossy(&trusted.stdout);
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(out.contains("ResetType=ForceOn: HTTP"), "{out}");
}
