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
/// session's timeout is left as it is: telemetry may stream through the same session.
pub(crate) fn run_on(
    s: &ssh2::Session,
    command: &str,
    limit: Duration,
) -> Result<Completed, ssh2::Error> {
    let deadline = Instant::now() + limit;
    let mut channel = s.channel_session()?;
    channel.exec(command)?;
    let mut stdout = Vec::new();
    let mut buf = [0u8; 8192];
    let ending = loop {
        match channel.read(&mut buf) {
            Ok(0) => {
                break match channel.wait_close() {
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
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if Instant::now() >= deadline {
                    break Ending::TimedOut(limit);
                }
            }
            Err(e) => break Ending::Dropped(e.to_string()),
        }
    };
    let mut stderr = Vec::new();
    if !matches!(ending, Ending::TimedOut(_)) {
        let _ = channel.stderr().take(OUTPUT_KEEP).read_to_end(&mut stderr);
    }
    Ok(Completed {
        ending,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
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
