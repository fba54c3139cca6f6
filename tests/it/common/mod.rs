//! Test harness, split by what each part starts: the loopback sshd fleet (`fleet`), the fake NVML library
//! (`fake_nvml`), Slurm (`slurm`), Prometheus (`prometheus`), tmux (`tmux`); `process` and `captures` are what
//! they share.
// The benches (`benches/fleet/`) use part of the harness; the rest is for the tests.
#![allow(dead_code, unused_imports)]

pub mod captures;
pub mod fake_nvml;
pub mod fleet;
pub mod process;
pub mod prometheus;
pub mod slurm;
pub mod tmux;

pub use captures::{fixture, gpu_rows, node, noheader_row};
pub use fake_nvml::{exporter_agent, shared, Spec};
pub use fleet::{Behaviour, Fleet, Quirks};
pub use process::{fleetop_bin, free_port, run_bounded, stdout_of_success, wait_bounded, Killed};
pub use prometheus::{prometheus, promtool_check, wait_for_series};
