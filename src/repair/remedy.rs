//! Which remedy a repair applies to a node, from what the node says: the driver's recovery action where it
//! reports one (R565+), else NVIDIA's resolution for the XIDs behind the verdict; a lost GPU or anything unknown
//! is a reboot. A pure choice over the node's GPU samples, so the dry run, the dialog and the workflow agree.
//! An XID from before the GPU's last audited reset (or an XID 154 back to none) is history, as health says it
//! (`telemetry::xid_age`): it asks for no remedy, and a lemon is not counted twice for it.

use serde::{Deserialize, Serialize};

use crate::telemetry::xid_age::{self, XidClock};
use crate::telemetry::{GpuErrorKind, GpuSample, RecoveryAction};

/// What the repair does to the node once it is drained and idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Remedy {
    /// `nvidia-smi -r`: minutes, the node keeps its boot.
    Reset,
    /// The node's reboot: 10–30 minutes on a bare-metal HGX system.
    Reboot,
}

impl Remedy {
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Reset => "GPU reset",
            Remedy::Reboot => "reboot",
        }
    }
}

/// One GPU's fault, as the lemon rule counts it: which GPU (its serial, the UUID when it has none) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fault {
    pub gpu: u32,
    /// `SN 1652…` or the UUID; `None` when the GPU answered neither.
    pub id: Option<String>,
    /// `XID 79`, `recovery action gpu_reset`, `lost`: the same words for the same cause every time.
    pub cause: String,
    pub remedy: Remedy,
}

/// The chosen remedy and why, as the dry run, the dialog and the repair's state say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub remedy: Remedy,
    /// `GPU 3: driver asks for a GPU reset`, one clause per fault, `; ` between them.
    pub why: String,
    pub faults: Vec<Fault>,
}

impl Plan {
    /// The one GPU a reset is for; `None`: every GPU of the node (several faulty ones).
    pub(crate) fn reset_gpu(&self) -> Option<u32> {
        match self.faults.as_slice() {
            [one] => Some(one.gpu),
            _ => None,
        }
    }

    /// What a node that could not be looked at gets: a reboot, saying why.
    pub fn unknown(why: &str) -> Plan {
        Plan {
            remedy: Remedy::Reboot,
            why: format!("{why}: reboot"),
            faults: Vec::new(),
        }
    }
}

/// NVIDIA's resolution bucket for an XID, where the catalogue gives one fleetop acts on: an interim table until
/// the full catalogue lands in `telemetry/health.rs`. Sources: NVIDIA's XID catalogue (docs.nvidia.com/deploy/
/// xid-errors, "Resolution" column, as NVSentinel ships it: 109, 155, 162 RESET_GPU; 79, 160 RESTART_BM) and the
/// crit XIDs of `health.rs`, whose catalogue entries ask for a GPU reset.
fn xid_remedy(code: u32) -> Option<Remedy> {
    const RESET_GPU: &[u32] = &[
        46, 48, 62, 64, 74, 95, 109, 110, 119, 120, 136, 140, 143, 155, 156, 158, 162,
    ];
    const RESTART_BM: &[u32] = &[79, 160];
    if RESTART_BM.contains(&code) {
        Some(Remedy::Reboot)
    } else if RESET_GPU.contains(&code) {
        Some(Remedy::Reset)
    } else {
        None
    }
}

