//! The store on a real SQLite file: history across a GPU's move, incidents, the row cap, and two writer
//! processes at once.

use std::path::Path;
use std::time::Duration;

use super::query::Sighting;
use super::sqlite::MAX_FIELD_CHARS;
use super::*;

/// What a reader under the `[[context]]` `site` (no inventory file) counts.
pub(super) fn at(site: Option<&str>) -> Scope<'_> {
    Scope::new(site, None)
}

fn gpu(node: &str, serial: &str, health: &str) -> Sighting {
    Sighting {
        node: node.into(),
        gpu: Some(3),
        serial: Some(serial.into()),
        uuid: Some(format!("GPU-{serial}")),
        health: Some(health.into()),
        reasons: if health == "ok" {
            vec![]
        } else {
            vec!["XID 79".into()]
        },
        xids: vec![],
    }
}

#[test]
fn a_gpu_s_history_follows_it_to_another_node_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("fleet.sqlite")).unwrap();
    let mut on_a = gpu("c001n1", "1650923001234", "crit");
    on_a.xids = vec![(79, 2, 1_000, "GPU has fallen off the bus.".into())];
    store.observe(&[on_a.clone()], 2_000, at(None)).unwrap();
    // The same pass again adds nothing: same health, same XID, same node.
    assert_eq!(store.observe(&[on_a], 3_000, at(None)).unwrap(), 0);
    store
        .observe(&[gpu("c007n2", "1650923001234", "ok")], 10_000, at(None))
        .unwrap();
    let h = store.history("1650923001234", 0, at(None)).unwrap();
    let kinds: Vec<(&str, &str)> = h
        .iter()
        .map(|e| (e.kind.as_str(), e.node.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("moved", "c007n2"),
            ("health", "c007n2"),
            ("seen", "c001n1"),
            ("health", "c001n1"),
            ("xid", "c001n1"),
        ]
    );
    assert_eq!(h[0].detail, "from c001n1 to c007n2");
    // The new node's history carries the GPU's past on the old one; the UUID finds the same.
    assert_eq!(store.history("c007n2", 0, at(None)).unwrap().len(), 5);
    assert_eq!(store.history("GPU-1650923001234", 0, at(None)).unwrap(), h);
    assert_eq!(
        store
            .history("1650923001234", 5_000, at(None))
            .unwrap()
            .len(),
        2
    );
    assert!(store.history("c999n9", 0, at(None)).unwrap().is_empty());
    let inc = store.incidents(0, at(None)).unwrap();
    assert_eq!(inc.gpus.get("GPU-1650923001234"), Some(&1), "{inc:?}");
}

#[test]
fn the_oldest_events_go_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_capped(&dir.path().join("fleet.sqlite"), 50).unwrap();
    for round in 0..10u64 {
        let events: Vec<Event> = (0..20)
            .map(|i| {
                Event::node(
                    round * 100 + i,
                    "c001n1",
                    kind::ACTION,
                    &format!("drain {i}"),
                )
            })
            .collect();
        store.append(&events).unwrap();
    }
    assert_eq!(store.len().unwrap(), 50);
    let h = store.history("c001n1", 0, at(None)).unwrap();
    assert_eq!(h.first().map(|e| e.time_ms), Some(919));
    assert_eq!(h.last().map(|e| e.time_ms), Some(710));
    let long = "x".repeat(10_000);
    store
        .append(&[Event::node(5_000, "c001n1", kind::ACK, &long)])
        .unwrap();
    assert_eq!(
        store.history("c001n1", 5_000, at(None)).unwrap()[0]
            .detail
            .len(),
        MAX_FIELD_CHARS
    );
}

/// Set in the child processes of [`two_writer_processes_at_once_lose_nothing`] (who migrate an old store at once).
const WRITER_ENV: &str = "FLEETOP_TEST_STORE_WRITER";

