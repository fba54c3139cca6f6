//! Watches NVML's event set for XID errors and recovery-action changes on its own thread (live mode only: the
//! set records nothing from before registration). The kernel log is the record since boot; these events cover
//! nodes where it can't be read. A recovery-action change wakes the sampling loop, so it is sent at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
/// nvml.h `nvmlEventTypeGpuRecoveryAction` (R565 and later). nvml-wrapper 0.13's `EventTypes` has no flag for it
/// and drops the bit from what it reports, so supported types are read raw and the bit is kept by hand.
const GPU_RECOVERY_ACTION_EVENT: u64 = 0x8000;
/// Least time between two samples, however often the driver announces a change.
const MIN_SAMPLE_GAP: Duration = Duration::from_millis(100);

/// XIDs seen through NVML events since the agent started, per GPU position, and why watching stopped.
#[derive(Debug, Default, Clone)]
pub(crate) struct XidLog(Arc<(Mutex<Watched>, Condvar)>);

#[derive(Debug, Default)]
struct Watched {
    per_gpu: Vec<Tally>,
    problem: Option<String>,
    /// The driver announced a recovery-action change the sampling loop has not sampled yet.
    recovery_changed: bool,
}

impl XidLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.0 .0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn for_gpu(&self, position: usize) -> Option<Tally> {
        self.lock().per_gpu.get(position).cloned()
    }

    /// What went wrong with the event watch, for the node's warnings.
    pub(crate) fn problem(&self) -> Option<String> {
        self.lock().problem.clone()
    }

    /// Waits `interval`, or less when the driver announces a recovery-action change (but at least
    /// `MIN_SAMPLE_GAP`, or `interval` if shorter), so the next sample reads the new action at once.
    pub(crate) fn sleep(&self, interval: Duration) {
        std::thread::sleep(interval.min(MIN_SAMPLE_GAP));
        let deadline = Instant::now() + interval.saturating_sub(MIN_SAMPLE_GAP);
        let mut w = self.lock();
        while !w.recovery_changed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            w = match self.0 .1.wait_timeout(w, left) {
                Ok((w, _)) => w,
                Err(p) => p.into_inner().0,
            };
        }
        w.recovery_changed = false;
    }

    fn recovery_changed(&self) {
        self.lock().recovery_changed = true;
        self.0 .1.notify_all();
    }

    fn record(&self, position: usize, xid: u32) {
        let mut w = self.lock();
        if w.per_gpu.len() <= position {
            w.per_gpu.resize(position + 1, Tally::default());
        }
        w.per_gpu[position].add(xid, Some(crate::telemetry::unix_ms()), "", None);
    }

    fn set_problem(&self, problem: Option<String>) {
        self.lock().problem = problem;
    }
}

/// The event types the GPU supports, every bit as NVML gives them.
fn supported_event_types(nvml: &Nvml, device: &Device) -> Option<u64> {
    let get = nvml.lib().nvmlDeviceGetSupportedEventTypes.as_ref().ok()?;
    let mut types: u64 = 0;
    // SAFETY: `types` is a u64 we own; the handle comes from this NVML instance.
    nvml_wrapper::error::nvml_try(unsafe { get(device.handle(), &mut types) }).ok()?;
    Some(types)
}

/// Registers each GPU for the event types it supports among XID, double-bit ECC and recovery action. A
/// refused registration frees the set (nvml.h), so the set is then rebuilt from the GPUs that were accepted.
fn register<'n>(
    nvml: &'n Nvml,
    devices: &[Option<&Device<'n>>],
) -> Result<(EventSet<'n>, usize), NvmlError> {
    let wanted = (EventTypes::CRITICAL_XID_ERROR | EventTypes::DOUBLE_BIT_ECC_ERROR).bits()
        | GPU_RECOVERY_ACTION_EVENT;
    let candidates: Vec<(&Device, EventTypes)> = devices
        .iter()
        .flatten()
        .copied()
        .filter_map(|d| {
            let types = EventTypes::from_bits_retain(supported_event_types(nvml, d)? & wanted);
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

/// Registers each GPU for the XID, double-bit-ECC and recovery-action events it supports and records them
/// until `stop` is set.
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
                    // nvml-wrapper drops the recovery-action bit: of the types registered, only it is left.
                    None if event.event_type.is_empty() => log.recovery_changed(),
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
