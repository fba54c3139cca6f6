//! Runs planned commands: locally without a shell, over SSH quoted for the remote shell, or simulated (`--demo`).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ssh2_config::SshConfig;

use super::plan::{Invocation, Place, Step};
use super::request::ActionKind;
use crate::inventory::NodeId;
use crate::inventory::{expand_home, Inventory};
use crate::transport::ssh::endpoint;
use crate::transport::ssh::known::KnownHosts;
use crate::transport::ssh::oneshot;
use crate::transport::ssh::Timeouts;
use crate::transport::{Completed, Ending, NodeCommands};

/// Output kept per command for the audit log and the report.
const KEEP: usize = 2000;

/// How one command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    pub ok: bool,
    pub exit_status: Option<i32>,
    /// The tail of stdout and stderr, or why it could not run.
    pub detail: String,
    pub duration: Duration,
}

pub enum Executor {
    Real {
        ssh_config: Option<Box<SshConfig>>,
        known_hosts: std::sync::Arc<KnownHosts>,
        timeouts: Timeouts,
        limit: Duration,
        /// Live telemetry sessions (TUI): a node's command runs through its session when it has one.
        sessions: Option<std::sync::Arc<dyn NodeCommands>>,
    },
    /// Practice mode: nothing runs; every command succeeds, and the drains it pretends to do are remembered
    /// so the guards see them.
    Simulated(Simulated),
}

/// The simulated fleet's drain states (`--demo`): every node in service until a practice drain; and the GPUs a
/// practice reset cleared (`None`: all of the node's).
#[derive(Debug, Default)]
pub struct Simulated {
    drained: std::sync::Mutex<std::collections::HashSet<NodeId>>,
    reset: std::sync::Mutex<std::collections::HashSet<(NodeId, Option<u32>)>>,
}

impl Simulated {
    /// Whether a practice drain took `node` out of service.
    pub(crate) fn is_drained(&self, node: NodeId) -> bool {
        self.drained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }

    fn record(&self, node: NodeId, kind: ActionKind, gpu: Option<u32>) {
        if kind == ActionKind::Reset {
            self.reset
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((node, gpu));
            return;
        }
        let mut drained = self.drained.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            ActionKind::Drain => drained.insert(node),
            ActionKind::Undrain => drained.remove(&node),
            ActionKind::Reboot | ActionKind::Reset => false,
        };
    }

    /// Whether a practice reset covered `gpu` of `node`.
    pub(crate) fn was_reset(&self, node: NodeId, gpu: u32) -> bool {
        let reset = self.reset.lock().unwrap_or_else(|p| p.into_inner());
        reset.contains(&(node, None)) || reset.contains(&(node, Some(gpu)))
    }
}

fn tail(text: &str) -> String {
    let t = text.trim();
    let start = t.char_indices().rev().nth(KEEP).map_or(0, |(i, _)| i);
    t[start..].to_string()
}

/// How nodes are reached over SSH, as telemetry reaches them: the ssh config, known_hosts and timeouts the
/// inventory names. Actions and deploy both start from it.
pub(crate) struct Reach {
    pub ssh_config: Option<Box<SshConfig>>,
    pub known_hosts: std::sync::Arc<KnownHosts>,
    pub timeouts: Timeouts,
}

impl Reach {
    pub(crate) fn new(inv: &Inventory) -> Result<Reach, String> {
        Ok(Reach {
            ssh_config: endpoint::load_ssh_config(inv)
                .map_err(|e| e.to_string())?
                .map(Box::new),
            known_hosts: std::sync::Arc::new(KnownHosts::new(expand_home(
                &inv.settings.known_hosts,
            ))),
            timeouts: Timeouts::from_settings(&inv.settings),
        })
    }
}

impl Executor {
    pub fn real(inv: &Inventory) -> Result<Executor, String> {
        let reach = Reach::new(inv)?;
        Ok(Executor::Real {
            ssh_config: reach.ssh_config,
            known_hosts: reach.known_hosts,
            timeouts: reach.timeouts,
            limit: inv.actions.drain_timeout,
            sessions: None,
        })
    }

    /// Runs node commands through these live sessions where a node has one.
    pub fn with_sessions(mut self, live: Option<std::sync::Arc<dyn NodeCommands>>) -> Executor {
        if let Executor::Real { sessions, .. } = &mut self {
            *sessions = live;
        }
        self
    }

    /// A practice executor for `--demo`.
    pub fn simulated() -> Executor {
        Executor::Simulated(Simulated::default())
    }

    /// Runs one step of a `kind` action; a reboot's dropped SSH session counts as accepted (the runner then
    /// waits to see the node down). `gpu`: a reset's one GPU, for the demo fleet to remember.
    pub fn run(&self, inv: &Inventory, step: &Step, kind: ActionKind, gpu: Option<u32>) -> Ran {
        let started = Instant::now();
        let expect_disconnect = kind == ActionKind::Reboot;
        let step_node = step.node;
        let step = &step.invocation;
        let (ok, exit_status, detail) = match self {
            Executor::Simulated(sim) => {
                sim.record(step_node, kind, gpu);
                (
                    true,
                    Some(0),
                    "simulated (--demo): nothing was run".to_string(),
                )
            }
            Executor::Real {
                ssh_config,
                known_hosts,
                timeouts,
                limit,
                sessions,
            } => match &step.place {
                Place::Local => run_local(step, *limit),
                Place::Redfish(settings) => {
                    super::redfish::reset(settings, &step.argv.to_vec(), *limit)
                }
                place => {
                    let ep = match place {
                        Place::Node(id) => endpoint::resolve(inv, ssh_config.as_deref(), *id),
                        Place::Controller(host) => {
                            Ok(endpoint::resolve_host(inv, ssh_config.as_deref(), host))
                        }
                        Place::Local | Place::Redfish(_) => unreachable!("handled above"),
                    };
                    // The node's telemetry session, when there is one: no second handshake.
                    let reused = match (place, sessions) {
                        (Place::Node(id), Some(live)) => live.run(*id, &step.quoted(), *limit),
                        _ => None,
                    };
                    let done = match reused {
                        Some(done) => Ok(done),
                        None => ep.map_err(|e| e.to_string()).and_then(|ep| {
                            oneshot::run(&ep, known_hosts, timeouts, &step.quoted(), *limit)
                                .map_err(|f| f.detail)
                        }),
                    };
                    match done {
                        Ok(done) => judge(done, expect_disconnect),
                        Err(e) => (false, None, e),
                    }
                }
            },
        };
        Ran {
            ok,
            exit_status,
            detail,
            duration: started.elapsed(),
        }
    }

