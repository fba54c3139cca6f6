//! What the recorder writes reads back: its heartbeats while the fleet is silent, and every sample and event
//! within the bounds its reader holds them to.

use crate::inventory::Inventory;
use crate::recording::{Messages, Reader, Recorded, Writer};
use crate::telemetry::{GpuSample, NodeSample};
use crate::transport::{Msg, NodeEvent};

const INVENTORY: &str =
    "[defaults]\ninterval_ms = 1000\ngpus_per_node = 8\n[[cabinet]]\nname = \"c01\"\n\
nodes = \"c01n[1-4]\"\n";
const T0: u64 = 1_795_489_200_000;

fn writer(dir: &std::path::Path) -> Writer {
    let inv = Inventory::parse("bound.toml", INVENTORY).unwrap();
    Writer::create(dir, &inv, INVENTORY, Default::default()).unwrap()
}

fn sample_msg(t: u64) -> Msg {
    let sample = NodeSample {
        t,
        gpus: vec![GpuSample {
            util_pct: Some(1),
            ..Default::default()
        }],
        ..Default::default()
    };
    Msg {
        node: 0,
        at: std::time::Instant::now(),
        event: NodeEvent::Sample(sample),
    }
}

/// Every beat in a second with nothing else to write is a beat frame, read back as the recorder alive at its
/// time: a silent fleet is told from a stopped recorder. Beats outside the window asked for are not handed out.
#[test]
fn the_recorder_s_beats_while_the_fleet_is_silent_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    w.write(T0, &sample_msg(T0)).unwrap();
    w.beat(T0).unwrap();
    for s in 1..=5 {
        w.beat(T0 + s * 1000).unwrap();
    }
    w.write(T0 + 6000, &sample_msg(T0 + 6000)).unwrap();
    w.close().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.span(), Some((T0, T0 + 6000)));
    let mut items = Messages::open(&reader, T0, T0 + 4000);
    let mut seen = Vec::new();
    while let Some(item) = items.next_recorded() {
        seen.push(match item.unwrap() {
            (t, Recorded::Msg(_)) => (t, "msg"),
            (t, Recorded::Alive) => (t, "alive"),
            (t, Recorded::Workload(_)) => (t, "workload"),
        });
    }
    let mut want = vec![(T0, "msg")];
    want.extend((1..=4).map(|s| (T0 + s * 1000, "alive")));
    assert_eq!(seen, want);
    // The messages-only iterator skips them.
    assert_eq!(reader.messages(T0, u64::MAX).count(), 2);
}

