//! `SshTransport`: resolves every node's endpoint and command, then starts one worker thread per node.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::command::NodePlan;
use super::endpoint;
use super::gate::Gate;
use super::known;
use super::sessions::Sessions;
use super::timeouts::Timeouts;
use super::worker::Worker;
use crate::inventory::{expand_home, Inventory};
use crate::transport::{
    FailureKind, Following, MsgSender, NodeCommands, NodeEvent, NodeSink, Transport,
};

pub struct SshTransport {
    /// One sample per node, then stop (snapshots); otherwise follow for ever.
    one_pass: bool,
    sessions: Sessions,
    plans: Vec<NodePlan>,
    known_hosts: Arc<known::KnownHosts>,
    timeouts: Timeouts,
    max_handshakes: usize,
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
                    agent_or_smi_command: String::new(),
                    smi_command: String::new(),
                    shown: Default::default(),
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
    pub(crate) fn one_pass(mut self) -> Self {
        self.one_pass = true;
        for plan in &mut self.plans {
            plan.commands(true);
        }
        self
    }
}

impl Transport for SshTransport {
    fn node_commands(&self) -> Option<Arc<dyn NodeCommands>> {
        Some(Arc::new(self.sessions.clone()))
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
