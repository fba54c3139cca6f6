//! `fleetop agent`: the node side, reading NVML and the kernel log and streaming samples on stdout.

use std::time::Duration;

use crate::agent::{self, AgentOptions};
use crate::cli::AgentArgs;

pub fn run(a: AgentArgs) -> i32 {
    agent::run(&AgentOptions {
        interval: Duration::from_millis(a.interval.max(1)),
        once: a.once,
        nvml_lib: a.nvml_lib.map(|p| p.into_os_string()),
        kernel_log: a.kernel_log,
    })
}
