//! Reads one GPU through NVML into a [`GpuSample`]: what the device does not support stays `None`, and every
//! other error is kept as a [`GpuError`] so the GPU is judged, not shown blank.

use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::fields::{self, FieldValue};
use crate::telemetry::kernel_log::PciAddr;
use crate::telemetry::{throttle_names, GpuError, GpuErrorKind, GpuSample};

/// NVML field ids that nvml-wrapper has no method for (nvml.h: NVML_FI_DEV_*).
const FI_MEMORY_TEMP: u32 = 82;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
/// T.Limit thresholds, "supported on Ada and later and supersedes nvmlDeviceGetTemperatureThreshold".
const FI_TLIMIT: [u32; 4] = [193, 194, 195, 196];
/// NVML_FI_DEV_GET_GPU_RECOVERY_ACTION (R565 and later): what the driver asks to recover the GPU.
const FI_GPU_RECOVERY_ACTION: u32 = 230;
/// NVML_DEVICE_MIG_ENABLE.
const MIG_ENABLED: u32 = 1;

const MIB: u64 = 1024 * 1024;

/// What never changes while the agent runs, read once per GPU.
#[derive(Debug, Clone, Default)]
pub(crate) struct GpuIdentity {
    pub index: u32,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub pci: Option<PciAddr>,
    pub pci_bus_id: Option<String>,
    pub serial: Option<String>,
    pub vbios: Option<String>,
    pub temp_slowdown_c: Option<u32>,
    pub temp_shutdown_c: Option<u32>,
    pub mem_temp_max_c: Option<u32>,
    /// T.Limit-relative shutdown, slowdown, memory max and GPU max thresholds (fields 193-196).
    pub tlimit: [Option<i32>; 4],
}

/// Collects the answers of one GPU's queries, keeping errors other than "not supported".
#[derive(Default)]
struct Answers {
    errors: Vec<GpuError>,
}

impl Answers {
    fn get<T>(&mut self, query: &str, result: Result<T, NvmlError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                if let Some(error) = error_of(query, &e) {
                    self.errors.push(error);
                }
                None
            }
        }
    }

    fn lost(&self) -> bool {
        self.errors.iter().any(|e| e.kind == GpuErrorKind::Lost)
    }
}

/// The error a failed query makes; `None` for "this GPU or driver does not offer it", which stays `null`.
pub(crate) fn error_of(query: &str, e: &NvmlError) -> Option<GpuError> {
    let kind = match e {
        NvmlError::NotSupported
        | NvmlError::FunctionNotFound
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::NoData => return None,
        NvmlError::GpuLost => GpuErrorKind::Lost,
        NvmlError::ResetRequired => GpuErrorKind::ResetRequired,
        NvmlError::Unknown => GpuErrorKind::Unknown,
        _ => GpuErrorKind::Failed,
    };
    Some(GpuError {
        kind,
        query: query.into(),
        detail: format!("NVML: {e}"),
    })
}

pub(crate) fn identity(nvml: &Nvml, index: u32, device: &Device) -> GpuIdentity {
    let mut ignored = Answers::default();
    let pci = device.pci_info().ok();
    let raw = fields::read(nvml, device, &FI_TLIMIT);
    let tlimit: [Option<i32>; 4] = std::array::from_fn(|i| match raw.get(i) {
        Some(Ok(Some(v))) => v.as_i64().and_then(|v| i32::try_from(v).ok()),
        _ => None,
    });
    // The older API only where T.Limit is not offered (nvml.h: "no longer preferred" on Ada and later).
    let legacy = |t| {
        if tlimit.iter().any(Option::is_some) {
            None
        } else {
            device.temperature_threshold(t).ok()
        }
    };
    GpuIdentity {
        index,
        uuid: ignored.get("uuid", device.uuid()),
        name: ignored.get("name", device.name()),
        pci: pci
            .as_ref()
            .and_then(|p| PciAddr::parse(&p.bus_id))
            .or_else(|| {
                pci.as_ref().map(|p| PciAddr {
                    domain: p.domain,
                    bus: p.bus,
                    device: p.device,
                })
            }),
        pci_bus_id: pci.map(|p| p.bus_id),
        serial: ignored.get("serial", device.serial()),
        vbios: ignored.get("vbios", device.vbios_version()),
        temp_slowdown_c: legacy(TemperatureThreshold::Slowdown),
        temp_shutdown_c: legacy(TemperatureThreshold::Shutdown),
        // The memory maximum has no T.Limit form that gives a temperature (field 195 is relative to the GPU's
        // T.Limit), so it is read wherever the driver offers it, as DCGM does.
        mem_temp_max_c: device
            .temperature_threshold(TemperatureThreshold::MemoryMax)
            .ok(),
        tlimit,
    }
}

