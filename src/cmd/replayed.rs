//! `snapshot --replay DIR [--at TIME]`: the fleet as a recording holds it at TIME (default: its end), judged as a
//! pass taken then, with the jobs of the last scheduler answer recorded by then; under `--context all` each
//! site's recording (`DIR/SITE/`, as `record --context all` writes them) read as one fleet, a `site` column as
//! live. Nodes a recording holds nothing for are unreachable, as in a live pass.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::actions::sites::SiteAnswer;
use crate::cli::{Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::recording::{Messages, Reader, Recorded};
use crate::runtime::EXIT_CANNOT_RUN;
use crate::snapshot::Report;
use crate::workload::Workload;

pub(super) fn snapshot(
    g: &Global,
    dir: &Path,
    args: &SnapshotArgs,
    filter: &Filter,
    timeout: Duration,
) -> i32 {
    match replay(g, dir, args, filter, timeout) {
        Ok(code) => code,
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

fn replay(
    g: &Global,
    dir: &Path,
    args: &SnapshotArgs,
    filter: &Filter,
    timeout: Duration,
) -> Result<i32, String> {
    let every_site = super::load::every_site_chosen(g);
    let sites: Vec<(String, Reader)> = if every_site {
        super::load::site_names()?
            .into_iter()
            .map(|site| Reader::open(&super::record::site_dir(dir, &site)).map(|r| (site, r)))
            .collect::<Result<_, _>>()?
    } else {
        vec![(String::new(), Reader::open(dir)?)]
    };
    let (first, last) = common_span(dir, &sites)?;
    let at = match &args.at {
        Some(text) => crate::recording::parse_time(text, crate::telemetry::unix_ms())
            .map_err(|e| format!("--at: {e}"))?,
        None => last,
    };
    if at < first || at > last {
        return Err(format!(
            "--at: {} is outside the recording, which runs from {} to {}{}",
            crate::recording::utc(at),
            crate::recording::utc(first),
            crate::recording::utc(last),
            each_span(&sites, every_site)
        ));
    }
    let inv = Arc::new(match &sites[..] {
        [(_, reader)] if !every_site => reader.inventory().clone(),
        _ => {
            let named: Vec<(String, Arc<Inventory>)> = sites
                .iter()
                .map(|(site, r)| (site.clone(), Arc::new(r.inventory().clone())))
                .collect();
            Inventory::merge(&named).ok_or("--context all: config.toml has no [[context]]")?
        }
    });
    let mut state = FleetState::new(Arc::clone(&inv));
    // Every site's messages on one clock, the first recording's: ages are judged at one time.
    let clock = sites.first().map(|(_, r)| r).ok_or("no recording")?;
    let mut answers = Vec::new();
    let mut first_node = 0;
    for (k, (_, reader)) in sites.iter().enumerate() {
        if let Some(workload) = apply_at(reader, at, &mut state, first_node, clock)? {
            answers.push((k, workload));
        }
        first_node += reader.inventory().nodes.len();
    }
    let workload = match inv.merged_sites() {
        [] => answers.pop().map(|(_, w)| w),
        _ if answers.is_empty() => None,
        merged => {
            let answers = answers
                .into_iter()
                .filter_map(|(k, w)| Some(SiteAnswer::of(&inv, merged.get(k)?, w)))
                .collect();
            Some(crate::actions::jobs::merge_sites(&inv, answers))
        }
    };
    // Ages and "not answered" are judged at the recording's time, as a pass taken then would have.
    let then = clock.instant(at);
    let start = then.checked_sub(timeout).unwrap_or(then);
    let mut report = Report::new(&state, filter, start, then, timeout);
    report.taken_at = std::time::UNIX_EPOCH + Duration::from_millis(at);
    if let Some(workload) = &workload {
        report.note_workload(workload, &inv);
    }
    crate::text::print(&report.render(args.format));
    Ok(report.summary.exit_code(args.include_drained))
}

/// The time every recording covers: from the latest first frame to the earliest last.
fn common_span(dir: &Path, sites: &[(String, Reader)]) -> Result<(u64, u64), String> {
    let mut common: Option<(u64, u64)> = None;
    for (site, reader) in sites {
        let (first, last) = reader.span().ok_or_else(|| {
            let shown = super::record::site_dir(dir, site);
            format!("{}: the recording holds no frame yet", shown.display())
        })?;
        common = Some(common.map_or((first, last), |(f, l)| (f.max(first), l.min(last))));
    }
    match common {
        Some((first, last)) if first <= last => Ok((first, last)),
        _ => Err(format!(
            "{}: the sites' recordings share no time to read them at",
            dir.display()
        )),
    }
}

/// Under `--context all`, each site's own span, for a `--at` outside the time they share: which site's recording
/// started late or stopped early.
fn each_span(sites: &[(String, Reader)], every_site: bool) -> String {
    if !every_site {
        return String::new();
    }
    let spans: Vec<String> = sites
        .iter()
        .filter_map(|(site, reader)| {
            let (first, last) = reader.span()?;
            Some(format!(
                "{site}: {} to {}",
                crate::recording::utc(first),
                crate::recording::utc(last)
            ))
        })
        .collect();
    format!(
        " (the time every site's recording covers; {})",
        spans.join(", ")
    )
}

/// Applies the state `reader` holds as of `at` to `state`, its nodes from `first_node` on and its times on
/// `clock`'s; the last scheduler answer recorded by then, if any.
fn apply_at(
    reader: &Reader,
    at: u64,
    state: &mut FleetState,
    first_node: usize,
    clock: &Reader,
) -> Result<Option<Workload>, String> {
    let mut workload = None;
    let mut recorded = Messages::open(reader, at, at);
    while let Some(item) = recorded.next_recorded() {
        match item? {
            (t, Recorded::Msg(mut msg)) => {
                msg.node += first_node;
                msg.at = clock.instant(t);
                state.apply(msg);
            }
            (_, Recorded::Workload(w)) => workload = Some(*w),
            (_, Recorded::Alive) => {}
        }
    }
    Ok(workload)
}
