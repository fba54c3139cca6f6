//! Recordings: written from the demo fleet's real message stream (the simulated transport's own messages, and
//! `fleetop record --demo` as a process), read back for replay, seek and `snapshot --replay --at`; torn tails
//! tolerated, damaged and oversized segments refused with file and offset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetop::fleet::FleetState;
use fleetop::inventory::Inventory;
use fleetop::recording::{Options, Reader, Writer};
use fleetop::transport::{FailureKind, Msg, NodeEvent};
use fleetop::tui::app::operate::ActionEvent;
use fleetop::tui::keymap::Keymap;
use fleetop::tui::replay::{fresh_app, Player};
use fleetop::tui::theme::Theme;
use fleetop::workload::operations::{DrainState, NodeDrain, OperationEvent};

use crate::common;
use crate::tui_common::{app_for, draw, wall};

/// Eight nodes, two tenants, a spare: the simulated model gives them training load, idle GPUs and processes.
const INVENTORY: &str = "[defaults]\ninterval_ms = 1000\ngpus_per_node = 8\n[[cabinet]]\nname = \"c01\"\n\
nodes = \"c01n[1-4]\"\n[[cabinet]]\nname = \"c02\"\nnodes = \"c02n[1-4]\"\n[[tenant]]\nname = \"acme\"\n\
nodes = \"c01n[1-4]\"\n[[tenant]]\nname = \"globex\"\nnodes = \"c02n[1-3]\"\n";

const SEED: u64 = 7;

