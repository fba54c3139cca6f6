use super::*;

#[test]
fn times_of_day_ages_and_dates_resolve_against_now() {
    // 2026-11-24T03:00:00Z
    let now = 1_795_489_200_000;
    assert_eq!(
        parse_time("2026-11-24T02:12:00Z", now).unwrap(),
        now - 48 * 60_000
    );
    assert_eq!(parse_time("02:12", now).unwrap(), now - 48 * 60_000);
    // Later today has not come yet: yesterday's.
    assert_eq!(
        parse_time("04:00", now).unwrap(),
        now + 3_600_000 - 86_400_000
    );
    assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
    assert!(parse_time("25:00", now).is_err());
    assert!(parse_time("soon", now)
        .unwrap_err()
        .contains("neither a time"));
    assert_eq!(utc(now), "2026-11-24 03:00:00 UTC");
}

#[test]
fn a_time_past_year_9999_is_said_without_panicking() {
    // humantime cannot format it and `to_string` would panic on its error.
    assert_eq!(
        utc(u64::MAX),
        format!("{} ms after 1970 (not a date)", u64::MAX)
    );
    assert_eq!(utc(LAST_MS), "9999-12-31 23:59:59 UTC");
}

#[test]
fn a_block_dated_past_year_9999_is_refused_with_its_file_and_offset() {
    use crate::recording::block::{encode, BlockReader, SEGMENT_MAGIC};
    let mut file = SEGMENT_MAGIC.to_vec();
    file.extend(encode(&Default::default(), 0, u64::MAX).unwrap());
    let mut blocks = BlockReader::new(&file[..], "seg".into()).unwrap();
    let err = blocks.next_block().err().unwrap();
    assert!(err.starts_with("seg: offset 8: "), "{err}");
    assert!(err.contains("past year 9999"), "{err}");
}

