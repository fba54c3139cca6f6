//! Drain, undrain, reboot and GPU reset: plans of exact commands, guards, the audit log, and execution.

pub(crate) mod after;
pub mod audit;
pub(crate) mod deploy;
pub mod exec;
pub(crate) mod jobs;
pub mod plan;
pub(crate) mod probe;
mod redfish;
pub(crate) mod reset;
pub mod resets;
pub(crate) mod run;
pub(crate) mod sites;
pub(crate) mod slim;
pub mod status;

mod guard;
mod request;

pub(crate) use guard::read_only_refusal;
pub use guard::{guard, read_only};
pub use request::{operator, ActionKind, Request};
pub(crate) use run::record_id;
pub use run::{execute_step, NodeResult};