fn wall_ms() -> u64 {
    wall()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The messages of second `tick`: the simulated fleet's, plus a drain read back at 10 s and a node lost at 30 s.
fn messages(inv: &Inventory, tick: u64, at: Instant) -> Vec<Msg> {
    let mut all = fleetop::transport::sim::messages(inv, SEED, tick, at);
    if tick == 10 {
        all.push(Msg {
            node: 2,
            at,
            event: NodeEvent::Operation(OperationEvent::Drain(NodeDrain {
                state: DrainState::Drained,
                reason: Some("psu swap, ticket 4411".into()),
                user: Some("root".into()),
            })),
        });
    }
    if tick == 30 {
        all.push(Msg {
            node: 5,
            at,
            event: NodeEvent::Failed {
                kind: FailureKind::Unreachable,
                detail: "connect to c02n2:22: connection timed out".into(),
            },
        });
    }
    if tick >= 30 {
        all.retain(|m| m.node != 5 || !matches!(m.event, NodeEvent::Sample(_)));
    }
    all
}

/// Records `seconds` of the fleet into `dir` with segments of `period`, starting at the fixtures' wall clock.
fn record(dir: &Path, seconds: u64, period: Duration, mut each: impl FnMut(u64, &Msg)) {
    let inv = Inventory::parse("fixture.toml", INVENTORY).unwrap();
    let base = Instant::now();
    let options = Options {
        period,
        retain: None,
    };
    let mut writer = Writer::create(dir, &inv, INVENTORY, options).unwrap();
    for tick in 0..seconds {
        for m in messages(&inv, tick, base + Duration::from_secs(tick)) {
            writer.write(wall_ms() + tick * 1000, &m).unwrap();
            each(tick, &m);
        }
        writer.flush().unwrap();
    }
    writer.close().unwrap();
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rec"))
        .collect();
    files.sort();
    files
}

#[test]
fn replayed_frames_equal_the_live_frames() {
    let dir = tempfile::tempdir().unwrap();
    let base = Instant::now();
    let mut live = app_for(INVENTORY, base);
    live.ops.read_only = true;
    let theme = Theme::default();
    let mut screens = Vec::new();
    let views = [
        fleetop::tui::app::View::Overview,
        fleetop::tui::app::View::Nodes,
        fleetop::tui::app::View::Detail,
        fleetop::tui::app::View::Events,
    ];
    // The live app gets each second's messages (at their own instants), then a frame half a second later.
    let inv = Inventory::parse("fixture.toml", INVENTORY).unwrap();
    let options = Options {
        period: Duration::from_secs(20),
        retain: None,
    };
    let mut writer = Writer::create(dir.path(), &inv, INVENTORY, options).unwrap();
    for tick in 0..45u64 {
        for m in messages(&inv, tick, base + Duration::from_secs(tick)) {
            writer.write(wall_ms() + tick * 1000, &m).unwrap();
            live.on_msg(m);
        }
        // The scheduler's answers: a job starts, runs on with another beside it, and ends.
        if let Some(answer) = jobs_at(tick) {
            let mut workload = fleetop::workload::Workload::default();
            fleetop::workload::slurm::parse(&inv, answer, &mut workload);
            writer
                .write_workload(wall_ms() + tick * 1000, &workload)
                .unwrap();
            live.on_action(ActionEvent::Workload(Box::new(workload)));
        }
        writer.flush().unwrap();
        live.tick(base + Duration::from_millis(tick * 1000 + 500));
        if tick % 4 == 3 {
            let view = views[(tick / 4) as usize % views.len()];
            live.view = view;
            screens.push((tick, view, draw(&mut live, &theme, 160, 50).0));
        }
    }
    writer.close().unwrap();

    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.span(), Some((wall_ms(), wall_ms() + 44_000)));
    let mut replay = fresh_app(&reader, Keymap::default(), wall_ms());
    let mut player = Player::new(&reader);
    let mut compared = 0;
    for tick in 0..45u64 {
        player
            .advance(&mut replay, wall_ms() + tick * 1000 + 500)
            .unwrap();
        if let Some((_, view, screen)) = screens.iter().find(|(t, _, _)| *t == tick) {
            replay.view = *view;
            let replayed = draw(&mut replay, &theme, 160, 50).0;
            assert_eq!(&replayed, screen, "second {tick}, {view:?}");
            compared += 1;
        }
    }
    assert_eq!(compared, screens.len());
    // The frames hold the fleet, not an empty screen: the drained node and the lost one are in them, and the
    // jobs in the node detail of the selected node.
    let all: String = screens.iter().map(|s| s.2.as_str()).collect();
    assert!(all.contains("c02n2"), "{all}");
    let detail = |tick: u64| &screens.iter().find(|s| s.0 == tick).unwrap().2;
    assert!(detail(11).contains("4242 alice"), "{}", detail(11));
    assert!(detail(27).contains("4250 bob"), "{}", detail(27));
    assert!(!detail(43).contains("4242"), "{}", detail(43));
    // A seek lands on the same node detail, sparklines and jobs included, from each GPU's half minute before
    // and the state then, not by replaying every sample since.
    let mut sought = fresh_app(&reader, Keymap::default(), wall_ms());
    let mut player = Player::new(&reader);
    player.seek(&mut sought, wall_ms() + 43_500).unwrap();
    sought.view = fleetop::tui::app::View::Detail;
    let sought = draw(&mut sought, &theme, 160, 50).0;
    // The live app's sparklines hold all 44 s; the sought one's the last 30 s of them.
    let blocks = |l: &str| {
        let kept = l.trim_end_matches(|c| ('▁'..='█').contains(&c)).len();
        (l[..kept].trim_end().to_string(), l[kept..].to_string())
    };
    let mut sparklines = 0;
    for (seen, live) in sought.lines().zip(detail(43).lines()) {
        let ((seen, seen_line), (live, live_line)) = (blocks(seen), blocks(live));
        assert_eq!(seen, live);
        assert!(
            live_line.ends_with(&seen_line),
            "{seen_line} is not the end of {live_line}"
        );
        if seen_line.chars().count() == 30 {
            sparklines += 1;
        }
    }
    assert_eq!(sparklines, 8, "{sought}");
}

/// What the scheduler answers at second `tick` (`sacct`'s lines, as `slurm::parse` reads them).
fn jobs_at(tick: u64) -> Option<&'static str> {
    match tick {
        5 | 15 => Some("4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=8|3-02:00:00|1:00:00|RUNNING|\n"),
        25 => Some(
            "4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=8|3-02:00:20|0:59:40|RUNNING|\n\
             4250|bob|acme|debug|c01n1|cpu=2,gres/gpu=1|0:40|UNLIMITED|COMPLETING|\n",
        ),
        35 => Some("4250|bob|acme|debug|c01n1|cpu=2,gres/gpu=1|0:50|UNLIMITED|RUNNING|\n"),
        _ => None,
    }
}

