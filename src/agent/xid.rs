//! Watches NVML's event set for XID errors on its own thread (live mode only: the set records nothing from
//! before registration). The kernel log is the record since boot; these events cover nodes where it can't be read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, EventSet, Nvml};

use crate::telemetry::kernel_log::Tally;

/// XID 999 is NVML's "unknown"; kept visible rather than dropped.
const UNKNOWN_XID: u32 = 999;
/// A double-bit ECC event is XID 48 by definition.
const DBE_XID: u32 = 48;
/// Pause after a failed wait, so a broken event set cannot spin a core.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// XIDs seen through NVML events since the agent started, per GPU position, and why watching stopped.
#[derive(Debug, Default, Clone)]
pub(crate) struct XidLog(Arc<Mutex<Watched>>);

#[derive(Debug, Default)]
struct Watched {
    per_gpu: Vec<Tally>,
    problem: Option<String>,
}

impl XidLog {
    pub(crate) fn for_gpu(&self, position: usize) -> Option<Tally> {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.per_gpu.get(position).cloned()
    }

    /// What went wrong with the event watch, for the node's warnings.
    pub(crate) fn problem(&self) -> Option<String> {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.problem.clone()
    }

    fn record(&self, position: usize, xid: u32) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if w.per_gpu.len() <= position {
            w.per_gpu.resize(position + 1, Tally::default());
        }
        w.per_gpu[position].add(xid, Some(crate::telemetry::unix_ms()), "", None);
    }

    fn set_problem(&self, problem: Option<String>) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.problem = problem;
    }
}

/// Registers each GPU for the event types it supports among XID and double-bit ECC. A refused registration
/// frees the set (nvml.h), so the set is then rebuilt from the GPUs that were accepted.
fn register<'n>(
    nvml: &'n Nvml,
    devices: &[Option<&Device<'n>>],
) -> Result<(EventSet<'n>, usize), NvmlError> {
    let wanted = EventTypes::CRITICAL_XID_ERROR | EventTypes::DOUBLE_BIT_ECC_ERROR;
    let candidates: Vec<(&Device, EventTypes)> = devices
        .iter()
        .flatten()
        .copied()
        .filter_map(|d| {
            let types = d.supported_event_types().ok()? & wanted;
            (!types.is_empty()).then_some((d, types))
        })
        .collect();
    let mut accepted: Vec<usize> = Vec::new();
    let mut set = nvml.create_event_set()?;
    for (i, (device, types)) in candidates.iter().enumerate() {
        match device.register_events(*types, set) {
            Ok(s) => {
                set = s;
                accepted.push(i);
            }
            Err(_) => {
                set = nvml.create_event_set()?;
                for &j in &accepted {
                    let (d, t) = candidates[j];
                    set = d.register_events(t, set).map_err(|e| e.error)?;
                }
            }
        }
    }
    Ok((set, accepted.len()))
}

/// Registers each GPU for the XID and double-bit-ECC events it supports and records them until `stop` is set.
/// `devices[i]` is the GPU at position i of the samples; `None` for a GPU whose handle could not be opened.
pub(crate) fn watch(nvml: &Nvml, devices: &[Option<&Device>], log: &XidLog, stop: &AtomicBool) {
    let (set, registered) = match register(nvml, devices) {
        Ok(r) => r,
        Err(e) => return log.set_problem(Some(format!("XID events unavailable: {e}"))),
    };
    if registered == 0 {
        return log.set_problem(Some("XID events unsupported on every GPU".into()));
    }
    while !stop.load(Ordering::Relaxed) {
        match set.wait(250) {
            Ok(event) => {
                log.set_problem(None);
                let Ok(index) = event.device.index() else {
                    continue;
                };
                let Some(position) = devices
                    .iter()
                    .position(|d| d.as_ref().and_then(|d| d.index().ok()) == Some(index))
                else {
                    continue;
                };
                match event.event_data {
                    Some(XidError::Value(v)) => {
                        log.record(position, u32::try_from(v).unwrap_or(UNKNOWN_XID))
                    }
                    Some(XidError::Unknown) => log.record(position, UNKNOWN_XID),
                    None if event.event_type.contains(EventTypes::DOUBLE_BIT_ECC_ERROR) => {
                        log.record(position, DBE_XID)
                    }
                    None => {}
                }
            }
            Err(NvmlError::Timeout) => {}
            // One GPU fell off the bus: its own queries say so; keep watching the others.
            Err(NvmlError::GpuLost) => std::thread::sleep(RETRY_AFTER),
            Err(e) => {
                log.set_problem(Some(format!("XID event wait failed: {e}; retrying")));
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}
