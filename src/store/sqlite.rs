//! The SQLite file itself: opened in WAL mode with a busy timeout, appended to in one transaction, cut back to
//! its cap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::event::Event;

/// Most events kept; the oldest go first (about 200 bytes each: some 200 MB at the cap).
pub const MAX_EVENTS: u64 = 1_000_000;
/// How long a writer waits for another one before giving up (a warning, never a failed action).
const BUSY_TIMEOUT: Duration = Duration::from_secs(3);
/// The write-ahead log is cut back to this after a checkpoint.
const WAL_LIMIT_BYTES: i64 = 16 * 1024 * 1024;
/// Longest text kept in one field: anything longer came from a node and is cut.
pub(super) const MAX_FIELD_CHARS: usize = 512;

/// `$XDG_STATE_HOME/fleetop/fleet.sqlite`; callers with an audit log use [`beside`] it instead.
pub(crate) fn default_path() -> Option<PathBuf> {
    crate::dirs::state().map(|d| d.join("fleet.sqlite"))
}

/// The store that goes with the audit log at `audit_log`: `fleet.sqlite` in the same directory.
pub fn beside(audit_log: &Path) -> PathBuf {
    audit_log.with_file_name("fleet.sqlite")
}

pub struct Store {
    pub(super) conn: Connection,
    max_events: u64,
}

impl Store {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, String> {
        Store::open_capped(path, MAX_EVENTS)
    }

    /// [`Store::open`] keeping at most `max_events` rows.
    pub(crate) fn open_capped(path: &Path, max_events: u64) -> Result<Store, String> {
        let shown = |e: &dyn std::fmt::Display| format!("store {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| shown(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| shown(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| shown(&e))?;
        // Switching to WAL and creating the tables take locks that SQLite's busy handler does not wait for when
        // another process is doing the same on a new file: retry them, bounded by the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match prepare(&conn) {
                Ok(()) => break,
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(shown(&e)),
            }
        }
        Ok(Store { conn, max_events })
    }

    /// Appends `events` in one transaction (one already stored, same time and text, is not stored twice), then
    /// drops the oldest rows past the cap; returns how many were new.
    pub fn append(&mut self, events: &[Event]) -> Result<usize, String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events
                         (time_ms, node, gpu, serial, uuid, kind, detail, site, inventory)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(|e| e.to_string())?;
            for e in events {
                added += insert
                    .execute(params![
                        i64::try_from(e.time_ms).unwrap_or(i64::MAX),
                        bounded(&e.node),
                        e.gpu,
                        e.serial.as_deref().map(bounded),
                        e.uuid.as_deref().map(bounded),
                        bounded(&e.kind),
                        bounded(&e.detail),
                        e.site.as_deref().map(bounded),
                        e.inventory.as_deref().map(bounded),
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        let cap = i64::try_from(self.max_events).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
            params![cap],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(added)
    }

    /// The node a GPU (its UUID, else its serial) was last seen on, and the `[[context]]` that saw it there, by
    /// the newest `seen` or `moved` event.
    pub(crate) fn last_node_of(
        &self,
        board: &str,
    ) -> Result<Option<(String, Option<String>)>, String> {
        self.conn
            .query_row(
                "SELECT node, site FROM events WHERE IFNULL(uuid, serial) = ?1 AND kind IN ('seen', 'moved')
                 ORDER BY time_ms DESC, id DESC LIMIT 1",
                params![board],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e.to_string()),
            })
    }

    /// How many rows it holds.
    pub fn len(&self) -> Result<u64, String> {
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| e.to_string())
    }

    pub fn is_empty(&self) -> Result<bool, String> {
        self.len().map(|n| n == 0)
    }
}

/// WAL mode and the schema. WAL: readers never block the writer nor it them; NORMAL sync is durable across a
/// crash of fleetop in WAL mode (a power cut may lose the last commits: the audit log, fsync'd, still has them).
fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             time_ms INTEGER NOT NULL,
             node TEXT NOT NULL,
             gpu INTEGER,
             serial TEXT,
             uuid TEXT,
             kind TEXT NOT NULL,
             detail TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS events_node ON events (node, time_ms);
         CREATE INDEX IF NOT EXISTS events_serial ON events (serial, time_ms);
         CREATE INDEX IF NOT EXISTS events_uuid ON events (uuid, time_ms);
         CREATE INDEX IF NOT EXISTS events_board ON events (IFNULL(uuid, serial), time_ms);",
    )?;
    add_column(conn, "site")?;
    // The inventory file a row without a site was written with (`Scope::mark`). The one-row-per-event index
    // does not name it: the same event marked with two files is one row, the first's.
    add_column(conn, "inventory")?;
    add_site(conn)
}

/// The text column `name`, added to a store written before rows carried it. The previous version still opens
/// the store: it names the columns it inserts, and the new one is left `NULL` in its rows.
fn add_column(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    let has = || -> rusqlite::Result<bool> {
        conn.prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = ?1")?
            .exists([name])
    };
    if !has()? {
        // Another process opening the same old store may add it first: then its column is the one wanted.
        if let Err(e) = conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {name} TEXT;")) {
            if !has()? {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The `site` column (the `[[context]]` a row was written under, [`add_column`]): the same event of two sites is
/// two rows, so the one-row-per-event index names the site too.
fn add_site(conn: &Connection) -> rusqlite::Result<()> {
    if once_by_site(conn)? {
        return Ok(());
    }
    // In one write transaction: two processes migrating at once must not drop each other's new index.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    if !once_by_site(&tx)? {
        tx.execute_batch(&format!(
            "DROP INDEX IF EXISTS events_once;
             DROP INDEX IF EXISTS events_once_by_site;
             {EVENTS_ONCE}"
        ))?;
    }
    tx.commit()
}

/// The one-row-per-event index, named as the previous version names its own (without the site): holding the
/// name makes that version's `CREATE UNIQUE INDEX IF NOT EXISTS events_once` a no-op, so it still opens a store
/// two sites share (its index would refuse their rows of one event) and its index never makes this version drop
/// the second site's row of an event.
const EVENTS_ONCE: &str = "CREATE UNIQUE INDEX events_once
     ON events (time_ms, node, kind, detail, IFNULL(gpu, -1), IFNULL(serial, ''), IFNULL(uuid, ''),
                IFNULL(site, ''));";

/// Whether the store's `events_once` index is [`EVENTS_ONCE`], naming the site.
fn once_by_site(conn: &Connection) -> rusqlite::Result<bool> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_once'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(sql.is_some_and(|sql| sql.contains("IFNULL(site, '')")))
}

/// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock.
fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// `text` cut to [`MAX_FIELD_CHARS`] characters.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

/// Appends `events` to the store at `path`, warning (never failing) when it cannot: the store is an index, and
/// whatever called this has already done its work.
pub fn record(path: &Path, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = Store::open(path).and_then(|mut s| s.append(events)) {
        crate::text::warn(&format!(
            "history store {}: {e} (history misses this; the audit log has the actions)",
            path.display()
        ));
    }
}
