//! Health rules on the board values (`telemetry/board.rs`): PCIe link and replays, AER reports, NVSwitch fabric
//! registration, memory health, sustained throttling, and the node-level power brake. One rule per function,
//! each with its source; `docs/health.md` lists them.

use super::{Health, Verdict};
use crate::telemetry::board::FabricState;
use crate::telemetry::sample::GpuSample;

/// A GPU this busy (utilization %) runs its PCIe link at full speed: nvidia-smi documents that the current link
/// generation "may be reduced when the GPU is not in use", and a real RTX 2080 SUPER idles at gen 1 of 3 (fixture
/// `nvidia-smi/nvidia-geforce-rtx-2080-super.idle.csv`).
const BUSY_PCT: u32 = 10;
/// DCGM's expected PCIe replays per minute per lane, by generation (DcgmHealthWatch.cpp
/// `GetExpectedPcieReplayRate`: a bit error rate of 1e-12 at the lane's speed).
const REPLAYS_PER_MIN_PER_LANE: [f64; 6] = [0.15, 0.3, 0.48, 0.96, 1.92, 3.84];
/// The reason a GPU's power brake gives; a node with two or more such GPUs shows one node reason instead.
pub(crate) const POWER_BRAKE_REASON: &str = "throttling: hw_power_brake_slowdown";
/// Throttle reasons (nvml.h clock event reasons) meaning the hardware or driver protects itself; the thermal
/// ones are judged by their violation counter when the GPU reports it.
const THERMAL_THROTTLE: [&str; 2] = ["sw_thermal_slowdown", "hw_thermal_slowdown"];
const HARDWARE_THROTTLE: [&str; 2] = ["hw_slowdown", "hw_power_brake_slowdown"];

/// Every board rule on one GPU.
pub(crate) fn judge_board(v: &mut Verdict, gpu: &GpuSample) {
    pcie_link_below_max(v, gpu);
    pcie_replays_rising(v, gpu);
    pcie_aer_reports(v, gpu);
    fabric_registration(v, gpu);
    fabric_health(v, gpu);
    sram_threshold_exceeded(v, gpu);
    memory_unrepairable(v, gpu);
    remap_banks_running_out(v, gpu);
    throttling(v, gpu);
}

/// A link narrower than its maximum warns always (width is not lowered to save power: the same idle RTX 2080
/// SUPER keeps x16); a lower generation only while the GPU is busy.
fn pcie_link_below_max(v: &mut Verdict, gpu: &GpuSample) {
    if let (Some(now), Some(max)) = (gpu.pcie_width, gpu.pcie_max_width) {
        if now < max {
            v.add(
                Health::Warn,
                format!("PCIe link x{now} of x{max}: reseat the GPU or check its riser/slot"),
            );
        }
    }
    let busy = gpu.util_pct.is_some_and(|u| u >= BUSY_PCT);
    if let (Some(now), Some(max), true) = (gpu.pcie_gen, gpu.pcie_max_gen, busy) {
        if now < max {
            v.add(
                Health::Warn,
                format!("PCIe link gen {now} of gen {max} while busy: check the slot, riser or BIOS link speed"),
            );
        }
    }
}

/// PCIe replays rising faster than DCGM expects for the link's generation and width (DCGM's PCIe health
/// watch warns, `DCGM_FR_PCI_REPLAY_RATE`).
fn pcie_replays_rising(v: &mut Verdict, gpu: &GpuSample) {
    let (Some(rise), Some(gen), Some(width)) = (gpu.pcie_replay_rise, gpu.pcie_gen, gpu.pcie_width)
    else {
        return;
    };
    if rise.by == 0 || rise.over_ms == 0 || gen == 0 {
        return;
    }
    let per_lane = REPLAYS_PER_MIN_PER_LANE[(gen as usize).min(REPLAYS_PER_MIN_PER_LANE.len()) - 1];
    let expected = (per_lane * f64::from(width)).ceil();
    let per_min = rise.by as f64 * 60_000.0 / rise.over_ms as f64;
    if per_min > expected {
        v.add(
            Health::Warn,
            format!(
                "PCIe replays rose by {} in {} s ({per_min:.0}/min, DCGM expects at most {expected:.0}/min at gen {gen} x{width})",
                rise.by,
                rise.over_ms / 1000
            ),
        );
    }
}

