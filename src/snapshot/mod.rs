//! `fleetop snapshot`: one pass over the fleet within a deadline, rendered as table, JSON, CSV or Prometheus text.

mod collect;
pub(crate) mod csv;
mod json;
mod prom;
mod render;
mod report;
mod table;

pub(crate) use collect::look_once;
pub use collect::{collect, look};
pub use render::{prometheus, Format};
pub(crate) use report::Report;

#[cfg(test)]
mod output_tests;