#[test]
fn two_writer_processes_at_once_lose_nothing() {
    if let Some(spec) = std::env::var_os(WRITER_ENV) {
        // A child: write 200 events one transaction each, as a TUI and a repair would.
        let spec = spec.to_string_lossy().into_owned();
        let (path, node) = spec.split_once('|').unwrap();
        let mut store = Store::open(Path::new(path)).unwrap();
        for i in 0..200 {
            store
                .append(&[Event::node(i, node, kind::ACTION, &format!("drain {i}"))])
                .unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    // A store the previous version wrote: both writers add the site column and its index at once.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(PREVIOUS_SCHEMA)
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["c001n1", "c002n1"]
        .iter()
        .map(|node| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "store::tests::two_writer_processes_at_once_lose_nothing",
                    "--test-threads=1",
                ])
                .env(WRITER_ENV, format!("{}|{node}", path.display()))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        // Bounded: each child does 200 small commits; a hung one fails the test rather than waiting forever.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "a writer failed: {status}");
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                panic!("a writer did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.history("c001n1", 0, at(None)).unwrap().len(), 200);
    assert_eq!(store.history("c002n1", 0, at(None)).unwrap().len(), 200);
    let ok: String = store
        .conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Two sites sharing one store, each with a node `n1`: each site's rows are its own (history, incidents, the
/// last health a transition is measured from); a row without a site (written before rows carried one) counts
/// for each; a reader with no context counts only those.
#[test]
fn each_site_reads_its_own_rows_and_those_without_a_site() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    // A store written before rows carried their site: the column is added when it is opened.
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
                 node TEXT NOT NULL, gpu INTEGER, serial TEXT, uuid TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL);
             INSERT INTO events (time_ms, node, kind, detail) VALUES (500, 'n1', 'action', 'reboot by ann');",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let node = |health: &str| Sighting {
        node: "n1".into(),
        health: Some(health.into()),
        ..Sighting::default()
    };
    store
        .observe(&[node("crit")], 1_000, at(Some("east")))
        .unwrap();
    // west's n1 is ok: a transition of its own, not measured from east's crit.
    assert_eq!(
        store
            .observe(&[node("ok")], 1_000, at(Some("west")))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .observe(&[node("crit")], 2_000, at(Some("east")))
            .unwrap(),
        0
    );
    let mut east_reset = Event::node(3_000, "n1", kind::OUTCOME, "reset succeeded");
    east_reset.site = Some("east".into());
    store.append(&[east_reset]).unwrap();

    let details = |site: Option<&str>| -> Vec<String> {
        let mut d: Vec<String> = store
            .history("n1", 0, at(site))
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.site.as_deref().unwrap_or("-"), e.detail))
            .collect();
        d.sort();
        d
    };
    assert_eq!(
        details(Some("east")),
        ["- reboot by ann", "east crit:", "east reset succeeded"]
    );
    assert_eq!(details(Some("west")), ["- reboot by ann", "west ok:"]);
    assert_eq!(details(None), ["- reboot by ann"]);
    assert_eq!(
        store
            .incidents(0, at(Some("east")))
            .unwrap()
            .nodes
            .get("n1"),
        Some(&1)
    );
    assert!(store
        .incidents(0, at(Some("west")))
        .unwrap()
        .nodes
        .is_empty());
    let span = |site| {
        store
            .between(0, 10_000, &[kind::OUTCOME], at(site))
            .unwrap()
            .len()
    };
    assert_eq!((span(Some("east")), span(Some("west"))), (1, 0));
}

/// The schema the previous version opens a store with (its `prepare`, verbatim): one-row-per-event without the
/// site, under the name `events_once`.
pub(super) const PREVIOUS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
         id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, node TEXT NOT NULL, gpu INTEGER,
         serial TEXT, uuid TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL);
     CREATE UNIQUE INDEX IF NOT EXISTS events_once
         ON events (time_ms, node, kind, detail, IFNULL(gpu, -1), IFNULL(serial, ''), IFNULL(uuid, ''));
     CREATE INDEX IF NOT EXISTS events_node ON events (node, time_ms);
     CREATE INDEX IF NOT EXISTS events_serial ON events (serial, time_ms);
     CREATE INDEX IF NOT EXISTS events_uuid ON events (uuid, time_ms);
     CREATE INDEX IF NOT EXISTS events_board ON events (IFNULL(uuid, serial), time_ms);";

/// A store two sites share, opened by the previous version (an engineer's older fleetop on the same host)
/// between two of this one: it still opens (its schema must not fail on two sites' rows of one event) and it
/// does not make this version drop the second site's row of the next event.
#[test]
fn a_store_two_sites_share_survives_the_previous_version_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    let of = |time_ms: u64, site: &str| Event {
        site: Some(site.into()),
        ..Event::node(time_ms, "n1", kind::HEALTH, "ok:")
    };
    // A pass under `--context all` stores east's and west's `n1` at one time, alike but for the site.
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store
            .append(&[of(1_000, "east"), of(1_000, "west")])
            .unwrap(),
        2
    );
    drop(store);
    let previous = rusqlite::Connection::open(&path).unwrap();
    previous.execute_batch(PREVIOUS_SCHEMA).unwrap();
    drop(previous);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store
            .append(&[of(2_000, "east"), of(2_000, "west")])
            .unwrap(),
        2
    );
    let west = store
        .between(0, 10_000, &[kind::HEALTH], at(Some("west")))
        .unwrap();
    assert_eq!(west.len(), 2, "{west:?}");
    // One old store, migrated once: its one-row-per-event index now names the site.
    let plain = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch(PREVIOUS_SCHEMA)
        .unwrap();
    let mut old = Store::open(&plain).unwrap();
    assert_eq!(
        old.append(&[of(1_000, "east"), of(1_000, "west")]).unwrap(),
        2
    );
}

