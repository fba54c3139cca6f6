//! Reads one GPU through NVML into a [`GpuSample`]; anything the device does not support stays `None`.

use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::Device;

use crate::telemetry::{throttle_names, GpuSample};

/// NVML field ids that nvml-wrapper has no method for (nvml.h: NVML_FI_DEV_*).
const FI_MEMORY_TEMP: u32 = 82;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;

const MIB: u64 = 1024 * 1024;

/// What never changes while the agent runs, read once per GPU.
#[derive(Debug, Clone)]
pub struct GpuIdentity {
    pub index: u32,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub temp_slowdown_c: Option<u32>,
    pub temp_shutdown_c: Option<u32>,
    pub mem_temp_max_c: Option<u32>,
}

pub fn identity(index: u32, device: &Device) -> GpuIdentity {
    GpuIdentity {
        index,
        uuid: device.uuid().ok(),
        name: device.name().ok(),
        temp_slowdown_c: device
            .temperature_threshold(TemperatureThreshold::Slowdown)
            .ok(),
        temp_shutdown_c: device
            .temperature_threshold(TemperatureThreshold::Shutdown)
            .ok(),
        mem_temp_max_c: device
            .temperature_threshold(TemperatureThreshold::MemoryMax)
            .ok(),
    }
}

pub fn sample(id: &GpuIdentity, device: &Device, xids: Vec<u32>) -> GpuSample {
    let util = device.utilization_rates().ok();
    let memory = device.memory_info().ok();
    let fields = device
        .field_values_for(&[
            FieldId(FI_MEMORY_TEMP),
            FieldId(FI_REMAPPED_PENDING),
            FieldId(FI_REMAPPED_FAILURE),
        ])
        .unwrap_or_default();
    let field = |i: usize| -> Option<u64> {
        match fields.get(i)?.as_ref().ok()?.value.as_ref().ok()? {
            SampleValue::U32(v) => Some(u64::from(*v)),
            SampleValue::U64(v) => Some(*v),
            SampleValue::I64(v) => u64::try_from(*v).ok(),
            SampleValue::F64(v) => (*v >= 0.0).then_some(*v as u64),
        }
    };
    GpuSample {
        index: id.index,
        uuid: id.uuid.clone(),
        name: id.name.clone(),
        util_pct: util.as_ref().map(|u| u.gpu),
        mem_util_pct: util.as_ref().map(|u| u.memory),
        mem_used_mib: memory.as_ref().map(|m| m.used / MIB),
        mem_total_mib: memory.as_ref().map(|m| m.total / MIB),
        temp_c: device.temperature(TemperatureSensor::Gpu).ok(),
        mem_temp_c: field(0).and_then(|v| u32::try_from(v).ok()),
        power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        power_limit_w: device
            .enforced_power_limit()
            .ok()
            .map(|mw| f64::from(mw) / 1000.0),
        sm_clock_mhz: device.clock_info(Clock::SM).ok(),
        throttle: device
            .current_throttle_reasons()
            .ok()
            .map(|r| throttle_names(r.bits())),
        ecc_uncorrected: device
            .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            .ok(),
        remapped_rows_pending: field(1).map(|v| v != 0),
        remapped_rows_failed: field(2).map(|v| v != 0),
        xid: Some(xids),
        pcie_gen: device.current_pcie_link_gen().ok(),
        pcie_width: device.current_pcie_link_width().ok(),
        temp_slowdown_c: id.temp_slowdown_c,
        temp_shutdown_c: id.temp_shutdown_c,
        mem_temp_max_c: id.mem_temp_max_c,
    }
}
