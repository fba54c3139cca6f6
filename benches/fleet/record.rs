//! `FLEETOP_BENCH_ONLY=record`: what a recording of the demo fleet (1,025 nodes × 8 GPUs at 1 Hz) costs on disk
//! and in CPU, and how long a seek takes; the figures go into docs/benchmarks.md by hand.
//!
//! Size and the writer's own CPU are measured in-process on the simulated fleet's messages (`sim::messages`,
//! what `--demo`'s transport sends) over `FLEETOP_BENCH_RECORD_SECS` of recorded time, and extrapolated to 24 h.
//! The process cost is `fleetop record --demo` beside `fleetop --demo` in line mode (following alone), both
//! running over the same `FLEETOP_BENCH_RECORD_FOLLOW_SECS`, each one's CPU time read from /proc between the same
//! points, in `FLEETOP_BENCH_RECORD_TURNS` turns of fresh processes: one pair's difference moves by a couple of
//! points on a shared machine, so the median of the turns' differences is given with their least and greatest.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetop::fleet::FleetState;
use fleetop::inventory::Inventory;
use fleetop::recording::{Options, Reader, Writer};

use crate::common::shared;
use crate::measure::proc_cpu;

fn thread_cpu() -> f64 {
    cpu_of(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The whole process's CPU: a seek decompresses blocks on a thread beside the one reading frames.
fn process_cpu() -> f64 {
    cpu_of(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_of(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer for a clock every Linux has.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Each segment's size, oldest first.
fn segment_sizes(dir: &std::path::Path) -> Vec<u64> {
    let mut segments: Vec<(std::ffi::OsString, u64)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name();
                name.to_str()?.starts_with("segment-").then_some(())?;
                Some((name, e.metadata().ok()?.len()))
            })
            .collect()
        })
        .unwrap_or_default();
    segments.sort();
    segments.into_iter().map(|(_, len)| len).collect()
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The scenario with `FLEETOP_BENCH_RECORD_SECS` (900), `FLEETOP_BENCH_RECORD_FOLLOW_SECS` (30) and
/// `FLEETOP_BENCH_RECORD_TURNS` (5).
pub(crate) fn from_env() -> String {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    record(
        env("FLEETOP_BENCH_RECORD_SECS", 900),
        env("FLEETOP_BENCH_RECORD_FOLLOW_SECS", 30),
        env("FLEETOP_BENCH_RECORD_TURNS", 5).max(1),
    )
}

fn record(seconds: u64, follow_secs: u64, turns: u64) -> String {
    let inv = Inventory::demo();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml"),
    )
    .expect("the demo inventory");
    let mut writer = Writer::create(dir.path(), &inv, &text, Options::default()).expect("writer");
    let wall0 = 1_795_489_200_000u64;
    let base = Instant::now();
    let (mut writer_cpu, mut messages) = (0.0, 0u64);
    eprintln!("record: {seconds} s of the demo fleet, in-process…");
    for tick in 0..seconds {
        let batch =
            fleetop::transport::sim::messages(&inv, 2026, tick, base + Duration::from_secs(tick));
        let before = thread_cpu();
        for m in &batch {
            writer.write(wall0 + tick * 1000, m).expect("write");
        }
        // The recorder's once-a-second beat: a block every `BEATS_PER_BLOCK` seconds.
        writer.beat(wall0 + tick * 1000).expect("beat");
        writer_cpu += thread_cpu() - before;
        messages += batch.len() as u64;
    }
    writer.close().expect("close");
    let bytes = dir_bytes(dir.path());
    let segments = segment_sizes(dir.path());
    let per_day = bytes as f64 / seconds as f64 * 86_400.0;

    let open = Instant::now();
    let reader = Reader::open(dir.path()).expect("reader");
    let open_s = open.elapsed().as_secs_f64();
    // The worst seek reads a whole segment: a time just before the second segment begins (or the recording's
    // end, where it is shorter than a segment).
    let period = fleetop::recording::DEFAULT_PERIOD.as_millis() as u64;
    let full = period.min(seconds * 1000) - 1_000;
    let mut seeks = Vec::new();
    for at in [wall0 + full / 2, wall0 + full, wall0 + (seconds - 1) * 1000] {
        let (started, cpu) = (Instant::now(), process_cpu());
        let mut state = FleetState::new(Arc::new(reader.inventory().clone()));
        for m in reader.messages(at, at) {
            state.apply(m.expect("message").1);
        }
        let took = (started.elapsed().as_secs_f64(), process_cpu() - cpu);
        seeks.push(((at - wall0) / 1000, took));
    }
    let worst = seeks.iter().map(|s| s.1 .0).fold(0.0, f64::max);
    // The replay TUI's seek: a fresh app given half a minute of sparklines and the state at the time.
    let mut app =
        fleetop::tui::replay::fresh_app(&reader, fleetop::tui::keymap::Keymap::default(), wall0);
    let mut player = fleetop::tui::replay::Player::new(&reader);
    let tui_at = wall0 + full;
    let (started, cpu) = (Instant::now(), process_cpu());
    player.seek(&mut app, tui_at).expect("seek");
    let tui_seek = (started.elapsed().as_secs_f64(), process_cpu() - cpu);

    let beside = follow_with_and_without(follow_secs, turns);
    let mut out = String::from("\n## Recording (`fleetop record`)\n\n");
    // Seeks are timed on the wall clock, which a shared machine stretches: their CPU time is given beside.
    out += &format!(
        "Load average when the seeks ran: {}.\n\n",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    out += &format!(
        "The demo fleet (1,025 nodes × 8 GPUs, 1 Hz; `sim::messages`, what `--demo`'s transport sends) recorded \
         in-process for {seconds} s ({messages} messages), segments of {} s:\n\n",
        period / 1000
    );
    out += "| measure | figure | budget |\n|---|---|---|\n";
    out += &format!(
        "| on disk | {:.1} MB for {seconds} s: {:.0} bytes a node-second; **{:.2} GiB for 24 h** (extrapolated) | 1 GiB |\n",
        bytes as f64 / 1e6,
        bytes as f64 / seconds as f64 / inv.nodes.len() as f64,
        per_day / (1u64 << 30) as f64
    );
    // The first segment opens on the fleet's first samples and its hellos' histories; the second is a period as
    // every later one is, opening with a keyframe that restates every node: a day is that many of those.
    if let Some(&second) = segments.get(1).filter(|_| seconds * 1000 >= 2 * period) {
        let node_seconds = (period / 1000 * inv.nodes.len() as u64) as f64;
        out += &format!(
            "| the second segment (a full period, from its keyframe) | {:.2} MB: {:.2} bytes a node-second; **{:.3} GiB for 24 h** ({} such segments) | 1 GiB |\n",
            second as f64 / 1e6,
            second as f64 / node_seconds,
            second as f64 * (86_400_000 / period) as f64 / (1u64 << 30) as f64,
            86_400_000 / period
        );
    }
    out += &format!(
        "| the writer's CPU (encode, compress, write) | {:.1} % of a core | — |\n",
        writer_cpu / seconds as f64 * 100.0
    );
    let share = |cpu: f64| cpu / follow_secs as f64 * 100.0;
    let (extra, least, most) = median_and_range(beside.iter().map(|(f, r)| share(r - f)).collect());
    let (follow_median, ..) = median_and_range(beside.iter().map(|(f, _)| share(*f)).collect());
    let (record_median, ..) = median_and_range(beside.iter().map(|(_, r)| share(*r)).collect());
    out += &format!(
        "| `fleetop record --demo` against `fleetop --demo` (line mode), side by side, {turns} turns of {follow_secs} s | \
         {record_median:.1} % against {follow_median:.1} % of a core (medians); the difference in each turn: \
         **median {extra:+.1} points**, {least:+.1} to {most:+.1} | +2 points |\n"
    );
    out += &format!("| open the recording | {:.3} s | — |\n", open_s);
    for (at, (wall, cpu)) in &seeks {
        out += &format!(
            "| seek to {at} s (state of 1,025 nodes) | {wall:.3} s ({cpu:.3} s of CPU, both threads) | 1 s |\n"
        );
    }
    out += &format!(
        "| the replay TUI's seek to {} s (30 s of sparklines before it, the state at it, rows derived) | {:.3} s ({:.3} s of CPU, both threads) | 1 s |\n",
        (tui_at - wall0) / 1000,
        tui_seek.0,
        tui_seek.1
    );
    out += &format!(
        "\nA seek reads one segment from its keyframe, whatever the recording's length, so the worst seek \
         ({worst:.3} s, the end of a full segment) stands for any minute of a 24 h recording ({} segments).\n",
        86_400_000 / period
    );
    out += "\nWhere the bytes and time go: a frame is binary, each GPU a fixed record of its seven moving numbers \
            (each its change) and a bitmap of its other fields that changed; bzip2 compresses ten seconds of \
            records in one stream and the other lanes (heads, integers, floats, texts) in another. The demo's \
            power is drawn afresh every second on every GPU (uniform over 60 W plus 4.6 W per utilisation \
            point) and is most of what is left; a real GPU's power moves less. A seek reads one segment from its \
            keyframe, blocks decompressed on a thread beside the one reading frames into each node's previous \
            sample in place.\n";
    out
}

/// The recorder against following, turn by turn: CPU seconds of following alone (`fleetop --demo`, line mode)
/// and of recording (`fleetop record --demo`), run side by side over the same `seconds` in each turn.
fn follow_with_and_without(seconds: u64, turns: u64) -> Vec<(f64, f64)> {
    (0..turns)
        .map(|turn| {
            eprintln!(
                "record: turn {} of {turns}, following with and without recording, {seconds} s…",
                turn + 1
            );
            // Which starts first alternates, so neither is always the one that meets the other's start-up.
            follow_beside_record(seconds, turn % 2 == 1)
        })
        .collect()
}

fn follow_beside_record(seconds: u64, record_first: bool) -> (f64, f64) {
    let out = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let spawn = |args: &[&str]| {
        Command::new(&shared().fleetop)
            .args(args)
            .env("XDG_STATE_HOME", state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fleetop")
    };
    let rec_dir = out.path().join("rec");
    let record_args = ["record", "--demo", "--out", rec_dir.to_str().unwrap_or("")];
    let (mut follow, mut record) = if record_first {
        let record = spawn(&record_args);
        (spawn(&["--demo"]), record)
    } else {
        let follow = spawn(&["--demo"]);
        (follow, spawn(&record_args))
    };
    // Past start-up: both have every node's hello and first samples.
    std::thread::sleep(Duration::from_secs(5));
    let (f0, r0) = (proc_cpu(follow.id()), proc_cpu(record.id()));
    std::thread::sleep(Duration::from_secs(seconds));
    let (f1, r1) = (proc_cpu(follow.id()), proc_cpu(record.id()));
    for child in [&mut follow, &mut record] {
        let _ = child.kill();
        let _ = child.wait();
    }
    (f1 - f0, r1 - r0)
}

/// The median of `values` and their least and greatest.
fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}
