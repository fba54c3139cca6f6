//! Two sites sharing one audit log (and the history store beside it), each with a node `tn01` whose GPU logged
//! XID 79: a reboot audited under one site's context is that site's only — its XIDs become history, the other's
//! stay current —, and so are the store's rows (`history`, the repeat-offender flag) — against two fleets of
//! real sshd nodes, through the real runner.

use crate::common;
use crate::contexts::{fleetop, json, snapshot_all, text};
use crate::sites_rules::two_contexts;

use std::path::{Path, PathBuf};

use common::{Behaviour, Fleet, Quirks, Spec};
use serde_json::Value;

/// XID 79 on GPU 1 (PCI 0000:02:00), 5 s after boot: before any reboot audited now.
const XID_79: &str =
    "6,2001,5000000,-;NVRM: Xid (PCI:0000:02:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.";

/// One node `tn01` with XID 79 (GPUs of board seed `seed`), its inventory as `NAME.toml`, rebooting by a
/// command, writing the audit log `log`, a repeat offender at its first incident.
pub(crate) fn site(name: &str, seed: u32, log: &Path) -> (Fleet, PathBuf) {
    // Boards of their own on each site: the fake library's serial repeats the UUID's last four characters.
    let spec = Spec::node(seed, 2)
        .with_gpu_column(0, 1, &format!("GPU-board-{seed}{seed}00"))
        .with_gpu_column(1, 1, &format!("GPU-board-{seed}{seed}01"))
        .with_kernel_log(XID_79);
    let fleet = Fleet::start(vec![Behaviour::Agent(spec)], Quirks::default());
    let path = fleet.dir.path().join(format!("{name}.toml"));
    let extra = format!(
        "[reboot]\nbackend = \"command\"\ncommand = \"true {{node}}\"\nrequire_drained = false\n\
         [actions]\naudit_log = {:?}\n[repair]\nmax_repairs = 1\nrepair_window = \"30d\"\n",
        log.display().to_string()
    );
    std::fs::write(&path, format!("{}{extra}", fleet.inventory(&[]))).unwrap();
    (fleet, path)
}

pub(crate) fn snapshot(fleet: &Fleet, config: &Path, context: &str) -> Value {
    let out = fleetop(
        fleet,
        config,
        None,
        &[
            "--context",
            context,
            "snapshot",
            "--format",
            "json",
            "--timeout",
            "20",
        ],
    );
    json(&out)
}

pub(crate) fn reasons(node: &Value) -> String {
    node["reasons"].to_string()
}

/// The kinds and details of `history tn01` under `context`.
fn history(fleet: &Fleet, config: &Path, context: &str, key: &str) -> Vec<String> {
    let out = fleetop(
        fleet,
        config,
        None,
        &["--context", context, "history", key, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    json(&out)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["node"], e["kind"], e["detail"]))
        .collect()
}

