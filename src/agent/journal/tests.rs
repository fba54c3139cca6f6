//! The journal on real files: it survives a reopen (a restarted agent), skips a torn tail, counts each
//! occurrence once, and stays within its two capped files.

use super::*;
use crate::telemetry::XidEvent;

fn gpu_with_xid(count: u64, first: u64, last: u64) -> GpuSample {
    GpuSample {
        index: 3,
        uuid: Some("GPU-aaaa".into()),
        serial: Some("1652000003".into()),
        xid: Some(vec![79]),
        xid_events: Some(vec![XidEvent {
            code: 79,
            count,
            first_ms: Some(first),
            last_ms: Some(last),
            text: Some("GPU has fallen off the bus.".into()),
            fatal: None,
        }]),
        ..Default::default()
    }
}

fn sample(t: u64, gpu: GpuSample) -> NodeSample {
    NodeSample {
        t,
        gpus: vec![gpu],
        ..Default::default()
    }
}

/// The journal in `dir` with no boot time: these tests' made-up times all lie before this machine's boot, and
/// the kernel log alone is to tell what came before the (simulated) reboot.
fn unbooted(dir: &Path) -> Journal {
    let mut j = Journal::open(dir);
    j.boot_ms = None;
    j
}

#[test]
fn a_reopened_journal_says_the_xids_from_before_the_reboot_and_skips_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = unbooted(dir.path());
    for t in [10_000, 11_000] {
        j.note(&mut sample(t, gpu_with_xid(1, 5_000, 5_000)));
    }
    j.note(&mut sample(12_000, gpu_with_xid(2, 5_000, 9_000)));
    drop(j);
    let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
    assert_eq!(text.lines().count(), 2, "written on change only: {text}");
    // A crash mid-write leaves half a line.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join(CURRENT))
        .unwrap();
    f.write_all(br#"{"t":13000,"gpu":3,"ser"#).unwrap();
    drop(f);
    // After the reboot the kernel log is empty: checked, and XID 79 is not in it.
    let mut j = unbooted(dir.path());
    let mut s = sample(
        9_000 + 40 * 60_000,
        GpuSample {
            xid: Some(vec![]),
            xid_events: Some(vec![]),
            ..gpu_with_xid(0, 0, 0)
        },
    );
    j.note(&mut s);
    let past = s.gpus[0].past.clone().unwrap();
    assert_eq!(past.len(), 1, "{past:?}");
    assert_eq!(
        (past[0].code, past[0].count, past[0].last_ms),
        (Some(79), 2, 9_000)
    );
    assert!(past[0].before_reboot);
    assert_eq!(j.skipped, 1);
    assert!(
        s.warnings.is_empty(),
        "a torn tail is no fault: {:?}",
        s.warnings
    );
    // A new XID after the reboot starts on a line of its own and counts on.
    j.note(&mut sample(
        3_000_000,
        gpu_with_xid(1, 2_990_000, 2_990_000),
    ));
    let reread = unbooted(dir.path());
    assert_eq!(
        reread.entries.len(),
        3,
        "the torn line is skipped, the new one reads"
    );
    let mut s = sample(3_000_000, gpu_with_xid(1, 2_990_000, 2_990_000));
    let mut reread = reread;
    reread.note(&mut s);
    let past = s.gpus[0].past.clone().unwrap();
    assert_eq!(past[0].count, 3, "{past:?}");
    assert!(!past[0].before_reboot, "in the kernel log now: {past:?}");
    // Said as information once it is gone from the kernel log.
    let mut p = past.clone();
    p[0].before_reboot = true;
    assert_eq!(
        crate::telemetry::past::before_reboot(Some(&p), Some(3_000_000)),
        ["XID 79 ×3, last 10 s ago, before reboot"]
    );
}

#[test]
fn a_state_is_written_when_it_appears_not_at_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path());
    let with_action = |a: Option<u32>| GpuSample {
        index: 0,
        serial: Some("1652000000".into()),
        recovery_action: a,
        ..Default::default()
    };
    for (t, a) in [
        (1, Some(2)),
        (2, Some(2)),
        (3, Some(0)),
        (4, Some(2)),
        (5, Some(2)),
    ] {
        j.note(&mut sample(t, with_action(a)));
    }
    let mut s = sample(6, with_action(Some(2)));
    j.note(&mut s);
    let past = s.gpus[0].past.clone().unwrap();
    assert_eq!(past.len(), 1);
    assert_eq!(
        (past[0].kind.as_str(), past[0].code, past[0].count),
        ("recovery", Some(2), 2)
    );
}

#[test]
fn the_journal_stays_within_two_capped_files() {
    let dir = tempfile::tempdir().unwrap();
    const CAP: u64 = 16 * 1024;
    let mut j = Journal::open_capped(dir.path(), CAP);
    // Each sample a new XID occurrence: about 250 bytes a line, 300 lines: past two files' worth.
    for i in 0..300u64 {
        j.note(&mut sample(i + 1, gpu_with_xid(i + 1, 1, i + 1)));
    }
    let current = std::fs::metadata(dir.path().join(CURRENT)).unwrap().len();
    let rotated = std::fs::metadata(dir.path().join(ROTATED)).unwrap().len();
    assert!(current <= CAP && rotated <= CAP, "{current} {rotated}");
    assert!(rotated > CAP / 2, "it did rotate: {rotated}");
    // Read back, it holds no more than the two files.
    let reread = Journal::open_capped(dir.path(), CAP);
    assert!(
        reread.entries.len() < 300 && reread.skipped == 0,
        "{}",
        reread.entries.len()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
