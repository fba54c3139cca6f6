//! The TUI's one owner of state: merges transport messages, handles input, and keeps the rows views read.

mod acks;
mod action_state;
mod demo;
pub mod history;
mod input;
pub(crate) mod journal;
mod modes;
pub mod operate;
pub(crate) mod rows;
mod state;
mod tenancy;

pub use super::keymap::{Action, Keymap};
pub use demo::{demo_app, fleet_app};
pub use modes::{Metric, Mode, NodeFilter, SortKey, View};
pub use state::App;