#[test]
fn a_block_whose_streams_do_not_fit_its_body_is_refused_with_its_file_and_offset() {
    use crate::recording::block::{encode, BlockReader, SEGMENT_MAGIC};
    let block = encode(&real_lanes(), 0, 1).unwrap();
    // The first stream's length, after the 24-byte header, past the body; then a body of two bytes.
    let mut past = block.clone();
    past[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut short = block[..24].to_vec();
    short[4..8].copy_from_slice(&2u32.to_le_bytes());
    short.extend([0, 0]);
    // The two streams swapped: the first holds no lane lengths, a bzip2 stream that is not one.
    let mut swapped = block.clone();
    let split = u32::from_le_bytes(block[24..28].try_into().unwrap()) as usize;
    swapped[28..28 + split].fill(0x42);
    for (bad, why) in [
        (past, "with no streams"),
        (short, "with no streams"),
        (swapped, "does not decompress"),
    ] {
        let mut file = SEGMENT_MAGIC.to_vec();
        file.extend(bad);
        let mut blocks = BlockReader::new(&file[..], "seg".into()).unwrap();
        let err = blocks.next_block().err().unwrap();
        assert!(err.starts_with("seg: offset 8: "), "{err}");
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn a_block_past_bzip2_s_block_size_compresses_whole_in_every_lane() {
    use crate::recording::block::{encode, BlockReader, SEGMENT_MAGIC};
    let mut lanes = real_lanes();
    // Past 900 kB in each stream, the records incompressible: the compressor is fed and drained in turns.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    lanes.lane[0].extend(std::iter::repeat_n(7u8, 1_500_000));
    lanes.lane[crate::recording::codec::LANES - 1].extend(&noise);
    let mut file = SEGMENT_MAGIC.to_vec();
    file.extend(encode(&lanes, 0, 1).unwrap());
    let mut blocks = BlockReader::new(&file[..], "seg".into()).unwrap();
    // A block whose streams decompress to other than its lanes' lengths is refused.
    assert!(blocks.next_block().unwrap().is_some());
    assert!(blocks.next_block().unwrap().is_none());
}

#[test]
fn a_segment_named_past_year_9999_is_refused_with_its_name() {
    use crate::recording::layout::{segment_path, segments};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(segment_path(dir.path(), 1_795_489_200_000), b"").unwrap();
    assert_eq!(segments(dir.path()).unwrap(), [1_795_489_200_000]);
    let hostile = segment_path(dir.path(), u64::MAX);
    std::fs::write(&hostile, b"").unwrap();
    let err = segments(dir.path()).unwrap_err();
    assert!(err.contains(&hostile.display().to_string()), "{err}");
}

/// A recording directory of `nodes` demo nodes holding one segment of `blocks`, each block's lanes as given.
fn recording_of(
    lanes: &[crate::recording::codec::Lanes],
) -> (tempfile::TempDir, std::path::PathBuf) {
    use crate::recording::block::{encode, SEGMENT_MAGIC};
    let dir = tempfile::tempdir().unwrap();
    fuzz_writer(dir.path(), Default::default());
    let mut file = SEGMENT_MAGIC.to_vec();
    for l in lanes {
        file.extend(encode(l, 0, crate::recording::time::LAST_MS).unwrap());
    }
    let path = crate::recording::layout::segment_path(dir.path(), 1_795_489_200_000);
    std::fs::write(&path, &file).unwrap();
    (dir, path)
}

/// The fuzz inventory and a writer recording it into `dir` with `options`.
fn fuzz_writer(
    dir: &std::path::Path,
    options: crate::recording::Options,
) -> (crate::inventory::Inventory, crate::recording::Writer) {
    let inv = crate::inventory::Inventory::parse("fuzz.toml", FUZZ_INVENTORY).unwrap();
    let writer = crate::recording::Writer::create(dir, &inv, FUZZ_INVENTORY, options).unwrap();
    (inv, writer)
}

const FUZZ_INVENTORY: &str =
    "[defaults]\ninterval_ms = 1000\ngpus_per_node = 8\n[[cabinet]]\nname = \"c01\"\n\
nodes = \"c01n[1-4]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"c01n[1-3]\"\n";

/// The lanes of a few seconds of the simulated fleet, as the writer fills them.
fn real_lanes() -> crate::recording::codec::Lanes {
    use crate::recording::frame::{write, After, Event, Frame};
    let inv = crate::inventory::Inventory::parse("fuzz.toml", FUZZ_INVENTORY).unwrap();
    let mut lanes = crate::recording::codec::Lanes::default();
    let mut last: Vec<Option<crate::telemetry::NodeSample>> = vec![None; inv.nodes.len()];
    let mut after = After::default();
    for tick in 0..3 {
        for m in crate::transport::sim::messages(&inv, 7, tick, std::time::Instant::now()) {
            let t = 1_795_489_200_000 + tick * 1000;
            match &m.event {
                crate::transport::NodeEvent::Sample(s) => {
                    let f = Frame {
                        t,
                        n: m.node,
                        k: false,
                        e: Event::Sample,
                    };
                    let base = crate::recording::packed::delta_base(last[m.node].as_ref(), s);
                    let masks = crate::recording::packed::changes(base, s);
                    write(&f, after, Some((base, s, &masks)), &mut lanes).unwrap();
                    last[m.node] = Some(s.clone());
                }
                other => {
                    let Some(e) = Event::of(other) else { continue };
                    write(
                        &Frame {
                            t,
                            n: m.node,
                            k: false,
                            e,
                        },
                        after,
                        None,
                        &mut lanes,
                    )
                    .unwrap();
                }
            }
            after = After { t, n: m.node };
        }
    }
    lanes
}

/// Reads the whole recording: messages, or an error that names the segment file.
fn read_all(dir: &std::path::Path, path: &std::path::Path) -> Result<usize, String> {
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let result = crate::recording::Reader::open(dir).and_then(|r| {
        r.messages(0, u64::MAX)
            .collect::<Result<Vec<_>, _>>()
            .map(|m| m.len())
    });
    if let Err(e) = &result {
        assert!(
            e.contains(&name),
            "an error that does not name the file: {e}"
        );
    }
    result
}

#[test]
fn the_simulated_fleet_reads_back_from_hand_made_blocks() {
    let (dir, path) = recording_of(&[real_lanes()]);
    assert!(read_all(dir.path(), &path).unwrap() >= 12);
}

#[test]
fn a_recording_of_an_earlier_format_is_refused_by_name() {
    let (dir, _) = recording_of(&[]);
    let header = dir.path().join("recording.json");
    let text = std::fs::read_to_string(&header).unwrap();
    std::fs::write(&header, text.replace(":3,", ":2,")).unwrap();
    let err = crate::recording::Reader::open(dir.path()).err().unwrap();
    assert!(
        err.contains("recording.json") && err.contains("format 2") && err.contains("zlib"),
        "{err}"
    );
    std::fs::write(&header, text.replace(":3,", ":1,")).unwrap();
    let err = crate::recording::Reader::open(dir.path()).err().unwrap();
    assert!(
        err.contains("recording.json") && err.contains("format 1"),
        "{err}"
    );
    let inv = crate::inventory::Inventory::parse("fuzz.toml", FUZZ_INVENTORY).unwrap();
    let err =
        crate::recording::Writer::create(dir.path(), &inv, FUZZ_INVENTORY, Default::default())
            .err()
            .unwrap();
    assert!(err.contains("format 1"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 300, ..Default::default() })]

    /// Random lanes in a well-formed block: every count and length is checked, nothing panics.
    #[test]
    fn random_lanes_never_panic_the_reader(
        lanes in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), crate::recording::codec::LANES)
    ) {
        let mut l = crate::recording::codec::Lanes::default();
        for (to, from) in l.lane.iter_mut().zip(lanes) {
            *to = from;
        }
        let (dir, path) = recording_of(&[l]);
        let _ = read_all(dir.path(), &path);
    }

    /// A real block's lanes with bytes flipped or cut: messages or an error naming the file, never a panic.
    #[test]
    fn damaged_real_lanes_never_panic_the_reader(
        flips in proptest::collection::vec((0usize..crate::recording::codec::LANES, proptest::num::usize::ANY, 1u8..=255), 1..4),
        cut in proptest::option::of((0usize..crate::recording::codec::LANES, proptest::num::usize::ANY)),
    ) {
        let mut l = real_lanes();
        for (lane, at, x) in flips {
            let bytes = &mut l.lane[lane];
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
        }
        if let Some((lane, at)) = cut {
            let len = l.lane[lane].len();
            l.lane[lane].truncate(at % (len + 1));
        }
        let (dir, path) = recording_of(&[l]);
        let _ = read_all(dir.path(), &path);
    }

    /// A segment file cut anywhere reads as a torn tail: what came before, and no error.
    #[test]
    fn a_segment_cut_anywhere_reads_up_to_the_cut(at in proptest::num::usize::ANY) {
        let (dir, path) = recording_of(&[real_lanes(), real_lanes()]);
        let whole = read_all(dir.path(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..at % (bytes.len() + 1)]).unwrap();
        let got = read_all(dir.path(), &path);
        proptest::prop_assert!(matches!(got, Ok(n) if n <= whole), "{:?} of {}", got, whole);
    }
}