/// AER reports on the GPU's bus address (kernel `Documentation/PCI/pcieaer-howto.rst`): a fatal error makes the
/// link unreliable (crit), a non-fatal one loses a transaction (warn); corrected errors are information.
fn pcie_aer_reports(v: &mut Verdict, gpu: &GpuSample) {
    let Some(aer) = &gpu.pcie_aer else { return };
    let last = aer.last_text.as_deref().unwrap_or("");
    if aer.fatal > 0 {
        v.add(
            Health::Crit,
            format!(
                "PCIe AER: {} fatal error(s): reset the GPU or reboot the node; last: {last}",
                aer.fatal
            ),
        );
    } else if aer.nonfatal > 0 {
        v.add(
            Health::Warn,
            format!(
                "PCIe AER: {} uncorrected non-fatal error(s); last: {last}",
                aer.nonfatal
            ),
        );
    } else if aer.corrected > 0 {
        v.add(
            Health::Ok,
            format!("PCIe AER: {} corrected error(s)", aer.corrected),
        );
    }
}

/// NVSwitch fabric registration as DCGM's NVLink health watch judges `DCGM_FI_DEV_FABRIC_MANAGER_STATUS`: not
/// started, failed or unrecognised fail (crit: CUDA cannot use the GPU), in progress warns (training after boot).
fn fabric_registration(v: &mut Verdict, gpu: &GpuSample) {
    let Some(fabric) = &gpu.fabric else { return };
    let (health, what) = match (fabric.state, fabric.status) {
        (FabricState::Completed, Some(0)) => return,
        (FabricState::Completed, Some(code)) => (
            Health::Crit,
            format!("fabric registration failed (NVML status {code})"),
        ),
        (FabricState::Completed, None) => {
            (Health::Crit, "fabric registration status unknown".into())
        }
        (FabricState::InProgress, _) => (
            Health::Warn,
            "fabric registration in progress: CUDA cannot use the GPU until it completes".into(),
        ),
        (FabricState::NotStarted, _) => (Health::Crit, "fabric registration not started".into()),
        (FabricState::Unknown, _) => (Health::Crit, "fabric state unrecognised".into()),
    };
    let remedy = if health == Health::Crit {
        ": CUDA cannot use the GPU; check nvidia-fabricmanager, then reset the GPUs"
    } else {
        ""
    };
    v.add(health, format!("{what}{remedy}"));
}

/// Fabric health mask bits DCGM fails on (DcgmHealthWatch.cpp `MonitorFabricHealth`): route unhealthy,
/// bandwidth degraded, route recovery, access timeout recovery (value TRUE = 1 in each 2-bit field) and an
/// incorrect configuration (any value but NOT_SUPPORTED 0 and NONE 1 in its 4-bit field at bit 8).
fn fabric_health(v: &mut Verdict, gpu: &GpuSample) {
    let Some(mask) = gpu.fabric.as_ref().and_then(|f| f.health_mask) else {
        return;
    };
    for (shift, what) in [
        (0, "bandwidth degraded"),
        (2, "route recovery in progress"),
        (4, "route unhealthy"),
        (6, "access timeout recovery"),
    ] {
        if (mask >> shift) & 0x3 == 1 {
            v.add(
                Health::Crit,
                format!("fabric health: {what} (mask 0x{mask:x})"),
            );
        }
    }
    if !matches!((mask >> 8) & 0xf, 0 | 1) {
        v.add(
            Health::Crit,
            format!("fabric health: incorrect configuration (mask 0x{mask:x})"),
        );
    }
}

