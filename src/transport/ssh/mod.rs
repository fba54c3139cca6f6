//! SSH transport: per node one thread, one persistent session and one streaming exec channel, with
//! bounded handshake concurrency and jittered exponential backoff. A slow node only ever blocks its own thread.

pub mod endpoint;
mod identity;
mod jump;
pub mod known;
pub mod oneshot;
mod session;
mod stamped;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use endpoint::Endpoint;
pub use session::NodeFailure;
use stream::{Ended, Exit};

use super::decode::StreamDecoder;
use super::{FailureKind, Following, MsgSender, NodeEvent, NodeSink, Transport};
use crate::agent::EXIT_NO_NVML;
use crate::inventory::{expand_home, Inventory, NodeId};
use crate::telemetry::{smi_csv, Source};

/// Backoff after a failure: from `BACKOFF_MIN`, doubling, up to `BACKOFF_MAX`, ±25 % jitter.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Exit statuses of nvidia-smi meaning "no usable driver" (9: driver not loaded, 12: NVML not found).
const SMI_NO_DRIVER: [i32; 2] = [9, 12];
/// A shell's "command not found".
const NOT_FOUND: i32 = 127;

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub handshake: Duration,
    pub first_sample: Duration,
    /// Silence after which a streaming node is considered hung and reconnected.
    pub stall: Duration,
    /// Samples closer together than this are dropped (and counted): a node streaming faster than its
    /// interval cannot flood the jump host's queue.
    pub min_sample_gap: Duration,
}

/// The session each node's worker holds right now, so an action can run a command through it
/// instead of opening a second connection.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<NodeId, ssh2::Session>>>);

impl Sessions {
    pub fn get(&self, node: NodeId) -> Option<ssh2::Session> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
    }

    fn set(&self, node: NodeId, session: Option<ssh2::Session>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match session {
            Some(s) => map.insert(node, s),
            None => map.remove(&node),
        };
    }
}

/// Removes a node's session from the registry when its connection ends.
struct Registered<'a>(&'a Sessions, NodeId);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.set(self.1, None);
    }
}

/// Everything one node's worker needs.
#[derive(Debug, Clone)]
struct NodePlan {
    node: NodeId,
    endpoint: Result<Endpoint, String>,
    /// The agent path, quoted for the remote shell.
    agent: String,
    interval_ms: u64,
    agent_command: String,
    smi_command: String,
    expected_gpus: u32,
}

pub struct SshTransport {
    /// One sample per node, then stop (snapshots); otherwise follow for ever.
    one_pass: bool,
    sessions: Sessions,
    plans: Vec<NodePlan>,
    known_hosts: Arc<known::KnownHosts>,
    timeouts: Timeouts,
    max_handshakes: usize,
}

impl Timeouts {
    /// The inventory's connection timeouts.
    pub fn from_settings(s: &crate::inventory::Settings) -> Timeouts {
        Timeouts {
            connect: s.connect_timeout,
            handshake: s.handshake_timeout,
            first_sample: s.first_sample_timeout,
            stall: (s.interval * 5).max(Duration::from_secs(10)),
            min_sample_gap: s.interval / 4,
        }
    }
}

impl SshTransport {
    /// Resolves every node's endpoint; a broken ssh config is an error before anything connects.
    pub fn new(inv: &Inventory) -> anyhow::Result<Self> {
        let config = endpoint::load_ssh_config(inv)?;
        let s = &inv.settings;
        let interval_ms = s.interval.as_millis() as u64;
        let plans = (0..inv.nodes.len())
            .map(|id| {
                let node = &inv.nodes[id];
                let agent = node.agent_path.as_deref().unwrap_or(&s.agent_path);
                let quoted = shlex::try_quote(agent)
                    .map(|q| q.into_owned())
                    .unwrap_or_else(|_| agent.replace('\0', ""));
                let mut plan = NodePlan {
                    node: id,
                    endpoint: endpoint::resolve(inv, config.as_ref(), id),
                    agent: quoted,
                    interval_ms,
                    agent_command: String::new(),
                    smi_command: String::new(),
                    expected_gpus: node.expected_gpus,
                };
                plan.commands(false);
                plan
            })
            .collect();
        Ok(SshTransport {
            one_pass: false,
            sessions: Sessions::default(),
            plans,
            known_hosts: Arc::new(known::KnownHosts::new(expand_home(&s.known_hosts))),
            timeouts: Timeouts::from_settings(s),
            max_handshakes: s.max_concurrent_handshakes,
        })
    }
}

impl SshTransport {
    /// Asks each node for one sample and stops (`agent --once`, one nvidia-smi pass): a snapshot then costs
    /// the nodes one sample each instead of a stream while the slowest node is waited for.
    pub fn one_pass(mut self) -> Self {
        self.one_pass = true;
        for plan in &mut self.plans {
            plan.commands(true);
        }
        self
    }
}

impl NodePlan {
    /// The remote commands: the agent (streaming, or `--once`), else nvidia-smi (looping, or one pass).
    fn commands(&mut self, once: bool) {
        let once_flag = if once { " --once" } else { "" };
        self.agent_command = ending_with_session(&format!(
            "{} agent{once_flag} --interval {}",
            self.agent, self.interval_ms
        ));
        let smi = smi_csv::remote_command((!once).then_some(self.interval_ms));
        let smi = shlex::try_quote(&smi).map_or(smi.clone(), |q| q.into_owned());
        self.smi_command = ending_with_session(&format!("sh -c {smi}"));
    }
}

