//! Reading a span of the store: every event of some kinds between two times, oldest first (the availability
//! ledger's repairs and their health events).

use rusqlite::params_from_iter;

use super::event::{in_scope, Scope, EVENT_COLUMNS};
use super::{Event, Store, MAX_EVENTS};

impl Store {
    /// Events of `kinds` with `from_ms <= time_ms < to_ms` that `scope` counts ([`Scope::counts`]),
    /// oldest first; at most [`MAX_EVENTS`] (all the store holds).
    pub fn between(
        &self,
        from_ms: u64,
        to_ms: u64,
        kinds: &[&str],
        scope: Scope,
    ) -> Result<Vec<Event>, String> {
        let marks: Vec<String> = (0..kinds.len()).map(|k| format!("?{}", k + 5)).collect();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE time_ms >= ?1 AND time_ms < ?2 AND {} AND kind IN ({})
             ORDER BY time_ms, id LIMIT {MAX_EVENTS}",
            in_scope(3),
            marks.join(", ")
        );
        let ms = |t: u64| rusqlite::types::Value::Integer(i64::try_from(t).unwrap_or(i64::MAX));
        let text = |t: Option<&str>| {
            t.map_or(rusqlite::types::Value::Null, |s| {
                rusqlite::types::Value::Text(s.to_string())
            })
        };
        let values = [
            ms(from_ms),
            ms(to_ms),
            text(scope.site),
            text(scope.inventory),
        ]
        .into_iter()
        .chain(
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
