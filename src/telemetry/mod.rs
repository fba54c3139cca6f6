//! What a node reports: per-GPU samples, the agent wire format, the nvidia-smi CSV parser and health rules.

pub(crate) mod aer;
mod age;
pub(crate) mod board;
mod bounded;
pub mod catalogue;
pub mod delta;
pub(crate) mod fabric;
pub mod health;
pub(crate) mod identity;
pub mod kernel_log;
pub(crate) mod kernel_record;
pub(crate) mod metric_names;
pub(crate) mod past;
pub mod port_state;
pub mod process;
pub(crate) mod recovery;
pub(crate) mod rise;
mod sample;
pub(crate) mod sanitize;
pub mod smi_csv;
pub mod wire;
pub(crate) mod xid_age;
pub(crate) mod xid_tally;

pub(crate) use sample::RecoveryAction;
pub(crate) use sample::{throttle_names, unix_ms};
pub use sample::{total, GpuError, GpuErrorKind, GpuSample, NodeSample, Source, XidEvent};
