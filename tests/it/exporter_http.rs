//! The agent's `/metrics` server under clients that misbehave, over real sockets on 127.0.0.1: one that
//! pipelines thousands of requests and never reads blocks no other scraper, idle connections are capped and
//! hung up on, and an oversized request head is refused without being buffered. Every wait is bounded.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Killed};
use fleetop::exporter::{HEAD_DEADLINE, MAX_CONNECTIONS};

/// An agent on the fake NVML library serving `/metrics` on `port`, answering once it is up.
fn agent(dir: &std::path::Path, port: u16) -> Killed {
    let agent = common::exporter_agent(dir, "node", "GPU-aaa", 37, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while scrape(port).is_err() {
        assert!(Instant::now() < deadline, "the agent never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    agent
}

/// One scrape of `/metrics`, as Prometheus does it; the body, or why not.
fn scrape(port: u16) -> Result<String, String> {
    ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(10))
        .call()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// How many sockets and threads process `pid` holds.
fn sockets_and_threads(pid: u32) -> (usize, usize) {
    let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    (sockets, threads)
}

#[test]
fn a_client_pipelining_without_reading_blocks_no_other_scraper() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _agent = agent(dir.path(), port);
    // 4,000 requests in one go, answers never read: some 20 MB of answers, more than both sockets buffer.
    let mut hog = TcpStream::connect(addr(port)).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let writer = std::thread::spawn(move || {
        for _ in 0..4000 {
            if hog
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: hog\r\n\r\n")
                .is_err()
            {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
        hog
    });
    // Until the hog has sent them all or stalled (the server no longer reads it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (usize::MAX, Instant::now());
    while !writer.is_finished() && Instant::now() < deadline {
        let now = sent.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..3 {
        let body = scrape(port).expect("a second scraper is answered while the first stalls");
        assert!(body.contains("fleetop_gpu_utilization_ratio"), "{body}");
    }
    drop(writer);
}

#[test]
fn idle_connections_are_capped_and_hung_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = agent(dir.path(), port);
    let pid = agent.0.id();
    let (sockets_before, threads_before) = sockets_and_threads(pid);
    // Three times the cap, sending nothing; connects beyond the kernel's backlog may fail, which is fine.
    let idle: Vec<TcpStream> = (0..3 * MAX_CONNECTIONS)
        .filter_map(|_| TcpStream::connect_timeout(&addr(port), Duration::from_secs(2)).ok())
        .collect();
    assert!(
        idle.len() > MAX_CONNECTIONS + 16,
        "{} connected",
        idle.len()
    );
    let mut most = (0, 0);
    for _ in 0..20 {
        let (s, t) = sockets_and_threads(pid);
        most = (most.0.max(s), most.1.max(t));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        most.0 <= sockets_before + MAX_CONNECTIONS,
        "{} sockets held for {} idle connections (cap {MAX_CONNECTIONS})",
        most.0,
        idle.len()
    );
    assert!(
        most.1 <= threads_before + 2,
        "{} threads for {} idle connections",
        most.1,
        idle.len()
    );
    // The first connection, accepted at once, is hung up on once its head deadline passes.
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(HEAD_DEADLINE + Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    match first.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle connection was kept: {other:?}"),
    }
    drop(idle);
    let body = scrape(port).expect("answered once the idle connections are gone");
    assert!(body.contains("fleetop_node_up"), "{body}");
}

#[test]
fn an_oversized_request_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _agent = agent(dir.path(), port);
    let mut client = TcpStream::connect(addr(port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut sender = client.try_clone().unwrap();
    // One header line of 4 MiB: the server stops reading long before its end.
    let writer = std::thread::spawn(move || {
        let _ = sender.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Filler: ");
        let filler = vec![b'a'; 64 * 1024];
        for _ in 0..64 {
            if sender.write_all(&filler).is_err() {
                return;
            }
        }
        let _ = sender.write_all(b"\r\n\r\n");
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < 4096 {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "answered {:?}",
        answer.lines().next()
    );
    drop(client);
    let _ = writer.join();
    assert!(scrape(port).is_ok(), "still serving");
}
