//! Health rules: which GPU readings make a GPU or node `warn` or `crit`, with a reason for each.

use serde::Serialize;

use super::GpuSample;
use crate::inventory::Thresholds;

/// H100 SXM limits, used when neither the inventory nor the device gives one.
pub const H100_SLOWDOWN_C: u32 = 89;
pub const H100_MEM_MAX_C: u32 = 95;
/// How far below a crit threshold the warn threshold sits by default.
const WARN_MARGIN_C: f64 = 5.0;

/// XIDs that need a reset, a reboot or an RMA.
const CRIT_XIDS: &[(u32, &str)] = &[
    (48, "double-bit ECC error"),
    (64, "row remap failure"),
    (74, "NVLink error"),
    (79, "GPU fell off the bus, reboot needed"),
    (95, "uncontained memory error"),
    (119, "GSP timeout, GPU reset needed"),
    (120, "GSP error, GPU reset needed"),
];
/// XIDs worth a look but not an emergency.
const WARN_XIDS: &[(u32, &str)] = &[
    (63, "row remap event, a reset activates it"),
    (92, "high single-bit ECC rate"),
    (94, "contained memory error"),
];
/// Application faults (bad kernels, MMU faults of user code): no verdict on the hardware.
const IGNORED_XIDS: &[u32] = &[13, 31, 43, 45, 68];
/// Throttle reasons that mean the hardware is protecting itself.
const WARN_THROTTLE: &[&str] = &[
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
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

/// Judges one GPU.
pub fn judge_gpu(gpu: &GpuSample, limits: &Thresholds) -> Verdict {
    let mut v = Verdict::default();
    let gpu_crit = limits
        .gpu_temp_crit_c
        .unwrap_or(f64::from(gpu.temp_slowdown_c.unwrap_or(H100_SLOWDOWN_C)));
    let gpu_warn = limits.gpu_temp_warn_c.unwrap_or(gpu_crit - WARN_MARGIN_C);
    let mem_crit = limits
        .mem_temp_crit_c
        .unwrap_or(f64::from(gpu.mem_temp_max_c.unwrap_or(H100_MEM_MAX_C)));
    let mem_warn = limits.mem_temp_warn_c.unwrap_or(mem_crit - WARN_MARGIN_C);
    temperature(&mut v, "GPU", gpu.temp_c, gpu_warn, gpu_crit);
    temperature(&mut v, "memory", gpu.mem_temp_c, mem_warn, mem_crit);

    if let Some(n) = gpu.ecc_uncorrected.filter(|&n| n > 0) {
        v.add(Health::Crit, format!("{n} uncorrected ECC errors"));
    }
    if gpu.remapped_rows_failed == Some(true) {
        v.add(Health::Crit, "row remapping failed".into());
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
    for &xid in gpu.xid.iter().flatten() {
        if let Some((_, what)) = CRIT_XIDS.iter().find(|(x, _)| *x == xid) {
            v.add(Health::Crit, format!("XID {xid}: {what}"));
        } else if let Some((_, what)) = WARN_XIDS.iter().find(|(x, _)| *x == xid) {
            v.add(Health::Warn, format!("XID {xid}: {what}"));
        } else if !IGNORED_XIDS.contains(&xid) {
            v.add(Health::Warn, format!("XID {xid}: unclassified"));
        }
    }
    v
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

/// The node-level rule on top of its GPUs' verdicts: fewer GPUs than expected is `crit`.
pub fn judge_gpu_count(seen: usize, expected: u32) -> Option<Verdict> {
    (seen < expected as usize).then(|| Verdict {
        health: Health::Crit,
        reasons: vec![format!("{seen} of {expected} GPUs seen")],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu() -> GpuSample {
        GpuSample {
            temp_c: Some(60),
            mem_temp_c: Some(70),
            xid: Some(vec![]),
            ..Default::default()
        }
    }

    #[test]
    fn healthy_gpu_is_ok() {
        assert_eq!(
            judge_gpu(&gpu(), &Thresholds::default()),
            Verdict::default()
        );
    }

    #[test]
    fn temperatures_use_inventory_then_device_then_h100() {
        let hot = GpuSample {
            temp_c: Some(86),
            ..gpu()
        };
        assert_eq!(judge_gpu(&hot, &Thresholds::default()).health, Health::Warn);
        let device = GpuSample {
            temp_slowdown_c: Some(95),
            ..hot.clone()
        };
        assert_eq!(
            judge_gpu(&device, &Thresholds::default()).health,
            Health::Ok
        );
        let strict = Thresholds {
            gpu_temp_crit_c: Some(80.0),
            ..Default::default()
        };
        assert_eq!(judge_gpu(&hot, &strict).health, Health::Crit);
        let hbm = GpuSample {
            mem_temp_c: Some(95),
            ..gpu()
        };
        assert_eq!(judge_gpu(&hbm, &Thresholds::default()).health, Health::Crit);
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
            )
            .health
        };
        for x in [48, 64, 74, 79, 95, 119, 120] {
            assert_eq!(with(x), Health::Crit, "xid {x}");
        }
        for x in [63, 92, 94, 999] {
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
        assert_eq!(judge_gpu(&pending, &t).health, Health::Warn);
        let failed = GpuSample {
            remapped_rows_failed: Some(true),
            ..gpu()
        };
        assert_eq!(judge_gpu(&failed, &t).health, Health::Crit);
        let ecc = GpuSample {
            ecc_uncorrected: Some(2),
            ..gpu()
        };
        assert_eq!(judge_gpu(&ecc, &t).health, Health::Crit);
        let brake = GpuSample {
            throttle: Some(vec!["hw_power_brake_slowdown".into()]),
            ..gpu()
        };
        assert_eq!(judge_gpu(&brake, &t).health, Health::Warn);
        let capped = GpuSample {
            throttle: Some(vec!["sw_power_cap".into()]),
            ..gpu()
        };
        assert_eq!(judge_gpu(&capped, &t).health, Health::Ok);
        assert_eq!(judge_gpu_count(7, 8).map(|v| v.health), Some(Health::Crit));
        assert_eq!(judge_gpu_count(8, 8), None);
    }
}