/// One GPU's fault, or `None` when nothing on it calls for a remedy; its XIDs measured on `clock`.
fn gpu_fault(gpu: &GpuSample, clock: &XidClock) -> Option<(Fault, String)> {
    let fault = |cause: String, remedy| Fault {
        gpu: gpu.index,
        id: identity(gpu),
        cause,
        remedy,
    };
    let g = gpu.index;
    // The driver's own word first (nvml.h nvmlDeviceGpuRecoveryAction_t; DCGM fails on 1, 2 and 4).
    if let Some(raw) = gpu.recovery_action {
        let action = RecoveryAction::from_raw(raw);
        let cause = format!("recovery action {}", action.name());
        match action {
            RecoveryAction::GpuReset => {
                let why = format!("GPU {g}: driver asks for a GPU reset");
                return Some((fault(cause, Remedy::Reset), why));
            }
            RecoveryAction::DrainAndReset => {
                let why = format!("GPU {g}: driver asks to drain and reset the GPU");
                return Some((fault(cause, Remedy::Reset), why));
            }
            RecoveryAction::NodeReboot => {
                let why = format!("GPU {g}: driver asks for a node reboot");
                return Some((fault(cause, Remedy::Reboot), why));
            }
            RecoveryAction::Other(n) => {
                let why = format!("GPU {g}: driver asks for an action fleetop does not know ({n})");
                return Some((fault(cause, Remedy::Reboot), why));
            }
            RecoveryAction::None | RecoveryAction::DrainP2p => {}
        }
    }
    let worst = gpu
        .errors
        .iter()
        .map(|e| e.kind)
        .filter(|k| *k != GpuErrorKind::Implausible)
        .min();
    match worst {
        Some(GpuErrorKind::Lost) => {
            let why = format!("GPU {g}: lost (fell off the bus)");
            return Some((fault("lost".into(), Remedy::Reboot), why));
        }
        Some(GpuErrorKind::ResetRequired) => {
            // nvml.h NVML_ERROR_RESET_REQUIRED: "the GPU requires a reset before it can be used again".
            let why = format!("GPU {g}: NVML says the GPU requires a reset");
            return Some((fault("reset required".into(), Remedy::Reset), why));
        }
        Some(_) => {
            let why = format!("GPU {g}: queries fail");
            return Some((fault("query errors".into(), Remedy::Reboot), why));
        }
        None => {}
    }
    let current = xid_age::current_codes(gpu, clock);
    let codes = current.iter().copied();
    let known: Vec<(u32, Remedy)> = codes
        .filter_map(|c| xid_remedy(c).map(|r| (c, r)))
        .collect();
    // A reboot clears what a reset clears, not the other way round: the most disruptive need wins.
    let pick = known
        .iter()
        .find(|(_, r)| *r == Remedy::Reboot)
        .or_else(|| known.first());
    if let Some(&(code, remedy)) = pick {
        let why = match remedy {
            Remedy::Reset => format!("GPU {g}: XID {code} calls for a GPU reset (RESET_GPU)"),
            Remedy::Reboot => format!("GPU {g}: XID {code} calls for a node reboot (RESTART_BM)"),
        };
        return Some((fault(format!("XID {code}"), remedy), why));
    }
    if current.contains(&154) {
        // XID 154 names the recovery action; a driver that does not report the field leaves it unknown.
        let why = format!("GPU {g}: XID 154 asks for a recovery action the driver does not report");
        return Some((fault("XID 154".into(), Remedy::Reboot), why));
    }
    None
}

/// `SN <serial>`, else the UUID: what stays with the board when it moves between slots or nodes.
fn identity(gpu: &GpuSample) -> Option<String> {
    let clean = |s: &String| {
        let t = crate::text::escape(s.trim()).into_owned();
        (!t.is_empty()).then_some(t)
    };
    gpu.serial
        .as_ref()
        .and_then(clean)
        .map(|s| format!("SN {s}"))
        .or_else(|| gpu.uuid.as_ref().and_then(clean))
}

