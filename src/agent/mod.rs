//! Node side: `fleetop agent` reads every GPU through NVML and streams the agent wire format on stdout.

pub(crate) mod board;
mod fields;
mod ib;
pub mod journal;
pub mod kernel;
mod nvlink;
mod procs;
mod read;
mod sampling;
mod state;
mod stdout;
mod xid;

pub use sampling::{run, AgentOptions, Published};
pub(crate) use stdout::Stdout;