#[test]
fn seeking_lands_on_the_state_recorded_at_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::parse("fixture.toml", INVENTORY).unwrap();
    let mut sent: Vec<(u64, Msg)> = Vec::new();
    record(dir.path(), 50, Duration::from_secs(15), |tick, m| {
        sent.push((wall_ms() + tick * 1000, m.clone()))
    });
    assert!(
        segment_files(dir.path()).len() >= 4,
        "three rotations in 50 s at 15 s"
    );
    let reader = Reader::open(dir.path()).unwrap();
    for at_tick in [0u64, 9, 14, 15, 16, 31, 49] {
        let at = wall_ms() + at_tick * 1000;
        let mut seeked = FleetState::new(Arc::new(reader.inventory().clone()));
        for m in reader.messages(at, at) {
            seeked.apply(m.unwrap().1);
        }
        let mut expected = FleetState::new(Arc::new(inv.clone()));
        for (_, m) in sent.iter().filter(|(t, _)| *t <= at) {
            expected.apply(m.clone());
        }
        for (n, (got, want)) in seeked.nodes().iter().zip(expected.nodes()).enumerate() {
            assert_eq!(got.sample, want.sample, "node {n} at second {at_tick}");
            assert_eq!(got.hello, want.hello, "node {n} at second {at_tick}");
            assert_eq!(
                got.failure.as_ref().map(|f| (f.kind, f.detail.clone())),
                want.failure.as_ref().map(|f| (f.kind, f.detail.clone())),
                "node {n} at second {at_tick}"
            );
        }
        let drained = seeked
            .operations(2, reader.instant(at))
            .map(|o| o.describe());
        assert_eq!(
            drained.as_deref().is_some_and(|d| d.contains("psu swap")),
            at_tick >= 10,
            "the drain read back at 10 s, seen from second {at_tick}: {drained:?}"
        );
    }
    // A message range hands out every later message once, in time order, across segments.
    let all: Vec<u64> = reader
        .messages(wall_ms(), u64::MAX)
        .map(|m| m.unwrap().0)
        .collect();
    assert_eq!(all.len(), sent.len());
    assert!(all.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn a_torn_tail_is_read_up_to_the_tear() {
    let dir = tempfile::tempdir().unwrap();
    let mut sent = 0usize;
    record(dir.path(), 12, Duration::from_secs(600), |_, _| sent += 1);
    let files = segment_files(dir.path());
    let last = files.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    // A recorder killed mid-block: the file ends inside the last block.
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 50).unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let got: Vec<_> = reader
        .messages(0, u64::MAX)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        got.len() < sent && got.len() >= sent - sent / 6,
        "{} of {sent}",
        got.len()
    );
    assert_eq!(
        reader.span().unwrap().1,
        wall_ms() + 10_000,
        "the last whole block ends at 10 s"
    );
    // Half a header is a tear too.
    let mut bytes = std::fs::read(last).unwrap();
    bytes.extend_from_slice(b"FLK2\x10");
    std::fs::write(last, &bytes).unwrap();
    assert!(Reader::open(dir.path())
        .unwrap()
        .messages(0, u64::MAX)
        .all(|m| m.is_ok()));
}

#[test]
fn damaged_or_oversized_segments_are_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 6, Duration::from_secs(600), |_, _| {});
    let file = segment_files(dir.path()).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    let error = |bytes: &[u8]| -> String {
        std::fs::write(&file, bytes).unwrap();
        match Reader::open(dir.path()) {
            Err(e) => e,
            Ok(r) => r
                .messages(0, u64::MAX)
                .find_map(Result::err)
                .expect("an error"),
        }
    };
    // A flipped byte inside the first block's compressed body.
    let mut flipped = good.clone();
    flipped[8 + 24 + 40] ^= 0x55;
    let e = error(&flipped);
    assert!(e.contains(&name) && e.contains("offset 8:"), "{e}");
    // A header claiming a gigabyte.
    let mut huge = good.clone();
    huge[12..16].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let e = error(&huge);
    assert!(e.contains("offset 8:") && e.contains("cap"), "{e}");
    // Not a segment at all.
    let e = error(b"#!/bin/sh\nrm -rf /\n");
    assert!(e.contains(&name) && e.contains("bad magic"), "{e}");
    // A segment file past the size cap is refused before it is read.
    std::fs::write(&file, &good).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(fleetop::recording::MAX_SEGMENT_BYTES + (64 << 20))
        .unwrap();
    let e = Reader::open(dir.path()).err().unwrap();
    assert!(e.contains(&name) && e.contains("segment cap"), "{e}");
}

