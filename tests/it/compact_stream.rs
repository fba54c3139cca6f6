//! The compact stream end to end: the real agent on the fake NVML asked for it or not, and the jump host
//! following an agent of this build, an older agent's whole samples and a stream that loses its place, over SSH.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{shared, Behaviour, Fleet, Killed, Quirks, Spec};
use fleetop::inventory::Inventory;
use fleetop::telemetry::delta::{Reassembler, Rebuilt};
use fleetop::telemetry::wire::{decode_agent_line, AgentLine, MAX_GPUS_PER_SAMPLE};
use fleetop::telemetry::NodeSample;
use fleetop::transport::ssh::SshTransport;
use fleetop::transport::{Msg, NodeEvent, Transport};

/// GPU 0's PCIe replays start here and rise by this much per sample: a value that changes every line.
const REPLAY_START: u64 = 100;
const REPLAY_STEP: u64 = 3;

/// The agent following every 30 ms on the fake NVML (8 GPUs, NVLinks, rising replays), with
/// `$FLEETOP_COMPACT` set to `compact` when given; its stdout's lines arrive on the receiver.
fn following_agent(compact: Option<&str>) -> (Killed, mpsc::Receiver<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::node(5, 8)
        .with_line(&format!("pcie_replay 0 {REPLAY_START} {REPLAY_STEP}"))
        .with_line("nvlink 1 18")
        .with_line("nvlink_errors 1 2 0 0 0 0 1");
    let spec_path = dir.path().join("spec");
    std::fs::write(&spec_path, &spec.text).unwrap();
    let kmsg = dir.path().join("kmsg");
    std::fs::write(&kmsg, "").unwrap();
    let mut cmd = Command::new(common::fleetop_bin());
    cmd.args(["agent", "--interval", "30"])
        .env("FAKE_NVML_SPEC", &spec_path)
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
        .env("FLEETOP_KERNEL_LOG", &kmsg)
        .env("XDG_STATE_HOME", dir.path())
        .env_remove("FLEETOP_COMPACT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(value) = compact {
        cmd.env("FLEETOP_COMPACT", value);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Killed(child), rx, dir)
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent kept sampling")
}

fn is_whole(line: &str) -> bool {
    line.starts_with("{\"t\":")
}

/// The sample a line describes, as the jump host reads it.
fn reassemble(stream: &mut Reassembler, line: &str) -> NodeSample {
    let mut sample = match decode_agent_line(line) {
        AgentLine::Sample(s) => {
            stream.full(&s);
            s
        }
        // Never told its samples were sanitized, the reassembler rebuilds each one whole.
        AgentLine::Delta(d) => match stream.apply(d).unwrap() {
            Rebuilt::Whole(s) => s,
            Rebuilt::Patch(p) => panic!("a patch without a clean sample before it: {p:?}"),
        },
        other => panic!("{other:?} from {line}"),
    };
    sample.sanitize(MAX_GPUS_PER_SAMPLE);
    sample
}

#[test]
fn an_agent_asked_for_the_compact_stream_sends_what_changed_and_a_whole_sample_every_n() {
    let (_agent, lines, _dir) = following_agent(Some("5"));
    let hello: serde_json::Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(hello["compact"], 5, "{hello}");
    let mut stream = Reassembler::default();
    stream.start(true);
    let mut whole = Vec::new();
    let mut replays = Vec::new();
    for _ in 0..11 {
        let line = next_line(&lines);
        whole.push(is_whole(&line));
        if !is_whole(&line) {
            assert!(line.starts_with("{\"d\":"), "{line}");
            assert!(!line.contains("GPU-0005"), "no identity in a delta: {line}");
            assert!(line.len() < 400, "{} bytes: {line}", line.len());
        }
        let sample = reassemble(&mut stream, &line);
        assert_eq!(sample.gpus.len(), 8);
        let gpu = &sample.gpus[0];
        assert_eq!(gpu.uuid.as_deref(), Some("GPU-0005-0000"));
        assert_eq!(gpu.util_pct, Some(50));
        assert_eq!(gpu.power_w, Some(162.5));
        assert!(gpu.processes.is_some(), "checked, carried over");
        assert_eq!(sample.gpus[1].nvlink.as_ref().map(|l| l.total), Some(18));
        replays.push(gpu.pcie_replay.unwrap());
    }
    assert_eq!(
        whole,
        [true, false, false, false, false, true, false, false, false, false, true],
        "a whole sample first and every fifth line"
    );
    for pair in replays.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + REPLAY_STEP,
            "every line's value: {replays:?}"
        );
    }
}

#[test]
fn an_agent_sends_a_whole_sample_when_the_jump_host_asks() {
    // A period far away: any whole sample after the first is the one asked for.
    let (agent, lines, _dir) = following_agent(Some("100000"));
    next_line(&lines);
    assert!(is_whole(&next_line(&lines)));
    for _ in 0..3 {
        assert!(!is_whole(&next_line(&lines)));
    }
    // SIGUSR1 is the jump host's request (the session wrapper turns a line on stdin into it).
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(agent.0.id() as i32, libc::SIGUSR1) }, 0);
    let whole_within = (0..200).position(|_| is_whole(&next_line(&lines)));
    assert!(whole_within.is_some(), "no whole sample after the request");
}