/// A compact stream patches one GPU at a time, each delta line small and each sample one that sanitizing leaves
/// alone; the patched sample grows past the reader's whole-sample text cap (`MAX_NODE`). The writer counts the
/// text as its reader does and drops those samples (the node's next goes whole), so the recording reads back to
/// its end instead of stopping the fleet's replay at that node.
#[test]
fn what_the_recorder_writes_of_a_patched_sample_reads_back() {
    use crate::telemetry::process::{GpuProcess, ProcessKind};
    use crate::telemetry::{GpuError, GpuErrorKind};
    let dir = tempfile::tempdir().unwrap();
    let mut writer = writer(dir.path());
    let mut sample = NodeSample {
        t: T0,
        gpus: (0..64)
            .map(|g| GpuSample {
                index: g,
                util_pct: Some(1),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let at = std::time::Instant::now();
    for g in 0..=64usize {
        if g > 0 {
            let gpu = &mut sample.gpus[g - 1];
            gpu.processes = Some(
                (0..64)
                    .map(|pid| GpuProcess {
                        pid,
                        kind: ProcessKind::Compute,
                        used_mib: Some(1),
                        uid: Some(1000),
                        user: Some("u".repeat(128)),
                        name: Some("n".repeat(128)),
                        slurm_job: None,
                        pod_uid: None,
                    })
                    .collect(),
            );
            gpu.errors = (0..64)
                .map(|_| GpuError {
                    kind: GpuErrorKind::Unknown,
                    query: "q".repeat(128),
                    detail: "d".repeat(200),
                })
                .collect();
        }
        let mut sanitized = sample.clone();
        sanitized.sanitize(64);
        assert_eq!(sanitized, sample, "a sample sanitizing leaves alone");
        let event = NodeEvent::Sample(sample.clone());
        writer
            .write(T0 + g as u64 * 1000, &Msg { node: 0, at, event })
            .unwrap();
        writer.flush().unwrap();
    }
    writer.close().unwrap();
    assert!(writer.dropped > 0, "no sample was past the cap");
    let reader = Reader::open(dir.path()).unwrap();
    let mut samples = 0;
    for m in reader.messages(0, u64::MAX) {
        match m {
            Ok((
                _,
                Msg {
                    event: NodeEvent::Sample(_),
                    ..
                },
            )) => samples += 1,
            Ok(_) => {}
            Err(e) => panic!("the recorder's own recording is refused: {e}"),
        }
    }
    assert_eq!(samples as u64, 65 - writer.dropped);
}

/// An event longer than a live line may be is not recorded (counted in `dropped`): the reader would refuse it,
/// and no node's event came in a longer line.
#[test]
fn an_event_longer_than_a_live_line_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    let at = std::time::Instant::now();
    w.write(T0, &sample_msg(T0)).unwrap();
    let long = NodeEvent::BadLine("x".repeat(crate::telemetry::wire::MAX_LINE_BYTES));
    w.write(
        T0 + 1,
        &Msg {
            node: 0,
            at,
            event: long,
        },
    )
    .unwrap();
    let short = NodeEvent::BadLine("y".repeat(100));
    w.write(
        T0 + 2,
        &Msg {
            node: 0,
            at,
            event: short,
        },
    )
    .unwrap();
    w.close().unwrap();
    assert_eq!(w.dropped, 1);
    let reader = Reader::open(dir.path()).unwrap();
    let read: Vec<_> = reader.messages(T0, u64::MAX).map(Result::unwrap).collect();
    assert_eq!(read.len(), 2);
    assert!(matches!(&read[1].1.event, NodeEvent::BadLine(b) if b.len() == 100));
}

/// A hand-made file's event past a live line's length is refused where it is read, naming the file, before
/// the reader holds it; one within it is bounded and made inert before the reader keeps it in its slot (so
/// the state restated at a later seek is the bounded one).
#[test]
fn an_event_frame_is_bounded_and_inert_as_it_is_read() {
    use crate::recording::block::{encode, SEGMENT_MAGIC};
    use crate::recording::codec::{Lane, Lanes};
    let event_frame = |lanes: &mut Lanes, t: u64, json: &[u8]| {
        lanes.uint(Lane::Head, 2);
        lanes.int(Lane::Head, t as i64);
        lanes.int(Lane::Head, -1);
        lanes.bytes(json);
    };
    let hostile = |json: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        writer(dir.path());
        let mut lanes = Lanes::default();
        event_frame(&mut lanes, T0, json);
        let mut file = SEGMENT_MAGIC.to_vec();
        file.extend(encode(&lanes, T0, T0).unwrap());
        let path = crate::recording::layout::segment_path(dir.path(), T0);
        std::fs::write(&path, &file).unwrap();
        (dir, path)
    };
    let long = format!(
        "{{\"bad_line\":\"{}\"}}",
        "x".repeat(crate::telemetry::wire::MAX_LINE_BYTES)
    );
    let (dir, path) = hostile(long.as_bytes());
    let reader = Reader::open(dir.path()).unwrap();
    let err = reader
        .messages(0, u64::MAX)
        .find_map(Result::err)
        .expect("an event past a live line's length was read");
    assert!(err.contains("an event's length"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    // Control bytes and a detail far past what a transport keeps, read at a seek after the frame: restated
    // from the reader's slot, bounded and inert.
    let failed = format!(
        "{{\"failed\":{{\"kind\":\"NoData\",\"detail\":\"\\u001b[2J{}\"}}}}",
        "d".repeat(100_000)
    );
    let (dir, _) = hostile(failed.as_bytes());
    let reader = Reader::open(dir.path()).unwrap();
    let read: Vec<_> = reader
        .messages(T0 + 1, u64::MAX)
        .map(Result::unwrap)
        .collect();
    match &read[..] {
        [(
            _,
            Msg {
                event: NodeEvent::Failed { detail, .. },
                ..
            },
        )] => {
            // 256 characters and the mark of the cut.
            assert!(detail.chars().count() <= 257, "{} characters", detail.len());
            assert!(!detail.contains('\u{1b}'), "{detail:?}");
        }
        other => panic!("{other:?}"),
    }
}