#[test]
fn rotation_keeps_segments_within_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::parse("fixture.toml", INVENTORY).unwrap();
    let options = Options {
        period: Duration::from_secs(10),
        retain: Some(Duration::from_secs(30)),
    };
    let mut writer = Writer::create(dir.path(), &inv, INVENTORY, options).unwrap();
    let base = Instant::now();
    for tick in 0..95u64 {
        for m in messages(&inv, tick, base + Duration::from_secs(tick)) {
            writer.write(wall_ms() + tick * 1000, &m).unwrap();
        }
        writer.flush().unwrap();
    }
    writer.close().unwrap();
    // Segments start at 0, 10, … 90 s; at 90 s those that ended by 60 s are gone.
    let starts: Vec<u64> = segment_files(dir.path())
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap();
            (name.trim_start_matches("segment-").parse::<u64>().unwrap() - wall_ms()) / 1000
        })
        .collect();
    assert_eq!(starts, vec![60, 70, 80, 90]);
    // What is left still opens at its first segment, from that segment's keyframe.
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.span().unwrap().0, wall_ms() + 60_000);
    let mut state = FleetState::new(Arc::new(reader.inventory().clone()));
    for m in reader.messages(wall_ms() + 60_000, wall_ms() + 60_000) {
        state.apply(m.unwrap().1);
    }
    assert!(state.nodes()[0].sample.is_some() && state.nodes()[0].hello.is_some());
    // Another inventory may not write into this recording.
    let other =
        Inventory::parse("other.toml", "[[cabinet]]\nname = \"x\"\nnodes = \"x1\"\n").unwrap();
    let e = Writer::create(
        dir.path(),
        &other,
        "[[cabinet]]\nname = \"x\"\nnodes = \"x1\"\n",
        options,
    )
    .err()
    .unwrap();
    assert!(e.contains("another inventory"), "{e}");
}

