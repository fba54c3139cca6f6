//! The one owner of fleet data: applies transport messages and derives node state and health from them.

mod acks;
pub mod drift;
pub mod events;
pub mod filter;
pub mod history;
pub mod memory;
mod node;
pub mod operations;
mod resets;
pub use resets::AuditedReset;
mod rates;
pub mod restart;
mod state;
pub mod view;
mod watch;

pub use acks::{AckedXid, Acknowledged};
pub use node::{Failure, NodeState, NodeStatus};
pub use state::FleetState;
