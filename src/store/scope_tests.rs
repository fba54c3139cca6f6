//! The store's scopes: rows marked with the inventory file of a run without a site, and the column that holds
//! the mark added to an older store.

use super::tests::{at, PREVIOUS_SCHEMA};
use super::*;

/// A store written before rows carried their inventory file gains the column when it is opened, its rows read
/// as unmarked (counting for every reader); the previous version, which names the columns it inserts, still
/// writes to it. A row marked with a file counts only for readers with that file.
#[test]
fn a_store_gains_the_inventory_mark_and_the_previous_version_still_writes_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.sqlite");
    let previous_insert = "INSERT INTO events (time_ms, node, kind, detail, site)
                           VALUES (?1, 'n1', 'action', 'reboot by ann', NULL)";
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(PREVIOUS_SCHEMA).unwrap();
        // The previous version's own: rows carry their site, not yet an inventory file.
        old.execute_batch("ALTER TABLE events ADD COLUMN site TEXT;")
            .unwrap();
        old.execute(previous_insert, [500]).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let west_file = Some("/etc/fleetop/west.toml");
    let marked = Event {
        inventory: west_file.map(str::to_string),
        ..Event::node(1_000, "n1", kind::OUTCOME, "reset succeeded")
    };
    assert_eq!(store.append(&[marked]).unwrap(), 1);
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(previous_insert, [2_000])
        .unwrap();
    let store = Store::open(&path).unwrap();
    let count = |scope| store.history("n1", 0, scope).unwrap().len();
    assert_eq!(count(Scope::new(None, west_file)), 3);
    assert_eq!(count(Scope::new(Some("west"), west_file)), 3);
    assert_eq!(
        count(at(Some("east"))),
        2,
        "east's inventory is not west's file"
    );
    assert_eq!(count(Scope::new(None, Some("/etc/fleetop/east.toml"))), 2);
}