pub fn sample(nvml: &Nvml, id: &GpuIdentity, device: &Device) -> GpuSample {
    let mut a = Answers::default();
    let base = GpuSample {
        index: id.index,
        uuid: id.uuid.clone(),
        name: id.name.clone(),
        pci_bus_id: id.pci_bus_id.clone(),
        serial: id.serial.clone(),
        vbios: id.vbios.clone(),
        ..Default::default()
    };
    let util = a.get("utilization", device.utilization_rates());
    // A GPU that fell off the bus answers every query with the same error, slowly: ask no more.
    if a.lost() {
        return GpuSample {
            errors: a.errors,
            ..base
        };
    }
    let memory = a.get("memory", device.memory_info());
    let ids = [
        FI_MEMORY_TEMP,
        FI_REMAPPED_UNC,
        FI_REMAPPED_PENDING,
        FI_REMAPPED_FAILURE,
    ];
    let names = [
        "temperature.memory",
        "remapped_rows.uncorrectable",
        "remapped_rows.pending",
        "remapped_rows.failure",
    ];
    let values: Vec<Option<FieldValue>> = fields::read(nvml, device, &ids)
        .into_iter()
        .zip(names)
        .map(|(r, name)| a.get(name, r).flatten())
        .collect();
    let field = |i: usize| values.get(i).copied().flatten();
    let tlimit_margin_c = a
        .get(
            "temperature.gpu.tlimit",
            fields::margin_temperature(nvml, device),
        )
        .flatten();
    GpuSample {
        util_pct: util.as_ref().map(|u| u.gpu),
        mem_util_pct: util.as_ref().map(|u| u.memory),
        mem_used_mib: memory.as_ref().map(|m| m.used / MIB),
        mem_total_mib: memory.as_ref().map(|m| m.total / MIB),
        temp_c: a.get(
            "temperature.gpu",
            device.temperature(TemperatureSensor::Gpu),
        ),
        // Memory temperature arrives typed as double on some drivers (r545): decode by its type.
        mem_temp_c: field(0).and_then(FieldValue::as_rounded_u32),
        power_w: a
            .get("power.draw", device.power_usage())
            .map(|mw| f64::from(mw) / 1000.0),
        power_limit_w: a
            .get("power.limit", device.enforced_power_limit())
            .map(|mw| f64::from(mw) / 1000.0),
        sm_clock_mhz: a.get("clocks.sm", device.clock_info(Clock::SM)),
        throttle: a
            .get("clocks_event_reasons", device.current_throttle_reasons())
            .map(|r| throttle_names(r.bits())),
        ecc_uncorrected: a.get(
            "ecc.errors.uncorrected.volatile",
            device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
        ),
        remapped_rows_uncorrectable: field(1).and_then(FieldValue::as_u64),
        remapped_rows_pending: field(2).and_then(FieldValue::as_u64).map(|v| v != 0),
        remapped_rows_failed: field(3).and_then(FieldValue::as_u64).map(|v| v != 0),
        mig_enabled: a
            .get("mig.mode", device.mig_mode())
            .map(|m| m.current == MIG_ENABLED),
        pcie_gen: a.get("pcie.link.gen", device.current_pcie_link_gen()),
        pcie_width: a.get("pcie.link.width", device.current_pcie_link_width()),
        temp_slowdown_c: id.temp_slowdown_c,
        temp_shutdown_c: id.temp_shutdown_c,
        mem_temp_max_c: id.mem_temp_max_c,
        tlimit_margin_c,
        tlimit_shutdown_c: id.tlimit[0],
        tlimit_slowdown_c: id.tlimit[1],
        tlimit_mem_max_c: id.tlimit[2],
        tlimit_gpu_max_c: id.tlimit[3],
        recovery_action: recovery_action(nvml, device),
        errors: a.errors,
        ..base
    }
}

/// Field 230, read on its own so a driver that refuses the id cannot spoil the other fields. Drivers before R565
/// do not know it and answer NOT_SUPPORTED or INVALID_ARGUMENT: any error is "not reported" (`None`), because a
/// GPU in real trouble already fails the core queries, and an old driver must not page anyone.
fn recovery_action(nvml: &Nvml, device: &Device) -> Option<u32> {
    match fields::read(nvml, device, &[FI_GPU_RECOVERY_ACTION]).first() {
        Some(Ok(Some(v))) => Some(
            v.as_u64()
                .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        ),
        _ => None,
    }
}