#[test]
fn a_seek_past_a_keyframe_hands_out_the_jobs_recorded_before_it() {
    use crate::recording::reader::{Messages, Recorded};
    let dir = tempfile::tempdir().unwrap();
    let options = crate::recording::Options {
        period: std::time::Duration::from_secs(10),
        retain: None,
    };
    let (inv, mut writer) = fuzz_writer(dir.path(), options);
    let mut workload = crate::workload::Workload::default();
    crate::workload::slurm::parse(
        &inv,
        "4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=8|3-02:00:00|1:00:00|RUNNING|\n",
        &mut workload,
    );
    let t0 = 1_795_489_200_000;
    for tick in 0..25 {
        for m in crate::transport::sim::messages(&inv, 7, tick, std::time::Instant::now()) {
            writer.write(t0 + tick * 1000, &m).unwrap();
        }
        // The same answer again changes nothing, and writes nothing.
        if tick == 2 || tick == 3 {
            writer.write_workload(t0 + tick * 1000, &workload).unwrap();
        }
        writer.flush().unwrap();
    }
    writer.close().unwrap();
    let reader = crate::recording::Reader::open(dir.path()).unwrap();
    // 22 s is in the third segment: its keyframe restates the jobs written at 2 s.
    let mut messages = Messages::open(&reader, t0 + 22_000, t0 + 22_000);
    let mut handed = Vec::new();
    while let Some(item) = messages.next_recorded() {
        if let (t, Recorded::Workload(w)) = item.unwrap() {
            handed.push((t, w));
        }
    }
    assert_eq!(handed.len(), 1, "one workload, as of the seek");
    let (t, w) = &handed[0];
    assert_eq!(*t, t0 + 2000);
    assert_eq!(w.jobs(0)[0].id, "4242");
    assert_eq!(w.jobs(1)[0].user.as_deref(), Some("alice"));
    assert!(w.jobs(2).is_empty());
    assert_eq!(w.checked, workload.checked);
    let mut all = Messages::open(&reader, t0, u64::MAX);
    let mut answers = 0;
    while let Some(item) = all.next_recorded() {
        answers += usize::from(matches!(item.unwrap().1, Recorded::Workload(_)));
    }
    assert_eq!(answers, 1, "the repeated answer was not recorded");
    // Messages alone, as a report reads them, leave the workloads out.
    assert!(reader.messages(t0 + 22_000, t0 + 22_000).all(|m| m.is_ok()));
}

