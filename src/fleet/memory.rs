//! What a view of the fleet tells the history store: each node's and GPU's health, XIDs and where each GPU
//! serial is (the store keeps only what changed).

use std::collections::HashMap;
use std::time::Duration;

use super::state::FleetState;
use super::view::NodeView;
use crate::inventory::{name_within_site, site_of, MergedSite, NodeId};
use crate::store::query::{Incidents, Sighting};
use crate::store::Scope;

/// How a repeat offender's reason starts (the nodes table's `L` flag looks for it).
pub(crate) const LEMON: &str = "repeat offender";

/// One sighting per node that has a sample and one per GPU in it; a node without a sample says nothing (its
/// health is not known, and "unknown" is not a transition).
pub(crate) fn sightings(nodes: &[NodeView]) -> Vec<Sighting> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| n.sample.is_some()) {
        out.push(Sighting {
            node: n.name.into(),
            health: Some(n.verdict.health.as_str().into()),
            reasons: n.verdict.reasons.clone(),
            ..Sighting::default()
        });
        for g in &n.gpus {
            let s = g.sample;
            out.push(Sighting {
                node: n.name.into(),
                gpu: Some(s.index),
                serial: s.serial.clone(),
                uuid: s.uuid.clone(),
                health: Some(g.verdict.health.as_str().into()),
                reasons: g.verdict.reasons.clone(),
                // An XID without a time (no source gave one) cannot be told from the same XID seen again.
                xids: s
                    .xid_events
                    .iter()
                    .flatten()
                    .filter_map(|x| {
                        let text = x.text.clone().unwrap_or_default();
                        x.last_ms.map(|t| (x.code, x.count, t, text))
                    })
                    .collect(),
            });
        }
    }
    out
}

/// Stores `seen` at `now_ms` in the store at `path` (opened by the caller: `store`) as a session in `scope`
/// saw it, then reads the repeat offenders back ([`lemons`], counting the incidents that scope counts); a store
/// that cannot be opened, written or read is a warning, and flags no one.
fn remember(
    store: &mut Result<crate::store::Store, String>,
    path: &std::path::Path,
    seen: &[Sighting],
    now_ms: u64,
    rule: (u32, Duration),
    scope: Scope,
) -> HashMap<String, String> {
    let (max, window) = rule;
    let since_ms = now_ms.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let read = store.as_mut().map_err(|e| e.clone()).and_then(|s| {
        s.observe(seen, now_ms, scope)?;
        s.incidents(since_ms, scope)
    });
    match read {
        Ok(incidents) => lemons(&incidents, seen, max, window),
        Err(e) => {
            crate::text::warn(&format!("history store {}: {e}", path.display()));
            HashMap::new()
        }
    }
}

/// A history store and the nodes it keeps: under `--context all` the nodes of the sites whose audit log it is
/// beside (`sites`), by their own sites' names and marked with their site, so `--context SITE` reads the same
/// history; else every node, as named, marked with the `[[context]]` `site` (none: with the `inventory` file).
/// `actions::run::stores` finds them,
/// with the `[repair]` lemon rule of the (first) site.
#[derive(Debug, Clone)]
pub(crate) struct SiteStore {
    pub path: std::path::PathBuf,
    pub sites: Vec<MergedSite>,
    pub site: Option<String>,
    pub inventory: Option<String>,
    pub max_repairs: u32,
    pub repair_window: Duration,
}

/// [`remember`] in each store what it keeps of `seen`, each site's nodes named and marked as that site's; the
/// repeat offenders by `seen`'s own names.
pub(crate) fn remember_in(
    stores: &[SiteStore],
    seen: &[Sighting],
    now_ms: u64,
) -> HashMap<String, String> {
    let mut lemons = HashMap::new();
    for store in stores {
        let rule = (store.max_repairs, store.repair_window);
        // One connection for all the sites the store keeps, opened when first needed; a store that cannot be
        // opened is warned of by each site that needed it.
        let mut opened = None;
        let mut open = || crate::store::Store::open(&store.path);
        if store.sites.is_empty() {
            lemons.extend(remember(
                opened.get_or_insert_with(&mut open),
                &store.path,
                seen,
                now_ms,
                rule,
                Scope::new(store.site.as_deref(), store.inventory.as_deref()),
            ));
            continue;
        }
        for site in &store.sites {
            let own: Vec<Sighting> = seen
                .iter()
                .filter(|s| site_of(&s.node) == Some(site.name.as_str()))
                .map(|s| Sighting {
                    node: name_within_site(&s.node).to_string(),
                    ..s.clone()
                })
                .collect();
            if own.is_empty() {
                continue;
            }
            let scope = Scope::new(Some(site.record_site()), site.inventory.file.as_deref());
            for (name, why) in remember(
                opened.get_or_insert_with(&mut open),
                &store.path,
                &own,
                now_ms,
                rule,
                scope,
            ) {
                lemons.insert(site.merged_name(&name), why);
            }
        }
    }
    lemons
}

