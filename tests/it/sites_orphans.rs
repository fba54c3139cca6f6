//! `fleetop check` over an audit log the contexts write: records of a site no `[[context]]` has (a context
//! renamed or removed: no reader counts its resets and acks) are warned of, their names escaped; records
//! without a site in a log two contexts of one site share (`site = NAME`) are not a sharing of sites.

use crate::common;
use crate::contexts::text;

use std::path::Path;

/// A minimal inventory `NAME.toml` in `dir` writing the audit log `log`.
fn inventory(dir: &Path, name: &str, log: &Path) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let body = format!(
        "[actions]\naudit_log = {:?}\n[[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\n",
        log.display().to_string()
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// `fleetop --context east check` under the config `contexts` (TOML of `[[context]]`s).
fn check(dir: &Path, contexts: &str) -> String {
    let config = dir.join("config");
    std::fs::create_dir_all(config.join("fleetop")).unwrap();
    std::fs::write(config.join("fleetop/config.toml"), contexts).unwrap();
    let out = common::run_bounded(
        std::process::Command::new(common::fleetop_bin())
            .args(["--context", "east", "check"])
            .env("XDG_CONFIG_HOME", &config)
            .env_remove("FLEETOP_CONTEXT")
            .env_remove("FLEETOP_INVENTORY"),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

fn ack(site: Option<&str>) -> String {
    let site = site.map_or(String::new(), |s| {
        format!(",\"site\":{}", serde_json::to_string(s).unwrap())
    });
    format!(
        "{{\"record\":\"ack\",\"time\":\"2026-01-01T00:00:00Z\",\"operator\":\"ann\",\"node\":\"n1\",\"reason\":\"r\",\"xids\":[\"GPU 1 XID 79\"]{site}}}\n"
    )
}

fn context(name: &str, inventory: &Path, extra: &str) -> String {
    format!(
        "[[context]]\nname = {name:?}\ninventory = {:?}\n{extra}",
        inventory.display().to_string()
    )
}

#[test]
fn records_of_a_site_no_context_has_are_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let (east, west) = (
        inventory(dir.path(), "east", &log),
        inventory(dir.path(), "west", &log),
    );
    let two_sites = [context("east", &east, ""), context("west", &west, "")].concat();

    std::fs::write(&log, [ack(Some("east")), ack(Some("west"))].concat()).unwrap();
    let out = check(dir.path(), &two_sites);
    assert!(!out.contains("no [[context]] has"), "{out}");

    // `north` renamed to `west`; a forged site name is escaped.
    std::fs::write(
        &log,
        [
            ack(Some("east")),
            ack(Some("north")),
            ack(Some("north")),
            ack(Some("x\u{1b}[2J")),
        ]
        .concat(),
    )
    .unwrap();
    let out = check(dir.path(), &two_sites);
    assert!(
        out.contains("holds records of sites no [[context]] has: north (2), x\\x1b[2J (1)"),
        "{out}"
    );
    assert!(!out.contains('\u{1b}'), "{out:?}");
    // `west` given `site = "north"` again counts them.
    std::fs::write(&log, [ack(Some("east")), ack(Some("north"))].concat()).unwrap();
    let renamed = [
        context("east", &east, ""),
        context("west", &west, "site = \"north\"\n"),
    ]
    .concat();
    let out = check(dir.path(), &renamed);
    assert!(!out.contains("no [[context]] has"), "{out}");
}

#[test]
fn records_without_a_site_in_a_log_of_one_site_s_contexts_are_not_a_shared_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let east = inventory(dir.path(), "east", &log);
    let west = inventory(dir.path(), "west", &log);
    std::fs::write(&log, ack(None)).unwrap();
    let one_site = [
        context("east", &east, ""),
        context("east-prom", &east, "site = \"east\"\n"),
    ]
    .concat();
    let out = check(dir.path(), &one_site);
    assert!(!out.contains("share the audit log"), "{out}");
    let listed = out
        .lines()
        .find(|l| l.contains("context east-prom"))
        .unwrap();
    assert!(listed.ends_with("site: east"), "{out}");
    let two_sites = [one_site, context("west", &west, "")].concat();
    let out = check(dir.path(), &two_sites);
    assert!(
        out.contains("contexts east, east-prom, west share the audit log")
            && out.contains("1 record(s) without a site"),
        "{out}"
    );
}