// The binary sample frame (`packed.rs`).
use crate::recording::codec::{Cursor, Lanes};
use crate::recording::packed::{changes, delta_base, get_delta, get_whole, put, Node, MAX_FIELD};
use crate::telemetry::{GpuSample, NodeSample};

fn packed_round_trip(samples: &[NodeSample]) -> Vec<NodeSample> {
    let mut out = Lanes::default();
    let mut before: Option<&NodeSample> = None;
    let mut whole = Vec::new();
    for s in samples {
        let base = delta_base(before, s);
        put(base, s, &changes(base, s), &mut out).unwrap();
        whole.push(base.is_none());
        before = Some(s);
    }
    let mut c = Cursor::new(std::array::from_fn(|i| out.lane[i].as_slice()));
    let mut node = Node::default();
    whole
        .iter()
        .map(|&w| {
            if w {
                get_whole(&mut node, &mut c).unwrap();
            } else {
                get_delta(&mut node, &mut c).unwrap();
            }
            node.sample.clone()
        })
        .collect()
}

#[test]
fn samples_of_the_demo_come_back_equal_and_deltas_are_small() {
    let inv = crate::inventory::Inventory::demo();
    let samples: Vec<NodeSample> = (0..20)
        .map(|tick| {
            crate::transport::sim::model::sample(&inv, 7, 3, tick, 1_700_000_000_000 + tick * 1000)
        })
        .collect();
    assert_eq!(packed_round_trip(&samples), samples);
    let mut out = Lanes::default();
    let masks = changes(Some(&samples[0]), &samples[1]);
    put(Some(&samples[0]), &samples[1], &masks, &mut out).unwrap();
    // Each GPU's record holds its seven numbers whatever changed (power two bytes and its last place one),
    // its bitmap of the other fields one: 8 × 11, and the node's bitmap.
    assert!(
        out.len() <= 8 * 11 + 1,
        "a second's changes take {} bytes",
        out.len()
    );
}

