//! Runs the remote command on one long-lived exec channel and decodes its output as it streams.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ssh2::Session;

use super::command::Shown;
use super::connected::NodeFailure;
use super::following::{lost, Following, Step};
use super::oneshot::exit_signal;
use super::poller;
use super::timeouts::Timeouts;
use crate::transport::decode::StreamDecoder;
use crate::transport::NodeSink;

/// Most stderr kept from a remote command; enough for an error message.
const STDERR_KEEP: usize = 4096;

/// How a remote command ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The receiver went away: fleetop is shutting down.
    Stopped,
    /// An nvidia-smi stream ran until `recheck_at`: the node may have an agent now.
    Recheck,
    Exited(Exit),
}

#[derive(Debug)]
pub(crate) struct Exit {
    pub code: i32,
    pub signal: Option<String>,
    pub stderr: String,
    pub samples: u64,
    pub last_bad: Option<String>,
}

impl Exit {
    /// One line for the operator: the exit status and the last thing the command said on stderr
    /// (login noise such as motd or "Could not chdir to home directory" comes first, the error last).
    pub(crate) fn describe(&self, what: &str) -> String {
        let how = match (&self.signal, signal_name(self.code)) {
            (Some(sig), _) => format!("{what} was killed by signal {sig}"),
            // The remote shell reports a child killed by signal N as status 128 + N.
            (None, Some(sig)) => format!(
                "{what} exited with status {} (killed by signal {sig})",
                self.code
            ),
            (None, None) => format!("{what} exited with status {}", self.code),
        };
        let said = self
            .stderr
            .lines()
            .rev()
            .filter(|l| !is_login_noise(l))
            .chain(self.last_bad.as_deref())
            .map(str::trim)
            .find(|l| !l.is_empty());
        match said {
            // A node's own words: bounded, and escaped so they cannot drive the operator's terminal.
            Some(text) => format!(
                "{how}: {}",
                crate::text::escape(&text.chars().take(200).collect::<String>())
            ),
            None => how,
        }
    }
}

/// What sshd itself prints on a session's stderr, never the command's own reason.
fn is_login_noise(line: &str) -> bool {
    line.starts_with("Could not chdir to home directory")
}

/// The signal behind a shell exit status of 128 + N, for the signals a crashed or killed agent shows.
fn signal_name(code: i32) -> Option<&'static str> {
    Some(match code - 128 {
        1 => "HUP",
        2 => "INT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        11 => "SEGV",
        13 => "PIPE",
        15 => "TERM",
        _ => return None,
    })
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Runs `command`, feeding stdout to `decoder` until it ends, stalls, or the sink closes; an nvidia-smi
/// stream also ends at `recheck_at`, when given (closing the channel ends the remote command). While it
/// streams the session is non-blocking and the shared poller reads it; this thread blocks meanwhile.
pub fn run(
    session: &Session,
    command: &str,
    decoder: &mut StreamDecoder,
    sink: &NodeSink,
    t: &Timeouts,
    recheck_at: Option<Instant>,
    shown: &Shown,
) -> Result<Ended, NodeFailure> {
    session.set_timeout(ms(t.first_sample));
    let mut channel = session.channel_session().map_err(|e| lost(&e))?;
    channel.exec(command).map_err(|e| lost(&e))?;
    // The poller owns the decoder while it streams; it comes back with the ending.
    let placeholder = StreamDecoder::smi(0);
    let following = Following::new(
        channel,
        std::mem::replace(decoder, placeholder),
        sink,
        t,
        recheck_at,
        shown,
    );
    session.set_blocking(false);
    let handed = poller::follow(following, session.as_raw_fd());
    session.set_blocking(true);
    session.set_timeout(ms(t.stall));
    let (following, step) = handed?;
    let Following {
        mut channel,
        decoder: streamed,
        ..
    } = following;
    *decoder = streamed;
    match step? {
        Step::Stopped => return Ok(Ended::Stopped),
        Step::Recheck => {
            let _ = channel.close();
            return Ok(Ended::Recheck);
        }
        Step::Eof => {}
    }
    let mut stderr = Vec::new();
    let _ = channel
        .stderr()
        .take(STDERR_KEEP as u64)
        .read_to_end(&mut stderr);
    let _ = channel.wait_close();
    let signal = exit_signal(&channel);
    Ok(Ended::Exited(Exit {
        // The command is the session's process (`command::ending_with_session` execs it): killed by a signal,
        // sshd sends that signal and no status, which libssh2 reads as 0, and a killed command is no success.
        code: if signal.is_some() {
            -1
        } else {
            channel.exit_status().unwrap_or(-1)
        },
        signal,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        samples: decoder.samples,
        last_bad: decoder.last_bad.clone(),
    }))
}
