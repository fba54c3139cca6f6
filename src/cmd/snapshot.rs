//! `fleetop snapshot`: one pass over the fleet, rendered as table, JSON, CSV or Prometheus text.

use std::time::{Duration, Instant};

use crate::cli::{Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::runtime::EXIT_CANNOT_RUN;
use crate::snapshot::{self, Report};

pub fn run(g: &Global, args: &SnapshotArgs) -> i32 {
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
    let (inv, transport) = match super::prepare(g, true) {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e.to_string());
            return EXIT_CANNOT_RUN;
        }
    };
    let Some(runtime) = crate::runtime::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    let started = Instant::now();
    let state = runtime.block_on(snapshot::collect(inv, transport.as_ref(), timeout));
    let report = Report::new(&state, &filter, started, Instant::now(), timeout);
    // A reader that went away (`| head`) ends the output quietly; the verdict stands.
    crate::text::print(&report.render(args.format));
    report.summary.exit_code()
}