/// Wraps a remote command (already quoted for the remote shell) so that it ends with the SSH session: without
/// a terminal, sshd leaves a command running when the client goes away, and a hung agent or nvidia-smi would
/// pile up on the node with every snapshot. The command runs in the background; a watcher reads the session's
/// stdin, which ends when the session does, and then signals the session's process group (sshd gives each
/// session its own), children included. The command's exit status is kept.
pub fn ending_with_session(command: &str) -> String {
    // A background list's stdin is /dev/null in sh, so the session's stdin goes to the watcher on fd 3; the
    // watcher's own output goes nowhere, or sshd would keep the channel open for it.
    const WATCH: &str = r#"sh -c 'exec 3<&0; "$@" 3<&- & c=$!; { cat <&3; kill -TERM 0; } >/dev/null 2>&1 & exec 3<&-; wait $c' fleetop"#;
    format!("{WATCH} {command}")
}

impl Transport for SshTransport {
    fn sessions(&self) -> Option<Sessions> {
        Some(self.sessions.clone())
    }

    fn reconnects(&self) -> bool {
        true
    }

    fn follow(&self, _inventory: &Arc<Inventory>, tx: MsgSender) -> Following {
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Gate::new(self.max_handshakes));
        for plan in &self.plans {
            let worker = Worker {
                plan: plan.clone(),
                sink: NodeSink {
                    node: plan.node,
                    tx: tx.clone(),
                },
                known_hosts: Arc::clone(&self.known_hosts),
                timeouts: self.timeouts.clone(),
                gate: Arc::clone(&gate),
                stop: Arc::clone(&stop),
                sessions: self.sessions.clone(),
                one_pass: self.one_pass,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("node-{}", plan.node))
                .stack_size(512 * 1024)
                .spawn(move || worker.run());
            if let Err(e) = spawned {
                let sink = NodeSink {
                    node: plan.node,
                    tx: tx.clone(),
                };
                sink.send(NodeEvent::Failed {
                    kind: FailureKind::Unreachable,
                    detail: format!("cannot start a worker thread: {e}"),
                });
            }
        }
        Following::new(stop)
    }
}

/// A counting semaphore bounding handshakes in flight (they cost CPU on both ends).
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Pass<'a>(&'a Gate);

impl Gate {
    fn new(n: usize) -> Self {
        Gate {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    fn enter(&self) -> Pass<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

struct Worker {
    plan: NodePlan,
    sink: NodeSink,
    known_hosts: Arc<known::KnownHosts>,
    timeouts: Timeouts,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    sessions: Sessions,
    one_pass: bool,
}

impl Worker {
    fn run(self) {
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
        let mut agent = StreamDecoder::agent(Source::Agent);
        let exit = match stream::run(
            s,
            &self.plan.agent_command,
            &mut agent,
            &self.sink,
            &self.timeouts,
        ) {
            Err(f) => return (Some(f), agent.samples),
            Ok(Ended::Stopped) => return (None, agent.samples),
            Ok(Ended::Exited(exit)) => exit,
        };
        if exit.code == EXIT_NO_NVML {
            return (
                Some(session::fail(
                    FailureKind::NoGpuDriver,
                    exit.describe("fleetop agent"),
                )),
                0,
            );
        }
        if self.one_pass && exit.code == 0 && exit.samples > 0 {
            return (None, exit.samples);
        }
        if exit.code != NOT_FOUND || exit.samples > 0 {
            return (
                Some(session::fail(
                    FailureKind::StreamEnded,
                    exit.describe("fleetop agent"),
                )),
                exit.samples,
            );
        }
        // No agent on this node: fall back to nvidia-smi (its loop mode when following) on the same session.
        self.sink.send(NodeEvent::Streaming {
            source: Source::NvidiaSmi,
            detail: "nvidia-smi (no fleetop agent on the node)".into(),
        });
        let mut smi = StreamDecoder::smi(self.plan.expected_gpus);
        match stream::run(
            s,
            &self.plan.smi_command,
            &mut smi,
            &self.sink,
            &self.timeouts,
        ) {
            Err(f) => (Some(f), smi.samples),
            Ok(Ended::Stopped) => (None, smi.samples),
            Ok(Ended::Exited(exit)) if self.one_pass && exit.code == 0 && exit.samples > 0 => {
                (None, exit.samples)
            }
            Ok(Ended::Exited(exit)) => (Some(classify_smi_exit(&exit)), exit.samples),
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
        session::fail(
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
        session::fail(
            FailureKind::NoGpuDriver,
            format!("nvidia-smi: {}", smi_csv::NO_DEVICES),
        )
    } else if SMI_NO_DRIVER.contains(&exit.code) && exit.samples == 0 {
        session::fail(FailureKind::NoGpuDriver, exit.describe("nvidia-smi"))
    } else {
        session::fail(FailureKind::StreamEnded, exit.describe("nvidia-smi"))
    }
}

/// Exponential backoff with ±25 % jitter so a fleet that lost its network does not reconnect in lockstep.
fn backoff(failures: u32, node: NodeId) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << failures.saturating_sub(1).min(5));
    let base = exp.min(BACKOFF_MAX);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let nanos = u64::from(clock) ^ u64::from(std::process::id());
    let noise = (node as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ nanos.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let jitter = (noise % 501) as f64 / 1000.0 - 0.25;
    base.mul_f64(1.0 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for node in 0..50 {
            let first = backoff(1, node);
            assert!(
                first >= Duration::from_millis(750) && first <= Duration::from_millis(1250),
                "{first:?}"
            );
            let late = backoff(20, node);
            assert!(
                late >= Duration::from_millis(22_500) && late <= Duration::from_millis(37_500),
                "{late:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|n| backoff(3, n)).collect();
        assert!(spread.len() > 10, "jitter spreads nodes apart");
    }
}