#[test]
fn the_kept_sample_copies_what_changed_into_the_one_before() {
    use crate::recording::packed::keep_changes;
    let inv = crate::inventory::Inventory::demo();
    let mut samples: Vec<NodeSample> = (0..6)
        .map(|tick| {
            crate::transport::sim::model::sample(&inv, 7, 3, tick, 1_700_000_000_000 + tick * 1000)
        })
        .collect();
    // Rarer fields change too: a GPU's name, a node's warnings, and back.
    samples[2].gpus[5].name = Some("renamed".into());
    samples[3].warnings = vec!["kernel log unreadable".into()];
    let mut kept = samples[0].clone();
    for s in &samples[1..] {
        let masks = changes(Some(&kept), s);
        assert_ne!(masks.iter().copied().fold(0, u64::max), 0);
        keep_changes(&mut kept, s, &masks);
        assert_eq!(&kept, s);
    }
    // Changed fields counted for another sample are refused, not indexed past.
    let mut out = Lanes::default();
    let err = put(Some(&samples[0]), &samples[1], &[0; 3], &mut out).unwrap_err();
    assert!(err.contains("another sample"), "{err}");
}

#[test]
fn a_gpu_more_or_less_goes_whole() {
    let mut one = NodeSample {
        t: 5,
        gpus: vec![GpuSample {
            util_pct: Some(3),
            ..Default::default()
        }],
        ..Default::default()
    };
    let two = NodeSample {
        gpus: vec![GpuSample::default(); 2],
        ..one.clone()
    };
    assert!(delta_base(Some(&one), &two).is_none());
    assert!(delta_base(Some(&two), &two).is_some());
    one.warnings = vec!["kernel log unreadable".into()];
    assert_eq!(
        packed_round_trip(&[two.clone(), one.clone(), one.clone()]),
        [two, one.clone(), one]
    );
}

#[test]
fn a_node_grown_past_a_whole_sample_is_refused() {
    let filler = "x".repeat(MAX_FIELD - 8);
    let mut grown = NodeSample {
        t: 1,
        gpus: vec![GpuSample::default(); 8],
        ..Default::default()
    };
    let mut samples = vec![grown.clone()];
    for i in 0..8 {
        grown.gpus[i].name = Some(filler.clone());
        samples.push(grown.clone());
    }
    let mut out = Lanes::default();
    let mut before: Option<&NodeSample> = None;
    for s in &samples {
        let base = delta_base(before, s);
        put(base, s, &changes(base, s), &mut out).unwrap();
        before = Some(s);
    }
    let mut c = Cursor::new(std::array::from_fn(|i| out.lane[i].as_slice()));
    let mut node = Node::default();
    get_whole(&mut node, &mut c).unwrap();
    let err = (0..8)
        .find_map(|_| get_delta(&mut node, &mut c).err())
        .unwrap();
    assert!(err.contains("more than a whole sample"), "{err}");
}

#[test]
fn answers_past_a_block_s_share_start_a_new_block_and_a_hostile_block_is_refused() {
    use crate::recording::frame::{write, After, Event, Frame};
    let dir = tempfile::tempdir().unwrap();
    let (_, mut writer) = fuzz_writer(dir.path(), Default::default());
    let t0 = 1_795_489_200_000;
    for i in 0..20u64 {
        let workload = crate::workload::Workload {
            problems: vec![format!("sacct: timed out ({i})")],
            ..Default::default()
        };
        writer.write_workload(t0 + i, &workload).unwrap();
    }
    writer.close().unwrap();
    let reader = crate::recording::Reader::open(dir.path()).unwrap();
    assert!(reader.messages(t0, u64::MAX).all(|m| m.is_ok()));
    // A block the writer would not write: nine answers in it.
    let mut lanes = crate::recording::codec::Lanes::default();
    for _ in 0..9 {
        let e = Event::Workload {
            problems: vec![],
            checked: vec![],
        };
        let after = After { t: 5, n: 0 };
        write(
            &Frame {
                t: 5,
                n: 0,
                k: false,
                e,
            },
            after,
            None,
            &mut lanes,
        )
        .unwrap();
    }
    let (dir, path) = recording_of(&[lanes]);
    let err = read_all(dir.path(), &path).unwrap_err();
    assert!(err.contains("scheduler answers in one block"), "{err}");
}

