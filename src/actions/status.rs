//! Reads back drain state from the backend: `sinfo` for Slurm, `kubectl get node` for Kubernetes.

use std::collections::HashMap;

use super::exec::Executor;
use super::plan::{Argv, Invocation, Place, REASON_PREFIX};
use crate::inventory::{DrainBackend, Inventory, NodeId};

#[derive(Debug, Clone, PartialEq)]
pub enum DrainState {
    /// In service; the backend's own word for it (`idle`, `mixed`, `allocated`, `schedulable`).
    Active(String),
    Draining,
    Drained,
    /// The backend cannot tell (no read-back for the command backend, or the node is unknown to it).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeDrain {
    pub state: DrainState,
    pub reason: Option<String>,
    pub user: Option<String>,
}

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
        let mut f = line.split('|');
        let (Some(name), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let reason = f
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "none")
            .map(String::from);
        let user = f
            .next()
            .map(str::trim)
            .filter(|u| !u.is_empty() && *u != "Unknown")
            .map(String::from);
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
        // One call for the whole cluster: name|unschedulable per line.
        let template =
            "{range .items[*]}{.metadata.name}{\"|\"}{.spec.unschedulable}{\"\\n\"}{end}";
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
        let cordoned: HashMap<&str, bool> = text
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(name, flag)| (name.trim(), flag.trim() == "true"))
            .collect();
        for &n in &kubernetes {
            let state = match cordoned.get(inv.nodes[n].name.as_str()) {
                Some(true) => DrainState::Drained,
                Some(false) => DrainState::Active("schedulable".into()),
                None => DrainState::Unknown("not known to Kubernetes".into()),
            };
            out.insert(
                n,
                NodeDrain {
                    state,
                    reason: None,
                    user: None,
                },
            );
        }
    }
    for &n in nodes {
        out.entry(n)
            .or_insert_with(|| unknown("the command backend has no drain read-back"));
    }
    Ok(out)
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
    }
}
