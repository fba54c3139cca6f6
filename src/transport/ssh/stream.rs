//! Runs the remote command on one long-lived exec channel and decodes its output as it streams.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ssh2::Session;

use super::command::Shown;
use super::connected::{fail, NodeFailure};
use super::oneshot::exit_signal;
use super::timeouts::Timeouts;
use crate::transport::decode::StreamDecoder;
use crate::transport::{FailureKind, NodeEvent, NodeSink};

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
/// stream also ends at `recheck_at`, when given (closing the channel ends the remote command).
pub fn run(
    session: &Session,
    command: &str,
    decoder: &mut StreamDecoder,
    sink: &NodeSink,
    t: &Timeouts,
    recheck_at: Option<Instant>,
    shown: &Shown,
) -> Result<Ended, NodeFailure> {
    let lost = |e: &dyn std::fmt::Display| {
        fail(
            FailureKind::Unreachable,
            format!("SSH connection lost: {e}"),
        )
    };
    session.set_timeout(ms(t.first_sample));
    let mut channel = session.channel_session().map_err(|e| lost(&e))?;
    channel.exec(command).map_err(|e| lost(&e))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut streaming = false;
    // Deadlines count whole samples, not bytes: a node that sends its hello and falls silent, sends half a
    // line, or drips bytes without a newline is timed out all the same.
    let mut samples_seen = decoder.samples;
    let mut due = Instant::now() + t.first_sample;
    let mut pace = Pace::new(t.min_sample_gap);
    loop {
        let read = channel.read(&mut buf);
        match read {
            Ok(0) => {
                let mut alive = true;
                decoder.finish(&mut |event| {
                    alive &= sink.send(event);
                    alive
                });
                if !alive {
                    return Ok(Ended::Stopped);
                }
                break;
            }
            Ok(n) => {
                let mut alive = true;
                decoder.feed(&buf[..n], &mut |event| {
                    pace.admit(event, &mut |e| alive &= sink.send(e))
                });
                if !alive {
                    return Ok(Ended::Stopped);
                }
                if decoder.take_full_request() {
                    // A failed request costs nothing: the agent sends a full sample every so often anyway.
                    let _ = channel.write_all(b"\n").and_then(|()| channel.flush());
                }
                if decoder.samples > samples_seen {
                    samples_seen = decoder.samples;
                    due = Instant::now() + t.stall;
                    if !streaming {
                        // After the first sample, silence longer than a few intervals means a hung node.
                        session.set_timeout(ms(t.stall));
                        streaming = true;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(lost(&e)),
        }
        if decoder.is_smi() && recheck_at.is_some_and(|at| Instant::now() >= at) {
            let _ = channel.close();
            return Ok(Ended::Recheck);
        }
        if Instant::now() >= due {
            let (what, limit) = if streaming {
                ("no complete sample", t.stall)
            } else {
                ("no first sample", t.first_sample)
            };
            return Err(fail(
                FailureKind::StreamEnded,
                format!(
                    "{what} from `{}` for {} s",
                    short(shown.running(decoder)),
                    limit.as_secs_f64()
                ),
            ));
        }
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

/// Keeps a node's samples at most one per `gap`: extra ones are dropped, and the count is reported with
/// the next sample that passes.
struct Pace {
    gap: Duration,
    last: Option<Instant>,
    dropped: u64,
}

impl Pace {
    fn new(gap: Duration) -> Self {
        Pace {
            gap,
            last: None,
            dropped: 0,
        }
    }

    /// Sends `event` on, unless it is a sample too soon after the last one (then false); a note about dropped
    /// samples goes ahead of the next sample that passes.
    fn admit(&mut self, event: NodeEvent, send: &mut impl FnMut(NodeEvent)) -> bool {
        if !event.is_sample() {
            send(event);
            return true;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < self.gap)
        {
            self.dropped += 1;
            return false;
        }
        self.last = Some(now);
        if self.dropped > 0 {
            send(NodeEvent::BadLine(format!(
                "{} sample(s) dropped: the node sends faster than its interval",
                std::mem::take(&mut self.dropped)
            )));
        }
        send(event);
        true
    }
}

/// The start of a command, for messages (the nvidia-smi query is long); long enough to hold the agent's
/// path and flags.
fn short(command: &str) -> String {
    let mut s: String = command.chars().take(80).collect();
    if command.chars().count() > 80 {
        s.push('…');
    }
    s
}
