//! The agent's loop: open NVML, say hello, then sample every GPU (with its kernel log, fabric and processes)
//! once per interval, handing each line to the publisher until it stops taking them.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nvml_wrapper::Nvml;

use super::{board, ib, journal, kernel, nvlink, procs, read, state, xid};
use crate::telemetry::kernel_log::Tally;
use crate::telemetry::wire::{AgentHello, EXIT_NO_NVML, MAX_GPUS_PER_SAMPLE};
use crate::telemetry::{GpuError, GpuErrorKind, GpuSample, NodeSample};

/// Environment variable naming the NVML library to load instead of the system's `libnvidia-ml.so.1`.
pub(crate) const NVML_LIB_ENV: &str = "FLEETOP_NVML_LIB";
/// Environment variable naming the kernel log to read instead of `/dev/kmsg`.
pub(crate) const KERNEL_LOG_ENV: &str = "FLEETOP_KERNEL_LOG";
/// Environment variable naming the root under which `sys/class/infiniband` is read instead of `/`.
pub(crate) const SYSFS_ROOT_ENV: &str = "FLEETOP_SYSFS_ROOT";

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub interval: Duration,
    pub once: bool,
    pub nvml_lib: Option<OsString>,
    /// `/dev/kmsg` records or a `dmesg`/`journalctl -k` file; `None`: `$FLEETOP_KERNEL_LOG`, then `/dev/kmsg`.
    pub kernel_log: Option<std::path::PathBuf>,
    /// Where `sys/class/infiniband` is read; `None`: `$FLEETOP_SYSFS_ROOT`, then `/`.
    pub sysfs_root: Option<std::path::PathBuf>,
    /// Where GPU processes are looked up; `None`: `$FLEETOP_PROC_ROOT`, then `/proc`.
    pub proc_root: Option<std::path::PathBuf>,
    /// Where GPU events are journaled across reboots; `None`: `$FLEETOP_JOURNAL`, then no journal.
    pub journal: Option<std::path::PathBuf>,
}

/// What the agent publishes, in order: its hello once, then a sample per interval.
pub enum Published<'a> {
    Hello(&'a AgentHello),
    Sample(&'a NodeSample),
}

/// Runs the agent, handing each hello and sample to `publish`, until it returns false (or after one
/// sample with `once`); returns the exit status.
pub fn run(opts: &AgentOptions, publish: &mut (dyn FnMut(Published) -> bool + Send)) -> i32 {
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
            crate::text::warn(&format!("fleetop agent: cannot use NVML ({shown}): {e}"));
            return EXIT_NO_NVML;
        }
    };
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            crate::text::warn(&format!("fleetop agent: NVML cannot count GPUs: {e}"));
            return EXIT_NO_NVML;
        }
    };
    let devices: Vec<Result<nvml_wrapper::Device, nvml_wrapper::error::NvmlError>> =
        (0..count).map(|i| nvml.device_by_index(i)).collect();
    let watched: Vec<Option<&nvml_wrapper::Device>> =
        devices.iter().map(|d| d.as_ref().ok()).collect();
    let stop = AtomicBool::new(false);
    let xids = xid::XidLog::default();
    std::thread::scope(|scope| {
        if !opts.once {
            scope.spawn(|| xid::watch(&nvml, &watched, &xids, &stop));
        }
        let status = stream(&nvml, &devices, &xids, opts, publish);
        stop.store(true, Ordering::Relaxed);
        status
    })
}

/// One GPU as the agent holds it: open, or the error its handle gave at start.
enum Gpu<'n> {
    Open(read::GpuIdentity, &'n nvml_wrapper::Device<'n>),
    Failed(Box<GpuSample>),
}

