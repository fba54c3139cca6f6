//! The light bench fleet: every node replays, at 1 Hz, a stream the real agent wrote on the fake NVML
//! (`replay.c`), instead of running an agent that reads the fake NVML, its processes and its InfiniBand
//! tree every second. 1,024 agents and their sshds kept this 2-core machine at a load average of 120–260,
//! which inflated and blurred what the jump host itself spends; replayers cost a wakeup a second each.
//! Both captures are the agent's own: the compact stream this build asks for (`FLEETOP_COMPACT`, set on the
//! command line) and whole samples, which a jump host of the previous release gets, since it asks for none.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{process::run, shared, Fleet};

/// Sample lines captured of the compact stream: one whole sample and the deltas up to the next whole one
/// (the agent sends one every 60 lines when following).
const COMPACT_LINES: usize = 60;
const WHOLE_LINES: usize = 10;

/// The first `lines` lines after the hello that the agent of node 0 writes, with or without the compact
/// stream asked for; at 5 ms a sample, so the capture takes a second.
fn capture(fleet: &Fleet, compact: bool, lines: usize) -> PathBuf {
    let root = fleet.dir.path();
    let node = root.join("nodes").join(&fleet.nodes[0].addr);
    let with = |ext: &str| format!("{}.{ext}", node.display());
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = Command::new(&shared().fleetop);
    cmd.args(["agent", "--interval", "5"])
        .env("FAKE_NVML_SPEC", with("spec"))
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
        .env("FLEETOP_SYSFS_ROOT", with("sysfs"))
        .env("FLEETOP_KERNEL_LOG", root.join("empty.kmsg"))
        .env("XDG_STATE_HOME", state.path())
        .stdout(Stdio::piped());
    if compact {
        cmd.env("FLEETOP_COMPACT", "60");
    } else {
        cmd.env_remove("FLEETOP_COMPACT");
    }
    let mut child = cmd.spawn().expect("agent");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let kept: Vec<String> = out.lines().map_while(Result::ok).take(lines + 1).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        kept.len(),
        lines + 1,
        "the agent wrote {} lines",
        kept.len()
    );
    let file = shared().dir.join(if compact {
        "replay-compact.ndjson"
    } else {
        "replay-whole.ndjson"
    });
    std::fs::write(&file, kept.join("\n") + "\n").expect("capture");
    file
}

/// The replayer, built once beside the shared fleetop.
fn replayer() -> PathBuf {
    let binary = shared().dir.join("replay");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fleet/replay.c");
    run(Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(&source));
    binary
}

/// Makes every node of `fleet` (started as full-sample agents, node 0 with its InfiniBand tree) replay what
/// node 0's agent writes; returns what was captured.
pub(crate) fn replay_node_zero(fleet: &Fleet) -> Captured {
    let compact = capture(fleet, true, COMPACT_LINES);
    let whole = capture(fleet, false, WHOLE_LINES);
    let replay = replayer();
    let nodes = fleet.dir.path().join("nodes");
    for node in &fleet.nodes {
        let base = nodes.join(&node.addr);
        let script = format!(
            "exec {} {} {}\n",
            replay.display(),
            compact.display(),
            whole.display()
        );
        std::fs::write(format!("{}.sh", base.display()), script).expect("script");
        std::fs::write(format!("{}.mode", base.display()), "script\n").expect("mode");
    }
    let text = std::fs::read_to_string(&compact).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let deltas: Vec<&&str> = lines.iter().filter(|l| l.starts_with("{\"d\":")).collect();
    Captured {
        whole_bytes: lines.get(1).map_or(0, |l| l.len() + 1),
        deltas: deltas.len(),
        // A delta of the time alone is `{"d":T}`; anything longer carries a value.
        moving: deltas.iter().filter(|l| l.contains(',')).count(),
        last_delta_bytes: deltas.last().map_or(0, |l| l.len() + 1),
    }
}

/// What the compact capture holds.
pub(crate) struct Captured {
    /// Bytes of its whole sample, newline included.
    pub(crate) whole_bytes: usize,
    /// Its delta lines, and how many of them carry a value.
    pub(crate) deltas: usize,
    pub(crate) moving: usize,
    pub(crate) last_delta_bytes: usize,
}
