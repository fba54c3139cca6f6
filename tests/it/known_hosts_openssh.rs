//! Host keys side by side with OpenSSH: for each known_hosts file, real `ssh -o StrictHostKeyChecking=yes`
//! and fleetop must accept or refuse the same loopback sshd node.

use crate::common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{run_bounded, Behaviour, Fleet, Quirks, Spec};

/// `|1|salt|hash` for `name`, as `ssh-keygen -H` writes it.
fn hashed(name: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt: Vec<u8> = (0..20u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let key = openssl::pkey::PKey::hmac(&salt).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key).unwrap();
    signer.update(name.as_bytes()).unwrap();
    format!(
        "|1|{}|{}",
        b64.encode(&salt),
        b64.encode(signer.sign_to_vec().unwrap())
    )
}

fn key_of(fleet: &Fleet, file: &str) -> String {
    let text = std::fs::read_to_string(fleet.dir.path().join(file)).unwrap();
    let mut words = text.split_whitespace();
    format!("{} {}", words.next().unwrap(), words.next().unwrap())
}

fn ssh_accepts(fleet: &Fleet, known_hosts: &std::path::Path) -> bool {
    let node = &fleet.nodes[0];
    let out = run_bounded(
        Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "IdentityAgent=none",
                "-o",
                "CheckHostIP=no",
                "-o",
                "ConnectTimeout=5",
            ])
            .arg("-i")
            .arg(fleet.dir.path().join("client_key"))
            .args([
                "-p",
                &fleet.port.to_string(),
                "-l",
                &fleet.user,
                &node.addr,
                "true",
            ])
            .env("HOME", fleet.dir.path()),
        Duration::from_secs(30),
    );
    out.status.success()
}

fn fleetop_accepts(fleet: &Fleet, known_hosts: &std::path::Path) -> bool {
    let inventory = fleet.dir.path().join("kh.toml");
    let text = fleet.inventory(&[]).replace(
        &format!(
            "known_hosts = \"{}/known_hosts\"",
            fleet.dir.path().display()
        ),
        &format!("known_hosts = \"{}\"", known_hosts.display()),
    );
    std::fs::write(&inventory, text).unwrap();
    let out = fleet.snapshot(&inventory, "json", "10");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = doc["nodes"][0]["state"].as_str().unwrap().to_string();
    assert!(state == "up" || state == "host-key-mismatch", "{doc:#}");
    state == "up"
}

#[test]
fn fleetop_refuses_whatever_openssh_refuses() {
    let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 1))], Quirks::default());
    let host = key_of(&fleet, "host_key.pub");
    let other = key_of(&fleet, "other_host_key.pub");
    let name = format!("[{}]:{}", fleet.nodes[0].addr, fleet.port);
    let bare = fleet.nodes[0].addr.clone();
    let upper = host.replacen("ssh-ed25519", "SSH-ED25519", 1);
    let cases: Vec<(&str, String, bool)> = vec![
        ("exact entry", format!("{name} {host}\n"), true),
        ("wildcard", format!("* {host}\n"), true),
        (
            "wildcard with '?'",
            format!("[127.*.?.1]:{} {host}\n", fleet.port),
            true,
        ),
        ("hashed entry", format!("{} {host}\n", hashed(&name)), true),
        ("another key", format!("{name} {other}\n"), false),
        (
            "@revoked",
            format!("@revoked {name} {host}\n{name} {host}\n"),
            false,
        ),
        (
            "@revoked *",
            format!("@revoked * {host}\n{name} {host}\n"),
            false,
        ),
        (
            "hashed @revoked",
            format!("@revoked {} {host}\n{name} {host}\n", hashed(&name)),
            false,
        ),
        ("negated pattern", format!("!{name},{name} {host}\n"), false),
        (
            "hashed port-less entry against another key for the port",
            format!("{} {host}\n{name} {other}\n", hashed(&bare)),
            false,
        ),
        (
            "port-less entry, checked without the port",
            format!("{bare} {host}\n"),
            true,
        ),
        (
            "port-less entry with another key",
            format!("{bare} {other}\n"),
            false,
        ),
        (
            "hashed port-less @revoked",
            format!("@revoked {} {host}\n{bare} {host}\n", hashed(&bare)),
            false,
        ),
        ("upper-case key type", format!("{name} {upper}\n"), false),
        (
            "@cert-authority",
            format!("@cert-authority * {host}\n"),
            false,
        ),
        ("empty file", String::new(), false),
    ];
    let file = fleet.dir.path().join("known_hosts_case");
    let mut disagreements = Vec::new();
    for (what, text, expected) in &cases {
        std::fs::write(&file, text).unwrap();
        let ssh = ssh_accepts(&fleet, &file);
        let ours = fleetop_accepts(&fleet, &file);
        if ssh != *expected || ours != ssh {
            disagreements.push(format!(
                "{what}: ssh {ssh}, fleetop {ours}, expected {expected}\n{text}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