/// `fleetop record --demo` follows the simulated fleet as the TUI does; `snapshot --replay DIR --at` reads it back.
#[test]
fn record_then_snapshot_at_a_recorded_time() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let child = Command::new(common::fleetop_bin())
        .args([
            "record",
            "--demo",
            "--segment",
            "2s",
            "--retain",
            "1h",
            "--out",
        ])
        .arg(&out)
        .env("XDG_STATE_HOME", state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: until the recording holds a sample of every answering node and two segments, or two minutes
    // (the simulated fleet's first pass over 1,025 nodes takes seconds in a debug build on a busy machine).
    let deadline = Instant::now() + Duration::from_secs(120);
    let at = loop {
        let sampled = |r: &Reader, at: u64| {
            let mut state = FleetState::new(Arc::new(r.inventory().clone()));
            for m in r.messages(at, at) {
                state.apply(m.unwrap().1);
            }
            state.nodes().iter().filter(|n| n.sample.is_some()).count()
        };
        let ready = Reader::open(&out).ok().and_then(|r| {
            let (_, last) = r.span()?;
            (segment_files(&out).len() >= 2 && sampled(&r, last) == 1023).then_some(last)
        });
        if let Some(last) = ready {
            break last;
        }
        assert!(
            Instant::now() < deadline,
            "no sample of every node within two minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let ended = common::wait_bounded(child, Duration::from_secs(120));
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    assert!(segment_files(&out).len() >= 2);

    let time = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(at))
        .to_string();
    let snap = Command::new(common::fleetop_bin())
        .args(["snapshot", "--format", "json", "--replay"])
        .arg(&out)
        .args(["--at", &time])
        .env_remove("FLEETOP_INVENTORY")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&snap.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&snap.stderr)));
    assert_eq!(
        snap.status.code(),
        Some(2),
        "the demo's unreachable nodes and XID 79 are crit"
    );
    assert_eq!(doc["taken_at"], time.as_str());
    assert_eq!(doc["inventory"], "demo");
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1025);
    let xid = nodes.iter().find(|n| n["name"] == "c042n3").unwrap();
    assert_eq!(xid["health"], "crit", "{xid}");
    let up = nodes.iter().filter(|n| n["state"] == "up").count();
    assert!(up > 1000, "{up} nodes up at {time}");
    // Outside the recording is an error, not an empty fleet.
    let before = Command::new(common::fleetop_bin())
        .args(["snapshot", "--replay"])
        .arg(&out)
        .args(["--at", "2001-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&before.stderr).contains("outside the recording"));
}

/// A recorder writes a block every ten seconds; one stopped by SIGTERM (systemd, `kill`) writes the block it was
/// filling first, so the seconds since the last block are in the recording.
#[test]
fn a_recorder_stopped_by_sigterm_writes_the_block_it_was_filling() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec");
    let child = Command::new(common::fleetop_bin())
        .args(["record", "--demo", "--out"])
        .arg(&out)
        .env("XDG_STATE_HOME", state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let span_end = || Reader::open(&out).ok().and_then(|r| r.span()).map(|s| s.1);
    // Bounded: until four seconds after a block appeared (the next is ten beats after it, a beat a second at
    // most), or two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_block = (None, Instant::now());
    let written = loop {
        let end = span_end();
        if end != last_block.0 {
            last_block = (end, Instant::now());
        } else if let Some(end) = end.filter(|_| last_block.1.elapsed() > Duration::from_secs(4)) {
            break end;
        }
        assert!(Instant::now() < deadline, "no block within two minutes");
        std::thread::sleep(Duration::from_millis(200));
    };
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let ended = common::wait_bounded(child, Duration::from_secs(120));
    assert!(
        ended.status.success(),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    let end = span_end().unwrap();
    assert!(
        end > written,
        "the recording ends at {end}, where the last block before the signal did"
    );
}

/// `fleetop --replay DIR` in a real terminal: the header says replay and the recorded UTC time; `p` pauses,
/// `]` jumps a minute, `:at` goes to a time of day, and a drain is refused by the read-only rule.
#[test]
fn the_replay_tui_pauses_seeks_and_refuses_actions() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    record(dir.path(), 180, Duration::from_secs(60), |_, _| {});
    let command = format!(
        "{} --replay {} --at 03:01 --speed 0.0625",
        shlex::try_quote(common::fleetop_bin().to_str().unwrap()).unwrap(),
        shlex::try_quote(dir.path().to_str().unwrap()).unwrap()
    );
    let tmux = common::tmux::Tmux::start(&command, home.path());
    // c02n2 was lost at 03:00:30. A sixteenth of real time: a slow machine cannot carry it past 03:01:09.
    tmux.wait_for(
        &[
            "replay 2026-11-24 03:01:0",
            "UTC ×1/16",
            "read-only",
            "7 up",
        ],
        Duration::from_secs(30),
    );
    tmux.keys(&["p"]);
    tmux.wait_for(&["UTC paused"], Duration::from_secs(10));
    tmux.keys(&["]"]);
    tmux.wait_for(&["replay 2026-11-24 03:02:0"], Duration::from_secs(10));
    tmux.keys(&[":", "at 03:00:30", "Enter"]);
    tmux.wait_for(
        &["replay 2026-11-24 03:00:30 UTC paused"],
        Duration::from_secs(10),
    );
    // The node drained at 03:00:10 is drained then.
    tmux.keys(&["2"]);
    let nodes = tmux.wait_for(&["c01n3"], Duration::from_secs(10));
    assert!(nodes.contains("drained"), "{nodes}");
    tmux.keys(&["D"]);
    tmux.wait_for(&["drain refused"], Duration::from_secs(10));
    tmux.keys(&["q"]);
}

/// Hostile bytes anywhere in a segment: every read ends in messages or an error naming the file, never a panic.
#[test]
fn mutated_segments_never_panic_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), 4, Duration::from_secs(600), |_, _| {});
    let file = segment_files(dir.path()).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut errors = 0;
    for round in 0..200 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => {
                let i = next(bytes.len());
                bytes[i] ^= 1 << next(8);
            }
            1 => bytes.truncate(next(bytes.len())),
            _ => {
                let i = next(bytes.len() - 4);
                bytes[i..i + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            }
        }
        std::fs::write(&file, &bytes).unwrap();
        let result = Reader::open(dir.path()).and_then(|r| {
            r.messages(0, u64::MAX)
                .collect::<Result<Vec<_>, _>>()
                .map(|m| m.len())
        });
        if let Err(e) = result {
            assert!(
                e.contains(&name) && e.contains("offset"),
                "round {round}: {e}"
            );
            errors += 1;
        }
    }
    assert!(errors > 50, "most damage is caught: {errors} of 200");
}
