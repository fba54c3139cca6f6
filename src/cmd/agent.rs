//! `fleetop agent`: the node side, reading NVML and the kernel log and streaming samples on stdout, or
//! serving them to Prometheus with `--listen`.

use std::time::Duration;

use crate::agent::{self, AgentOptions};
use crate::cli::AgentArgs;
use crate::exporter::Exporter;
use crate::runtime::EXIT_CANNOT_RUN;

pub fn run(a: AgentArgs) -> i32 {
    let opts = AgentOptions {
        interval: Duration::from_millis(a.interval.max(1)),
        once: a.once,
        nvml_lib: a.nvml_lib.map(|p| p.into_os_string()),
        kernel_log: a.kernel_log,
        sysfs_root: a.sysfs_root,
        proc_root: a.proc_root,
        journal: a.journal,
    };
    match a.listen {
        None => {
            let mut stdout = agent::Stdout::new(opts.once);
            agent::run(&opts, &mut |published| match published {
                agent::Published::Hello(h) => stdout.hello(h),
                agent::Published::Sample(s) => stdout.sample(s),
            })
        }
        Some(addr) => match Exporter::start(&addr) {
            Ok(exporter) => agent::run(&opts, &mut |published| exporter.publish(published)),
            Err(e) => {
                crate::text::warn(&format!("fleetop agent: {e}"));
                EXIT_CANNOT_RUN
            }
        },
    }
}
