//! Health rules: which GPU readings make a GPU or node `warn` or `crit`, with a reason for each.

use serde::Serialize;

use super::catalogue::{self, Severity};
use super::recovery::{self, XID_RECOVERY_ACTION_CHANGED};
use super::sample::{GpuErrorKind, GpuSample, RecoveryAction, XidEvent};
use super::xid_age::{self, XidClock};
use crate::inventory::Thresholds;

/// The rules on a GPU's board values: PCIe, fabric registration, memory health, throttling.
pub(crate) mod board;

/// H100 limits seen on an older driver (slowdown 89 °C, memory max 95 °C): used only for GPUs whose name says
/// H100 when neither the inventory nor the device gives a limit. Other models get no built-in limit.
const H100_SLOWDOWN_C: u32 = 89;
const H100_MEM_MAX_C: u32 = 95;
/// How far below a crit threshold the warn threshold sits by default.
const WARN_MARGIN_C: f64 = 5.0;

/// XID 154 whose action is known: the recovery-action rule gives the verdict.
const RECOVERY_ACTION_CHANGED: &str =
    "GPU recovery action changed (see the driver's recovery action)";
/// A code NVIDIA's catalogue does not list: never silently ok.
const UNCLASSIFIED_XID: &str =
    "unclassified XID, not in NVIDIA's catalogue: look it up before acting";
const UNCLASSIFIED_SXID: &str = "unclassified SXid, not in NVIDIA's catalogue";
const UNCLASSIFIED_FATAL_SXID: &str =
    "unclassified SXid the driver marks Fatal: reset the NVLink fabric (reboot the node)";

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
    /// Which of `reasons` first reached `health`: what the verdict is for (the availability ledger's cause).
    pub(crate) worst: Option<usize>,
}

impl Verdict {
    pub fn add(&mut self, health: Health, reason: String) {
        if self.worst.is_none() || health > self.health {
            self.worst = Some(self.reasons.len());
        }
        self.health = self.health.max(health);
        self.reasons.push(reason);
    }

