//! A node's running stream as the shared poller keeps it: its channel, decoder and pace, and every deadline
//! (first sample, stall, nvidia-smi recheck), read until it would block.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::command::Shown;
use super::connected::{fail, NodeFailure};
use super::timeouts::Timeouts;
use crate::transport::decode::StreamDecoder;
use crate::transport::{FailureKind, NodeEvent, NodeSink};

/// How a stream handed to the poller ended, short of a failure.
#[derive(Debug)]
pub(super) enum Step {
    /// The command closed its stdout: its exit status is read on the worker's thread.
    Eof,
    Stopped,
    Recheck,
}

/// What one pass of reading a node did.
pub(super) enum Progress {
    /// Nothing more to read until its socket wakes.
    Blocked,
    /// Read as much as one pass allows; more may be waiting.
    More,
    Ended(Result<Step, NodeFailure>),
}

/// A node's running stream as the poller keeps it: the channel, the decoder, and every deadline.
pub(super) struct Following {
    pub(super) channel: ssh2::Channel,
    pub(super) decoder: StreamDecoder,
    sink: NodeSink,
    pace: Pace,
    timeouts: Timeouts,
    recheck_at: Option<Instant>,
    shown: Shown,
    // Deadlines count whole samples, not bytes: a node that sends its hello and falls silent, sends half a
    // line, or drips bytes without a newline is timed out all the same.
    samples_seen: u64,
    due: Instant,
    streaming: bool,
    /// A full-sample request that would have blocked, sent again on the next pass.
    request_pending: bool,
}

impl Following {
    /// A stream just started by `exec`: its first sample is due within `first_sample`.
    pub(super) fn new(
        channel: ssh2::Channel,
        decoder: StreamDecoder,
        sink: &NodeSink,
        t: &Timeouts,
        recheck_at: Option<Instant>,
        shown: &Shown,
    ) -> Following {
        Following {
            channel,
            samples_seen: decoder.samples,
            decoder,
            sink: sink.clone(),
            pace: Pace::new(t.min_sample_gap),
            timeouts: t.clone(),
            recheck_at,
            shown: shown.clone(),
            due: Instant::now() + t.first_sample,
            streaming: false,
            request_pending: false,
        }
    }

    /// Whether a full-sample request waits for the socket to take it.
    pub(super) fn request_pending(&self) -> bool {
        self.request_pending
    }

    /// How long the poller may wait after a wakeup for other nodes' samples, at most `most`: two fifths of
    /// the gap below which samples are dropped (a tenth of the interval), so a node's next sample cannot
    /// land in the same pass as the one that woke the poller unless the network held it back most of an
    /// interval.
    pub(super) fn coalesce(&self, most: Duration) -> Duration {
        (self.timeouts.min_sample_gap * 2 / 5).min(most)
    }

    /// The earliest moment the stream must be looked at even if its node is silent.
    pub(super) fn deadline(&self) -> Instant {
        match self.recheck_at {
            Some(at) if self.decoder.is_smi() => at.min(self.due),
            _ => self.due,
        }
    }

    /// Reads the channel until it would block, at most `reads` times, feeding the decoder.
    pub(super) fn read(&mut self, buf: &mut [u8], reads: usize) -> Progress {
        for _ in 0..reads {
            match self.channel.read(buf) {
                Ok(0) => {
                    let sink = &self.sink;
                    let mut alive = true;
                    self.decoder.finish(&mut |event| {
                        alive &= sink.send(event);
                        alive
                    });
                    return Progress::Ended(Ok(if alive { Step::Eof } else { Step::Stopped }));
                }
                Ok(n) => {
                    let (sink, pace) = (&self.sink, &mut self.pace);
                    let mut alive = true;
                    self.decoder.feed(&buf[..n], &mut |event| {
                        pace.admit(event, &mut |e| alive &= sink.send(e))
                    });
                    if !alive {
                        return Progress::Ended(Ok(Step::Stopped));
                    }
                    self.request_pending |= self.decoder.take_full_request();
                    self.send_request();
                    if self.decoder.samples > self.samples_seen {
                        self.samples_seen = self.decoder.samples;
                        self.due = Instant::now() + self.timeouts.stall;
                        // After the first sample, silence longer than a few intervals means a hung node.
                        self.streaming = true;
                    }
                    // A read that did not fill the buffer has drained the socket: libssh2 reads its transport
                    // until the socket would block before it copies the channel's data, and copies all of it
                    // that fits. Reading again would only be told so (a recv and an error built and dropped,
                    // per node per second); new bytes wake the poller. An end of stream that came with the
                    // data has no bytes to wake it, so it is read now. libssh2's `eof` says no while any
                    // stderr is queued (the worker reads that at the end), so then the next read decides.
                    if n < buf.len()
                        && self.channel.read_window().available == 0
                        && !self.channel.eof()
                    {
                        return Progress::Blocked;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Blocked,
                Err(e) => return Progress::Ended(Err(lost(&e))),
            }
        }
        Progress::More
    }

    /// Ends the stream if a deadline has passed: the nvidia-smi recheck, the first sample, or a stall.
    pub(super) fn check_deadlines(&mut self, now: Instant) -> Option<Result<Step, NodeFailure>> {
        self.send_request();
        if self.decoder.is_smi() && self.recheck_at.is_some_and(|at| now >= at) {
            return Some(Ok(Step::Recheck));
        }
        if now < self.due {
            return None;
        }
        let (what, limit) = if self.streaming {
            ("no complete sample", self.timeouts.stall)
        } else {
            ("no first sample", self.timeouts.first_sample)
        };
        Some(Err(fail(
            FailureKind::StreamEnded,
            format!(
                "{what} from `{}` for {} s",
                // The start of the command (the nvidia-smi query is long): the agent's path and flags.
                crate::text::bounded(self.shown.running(&self.decoder), 80),
                limit.as_secs_f64()
            ),
        )))
    }

    /// Asks the agent for a full sample, if asked to; a failed request costs nothing (the agent sends a
    /// full sample every so often anyway), one that would block is sent on the next pass.
    fn send_request(&mut self) {
        if !self.request_pending {
            return;
        }
        match self.channel.write(b"\n") {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => self.request_pending = false,
        }
    }
}

pub(super) fn lost(e: &dyn std::fmt::Display) -> NodeFailure {
    fail(
        FailureKind::Unreachable,
        format!("SSH connection lost: {e}"),
    )
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