#[test]
fn an_agent_not_asked_for_the_compact_stream_sends_every_sample_whole() {
    for compact in [None, Some("none")] {
        let (_agent, lines, _dir) = following_agent(compact);
        let hello: serde_json::Value = serde_json::from_str(&next_line(&lines)).unwrap();
        assert!(hello.get("compact").is_none(), "{hello}");
        for _ in 0..4 {
            let line = next_line(&lines);
            assert!(is_whole(&line), "{line}");
        }
    }
}

fn follow(
    inventory: &str,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<Msg>,
    fleetop::transport::Following,
) {
    let inv = Arc::new(Inventory::parse("test.toml", inventory).unwrap());
    let transport = SshTransport::new(&inv).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let following = transport.follow(&inv, tx);
    (rx, following)
}

#[test]
fn the_jump_host_reads_this_agent_an_older_agent_and_a_stream_that_lost_its_place() {
    let older_hello =
        r#"{"fleetop_agent":1,"version":"0.0.9","driver":"550.54.15","cuda":"12.4","gpus":1}"#;
    let older_sample = r#"{"t":1,"gpus":[{"index":0,"uuid":"GPU-old","util_pct":33}]}"#;
    // An older agent ignores $FLEETOP_COMPACT and sends every sample whole.
    let older = format!(
        "echo '{older_hello}'\ni=0\nwhile [ $i -lt 40 ]; do echo '{older_sample}'; sleep 1; i=$((i+1)); done\n"
    );
    // A compact agent whose first delta comes before any whole sample: the jump host asks for one, which
    // reaches the agent as SIGUSR1; deltas after it apply.
    let compact_hello =
        r#"{"fleetop_agent":1,"version":"9.9.9","driver":"x","cuda":"x","gpus":1,"compact":60}"#;
    let lost = format!(
        "trap 'asked=1' USR1\nasked=0\necho '{compact_hello}'\n\
         echo '{{\"d\":1,\"gpus\":[{{\"index\":0,\"util_pct\":7}}]}}'\n\
         i=0\nwhile [ $i -lt 40 ]; do\n\
           if [ $asked = 1 ]; then echo '{{\"t\":2,\"gpus\":[{{\"index\":0,\"uuid\":\"GPU-full\",\"util_pct\":11}}]}}'; asked=2;\n\
           elif [ $asked = 2 ]; then echo '{{\"d\":3,\"gpus\":[{{\"index\":0,\"util_pct\":12}}]}}'; fi\n\
           sleep 1; i=$((i+1))\n\
         done\n"
    );
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(6, 8)),
            Behaviour::Script(older),
            Behaviour::Script(lost),
        ],
        Quirks::default(),
    );
    let (mut rx, _following) = follow(&fleet.inventory(&[]));
    let mut samples: [Vec<NodeSample>; 3] = Default::default();
    let mut hellos = [None, None, None];
    let mut bad: [Vec<String>; 3] = Default::default();
    let deadline = Instant::now() + Duration::from_secs(40);
    while samples.iter().any(|s| s.len() < 3) {
        assert!(
            Instant::now() < deadline,
            "samples {:?}, bad lines {bad:?}",
            samples.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let Ok(msg) = rx.try_recv() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        match msg.event {
            NodeEvent::Streaming { hello, .. } => hellos[msg.node] = hello.map(|h| h.compact),
            NodeEvent::Sample(s) => samples[msg.node].push(s),
            // Patched in place, as fleet state does, on the node's sample before.
            NodeEvent::Delta(d) => {
                let mut s = samples[msg.node]
                    .last()
                    .cloned()
                    .expect("a whole sample first");
                d.apply_to(&mut s);
                samples[msg.node].push(s);
            }
            NodeEvent::BadLine(why) => bad[msg.node].push(why),
            _ => {}
        }
    }
    // This build's agent was asked for the compact stream and every sample it rebuilt is whole.
    assert_eq!(hellos[0], Some(Some(60)));
    for s in &samples[0] {
        assert_eq!(s.gpus.len(), 8);
        assert_eq!(s.gpus[3].uuid.as_deref(), Some("GPU-0006-0003"));
        assert_eq!(s.gpus[3].util_pct, Some(63));
    }
    assert!(bad[0].is_empty(), "{:?}", bad[0]);
    // The older agent: whole samples, no complaint (version skew is drift, not failure).
    assert_eq!(hellos[1], Some(None));
    assert!(samples[1].iter().all(|s| s.gpus[0].util_pct == Some(33)));
    assert!(bad[1].is_empty(), "{:?}", bad[1]);
    // The lost place: refused, asked for, and then read.
    assert_eq!(bad[2], ["a delta line before any full sample"]);
    assert_eq!(samples[2][0].gpus[0].util_pct, Some(11));
    let later = &samples[2][1].gpus[0];
    assert_eq!(
        (later.uuid.as_deref(), later.util_pct),
        (Some("GPU-full"), Some(12))
    );
}
