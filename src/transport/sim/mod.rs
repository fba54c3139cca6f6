//! The `--demo` fleet: simulated nodes behind the same `Transport` trait as SSH, speaking the agent wire format.

mod fleet;
pub(crate) mod model;

pub(crate) use fleet::demo_workload;
pub use fleet::messages;
pub(crate) use fleet::{SimTransport, DEMO_SEED};
