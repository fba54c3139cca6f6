//! Reads back drain state from the backend: `sinfo` for Slurm, `kubectl get node` for Kubernetes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::exec::Executor;
use super::plan::{Argv, Invocation, Place, REASON_PREFIX};
use crate::inventory::{DrainBackend, Inventory, NodeId};
use crate::transport::{Msg, MsgSender, NodeEvent};
use crate::workload::operations::OperationEvent;

pub use crate::workload::operations::{DrainState, NodeDrain};

impl NodeDrain {
    /// True when the drain reason is one fleetop set (`fleetop: …`).
    pub fn ours(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.starts_with(REASON_PREFIX))
    }

    pub(crate) fn is_out(&self) -> bool {
        matches!(self.state, DrainState::Draining | DrainState::Drained)
    }
}

/// Parses `sinfo -N -h -o '%N|%T|%E|%u|%H'`. `-N` prints a node once per partition: the first line wins.
pub(crate) fn parse_sinfo(text: &str) -> HashMap<String, NodeDrain> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '|');
        let (Some(name), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        // The reason is free text and may hold `|`: user and time are the last two fields.
        let mut rest = f.next().unwrap_or("").rsplitn(3, '|');
        let (_time, user, reason) = (rest.next(), rest.next(), rest.next());
        let reason = reason.and_then(crate::workload::operations::inert);
        let user = user.and_then(crate::workload::operations::inert);
        let word = state
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_alphabetic())
            .to_ascii_lowercase();
        let state = if word.starts_with("draining") {
            DrainState::Draining
        } else if word.contains("drain") {
            DrainState::Drained
        } else {
            DrainState::Active(word)
        };
        out.entry(name.trim().to_string()).or_insert(NodeDrain {
            state,
            reason,
            user,
        });
    }
    out
}

/// The taint a cordon sets; the others say why a cordoned node is out.
const CORDON_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Parses `name|unschedulable|key=value:effect,…` lines: a cordoned node is drained, its other taints the reason.
/// Kubernetes records no one who cordoned a node.
pub(crate) fn parse_kube_nodes(text: &str) -> HashMap<String, NodeDrain> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.split('|');
        let (Some(name), Some(flag)) = (f.next(), f.next()) else {
            continue;
        };
        let taints: Vec<String> = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with(CORDON_TAINT))
            // A taint without a value reads `key=:effect`.
            .map(|t| t.replace("=:", ":"))
            .collect();
        let state = if flag.trim() == "true" {
            DrainState::Drained
        } else {
            DrainState::Active("schedulable".into())
        };
        let reason = (state == DrainState::Drained)
            .then(|| crate::workload::operations::inert(&taints.join(", ")))
            .flatten();
        out.entry(name.trim().to_string()).or_insert(NodeDrain {
            state,
            reason,
            user: None,
        });
    }
    out
}

/// Drain state of `nodes`; nodes the backend does not know are `Unknown`.
pub fn query(
    inv: &Inventory,
    exec: &Executor,
    nodes: &[NodeId],
) -> Result<HashMap<NodeId, NodeDrain>, String> {
    let unknown = |why: &str| NodeDrain {
        state: DrainState::Unknown(why.into()),
        reason: None,
        user: None,
    };
    let place = inv
        .actions
        .controller
        .clone()
        .map_or(Place::Local, Place::Controller);
    let mut out = HashMap::new();
    if let Executor::Simulated(sim) = exec {
        // Practice mode: in service until a practice drain.
        for &n in nodes {
            let state = if sim.is_drained(n) {
                DrainState::Drained
            } else {
                DrainState::Active("idle (simulated)".into())
            };
            // Only fleetop's practice drains exist there, so each is fleetop's own.
            let reason =
                (state == DrainState::Drained).then(|| format!("{REASON_PREFIX}practice drain"));
            out.insert(
                n,
                NodeDrain {
                    state,
                    reason,
                    user: None,
                },
            );
        }
        return Ok(out);
    }
    // Each backend is asked once, about the nodes it drains.
    let by = |wanted: fn(&DrainBackend) -> bool| -> Vec<NodeId> {
        nodes
            .iter()
            .copied()
            .filter(|&n| wanted(inv.drain_backend(n)))
            .collect()
    };
    let slurm = by(|b| *b == DrainBackend::Slurm);
    let kubernetes = by(|b| *b == DrainBackend::Kubernetes);
    if !slurm.is_empty() {
        let names: Vec<&str> = slurm.iter().map(|&n| inv.nodes[n].name.as_str()).collect();
        let argv = Argv::new(
            "sinfo",
            ["-N", "-h", "-o", "%N|%T|%E|%u|%H", "-n", &names.join(",")]
                .map(String::from)
                .to_vec(),
        );
        let result = exec.capture(
            inv,
            &Invocation {
                place: place.clone(),
                argv,
                env: Vec::new(),
            },
        )?;
        let parsed = parse_sinfo(&result);
        for &n in &slurm {
            out.insert(
                n,
                parsed
                    .get(&inv.nodes[n].name)
                    .cloned()
                    .unwrap_or_else(|| unknown("not known to Slurm")),
            );
        }
    }
    if !kubernetes.is_empty() {
        // One call for the whole cluster: name|unschedulable|taints per line.
        let template = "{range .items[*]}{.metadata.name}{\"|\"}{.spec.unschedulable}{\"|\"}\
                        {range .spec.taints[*]}{.key}{\"=\"}{.value}{\":\"}{.effect}{\",\"}{end}{\"\\n\"}{end}";
        let argv = Argv::new(
            "kubectl",
            ["get", "nodes", "-o", &format!("jsonpath={template}")]
                .map(String::from)
                .to_vec(),
        );
        let text = exec.capture(
            inv,
            &Invocation {
                place,
                argv,
                env: Vec::new(),
            },
        )?;
        let nodes = parse_kube_nodes(&text);
        for &n in &kubernetes {
            let drain = nodes
                .get(inv.nodes[n].name.as_str())
                .cloned()
                .unwrap_or_else(|| unknown("not known to Kubernetes"));
            out.insert(n, drain);
        }
    }
    for &n in nodes {
        out.entry(n)
            .or_insert_with(|| unknown("the command backend has no drain read-back"));
    }
    Ok(out)
}

