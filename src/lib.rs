//! fleetop: watch a GPU fleet over SSH from one jump host: NVML agent, transports, fleet state and views.

pub mod actions;
pub mod actions_cli;
pub mod agent;
pub mod app;
pub mod check;
pub mod cli;
pub mod dirs;
pub mod fleet;
pub mod inventory;
pub mod live;
pub mod snapshot;
pub mod telemetry;
pub mod text;
pub mod transport;
pub mod tui;
