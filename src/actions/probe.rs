//! A fresh look at nodes, taken now over their own connection (one pass of the telemetry transport, as
//! `snapshot` makes it), and the one rule for "the node answers" that the repair workflow waits on. The runner
//! judges on the same looks: a reboot went down when the node is not up at all; a reset took when the node is up
//! and its GPUs answer cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exec::{Executor, Ran, Simulated};
use crate::fleet::view::{NodeView, Pending};
use crate::fleet::NodeState;
use crate::inventory::{Inventory, NodeId, RebootBackend};
use crate::telemetry::NodeSample;
use crate::transport::ssh::SshTransport;
use crate::transport::Transport;

/// How often a node asked to reboot is looked at until it is seen down: a quick reboot must not fall between
/// two looks.
pub(crate) const REBOOT_LOOK: Duration = Duration::from_secs(1);

/// What one look at a node saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Its data is up, whatever answered: see [`answering`].
    pub answering: bool,
    /// Up, whatever answered (agent or nvidia-smi): a node that is not went down.
    pub up: bool,
    /// The node's state, or its failure in the transport's words, for messages.
    pub said: String,
    /// The sample it answered with.
    pub sample: Option<NodeSample>,
}

/// The one rule for "the node answers": its data is up, with a fresh sample from whatever answered (agent,
/// nvidia-smi or the demo's simulated agent), whatever its operations state (a drained node answers too). The
/// repair workflow feeds it to `fleet::restart::judge_return` for "went down" and "came back".
pub fn answering(view: &NodeView) -> bool {
    view.data_state == NodeState::Up
}

/// The longest one look may take: connect, handshake and first sample, at most a minute.
pub(crate) fn look_limit(inv: &Inventory) -> Duration {
    let s = &inv.settings;
    (s.connect_timeout + s.handshake_timeout + s.first_sample_timeout).min(Duration::from_secs(60))
}

/// One pass over every node of `only` through `transport`; a look per node, in order.
pub(crate) fn look_with(
    only: Arc<Inventory>,
    transport: &dyn Transport,
) -> Result<Vec<Look>, String> {
    let runtime = crate::runtime::runtime().ok_or("cannot start the runtime for node probes")?;
    let limit = look_limit(&only);
    let started = Instant::now();
    let state = runtime.block_on(crate::snapshot::collect(
        Arc::clone(&only),
        transport,
        limit,
    ));
    let pending = Pending::TimedOut { limit, started };
    Ok((0..only.nodes.len())
        .map(|k| {
            let view = state.node_view(k, Instant::now(), pending);
            Look {
                answering: answering(&view),
                up: view.data_state == NodeState::Up,
                said: view
                    .error
                    .clone()
                    .unwrap_or_else(|| view.state.as_str().to_string()),
                sample: state.nodes()[k].sample.clone(),
            }
        })
        .collect())
}

impl Executor {
    /// A fresh look at `nodes`, taken now: over SSH, the command the telemetry runs, once (`agent --once`);
    /// in the demo fleet, the simulated node as it is now (with the practice drains and resets it had).
    pub fn look(&self, inv: &Inventory, nodes: &[NodeId]) -> Result<Vec<Look>, String> {
        match self {
            Executor::Simulated(sim) => Ok(nodes.iter().map(|&n| simulated(sim, inv, n)).collect()),
            Executor::Real { .. } => {
                let only = Arc::new(inv.only(nodes));
                let transport = SshTransport::new(&only)
                    .map_err(|e| e.to_string())?
                    .one_pass();
                look_with(only, &transport)
            }
        }
    }
}

/// The simulated node as it is now: a practice drain ended its processes, a practice reset cleared its GPUs'
/// errors and recovery action.
fn simulated(sim: &Simulated, inv: &Inventory, node: NodeId) -> Look {
    use crate::transport::sim::model;
    if model::role(inv, node) == model::Role::Unreachable {
        return Look {
            answering: false,
            up: false,
            said: "unreachable (simulated)".into(),
            sample: None,
        };
    }
    let t_ms = crate::telemetry::unix_ms();
    let tick = t_ms / (inv.settings.interval.as_millis().max(1) as u64);
    let mut sample = model::sample(inv, crate::transport::sim::DEMO_SEED, node, tick, t_ms);
    let drained = sim.is_drained(node);
    for gpu in &mut sample.gpus {
        if drained {
            gpu.processes = Some(Vec::new());
            gpu.util_pct = Some(0);
        }
        if sim.was_reset(node, gpu.index) {
            gpu.errors.clear();
            gpu.recovery_action = gpu.recovery_action.map(|_| 0);
        }
    }
    Look {
        answering: true,
        up: true,
        said: "up (simulated)".into(),
        sample: Some(sample),
    }
}

/// Whether a reboot's success waits for the node to be seen down: a reboot the node itself was asked for over
/// SSH, whose dropped connection alone proves nothing (the BMC backends answer for themselves; Slurm reboots
/// when the node is idle). The repair workflow counts such a reboot as already seen down.
pub(crate) fn reboot_confirms_down(inv: &Inventory, node: NodeId) -> bool {
    *inv.reboot_backend(node) == RebootBackend::Ssh
}

/// A reboot the node accepted is ok only once the node is seen down within `[reboot] deadline_s`; else a
/// failure that says what the node last answered.
pub(crate) fn confirm_down(
    inv: &Inventory,
    node: NodeId,
    exec: &Executor,
    mut ran: Ran,
    accepted: &mut dyn FnMut(&str),
) -> Ran {
    if matches!(exec, Executor::Simulated(_)) {
        return ran;
    }
    let deadline = inv.actions.reboot_deadline;
    accepted(&format!(
        "accepted ({}); waiting up to {} for the node to go down",
        ran.detail.trim(),
        humantime::format_duration(deadline)
    ));
    let started = Instant::now();
    let mut last: String;
    loop {
        match exec.look(inv, &[node]) {
            Ok(looks) => match looks.into_iter().next() {
                // Not up at all: a node without the agent still answers through nvidia-smi.
                Some(look) if !look.up => {
                    ran.detail = format!("went down ({}) after the reboot was accepted", look.said);
                    break;
                }
                Some(look) => last = format!("still answering ({})", look.said),
                None => last = "no answer".into(),
            },
            Err(e) => last = e,
        }
        if started.elapsed() >= deadline {
            ran.ok = false;
            ran.detail = format!(
                "the reboot was accepted but the node was not seen down within {}: {last}",
                humantime::format_duration(deadline)
            );
            break;
        }
        std::thread::sleep(REBOOT_LOOK.min(deadline.saturating_sub(started.elapsed())));
    }
    ran.duration += started.elapsed();
    ran
}
