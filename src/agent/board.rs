//! Reads a GPU's board values (telemetry/board.rs) through NVML: PCIe link maxima and replays, fabric registration,
//! SRAM and unrepairable-memory status, the row-remap histogram and clock violation counters. These are extra
//! queries: only the errors that mean the GPU itself is in trouble (lost, needs a reset, unknown) are kept; any
//! other refusal (older driver, no permission, another struct version) leaves the value `None`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use nvml_wrapper::enum_wrappers::device::PerformancePolicy;
use nvml_wrapper::error::{nvml_try, NvmlError};
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlGpuFabricInfoV_t, nvmlGpuFabricInfo_t, nvmlGpuFabricInfo_v2_t, nvmlReturn_t,
    nvmlRowRemapperHistogramValues_t,
};

use super::read::error_of;
use crate::telemetry::board::{ClockViolation, FabricState, GpuFabric, RemapBanks, Rise};
use crate::telemetry::{GpuErrorKind, GpuSample};

/// nvml.h NVML_ERROR_ARGUMENT_VERSION_MISMATCH and NVML_ERROR_FUNCTION_NOT_FOUND: the driver wants another
/// struct version.
const VERSION_MISMATCH: nvmlReturn_t = 25;
const FUNCTION_NOT_FOUND: nvmlReturn_t = 13;
/// How far back a counter's rise is measured: DCGM's health watches look at the last minute.
const WINDOW: Duration = Duration::from_secs(60);
/// Readings kept per GPU, whatever the interval.
const MAX_READINGS: usize = 128;
/// What the span of a window in which nothing rose is rounded up to (at most [`WINDOW`]). No rule reads the span
/// of a rise of 0 (DCGM's rules judge a rise per minute), and the exact span, the age of the oldest reading,
/// moves with the sampling jitter: sent as is, every idle GPU would put a change on the compact stream every
/// second, and the jump host would take and judge every idle node anew every second.
const QUIET_SPAN_STEP_MS: u64 = 10_000;

/// The counters whose rise is judged, read once per sample.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) replay: Option<u64>,
    /// Violation time in ns (nvmlViolationTime_t.violationTime).
    pub(crate) power_ns: Option<u64>,
    pub(crate) thermal_ns: Option<u64>,
}

/// Fills the GPU's board values and returns its counters for [`Window::push`].
pub(crate) fn read(nvml: &Nvml, device: &Device, gpu: &mut GpuSample) -> Counters {
    gpu.pcie_max_gen = kept(gpu, "pcie.link.gen.max", device.max_pcie_link_gen());
    gpu.pcie_max_width = kept(gpu, "pcie.link.width.max", device.max_pcie_link_width());
    let replay = kept(gpu, "pcie.replay_counter", device.pcie_replay_counter()).map(u64::from);
    gpu.pcie_replay = replay;
    gpu.fabric = kept(gpu, "fabric", fabric(nvml, device)).flatten();
    gpu.remap_banks = kept(gpu, "remapped_rows.histogram", remap_banks(nvml, device));
    gpu.sram_threshold_exceeded =
        kept(gpu, "ecc.sram", sram_threshold_exceeded(nvml, device)).flatten();
    gpu.memory_unrepairable = kept(
        gpu,
        "memory.unrepairable",
        memory_unrepairable(nvml, device),
    )
    .flatten();
    let violation = |policy| {
        device
            .violation_status(policy)
            .ok()
            .map(|v| v.violation_time)
    };
    Counters {
        replay,
        power_ns: violation(PerformancePolicy::Power),
        thermal_ns: violation(PerformancePolicy::Thermal),
    }
}

/// The value, or `None`; an error that says the GPU is in trouble is kept on the sample.
fn kept<T>(gpu: &mut GpuSample, query: &str, result: Result<T, NvmlError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            if let Some(error) = error_of(query, &e).filter(|e| {
                matches!(
                    e.kind,
                    GpuErrorKind::Lost | GpuErrorKind::ResetRequired | GpuErrorKind::Unknown
                )
            }) {
                gpu.errors.push(error);
            }
            None
        }
    }
}

/// NVML_STRUCT_VERSION(name, n): the struct's size with the version in the top byte.
fn struct_version<T>(n: u32) -> u32 {
    std::mem::size_of::<T>() as u32 | (n << 24)
}