fn stream(
    nvml: &Nvml,
    devices: &[Result<nvml_wrapper::Device, nvml_wrapper::error::NvmlError>],
    xids: &xid::XidLog,
    opts: &AgentOptions,
    publish: &mut (dyn FnMut(Published) -> bool + Send),
) -> i32 {
    let gpus: Vec<Gpu> = devices
        .iter()
        .zip(0u32..)
        .take(MAX_GPUS_PER_SAMPLE)
        .map(|(d, i)| match d {
            Ok(d) => Gpu::Open(read::identity(nvml, i, d), d),
            Err(e) => Gpu::Failed(Box::new(GpuSample::failed(
                i,
                read::error_of("handle", e).unwrap_or_else(|| GpuError {
                    kind: GpuErrorKind::Failed,
                    query: "handle".into(),
                    detail: format!("NVML: {e}"),
                }),
            ))),
        })
        .collect();
    let pcis: Vec<_> = gpus
        .iter()
        .map(|g| match g {
            Gpu::Open(id, _) => id.pci,
            Gpu::Failed(_) => None,
        })
        .collect();
    let path = opts
        .kernel_log
        .clone()
        .or_else(|| std::env::var_os(KERNEL_LOG_ENV).map(Into::into))
        .unwrap_or_else(|| kernel::DEFAULT_PATH.into());
    let mut kernel_log = kernel::KernelLog::open(&path, &pcis);
    let hello = AgentHello {
        fleetop_agent: 1,
        version: crate::release::VERSION.into(),
        driver: nvml.sys_driver_version().ok(),
        cuda: nvml
            .sys_cuda_driver_version()
            .ok()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
        gpus: devices.len() as u32,
        kernel: kernel_release(),
        build: Some(crate::release::BUILD.into()),
        compact: None,
    };
    if !publish(Published::Hello(&hello)) {
        return 0;
    }
    let sysfs_root = opts
        .sysfs_root
        .clone()
        .or_else(|| std::env::var_os(SYSFS_ROOT_ENV).map(Into::into))
        .unwrap_or_else(|| "/".into());
    let proc_root: std::path::PathBuf = opts
        .proc_root
        .clone()
        .or_else(|| std::env::var_os(procs::PROC_ROOT_ENV).map(Into::into))
        .unwrap_or_else(|| "/proc".into());
    let processes = procs::Processes::new(Some(proc_root.clone()));
    let mut links: Vec<Option<crate::telemetry::fabric::NvLinks>> = vec![None; gpus.len()];
    let mut windows: Vec<board::Window> = gpus.iter().map(|_| board::Window::default()).collect();
    let mut tick: u64 = 0;
    let mut journal = journal::dir(opts.journal.as_deref()).map(|d| journal::Journal::open(&d));
    loop {
        kernel_log.poll(if opts.once {
            kernel::ONCE_BUDGET
        } else {
            kernel::POLL_BUDGET
        });
        let reread = tick.is_multiple_of(nvlink::EVERY);
        tick = tick.wrapping_add(1);
        if reread {
            for (slot, g) in links.iter_mut().zip(&gpus) {
                *slot = match g {
                    Gpu::Open(_, d) => nvlink::links(d),
                    Gpu::Failed(_) => None,
                };
            }
        }
        let mut sample = NodeSample {
            t: crate::telemetry::unix_ms(),
            gpus: gpus
                .iter()
                .enumerate()
                .map(|(position, g)| {
                    let mut gpu = match g {
                        Gpu::Open(id, d) => {
                            let mut gpu = read::sample(nvml, id, d);
                            if !gpu.errors.iter().any(|e| e.kind == GpuErrorKind::Lost) {
                                gpu.processes = processes.on(d, &mut gpu.errors);
                                let counters = board::read(nvml, d, &mut gpu);
                                if let Some(w) = windows.get_mut(position) {
                                    w.push(std::time::Instant::now(), counters, &mut gpu);
                                }
                            }
                            gpu
                        }
                        Gpu::Failed(failed) => (**failed).clone(),
                    };
                    attach_xids(&mut gpu, kernel_log.gpu(position), xids.for_gpu(position));
                    gpu.pcie_aer = kernel_log.aer(position).cloned();
                    gpu.nvlink = links[position].clone();
                    gpu
                })
                .collect(),
            warnings: kernel_log
                .warnings()
                .into_iter()
                .chain(xids.problem().filter(|_| !opts.once))
                .collect(),
            sxid: kernel_log.sxid(),
            unmatched_xid: kernel_log.unmatched(),
            ib: ib::ports(&sysfs_root),
            past: None,
        };
        sample.sanitize(MAX_GPUS_PER_SAMPLE);
        if opts.once {
            state::rises_since_last_run(&mut sample, &proc_root);
        }
        if let Some(j) = &mut journal {
            j.note(&mut sample);
        }
        if !publish(Published::Sample(&sample)) || opts.once {
            return 0;
        }
        xids.sleep(opts.interval);
    }
}

/// The kernel log is the record since boot; NVML events (since the agent started) stand in when it can't be read.
/// Without either, XIDs are unknown (`None`), never "none" (`[]`).
fn attach_xids(gpu: &mut GpuSample, from_log: Option<&Tally>, from_events: Option<Tally>) {
    let tally = match (from_log, from_events) {
        (Some(log), _) => Some(log.clone()),
        (None, Some(events)) if !events.events().is_empty() => Some(events),
        (None, _) => None,
    };
    gpu.xid = tally.as_ref().map(Tally::codes);
    gpu.xid_events = tally.map(|t| t.events().to_vec());
    // Where NVML does not report the recovery action (drivers before R565), the last XID 154 line says it.
    if gpu.recovery_action.is_none() {
        gpu.recovery_action = crate::telemetry::recovery::from_xid_events(
            gpu.xid_events.as_deref().unwrap_or_default(),
        )
        .map(crate::telemetry::RecoveryAction::raw);
    }
}

/// `uname -r`.
fn kernel_release() -> Option<String> {
    // SAFETY: uname fills the struct we own; the release field is a NUL-terminated C string.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let release = std::ffi::CStr::from_ptr(u.release.as_ptr());
        Some(release.to_string_lossy().into_owned())
    }
}
