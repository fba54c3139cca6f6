//! Health rules: which GPU readings make a GPU or node `warn` or `crit`, with a reason for each.

use serde::Serialize;

use super::{GpuErrorKind, GpuSample, XidEvent};
use crate::inventory::Thresholds;

/// H100 limits seen on an older driver (slowdown 89 °C, memory max 95 °C): used only for GPUs whose name says
/// H100 when neither the inventory nor the device gives a limit. Other models get no built-in limit.
const H100_SLOWDOWN_C: u32 = 89;
const H100_MEM_MAX_C: u32 = 95;
/// How far below a crit threshold the warn threshold sits by default.
const WARN_MARGIN_C: f64 = 5.0;

/// XIDs that need a GPU reset or a node reboot (NVIDIA's XID catalogue, DCGM's health watch): `crit`.
const CRIT_XIDS: &[(u32, &str)] = &[
    (46, "GPU stopped processing: reset the GPU"),
    (48, "double-bit ECC error: reset the GPU"),
    (62, "internal micro-controller halt: reset the GPU"),
    (64, "row remap failure: reset the GPU; RMA if it repeats"),
    (74, "NVLink error: reset the GPU, check the link"),
    (79, "GPU fell off the bus: reboot the node"),
    (95, "uncontained memory error: reset the GPU"),
    (
        110,
        "needs a GPU reset (NVIDIA XID catalogue): reset the GPU",
    ),
    (119, "GSP RPC timeout: reset the GPU"),
    (120, "GSP error: reset the GPU"),
    (
        136,
        "needs a GPU reset (NVIDIA XID catalogue): reset the GPU",
    ),
    (140, "unrecovered ECC error: reset the GPU"),
    (
        143,
        "needs a GPU reset (NVIDIA XID catalogue): reset the GPU",
    ),
    (
        154,
        "recovery action required: follow the action nvidia-smi -q reports",
    ),
    (
        156,
        "needs a GPU reset (NVIDIA XID catalogue): reset the GPU",
    ),
    (
        158,
        "needs a GPU reset (NVIDIA XID catalogue): reset the GPU",
    ),
];
/// XIDs worth a look but not an emergency: `warn`.
const WARN_XIDS: &[(u32, &str)] = &[
    (63, "row remap event, a GPU reset activates it"),
    (92, "high single-bit ECC rate"),
    (
        94,
        "contained memory error: the application was stopped, the GPU is usable",
    ),
    (
        109,
        "context-switch timeout: restart the application; reset the GPU if it repeats",
    ),
];
/// Application faults (bad kernels, MMU faults of user code): information, no verdict on the hardware.
const APPLICATION_XIDS: &[(u32, &str)] = &[
    (13, "graphics engine exception (application fault)"),
    (31, "GPU memory page fault (application fault)"),
    (43, "GPU stopped an application (application fault)"),
    (
        45,
        "preemptive cleanup after an earlier error or a killed application",
    ),
    (68, "video processor exception (application fault)"),
];
/// Throttle reasons that mean the hardware or driver is protecting itself (nvml.h clock event reasons).
const WARN_THROTTLE: &[&str] = &[
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "sw_thermal_slowdown",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Ok,
    Warn,
    Crit,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warn => "warn",
            Health::Crit => "crit",
        }
    }
}

/// A verdict with the reasons that led to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub health: Health,
    pub reasons: Vec<String>,
}

impl Verdict {
    pub fn add(&mut self, health: Health, reason: String) {
        self.health = self.health.max(health);
        self.reasons.push(reason);
    }
}

/// The operator's acknowledgement covering an XID on this GPU (code, occurrences), if any: the caller decides
/// by when the XID was last seen (`fleet/acks.rs`).
pub(crate) type Acknowledged<'a> = &'a dyn Fn(u32, u64) -> Option<String>;

/// No acknowledgements.
#[cfg(test)]
pub(crate) fn none_acknowledged(_code: u32, _count: u64) -> Option<String> {
    None
}

