//! What a repair is: each node's step, the workflow saved between steps, its limits, the events it reports and
//! the context one run needs.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::remedy::{self, Plan};
use crate::actions::audit;
use crate::actions::exec::Executor;
use crate::actions::record_id;
use crate::inventory::{Inventory, NodeId};
use crate::workload::operations::OperationEvent;

/// Reasons fleetop records for the drains a repair makes, after its own `fleetop: ` prefix.
pub(super) const REASON_PREFIX: &str = "repair: ";

/// Where one node stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Drain,
    /// Drained; waiting for its jobs and pods to end.
    WaitJobs {
        since_ms: u64,
        #[serde(default)]
        killed: bool,
    },
    Reboot,
    /// Drained and idle; its GPU(s) to reset.
    Reset,
    /// The reboot was asked for (or was about to be when the state was saved): waiting for the node to drop
    /// off and come back with its agent answering.
    WaitBack {
        since_ms: u64,
        went_down: bool,
    },
    /// Back and healthy (after a reset or a reboot); the validation to run.
    Validate,
    Undrain,
    Done,
    /// Stopped here; the node stays as it is (drained, when the drain had happened).
    Failed {
        why: String,
    },
}

impl Step {
    pub fn finished(&self) -> bool {
        matches!(self, Step::Done | Step::Failed { .. })
    }

    /// `waiting for jobs`, `rebooting`, …: a few words for progress lines and the TUI.
    pub fn label(&self) -> String {
        match self {
            Step::Drain => "to drain".into(),
            Step::WaitJobs { .. } => "waiting for jobs".into(),
            Step::Reboot => "to reboot".into(),
            Step::Reset => "to reset".into(),
            Step::Validate => "to validate".into(),
            Step::WaitBack {
                went_down: false, ..
            } => "rebooting".into(),
            Step::WaitBack {
                went_down: true, ..
            } => "coming back".into(),
            Step::Undrain => "to undrain".into(),
            Step::Done => "repaired".into(),
            Step::Failed { why } => format!("FAILED: {why}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeRepair {
    pub node: String,
    #[serde(flatten)]
    pub step: Step,
    /// The audit intent of the wait in progress, closed by its outcome when the wait ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_audit: Option<String>,
    /// The remedy chosen when the repair started, and why; `None` (a state saved before remedies): reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// What the validation printed (its last few thousand characters, escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
}

impl NodeRepair {
    pub fn remedy(&self) -> remedy::Remedy {
        self.plan
            .as_ref()
            .map_or(remedy::Remedy::Reboot, |p| p.remedy)
    }
}

/// One repair of some nodes, as saved between steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Workflow {
    pub version: u32,
    pub id: String,
    pub started: String,
    pub operator: String,
    pub reason: String,
    /// The inventory it was started with (a path, or `demo`).
    pub inventory: String,
    pub max_wait_s: u64,
    pub kill_after_s: Option<u64>,
    pub poll_ms: u64,
    /// The fleetop process working on it; another one refuses to resume while it lives.
    pub pid: u32,
    pub nodes: Vec<NodeRepair>,
}

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub max_wait: Duration,
    pub kill_after: Option<Duration>,
    pub poll: Duration,
}

impl Workflow {
    pub fn new(
        inv: &Inventory,
        nodes: &[NodeId],
        reason: &str,
        operator: &str,
        limits: Limits,
    ) -> Self {
        Workflow {
            version: 1,
            id: record_id(),
            started: audit::now(),
            operator: operator.into(),
            reason: reason.into(),
            inventory: inv.source.clone(),
            max_wait_s: limits.max_wait.as_secs(),
            kill_after_s: limits.kill_after.map(|d| d.as_secs()),
            poll_ms: limits.poll.as_millis() as u64,
            pid: std::process::id(),
            nodes: nodes
                .iter()
                .map(|&n| NodeRepair {
                    node: inv.nodes[n].name.clone(),
                    step: Step::Drain,
                    wait_audit: None,
                    plan: None,
                    validation: None,
                })
                .collect(),
        }
    }

    pub fn finished(&self) -> bool {
        self.nodes.iter().all(|n| n.step.finished())
    }

    pub fn failed(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.step, Step::Failed { .. }))
            .count()
    }
}

/// What the workflow reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A node moved on; `note` says what happened.
    Step {
        node: String,
        step: Step,
        note: String,
    },
    /// Something the operator should see that changes no node (a scheduler that did not answer).
    Problem(String),
}

impl Event {
    /// A step as the journal and fleet state say it: `repair: waiting for jobs`, `repair: to reboot — why`.
    pub(crate) fn step_text(step: &Step, note: &str) -> String {
        if note.is_empty() {
            format!("repair: {}", step.label())
        } else {
            format!("repair: {} — {note}", step.label())
        }
    }

    /// The node a step moved on and what it did to it, as fleet state files it. A step names no one: fleet state
    /// keeps who started the repair.
    pub(crate) fn operation(&self) -> Option<(&str, OperationEvent)> {
        match self {
            Event::Step { node, step, note } => Some((
                node.as_str(),
                OperationEvent::Repair {
                    text: Event::step_text(step, note),
                    active: !step.finished(),
                    by: None,
                },
            )),
            Event::Problem(_) => None,
        }
    }
}

/// Everything one run needs.
pub struct Context<'a> {
    pub inv: &'a Arc<Inventory>,
    pub exec: &'a Executor,
    pub read_only: bool,
    /// Set from outside (Ctrl-C, the TUI quitting) to stop after the current step; the state stays saved.
    pub stop: &'a AtomicBool,
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
