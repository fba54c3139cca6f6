//! Reading a span of the store: every event of some kinds between two times, oldest first (the availability
//! ledger's repairs and their health events).

use rusqlite::params_from_iter;

use super::event::EVENT_COLUMNS;
use super::{Event, Store, MAX_EVENTS};

impl Store {
    /// Events of `kinds` with `from_ms <= time_ms < to_ms`, oldest first; at most [`MAX_EVENTS`] (all the store
    /// holds).
    pub fn between(&self, from_ms: u64, to_ms: u64, kinds: &[&str]) -> Result<Vec<Event>, String> {
        let marks = vec!["?"; kinds.len()].join(", ");
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE time_ms >= ? AND time_ms < ? AND kind IN ({marks})
             ORDER BY time_ms, id LIMIT {MAX_EVENTS}"
        );
        let ms = |t: u64| rusqlite::types::Value::Integer(i64::try_from(t).unwrap_or(i64::MAX));
        let values = [ms(from_ms), ms(to_ms)].into_iter().chain(
            kinds
                .iter()
                .map(|k| rusqlite::types::Value::Text((*k).to_string())),
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params_from_iter(values), Event::from_row)
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }
}
