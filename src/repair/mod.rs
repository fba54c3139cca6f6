//! The repair workflow: drain → wait until no job runs → the least disruptive remedy (a GPU reset, or a reboot
//! and the wait until the node went down and came back answering; a failed reset escalates to a
//! reboot) → validate → undrain, or keep it drained with the reason when it came back crit, failed its
//! validation, or has a GPU repaired too often for the same cause (held for inspection). One resumable
//! state machine per node; every command goes through the action runner, every wait is an audited
//! intent/outcome, and the state is saved after each change so a crash resumes where it stopped.

mod act;
mod audited;
pub mod history;
mod preview;
pub mod remedy;
mod reset;
mod run;
pub mod start;
mod steps;
pub mod store;
pub mod validate;
mod workflow;

pub use preview::commands;
pub(crate) use preview::remedy_lines;
pub use run::run;
pub use workflow::{Context, Event, Step};
pub(crate) use workflow::{Limits, Workflow};
