//! Whose records a run writes and counts in a log two sites share (two fleets of real sshd nodes, each with a
//! node `tn01` whose GPU logged XID 79): a run with a site's inventory file and no context writes as that site;
//! two contexts of one site (`site = NAME`) share its records; a run with a file no context names marks its
//! records with the file, which count for that file alone.

use crate::common;
use crate::contexts::{fleetop, json, text};
use crate::sites_records::{reasons, site, snapshot};
use crate::sites_rules::two_contexts;

use std::path::Path;

use common::Fleet;

/// `--inventory west.toml` with no context, under a config whose one context names that file, runs as that
/// site: its reboot record carries `west`, so it quiets west's XID and leaves east's current (a record without
/// a site would count for both).
#[test]
fn a_run_with_a_site_s_inventory_and_no_context_writes_as_that_site() {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("audit.jsonl");
    let (east, east_inv) = site("east", 1, &log);
    let (west, west_inv) = site("west", 5, &log);
    let config = two_contexts(&east, &east_inv, &west_inv);

    let out = fleetop(
        &west,
        &config,
        None,
        &[
            "--inventory",
            west_inv.to_str().unwrap(),
            "reboot",
            "tn01",
            "--reason",
            "XID 79",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        written.matches(r#""site":"west""#).count(),
        2,
        "the intent and the outcome carry west: {written}"
    );

    let east_doc = snapshot(&east, &config, "east");
    let tn01 = common::node(&east_doc, "tn01");
    assert_eq!(tn01["health"], "crit", "{tn01:#}");
    let west_doc = snapshot(&east, &config, "west");
    let tn01 = common::node(&west_doc, "tn01");
    assert_ne!(tn01["health"], "crit", "{tn01:#}");
    assert!(reasons(tn01).contains("before the last reset"), "{tn01:#}");
    // No record without a site: the shared log is not warned of.
    let out = fleetop(&east, &config, None, &["--context", "east", "check"]);
    assert!(
        !text(&out).contains("share the audit log"),
        "{}",
        text(&out)
    );
    drop(west);
}

/// Two contexts over the same nodes (`site = "east"` on both) keep one site's records: a reboot under one
/// quiets the XID under the other, and under `--inventory east.toml` (both contexts name it, one site), not
/// west's.
#[test]
fn two_contexts_of_one_site_share_its_records() {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("audit.jsonl");
    let (east, east_inv) = site("east", 1, &log);
    let (west, west_inv) = site("west", 5, &log);
    let config = east.dir.path().join("xdg-config");
    std::fs::create_dir_all(config.join("fleetop")).unwrap();
    let context = |name: &str, inventory: &Path, site: &str| {
        format!(
            "[[context]]\nname = {name:?}\ninventory = {:?}\n{site}",
            inventory.display().to_string()
        )
    };
    std::fs::write(
        config.join("fleetop/config.toml"),
        [
            context("east-a", &east_inv, "site = \"east\"\n"),
            context("east-b", &east_inv, "site = \"east\"\n"),
            context("west", &west_inv, ""),
        ]
        .concat(),
    )
    .unwrap();

    let out = fleetop(
        &east,
        &config,
        None,
        &[
            "--context",
            "east-a",
            "reboot",
            "tn01",
            "--reason",
            "XID 79",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(written.matches(r#""site":"east""#).count(), 2, "{written}");

    let east_b = snapshot(&east, &config, "east-b");
    let tn01 = common::node(&east_b, "tn01");
    assert!(reasons(tn01).contains("before the last reset"), "{tn01:#}");
    let out = fleetop(
        &east,
        &config,
        None,
        &[
            "--inventory",
            east_inv.to_str().unwrap(),
            "snapshot",
            "--format",
            "json",
            "--timeout",
            "20",
        ],
    );
    let tn01 = common::node(&json(&out), "tn01").clone();
    assert!(reasons(&tn01).contains("before the last reset"), "{tn01:#}");
    let west_doc = snapshot(&east, &config, "west");
    let tn01 = common::node(&west_doc, "tn01");
    assert_eq!(tn01["health"], "crit", "{tn01:#}");
    drop(west);
}

/// `--inventory west.toml` with no context, under a config no context of which names that file, marks its
/// records with the file: they count for a run with that file, not for east's context sharing the log, and are
/// not warned of as records without a site.
#[test]
fn a_run_with_an_inventory_no_context_names_counts_for_that_file_only() {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("audit.jsonl");
    let (east, east_inv) = site("east", 1, &log);
    let (west, west_inv) = site("west", 5, &log);
    let config = crate::contexts::config_dir(&east, &east_inv, "");
    let by_file = |fleet: &Fleet, args: &[&str]| {
        let inv = west_inv.to_str().unwrap();
        fleetop(
            fleet,
            &config,
            None,
            &[&["--inventory", inv], args].concat(),
        )
    };
    let out = by_file(&west, &["reboot", "tn01", "--reason", "XID 79", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&log).unwrap();
    let mark = format!(
        r#""inventory":{}"#,
        serde_json::to_string(&std::fs::canonicalize(&west_inv).unwrap()).unwrap()
    );
    assert_eq!(written.matches(&mark).count(), 2, "{written}");
    assert!(!written.contains(r#""site""#), "{written}");

    let east_doc = snapshot(&east, &config, "east");
    let tn01 = common::node(&east_doc, "tn01");
    assert_eq!(tn01["health"], "crit", "{tn01:#}");
    let out = by_file(&west, &["snapshot", "--format", "json", "--timeout", "20"]);
    let tn01 = common::node(&json(&out), "tn01").clone();
    assert!(reasons(&tn01).contains("before the last reset"), "{tn01:#}");
    let out = fleetop(&east, &config, None, &["--context", "east", "check"]);
    assert!(!text(&out).contains("without a site"), "{}", text(&out));
}
