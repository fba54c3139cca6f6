//! After `deploy --systemd` restarts the agent's unit: is it running? A `Type=simple` restart "succeeds" as
//! soon as systemd forks, before the program even execs, so success is only claimed once the exporter answers
//! `GET /metrics` (asked through the node's own SSH session, so no port need be open to the jump host), or,
//! where the node's sshd forbids forwarding, once `systemctl is-active` still says `active` after a wait
//! longer than the unit's `RestartSec`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::command::quoted;
use super::oneshot;
use crate::telemetry::sanitize::make_inert;
use crate::transport::Ending;

/// How long a restarted agent has to answer: it reads NVML once before serving metrics (503 until then).
const START_LIMIT: Duration = Duration::from_secs(30);
/// Pause between tries.
const RETRY: Duration = Duration::from_millis(500);
/// The wait before `systemctl is-active` is believed: longer than the unit's `RestartSec=5`, so a program
/// that fails at once is seen restarting (`activating`) rather than briefly `active`.
const SETTLE: Duration = Duration::from_secs(7);
/// Most bytes of an HTTP answer read: the status line is all that is needed.
const STATUS_BYTES: usize = 64;

/// Checks that the service `name`, listening on `listen`, runs: what it found, or why not.
pub(super) fn check_started(s: &ssh2::Session, name: &str, listen: &str) -> Result<String, String> {
    let Some((host, port)) = local_target(listen) else {
        return is_active_after_settling(s, name);
    };
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let last = match ask_metrics(s, &host, port) {
            Ok(200) => return Ok(format!("its exporter answers on {listen}")),
            Ok(status) => format!("HTTP {status}"),
            Err(Asked::Forbidden) => return is_active_after_settling(s, name),
            Err(Asked::Failed(why)) => why,
        };
        if Instant::now() >= deadline {
            let state = is_active(s, name).unwrap_or_else(|e| e);
            return Err(format!(
                "{name} was restarted but its exporter did not answer on {listen} within {} s ({last}); systemctl is-active: {state}",
                START_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(RETRY);
    }
}

/// The address to ask on the node itself: the listen address, with a wildcard replaced by loopback.
fn local_target(listen: &str) -> Option<(String, u16)> {
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    Some((host.to_string(), port))
}

enum Asked {
    /// The node's sshd refuses forwarding: the exporter cannot be asked this way.
    Forbidden,
    Failed(String),
}

/// `GET /metrics` through a direct-tcpip channel; the HTTP status.
fn ask_metrics(s: &ssh2::Session, host: &str, port: u16) -> Result<u16, Asked> {
    let mut channel = s.channel_direct_tcpip(host, port, None).map_err(|e| {
        let text = e.to_string();
        if text.contains("prohibited") {
            Asked::Forbidden
        } else {
            Asked::Failed(format!("connect to {host}:{port}: {text}"))
        }
    })?;
    let failed = |e: std::io::Error| Asked::Failed(format!("asking {host}:{port}: {e}"));
    channel
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(failed)?;
    let mut answer = Vec::with_capacity(STATUS_BYTES);
    let mut buf = [0u8; STATUS_BYTES];
    while answer.len() < STATUS_BYTES && !answer.contains(&b'\n') {
        match channel.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n.min(STATUS_BYTES - answer.len())]),
            Err(e) => return Err(failed(e)),
        }
    }
    let _ = channel.close();
    http_status(&answer).ok_or_else(|| {
        let mut said = String::from_utf8_lossy(&answer).into_owned();
        make_inert(&mut said, STATUS_BYTES);
        Asked::Failed(format!("not an HTTP answer: {said:?}"))
    })
}

/// The status code of an HTTP/1.x status line.
fn http_status(answer: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(answer).ok()?.lines().next()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/1."))?;
    words.next()?.parse().ok()
}

/// `systemctl is-active` once the unit has had time to fail.
fn is_active_after_settling(s: &ssh2::Session, name: &str) -> Result<String, String> {
    std::thread::sleep(SETTLE);
    match is_active(s, name) {
        Ok(state) if state == "active" => Ok(format!(
            "systemctl is-active says active after {} s",
            SETTLE.as_secs()
        )),
        Ok(state) | Err(state) => Err(format!(
            "{name} was restarted but is not running: systemctl is-active: {state}"
        )),
    }
}

/// What `systemctl is-active` says (`Err` when it could not be asked).
fn is_active(s: &ssh2::Session, name: &str) -> Result<String, String> {
    let done = oneshot::run_on(
        s,
        &format!("systemctl is-active {}", quoted(name)),
        START_LIMIT,
    )
    .map_err(|e| format!("SSH: {e}"))?;
    let mut said = done.stdout.lines().next().unwrap_or("").trim().to_string();
    make_inert(&mut said, 40);
    match done.ending {
        Ending::Exited(_) if !said.is_empty() => Ok(said),
        Ending::Exited(code) => Ok(format!("exit {code}")),
        Ending::Signalled(sig) => Err(format!("killed by signal {sig}")),
        Ending::Dropped(why) => Err(format!("connection lost: {why}")),
        Ending::TimedOut(limit) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_is_asked_where_it_listens_on_the_node() {
        assert_eq!(
            local_target("0.0.0.0:9401"),
            Some(("127.0.0.1".into(), 9401))
        );
        assert_eq!(local_target("[::]:9401"), Some(("::1".into(), 9401)));
        assert_eq!(local_target("10.1.2.3:80"), Some(("10.1.2.3".into(), 80)));
        assert_eq!(local_target("nonsense"), None);
    }

    #[test]
    fn an_http_status_line_is_read_and_anything_else_is_not() {
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            http_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(http_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(http_status(b""), None);
    }
}