/// Judges one GPU. `acked(code, count)` gives the acknowledgement covering an XID, if any.
pub(crate) fn judge_gpu(gpu: &GpuSample, limits: &Thresholds, acked: Acknowledged) -> Verdict {
    let mut v = Verdict::default();
    query_errors(&mut v, gpu);
    temperatures(&mut v, gpu, limits);
    if let Some(n) = gpu.ecc_uncorrected.filter(|&n| n > 0) {
        v.add(Health::Crit, format!("{n} uncorrected ECC errors"));
    }
    if gpu.remapped_rows_failed == Some(true) {
        v.add(Health::Crit, "row remapping failed: RMA the GPU".into());
    }
    if gpu.remapped_rows_pending == Some(true) {
        v.add(
            Health::Warn,
            "row remap pending (reset the GPU to apply)".into(),
        );
    }
    for reason in gpu.throttle.iter().flatten() {
        if WARN_THROTTLE.contains(&reason.as_str()) {
            v.add(Health::Warn, format!("throttling: {reason}"));
        }
    }
    xids(&mut v, gpu, acked);
    if let Some(reason) = gpu.nvlink.as_ref().and_then(super::fabric::judge_nvlinks) {
        v.add(Health::Warn, reason);
    }
    if gpu.mig_enabled == Some(true) {
        v.add(
            Health::Ok,
            "MIG mode on: whole-GPU utilization is not reported".into(),
        );
    }
    v
}

/// A failed query is a verdict (nvml.h return codes), one reason per kind of failure.
fn query_errors(v: &mut Verdict, gpu: &GpuSample) {
    if gpu.errors.is_empty() {
        return;
    }
    let mut kinds: Vec<GpuErrorKind> = gpu.errors.iter().map(|e| e.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let Some(first) = gpu.errors.iter().find(|e| e.kind == kind) else {
            continue;
        };
        let (health, reason) = match kind {
            GpuErrorKind::Lost => (
                Health::Crit,
                format!("GPU lost ({}): reboot the node", first.detail),
            ),
            GpuErrorKind::ResetRequired => (
                Health::Crit,
                format!(
                    "GPU requires reset ({}): drain, then reset the GPU or reboot the node",
                    first.detail
                ),
            ),
            GpuErrorKind::Unknown | GpuErrorKind::Failed => (
                Health::Crit,
                format!(
                    "GPU query {} failed ({}): check the GPU, reboot the node if it persists",
                    first.query, first.detail
                ),
            ),
            GpuErrorKind::Implausible => {
                let all: Vec<String> = gpu
                    .errors
                    .iter()
                    .filter(|e| e.kind == kind)
                    .map(|e| format!("{} {}", e.query, e.detail))
                    .collect();
                (
                    Health::Warn,
                    format!("implausible value ignored: {}", all.join(", ")),
                )
            }
        };
        v.add(health, reason);
    }
}

/// GPU temperature against T.Limit when the GPU offers it, else absolute limits (inventory, device, model).
fn temperatures(v: &mut Verdict, gpu: &GpuSample, limits: &Thresholds) {
    let by_model = |h100: u32| {
        gpu.name
            .as_deref()
            .is_some_and(|n| n.contains("H100"))
            .then_some(h100)
    };
    match (
        gpu.tlimit_margin_c,
        gpu.tlimit_slowdown_c,
        limits.gpu_temp_crit_c,
    ) {
        (Some(margin), Some(slowdown), None) => {
            let (margin, slowdown) = (f64::from(margin), f64::from(slowdown));
            if margin <= slowdown {
                v.add(
                    Health::Crit,
                    format!("GPU {margin} °C from T.Limit, at or past its slowdown point ({slowdown} °C)"),
                );
            } else if margin <= slowdown + WARN_MARGIN_C {
                v.add(
                    Health::Warn,
                    format!(
                        "GPU {margin} °C from T.Limit, near its slowdown point ({slowdown} °C)"
                    ),
                );
            }
        }
        _ => {
            let crit = limits.gpu_temp_crit_c.or_else(|| {
                gpu.temp_slowdown_c
                    .or_else(|| by_model(H100_SLOWDOWN_C))
                    .map(f64::from)
            });
            if let Some(crit) = crit {
                let warn = limits.gpu_temp_warn_c.unwrap_or(crit - WARN_MARGIN_C);
                temperature(v, "GPU", gpu.temp_c, warn, crit);
            }
        }
    }
    let mem_crit = limits.mem_temp_crit_c.or_else(|| {
        gpu.mem_temp_max_c
            .or_else(|| by_model(H100_MEM_MAX_C))
            .map(f64::from)
    });
    if let Some(crit) = mem_crit {
        let warn = limits.mem_temp_warn_c.unwrap_or(crit - WARN_MARGIN_C);
        temperature(v, "memory", gpu.mem_temp_c, warn, crit);
    }
}