    /// The reason that set the verdict's health (the first at it), if any.
    pub(crate) fn worst_reason(&self) -> Option<&str> {
        self.reasons.get(self.worst?).map(String::as_str)
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

/// Judges one GPU. `acked(code, count)` gives the acknowledgement covering an XID, if any. XIDs without a clock
/// show no age (callers that have no sample time).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn judge_gpu(gpu: &GpuSample, limits: &Thresholds, acked: Acknowledged) -> Verdict {
    judge_gpu_at(gpu, limits, acked, &XidClock::default())
}

/// Judges one GPU, its XIDs measured against `clock`: each shows its age, and one from before the GPU's last
/// reset is history (see `xid_age`).
pub(crate) fn judge_gpu_at(
    gpu: &GpuSample,
    limits: &Thresholds,
    acked: Acknowledged,
    clock: &XidClock,
) -> Verdict {
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
    xids(&mut v, gpu, acked, clock);
    // The journal's past (before the last boot) is information: the reboot was the remedy, the live values judge.
    for reason in super::past::before_reboot(gpu.past.as_deref(), clock.now_ms) {
        v.add(Health::Ok, reason);
    }
    recovery_action(&mut v, gpu, clock);
    board::judge_board(&mut v, gpu);
    nvlinks(&mut v, gpu);
    if gpu.mig_enabled == Some(true) {
        v.add(
            Health::Ok,
            "MIG mode on: whole-GPU utilization is not reported".into(),
        );
    }
    v
}

/// NVLink states as DCGM's health watch judges them (DcgmHealthWatch.cpp, MonitorNVLink): a link that is down
/// fails, except with MIG enabled, where NVML reports the links of MIG GPUs as down and DCGM skips the check
/// (its source notes the driver bug). Counters that rose are judged by `telemetry::rise`.
fn nvlinks(v: &mut Verdict, gpu: &GpuSample) {
    let Some(links) = &gpu.nvlink else { return };
    if let Some(reason) = super::fabric::judge_nvlinks(links) {
        if gpu.mig_enabled == Some(true) {
            v.add(
                Health::Ok,
                format!("NVLink check skipped: MIG enabled (NVML reports MIG GPUs' links as down; {reason})"),
            );
        } else {
            v.add(Health::Crit, reason);
        }
    }
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
    memory_temperature(v, gpu, limits);
}

/// HBM temperature on every model, T.Limit or not: against the inventory's limits when set; else against the
/// memory maximum the device reports (nvml.h `NVML_TEMPERATURE_THRESHOLD_MEM_MAX`, read even where T.Limit
/// fields are offered, as DCGM reads `DCGM_FI_DEV_MEMORY_MAX_OP_TEMP_CELSIUS`) or the model's: near it warns, at
/// it warns (memory throttling starts there), above it is crit. Without any maximum, a reading above the H100's
/// maximum warns, so a hot GPU is never passed as ok.
fn memory_temperature(v: &mut Verdict, gpu: &GpuSample, limits: &Thresholds) {
    let Some(t) = gpu.mem_temp_c else { return };
    if let Some(crit) = limits.mem_temp_crit_c {
        let warn = limits.mem_temp_warn_c.unwrap_or(crit - WARN_MARGIN_C);
        return temperature(v, "memory", Some(t), warn, crit);
    }
    let max = gpu.mem_temp_max_c.or_else(|| {
        gpu.name
            .as_deref()
            .is_some_and(|n| n.contains("H100"))
            .then_some(H100_MEM_MAX_C)
    });
    let Some(max) = max else {
        // No maximum for this GPU: a reading above the one HBM maximum fleetop knows (the H100's) is not passed
        // as ok; below it nothing can be said.
        if t > H100_MEM_MAX_C {
            v.add(
                Health::Warn,
                format!("memory temperature {t} °C, above an H100's {H100_MEM_MAX_C} °C maximum; this GPU reports none (set [thresholds] mem_temp_crit_c)"),
            );
        }
        return;
    };
    let warn = limits
        .mem_temp_warn_c
        .unwrap_or(f64::from(max) - WARN_MARGIN_C);
    if t > max {
        v.add(
            Health::Crit,
            format!("memory temperature {t} °C above its maximum {max} °C"),
        );
    } else if t == max {
        v.add(
            Health::Warn,
            format!("memory temperature {t} °C at its maximum: memory throttling starts"),
        );
    } else if f64::from(t) >= warn {
        v.add(
            Health::Warn,
            format!("memory temperature {t} °C ≥ {warn} °C (maximum {max} °C)"),
        );
    }
}

/// Each XID by NVIDIA's catalogue, with its age; one from before the GPU's last reset is history (information),
/// and an acknowledged one is information until it happens again.
fn xids(v: &mut Verdict, gpu: &GpuSample, acked: Acknowledged, clock: &XidClock) {
    if gpu.xid.as_ref().is_none_or(Vec::is_empty) {
        return;
    }
    // XID 154 summarises the recovery action; where the action is known, the recovery-action rule judges it.
    let action_known = recovery::of(gpu).is_some();
    let events = gpu.xid_events.as_deref().unwrap_or_default();
    for (code, count) in gpu.xid_counts() {
        let event = events.iter().find(|e| e.code == code);
        let (health, what) = if code == XID_RECOVERY_ACTION_CHANGED && action_known {
            (Health::Ok, RECOVERY_ACTION_CHANGED)
        } else {
            classify_xid(code)
        };
        let times = if count > 1 {
            format!(" ({count}×)")
        } else {
            String::new()
        };
        let age = xid_age::last_seen(event, clock);
        let history = event.and_then(|e| xid_age::before_reset(e, events, clock));
        match (history, acked(code, count)) {
            (Some(history), _) if health != Health::Ok => v.add(
                Health::Ok,
                format!("XID {code}{times}: {history}, not a current fault{age}; was: {what}"),
            ),
            (_, Some(ack)) if health != Health::Ok => v.add(
                Health::Ok,
                format!("XID {code}{times}: {what} [acknowledged: {ack}]{age}"),
            ),
            _ => v.add(health, format!("XID {code}{times}: {what}{age}")),
        }
    }
}

/// What the driver asks to recover the GPU (nvml.h `nvmlDeviceGpuRecoveryAction_t`, field 230 or XID 154's
/// text): reset, reboot, drain-and-reset and unknown values crit, drain-P2P warn (DCGM's driver watch fails
/// GPU_RECOVERY_RESET, _REBOOT and _DRAIN_RESET and warns on _DRAIN_P2P); none says nothing. An action read
/// only from an XID 154 line older than the GPU's last audited reset is history: the reset was what it asked for.
fn recovery_action(v: &mut Verdict, gpu: &GpuSample, clock: &XidClock) {
    let Some(action) = recovery::of(gpu) else {
        return;
    };
    let Some(remedy) = recovery::remedy(action) else {
        return;
    };
    let from_log = gpu.recovery_action.is_none();
    let events = gpu.xid_events.as_deref().unwrap_or_default();
    let history = events
        .iter()
        .find(|e| e.code == XID_RECOVERY_ACTION_CHANGED)
        .filter(|_| from_log)
        .and_then(|e| xid_age::before_reset(e, events, clock));
    match history {
        Some(history) => v.add(
            Health::Ok,
            format!("XID 154's action {history}, not a current fault; was: {remedy}"),
        ),
        None => v.add(recovery_severity(action), remedy),
    }
}

/// How bad a recovery action is (DCGM's driver health watch: `DCGM_FR_GPU_RECOVERY_RESET`, `_REBOOT` and
/// `_DRAIN_RESET` fail, `_DRAIN_P2P` warns): none is ok; drain-P2P warns (the GPU keeps working once P2P traffic stops); reset,
/// reboot, drain-and-reset and any value this build does not know are crit (DCGM fails 1, 2 and 4).
pub(crate) fn recovery_severity(action: RecoveryAction) -> Health {
    match action {
        RecoveryAction::None => Health::Ok,
        RecoveryAction::DrainP2p => Health::Warn,
        RecoveryAction::GpuReset
        | RecoveryAction::NodeReboot
        | RecoveryAction::DrainAndReset
        | RecoveryAction::Other(_) => Health::Crit,
    }
}

/// One XID occurrence judged with its message: an XID 154 that names its action is judged as that action
/// (back to none is information, not an emergency); every other code by [`classify_xid`].
pub(crate) fn classify_xid_event(e: &XidEvent) -> (Health, &'static str) {
    if e.code == XID_RECOVERY_ACTION_CHANGED {
        if let Some(action) = e.text.as_deref().and_then(recovery::parse_xid154) {
            let what = if action == RecoveryAction::None {
                "GPU recovery action changed back to none"
            } else {
                RECOVERY_ACTION_CHANGED
            };
            return (recovery_severity(action), what);
        }
    }
    classify_xid(e.code)
}

/// NVIDIA's classification of one XID code (its catalogue, `telemetry/catalogue`): crit, warn, information
/// (ok), or unclassified (warn).
pub(crate) fn classify_xid(code: u32) -> (Health, &'static str) {
    match catalogue::xid(code) {
        Some(e) => (health_of(e.severity), e.what.as_str()),
        None => (Health::Warn, UNCLASSIFIED_XID),
    }
}

/// NVIDIA's classification of one NVSwitch SXid, by its code (the catalogue's SXid table). A code the table
/// lacks is judged by the driver's own word: `Fatal` crit, otherwise warn.
pub(crate) fn classify_sxid(code: u32, fatal: Option<bool>) -> (Health, &'static str) {
    match (catalogue::sxid(code), fatal) {
        (Some(e), _) => (health_of(e.severity), e.what.as_str()),
        (None, Some(true)) => (Health::Crit, UNCLASSIFIED_FATAL_SXID),
        (None, _) => (Health::Warn, UNCLASSIFIED_SXID),
    }
}

fn health_of(severity: Severity) -> Health {
    match severity {
        Severity::Info => Health::Ok,
        Severity::Warn => Health::Warn,
        Severity::Crit => Health::Crit,
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

/// NVSwitch SXids, each by its code in NVIDIA's catalogue (not by the `Fatal`/`Non-fatal` word of its line:
/// 22013 says Non-fatal and is ignorable at boot, 12028 needs a fabric reset). Without a clock: no ages (the
/// kernel-log tally ranks SXids through it).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn judge_sxids(events: &[XidEvent]) -> Verdict {
    judge_sxids_at(events, &XidClock::default())
}

/// [`judge_sxids`], each SXid with its age on `clock`.
pub(crate) fn judge_sxids_at(events: &[XidEvent], clock: &XidClock) -> Verdict {
    let mut v = Verdict::default();
    for e in events {
        let (health, what) = classify_sxid(e.code, e.fatal);
        let age = xid_age::last_seen(Some(e), clock);
        v.add(
            health,
            format!("NVSwitch SXid {} ({}×): {what}{age}", e.code, e.count),
        );
    }
    v
}

/// The node-level rule on top of its GPUs' verdicts: fewer GPUs than expected is `crit`.
/// Only GPUs that reported values count as seen: a lost GPU is listed, not seen.
pub(crate) fn judge_gpu_count(seen: usize, expected: u32) -> Option<Verdict> {
    (seen < expected as usize).then(|| Verdict {
        health: Health::Crit,
        reasons: vec![format!("{seen} of {expected} GPUs seen")],
        worst: Some(0),
    })
}

#[cfg(test)]
#[path = "health_xid_tests.rs"]
mod xid_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::GpuError;

    pub(super) fn gpu() -> GpuSample {
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
        let hbm = |t| GpuSample {
            mem_temp_c: Some(t),
            ..gpu()
        };
        let at = |t| judge_gpu(&hbm(t), &Thresholds::default(), &none_acknowledged);
        assert_eq!(at(89).health, Health::Ok);
        assert_eq!(at(90).health, Health::Warn);
        let max = at(95);
        assert_eq!(max.health, Health::Warn, "at its maximum memory throttles");
        assert!(
            max.reasons[0].contains("memory throttling starts"),
            "{max:?}"
        );
        assert_eq!(at(96).health, Health::Crit);
    }

    #[test]
    fn memory_temperature_is_judged_on_an_h200_with_t_limit() {
        let t = Thresholds::default();
        // An H200 as a recent driver reports it: T.Limit fields, and the memory maximum through the threshold.
        let h200 = |mem, max| GpuSample {
            name: Some("NVIDIA H200".into()),
            mem_temp_c: Some(mem),
            mem_temp_max_c: max,
            tlimit_margin_c: Some(30),
            tlimit_slowdown_c: Some(-2),
            tlimit_mem_max_c: Some(0),
            ..gpu()
        };
        assert_eq!(
            judge_gpu(&h200(99, Some(95)), &t, &none_acknowledged).health,
            Health::Crit
        );
        assert_eq!(
            judge_gpu(&h200(95, Some(95)), &t, &none_acknowledged).health,
            Health::Warn
        );
        assert_eq!(
            judge_gpu(&h200(60, Some(95)), &t, &none_acknowledged),
            Verdict::default()
        );
        let unknown = judge_gpu(&h200(99, None), &t, &none_acknowledged);
        assert_eq!(unknown.health, Health::Warn, "{unknown:?}");
        assert!(
            unknown.reasons[0].contains("this GPU reports none"),
            "without a maximum it says so: {unknown:?}"
        );
        assert_eq!(
            judge_gpu(&h200(90, None), &t, &none_acknowledged),
            Verdict::default()
        );
        let set = Thresholds {
            mem_temp_crit_c: Some(98.0),
            ..Default::default()
        };
        assert_eq!(
            judge_gpu(&h200(99, None), &set, &none_acknowledged).health,
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
        };
        // The design's crit list, and a sample of each crit bucket: RESET_GPU (109 included), RESTART_BM,
        // CHECK_MECHANICALS, WORKFLOW_XID_48, WORKFLOW_NVLINK_ERR, WORKFLOW_NVLINK5_ERR, RESTART_VM.
        for x in [
            46, 48, 62, 64, 74, 79, 95, 110, 119, 120, 136, 140, 143, 154, 156, 158, 109, 54, 155,
            160, 162, 144, 151,
        ] {
            assert_eq!(with(x).health, Health::Crit, "xid {x}");
        }
        // UNEXPECTED_ERR_REPORT_ISSUE, UPDATE_SWFW, and codes the catalogue lacks.
        for x in [1, 58, 78, 999, 0] {
            assert_eq!(with(x).health, Health::Warn, "xid {x}");
        }
        // RESTART_APP, IGNORE, WORKFLOW_XID_45 and CHECK_UVM: information (the list and the design's
        // application faults; 63, 92 and 94 were warnings before: the catalogue says ignore / restart the app).
        for x in [
            8, 11, 13, 31, 32, 38, 39, 40, 41, 43, 44, 45, 63, 68, 69, 70, 71, 72, 92, 93, 94, 137,
            157, 159,
        ] {
            let v = with(x);
            assert_eq!(v.health, Health::Ok, "xid {x}");
            assert_eq!(v.reasons.len(), 1, "information is still said: {v:?}");
        }
        assert_eq!(
            with(79).reasons,
            ["XID 79: reboot the node (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS; NVIDIA: RESTART_BM)"]
        );
        assert!(with(4242).reasons[0].starts_with("XID 4242: unclassified XID"));
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
    fn the_drivers_recovery_action_names_the_remedy() {
        let t = Thresholds::default();
        let with = |raw: u32| {
            judge_gpu(
                &GpuSample {
                    recovery_action: Some(raw),
                    ..gpu()
                },
                &t,
                &none_acknowledged,
            )
        };
        assert_eq!(with(0), Verdict::default(), "none says nothing");
        for (raw, words) in [
            (1, "driver asks for a GPU reset"),
            (2, "driver asks for a node reboot"),
            (4, "driver asks to drain and reset"),
            (7, "unknown recovery action 7"),
        ] {
            let v = with(raw);
            assert_eq!(v.health, Health::Crit, "{raw}: {v:?}");
            assert!(v.reasons[0].starts_with(words), "{raw}: {v:?}");
        }
        let p2p = with(3);
        assert_eq!(p2p.health, Health::Warn);
        assert!(p2p.reasons[0].starts_with("driver asks to drain peer-to-peer traffic"));
    }

    #[test]
    fn recovery_severities_follow_dcgm() {
        use RecoveryAction as A;
        assert_eq!(recovery_severity(A::None), Health::Ok);
        assert_eq!(recovery_severity(A::DrainP2p), Health::Warn);
        for a in [A::GpuReset, A::NodeReboot, A::DrainAndReset, A::Other(7)] {
            assert_eq!(recovery_severity(a), Health::Crit, "{a:?}");
        }
    }

    #[test]
    fn an_xid154_back_to_none_is_not_crit() {
        let t = Thresholds::default();
        // NVIDIA/NVSentinel's syslog monitor test lines (pkg/xid/parser/csv_test.go), messages as the kernel
        // log parser keeps them.
        let xid154 = |text: &str| GpuSample {
            xid: Some(vec![154]),
            xid_events: Some(vec![XidEvent {
                code: 154,
                count: 2,
                text: Some(text.into()),
                ..Default::default()
            }]),
            ..gpu()
        };
        let cleared =
            xid154("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)");
        let v = judge_gpu(&cleared, &t, &none_acknowledged);
        assert_eq!(v.health, Health::Ok, "{v:?}");
        let set = xid154("GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)");
        let v = judge_gpu(&set, &t, &none_acknowledged);
        assert_eq!(v.health, Health::Crit);
        assert_eq!(
            v.reasons
                .iter()
                .filter(|r| r.contains("driver asks for a GPU reset"))
                .count(),
            1,
            "one reason for the action, not two: {v:?}"
        );
        // The driver's live value overrides its log: reset done, field 230 reads none.
        let reset_done = GpuSample {
            recovery_action: Some(0),
            ..set.clone()
        };
        assert_eq!(
            judge_gpu(&reset_done, &t, &none_acknowledged).health,
            Health::Ok
        );
        // An XID 154 without its message (NVML's event set) stays crit, as the catalogue table says.
        let bare = GpuSample {
            xid_events: None,
            ..set
        };
        assert_eq!(
            judge_gpu(&bare, &t, &none_acknowledged).health,
            Health::Crit
        );
        let event = |text: &str| XidEvent {
            code: 154,
            count: 1,
            text: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(
            classify_xid_event(&event(
                "changed from 0x2 (Node Reboot Required) to 0x0 (None)"
            ))
            .0,
            Health::Ok
        );
        assert_eq!(
            classify_xid_event(&event("changed from 0x0 (None) to 0x3 (Drain P2P)")).0,
            Health::Warn
        );
    }
}
