//! `fleetop rma` on a real sshd fleet: the bundle's members and what they hold, its bounds against a node that
//! prints a huge and hostile `nvidia-smi -q`, a node whose GPU cannot be read (the manifest says why, exit 1,
//! the bundle still written), and an existing file kept without `--force`.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::common::{run_bounded, Behaviour, Fleet, Quirks, Spec};
use serde_json::Value;

/// XID 79 on the GPU at PCI 0000:02:00 (GPU 1 of the fake library), and a line about another device.
const KMSG: &str = "6,2001,5000000,-;NVRM: Xid (PCI:0000:02:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n\
6,2002,5000001,-;pci 0000:03:00.0: something about another GPU\n";

fn spec() -> Spec {
    Spec::node(1, 2).with_gpu_column(1, 1, "GPU-board-7001")
}

fn node_file(fleet: &Fleet, i: usize, ext: &str, bytes: &[u8]) {
    let path = fleet
        .dir
        .path()
        .join("nodes")
        .join(format!("{}.{ext}", fleet.nodes[i].addr));
    std::fs::write(path, bytes).unwrap();
}

fn rma(fleet: &Fleet, inventory: &Path, node: &str, out: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "rma",
        "--inventory",
        inventory.to_str().unwrap(),
        node,
        "--gpu",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let done = run_bounded(&mut fleet.fleetop(&args), Duration::from_secs(120));
    (
        done.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        ),
    )
}

/// The bundle's members, by name without the folder, with their text.
fn members(path: &Path) -> Vec<(String, String)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            (name.split_once('/').unwrap().1.to_string(), text)
        })
        .collect()
}

fn member<'a>(all: &'a [(String, String)], name: &str) -> &'a str {
    &all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| {
            panic!(
                "no {name} in {:?}",
                all.iter().map(|m| &m.0).collect::<Vec<_>>()
            )
        })
        .1
}

#[test]
fn a_gpu_s_bundle_holds_its_evidence_and_is_not_overwritten() {
    let fleet = Fleet::start(vec![Behaviour::Agent(spec())], Quirks::default());
    let inventory = fleet.write_inventory(&[]);
    let name = fleet.nodes[0].name.clone();
    node_file(&fleet, 0, "spec", spec().text.as_bytes());
    node_file(&fleet, 0, "kmsg", KMSG.as_bytes());
    // A snapshot first: the store beside the audit log learns the GPU and its XID.
    assert_eq!(
        fleet.snapshot(&inventory, "json", "20").status.code(),
        Some(2)
    );
    let out = fleet.dir.path().join("gpu1.tar.gz");
    let (code, said) = rma(&fleet, &inventory, &name, &out, &[]);
    assert_eq!(code, 0, "{said}");
    let all = members(&out);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "identity.json",
            "nvidia-smi-q.txt",
            "kernel-log.txt",
            "history.json",
            "manifest.json"
        ],
        "validation.txt is absent: none was audited"
    );
    let identity: Value = serde_json::from_str(member(&all, "identity.json")).unwrap();
    assert_eq!(identity["uuid"], "GPU-board-7001");
    assert_eq!(identity["serial"], "16527001");
    assert_eq!(identity["gpu"], 1);
    let bus = identity["pci_bus_id"].as_str().unwrap().to_string();
    assert!(identity["driver"].is_string(), "{identity}");
    // nvidia-smi was asked about this GPU by its bus id, on the node.
    assert!(member(&all, "nvidia-smi-q.txt").contains(&format!("GPU {bus}")));
    let kernel = member(&all, "kernel-log.txt");
    assert!(kernel.contains("Xid (PCI:0000:02:00): 79"), "{kernel}");
    assert!(
        !kernel.contains("another GPU"),
        "only its own lines: {kernel}"
    );
    let history: Value = serde_json::from_str(member(&all, "history.json")).unwrap();
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"xid") && kinds.contains(&"seen"),
        "{kinds:?}"
    );
    let manifest: Value = serde_json::from_str(member(&all, "manifest.json")).unwrap();
    assert_eq!(manifest["complete"], true, "{manifest:#}");
    let validation = manifest["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "validation.txt")
        .unwrap();
    assert_eq!(validation["status"], "none");
    // Nothing of the operator's environment: not the home directory (the fleet's here), not a key.
    for (n, text) in &all {
        assert!(!text.contains("PRIVATE KEY"), "{n}");
        assert!(
            !text.contains(&fleet.dir.path().display().to_string()),
            "{n} names the operator's home: {text}"
        );
    }
    // An existing bundle is kept without --force, replaced with it.
    let before = std::fs::read(&out).unwrap();
    let (code, said) = rma(&fleet, &inventory, &name, &out, &[]);
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("--force"), "{said}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let (code, said) = rma(&fleet, &inventory, &name, &out, &["--force"]);
    assert_eq!(code, 0, "{said}");
}

#[test]
fn a_huge_hostile_report_is_bounded_and_escaped_and_a_failing_node_is_a_verdict() {
    let fleet = Fleet::start(
        vec![Behaviour::Agent(spec()), Behaviour::Nothing],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    node_file(&fleet, 0, "spec", spec().text.as_bytes());
    // 2 MB of report, with terminal escapes, a bidi override and bytes that are not UTF-8.
    let mut hostile = Vec::new();
    while hostile.len() < 2 * 1024 * 1024 {
        hostile.extend_from_slice(
            b"Product Name : \x1b]0;owned\x07\x1b[2J \xe2\x80\xae evil \xff\xfe\n",
        );
    }
    node_file(&fleet, 0, "smi-q", &hostile);
    let out = fleet.dir.path().join("hostile.tar.gz");
    let (code, said) = rma(&fleet, &inventory, &fleet.nodes[0].name, &out, &[]);
    assert_eq!(code, 0, "truncated is collected: {said}");
    let all = members(&out);
    let smi = member(&all, "nvidia-smi-q.txt");
    assert!(smi.len() <= 256 * 1024, "{}", smi.len());
    assert!(
        !smi.contains('\u{1b}') && !smi.contains('\u{7}') && !smi.contains('\u{202e}'),
        "escaped"
    );
    assert!(smi.contains("Product Name"));
    let manifest: Value = serde_json::from_str(member(&all, "manifest.json")).unwrap();
    assert_eq!(
        manifest["members"][1]["status"], "truncated",
        "{manifest:#}"
    );
    let total: usize = all.iter().map(|(_, t)| t.len()).sum();
    assert!(total <= 1024 * 1024 + 16 * 1024, "{total}");

    // A node whose GPUs cannot be read: the bundle is written, the manifest says what failed and why.
    let out = fleet.dir.path().join("down.tar.gz");
    let (code, said) = rma(&fleet, &inventory, &fleet.nodes[1].name, &out, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("FAILED"), "{said}");
    let all = members(&out);
    let manifest: Value = serde_json::from_str(member(&all, "manifest.json")).unwrap();
    assert_eq!(manifest["complete"], false, "{manifest:#} {all:?}");
    let identity = &manifest["members"][0];
    assert_eq!(
        (identity["name"].as_str(), identity["status"].as_str()),
        (Some("identity.json"), Some("failed")),
        "{said} {manifest:#}"
    );
    assert!(
        identity["detail"]
            .as_str()
            .unwrap()
            .starts_with("the node gave no sample"),
        "{manifest:#}"
    );
    assert_eq!(manifest["members"][1]["status"], "failed");
    assert!(all.iter().all(|(n, _)| n != "identity.json"));
}
