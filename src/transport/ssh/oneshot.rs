//! One command over SSH, for actions: connect with the same rules as telemetry (or reuse the session
//! telemetry holds), run, collect the result.

use std::io::Read;
use std::time::Duration;

use super::endpoint::Endpoint;
use super::known::KnownHosts;
use super::session::{self, NodeFailure};
use super::Timeouts;

/// Most output kept from an action's command.
const OUTPUT_KEEP: u64 = 64 * 1024;

/// What a remote command did. `code` is `None` when the connection dropped before an exit status came
/// back, which is what a successful `systemctl reboot` looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

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
    s.set_timeout(u32::try_from(limit.as_millis()).unwrap_or(u32::MAX));
    run_on(s, command).map_err(|e| {
        session::fail(
            crate::transport::FailureKind::Unreachable,
            format!("SSH: {e}"),
        )
    })
}

/// Runs `command` on a new channel of an existing session, leaving the session's timeout as it is
/// (it may be the one telemetry streams through).
pub fn run_on(s: &ssh2::Session, command: &str) -> Result<Completed, ssh2::Error> {
    let mut channel = s.channel_session()?;
    channel.exec(command)?;
    let mut stdout = Vec::new();
    let read = (&mut channel).take(OUTPUT_KEEP).read_to_end(&mut stdout);
    let mut stderr = Vec::new();
    let _ = channel.stderr().take(OUTPUT_KEEP).read_to_end(&mut stderr);
    let closed = channel.wait_close().is_ok();
    let code = if read.is_ok() && closed {
        channel.exit_status().ok()
    } else {
        None
    };
    Ok(Completed {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
