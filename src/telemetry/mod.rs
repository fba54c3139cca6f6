//! What a node reports: per-GPU samples, the agent wire format, the nvidia-smi CSV parser and health rules.

pub mod health;
pub mod smi_csv;
pub mod wire;

use serde::{Deserialize, Serialize};

/// One GPU at one instant. `None` means the GPU does not report that value (never shown as 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuSample {
    pub index: u32,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub mem_used_mib: Option<u64>,
    pub mem_total_mib: Option<u64>,
    pub temp_c: Option<u32>,
    pub mem_temp_c: Option<u32>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    /// Active clock-event (throttle) reasons by name: `hw_slowdown`, `sw_power_cap`, …
    pub throttle: Option<Vec<String>>,
    pub ecc_uncorrected: Option<u64>,
    pub remapped_rows_pending: Option<bool>,
    pub remapped_rows_failed: Option<bool>,
    /// XID errors seen since the agent started (`None`: the source cannot see XIDs, e.g. nvidia-smi).
    pub xid: Option<Vec<u32>>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    /// The device's own thresholds, when the agent could read them.
    pub temp_slowdown_c: Option<u32>,
    pub temp_shutdown_c: Option<u32>,
    pub mem_temp_max_c: Option<u32>,
}

/// Every GPU of one node at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// Node-side time of the sample, Unix milliseconds (informational: ages use the jump host's clock).
    pub t: u64,
    pub gpus: Vec<GpuSample>,
}

/// Now, as Unix milliseconds (a sample's node-side `t`).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where a node's samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Agent,
    NvidiaSmi,
    Sim,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::NvidiaSmi => "nvidia-smi",
            Source::Sim => "sim",
        }
    }
}

/// Names of the clock-event reasons fleetop reports, in NVML bit order.
pub const THROTTLE_REASONS: [(&str, u64); 9] = [
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
];

/// Reason names for an NVML clock-event bitmask.
pub fn throttle_names(bits: u64) -> Vec<String> {
    THROTTLE_REASONS
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(name, _)| (*name).to_string())
        .collect()
}
