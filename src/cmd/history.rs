//! `fleetop history NODE|SERIAL|UUID`: what the history store holds about a node or a GPU, newest first, across
//! the GPU's moves between nodes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::{ActionFormat, Global, HistoryArgs};
use crate::runtime::EXIT_CANNOT_RUN;
use crate::store::{Event, Store};

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
    let path = match store_path(g) {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
    if !path.exists() {
        crate::text::warn(&format!(
            "history store {}: none yet (the TUI, snapshot, repair, reset and acknowledgements write it)",
            path.display()
        ));
        return EXIT_CANNOT_RUN;
    }
    let now = SystemTime::now();
    let since_ms = now
        .checked_sub(since)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let events = match Store::open(&path).and_then(|s| s.history(&args.key, since_ms)) {
        Ok(e) => e,
        Err(e) => {
            crate::text::warn(&e);
            return EXIT_CANNOT_RUN;
        }
    };
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

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
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
