//! `fleetop history NODE|SERIAL|UUID`: what the history store holds about a node or a GPU, newest first, across
//! the GPU's moves between nodes. Under `--context all` each site's own store: `SITE/NODE` reads that site's,
//! a serial or UUID every site's, its nodes named `SITE/NODE`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{ActionFormat, Global, HistoryArgs};
use crate::inventory::{shared_name, Inventory, MergedSite, SITE_SEPARATOR};
use crate::runtime::EXIT_CANNOT_RUN;
use crate::store::{Event, Store};

/// One store to read: where, the key as that store names it, and the sites of `--context all` whose nodes it
/// keeps (none: one site's own fleet, its names as they are).
struct Read<'a> {
    path: PathBuf,
    key: String,
    sites: Vec<&'a MergedSite>,
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
    let merged = super::load::load_inventory(g)
        .ok()
        .filter(|inv| !inv.merged_sites().is_empty());
    let reads = match &merged {
        Some(inv) => site_reads(inv, &args.key),
        None => store_path(g).map(|path| {
            vec![Read {
                path,
                key: args.key.clone(),
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
        match Store::open(&read.path).and_then(|s| s.history(&read.key, since_ms)) {
            // A node several sites sharing the store have keeps its bare name: the store cannot say whose.
            Ok(found) => events.extend(found.into_iter().map(|mut e| {
                if let Some(name) = shared_name(&read.sites, &e.node) {
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
    // Several stores: one list, newest first, as one store answers.
    events.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
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
/// (each store once, however many sites share it: the store is beside the audit log).
fn site_reads<'a>(inv: &'a Inventory, key: &str) -> Result<Vec<Read<'a>>, String> {
    let logs = crate::actions::run::audit_logs(inv);
    let read = |log: crate::actions::run::SiteLog<'a>, key: &str| Read {
        path: crate::store::beside(&log.path),
        key: key.to_string(),
        sites: log.sites,
    };
    let Some((site, rest)) = key.split_once(SITE_SEPARATOR) else {
        return Ok(logs.into_iter().map(|log| read(log, key)).collect());
    };
    logs.into_iter()
        .find(|log| log.sites.iter().any(|s| s.name == site))
        .map(|log| read(log, rest))
        .map(|r| vec![r])
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