/// SRAM uncorrectable errors past the threshold of NVIDIA's field diagnostic (nvml.h `nvmlEccSramErrorStatus_t`
/// `bThresholdExceeded`): the GPU fails field diagnostics.
fn sram_threshold_exceeded(v: &mut Verdict, gpu: &GpuSample) {
    if gpu.sram_threshold_exceeded == Some(true) {
        v.add(
            Health::Crit,
            "SRAM error threshold exceeded: drain, run field diagnostics, RMA the GPU".into(),
        );
    }
}

/// Unrepairable memory (nvml.h `nvmlDeviceGetUnrepairableMemoryFlag`; DCGM's memory health watch fails with
/// `DCGM_FR_FAULTY_MEMORY`).
fn memory_unrepairable(v: &mut Verdict, gpu: &GpuSample) {
    if gpu.memory_unrepairable == Some(true) {
        v.add(
            Health::Crit,
            "memory unrepairable: drain and RMA the GPU".into(),
        );
    }
}

/// Banks with Low or None spare rows left (nvml.h `nvmlDeviceGetRowRemapperHistogram`): the next row failures in
/// them cannot be remapped.
fn remap_banks_running_out(v: &mut Verdict, gpu: &GpuSample) {
    let Some(banks) = gpu.remap_banks else { return };
    if banks.low > 0 || banks.none > 0 {
        v.add(
            Health::Warn,
            format!(
                "row remapping running out: {} bank(s) with none and {} with low spare rows left",
                banks.none, banks.low
            ),
        );
    }
}

/// Clock event reasons that mean protection (nvml.h): hardware slowdown and power brake by the current
/// sample's bits; thermal slowdown by its violation counter when the GPU reports one (DCGM's thermal health
/// watch warns when the violation time rose within the last minute), else by the bits.
fn throttling(v: &mut Verdict, gpu: &GpuSample) {
    let thermal = gpu
        .clock_violation
        .and_then(|c| c.thermal_ms.map(|ms| (ms, c.over_ms)));
    for reason in gpu.throttle.iter().flatten() {
        let counted = thermal.is_some() && THERMAL_THROTTLE.contains(&reason.as_str());
        if HARDWARE_THROTTLE.contains(&reason.as_str())
            || (!counted && THERMAL_THROTTLE.contains(&reason.as_str()))
        {
            v.add(Health::Warn, format!("throttling: {reason}"));
        }
    }
    if let Some((ms, over)) = thermal.filter(|(ms, over)| *ms > 0 && *over > 0) {
        v.add(
            Health::Warn,
            format!(
                "thermal throttling {:.1} s of the last {} s ({:.0}%): check cooling",
                ms as f64 / 1000.0,
                over / 1000,
                ms as f64 * 100.0 / over as f64
            ),
        );
    }
}