/// nvmlDeviceGetGpuFabricInfoV (version 3, then 2), else the older nvmlDeviceGetGpuFabricInfo; `Ok(None)` where
/// the GPU is on no fabric (NVML_GPU_FABRIC_STATE_NOT_SUPPORTED) or the driver has neither call.
fn fabric(nvml: &Nvml, device: &Device) -> Result<Option<GpuFabric>, NvmlError> {
    if let Ok(get) = nvml.lib().nvmlDeviceGetGpuFabricInfoV.as_ref() {
        for version in [3, 2] {
            // SAFETY: plain C data; all-zero is a valid value.
            let mut info: nvmlGpuFabricInfoV_t = unsafe { std::mem::zeroed() };
            // The v3 struct holds the v2 one as its beginning, so it can take either answer.
            info.version = if version == 3 {
                struct_version::<nvmlGpuFabricInfoV_t>(3)
            } else {
                struct_version::<nvmlGpuFabricInfo_v2_t>(2)
            };
            // SAFETY: `info` is a valid, versioned struct; the handle comes from this NVML instance.
            let status = unsafe { get(device.handle(), &mut info) };
            if status == VERSION_MISMATCH || status == FUNCTION_NOT_FOUND {
                continue;
            }
            not_supported_is_none(nvml_try(status))?;
            if status != 0 {
                return Ok(None);
            }
            return Ok(FabricState::from_raw(info.state).map(|state| GpuFabric {
                state,
                status: (state == FabricState::Completed).then_some(info.status),
                health_mask: Some(info.healthMask),
                clique_id: Some(info.cliqueId),
            }));
        }
    }
    let Ok(get) = nvml.lib().nvmlDeviceGetGpuFabricInfo.as_ref() else {
        return Ok(None);
    };
    // SAFETY: plain C data; all-zero is a valid value.
    let mut info: nvmlGpuFabricInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid struct; the handle comes from this NVML instance.
    let status = unsafe { get(device.handle(), &mut info) };
    not_supported_is_none(nvml_try(status))?;
    if status != 0 {
        return Ok(None);
    }
    Ok(FabricState::from_raw(info.state).map(|state| GpuFabric {
        state,
        status: (state == FabricState::Completed).then_some(info.status),
        health_mask: None,
        clique_id: Some(info.cliqueId),
    }))
}

/// `Ok` for success and for "this GPU or driver does not offer it".
fn not_supported_is_none(r: Result<(), NvmlError>) -> Result<(), NvmlError> {
    match r {
        Err(NvmlError::NotSupported | NvmlError::FunctionNotFound) => Ok(()),
        other => other,
    }
}

fn remap_banks(nvml: &Nvml, device: &Device) -> Result<RemapBanks, NvmlError> {
    let get = nvml
        .lib()
        .nvmlDeviceGetRowRemapperHistogram
        .as_ref()
        .map_err(|_| NvmlError::FunctionNotFound)?;
    // SAFETY: plain C data; all-zero is a valid value.
    let mut h: nvmlRowRemapperHistogramValues_t = unsafe { std::mem::zeroed() };
    // SAFETY: `h` is a valid struct; the handle comes from this NVML instance.
    nvml_try(unsafe { get(device.handle(), &mut h) })?;
    Ok(RemapBanks {
        max: h.max,
        high: h.high,
        partial: h.partial,
        low: h.low,
        none: h.none,
    })
}

/// nvml.h `nvmlEccSramErrorStatus_v1_t` (R550 and later; not in the bindings this build uses).
#[repr(C)]
struct SramErrorStatus {
    version: u32,
    counts: [u64; 11],
    threshold_exceeded: u32,
}

/// nvml.h `nvmlUnrepairableMemoryStatus_v1_t` (R575 and later).
#[repr(C)]
struct UnrepairableMemoryStatus {
    version: u32,
    unrepairable: u32,
}

