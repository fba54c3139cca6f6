//! The samples a node reports: per-GPU values (`None`: not reported), their errors as verdicts, XID events,
//! where a sample came from, and the throttle reason names.

use serde::{Deserialize, Serialize};

/// One GPU at one instant. `None` means the GPU does not report that value (never shown as 0). Fields added
/// after the first wire version are left out of a line when `None` (an absent field reads as `None`), which
/// keeps samples short.
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
    /// Distinct XID codes since boot (`None`: unknown, e.g. nvidia-smi or an unreadable kernel log;
    /// `[]`: checked, none).
    pub xid: Option<Vec<u32>>,
    /// Each XID with its count, first and last time and the driver's message (`None` from older agents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xid_events: Option<Vec<XidEvent>>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    /// The device's own thresholds, when the agent could read them.
    pub temp_slowdown_c: Option<u32>,
    pub temp_shutdown_c: Option<u32>,
    pub mem_temp_max_c: Option<u32>,
    /// Rows remapped after uncorrectable errors (NVML_FI_DEV_REMAPPED_UNC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remapped_rows_uncorrectable: Option<u64>,
    /// MIG mode as it is now; with MIG on, NVML reports no utilization for the whole GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig_enabled: Option<bool>,
    /// PCI bus id as NVML prints it (`00000000:18:00.0`); XIDs in the kernel log name GPUs by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// The board's serial number and VBIOS version, read once at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vbios: Option<String>,
    /// How far the GPU is below T.Limit now, in °C (negative: above it). nvml.h: margin temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlimit_margin_c: Option<i32>,
    /// Thresholds relative to T.Limit (nvml.h fields 193-196): the margin at which the GPU shuts down,
    /// starts hardware slowdown, starts software slowdown for memory temperature, and drops below base clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlimit_shutdown_c: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlimit_slowdown_c: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlimit_mem_max_c: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlimit_gpu_max_c: Option<i32>,
    /// The driver's recovery action (nvml.h `nvmlDeviceGpuRecoveryAction_t`, read through field 230
    /// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION` on R565 and later, or from the last XID 154 line), as NVML's raw
    /// value: see [`RecoveryAction`]. `None`: the driver does not report it (older drivers, nvidia-smi).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_action: Option<u32>,
    /// NVLinks (`None`: the GPU has none, or NVML cannot say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink: Option<super::fabric::NvLinks>,
    /// Processes with a context on the GPU (`None`: unknown, e.g. nvidia-smi or an older agent; `[]`: checked,
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<super::process::GpuProcess>>,
    /// The PCIe link's maximum generation and width (nvmlDeviceGetMaxPcieLinkGeneration/Width): what the GPU and
    /// its slot can run, against `pcie_gen` and `pcie_width` now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_max_gen: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_max_width: Option<u32>,
    /// PCIe replays since the driver loaded (nvmlDeviceGetPcieReplayCounter), and their rise over the agent's
    /// recent window (`None`: a single reading, as `agent --once` has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_replay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_replay_rise: Option<super::board::Rise>,
    /// AER reports in the kernel log on the GPU's bus address (`None`: not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_aer: Option<super::board::PcieAer>,
    /// NVSwitch fabric registration (`None`: not an NVSwitch system, or NVML cannot say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fabric: Option<super::board::GpuFabric>,
    /// SRAM errors past the field-diagnostic threshold (nvmlDeviceGetSramEccErrorStatus `bThresholdExceeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sram_threshold_exceeded: Option<bool>,
    /// Memory the GPU can no longer repair (nvmlDeviceGetUnrepairableMemoryFlag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_unrepairable: Option<bool>,
    /// Banks by spare rows left (nvmlDeviceGetRowRemapperHistogram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remap_banks: Option<super::board::RemapBanks>,
    /// Time the clocks were held back within the agent's recent window (nvmlDeviceGetViolationStatus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_violation: Option<super::board::ClockViolation>,
    /// Queries that failed with an error other than "not supported", and values rejected as implausible.
    /// Any error but `implausible` makes the GPU `crit`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<GpuError>,
    /// The last 30 days of this GPU from the agent's journal on the node (`--journal`), survivors of reboots;
    /// absent from agents without a journal (unknown, not "nothing happened").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past: Option<Vec<super::past::PastEvent>>,
}

impl GpuSample {
    /// A GPU placeholder for one that answered nothing but an error (its handle could not be opened).
    pub fn failed(index: u32, error: GpuError) -> Self {
        GpuSample {
            index,
            errors: vec![error],
            ..Default::default()
        }
    }

    /// Each XID code with its occurrence count: from `xid_events`, or 1 where an older agent sent the code alone.
    pub(crate) fn xid_counts(&self) -> Vec<(u32, u64)> {
        self.xid
            .iter()
            .flatten()
            .map(|&code| {
                let count = self
                    .xid_events
                    .iter()
                    .flatten()
                    .find(|e| e.code == code)
                    .map_or(1, |e| e.count);
                (code, count)
            })
            .collect()
    }

    /// True when the GPU reported any reading: only such a GPU counts as seen (its uuid, read once at start,
    /// is not a reading).
    pub(crate) fn reported_values(&self) -> bool {
        self.util_pct.is_some()
            || self.mem_used_mib.is_some()
            || self.mem_total_mib.is_some()
            || self.temp_c.is_some()
            || self.power_w.is_some()
            || self.sm_clock_mhz.is_some()
    }
}