/// Two or more GPUs of a node under a hardware power brake (nvml.h: "External Power Brake Assertion being
/// triggered (e.g. by the system power supply)"): one cause for the node, so one reason naming the GPUs.
pub(crate) fn node_power_brake<'a>(
    gpus: impl IntoIterator<Item = &'a GpuSample>,
) -> Option<String> {
    let braked: Vec<String> = gpus
        .into_iter()
        .filter(|g| {
            g.throttle
                .iter()
                .flatten()
                .any(|r| r == "hw_power_brake_slowdown")
        })
        .map(|g| g.index.to_string())
        .collect();
    (braked.len() >= 2).then(|| {
        format!(
            "hardware power brake on GPUs {}: check power supply / BMC",
            braked.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::board::{ClockViolation, GpuFabric, PcieAer, RemapBanks, Rise};

    fn gpu() -> GpuSample {
        GpuSample {
            util_pct: Some(0),
            pcie_gen: Some(5),
            pcie_width: Some(16),
            pcie_max_gen: Some(5),
            pcie_max_width: Some(16),
            ..Default::default()
        }
    }

    fn judge(g: &GpuSample) -> Verdict {
        let mut v = Verdict::default();
        judge_board(&mut v, g);
        v
    }

    #[test]
    fn a_narrow_link_warns_always_a_slow_one_only_while_busy() {
        assert_eq!(judge(&gpu()), Verdict::default());
        let narrow = GpuSample {
            pcie_width: Some(8),
            ..gpu()
        };
        let v = judge(&narrow);
        assert_eq!(v.health, Health::Warn);
        assert!(v.reasons[0].contains("x8 of x16"), "{v:?}");
        let idle_gen1 = GpuSample {
            pcie_gen: Some(1),
            ..gpu()
        };
        assert_eq!(judge(&idle_gen1).health, Health::Ok, "idle links downshift");
        let busy_gen4 = GpuSample {
            pcie_gen: Some(4),
            util_pct: Some(97),
            ..gpu()
        };
        let v = judge(&busy_gen4);
        assert_eq!(v.health, Health::Warn);
        assert!(v.reasons[0].contains("gen 4 of gen 5"), "{v:?}");
        let unknown_max = GpuSample {
            pcie_max_width: None,
            pcie_width: Some(1),
            ..gpu()
        };
        assert_eq!(judge(&unknown_max).health, Health::Ok);
    }

    #[test]
    fn replays_warn_above_dcgms_rate_for_the_link() {
        let rising = |by| GpuSample {
            pcie_replay_rise: Some(Rise {
                by,
                over_ms: 60_000,
            }),
            ..gpu()
        };
        // Gen 5 x16: ceil(1.92 * 16) = 31 a minute.
        assert_eq!(judge(&rising(31)).health, Health::Ok);
        let v = judge(&rising(32));
        assert_eq!(v.health, Health::Warn);
        assert!(
            v.reasons[0].contains("DCGM expects at most 31/min"),
            "{v:?}"
        );
        let gen9 = GpuSample {
            pcie_gen: Some(9),
            ..rising(500)
        };
        assert_eq!(
            judge(&gen9).health,
            Health::Warn,
            "capped at the last known generation"
        );
    }

    #[test]
    fn aer_severities() {
        let with = |corrected, nonfatal, fatal| GpuSample {
            pcie_aer: Some(PcieAer {
                corrected,
                nonfatal,
                fatal,
                ..Default::default()
            }),
            ..gpu()
        };
        let v = judge(&with(3, 0, 0));
        assert_eq!(v.health, Health::Ok);
        assert_eq!(v.reasons.len(), 1, "corrected errors are shown");
        assert_eq!(judge(&with(3, 1, 0)).health, Health::Warn);
        assert_eq!(judge(&with(0, 1, 1)).health, Health::Crit);
    }

    #[test]
    fn fabric_registration_follows_dcgm() {
        let with = |state, status| GpuSample {
            fabric: Some(GpuFabric {
                state,
                status,
                ..Default::default()
            }),
            ..gpu()
        };
        assert_eq!(
            judge(&with(FabricState::Completed, Some(0))),
            Verdict::default()
        );
        assert_eq!(
            judge(&with(FabricState::InProgress, None)).health,
            Health::Warn
        );
        for (state, status) in [
            (FabricState::NotStarted, None),
            (FabricState::Completed, Some(999)),
            (FabricState::Unknown, None),
        ] {
            let v = judge(&with(state, status));
            assert_eq!(v.health, Health::Crit, "{state:?}");
            assert!(v.reasons[0].contains("CUDA cannot use the GPU"), "{v:?}");
        }
        let degraded = GpuSample {
            fabric: Some(GpuFabric {
                state: FabricState::Completed,
                status: Some(0),
                // Bandwidth degraded TRUE (1 at bit 0), route unhealthy FALSE (2 at bit 4), configuration NONE.
                health_mask: Some(1 | 2 << 4 | 1 << 8),
                clique_id: None,
            }),
            ..gpu()
        };
        let v = judge(&degraded);
        assert_eq!(v.health, Health::Crit);
        assert_eq!(v.reasons.len(), 1, "{v:?}");
        assert!(v.reasons[0].contains("bandwidth degraded"));
        let healthy = GpuSample {
            fabric: Some(GpuFabric {
                health_mask: Some(2 | 2 << 2 | 2 << 4 | 2 << 6 | 1 << 8),
                ..degraded.fabric.clone().unwrap()
            }),
            ..gpu()
        };
        assert_eq!(judge(&healthy), Verdict::default());
    }

    #[test]
    fn memory_health_detail() {
        let sram = GpuSample {
            sram_threshold_exceeded: Some(true),
            ..gpu()
        };
        assert_eq!(judge(&sram).health, Health::Crit);
        let unrepairable = GpuSample {
            memory_unrepairable: Some(true),
            ..gpu()
        };
        assert_eq!(judge(&unrepairable).health, Health::Crit);
        let fine = GpuSample {
            sram_threshold_exceeded: Some(false),
            memory_unrepairable: Some(false),
            remap_banks: Some(RemapBanks {
                max: 3072,
                ..Default::default()
            }),
            ..gpu()
        };
        assert_eq!(judge(&fine), Verdict::default());
        for banks in [
            RemapBanks {
                max: 3071,
                low: 1,
                ..Default::default()
            },
            RemapBanks {
                max: 3071,
                none: 1,
                ..Default::default()
            },
        ] {
            let v = judge(&GpuSample {
                remap_banks: Some(banks),
                ..gpu()
            });
            assert_eq!(v.health, Health::Warn, "{banks:?}");
        }
        let partial = RemapBanks {
            max: 3000,
            high: 50,
            partial: 22,
            ..Default::default()
        };
        assert_eq!(
            judge(&GpuSample {
                remap_banks: Some(partial),
                ..gpu()
            })
            .health,
            Health::Ok
        );
    }

    #[test]
    fn thermal_throttling_is_judged_by_its_counter_when_there_is_one() {
        let bits = GpuSample {
            throttle: Some(vec!["sw_thermal_slowdown".into()]),
            ..gpu()
        };
        assert_eq!(
            judge(&bits).health,
            Health::Warn,
            "no counter: the bits judge"
        );
        let counted = |thermal_ms| GpuSample {
            clock_violation: Some(ClockViolation {
                over_ms: 60_000,
                power_ms: Some(60_000),
                thermal_ms,
            }),
            ..bits.clone()
        };
        assert_eq!(
            judge(&counted(Some(0))).health,
            Health::Ok,
            "a blip between counter readings is not sustained"
        );
        let v = judge(&counted(Some(30_000)));
        assert_eq!(v.health, Health::Warn);
        assert_eq!(v.reasons.len(), 1, "{v:?}");
        assert!(
            v.reasons[0].contains("30.0 s of the last 60 s (50%)"),
            "{v:?}"
        );
        let power_capped = GpuSample {
            throttle: Some(vec!["sw_power_cap".into()]),
            ..counted(Some(0))
        };
        assert_eq!(
            judge(&power_capped),
            Verdict::default(),
            "power capping is normal at full load"
        );
        let brake = GpuSample {
            throttle: Some(vec!["hw_power_brake_slowdown".into()]),
            ..gpu()
        };
        assert_eq!(judge(&brake).reasons, [POWER_BRAKE_REASON]);
    }

    #[test]
    fn a_power_brake_on_two_gpus_is_one_node_reason() {
        let braked = |index| GpuSample {
            index,
            throttle: Some(vec!["hw_power_brake_slowdown".into()]),
            ..gpu()
        };
        let calm = GpuSample { index: 1, ..gpu() };
        assert_eq!(node_power_brake([&braked(0), &calm]), None);
        let reason = node_power_brake([&braked(0), &calm, &braked(5)]).unwrap();
        assert_eq!(
            reason,
            "hardware power brake on GPUs 0, 5: check power supply / BMC"
        );
    }
}
