//! The output formats and the one dispatch to their renderers; the agent's `/metrics` is the `prom` format.

use std::time::Instant;

use super::report::Report;
use super::{csv, json, prom, table};
use crate::fleet::view::Pending;
use crate::fleet::FleetState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Prom,
}

/// Prometheus text of every node `state` holds, judged as live views judge them at `now`: the agent's
/// `/metrics`, the same families `snapshot --format prom` writes.
pub fn prometheus(state: &FleetState, now: Instant) -> String {
    Report::of(
        state,
        state.node_views(now, Pending::Connecting),
        Vec::new(),
    )
    .render(Format::Prom)
}

impl Report<'_> {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => table::render(self),
            Format::Json => json::render(self),
            Format::Csv => csv::render(self),
            Format::Prom => prom::render(self),
        }
    }
}
