//! `fleetop report`: the availability ledger over a window: GPU-hours from a recording, repair phases from the
//! history store (`ledger/`).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{Global, ReportArgs, ReportBy, ReportFormat};
use crate::ledger::render::{By, Report};
use crate::ledger::repairs::{self, Overlay, Repair};
use crate::ledger::{Hours, Ledger};
use crate::recording::Recorded;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::store::{kind, Store};

/// How far before the window the store is read: a repair under way when the window starts began before it,
/// and its detection before that.
const LOOKBACK: Duration = Duration::from_secs(30 * 86_400);

pub fn run(g: &Global, args: &ReportArgs) -> i32 {
    match report(g, args) {
        Ok(text) => {
            crate::text::print(&text);
            0
        }
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

fn report(g: &Global, args: &ReportArgs) -> Result<String, String> {
    // Times by the one rule recordings and `snapshot --at` use (RFC 3339, a UTC time of day, an age).
    let now = crate::telemetry::unix_ms();
    let time = |flag: &str, text: &str| {
        crate::recording::parse_time(text, now).map_err(|e| format!("{flag}: {e}"))
    };
    let from = time("--since", &args.since)?;
    let to = match &args.until {
        Some(text) => time("--until", text)?,
        None => now,
    };
    if from >= to {
        return Err(format!(
            "--since {} is not before --until {}",
            crate::text::escape(&args.since),
            crate::text::escape(args.until.as_deref().unwrap_or("now"))
        ));
    }
    let all = store_repairs(g, from, to)?;
    let dir = args
        .recording
        .clone()
        .or_else(|| g.replay.clone())
        .or_else(|| crate::recording::default_dir().filter(|d| d.join("inventory.toml").exists()));
    let hours = match dir {
        Some(dir) => Some(recorded(g, &dir, (from, to), &all)?),
        None => {
            crate::text::warn(
                "no recording (fleetop record writes one; --recording DIR names it): GPU-hours unknown",
            );
            None
        }
    };
    let mut repairs: Vec<Repair> = all
        .into_iter()
        .filter(|r| (from..to).contains(&r.started_ms))
        .collect();
    if let Some(hours) = &hours {
        repairs::detect_from(&mut repairs, &hours.inventory, &hours.crit_spells);
    }
    let report = Report {
        hours: hours.as_ref(),
        window: (from, to),
        repairs: &repairs,
        by: match args.by {
            ReportBy::Tenant => By::Tenant,
            ReportBy::Cabinet => By::Cabinet,
            ReportBy::Cause => By::Cause,
        },
    };
    Ok(match args.format {
        ReportFormat::Table => report.table(),
        ReportFormat::Csv => report.csv(),
        ReportFormat::Json => report.json(),
    })
}

/// Every repair the store holds from [`LOOKBACK`] before the window to its end; none (with a warning) when
/// there is no store yet.
fn store_repairs(g: &Global, from: u64, to: u64) -> Result<Vec<Repair>, String> {
    let path = super::history::store_path(g)?;
    if !path.exists() {
        crate::text::warn(&format!(
            "history store {}: none yet, so no repairs (the TUI, snapshot, record and repair write it)",
            path.display()
        ));
        return Ok(Vec::new());
    }
    let lookback = u64::try_from(LOOKBACK.as_millis()).unwrap_or(u64::MAX);
    let loaded = super::load::load_inventory(g).ok();
    let scope = loaded
        .as_ref()
        .map(crate::actions::run::scope)
        .unwrap_or_default();
    let events = Store::open(&path)?.between(
        from.saturating_sub(lookback),
        to,
        &[kind::HEALTH, kind::ACTION, kind::OUTCOME],
        scope,
    )?;
    Ok(repairs::find(&events))
}

/// The GPU-hours of the recording in `dir` over `window`, its GPUs those of the inventory it was recorded with;
/// XIDs older than an audited reset or reboot are history, as in every view.
fn recorded(
    g: &Global,
    dir: &std::path::Path,
    window: (u64, u64),
    repairs: &[Repair],
) -> Result<Hours, String> {
    let reader = crate::recording::Reader::open(dir)?;
    let inventory = Arc::new(reader.inventory().clone());
    let overlay = Overlay::new(&inventory, repairs);
    let mut ledger = Ledger::new(Arc::clone(&inventory), window, overlay);
    let loaded = super::load::load_inventory(g);
    let (audit, scope) = match &loaded {
        Ok(inv) => (
            crate::actions::run::audit_path(inv),
            crate::actions::run::scope(inv),
        ),
        Err(_) => (
            crate::actions::run::audit_path(&inventory),
            crate::store::Scope::default(),
        ),
    };
    ledger.note_resets(&crate::actions::resets::read(
        &audit,
        scope,
        inventory.simulated,
    ));
    let Some((_, last)) = reader
        .span()
        .filter(|&(first, last)| first < window.1 && last >= window.0)
    else {
        return Ok(ledger.finish(window.0));
    };
    let mut recorded = crate::recording::Messages::open(&reader, window.0, window.1);
    while let Some(item) = recorded.next_recorded() {
        match item? {
            (t, Recorded::Msg(msg)) => ledger.feed(t, msg),
            (t, Recorded::Alive) => ledger.recorder_alive(t),
            (_, Recorded::Workload(_)) => {}
        }
    }
    Ok(ledger.finish(last))
}