/// What the driver says must be done to recover a GPU (nvml.h `nvmlDeviceGpuRecoveryAction_t`, R565 and later).
/// The wire carries the raw value (`GpuSample::recovery_action`) so a newer driver's values pass through and
/// read as [`RecoveryAction::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RecoveryAction {
    /// NVML_GPU_RECOVERY_ACTION_NONE (0).
    None,
    /// NVML_GPU_RECOVERY_ACTION_GPU_RESET (1).
    GpuReset,
    /// NVML_GPU_RECOVERY_ACTION_NODE_REBOOT (2).
    NodeReboot,
    /// NVML_GPU_RECOVERY_ACTION_DRAIN_P2P (3): stop peer-to-peer work on the GPU.
    DrainP2p,
    /// NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET (4).
    DrainAndReset,
    /// A value this build does not know (later bindings add RECOVER_IMEX_DOMAIN, BUS_RESET, SYSTEM_REBOOT).
    Other(u32),
}

impl RecoveryAction {
    pub(crate) fn from_raw(raw: u32) -> Self {
        match raw {
            0 => RecoveryAction::None,
            1 => RecoveryAction::GpuReset,
            2 => RecoveryAction::NodeReboot,
            3 => RecoveryAction::DrainP2p,
            4 => RecoveryAction::DrainAndReset,
            n => RecoveryAction::Other(n),
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            RecoveryAction::None => 0,
            RecoveryAction::GpuReset => 1,
            RecoveryAction::NodeReboot => 2,
            RecoveryAction::DrainP2p => 3,
            RecoveryAction::DrainAndReset => 4,
            RecoveryAction::Other(n) => n,
        }
    }

    /// The name used in JSON, CSV, Prometheus labels and the node detail.
    pub fn name(self) -> String {
        match self {
            RecoveryAction::None => "none".into(),
            RecoveryAction::GpuReset => "gpu_reset".into(),
            RecoveryAction::NodeReboot => "node_reboot".into(),
            RecoveryAction::DrainP2p => "drain_p2p".into(),
            RecoveryAction::DrainAndReset => "drain_and_reset".into(),
            RecoveryAction::Other(n) => format!("unknown_{n}"),
        }
    }
}

/// A query that failed, as a verdict rather than a blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuError {
    pub kind: GpuErrorKind,
    /// What was asked: `handle`, `utilization`, `temperature.memory`, …
    pub query: String,
    /// The driver's own words (`NVML: GPU is lost`, `[GPU requires reset]`) or the rejected value.
    pub detail: String,
}

/// How bad a failed query is (nvml.h return codes; nvidia-smi's bracketed cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuErrorKind {
    /// NVML_ERROR_GPU_IS_LOST, `[GPU is lost]`: the GPU fell off the bus.
    Lost,
    /// NVML_ERROR_RESET_REQUIRED, `[GPU requires reset]`.
    ResetRequired,
    /// NVML_ERROR_UNKNOWN, `[Unknown Error]`, `ERR!`.
    Unknown,
    /// A value outside what any GPU can report; the value is dropped (`null`).
    Implausible,
    /// Any other error; also what an unknown kind from a newer agent reads as.
    #[serde(other)]
    Failed,
}

/// One XID (or NVSwitch SXid) code as seen in the kernel log or NVML's event set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct XidEvent {
    pub code: u32,
    pub count: u64,
    /// Unix milliseconds of the first and last occurrence, when the source had a time.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// The driver's message for the last occurrence, without pid and process name.
    pub text: Option<String>,
    /// SXids only: true for "Fatal", false for "Non-fatal".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<bool>,
}

/// Every GPU of one node at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// Node-side time of the sample, Unix milliseconds (informational: ages use the jump host's clock).
    pub t: u64,
    /// At most one more than [`super::bounded::MAX_GPUS_PER_SAMPLE`] GPUs are kept while decoding, so a line of
    /// thousands of GPU objects costs no more memory than a valid one; `sanitize` reports the excess.
    #[serde(deserialize_with = "super::bounded::list")]
    pub gpus: Vec<GpuSample>,
    /// Node-level problems the agent found in its own sources (kernel log unreadable, event watch stopped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// NVSwitch SXid errors from the kernel log (`None`: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sxid: Option<Vec<XidEvent>>,
    /// XIDs in the kernel log on PCI addresses no listed GPU has: a GPU that fell off the bus before the
    /// agent started is not listed by NVML, but its XID 79 still counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_xid: Vec<XidEvent>,
    /// InfiniBand ports (`None`: not checked, as with older agents and nvidia-smi; `[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ib: Option<Vec<super::fabric::IbPort>>,
    /// The node's own last 30 days from the agent's journal (SXids, InfiniBand ports down and their error
    /// counters that rose), as each GPU's `past` carries the GPU's; `None`: no journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past: Option<Vec<super::past::PastEvent>>,
}

/// Now, as Unix milliseconds (a sample's node-side `t`).
pub(crate) fn unix_ms() -> u64 {
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
    /// Read from a Prometheus-compatible store (dcgm-exporter's or fleetop's own series).
    Prometheus,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::NvidiaSmi => "nvidia-smi",
            Source::Sim => "sim",
            Source::Prometheus => "prometheus",
        }
    }
}

/// Names of the clock-event reasons fleetop reports, in NVML bit order.
pub(crate) const THROTTLE_REASONS: [(&str, u64); 9] = [
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
pub(crate) fn throttle_names(bits: u64) -> Vec<String> {
    THROTTLE_REASONS
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(name, _)| (*name).to_string())
        .collect()
}

/// The sum of power readings or budgets, starting from +0.0: Rust's `Sum` for floats starts from -0.0 (the
/// IEEE identity), so an empty sum printed as `-0W` or `-0.0 kW`.
pub fn total(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |sum, v| sum + v)
}
