//! The `--demo` fleet: simulated nodes behind the same `Transport` trait as SSH, speaking the agent wire format.

mod fleet;
pub(crate) mod model;

pub use fleet::{demo_workload, messages};
pub(crate) use fleet::{SimTransport, DEMO_SEED};
