//! Drain, undrain, reboot and GPU reset: plans of exact commands, guards, the audit log, and execution.

pub mod after;
pub mod audit;
pub mod deploy;
pub mod exec;
pub mod jobs;
pub mod plan;
pub mod probe;
mod redfish;
pub mod reset;
pub mod resets;
pub mod run;
pub mod slim;
pub mod status;

mod guard;
mod request;

pub use guard::{guard, read_only, read_only_refusal};
pub use request::{operator, ActionKind, Request};
pub(crate) use run::record_id;
pub use run::{execute_step, execute_step_noting, NodeResult};
