//! `fleetop history NODE|SERIAL|UUID`: what the history store holds about a node or a GPU, newest first, across
//! the GPU's moves between nodes. Under `--context all` each site's own store: `SITE/NODE` reads that site's,
//! a serial or UUID every site's, its nodes named `SITE/NODE`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{ActionFormat, Global, HistoryArgs};
use crate::inventory::{shared_name, Inventory, MergedSite, SITE_SEPARATOR};
use crate::runtime::EXIT_CANNOT_RUN;
use crate::store::{Event, Store};

/// One store to read: where, the key as that store names it, the `[[context]]` whose node of that name is meant
/// (its rows and those that carry no site), and the sites of `--context all` whose nodes it keeps (none: one
/// site's own fleet, its names as they are).
struct Read<'a> {
    path: PathBuf,
    key: String,
    site: Option<String>,
    /// The inventory file read with: with no site, the mark of this session's own rows (`store::Scope`).
    inventory: Option<String>,
    sites: Vec<&'a MergedSite>,
}

impl Read<'_> {
    /// An event's node as the inventory names it: under `--context all` with the site its row names, else (a
    /// row that carries none) the one site of the store with such a node, else as the store has it. Read as one
    /// site, a row of another site's node (a GPU's, which its history follows there) names that site.
    fn node_name(&self, event: &Event) -> Option<String> {
        match &event.site {
            Some(site) if self.sites.is_empty() => (self.site.as_ref() != Some(site))
                .then(|| format!("{site}{SITE_SEPARATOR}{}", event.node)),
            Some(site) => self
                .sites
                .iter()
                .find(|s| s.record_site() == site)
                .map(|s| s.merged_name(&event.node)),
            None => shared_name(&self.sites, &event.node),
        }
    }
}

pub fn run(g: &Global, args: &HistoryArgs) -> i32 {
    let since = match humantime::parse_duration(&args.since) {
        Ok(d) => d,
        Err(_) => {
            crate::text::warn(&format!(
                "--since: {:?} is not an age (30d, 12h)",
                crate::text::escape(&args.since)
            ));
            return EXIT_CANNOT_RUN;
        }
    };
    let loaded = super::load::load_inventory(g).ok();
    let reads = match &loaded {
        Some(inv) if !inv.merged_sites().is_empty() => site_reads(inv, &args.key),
        _ => store_path(g).map(|path| {
            vec![Read {
                path,
                key: args.key.clone(),
                site: loaded.as_ref().and_then(|inv| inv.site.clone()),
                inventory: loaded.as_ref().and_then(|inv| inv.file.clone()),
                sites: Vec::new(),
            }]
        }),
    };
    let reads: Vec<Read> = match reads {
        Ok(r) => r.into_iter().filter(|r| r.path.exists()).collect(),
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    if reads.is_empty() {
        crate::text::warn(
            "history store: none yet (the TUI, snapshot, repair, reset and acknowledgements write it)",
        );
        return EXIT_CANNOT_RUN;
    }
    let now = SystemTime::now();
    let since_ms = now
        .checked_sub(since)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let mut events = Vec::new();
    for read in &reads {
        let scope = crate::store::Scope::new(read.site.as_deref(), read.inventory.as_deref());
        match Store::open(&read.path).and_then(|s| s.history(&read.key, since_ms, scope)) {
            // A row without a site, of a node several sites sharing the store have, keeps its bare name.
            Ok(found) => events.extend(found.into_iter().map(|mut e| {
                if let Some(name) = read.node_name(&e) {
                    e.node = name;
                }
                e
            })),
            Err(e) => {
                crate::text::warn(&e);
                return EXIT_CANNOT_RUN;
            }
        }
    }
    // Several stores (or one store read for each of the sites sharing it, which gives a GPU's rows to each):
    // one list, newest first, each event once, as one store answers.
    events.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| {
        seen.insert((
            e.time_ms,
            e.node.clone(),
            e.kind.clone(),
            e.detail.clone(),
            e.gpu,
        ))
    });
    let text = match args.format {
        ActionFormat::Json => json(&args.key, since_ms, &events),
        ActionFormat::Table => table(&events),
    };
    if events.is_empty() && args.format == ActionFormat::Table {
        crate::text::warn(&format!(
            "no history for {} in the last {}",
            crate::text::escape(&args.key),
            humantime::format_duration(since)
        ));
    }
    crate::text::print(&text);
    0
}

/// The store beside the inventory's audit log; without an inventory, `$XDG_STATE_HOME/fleetop/fleet.sqlite`.
pub(super) fn store_path(g: &Global) -> Result<std::path::PathBuf, String> {
    match super::load::load_inventory(g) {
        Ok(inv) => Ok(crate::store::beside(&crate::actions::run::audit_path(&inv))),
        Err(e) if g.inventory.is_some() || g.demo => Err(e),
        Err(_) => crate::store::default_path()
            .ok_or_else(|| "no state directory: set HOME or XDG_STATE_HOME".into()),
    }
}

/// The stores `key` is read from under `--context all`: `SITE/KEY` that site's, any other key every site's
/// (each store once for each site that keeps its nodes there: the store is beside the audit log).
fn site_reads<'a>(inv: &'a Inventory, key: &str) -> Result<Vec<Read<'a>>, String> {
    let logs = crate::actions::run::audit_logs(inv);
    let read = |log: &crate::actions::run::SiteLog<'a>, site: &MergedSite, key: &str| Read {
        path: crate::store::beside(&log.path),
        key: key.to_string(),
        site: Some(site.record_site().to_string()),
        inventory: site.inventory.file.clone(),
        sites: log.sites.clone(),
    };
    let Some((site, rest)) = key.split_once(SITE_SEPARATOR) else {
        return Ok(logs
            .iter()
            .flat_map(|log| log.sites.iter().map(|s| read(log, s, key)))
            .collect());
    };
    logs.iter()
        .find_map(|log| {
            let own = log.sites.iter().find(|s| s.name == site)?;
            Some(vec![read(log, own, rest)])
        })
        .ok_or_else(|| {
            format!(
                "history {}: no site {:?} under --context all",
                crate::text::escape(key),
                crate::text::escape(site)
            )
        })
}

fn time(ms: u64) -> String {
    crate::text::rfc3339_ms(ms)
}

fn table(events: &[Event]) -> String {
    let mut out = String::from(
        "TIME                  NODE          GPU  SERIAL           KIND        DETAIL\n",
    );
    for e in events {
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map_or("-".into(), |s| crate::text::escape(s).into_owned())
        };
        out.push_str(&format!(
            "{:<21} {:<13} {:<4} {:<16} {:<11} {}\n",
            time(e.time_ms),
            crate::text::escape(&e.node),
            e.gpu.map_or("-".into(), |g| g.to_string()),
            opt(&e.serial),
            crate::text::escape(&e.kind),
            crate::text::escape(&e.detail),
        ));
    }
    out
}

fn json(key: &str, since_ms: u64, events: &[Event]) -> String {
    let doc = serde_json::json!({
        "schema": "fleetop.history/1",
        "key": key,
        "since": time(since_ms),
        "events": events.iter().map(|e| serde_json::json!({
            "time": time(e.time_ms),
            "node": e.node,
            "gpu": e.gpu,
            "serial": e.serial,
            "uuid": e.uuid,
            "kind": e.kind,
            "detail": e.detail,
        })).collect::<Vec<_>>(),
    });
    format!("{doc:#}\n")
}
