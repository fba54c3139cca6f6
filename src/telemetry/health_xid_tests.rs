//! Health rules on XIDs and SXids: ages, history after a reset, SXids by code (tests of `health.rs`).

use super::tests::gpu;
use super::*;

#[test]
fn xids_show_their_age_and_history_is_not_a_fault() {
    let t = Thresholds::default();
    let gpu79 = GpuSample {
        xid: Some(vec![79]),
        xid_events: Some(vec![XidEvent {
            code: 79,
            count: 2,
            first_ms: Some(1_000),
            last_ms: Some(60_000),
            ..Default::default()
        }]),
        ..gpu()
    };
    let now = Some(60_000 + 40 * 60_000);
    let current = judge_gpu_at(
        &gpu79,
        &t,
        &none_acknowledged,
        &XidClock {
            now_ms: now,
            last_reset_ms: None,
            last_reboot_ms: None,
        },
    );
    assert_eq!(current.health, Health::Crit);
    assert!(
        current.reasons[0].ends_with("; last 40 min ago"),
        "{current:?}"
    );
    let reset = XidClock {
        now_ms: now,
        last_reset_ms: Some(120_000),
        last_reboot_ms: Some(120_000),
    };
    let after = judge_gpu_at(&gpu79, &t, &none_acknowledged, &reset);
    assert_eq!(after.health, Health::Ok, "{after:?}");
    assert!(
        after.reasons[0].starts_with("XID 79 (2×): before the last reset"),
        "{after:?}"
    );
}

#[test]
fn an_xid154_action_from_before_the_last_reset_is_history() {
    let t = Thresholds::default();
    let gpu = GpuSample {
        xid: Some(vec![154]),
        xid_events: Some(vec![XidEvent {
            code: 154,
            count: 1,
            first_ms: Some(1_000),
            last_ms: Some(1_000),
            text: Some(
                "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)".into(),
            ),
            fatal: None,
        }]),
        ..gpu()
    };
    let clock = |reset| XidClock {
        now_ms: Some(10_000),
        last_reset_ms: reset,
        last_reboot_ms: reset,
    };
    let before = judge_gpu_at(&gpu, &t, &none_acknowledged, &clock(None));
    assert_eq!(before.health, Health::Crit, "{before:?}");
    let after = judge_gpu_at(&gpu, &t, &none_acknowledged, &clock(Some(5_000)));
    assert_eq!(after.health, Health::Ok, "{after:?}");
    assert!(after
        .reasons
        .iter()
        .any(|r| r.starts_with("XID 154's action before the last reset")));
    // The driver's live field is its current word: a reset that did not clear it leaves it crit.
    let live = GpuSample {
        recovery_action: Some(1),
        ..gpu
    };
    let still = judge_gpu_at(&live, &t, &none_acknowledged, &clock(Some(5_000)));
    assert_eq!(still.health, Health::Crit);
}

#[test]
fn sxids_by_code_not_by_their_word() {
    let e = |code, fatal| XidEvent {
        code,
        count: 3,
        fatal: Some(fatal),
        ..Default::default()
    };
    // 22013 says Non-fatal and the catalogue says ignore (seen at boot): information.
    let boot = judge_sxids(&[e(22013, false)]);
    assert_eq!(boot.health, Health::Ok);
    assert_eq!(boot.reasons.len(), 1);
    for code in [12028, 20009, 20010, 20012, 20034] {
        assert_eq!(
            judge_sxids(&[e(code, false)]).health,
            Health::Crit,
            "{code}"
        );
    }
    assert_eq!(
        judge_sxids(&[e(12004, true)]).health,
        Health::Warn,
        "report the issue"
    );
    assert_eq!(
        judge_sxids(&[e(99999, false)]).health,
        Health::Warn,
        "unclassified"
    );
    assert_eq!(
        judge_sxids(&[e(99999, true)]).health,
        Health::Crit,
        "unclassified, driver says Fatal"
    );
    assert!(judge_sxids(&[e(12028, false)]).reasons[0].contains("reset the NVLink fabric"));
}