#[test]
fn a_seek_s_trail_keeps_the_latest_points_within_its_bound_and_leaves_the_last_to_the_state() {
    let mut trail = crate::recording::trail::Trail::new(1000, 2);
    let sample = |util: u32| NodeSample {
        gpus: vec![GpuSample {
            index: 3,
            util_pct: Some(util),
            temp_c: Some(40),
            ..Default::default()
        }],
        ..Default::default()
    };
    trail.note(0, 999, &sample(1));
    for i in 0..400 {
        trail.note(0, 1000 + i, &sample(i as u32));
    }
    trail.note(5, 2000, &sample(7));
    let history = trail.into_history();
    assert_eq!(
        history.len(),
        1,
        "node 1 noted nothing, node 5 is not in the fleet"
    );
    let (node, gpus) = &history[0];
    assert_eq!((*node, gpus.len(), gpus[0].0), (0, 1, 3));
    let points = &gpus[0].1;
    assert_eq!(points.len(), 299);
    assert_eq!(points.first(), Some(&(Some(100), Some(40))));
    assert_eq!(points.last(), Some(&(Some(398), Some(40))));
}

/// A seek's trail is handed out as `NodeEvent::History`, so it keeps the 64-GPU bound a recorded History frame
/// gets: a file whose deltas move the GPU indices each sample must not make one node's history hold 300 × 64 GPUs,
/// built by a linear search per point (quadratic).
#[test]
fn a_seek_s_trail_holds_no_more_gpus_than_a_sample_may() {
    let mut trail = crate::recording::trail::Trail::new(0, 1);
    for i in 0..300u32 {
        let sample = NodeSample {
            gpus: (0..63)
                .map(|g| GpuSample {
                    index: 1000 + i * 64 + g,
                    util_pct: Some(1),
                    ..Default::default()
                })
                .chain([GpuSample {
                    index: 3,
                    util_pct: Some(2),
                    ..Default::default()
                }])
                .collect(),
            ..Default::default()
        };
        trail.note(0, 1 + u64::from(i), &sample);
    }
    let history = trail.into_history();
    let gpus: usize = history.iter().map(|(_, gpus)| gpus.len()).sum();
    assert!(
        gpus <= crate::telemetry::wire::MAX_GPUS_PER_SAMPLE,
        "one node's trail hands out {gpus} GPUs"
    );
    // The GPU a node really has keeps its trail (all but the last sample, which the state restates).
    let kept = history[0].1.iter().find(|(index, _)| *index == 3);
    assert_eq!(kept.map(|(_, points)| points.len()), Some(299));
}

/// A recorded `Restarting` operation's `practice` is added to an `Instant` in fleet state: a file saying
/// `"practice":{"secs":18446744073709551615,"nanos":0}` is read back at the longest a frame may state (fleet
/// state's own `checked_add` is `fleet::operations`' test `a_practice_restart_too_long_to_reach_…`).
#[test]
fn a_recorded_practice_reboot_of_any_length_is_read_back_bounded() {
    use crate::transport::{Msg, NodeEvent};
    use crate::workload::operations::{OperationEvent, Restart};
    let dir = tempfile::tempdir().unwrap();
    let (_, mut writer) = fuzz_writer(dir.path(), Default::default());
    let t0 = 1_795_489_200_000;
    let event = NodeEvent::Operation(OperationEvent::Restarting {
        kind: Restart::Reboot,
        by: None,
        practice: Some(std::time::Duration::new(u64::MAX, 0)),
        seen_down: false,
    });
    let at = std::time::Instant::now();
    writer.write(t0, &Msg { node: 0, at, event }).unwrap();
    writer.close().unwrap();
    let reader = crate::recording::Reader::open(dir.path()).unwrap();
    let mut practices = Vec::new();
    for m in reader.messages(0, u64::MAX) {
        let (_, msg) = m.unwrap();
        if let NodeEvent::Operation(OperationEvent::Restarting { practice, .. }) = msg.event {
            practices.push(practice);
        }
    }
    assert_eq!(
        practices,
        [Some(std::time::Duration::from_secs(3600))],
        "read back at the longest a frame may state"
    );
}