/// The remedy for a node whose GPUs read `gpus` (of `expected`), each with the clock its XIDs are measured on:
/// a reset only when every fault asks for no more than a reset; a missing GPU, a fault that needs a reboot, or
/// no fault fleetop can name is a reboot.
pub(crate) fn choose(gpus: &[(&GpuSample, XidClock)], expected: u32) -> Plan {
    let mut faults = Vec::new();
    let mut why = Vec::new();
    for (gpu, clock) in gpus {
        if let Some((fault, because)) = gpu_fault(gpu, clock) {
            faults.push(fault);
            why.push(because);
        }
    }
    let seen = gpus.len();
    let missing = usize::try_from(expected).map_or(0, |e| e.saturating_sub(seen));
    if missing > 0 {
        why.push(format!("{missing} of {expected} GPUs missing"));
    }
    if faults.is_empty() && missing == 0 {
        return Plan::unknown("no GPU fault that a reset clears");
    }
    let remedy = if missing == 0 && faults.iter().all(|f| f.remedy == Remedy::Reset) {
        Remedy::Reset
    } else {
        Remedy::Reboot
    };
    Plan {
        remedy,
        why: why.join("; "),
        faults,
    }
}

/// The remedy for `node` from the sample `fleet` holds (the TUI's last one) at `now`; no sample: a reboot.
pub(crate) fn from_state(
    fleet: &crate::fleet::FleetState,
    node: crate::inventory::NodeId,
    now: std::time::Instant,
) -> Plan {
    let status = &fleet.nodes()[node];
    match &status.sample {
        Some(s) => {
            let age = status.sample_at.map(|at| now.saturating_duration_since(at));
            let gpus: Vec<_> = s
                .gpus
                .iter()
                .map(|g| (g, fleet.xid_clock(node, Some(g.index), age)))
                .collect();
            choose(&gpus, fleet.inventory().nodes[node].expected_gpus)
        }
        None => Plan::unknown("no sample from the node yet"),
    }
}

