//! The names of fleetop's per-GPU Prometheus families: one table for the writer (`snapshot/prom.rs`, served by
//! `agent --listen` and `snapshot --format prom`) and the reader (`transport/prometheus/families.rs`, which
//! reads them back from a store), so the two cannot drift apart.

pub(crate) const GPU_UTILIZATION: &str = "fleetop_gpu_utilization_ratio";
pub(crate) const GPU_MEMORY_UTILIZATION: &str = "fleetop_gpu_memory_utilization_ratio";
pub(crate) const GPU_MEMORY_USED: &str = "fleetop_gpu_memory_used_bytes";
pub(crate) const GPU_MEMORY_TOTAL: &str = "fleetop_gpu_memory_total_bytes";
pub(crate) const GPU_TEMPERATURE: &str = "fleetop_gpu_temperature_celsius";
pub(crate) const GPU_MEMORY_TEMPERATURE: &str = "fleetop_gpu_memory_temperature_celsius";
pub(crate) const GPU_POWER: &str = "fleetop_gpu_power_watts";
pub(crate) const GPU_POWER_LIMIT: &str = "fleetop_gpu_power_limit_watts";
pub(crate) const GPU_SM_CLOCK: &str = "fleetop_gpu_sm_clock_hertz";
pub(crate) const GPU_ECC_UNCORRECTED: &str = "fleetop_gpu_ecc_uncorrected_errors";
pub(crate) const GPU_REMAPPED_ROWS_PENDING: &str = "fleetop_gpu_remapped_rows_pending";
pub(crate) const GPU_RECOVERY_ACTION: &str = "fleetop_gpu_recovery_action";
pub(crate) const GPU_XID_ERRORS: &str = "fleetop_gpu_xid_errors";
pub(crate) const GPU_NVLINKS: &str = "fleetop_gpu_nvlinks";
pub(crate) const GPU_NVLINK_DOWN: &str = "fleetop_gpu_nvlink_down";
pub(crate) const GPU_NVLINK_ERRORS: &str = "fleetop_gpu_nvlink_errors_total";

/// Every family both sides know (the tests of each side check against it).
#[cfg(test)]
pub(crate) const READ_BACK: &[&str] = &[
    GPU_UTILIZATION,
    GPU_MEMORY_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_TEMPERATURE,
    GPU_MEMORY_TEMPERATURE,
    GPU_POWER,
    GPU_POWER_LIMIT,
    GPU_SM_CLOCK,
    GPU_ECC_UNCORRECTED,
    GPU_REMAPPED_ROWS_PENDING,
    GPU_RECOVERY_ACTION,
    GPU_XID_ERRORS,
    GPU_NVLINKS,
    GPU_NVLINK_DOWN,
    GPU_NVLINK_ERRORS,
];
