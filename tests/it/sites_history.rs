//! The history store under `--context all`: each site's nodes are remembered in their own site's store, by
//! their own names (so `--context SITE` reads the same history), and `history SITE/NODE` reads it back —
//! against two fleets of real sshd nodes.

use crate::common;
use crate::contexts::{config_dir, fleetop, json, snapshot_all, text};

use std::path::{Path, PathBuf};

use common::{Behaviour, Fleet, Quirks, Spec};

/// `fleet`'s inventory with its own audit log (and so its own store, beside it) in its own directory.
fn own_store_inventory(fleet: &Fleet) -> PathBuf {
    let path = fleet.dir.path().join("site.toml");
    let extra = format!(
        "[actions]\naudit_log = \"{}/audit.jsonl\"\n",
        fleet.dir.path().display()
    );
    std::fs::write(&path, format!("{}{extra}", fleet.inventory(&[]))).unwrap();
    path
}

/// The GPU UUIDs of a `history --format json` answer, and the node names it gives.
fn uuids_and_nodes(doc: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let events = doc["events"].as_array().cloned().unwrap_or_default();
    let field = |k: &str| -> Vec<String> {
        let mut v: Vec<String> = events
            .iter()
            .filter_map(|e| e[k].as_str().map(String::from))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    (field("uuid"), field("node"))
}

fn history(fleet: &Fleet, config: &Path, context: &str, key: &str) -> serde_json::Value {
    let out = fleetop(
        fleet,
        config,
        None,
        &["--context", context, "history", key, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    json(&out)
}

#[test]
fn each_sites_nodes_are_remembered_in_its_own_store() {
    let east = Fleet::agents(1);
    // west's GPUs are other GPUs than east's (seed 5: UUIDs GPU-0005-…), on a node of the same name.
    let west = Fleet::start(vec![Behaviour::Agent(Spec::node(5, 8))], Quirks::default());
    let (east_inv, west_inv) = (own_store_inventory(&east), own_store_inventory(&west));
    let config = config_dir(
        &east,
        &east_inv,
        &format!(
            "[[context]]\nname = \"west\"\ninventory = {:?}\n",
            west_inv.display().to_string()
        ),
    );
    let out = snapshot_all(&east, &config, "json", &[]);
    assert_eq!(json(&out)["summary"]["nodes_up"], 2, "{}", text(&out));
    assert!(east.dir.path().join("fleet.sqlite").exists());
    assert!(west.dir.path().join("fleet.sqlite").exists());

    // Each site's own store holds its own node by its own name, as `--context SITE` reads it.
    let (uuids, nodes) = uuids_and_nodes(&history(&east, &config, "east", "tn01"));
    assert_eq!(nodes, ["tn01"]);
    assert_eq!(uuids.len(), 8, "{uuids:?}");
    assert!(
        uuids.iter().all(|u| u.starts_with("GPU-0000-")),
        "{uuids:?}"
    );
    let (uuids, nodes) = uuids_and_nodes(&history(&east, &config, "west", "tn01"));
    assert_eq!(nodes, ["tn01"]);
    assert!(
        uuids.iter().all(|u| u.starts_with("GPU-0005-")),
        "{uuids:?}"
    );

    // Across sites, a node is named with its site and read from that site's store.
    let (uuids, nodes) = uuids_and_nodes(&history(&east, &config, "all", "west/tn01"));
    assert_eq!(nodes, ["west/tn01"]);
    assert_eq!(uuids.len(), 8, "{uuids:?}");
    assert!(
        uuids.iter().all(|u| u.starts_with("GPU-0005-")),
        "{uuids:?}"
    );
    // A GPU is looked for in every site's store.
    let (_, nodes) = uuids_and_nodes(&history(&east, &config, "all", "GPU-0005-0003"));
    assert_eq!(nodes, ["west/tn01"]);
    let (_, nodes) = uuids_and_nodes(&history(&east, &config, "all", "GPU-0000-0003"));
    assert_eq!(nodes, ["east/tn01"]);

    let out = fleetop(
        &east,
        &config,
        None,
        &["--context", "all", "history", "north/tn01"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no site \"north\""), "{}", text(&out));
}
