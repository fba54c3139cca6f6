//! The driver's recovery action: reading it from XID 154's text, and what each action asks of the operator.
//!
//! How bad each action is, is a health rule (`health::recovery_severity`).
//!
//! Sources: nvml.h (R565 and later) `nvmlDeviceGpuRecoveryAction_t` and `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`
//! (field 230) and its comments on each value; NVIDIA's XID catalogue, XID 154
//! `GPU_RECOVERY_ACTION_CHANGED`: "The string will be similar to 'Xid 154 GPU recovery action changed from
//! 0x0 (None) to 0x2 (Node Reboot Required)'".

use super::sample::{GpuSample, RecoveryAction, XidEvent};

/// XID 154, `GPU_RECOVERY_ACTION_CHANGED`: the driver's summary of what the XIDs before it require.
pub(crate) const XID_RECOVERY_ACTION_CHANGED: u32 = 154;

/// The action an XID 154 message says the driver changed to: the hex value after `to` (drivers name the
/// values differently: `Node Reboot Required`, `OS Reboot`, `PF FLR`), else the catalogue's name in brackets.
/// `None` for text that names no action.
pub(crate) fn parse_xid154(text: &str) -> Option<RecoveryAction> {
    let after = &text[text.rfind(" to ")? + " to ".len()..];
    let after = after.trim_start();
    if let Some(hex) = after
        .strip_prefix("0x")
        .or_else(|| after.strip_prefix("0X"))
    {
        let digits = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        return u32::from_str_radix(&hex[..digits], 16)
            .ok()
            .map(RecoveryAction::from_raw);
    }
    let name = after.strip_prefix('(')?.split(')').next()?;
    let raw = match name.trim() {
        "None" => 0,
        "GPU Reset Required" => 1,
        "Node Reboot Required" => 2,
        "Drain P2P" => 3,
        "Drain and Reset" => 4,
        _ => return None,
    };
    Some(RecoveryAction::from_raw(raw))
}

/// The action of the last XID 154 among `events` (the kernel log keeps each code's last message).
pub(crate) fn from_xid_events(events: &[XidEvent]) -> Option<RecoveryAction> {
    events
        .iter()
        .find(|e| e.code == XID_RECOVERY_ACTION_CHANGED)
        .and_then(|e| e.text.as_deref())
        .and_then(parse_xid154)
}

/// The GPU's recovery action: what the sample reports (NVML field 230, or the agent's reading of XID 154),
/// else what its last XID 154 line says (samples of agents that predate the field). `None`: not reported.
pub fn of(gpu: &GpuSample) -> Option<RecoveryAction> {
    gpu.recovery_action
        .map(RecoveryAction::from_raw)
        .or_else(|| from_xid_events(gpu.xid_events.as_deref().unwrap_or_default()))
}

/// What the driver asks for, naming the remedy (nvml.h's comments on each value); `None` for no action.
pub fn remedy(action: RecoveryAction) -> Option<String> {
    Some(match action {
        RecoveryAction::None => return None,
        RecoveryAction::GpuReset => {
            "driver asks for a GPU reset: stop its processes, then reset the GPU (nvidia-smi -r)".into()
        }
        RecoveryAction::NodeReboot => {
            "driver asks for a node reboot: the fault may have left the OS inconsistent".into()
        }
        RecoveryAction::DrainAndReset => {
            "driver asks to drain and reset: the GPU runs at reduced capacity; drain its work, then reset it"
                .into()
        }
        RecoveryAction::DrainP2p => {
            "driver asks to drain peer-to-peer traffic: stop the GPU's P2P work, then read the action again"
                .into()
        }
        RecoveryAction::Other(n) => {
            format!("unknown recovery action {n}: newer than this fleetop; see nvidia-smi -q")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real XID 154 lines, as NVIDIA/NVSentinel's syslog health monitor tests them
    /// (`health-monitors/syslog-health-monitor/pkg/xid/parser/csv_test.go`: "XID 154" and "XID 154 recovery
    /// action returned to None"), and the form NVIDIA's XID catalogue quotes.
    const SET: &str = "NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)";
    const CLEARED: &str = "NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)";
    const CATALOGUE: &str =
        "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)";

    #[test]
    fn xid154_lines_name_the_action_changed_to() {
        assert_eq!(parse_xid154(SET), Some(RecoveryAction::GpuReset));
        assert_eq!(parse_xid154(CLEARED), Some(RecoveryAction::None));
        assert_eq!(parse_xid154(CATALOGUE), Some(RecoveryAction::NodeReboot));
        // Drivers name values their own way; the number decides.
        assert_eq!(
            parse_xid154("GPU recovery action changed from 0x0 (None) to 0x2 (OS Reboot)"),
            Some(RecoveryAction::NodeReboot)
        );
        assert_eq!(
            parse_xid154("GPU recovery action changed to (Drain and Reset)"),
            Some(RecoveryAction::DrainAndReset)
        );
        assert_eq!(
            parse_xid154("changed from 0x0 (None) to 0x6 (Bus Reset)"),
            Some(RecoveryAction::Other(6))
        );
        // Garbage is no action, and no panic (NVSentinel's out-of-order brackets case among them).
        for text in [
            "",
            "154 (",
            " to ",
            " to 0x",
            " to 0xffffffffff (x)",
            " to (Something)",
            " to (",
        ] {
            assert_eq!(parse_xid154(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_sample_wins_over_the_last_xid154_and_a_later_154_clears() {
        let event = |text: &str| XidEvent {
            code: XID_RECOVERY_ACTION_CHANGED,
            count: 1,
            text: Some(text.into()),
            ..Default::default()
        };
        let mut gpu = GpuSample {
            xid: Some(vec![154]),
            xid_events: Some(vec![event(CATALOGUE)]),
            ..Default::default()
        };
        assert_eq!(of(&gpu), Some(RecoveryAction::NodeReboot));
        gpu.xid_events = Some(vec![event(CLEARED)]);
        assert_eq!(of(&gpu), Some(RecoveryAction::None));
        gpu.recovery_action = Some(1);
        assert_eq!(of(&gpu), Some(RecoveryAction::GpuReset));
        assert_eq!(of(&GpuSample::default()), None, "not reported");
    }

    #[test]
    fn every_action_but_none_names_a_remedy() {
        use RecoveryAction as A;
        for a in [A::GpuReset, A::NodeReboot, A::DrainAndReset, A::DrainP2p] {
            assert!(remedy(a).unwrap().starts_with("driver asks"), "{a:?}");
        }
        assert_eq!(remedy(A::None), None);
        assert!(remedy(A::Other(7))
            .unwrap()
            .starts_with("unknown recovery action 7"));
    }
}