/// Each XID by NVIDIA's classification; an acknowledged one is information until it happens again.
fn xids(v: &mut Verdict, gpu: &GpuSample, acked: Acknowledged) {
    if gpu.xid.as_ref().is_none_or(Vec::is_empty) {
        return;
    }
    for (code, count) in gpu.xid_counts() {
        let (health, what) = classify_xid(code);
        let times = if count > 1 {
            format!(" ({count}×)")
        } else {
            String::new()
        };
        match acked(code, count) {
            Some(ack) if health != Health::Ok => v.add(
                Health::Ok,
                format!("XID {code}{times}: {what} [acknowledged: {ack}]"),
            ),
            _ => v.add(health, format!("XID {code}{times}: {what}")),
        }
    }
}

/// NVIDIA's classification of one XID code: crit, warn, information (ok), or unknown (warn).
pub(crate) fn classify_xid(code: u32) -> (Health, &'static str) {
    if let Some((_, what)) = CRIT_XIDS.iter().find(|(x, _)| *x == code) {
        (Health::Crit, what)
    } else if let Some((_, what)) = WARN_XIDS.iter().find(|(x, _)| *x == code) {
        (Health::Warn, what)
    } else if let Some((_, what)) = APPLICATION_XIDS.iter().find(|(x, _)| *x == code) {
        (Health::Ok, what)
    } else {
        (
            Health::Warn,
            "unclassified XID: look it up in NVIDIA's XID catalogue",
        )
    }
}

fn temperature(v: &mut Verdict, what: &str, reading: Option<u32>, warn: f64, crit: f64) {
    let Some(t) = reading else { return };
    let t = f64::from(t);
    if t >= crit {
        v.add(
            Health::Crit,
            format!("{what} temperature {t} °C ≥ {crit} °C"),
        );
    } else if t >= warn {
        v.add(
            Health::Warn,
            format!("{what} temperature {t} °C ≥ {warn} °C"),
        );
    }
}

/// NVSwitch SXids (NVIDIA Fabric Manager user guide): fatal ones stall NVLink traffic until the fabric is reset.
pub(crate) fn judge_sxids(events: &[XidEvent]) -> Verdict {
    let mut v = Verdict::default();
    for e in events {
        match e.fatal {
            Some(true) => v.add(
                Health::Crit,
                format!(
                    "NVSwitch SXid {} fatal ({}×): reboot the node to reset the fabric",
                    e.code, e.count
                ),
            ),
            _ => v.add(
                Health::Warn,
                format!("NVSwitch SXid {} non-fatal ({}×)", e.code, e.count),
            ),
        }
    }
    v
}

