//! The journal on real files: it survives a reopen (a restarted agent), skips a torn tail, counts each
//! occurrence once, and stays within its two capped files.

use super::*;
use crate::telemetry::{GpuSample, XidEvent};

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
    // Written before this boot (the test's times are), it still holds: today's, not "before reboot".
    assert!(!past[0].before_reboot, "{past:?}");
    let mut gone = sample(7, with_action(Some(0)));
    j.note(&mut gone);
    assert!(gone.gpus[0].past.as_ref().unwrap()[0].before_reboot);
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

fn port(state: &str, symbol_error: u64) -> crate::telemetry::fabric::IbPort {
    let mut p = crate::telemetry::fabric::IbPort {
        hca: "mlx5_0".into(),
        port: 1,
        state: Some(state.into()),
        phys_state: Some(
            if state.starts_with('4') {
                "5: LinkUp"
            } else {
                "3: Disabled"
            }
            .into(),
        ),
        ..Default::default()
    };
    p.counters.set("symbol_error", symbol_error);
    p
}

fn nvlinks(replay: u64) -> crate::telemetry::fabric::NvLinks {
    use crate::telemetry::fabric::{NvLinkCounts, NvLinkErrors, NvLinks};
    NvLinks::from_links(&[(
        0,
        true,
        NvLinkErrors {
            link: 0,
            counts: NvLinkCounts {
                replay: Some(replay),
                recovery: Some(0),
                crc_flit: Some(0),
                crc_data: Some(0),
            },
        },
    )])
}

/// A following agent's node at `t`: an SXid since boot, the port and GPU 3's NVLink counters as given.
fn fabric_sample(
    t: u64,
    sxid: bool,
    port: crate::telemetry::fabric::IbPort,
    replay: u64,
) -> NodeSample {
    let mut gpu = gpu_with_xid(0, 0, 0);
    gpu.xid = Some(vec![]);
    gpu.xid_events = Some(vec![]);
    gpu.nvlink = Some(nvlinks(replay));
    NodeSample {
        t,
        gpus: vec![gpu],
        sxid: Some(if sxid {
            vec![XidEvent {
                code: 12028,
                count: 1,
                first_ms: Some(1_000),
                last_ms: Some(1_000),
                text: Some("NVSwitch link fault\u{1b}[2J".into()),
                fatal: Some(true),
            }]
        } else {
            vec![]
        }),
        ib: Some(vec![port]),
        ..Default::default()
    }
}

#[test]
fn sxids_ports_down_and_fabric_counters_that_rose_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = unbooted(dir.path());
    // Following: the window opens at the first sample; counters rise within it and are judged when it closes.
    j.note(&mut fabric_sample(1_000, true, port("4: ACTIVE", 0), 0));
    j.note(&mut fabric_sample(2_000, true, port("1: DOWN", 0), 0));
    j.note(&mut fabric_sample(3_000, true, port("1: DOWN", 3), 5));
    let mut s = fabric_sample(1_000 + fabric::WINDOW_MS, true, port("4: ACTIVE", 3), 5);
    j.note(&mut s);
    let node = s.past.clone().unwrap();
    let kinds: Vec<&str> = node.iter().map(|p| p.kind.as_str()).collect();
    assert!(
        kinds.contains(&"sxid") && kinds.contains(&"ib") && kinds.contains(&"ib_errors"),
        "{node:?}"
    );
    let gpu = s.gpus[0].past.clone().unwrap();
    let rose = gpu
        .iter()
        .find(|p| p.kind == "nvlink_errors")
        .expect("NVLink rise");
    assert_eq!(
        rose.text.as_deref(),
        Some("NVLink 0: replay rose by 5 in 1 min 0 s"),
        "judged by the health rule over the window"
    );
    assert!(
        gpu.iter().all(|p| p.kind != "sxid"),
        "an SXid is the node's, not a GPU's: {gpu:?}"
    );
    // Every sample within a state is one line: the port down once, the SXid once.
    let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
    assert_eq!(text.matches("\"kind\":\"ib\"").count(), 1, "{text}");
    assert_eq!(text.matches("\"kind\":\"sxid\"").count(), 1, "{text}");
    assert!(text.lines().all(|l| l.len() <= MAX_LINE_BYTES));
    drop(j);
    // The agent restarts after a reboot: the kernel log, read, holds no SXid now.
    let mut j = unbooted(dir.path());
    let mut after = fabric_sample(10_000_000, false, port("4: ACTIVE", 0), 0);
    j.note(&mut after);
    after.sanitize(8);
    let node = after.past.clone().unwrap();
    let sxid = node.iter().find(|p| p.kind == "sxid").expect("SXid kept");
    assert!(sxid.before_reboot && sxid.count == 1, "{sxid:?}");
    assert!(!sxid.text.as_ref().unwrap().contains('\u{1b}'));
    let said = crate::telemetry::past::before_reboot(Some(&node), Some(10_000_000));
    assert!(
        said.iter().any(|r| r.starts_with("SXid 12028, last ")),
        "{said:?}"
    );
    // The rise from before the restart is kept; the restarted agent's window starts afresh, with none new.
    assert_eq!(
        after.gpus[0]
            .past
            .as_ref()
            .unwrap()
            .iter()
            .filter(|p| p.kind == "nvlink_errors")
            .count(),
        1,
        "the one rise from before"
    );
}

#[test]
fn a_one_pass_run_journals_the_rises_it_carries() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = unbooted(dir.path());
    let mut s = fabric_sample(5_000, false, port("4: ACTIVE", 7), 0);
    // What `state.rs` sets from the previous run: a congestion-only rise informs and is not journaled.
    s.ib.as_mut().unwrap()[0].rose = Some(crate::telemetry::fabric::IbRise {
        over_ms: 3_600_000,
        counters: {
            let mut c = crate::telemetry::fabric::IbCounters::default();
            c.set("port_xmit_discards", 40);
            c
        },
    });
    j.note(&mut s);
    assert!(s.past.as_ref().unwrap().is_empty(), "{:?}", s.past);
    s.ib.as_mut().unwrap()[0]
        .rose
        .as_mut()
        .unwrap()
        .counters
        .set("symbol_error", 7);
    s.t = 6_000;
    j.note(&mut s);
    let node = s.past.unwrap();
    assert_eq!(node.len(), 1, "{node:?}");
    assert!(
        node[0]
            .text
            .as_deref()
            .unwrap()
            .starts_with(
                "IB mlx5_0 port 1: symbol_error rose by 7, port_xmit_discards rose by 40 (congestion) in 1 h 0 min"
            ),
        "{node:?}"
    );
}