#[test]
fn a_reboot_audited_for_one_site_counts_for_that_site_only() {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("audit.jsonl");
    let (east, east_inv) = site("east", 1, &log);
    let (west, west_inv) = site("west", 5, &log);
    let config = two_contexts(&east, &east_inv, &west_inv);

    // Before anything is audited, XID 79 is current on west's tn01 (east's is not looked at yet: its crit
    // would be an incident of its own in the store).
    let doc = snapshot(&east, &config, "west");
    let tn01 = common::node(&doc, "tn01");
    assert_eq!(tn01["health"], "crit", "{tn01:#}");
    // The shared log holds only records of a site: no warning of sharing it.
    let out = fleetop(&east, &config, None, &["--context", "east", "check"]);
    assert!(
        !text(&out).contains("share the audit log"),
        "{}",
        text(&out)
    );

    // east's tn01 rebooted through the runner, the action named with its site under `--context all`.
    let out = fleetop(
        &east,
        &config,
        None,
        &[
            "--context",
            "all",
            "reboot",
            "east/tn01",
            "--reason",
            "XID 79",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        written.matches(r#""site":"east""#).count(),
        2,
        "the intent and the outcome carry the site: {written}"
    );

    // The reboot is east's: its XID is history there, west's tn01 is still crit.
    let east_doc = snapshot(&east, &config, "east");
    let tn01 = common::node(&east_doc, "tn01");
    assert_ne!(tn01["health"], "crit", "{tn01:#}");
    assert!(reasons(tn01).contains("before the last reset"), "{tn01:#}");
    let west_doc = snapshot(&east, &config, "west");
    let tn01 = common::node(&west_doc, "tn01");
    assert_eq!(tn01["health"], "crit", "{tn01:#}");
    // west's crit tn01 is a repeat offender at its first incident (max_repairs = 1); east's, never crit, is
    // not: the store's rows of west's node are not east's.
    assert!(reasons(tn01).contains("repeat offender"), "{tn01:#}");
    let all = json(&snapshot_all(&east, &config, "json", &[]));
    let (east_tn01, west_tn01) = (
        common::node(&all, "east/tn01"),
        common::node(&all, "west/tn01"),
    );
    assert_ne!(east_tn01["health"], "crit", "{east_tn01:#}");
    assert!(
        !reasons(east_tn01).contains("repeat offender"),
        "{east_tn01:#}"
    );
    assert_eq!(west_tn01["health"], "crit", "{west_tn01:#}");
    assert!(
        reasons(west_tn01).contains("repeat offender"),
        "{west_tn01:#}"
    );

    // `history tn01`: the reboot under east, not under west; each site's health its own.
    let east_history = history(&east, &config, "east", "tn01");
    assert!(
        east_history
            .iter()
            .any(|e| e.contains("\"reboot succeeded")),
        "{east_history:#?}"
    );
    let west_history = history(&east, &config, "west", "tn01");
    assert!(
        !west_history
            .iter()
            .any(|e| e.contains("\"action\"") || e.contains("\"outcome\"")),
        "{west_history:#?}"
    );
    assert!(
        west_history.iter().any(|e| e.contains("\"crit:")),
        "{west_history:#?}"
    );
    let across = history(&east, &config, "all", "west/tn01");
    assert!(
        across.iter().all(|e| e.starts_with("\"west/tn01\"")) && !across.is_empty(),
        "{across:#?}"
    );

    // A record without a site (written before records carried one) counts for every site reading the log,
    // and is warned of.
    let siteless = r#"{"record":"outcome","id":"old","time":"TIME","operator":"ann","action":"reboot","node":"tn01","backend":"command","command":"true tn01","ok":true,"exit_status":0,"duration_ms":5,"detail":""}"#
        .replace("TIME", &humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string());
    std::fs::write(&log, format!("{written}{siteless}\n")).unwrap();
    let west_doc = snapshot(&east, &config, "west");
    let tn01 = common::node(&west_doc, "tn01");
    assert!(reasons(tn01).contains("before the last reset"), "{tn01:#}");
    let out = fleetop(&east, &config, None, &["--context", "east", "check"]);
    assert!(
        text(&out).contains("contexts east, west share the audit log")
            && text(&out).contains("1 record(s) without a site"),
        "{}",
        text(&out)
    );
    drop(west);
}

/// `history SERIAL` under one site follows the board to another site's node of the same name (a store both
/// share): that row names its site, so it does not read as this site's own `n1`.
#[test]
fn a_gpu_s_history_under_one_site_names_another_site_s_node() {
    use fleetop::store::{kind, Event, Store};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let inventory = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let text = format!(
            "[actions]\naudit_log = {:?}\n[[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\n",
            log.display().to_string()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let (east, west) = (inventory("east"), inventory("west"));
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("fleetop")).unwrap();
    std::fs::write(
        config.join("fleetop/config.toml"),
        format!(
            "[[context]]\nname = \"east\"\ninventory = {:?}\n[[context]]\nname = \"west\"\ninventory = {:?}\n",
            east.display().to_string(),
            west.display().to_string()
        ),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let row = |at: u64, site: &str, detail: &str| Event {
        gpu: Some(3),
        serial: Some("1650923001234".into()),
        site: Some(site.into()),
        ..Event::node(now - at, "n1", kind::HEALTH, detail)
    };
    let mut store = Store::open(&fleetop::store::beside(&log)).unwrap();
    store
        .append(&[
            row(2_000, "east", "crit: XID 79"),
            row(1_000, "west", "ok:"),
        ])
        .unwrap();
    let out = common::run_bounded(
        std::process::Command::new(common::fleetop_bin())
            .args([
                "--context",
                "east",
                "history",
                "1650923001234",
                "--format",
                "json",
            ])
            .env("XDG_CONFIG_HOME", &config)
            .env_remove("FLEETOP_CONTEXT")
            .env_remove("FLEETOP_INVENTORY"),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let nodes: Vec<String> = json(&out)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["node"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(nodes, ["west/n1 ok:", "n1 crit: XID 79"]);
}