/// The node-level rule on top of its GPUs' verdicts: fewer GPUs than expected is `crit`.
/// Only GPUs that reported values count as seen: a lost GPU is listed, not seen.
pub(crate) fn judge_gpu_count(seen: usize, expected: u32) -> Option<Verdict> {
    (seen < expected as usize).then(|| Verdict {
        health: Health::Crit,
        reasons: vec![format!("{seen} of {expected} GPUs seen")],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::GpuError;

    fn gpu() -> GpuSample {
        GpuSample {
            name: Some("NVIDIA H100 80GB HBM3".into()),
            temp_c: Some(60),
            mem_temp_c: Some(70),
            xid: Some(vec![]),
            ..Default::default()
        }
    }

    #[test]
    fn healthy_gpu_is_ok() {
        assert_eq!(
            judge_gpu(&gpu(), &Thresholds::default(), &none_acknowledged),
            Verdict::default()
        );
    }

    #[test]
    fn temperatures_use_inventory_then_device_then_h100() {
        let hot = GpuSample {
            temp_c: Some(86),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&hot, &Thresholds::default(), &none_acknowledged).health,
            Health::Warn
        );
        let device = GpuSample {
            temp_slowdown_c: Some(95),
            ..hot.clone()
        };
        assert_eq!(
            judge_gpu(&device, &Thresholds::default(), &none_acknowledged).health,
            Health::Ok
        );
        let strict = Thresholds {
            gpu_temp_crit_c: Some(80.0),
            ..Default::default()
        };
        assert_eq!(
            judge_gpu(&hot, &strict, &none_acknowledged).health,
            Health::Crit
        );
        let hbm = GpuSample {
            mem_temp_c: Some(95),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&hbm, &Thresholds::default(), &none_acknowledged).health,
            Health::Crit
        );
    }

    #[test]
    fn xids_follow_the_catalog() {
        let with = |x: u32| {
            judge_gpu(
                &GpuSample {
                    xid: Some(vec![x]),
                    ..gpu()
                },
                &Thresholds::default(),
                &none_acknowledged,
            )
            .health
        };
        for x in [
            46, 48, 62, 64, 74, 79, 95, 110, 119, 120, 136, 140, 143, 154, 156, 158,
        ] {
            assert_eq!(with(x), Health::Crit, "xid {x}");
        }
        for x in [63, 92, 94, 109, 999] {
            assert_eq!(with(x), Health::Warn, "xid {x}");
        }
        for x in [13, 31, 43, 45, 68] {
            assert_eq!(with(x), Health::Ok, "xid {x}");
        }
    }

    #[test]
    fn memory_and_throttle_rules() {
        let t = Thresholds::default();
        let pending = GpuSample {
            remapped_rows_pending: Some(true),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&pending, &t, &none_acknowledged).health,
            Health::Warn
        );
        let failed = GpuSample {
            remapped_rows_failed: Some(true),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&failed, &t, &none_acknowledged).health,
            Health::Crit
        );
        let ecc = GpuSample {
            ecc_uncorrected: Some(2),
            ..gpu()
        };
        assert_eq!(judge_gpu(&ecc, &t, &none_acknowledged).health, Health::Crit);
        let brake = GpuSample {
            throttle: Some(vec!["hw_power_brake_slowdown".into()]),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&brake, &t, &none_acknowledged).health,
            Health::Warn
        );
        let capped = GpuSample {
            throttle: Some(vec!["sw_power_cap".into()]),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&capped, &t, &none_acknowledged).health,
            Health::Ok
        );
        assert_eq!(judge_gpu_count(7, 8).map(|v| v.health), Some(Health::Crit));
        assert_eq!(judge_gpu_count(8, 8), None);
    }

    #[test]
    fn query_errors_are_crit_with_what_to_do() {
        let t = Thresholds::default();
        let lost = GpuSample {
            errors: (0..5)
                .map(|_| GpuError {
                    kind: GpuErrorKind::Lost,
                    query: "utilization".into(),
                    detail: "NVML: GPU is lost".into(),
                })
                .collect(),
            ..Default::default()
        };
        let v = judge_gpu(&lost, &t, &none_acknowledged);
        assert_eq!(v.health, Health::Crit);
        assert_eq!(
            v.reasons,
            ["GPU lost (NVML: GPU is lost): reboot the node"],
            "one reason per kind of error"
        );
        let odd = GpuSample {
            errors: vec![GpuError {
                kind: GpuErrorKind::Implausible,
                query: "temperature.memory".into(),
                detail: "1000 °C".into(),
            }],
            ..gpu()
        };
        assert_eq!(judge_gpu(&odd, &t, &none_acknowledged).health, Health::Warn);
    }

    #[test]
    fn tlimit_margins_and_models_without_built_in_limits() {
        let t = Thresholds::default();
        let at = |margin| GpuSample {
            temp_c: Some(90),
            tlimit_margin_c: Some(margin),
            tlimit_slowdown_c: Some(-2),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&at(20), &t, &none_acknowledged).health,
            Health::Ok
        );
        assert_eq!(
            judge_gpu(&at(2), &t, &none_acknowledged).health,
            Health::Warn
        );
        assert_eq!(
            judge_gpu(&at(-3), &t, &none_acknowledged).health,
            Health::Crit
        );
        let other = GpuSample {
            name: Some("NVIDIA L40S".into()),
            temp_c: Some(88),
            mem_temp_c: Some(94),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&other, &t, &none_acknowledged).health,
            Health::Ok,
            "H100 limits are not applied to other models"
        );
        let thermal = GpuSample {
            throttle: Some(vec!["sw_thermal_slowdown".into()]),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&thermal, &t, &none_acknowledged).health,
            Health::Warn
        );
    }

    #[test]
    fn an_acknowledged_xid_is_information_until_it_happens_again() {
        let gpu79 = |count| GpuSample {
            xid: Some(vec![79]),
            xid_events: Some(vec![XidEvent {
                code: 79,
                count,
                ..Default::default()
            }]),
            ..gpu()
        };
        let acked =
            |code: u32, count: u64| (code == 79 && count <= 1).then(|| "RMA 123".to_string());
        let v = judge_gpu(&gpu79(1), &Thresholds::default(), &acked);
        assert_eq!(v.health, Health::Ok);
        assert!(v.reasons[0].contains("acknowledged: RMA 123"), "{v:?}");
        let again = judge_gpu(&gpu79(2), &Thresholds::default(), &acked);
        assert_eq!(again.health, Health::Crit);
    }

    #[test]
    fn sxids_by_severity() {
        let e = |fatal| XidEvent {
            code: 22013,
            count: 3,
            fatal: Some(fatal),
            ..Default::default()
        };
        assert_eq!(judge_sxids(&[e(false)]).health, Health::Warn);
        assert_eq!(judge_sxids(&[e(false), e(true)]).health, Health::Crit);
    }
}
