//! Reads a GPU's NVLinks through nvml-wrapper: which are active, and their data-link error counters.

use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Device;

use crate::telemetry::fabric::{NvLinkCounts, NvLinkErrors, NvLinks, MAX_NVLINKS};

/// Live agents read NVLinks every this many samples (up to 90 NVML calls per GPU) and repeat the last
/// reading in between; a counter that rises is still seen within seconds.
pub(crate) const EVERY: u64 = 10;

/// The GPU's links, up to the first one NVML does not know; `None` for a GPU without NVLink or one whose
/// first link cannot be read (its other queries report why).
pub(crate) fn links(device: &Device) -> Option<NvLinks> {
    let mut read = Vec::new();
    for link in 0..MAX_NVLINKS as u32 {
        let wrapper = device.link_wrapper_for(link);
        let active = match wrapper.is_active() {
            Ok(a) => a,
            Err(NvmlError::NotSupported | NvmlError::InvalidArg) => break,
            Err(_) if read.is_empty() => return None,
            Err(_) => break,
        };
        let counter = |c| wrapper.error_counter(c).ok();
        let errors = NvLinkErrors {
            link,
            counts: NvLinkCounts {
                replay: counter(ErrorCounter::DlReplay),
                recovery: counter(ErrorCounter::DlRecovery),
                crc_flit: counter(ErrorCounter::DlCrcFlit),
                crc_data: counter(ErrorCounter::DlCrcData),
            },
        };
        read.push((link, active, errors));
    }
    (!read.is_empty()).then(|| NvLinks::from_links(&read))
}
