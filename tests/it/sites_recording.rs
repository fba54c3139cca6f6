//! `fleetop record --context all`: one recorder per site, each into `DIR/SITE/`, and `snapshot --replay DIR --at
//! TIME --context all` reading them back as one fleet with a `site` column, as live — against two fleets of real
//! sshd nodes with a node name in common.

use crate::common;
use crate::contexts::{fleetop, json, text};
use crate::sites_rules::{inventory_with, two_contexts, DRAINS_BY_COMMAND};

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Fleet;
use fleetop::fleet::FleetState;
use fleetop::recording::Reader;

/// The last frame's time of the recording in `dir`.
fn last_frame(dir: &Path) -> Option<u64> {
    Reader::open(dir).ok()?.span().map(|(_, last)| last)
}

/// Whether every one of the `nodes` of the recording in `dir` has a sample as of `at`.
fn sampled_at(dir: &Path, nodes: usize, at: u64) -> bool {
    let Ok(reader) = Reader::open(dir) else {
        return false;
    };
    let mut state = FleetState::new(Arc::new(reader.inventory().clone()));
    for m in reader.messages(at, at) {
        let Ok((_, msg)) = m else {
            return false;
        };
        state.apply(msg);
    }
    state.nodes().iter().filter(|n| n.sample.is_some()).count() == nodes
}

#[test]
fn every_site_is_recorded_apart_and_replayed_as_one_fleet() {
    let east = Fleet::agents(2);
    let west = Fleet::agents(1);
    let config = two_contexts(
        &east,
        &inventory_with(&east, "east", DRAINS_BY_COMMAND),
        &inventory_with(&west, "west", DRAINS_BY_COMMAND),
    );
    let out = east.dir.path().join("recording");
    let child = east
        .fleetop(&["--context", "all", "record", "--segment", "2s", "--out"])
        .arg(&out)
        .env("XDG_CONFIG_HOME", &config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: until both sites' recordings hold a sample of each of their nodes, or a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    // The time read back is one both recordings reach, each node of both sampled by then (one site's recorder
    // may start sampling after the other's last frame).
    let at = loop {
        let ends = (last_frame(&out.join("east")), last_frame(&out.join("west")));
        if let (Some(e), Some(w)) = ends {
            let at = e.min(w);
            if sampled_at(&out.join("east"), 2, at) && sampled_at(&out.join("west"), 1, at) {
                break at;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no sample of every node of both sites within a minute"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let ended = common::wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&ended.stderr).into_owned();
    assert!(ended.status.success(), "{stderr}");
    assert!(
        stderr.contains("recording 2 nodes into") && stderr.contains("recording 1 nodes into"),
        "{stderr}"
    );

    let time = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(at))
        .to_string();
    let replay = |format: &str| {
        let dir = out.display().to_string();
        let args = [
            "--context",
            "all",
            "--replay",
            &dir,
            "snapshot",
            "--format",
            format,
            "--at",
            &time,
        ];
        let snap = fleetop(&east, &config, None, &args);
        assert_eq!(snap.status.code(), Some(0), "{}", text(&snap));
        snap
    };
    let doc = json(&replay("json"));
    assert_eq!(doc["taken_at"], time.as_str());
    let names: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["east/tn01", "east/tn02", "west/tn01"], "{doc:#}");
    for name in names {
        let node = common::node(&doc, name);
        assert_eq!(node["state"], "up", "{node:#}");
        assert_eq!(node["site"], name.split('/').next().unwrap(), "{node:#}");
    }
    // The two tn01 are two nodes with their own GPUs (the fleets' fake NVMLs are seeded alike, so by index).
    assert_eq!(
        common::node(&doc, "west/tn01")["gpus"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    let csv = String::from_utf8(replay("csv").stdout).unwrap();
    assert!(csv.starts_with("site,"), "{csv}");
    assert!(
        csv.lines().any(|l| l.starts_with("west,west/tn01,")),
        "{csv}"
    );
    let table = String::from_utf8(replay("table").stdout).unwrap();
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("SITE")),
        "{table}"
    );

    // A time outside the span both recordings cover names each site's own span.
    let dir = out.display().to_string();
    let later = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + Duration::from_millis(at + 3_600_000),
    )
    .to_string();
    let outside = fleetop(
        &east,
        &config,
        None,
        &[
            "--context",
            "all",
            "--replay",
            &dir,
            "snapshot",
            "--at",
            &later,
        ],
    );
    assert_eq!(outside.status.code(), Some(3), "{}", text(&outside));
    assert!(
        text(&outside).contains("east: ") && text(&outside).contains("west: "),
        "{}",
        text(&outside)
    );

    // The ledger reads one site's recording: across sites it is refused, saying which to give it and under which
    // context (another's would count its resets for this site's nodes).
    let dir = out.display().to_string();
    let report = fleetop(
        &east,
        &config,
        None,
        &["--context", "all", "--replay", &dir, "report"],
    );
    assert_eq!(report.status.code(), Some(3), "{}", text(&report));
    assert!(
        text(&report).contains("--context SITE --replay DIR/SITE"),
        "{}",
        text(&report)
    );

    // A site whose recording is missing is an error naming its directory, not a fleet without it.
    std::fs::remove_dir_all(out.join("west")).unwrap();
    let snap = fleetop(
        &east,
        &config,
        None,
        &[
            "--context",
            "all",
            "--replay",
            &dir,
            "snapshot",
            "--at",
            &time,
        ],
    );
    assert_eq!(snap.status.code(), Some(3), "{}", text(&snap));
    assert!(text(&snap).contains("west"), "{}", text(&snap));
}