/// Every node's drain state: one site's asked through `exec`; a merged inventory's (`--context all`) site by
/// site through [`every_site`](super::sites::every_site). One answer per site asked, or why it failed, naming the
/// site; node ids are `inv`'s.
pub(crate) fn query_every_site(
    inv: &Inventory,
    exec: &Executor,
) -> Vec<Result<HashMap<NodeId, NodeDrain>, String>> {
    super::sites::every_site(inv, exec, |own, exec| {
        let all: Vec<NodeId> = (0..own.nodes.len()).collect();
        query(own, exec, &all)
    })
    .into_iter()
    .map(|site| {
        let states = site.answer.as_ref().map_err(String::clone)?;
        Ok(states
            .iter()
            .filter_map(|(&n, drain)| Some((site.merged_id(n)?, drain.clone())))
            .collect())
    })
    .collect()
}

/// Sends each node's drain read-back into fleet state's channel, stamped now; false once the receiver is gone.
pub(crate) fn send(tx: &MsgSender, states: HashMap<NodeId, NodeDrain>) -> bool {
    let at = std::time::Instant::now();
    states.into_iter().all(|(node, drain)| {
        tx.send(Msg {
            node,
            at,
            event: NodeEvent::Operation(OperationEvent::Drain(drain)),
        })
        .is_ok()
    })
}

/// Asks the drain backends about every node now and then every `every` (once for the practice fleet, whose
/// drains fleet state learns from the actions themselves), on a thread of its own so a slow controller never
/// holds up a view; each answer goes into fleet state through `tx`.
pub fn follow(inv: &Arc<Inventory>, exec: &Arc<Executor>, tx: MsgSender, every: Duration) {
    let simulated = matches!(**exec, Executor::Simulated(_));
    if !inv.any_scheduler() && !simulated {
        return;
    }
    let (inv, exec) = (Arc::clone(inv), Arc::clone(exec));
    let spawned = std::thread::Builder::new()
        .name("drain-readback".into())
        .spawn(move || loop {
            for answer in query_every_site(&inv, &exec) {
                match answer {
                    Ok(states) => {
                        if !send(&tx, states) {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("drain read-back failed: {e}"),
                }
            }
            if simulated {
                return;
            }
            std::thread::sleep(every);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the drain read-back: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinfo_states_and_duplicates() {
        let text = "gpu01|drained|fleetop: bad GPU|root|2026\ngpu01|drained|other|x|y\ngpu02|draining*|maint|bob|t\n\
                    gpu03|idle|none|Unknown|Unknown\ngpu04|down+drain|hw|root|t\n";
        let p = parse_sinfo(text);
        assert_eq!(p["gpu01"].state, DrainState::Drained);
        assert!(p["gpu01"].ours());
        assert_eq!(p["gpu02"].state, DrainState::Draining);
        assert!(!p["gpu02"].ours());
        assert_eq!(p["gpu03"].state, DrainState::Active("idle".into()));
        assert_eq!(p["gpu03"].reason, None);
        assert_eq!(p["gpu04"].state, DrainState::Drained);
        assert_eq!(p["gpu02"].user.as_deref(), Some("bob"));
        assert_eq!(p["gpu03"].user, None);
        let piped = parse_sinfo("gpu05|drained|psu | ticket 4411|root|2026-12-06T10:00:00\n");
        assert_eq!(piped["gpu05"].reason.as_deref(), Some("psu | ticket 4411"));
        assert_eq!(piped["gpu05"].user.as_deref(), Some("root"));
    }

    #[test]
    fn a_cordoned_node_is_drained_with_its_taints_as_the_reason() {
        let text = "gpu01|true|node.kubernetes.io/unschedulable=:NoSchedule,nvidia.com/gpu-health=xid79:NoExecute,\n\
                    gpu02||nvidia.com/gpu=:NoSchedule,\ngpu03|\n";
        let p = parse_kube_nodes(text);
        assert_eq!(p["gpu01"].state, DrainState::Drained);
        assert_eq!(
            p["gpu01"].reason.as_deref(),
            Some("nvidia.com/gpu-health=xid79:NoExecute")
        );
        assert_eq!(p["gpu02"].state, DrainState::Active("schedulable".into()));
        assert_eq!(p["gpu02"].reason, None, "a taint alone does not drain");
        assert_eq!(p["gpu03"].state, DrainState::Active("schedulable".into()));
    }
}