/// Looks at `nodes` once, as `snapshot` would (over their own connections), and chooses each one's remedy; a
/// node that does not answer gets a reboot, saying so.
pub(crate) fn diagnose(
    inv: &crate::inventory::Inventory,
    nodes: &[crate::inventory::NodeId],
) -> Vec<Plan> {
    use crate::fleet::NodeState;
    let (mut state, pending) = match crate::snapshot::look_once(inv, nodes) {
        Ok(looked) => looked,
        Err(e) => {
            let why = format!("cannot look at the node: {}", crate::text::escape(&e));
            return nodes.iter().map(|_| Plan::unknown(&why)).collect();
        }
    };
    // The audited resets and reboots make older XIDs history, as in `snapshot`.
    state.note_resets(&crate::actions::resets::read_fleet(inv));
    (0..nodes.len())
        .map(|k| {
            let view = state.node_view(k, std::time::Instant::now(), pending);
            if view.state != NodeState::Up {
                let said = view.error.as_deref().unwrap_or(view.state.as_str());
                return Plan::unknown(&format!(
                    "its GPUs cannot be read ({})",
                    crate::text::escape(said)
                ));
            }
            let gpus: Vec<_> = view
                .gpus
                .iter()
                .map(|g| {
                    (
                        g.sample,
                        state.xid_clock(k, Some(g.sample.index), view.sample_age),
                    )
                })
                .collect();
            choose(&gpus, view.expected_gpus)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{GpuError, XidEvent};

    /// Every XID current: no audited reset.
    fn choose_now(gpus: &[&GpuSample], expected: u32) -> Plan {
        let gpus: Vec<_> = gpus.iter().map(|g| (*g, XidClock::default())).collect();
        choose(&gpus, expected)
    }

    #[test]
    fn an_xid_from_before_the_last_audited_reset_asks_for_no_remedy() {
        let mut g3 = gpu(3);
        g3.xid = Some(vec![48]);
        g3.xid_events = Some(vec![XidEvent {
            code: 48,
            count: 1,
            first_ms: Some(1_000),
            last_ms: Some(1_000),
            text: None,
            fatal: None,
        }]);
        assert_eq!(choose_now(&[&g3], 1).faults[0].cause, "XID 48");
        let reset = XidClock {
            now_ms: Some(10_000),
            last_reset_ms: Some(5_000),
            last_reboot_ms: None,
        };
        let plan = choose(&[(&g3, reset)], 1);
        assert!(plan.faults.is_empty(), "{plan:?}");
        assert!(plan.why.contains("no GPU fault"), "{}", plan.why);
        // Seen again after the reset, it is a fault again.
        g3.xid_events.as_mut().unwrap()[0].last_ms = Some(6_000);
        assert_eq!(choose(&[(&g3, reset)], 1).faults[0].cause, "XID 48");
    }

    fn gpu(index: u32) -> GpuSample {
        GpuSample {
            index,
            uuid: Some(format!("GPU-{index}")),
            serial: Some(format!("16520000{index}")),
            ..Default::default()
        }
    }

    #[test]
    fn the_drivers_recovery_action_decides_first() {
        let mut g3 = gpu(3);
        g3.recovery_action = Some(1);
        g3.xid = Some(vec![79]);
        let plan = choose_now(&[&gpu(0), &g3], 2);
        assert_eq!(plan.remedy, Remedy::Reset);
        assert_eq!(plan.why, "GPU 3: driver asks for a GPU reset");
        assert_eq!(plan.reset_gpu(), Some(3));
        assert_eq!(plan.faults[0].id.as_deref(), Some("SN 165200003"));
        g3.recovery_action = Some(4);
        assert_eq!(choose_now(&[&g3], 1).remedy, Remedy::Reset);
        g3.recovery_action = Some(2);
        let plan = choose_now(&[&g3], 1);
        assert_eq!(plan.remedy, Remedy::Reboot);
        assert_eq!(plan.why, "GPU 3: driver asks for a node reboot");
        g3.recovery_action = Some(7);
        assert_eq!(choose_now(&[&g3], 1).remedy, Remedy::Reboot);
    }

    #[test]
    fn older_drivers_go_by_the_xid_catalogue() {
        let mut g1 = gpu(1);
        g1.xid = Some(vec![13, 48]);
        let plan = choose_now(&[&g1], 1);
        assert_eq!(plan.remedy, Remedy::Reset);
        assert_eq!(plan.faults[0].cause, "XID 48");
        // NONE from the driver leaves the XIDs to decide.
        g1.recovery_action = Some(0);
        assert_eq!(choose_now(&[&g1], 1).remedy, Remedy::Reset);
        let mut g2 = gpu(2);
        g2.xid = Some(vec![79]);
        let plan = choose_now(&[&g1, &g2], 2);
        assert_eq!(
            plan.remedy,
            Remedy::Reboot,
            "one reboot-worthy GPU reboots the node"
        );
        assert_eq!(plan.reset_gpu(), None);
        assert!(plan.why.contains("GPU 2: XID 79 calls for a node reboot"));
    }

    #[test]
    fn lost_missing_and_unknown_reboot() {
        let lost = GpuSample::failed(
            5,
            GpuError {
                kind: GpuErrorKind::Lost,
                query: "temperature".into(),
                detail: "GPU is lost".into(),
            },
        );
        let plan = choose_now(&[&lost], 1);
        assert_eq!(
            (plan.remedy, plan.faults[0].cause.as_str()),
            (Remedy::Reboot, "lost")
        );
        assert_eq!(plan.faults[0].id, None);
        let mut g0 = gpu(0);
        g0.xid = Some(vec![48]);
        let plan = choose_now(&[&g0], 8);
        assert_eq!(plan.remedy, Remedy::Reboot);
        assert!(plan.why.ends_with("7 of 8 GPUs missing"), "{}", plan.why);
        let healthy = choose_now(&[&gpu(0)], 1);
        assert_eq!(healthy.remedy, Remedy::Reboot);
        assert!(healthy.why.contains("no GPU fault"));
        let mut unknown = gpu(0);
        unknown.xid = Some(vec![154]);
        assert_eq!(choose_now(&[&unknown], 1).remedy, Remedy::Reboot);
    }
}