    /// Runs `command` (quoted for the node's shell) on `node` the way actions reach it, through a new SSH
    /// connection, for at most `limit`; each stream is kept to `oneshot`'s bound. Read-only work (a repair's
    /// validation, an RMA bundle's evidence) runs here; the practice fleet runs nothing.
    pub(crate) fn on_node(
        &self,
        inv: &Inventory,
        node: NodeId,
        command: &str,
        limit: Duration,
    ) -> Result<Completed, String> {
        let Executor::Real {
            ssh_config,
            known_hosts,
            timeouts,
            ..
        } = self
        else {
            return Err("simulated fleet: nothing runs".into());
        };
        let ep = endpoint::resolve(inv, ssh_config.as_deref(), node).map_err(|e| e.to_string())?;
        oneshot::run(&ep, known_hosts, timeouts, command, limit).map_err(|f| f.detail)
    }

    /// Runs a read-only query and returns its stdout, or why it failed.
    pub fn capture(&self, inv: &Inventory, step: &Invocation) -> Result<String, String> {
        match self {
            Executor::Simulated(_) => Err("simulated fleet: no backend to ask".into()),
            Executor::Real {
                ssh_config,
                known_hosts,
                timeouts,
                limit,
                ..
            } => match &step.place {
                Place::Local => {
                    let out = Command::new(step.argv.program())
                        .args(step.argv.args())
                        .stdin(Stdio::null())
                        .process_group(0)
                        .output()
                        .map_err(|e| format!("{}: {e}", step.argv.program()))?;
                    if out.status.success() {
                        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
                    } else {
                        Err(format!(
                            "{} failed: {}",
                            step.argv.program(),
                            tail(&String::from_utf8_lossy(&out.stderr))
                        ))
                    }
                }
                Place::Controller(host) => {
                    let ep = endpoint::resolve_host(inv, ssh_config.as_deref(), host);
                    let done = oneshot::run(&ep, known_hosts, timeouts, &step.quoted(), *limit)
                        .map_err(|f| f.detail)?;
                    match done.ending {
                        Ending::Exited(0) => Ok(done.stdout),
                        _ => Err(format!(
                            "{} on {host} failed: {}",
                            step.argv.program(),
                            tail(&done.stderr)
                        )),
                    }
                }
                Place::Node(_) | Place::Redfish(_) => {
                    Err("queries run on the controller or locally".into())
                }
            },
        }
    }
}

/// Success only when the node says so: exit 0, or, for a reboot, a connection dropped after the command was
/// accepted. A timeout is never success: the command may still be running, or may never have started.
fn judge(done: Completed, expect_disconnect: bool) -> (bool, Option<i32>, String) {
    let output = tail(&format!("{}{}", done.stdout, done.stderr));
    match done.ending {
        Ending::Exited(code) => (code == 0, Some(code), output),
        Ending::Dropped(_) | Ending::Signalled(_) if expect_disconnect => (
            true,
            None,
            "connection closed by the node after it accepted the command (rebooting)".into(),
        ),
        Ending::Dropped(why) => (
            false,
            None,
            format!("connection lost before an exit status ({why}): {output}"),
        ),
        Ending::Signalled(signal) => (
            false,
            None,
            format!("killed by signal {signal}: {output}"),
        ),
        Ending::TimedOut(limit) => (
            false,
            None,
            format!(
                "no exit status within {} s: the command may still be running; check the node. {output}",
                limit.as_secs()
            ),
        ),
    }
}

/// Runs argv without a shell, killing it after `limit`.
fn run_local(step: &Invocation, limit: Duration) -> (bool, Option<i32>, String) {
    let mut cmd = Command::new(step.argv.program());
    // Its own process group: the terminal's Ctrl-C (SIGINT to the foreground group) stops fleetop after the
    // step, and must not kill an scontrol or kubectl halfway through it.
    cmd.args(step.argv.args())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, from) in &step.env {
        match std::env::var_os(from) {
            Some(v) => cmd.env(name, v),
            None => {
                return (
                    false,
                    None,
                    format!("${from} is not set (needed for {name})"),
                )
            }
        };
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                false,
                None,
                format!("cannot run {}: {e}", step.argv.program()),
            )
        }
    };
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.join().unwrap_or_default()),
        String::from_utf8_lossy(&err.join().unwrap_or_default())
    );
    match status {
        Some(s) => match std::os::unix::process::ExitStatusExt::signal(&s) {
            Some(signal) => (
                false,
                None,
                format!("killed by signal {signal}: {}", tail(&text)),
            ),
            None => (s.success(), s.code(), tail(&text)),
        },
        None => (
            false,
            None,
            format!(
                "killed after the {} s timeout; {}",
                limit.as_secs(),
                tail(&text)
            ),
        ),
    }
}
