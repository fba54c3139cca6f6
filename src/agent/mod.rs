//! Node side: `fleetop agent` reads every GPU through NVML and streams the agent wire format on stdout.

mod read;
mod xid;

use std::ffi::OsString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nvml_wrapper::Nvml;

use crate::telemetry::wire::AgentHello;
use crate::telemetry::NodeSample;

/// Exit status when NVML cannot be loaded or initialised (sysexits' EX_UNAVAILABLE).
/// The SSH transport maps it to the node state `no-gpu-driver`.
pub const EXIT_NO_NVML: i32 = 69;
/// Environment variable naming the NVML library to load instead of the system's `libnvidia-ml.so.1`.
pub const NVML_LIB_ENV: &str = "FLEETOP_NVML_LIB";

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub interval: Duration,
    pub once: bool,
    pub nvml_lib: Option<OsString>,
}

/// Runs the agent until stdout closes (or after one sample with `once`); returns the exit status.
pub fn run(opts: &AgentOptions) -> i32 {
    let lib = opts
        .nvml_lib
        .clone()
        .or_else(|| std::env::var_os(NVML_LIB_ENV));
    let mut builder = Nvml::builder();
    if let Some(path) = &lib {
        builder.lib_path(path);
    }
    let nvml = match builder.init() {
        Ok(n) => n,
        Err(e) => {
            let shown = lib.as_ref().map_or("libnvidia-ml.so.1".into(), |p| {
                p.to_string_lossy().into_owned()
            });
            eprintln!("fleetop agent: cannot use NVML ({shown}): {e}");
            return EXIT_NO_NVML;
        }
    };
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetop agent: NVML cannot count GPUs: {e}");
            return EXIT_NO_NVML;
        }
    };
    let stop = AtomicBool::new(false);
    let xids = xid::XidLog::default();
    std::thread::scope(|scope| {
        if !opts.once {
            scope.spawn(|| {
                if let Some(note) = xid::watch(&nvml, count, &xids, &stop) {
                    eprintln!("fleetop agent: {note}");
                }
            });
        }
        let status = stream(&nvml, count, &xids, opts);
        stop.store(true, Ordering::Relaxed);
        status
    })
}

fn stream(nvml: &Nvml, count: u32, xids: &xid::XidLog, opts: &AgentOptions) -> i32 {
    let devices: Vec<_> = (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok().map(|d| (i, d)))
        .collect();
    let identities: Vec<_> = devices.iter().map(|(i, d)| read::identity(*i, d)).collect();
    let hello = AgentHello {
        fleetop_agent: 1,
        version: env!("CARGO_PKG_VERSION").into(),
        driver: nvml.sys_driver_version().ok(),
        cuda: nvml
            .sys_cuda_driver_version()
            .ok()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
        gpus: count,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !emit(&mut out, &hello) {
        return 0;
    }
    loop {
        let sample = NodeSample {
            t: crate::telemetry::unix_ms(),
            gpus: devices
                .iter()
                .zip(&identities)
                .map(|((_, d), id)| read::sample(id, d, xids.for_gpu(id.index)))
                .collect(),
        };
        if !emit(&mut out, &sample) || opts.once {
            return 0;
        }
        std::thread::sleep(opts.interval);
    }
}

/// Writes one NDJSON line; false once stdout is closed, which means the jump host went away (a normal end).
fn emit(out: &mut impl Write, value: &impl serde::Serialize) -> bool {
    let Ok(mut line) = serde_json::to_vec(value) else {
        return false;
    };
    line.push(b'\n');
    out.write_all(&line).and_then(|()| out.flush()).is_ok()
}
