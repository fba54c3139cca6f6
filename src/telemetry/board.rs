//! What a GPU's board reports beyond the core sample (nvml.h): its PCIe link against the link's maximum, PCIe
//! replays and AER reports, its NVSwitch fabric registration, memory health (SRAM, unrepairable memory, the
//! row-remap bank histogram) and clock violation counters. Each value is `None` where the driver does not offer it.

use serde::{Deserialize, Serialize};

use crate::text::bounded;

/// Longest AER message kept.
pub(super) const MAX_AER_TEXT: usize = 200;

/// How much a counter rose over the agent's recent window (DCGM judges PCIe replays and clock violations over
/// the last minute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rise {
    pub by: u64,
    pub over_ms: u64,
}

/// Time the GPU's clocks were held back, within the agent's recent window (nvml.h `nvmlDeviceGetViolationStatus`:
/// "the difference in violation times at two different reference times gives the indication of GPU throttling
/// event"). `None` per policy where the driver does not count it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClockViolation {
    pub over_ms: u64,
    /// NVML_PERF_POLICY_POWER: held to the power limit (the usual state of a GPU at full load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_ms: Option<u64>,
    /// NVML_PERF_POLICY_THERMAL: held back for temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thermal_ms: Option<u64>,
}

/// NVSwitch fabric registration (nvml.h `nvmlGpuFabricInfoV_t`). A GPU whose state is not `completed` with a
/// success status cannot be used by CUDA, whatever else NVML says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuFabric {
    pub state: FabricState,
    /// The registration's NVML return code once completed (0: success); `None` before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// `NVML_GPU_FABRIC_HEALTH_MASK_*` bits (nvmlGpuFabricInfo_v2 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_mask: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clique_id: Option<u32>,
}

/// `NVML_GPU_FABRIC_STATE_*` (NOT_SUPPORTED is sent as no fabric at all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FabricState {
    NotStarted,
    InProgress,
    Completed,
    /// A value this build does not know; also what an unknown state from a newer agent reads as.
    #[default]
    #[serde(other)]
    Unknown,
}

impl FabricState {
    /// nvml.h `NVML_GPU_FABRIC_STATE_*`; `None` for NOT_SUPPORTED (0).
    pub(crate) fn from_raw(raw: u8) -> Option<FabricState> {
        match raw {
            0 => None,
            1 => Some(FabricState::NotStarted),
            2 => Some(FabricState::InProgress),
            3 => Some(FabricState::Completed),
            _ => Some(FabricState::Unknown),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FabricState::NotStarted => "not_started",
            FabricState::InProgress => "in_progress",
            FabricState::Completed => "completed",
            FabricState::Unknown => "unknown",
        }
    }
}

/// Banks by how many spare rows they have left (nvml.h `nvmlRowRemapperHistogramValues_t`; nvidia-smi -q "Bank
/// Remap Availability Histogram").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemapBanks {
    pub max: u32,
    pub high: u32,
    pub partial: u32,
    pub low: u32,
    pub none: u32,
}

/// PCIe Advanced Error Reporting lines in the kernel log naming this GPU's bus address, by severity (kernel
/// `drivers/pci/pcie/aer.c`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PcieAer {
    pub corrected: u64,
    pub nonfatal: u64,
    pub fatal: u64,
    /// The last report's words and time (Unix ms), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<u64>,
}

/// How bad an AER report is (PCIe Base Specification error classes, as the kernel prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AerSeverity {
    Corrected,
    NonFatal,
    Fatal,
}

impl PcieAer {
    pub fn add(&mut self, severity: AerSeverity, text: &str, at_ms: Option<u64>) {
        let count = match severity {
            AerSeverity::Corrected => &mut self.corrected,
            AerSeverity::NonFatal => &mut self.nonfatal,
            AerSeverity::Fatal => &mut self.fatal,
        };
        *count = count.saturating_add(1);
        self.last_text = Some(bounded(text, MAX_AER_TEXT));
        self.last_ms = at_ms.or(self.last_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sanitize::MAX_WINDOW_MS;
    use crate::telemetry::{GpuErrorKind, GpuSample};

    #[test]
    fn implausible_board_values_become_unknown_with_a_reason() {
        let mut gpu = GpuSample {
            pcie_max_gen: Some(99),
            pcie_max_width: Some(16),
            pcie_replay_rise: Some(Rise {
                by: 3,
                over_ms: MAX_WINDOW_MS + 1,
            }),
            clock_violation: Some(ClockViolation {
                over_ms: 60_000,
                power_ms: Some(60_001),
                thermal_ms: None,
            }),
            remap_banks: Some(RemapBanks {
                max: u32::MAX,
                none: u32::MAX,
                ..Default::default()
            }),
            pcie_aer: Some(PcieAer {
                last_text: Some("nvidia 0000:18:00.0: \u{1b}[2Jforged".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        gpu.sanitize();
        assert_eq!(gpu.pcie_max_gen, None);
        assert_eq!(gpu.pcie_max_width, Some(16));
        assert_eq!(gpu.pcie_replay_rise, None);
        assert_eq!(gpu.clock_violation, None, "more violation than time");
        assert_eq!(gpu.remap_banks, None);
        let queries: Vec<&str> = gpu.errors.iter().map(|e| e.query.as_str()).collect();
        assert_eq!(
            queries,
            [
                "pcie.link.gen.max",
                "pcie.replay.rise",
                "clocks.violation",
                "remapped_rows.histogram"
            ]
        );
        assert!(gpu
            .errors
            .iter()
            .all(|e| e.kind == GpuErrorKind::Implausible));
        let text = gpu.pcie_aer.unwrap().last_text.unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn aer_counts_by_severity_and_keeps_the_last_words() {
        let mut aer = PcieAer::default();
        aer.add(AerSeverity::Corrected, "first", Some(1));
        aer.add(AerSeverity::Fatal, &"x".repeat(1000), None);
        assert_eq!((aer.corrected, aer.nonfatal, aer.fatal), (1, 0, 1));
        assert_eq!(
            aer.last_ms,
            Some(1),
            "a later report without a time keeps the last known"
        );
        assert!(aer.last_text.unwrap().chars().count() <= MAX_AER_TEXT + 1);
    }
}