/// Calls an NVML function the bindings do not name, looked up in the loaded library; `Ok(None)` where the
/// driver lacks it or the GPU does not support it.
fn versioned_call<T>(
    nvml: &Nvml,
    device: &Device,
    symbol: &[u8],
    mut value: T,
) -> Result<Option<T>, NvmlError> {
    // SAFETY: the symbol is an NVML entry point taking a device handle and a pointer to the versioned struct T,
    // as nvml.h declares it.
    let get = unsafe {
        nvml.lib()
            .__library
            .get::<unsafe extern "C" fn(nvmlDevice_t, *mut T) -> nvmlReturn_t>(symbol)
    };
    let Ok(get) = get else { return Ok(None) };
    // SAFETY: `value` is a valid, versioned struct; the handle comes from this NVML instance.
    let status = unsafe { get(device.handle(), &mut value) };
    if status == VERSION_MISMATCH {
        return Ok(None);
    }
    match nvml_try(status) {
        Ok(()) => Ok(Some(value)),
        Err(NvmlError::NotSupported | NvmlError::FunctionNotFound | NvmlError::NoPermission) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn sram_threshold_exceeded(nvml: &Nvml, device: &Device) -> Result<Option<bool>, NvmlError> {
    let status = SramErrorStatus {
        version: struct_version::<SramErrorStatus>(1),
        counts: [0; 11],
        threshold_exceeded: 0,
    };
    Ok(
        versioned_call(nvml, device, b"nvmlDeviceGetSramEccErrorStatus\0", status)?
            .map(|s| s.threshold_exceeded != 0),
    )
}

fn memory_unrepairable(nvml: &Nvml, device: &Device) -> Result<Option<bool>, NvmlError> {
    let status = UnrepairableMemoryStatus {
        version: struct_version::<UnrepairableMemoryStatus>(1),
        unrepairable: 0,
    };
    Ok(versioned_call(
        nvml,
        device,
        b"nvmlDeviceGetUnrepairableMemoryFlag\0",
        status,
    )?
    .map(|s| s.unrepairable != 0))
}

/// One GPU's recent counter readings, to say how much each rose over the last minute.
#[derive(Debug, Default)]
pub(crate) struct Window {
    readings: VecDeque<(Instant, Counters)>,
}

impl Window {
    /// Takes this sample's counters and fills the GPU's rises against the oldest reading within [`WINDOW`]; the
    /// first reading (as with `agent --once`) has nothing to compare with, so the rises stay `None`.
    pub(crate) fn push(&mut self, now: Instant, counters: Counters, gpu: &mut GpuSample) {
        while self
            .readings
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > WINDOW)
            || self.readings.len() >= MAX_READINGS
        {
            self.readings.pop_front();
        }
        if let Some((at, before)) = self.readings.front().copied() {
            let over_ms = now.saturating_duration_since(at).as_millis() as u64;
            let rise = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
            if over_ms > 0 {
                gpu.pcie_replay_rise = rise(before.replay, counters.replay).map(|by| Rise {
                    by,
                    over_ms: span_sent(over_ms, by == 0),
                });
                let ms = |a, b| rise(a, b).map(|ns| (ns / 1_000_000).min(over_ms));
                let power_ms = ms(before.power_ns, counters.power_ns);
                let thermal_ms = ms(before.thermal_ns, counters.thermal_ns);
                if power_ms.is_some() || thermal_ms.is_some() {
                    let quiet = power_ms.unwrap_or(0) == 0 && thermal_ms.unwrap_or(0) == 0;
                    gpu.clock_violation = Some(ClockViolation {
                        over_ms: span_sent(over_ms, quiet),
                        power_ms,
                        thermal_ms,
                    });
                }
            }
            // A counter that went down was reset with the driver: start over from this reading.
            if rise(before.replay, counters.replay).is_none()
                && counters.replay.is_some()
                && before.replay.is_some()
            {
                self.readings.clear();
            }
        }
        self.readings.push_back((now, counters));
    }
}

/// The window's span as sent: exact where something rose (what the rules divide by), else rounded up to
/// [`QUIET_SPAN_STEP_MS`] so that it stays the same from one sample to the next.
fn span_sent(over_ms: u64, quiet: bool) -> u64 {
    if !quiet {
        return over_ms;
    }
    let window_ms = WINDOW.as_millis() as u64;
    over_ms
        .div_ceil(QUIET_SPAN_STEP_MS)
        .saturating_mul(QUIET_SPAN_STEP_MS)
        .min(window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_over_the_last_minute_and_a_reset_counter_starts_over() {
        let mut w = Window::default();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let c = |replay, thermal_s: u64| Counters {
            replay: Some(replay),
            power_ns: None,
            thermal_ns: Some(thermal_s * 1_000_000_000),
        };
        let mut g = GpuSample::default();
        w.push(at(0), c(10, 0), &mut g);
        assert_eq!(g.pcie_replay_rise, None, "one reading is no rise");
        assert_eq!(g.clock_violation, None);
        w.push(at(30), c(15, 3), &mut g);
        assert_eq!(
            g.pcie_replay_rise,
            Some(Rise {
                by: 5,
                over_ms: 30_000
            })
        );
        assert_eq!(g.clock_violation.unwrap().thermal_ms, Some(3000));
        assert_eq!(g.clock_violation.unwrap().power_ms, None);
        let mut g = GpuSample::default();
        w.push(at(90), c(40, 3), &mut g);
        assert_eq!(
            g.pcie_replay_rise,
            Some(Rise {
                by: 25,
                over_ms: 60_000
            }),
            "the reading older than a minute is dropped"
        );
        assert_eq!(g.clock_violation.unwrap().thermal_ms, Some(0));
        let mut g = GpuSample::default();
        w.push(at(95), c(2, 0), &mut g);
        assert_eq!(
            g.pcie_replay_rise, None,
            "a counter that went down is no rise"
        );
        let mut g = GpuSample::default();
        w.push(at(100), c(3, 0), &mut g);
        assert_eq!(
            g.pcie_replay_rise,
            Some(Rise {
                by: 1,
                over_ms: 5_000
            })
        );
    }
}

#[cfg(test)]
mod quiet_tests {
    use super::*;
    use crate::telemetry::delta::{Encoder, DELTA_PREFIX};
    use crate::telemetry::NodeSample;

    /// Counters of a GPU on which nothing rises: replays and violation time standing still.
    fn idle() -> Counters {
        Counters {
            replay: Some(7),
            power_ns: Some(5_000_000_000),
            thermal_ns: Some(0),
        }
    }

    /// Pushes `seconds` readings, one a second with a few milliseconds of jitter, into one window per GPU;
    /// each second's sample, the rises filled in.
    fn follow(gpus: u32, seconds: u64, counters: impl Fn(u64) -> Counters) -> Vec<NodeSample> {
        let t0 = Instant::now();
        let mut windows: Vec<Window> = (0..gpus).map(|_| Window::default()).collect();
        (0..seconds)
            .map(|s| {
                let jitter = (s * 7919 + 13) % 23;
                let now = t0 + Duration::from_millis(s * 1000 + jitter);
                let gpus = windows
                    .iter_mut()
                    .zip(0..)
                    .map(|(w, index)| {
                        let mut g = GpuSample {
                            index,
                            ..Default::default()
                        };
                        w.push(now, counters(s), &mut g);
                        g
                    })
                    .collect();
                NodeSample {
                    t: 1_000_000 + s * 1000 + jitter,
                    gpus,
                    ..Default::default()
                }
            })
            .collect()
    }

    #[test]
    fn an_idle_gpu_s_window_says_the_same_every_second_once_it_spans_the_minute() {
        let samples = follow(1, 150, |_| idle());
        let quiet = Rise {
            by: 0,
            over_ms: 60_000,
        };
        for s in &samples[61..] {
            assert_eq!(s.gpus[0].pcie_replay_rise, Some(quiet));
            assert_eq!(
                s.gpus[0].clock_violation,
                Some(ClockViolation {
                    over_ms: 60_000,
                    power_ms: Some(0),
                    thermal_ms: Some(0),
                })
            );
        }
        // While the window fills, its span moves in steps of ten seconds, not with the jitter.
        let spans: std::collections::BTreeSet<u64> = samples[1..61]
            .iter()
            .filter_map(|s| s.gpus[0].pcie_replay_rise.map(|r| r.over_ms))
            .collect();
        assert_eq!(
            spans.into_iter().collect::<Vec<_>>(),
            [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]
        );
    }

    #[test]
    fn a_rise_keeps_the_exact_span_the_rule_divides_by() {
        // Replays rise by one at second 100; violation time rises from second 120.
        let samples = follow(1, 130, |s| Counters {
            replay: Some(7 + u64::from(s >= 100)),
            power_ns: Some(5_000_000_000),
            thermal_ns: Some(s.saturating_sub(120) * 100_000_000),
        });
        let rise = samples[100].gpus[0].pcie_replay_rise.unwrap();
        assert_eq!(rise.by, 1);
        assert!(
            (58_000..60_000).contains(&rise.over_ms) && rise.over_ms % QUIET_SPAN_STEP_MS != 0,
            "the age of the oldest reading, not rounded: {rise:?}"
        );
        let violation = samples[125].gpus[0].clock_violation.unwrap();
        assert_eq!(violation.thermal_ms, Some(500));
        assert!(
            (58_000..60_000).contains(&violation.over_ms),
            "{violation:?}"
        );
    }

    #[test]
    fn an_idle_agent_s_compact_stream_is_empty_deltas_after_the_first_minute() {
        let samples = follow(8, 150, |_| idle());
        let mut encoder = Encoder::new(1_000);
        let lines: Vec<String> = samples
            .iter()
            .map(|s| String::from_utf8(encoder.line(s, false).unwrap()).unwrap())
            .collect();
        assert!(!lines[0].starts_with(DELTA_PREFIX), "a whole sample first");
        for (line, sample) in lines.iter().zip(&samples).skip(61) {
            assert_eq!(*line, format!("{{\"d\":{}}}", sample.t));
        }
        let moving = lines[1..61].iter().filter(|l| l.contains("gpus")).count();
        assert!(
            moving <= 6,
            "the filling window changes the stream once per step, not every second: {moving}"
        );
    }
}
