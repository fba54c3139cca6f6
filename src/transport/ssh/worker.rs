//! One node's worker thread: connect through the handshake gate, run the agent (else nvidia-smi, chosen on
//! the node) on one streaming channel, report what happened, back off, try again, until told to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::backoff;
use super::command::NodePlan;
use super::connected::{fail, NodeFailure};
use super::endpoint::Endpoint;
use super::gate::Gate;
use super::sessions::Sessions;
use super::stream::{self, Ended, Exit};
use super::timeouts::Timeouts;
use super::{known, session};
use crate::inventory::NodeId;
use crate::telemetry::wire::EXIT_NO_NVML;
use crate::telemetry::{smi_csv, Source};
use crate::transport::decode::StreamDecoder;
use crate::transport::{FailureKind, NodeEvent, NodeSink};

/// Exit statuses of nvidia-smi meaning "no usable driver" (9: driver not loaded, 12: NVML not found).
const SMI_NO_DRIVER: [i32; 2] = [9, 12];
/// A shell's "command not found".
const NOT_FOUND: i32 = 127;

/// How following a node on a session ended: for good (the failure, `None` when stopping, and the samples
/// it gave), or for an agent recheck on the same session.
enum Followed {
    Ended(Option<NodeFailure>, u64),
    Recheck(u64),
}

/// Removes a node's session from the registry when its connection ends.
struct Registered<'a>(&'a Sessions, NodeId);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.set(self.1, None);
    }
}

pub(super) struct Worker {
    pub(super) plan: NodePlan,
    pub(super) sink: NodeSink,
    pub(super) known_hosts: Arc<known::KnownHosts>,
    pub(super) timeouts: Timeouts,
    pub(super) gate: Arc<Gate>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) sessions: Sessions,
    pub(super) one_pass: bool,
}

impl Worker {
    pub(super) fn run(self) {
        let endpoint = match &self.plan.endpoint {
            Ok(e) => e.clone(),
            Err(why) => {
                self.sink.send(NodeEvent::Failed {
                    kind: FailureKind::Unreachable,
                    detail: why.clone(),
                });
                return;
            }
        };
        let mut failures: u32 = 0;
        while !self.stop.load(Ordering::Relaxed) {
            if !self.sink.send(NodeEvent::Connecting) {
                return;
            }
            let (outcome, samples) = self.session(&endpoint);
            match outcome {
                None => return,
                Some(failure) => {
                    if !self.sink.send(NodeEvent::Failed {
                        kind: failure.kind,
                        detail: failure.detail,
                    }) {
                        return;
                    }
                }
            }
            failures = if samples > 0 {
                1
            } else {
                failures.saturating_add(1)
            };
            self.sleep(backoff(failures, self.plan.node));
        }
    }

    /// One connection: returns the failure that ended it (`None` when stopping) and the samples it gave.
    fn session(&self, endpoint: &Endpoint) -> (Option<NodeFailure>, u64) {
        let connected = {
            let _pass = self.gate.enter();
            session::connect(endpoint, &self.known_hosts, &self.timeouts)
        };
        let connected = match connected {
            Ok(c) => c,
            Err(f) => return (Some(f), 0),
        };
        let s = &connected.session;
        self.sessions.set(self.plan.node, Some(s.clone()));
        let _registered = Registered(&self.sessions, self.plan.node);
        let mut samples = 0;
        loop {
            match self.follow(s) {
                Followed::Recheck(n) => samples += n,
                Followed::Ended(outcome, n) => return (outcome, samples + n),
            }
        }
    }

    /// Runs the node's command on the session until it ends; an nvidia-smi stream ends every
    /// `agent_recheck` when following, so the node is asked again whether it has an agent.
    fn follow(&self, s: &ssh2::Session) -> Followed {
        let recheck_at = (!self.one_pass).then(|| Instant::now() + self.timeouts.agent_recheck);
        let mut first = StreamDecoder::agent_or_smi(self.plan.expected_gpus);
        let exit = match stream::run(
            s,
            &self.plan.agent_or_smi_command,
            &mut first,
            &self.sink,
            &self.timeouts,
            recheck_at,
            &self.plan.shown,
        ) {
            Err(f) => return Followed::Ended(Some(f), first.samples),
            Ok(Ended::Stopped) => return Followed::Ended(None, first.samples),
            Ok(Ended::Recheck) => return Followed::Recheck(first.samples),
            Ok(Ended::Exited(exit)) => exit,
        };
        if first.is_smi() {
            return self.smi_ended(exit);
        }
        if exit.code == EXIT_NO_NVML {
            return Followed::Ended(
                Some(fail(
                    FailureKind::NoGpuDriver,
                    exit.describe("fleetop agent"),
                )),
                0,
            );
        }
        if self.one_pass && exit.code == 0 && exit.samples > 0 {
            return Followed::Ended(None, exit.samples);
        }
        if exit.code != NOT_FOUND || exit.samples > 0 {
            return Followed::Ended(
                Some(fail(
                    FailureKind::StreamEnded,
                    exit.describe("fleetop agent"),
                )),
                exit.samples,
            );
        }
        // An agent the shell found but could not run: nvidia-smi (its loop mode when following) on the same
        // session.
        self.sink.send(NodeEvent::Streaming {
            source: Source::NvidiaSmi,
            detail: "nvidia-smi (the fleetop agent on the node cannot run)".into(),
            hello: None,
        });
        let mut smi = StreamDecoder::smi(self.plan.expected_gpus);
        match stream::run(
            s,
            &self.plan.smi_command,
            &mut smi,
            &self.sink,
            &self.timeouts,
            recheck_at,
            &self.plan.shown,
        ) {
            Err(f) => Followed::Ended(Some(f), smi.samples),
            Ok(Ended::Stopped) => Followed::Ended(None, smi.samples),
            Ok(Ended::Recheck) => Followed::Recheck(smi.samples),
            Ok(Ended::Exited(exit)) => self.smi_ended(exit),
        }
    }

    /// How an nvidia-smi run ended: a finished one-pass run is done, anything else is a failure.
    fn smi_ended(&self, exit: Exit) -> Followed {
        if self.one_pass && exit.code == 0 && exit.samples > 0 {
            Followed::Ended(None, exit.samples)
        } else {
            let samples = exit.samples;
            Followed::Ended(Some(classify_smi_exit(&exit)), samples)
        }
    }

    /// Sleeps in short steps so a stop request is honoured promptly.
    fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

fn classify_smi_exit(exit: &Exit) -> NodeFailure {
    if exit.code == NOT_FOUND && exit.samples == 0 {
        fail(
            FailureKind::NoGpuDriver,
            "neither the fleetop agent nor nvidia-smi is installed",
        )
    } else if exit.samples == 0
        && exit
            .last_bad
            .as_deref()
            .is_some_and(|l| l.contains(smi_csv::NO_DEVICES))
    {
        // A verdict on the node's GPUs or driver, not on its reachability.
        fail(
            FailureKind::NoGpuDriver,
            format!("nvidia-smi: {}", smi_csv::NO_DEVICES),
        )
    } else if SMI_NO_DRIVER.contains(&exit.code) && exit.samples == 0 {
        fail(FailureKind::NoGpuDriver, exit.describe("nvidia-smi"))
    } else {
        fail(FailureKind::StreamEnded, exit.describe("nvidia-smi"))
    }
}
