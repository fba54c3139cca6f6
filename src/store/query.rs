//! Reading the store back: a node's or a GPU's history across node moves, and incident counts for the lemon flag;
//! and turning what a pass over the fleet saw into events (health transitions, XIDs, GPU moves).

use std::collections::HashMap;

use rusqlite::params;

use super::event::{in_scope, kind, Event, Scope, EVENT_COLUMNS};
use super::sqlite::Store;

/// Most events one history query returns.
pub(crate) const MAX_HISTORY: u32 = 10_000;

/// What `fleetop history` was asked about: a node name, a GPU serial or a GPU UUID (all are tried).
pub(crate) type Key<'a> = &'a str;

/// Incidents (health turning crit, repairs) per node and per GPU within a window. A GPU is known by its UUID
/// where it has one (burned into the board, it moves with it like the serial, and unlike serials it is never
/// blank or shared), else by its serial.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Incidents {
    pub nodes: HashMap<String, u32>,
    pub gpus: HashMap<String, u32>,
}

/// What one pass saw of one node, or of one GPU on it (`gpu` set).
#[derive(Debug, Clone, Default)]
pub(crate) struct Sighting {
    pub node: String,
    pub gpu: Option<u32>,
    pub serial: Option<String>,
    pub uuid: Option<String>,
    /// `ok`, `warn` or `crit`; `None`: not judged (no sample).
    pub health: Option<String>,
    /// Why, when not ok.
    pub reasons: Vec<String>,
    /// XIDs: (code, count, last occurrence in Unix ms, text).
    pub xids: Vec<(u32, u64, u64, String)>,
}

impl Store {
    /// Every event of `key` (a node, serial or UUID) since `since_ms`, newest first: the node's own, and those of
    /// every GPU (by serial or UUID) ever seen with it, wherever the GPU was at the time. A node is the one of
    /// `scope` (the rows [`Scope::counts`]).
    pub fn history(&self, key: Key, since_ms: u64, scope: Scope) -> Result<Vec<Event>, String> {
        self.history_bounded(key, since_ms, MAX_HISTORY, scope)
    }

