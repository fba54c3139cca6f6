//! Watches NVML's event set for XID errors on its own thread; the sampler reads what it collected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

/// Most distinct XIDs remembered per GPU; a storm of one XID must not grow memory.
const MAX_XIDS_PER_GPU: usize = 16;
/// XID 999 is NVML's "unknown"; we keep it visible rather than dropping it.
const UNKNOWN_XID: u32 = 999;

/// XIDs seen since the agent started, per GPU index, in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct XidLog(Arc<Mutex<Vec<Vec<u32>>>>);

impl XidLog {
    pub fn for_gpu(&self, index: u32) -> Vec<u32> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.get(index as usize).cloned().unwrap_or_default()
    }

    fn record(&self, index: u32, xid: u32) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let i = index as usize;
        if log.len() <= i {
            log.resize(i + 1, Vec::new());
        }
        if !log[i].contains(&xid) && log[i].len() < MAX_XIDS_PER_GPU {
            log[i].push(xid);
        }
    }
}

/// Registers every GPU for XID and double-bit ECC events and records them until `stop` is set.
/// GPUs that do not support events are skipped; returns a note for stderr when none do.
pub fn watch(nvml: &Nvml, gpus: u32, log: &XidLog, stop: &AtomicBool) -> Option<String> {
    let events = EventTypes::CRITICAL_XID_ERROR | EventTypes::DOUBLE_BIT_ECC_ERROR;
    let mut supported: Vec<u32> = Vec::new();
    let mut set = match nvml.create_event_set() {
        Ok(s) => s,
        Err(e) => return Some(format!("XID events unavailable: {e}")),
    };
    for index in 0..gpus {
        let Ok(device) = nvml.device_by_index(index) else {
            continue;
        };
        match device.register_events(events, set) {
            Ok(s) => {
                set = s;
                supported.push(index);
            }
            // A failed registration consumes the set: rebuild it from the GPUs that worked.
            Err(_) => {
                set = match nvml.create_event_set() {
                    Ok(s) => s,
                    Err(e) => return Some(format!("XID events unavailable: {e}")),
                };
                for &again in &supported {
                    let Ok(d) = nvml.device_by_index(again) else {
                        continue;
                    };
                    match d.register_events(events, set) {
                        Ok(s) => set = s,
                        Err(e) => return Some(format!("XID events unavailable: {}", e.error)),
                    }
                }
            }
        }
    }
    if supported.is_empty() {
        return Some("XID events unsupported on every GPU".into());
    }
    while !stop.load(Ordering::Relaxed) {
        match set.wait(250) {
            Ok(event) => {
                let Ok(index) = event.device.index() else {
                    continue;
                };
                match event.event_data {
                    Some(XidError::Value(v)) => {
                        log.record(index, u32::try_from(v).unwrap_or(UNKNOWN_XID))
                    }
                    Some(XidError::Unknown) => log.record(index, UNKNOWN_XID),
                    // A double-bit ECC event is XID 48 by definition.
                    None if event.event_type.contains(EventTypes::DOUBLE_BIT_ECC_ERROR) => {
                        log.record(index, 48)
                    }
                    None => {}
                }
            }
            Err(NvmlError::Timeout) => {}
            Err(e) => return Some(format!("XID event wait failed: {e}")),
        }
    }
    None
}
