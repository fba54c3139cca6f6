//! The one owner of fleet data: applies transport messages and derives node state and health from them.

mod acks;
pub(crate) mod drift;
pub(crate) mod events;
pub mod filter;
pub(crate) mod history;
mod judgement;
pub(crate) mod memory;
mod node;
pub(crate) mod operations;
#[cfg(test)]
mod patch_tests;
mod resets;
mod reuse;
pub use resets::AuditedReset;
mod rates;
pub(crate) mod restart;
pub mod sites;
mod state;
pub mod view;
mod watch;

pub(crate) use acks::AckedXid;
pub use node::{Failure, NodeState, NodeStatus};
pub use state::FleetState;