    /// [`Store::history`], at most `limit` events (the newest).
    pub(crate) fn history_bounded(
        &self,
        key: Key,
        since_ms: u64,
        limit: u32,
        scope: Scope,
    ) -> Result<Vec<Event>, String> {
        let node = format!("(node = ?1 AND {})", in_scope(4));
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "WITH ids AS (SELECT DISTINCT serial, uuid FROM events
                              WHERE {node} OR serial = ?1 OR uuid = ?1)
                 SELECT {EVENT_COLUMNS} FROM events
                 WHERE time_ms >= ?2 AND ({node} OR serial = ?1 OR uuid = ?1
                       OR serial IN (SELECT serial FROM ids WHERE serial IS NOT NULL)
                       OR uuid IN (SELECT uuid FROM ids WHERE uuid IS NOT NULL))
                 ORDER BY time_ms DESC, id DESC LIMIT ?3"
            ))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(
                params![
                    key,
                    i64::try_from(since_ms).unwrap_or(i64::MAX),
                    limit.min(MAX_HISTORY),
                    scope.site,
                    scope.inventory
                ],
                Event::from_row,
            )
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }

    /// Incidents since `since_ms`: a node's or a GPU's health turning crit, and each repair of a GPU. A node's
    /// are those `scope` counts ([`Scope::counts`]: node names are per site); a GPU's (by UUID or
    /// serial, which are the board's own) every site's, as [`Store::history`] shows them: a lemon moved to another
    /// site's node, or a store read with no context, must still hold it.
    pub fn incidents(&self, since_ms: u64, scope: Scope) -> Result<Incidents, String> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT node, IFNULL(uuid, serial), gpu IS NULL, COUNT(*) FROM events
                 WHERE time_ms >= ?1
                   AND ((gpu IS NOT NULL AND IFNULL(uuid, serial) IS NOT NULL) OR {})
                   AND ((kind = 'health' AND detail LIKE 'crit%') OR kind = 'repair')
                 GROUP BY node, IFNULL(uuid, serial), gpu IS NULL",
                in_scope(2)
            ))
            .map_err(|e| e.to_string())?;
        let mut out = Incidents::default();
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![since, scope.site, scope.inventory], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        for row in rows {
            let (node, gpu, node_level, n) = row.map_err(|e| e.to_string())?;
            match gpu {
                Some(g) if !node_level => *out.gpus.entry(g).or_default() += n,
                _ => *out.nodes.entry(node).or_default() += n,
            }
        }
        Ok(out)
    }

    /// The last health stored for a node (`gpu` None) or one of its GPUs (by serial, else UUID, else index) that
    /// `scope` counts ([`Scope::counts`]): another site's node of the same name is not measured from,
    /// and a row written before rows carried their site is (a GPU crit then is not a new incident now).
    fn last_health(&self, s: &Sighting, scope: Scope) -> Result<Option<String>, String> {
        // Once per node and GPU each pass: the statement is prepared once and kept.
        let detail: Option<String> = self
            .conn
            .prepare_cached(&format!(
                "SELECT detail FROM events WHERE kind = 'health' AND node = ?1
                       AND IFNULL(gpu, -1) = IFNULL(?2, -1)
                       AND IFNULL(serial, '') = IFNULL(?3, '') AND IFNULL(uuid, '') = IFNULL(?4, '')
                       AND {}
                     ORDER BY time_ms DESC, id DESC LIMIT 1",
                in_scope(5)
            ))
            .and_then(|mut statement| {
                statement.query_row(
                    params![s.node, s.gpu, s.serial, s.uuid, scope.site, scope.inventory],
                    |r| r.get(0),
                )
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e.to_string()),
            })?;
        Ok(detail.map(|d| d.split(':').next().unwrap_or_default().to_string()))
    }

    /// Stores what a pass in `scope` saw at `now_ms`, each row marked with its site (else its inventory): health
    /// that changed since the last one stored, XIDs not stored yet, and each GPU (by UUID, else serial: see
    /// [`Incidents`]) seen on another node than before (`moved`) or for the first time (`seen`).
    pub(crate) fn observe(
        &mut self,
        seen: &[Sighting],
        now_ms: u64,
        scope: Scope,
    ) -> Result<usize, String> {
        let site = scope.site;
        let mut events = Vec::new();
        for s in seen {
            let at = |kind: &str, detail: String, time_ms: u64| Event {
                time_ms,
                node: s.node.clone(),
                gpu: s.gpu,
                serial: s.serial.clone(),
                uuid: s.uuid.clone(),
                kind: kind.into(),
                detail,
                site: site.map(str::to_string),
                inventory: scope.mark(),
            };
            if let Some(health) = &s.health {
                if self.last_health(s, scope)?.as_deref() != Some(health.as_str()) {
                    let why = if s.reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", s.reasons.join("; "))
                    };
                    events.push(at(kind::HEALTH, format!("{health}:{why}"), now_ms));
                }
            }
            for (code, count, last_ms, text) in &s.xids {
                let detail = format!("XID {code} ×{count}: {text}");
                events.push(at(kind::XID, detail, *last_ms));
            }
            if let Some(board) = s.uuid.as_ref().or(s.serial.as_ref()) {
                match self.last_node_of(board)? {
                    // Another site's node of the same name is another node; a row without a site (or a reader
                    // with no context) cannot say, and is taken as the same.
                    Some((node, was))
                        if node == s.node
                            && (was.is_none() || site.is_none() || was.as_deref() == site) => {}
                    Some((node, was)) => {
                        let named = |node: &str, site: Option<&str>| match site {
                            Some(site) if was.is_some() => format!("{node} ({site})"),
                            _ => node.to_string(),
                        };
                        events.push(at(
                            kind::MOVED,
                            format!(
                                "from {} to {}",
                                named(&node, was.as_deref()),
                                named(&s.node, site)
                            ),
                            now_ms,
                        ));
                    }
                    None => events.push(at(kind::SEEN, format!("on {}", s.node), now_ms)),
                }
            }
        }
        self.append(&events)
    }
}
