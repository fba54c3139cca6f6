//! The streaming phase shares one poller across nodes: a node whose SSH connection hangs in the middle of a
//! packet (a relay passes half of it, then nothing) must not delay any other node's samples.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fleet, Quirks, Spec};
use fleetop::inventory::Inventory;
use fleetop::transport::ssh::SshTransport;
use fleetop::transport::{FailureKind, Msg, NodeEvent, Transport};

/// The longest the relay holds a hung connection open.
const HOLD: Duration = Duration::from_secs(60);

/// A loopback relay to `target`: passes bytes both ways until `hang` is set; then passes half of the next
/// chunk from the server and holds both sockets open, silent, until `done` (or `HOLD`).
fn relay(target: String, hang: Arc<AtomicBool>, done: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let until = Instant::now() + HOLD;
        while !done.load(Ordering::Relaxed) && Instant::now() < until {
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            client.set_nonblocking(false).unwrap();
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut up_from, mut up_to) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_from, &mut up_to);
            });
            let (hang, done) = (Arc::clone(&hang), Arc::clone(&done));
            std::thread::spawn(move || pass_then_hang(server, client, &hang, &done));
        }
    });
    port
}

fn pass_then_hang(mut from: TcpStream, mut to: TcpStream, hang: &AtomicBool, done: &AtomicBool) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if hang.load(Ordering::Relaxed) && n > 1 {
            let _ = to.write_all(&buf[..n / 2]);
            let until = Instant::now() + HOLD;
            while !done.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn count_samples(seen: &[Msg], node: usize) -> usize {
    seen.iter()
        .filter(|m| m.node == node && m.event.is_sample())
        .count()
}

#[test]
fn a_node_hanging_mid_packet_does_not_delay_another_nodes_samples() {
    let fleet = Fleet::start(
        vec![
            common::Behaviour::Agent(Spec::node(0, 2)),
            common::Behaviour::Agent(Spec::node(1, 2)),
        ],
        Quirks::default(),
    );
    let hang = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let addr = &fleet.nodes[0].addr;
    let port = relay(
        format!("{addr}:{}", fleet.port),
        Arc::clone(&hang),
        Arc::clone(&done),
    );
    // Node 0 is reached through the relay: the same host key, listed for the relay's address.
    let known = fleet.dir.path().join("known_hosts");
    let text = std::fs::read_to_string(&known).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("[{addr}]:{} ", fleet.port)))
        .unwrap()
        .to_string();
    std::fs::write(&known, format!("{text}[127.0.0.1]:{port} {key}\n")).unwrap();
    let inventory = fleet.inventory(&[]).replace(
        &format!("host = \"{addr}\"\nport = {}", fleet.port),
        &format!("host = \"127.0.0.1\"\nport = {port}"),
    );
    let inv = Arc::new(Inventory::parse("test.toml", &inventory).unwrap());
    let transport = SshTransport::new(&inv).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _following = transport.follow(&inv, tx);

    let mut seen = Vec::new();
    let receive = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>,
                   seen: &mut Vec<Msg>,
                   limit: Duration,
                   done: &dyn Fn(&[Msg]) -> bool| {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && !done(seen) {
            match rx.try_recv() {
                Ok(m) => seen.push(m),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    };
    receive(&mut rx, &mut seen, Duration::from_secs(30), &|s| {
        count_samples(s, 0) >= 2 && count_samples(s, 1) >= 2
    });
    assert!(
        count_samples(&seen, 0) >= 2 && count_samples(&seen, 1) >= 2,
        "both nodes streaming before the hang: {seen:#?}"
    );

    hang.store(true, Ordering::Relaxed);
    // Node 0 stalls at 10 s (5 intervals of 200 ms, at least 10 s) of no complete sample: node 1 is watched a
    // little longer than that, then node 0's failure awaited (tearing down a hung connection takes libssh2's
    // timeouts on the node's own thread).
    let mut during = Vec::new();
    receive(&mut rx, &mut during, Duration::from_secs(12), &|_| false);
    // Samples of node 1 kept coming every interval (200 ms) while node 0 hung; a poller blocked on node 0
    // would have let none through, or let them through in a burst.
    let node1 = count_samples(&during, 1);
    assert!(node1 >= 20, "node 1 sent {node1} samples while node 0 hung");
    let times: Vec<Instant> = during
        .iter()
        .filter(|m| m.node == 1 && m.event.is_sample())
        .map(|m| m.at)
        .collect();
    let widest = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap();
    assert!(
        widest < Duration::from_secs(5),
        "node 1 went {widest:?} without a sample"
    );
    assert_eq!(
        count_samples(&during, 0),
        0,
        "node 0 hung, yet sent samples"
    );
    let stalled = |s: &[Msg]| {
        s.iter().any(|m| {
            m.node == 0
                && matches!(&m.event, NodeEvent::Failed { kind: FailureKind::StreamEnded, detail }
                    if detail.contains("no complete sample"))
        })
    };
    receive(&mut rx, &mut during, Duration::from_secs(60), &stalled);
    done.store(true, Ordering::Relaxed);
    assert!(stalled(&during), "node 0 never timed out");
}

/// The node's exit as the transport reports it: the first failure of `node`.
fn first_failure(seen: &[Msg], node: usize) -> Option<(FailureKind, String)> {
    seen.iter().find_map(|m| match &m.event {
        NodeEvent::Failed { kind, detail } if m.node == node => Some((*kind, detail.clone())),
        _ => None,
    })
}

/// An agent that writes its last samples and exits at once: the end of its stream may come on the same
/// read as its data, which the poller must not take for a quiet socket (it would then wait out the stall
/// and report a hang instead of the exit) — with and without words on stderr, which libssh2 keeps queued.
#[test]
fn an_agent_exiting_right_after_its_samples_is_reported_as_exited_not_stalled() {
    let hello = r#"{"fleetop_agent":1,"version":"test","driver":"x","cuda":"y","gpus":1}"#;
    let sample = r#"{"t":1,"gpus":[{"index":0,"util_pct":42,"temp_c":50,"xid":[]}]}"#;
    let quiet = format!("printf '%s\\n%s\\n%s\\n' '{hello}' '{sample}' '{sample}'\nexit 3\n");
    let speaking = format!(
        "printf '%s\\n%s\\n' '{hello}' '{sample}'\necho 'agent: lost the GPU' >&2\nexit 4\n"
    );
    let fleet = Fleet::start(
        vec![
            common::Behaviour::Script(quiet),
            common::Behaviour::Script(speaking),
        ],
        Quirks::default(),
    );
    let inv = Arc::new(Inventory::parse("test.toml", &fleet.inventory(&[])).unwrap());
    let transport = SshTransport::new(&inv).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _following = transport.follow(&inv, tx);

    // Well short of the stall (10 s at this interval): an exit read when it came is reported within it.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut seen = Vec::new();
    while Instant::now() < deadline
        && (first_failure(&seen, 0).is_none() || first_failure(&seen, 1).is_none())
    {
        match rx.try_recv() {
            Ok(m) => seen.push(m),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let (kind, detail) = first_failure(&seen, 0).expect("node 0's exit reported");
    assert_eq!(kind, FailureKind::StreamEnded, "{detail}");
    assert!(detail.contains("exited with status 3"), "{detail}");
    let (kind, detail) = first_failure(&seen, 1).expect("node 1's exit reported");
    assert_eq!(kind, FailureKind::StreamEnded, "{detail}");
    assert!(
        detail.contains("exited with status 4: agent: lost the GPU"),
        "{detail}"
    );
    assert!(count_samples(&seen, 0) >= 1, "node 0's samples came first");
}
