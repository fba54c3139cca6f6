//! fleetop: watch a GPU fleet over SSH from one jump host: NVML agent, transports, fleet state and views.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actions;
pub mod agent;
pub mod cli;
pub mod cmd;
pub mod config;
pub(crate) mod dirs;
pub mod exporter;
pub mod fleet;
pub mod inventory;
pub mod ledger;
pub mod recording;
pub mod release;
pub(crate) mod repair;
pub mod rma;
pub mod runtime;
pub(crate) mod snapshot;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod timings;
pub mod transport;
pub mod tui;
pub mod workload;