/// [`remember_in`] on a blocking thread of the runtime (SQLite waits for other writers, and a front end must
/// not), handing the repeat offenders to `send`; the time is taken when the thread runs.
pub(crate) fn remember_in_background(
    stores: Vec<SiteStore>,
    seen: Vec<Sighting>,
    send: impl FnOnce(HashMap<String, String>) + Send + 'static,
) {
    tokio::task::spawn_blocking(move || {
        send(remember_in(&stores, &seen, crate::telemetry::unix_ms()))
    });
}

/// `repeat offender: 3 incidents in 30 days` for each node, by name, that had at least `max` incidents (health
/// turning crit, repairs) within `window`, itself or through a GPU it holds now (by serial, wherever the GPU was
/// then): the lemon rule of `[repair] max_repairs` and `repair_window`, read from the history store.
pub fn lemons(
    incidents: &Incidents,
    seen: &[Sighting],
    max: u32,
    window: Duration,
) -> HashMap<String, String> {
    let days = window.as_secs() / 86_400;
    let span = if window.as_secs().is_multiple_of(86_400) && days > 0 {
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    } else {
        humantime::format_duration(window).to_string()
    };
    let max = max.max(1);
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for s in seen {
        let board = s.uuid.as_ref().or(s.serial.as_ref());
        let why = match (s.gpu, board) {
            (None, _) => incidents
                .nodes
                .get(&s.node)
                .filter(|&&c| c >= max)
                .map(|count| format!("{LEMON}: {count} incidents in {span}")),
            (Some(gpu), Some(board)) => {
                // Events that knew the UUID are counted by it, those that knew only the serial (an audited
                // repair names a GPU by `SN …`) by the serial: the GPU's incidents are both.
                let by = |id: Option<&String>| id.and_then(|id| incidents.gpus.get(id)).copied();
                let by_serial = by(s.serial.as_ref().filter(|sn| s.uuid.as_ref() != Some(*sn)));
                let total = by(s.uuid.as_ref()).unwrap_or(0) + by_serial.unwrap_or(0);
                Some(total).filter(|&c| c >= max).map(|count| {
                    let id = s
                        .serial
                        .as_deref()
                        .map_or_else(|| board.clone(), |sn| format!("SN {sn}"));
                    format!(
                        "{LEMON}: GPU {gpu} ({}) {count} incidents in {span}",
                        crate::text::escape(&id)
                    )
                })
            }
            (Some(_), None) => None,
        };
        if let Some(why) = why {
            out.entry(s.node.clone()).or_default().push(why);
        }
    }
    out.into_iter()
        .map(|(node, why)| (node, why.join("; ")))
        .collect()
}

impl FleetState {
    /// Records the repeat offenders [`lemons`] found, by node name (names the inventory lacks are skipped).
    pub fn note_lemons(&mut self, lemons: &HashMap<String, String>) {
        self.fleet_generation += 1;
        self.lemons = self
            .inventory
            .nodes
            .iter()
            .map(|n| lemons.get(&n.name).cloned())
            .collect();
    }

    /// Why the node is a repeat offender, if it is.
    pub fn lemon(&self, id: NodeId) -> Option<&str> {
        self.lemons.get(id).and_then(|l| l.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_s_incidents_count_by_uuid_and_by_serial_alone() {
        // A crit transition stored with the UUID, a repair the audit log names by serial only.
        let incidents = Incidents {
            nodes: HashMap::new(),
            gpus: HashMap::from([("GPU-1".to_string(), 1), ("1652".to_string(), 1)]),
        };
        let seen = [Sighting {
            node: "n1".into(),
            gpu: Some(3),
            serial: Some("1652".into()),
            uuid: Some("GPU-1".into()),
            ..Sighting::default()
        }];
        let window = Duration::from_secs(30 * 86_400);
        assert_eq!(
            lemons(&incidents, &seen, 2, window)
                .get("n1")
                .map(String::as_str),
            Some("repeat offender: GPU 3 (SN 1652) 2 incidents in 30 days")
        );
        assert!(lemons(&incidents, &seen, 3, window).is_empty());
    }
}
