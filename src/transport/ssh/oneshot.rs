//! One command over SSH, for actions: connect with the same rules as telemetry (or reuse the session
//! telemetry holds), run, collect the result.

use std::io::Read;
use std::time::{Duration, Instant};

use super::connected::{fail, NodeFailure};
use super::endpoint::Endpoint;
use super::known::KnownHosts;
use super::session;
use super::timeouts::Timeouts;
use crate::transport::{Completed, Ending};

/// Most output kept from an action's command.
pub(crate) const OUTPUT_KEEP: u64 = 64 * 1024;

/// How often a wait for a command's output wakes up to check its deadline.
const POLL: Duration = Duration::from_secs(1);

/// Connects to `endpoint` and runs `command` (already quoted for the remote shell), waiting at most `limit`.
pub fn run(
    endpoint: &Endpoint,
    known_hosts: &KnownHosts,
    t: &Timeouts,
    command: &str,
    limit: Duration,
) -> Result<Completed, NodeFailure> {
    let connected = session::connect(endpoint, known_hosts, t)?;
    let s = &connected.session;
    s.set_timeout(u32::try_from(POLL.min(limit).as_millis()).unwrap_or(1000));
    run_on(s, command, limit).map_err(|e| {
        fail(
            crate::transport::FailureKind::Unreachable,
            format!("SSH: {e}"),
        )
    })
}

/// Runs `command` on a new channel of an existing session, for at most `limit` (checked whenever a read
/// returns, so on a shared session whose timeout is longer the wait may overrun by that timeout). The
/// session's timeout is left as it is: telemetry may stream through the same session, and while it does the
/// session is non-blocking (the stream poller reads it), so every step here waits out libssh2's EAGAIN.
pub(crate) fn run_on(
    s: &ssh2::Session,
    command: &str,
    limit: Duration,
) -> Result<Completed, ssh2::Error> {
    let deadline = Instant::now() + limit;
    let mut channel = patiently(s, deadline, || s.channel_session())?;
    patiently(s, deadline, || channel.exec(command))?;
    let mut stdout = Vec::new();
    let mut buf = [0u8; 8192];
    let ending = loop {
        match channel.read(&mut buf) {
            Ok(0) => {
                break match patiently(s, deadline, || channel.wait_close()) {
                    Ok(()) => match exit_signal(&channel) {
                        Some(signal) => Ending::Signalled(signal),
                        None => Ending::Exited(channel.exit_status().unwrap_or(-1)),
                    },
                    Err(e) => Ending::Dropped(e.to_string()),
                }
            }
            Ok(n) => {
                let room = (OUTPUT_KEEP as usize).saturating_sub(stdout.len());
                stdout.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if waited(s, deadline, e.kind()) => {
                if Instant::now() >= deadline {
                    break Ending::TimedOut(limit);
                }
            }
            Err(e) => break Ending::Dropped(e.to_string()),
        }
    };
    let mut stderr = Vec::new();
    if !matches!(ending, Ending::TimedOut(_)) {
        let mut err = channel.stderr();
        while (stderr.len() as u64) < OUTPUT_KEEP {
            match err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => stderr.extend_from_slice(&buf[..n]),
                Err(e) if waited(s, deadline, e.kind()) && Instant::now() < deadline => {}
                Err(_) => break,
            }
        }
        stderr.truncate(OUTPUT_KEEP as usize);
    }
    Ok(Completed {
        ending,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Longest wait on the socket of a session the stream poller also reads: the poller may take the bytes off
/// the socket for this channel (libssh2 keeps them), and then the socket never wakes this thread.
const SHARED_WAIT: Duration = Duration::from_millis(50);

/// Runs a libssh2 step until it no longer says EAGAIN (a non-blocking session) or `deadline` passes.
fn patiently<T>(
    s: &ssh2::Session,
    deadline: Instant,
    mut step: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, ssh2::Error> {
    loop {
        match step() {
            Err(e)
                if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
                    && Instant::now() < deadline =>
            {
                wait_socket(s);
            }
            other => return other,
        }
    }
}

/// libssh2's "would block".
const LIBSSH2_ERROR_EAGAIN: i32 = -37;

/// True when a read failed only for now: timed out (a blocking session), or would block (a non-blocking
/// one, after waiting on its socket); the caller checks `deadline`.
fn waited(s: &ssh2::Session, deadline: Instant, kind: std::io::ErrorKind) -> bool {
    match kind {
        std::io::ErrorKind::TimedOut => true,
        std::io::ErrorKind::WouldBlock => {
            if Instant::now() < deadline {
                wait_socket(s);
            }
            true
        }
        _ => false,
    }
}

/// Waits until the session's socket is ready the way libssh2 needs it, for at most `SHARED_WAIT`.
fn wait_socket(s: &ssh2::Session) {
    use std::os::fd::AsRawFd;
    let events = match s.block_directions() {
        ssh2::BlockDirections::Inbound => libc::POLLIN,
        ssh2::BlockDirections::Outbound => libc::POLLOUT,
        _ => libc::POLLIN | libc::POLLOUT,
    };
    let mut fd = libc::pollfd {
        fd: s.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = i32::try_from(SHARED_WAIT.as_millis()).unwrap_or(50);
    // SAFETY: one valid pollfd, for the length given.
    unsafe {
        libc::poll(&mut fd, 1, ms);
    }
}

/// Most characters kept of a signal's name: real ones (`KILL`, `SEGV`, `XCPU`) are a few letters.
const SIGNAL_NAME_KEEP: usize = 32;

/// The signal that ended the remote command, as the node named it: escaped and bounded here, where it is read,
/// since every message about a killed command quotes it.
pub(super) fn exit_signal(channel: &ssh2::Channel) -> Option<String> {
    let name = channel.exit_signal().ok()?.exit_signal?;
    Some(shown_signal(&name))
}

fn shown_signal(name: &str) -> String {
    crate::text::cut(name, SIGNAL_NAME_KEEP)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_signal_name_from_a_node_is_escaped_and_bounded() {
        assert_eq!(super::shown_signal("KILL"), "KILL");
        let hostile = format!("\u{1b}]0;pwned\u{7}{}", "X".repeat(10_000));
        let shown = super::shown_signal(&hostile);
        assert!(!shown.chars().any(crate::text::is_dangerous), "{shown:?}");
        assert!(shown.starts_with("\\x1b]0;pwned"), "{shown:?}");
        assert_eq!(
            shown.chars().count(),
            super::SIGNAL_NAME_KEEP + 1,
            "{shown:?}"
        );
    }
}
