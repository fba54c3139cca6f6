//! `fleetop snapshot`: one pass over the fleet, rendered as table, JSON, CSV or Prometheus text.

use std::time::{Duration, Instant};

use crate::cli::{Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::snapshot::{self, Report};
use crate::transport::prometheus::PrometheusTransport;

pub fn run(g: &Global, args: &SnapshotArgs) -> i32 {
    let mut phases = crate::timings::Phases::start();
    let filter = match Filter::parse(args.filter.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            crate::text::warn(&format!("--filter: {e}"));
            return EXIT_CANNOT_RUN;
        }
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        crate::text::warn(&format!(
            "--timeout: {} is not a number of seconds between 0 and 86400 (one day)",
            args.timeout
        ));
        return EXIT_CANNOT_RUN;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let (inv, mut transport) = match super::prepare(g, true) {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e.to_string());
            return EXIT_CANNOT_RUN;
        }
    };
    if let Some(at) = &args.at {
        let Some(source) = inv.prometheus.clone() else {
            crate::text::warn("--at needs a Prometheus source ([source] kind = \"prometheus\" or --source prometheus=URL): the nodes themselves keep no history");
            return EXIT_CANNOT_RUN;
        };
        match past(at) {
            Ok(t) => transport = Box::new(PrometheusTransport::new(source).one_pass().at(t)),
            Err(e) => {
                crate::text::warn(&e);
                return EXIT_CANNOT_RUN;
            }
        }
    }
    phases.lap(format!(
        "start-up: configuration, inventory of {} nodes",
        inv.nodes.len()
    ));
    let Some(runtime) = crate::runtime::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    let started = Instant::now();
    // XIDs from before a GPU's last audited reset or reboot are history, not faults.
    let resets = crate::actions::resets::read(&crate::actions::run::audit_path(&inv));
    let mut state = runtime.block_on(snapshot::collect(inv, transport.as_ref(), timeout));
    state.note_resets(&resets);
    phases.lap("collect: until every node answered");
    let report = Report::new(&state, &filter, started, Instant::now(), timeout);
    phases.lap("judge: views, verdicts, drift");
    let text = report.render(args.format);
    phases.lap(format!(
        "render {:?}: {:.1} MB",
        args.format,
        text.len() as f64 / 1e6
    ));
    // A reader that went away (`| head`) ends the output quietly; the verdict stands.
    crate::text::print(&text);
    if args.timings {
        phases.lap("write");
        let source = transport.timings().unwrap_or_default();
        eprint!("{}{source}", phases.render());
    }
    report.summary.exit_code()
}

/// `--at`: an RFC 3339 time (`2026-11-27T03:12:00Z`) or an age before now (`2h`, `90s`).
fn past(text: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!(
            "--at: {:?} is neither a time (2026-11-27T03:12:00Z) nor an age (2h)",
            crate::text::escape(text)
        )
    })?;
    std::time::SystemTime::now()
        .checked_sub(age)
        .ok_or_else(|| format!("--at: {text} is before the clock's start"))
}