/// A GPU is known by its UUID or serial wherever it is: its incidents under one site count for the lemon rule
/// of every reader (the board moved to another site's node, or the store is read with no context), as its
/// `history` already shows them; a node's incidents stay its own site's, node names being per site.
#[test]
fn a_gpu_s_incidents_follow_it_across_sites_and_a_node_s_stay_with_its_site() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("fleet.sqlite")).unwrap();
    let node = |health: &str| Sighting {
        node: "n1".into(),
        health: Some(health.into()),
        ..Sighting::default()
    };
    store
        .observe(
            &[gpu("n1", "1650923001234", "crit")],
            1_000,
            at(Some("east")),
        )
        .unwrap();
    store
        .observe(&[gpu("n1", "1650923001234", "ok")], 2_000, at(Some("east")))
        .unwrap();
    store
        .observe(
            &[gpu("n1", "1650923001234", "crit")],
            3_000,
            at(Some("east")),
        )
        .unwrap();
    store
        .observe(&[node("crit")], 3_000, at(Some("east")))
        .unwrap();
    // The board now in west's n7.
    store
        .observe(&[gpu("n7", "1650923001234", "ok")], 4_000, at(Some("west")))
        .unwrap();
    for reader in [Some("east"), Some("west"), None] {
        let inc = store.incidents(0, at(reader)).unwrap();
        assert_eq!(
            inc.gpus.get("GPU-1650923001234"),
            Some(&2),
            "{reader:?}: {inc:?}"
        );
        let history = store.history("1650923001234", 0, at(reader)).unwrap();
        assert_eq!(
            history
                .iter()
                .filter(|e| e.detail.starts_with("crit"))
                .count(),
            2
        );
    }
    assert_eq!(
        store
            .incidents(0, at(Some("east")))
            .unwrap()
            .nodes
            .get("n1"),
        Some(&1)
    );
    assert!(store
        .incidents(0, at(Some("west")))
        .unwrap()
        .nodes
        .is_empty());
    assert!(store.incidents(0, at(None)).unwrap().nodes.is_empty());
}

/// Upgrading a store written before rows carried their site: a GPU already crit there is not crit again (a
/// second incident, towards the lemon hold) the first time a context sees it; its last health is the last one
/// the context counts, its own site's or a row without a site.
#[test]
fn a_gpu_crit_before_the_site_column_is_not_a_new_incident_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    {
        let mut previous = Store::open(&path).unwrap();
        previous
            .observe(&[gpu("n1", "1650923001234", "crit")], 1_000, at(None))
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let sighting = gpu("n1", "1650923001234", "crit");
    assert_eq!(
        store.observe(&[sighting], 2_000, at(Some("east"))).unwrap(),
        0
    );
    let inc = store.incidents(0, at(Some("east"))).unwrap();
    assert_eq!(inc.gpus.get("GPU-1650923001234"), Some(&1), "{inc:?}");
}

/// A board moved from one site's node to another site's node of the same name (a store both sites share) is a
/// move in its history; seen under a context where a row without a site left it, it is not (that row cannot say
/// whose node it was).
#[test]
fn a_gpu_moved_to_another_site_s_node_of_the_same_name_is_a_move() {
    let moves = |sites: [Option<&str>; 2]| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("fleet.sqlite")).unwrap();
        for (k, site) in sites.into_iter().enumerate() {
            let board = gpu("n1", "1650923001234", "ok");
            store
                .observe(&[board], 1_000 * (k as u64 + 1), at(site))
                .unwrap();
        }
        store
            .history("1650923001234", 0, at(None))
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind::MOVED)
            .map(|e| e.detail)
            .collect()
    };
    assert_eq!(
        moves([Some("east"), Some("west")]),
        ["from n1 (east) to n1 (west)"]
    );
    assert!(moves([None, Some("east")]).is_empty());
    assert!(moves([Some("east"), Some("east")]).is_empty());
}
