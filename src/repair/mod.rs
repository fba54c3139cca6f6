//! The repair workflow: drain → wait until no job runs → the least disruptive remedy (a GPU reset, or a reboot
//! and the wait until the node went down and came back answering; a failed reset escalates to a
//! reboot) → validate → undrain, or keep it drained with the reason when it came back crit, failed its
//! validation, or has a GPU repaired too often for the same cause (held for inspection). One resumable
//! state machine per node; every command goes through the action runner, every wait is an audited
//! intent/outcome, and the state is saved after each change so a crash resumes where it stopped.

mod audited;
pub mod history;
mod preview;
pub mod remedy;
mod reset;
mod steps;
pub mod store;
pub mod validate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::actions::audit;
use crate::actions::exec::Executor;
use crate::actions::run::{self, Progress};
use crate::actions::{record_id, ActionKind, Request};
use crate::inventory::{Inventory, NodeId};
use crate::transport::Transport;
pub use preview::{commands, remedy_lines};
use remedy::Plan;
use steps::{drain, reboot, undrain, wait_back, wait_jobs};

/// How often a node that was asked to reboot is looked at until it has been seen down.
const REBOOT_LOOK: Duration = Duration::from_secs(1);

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
pub struct NodeRepair {
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
pub struct Workflow {
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
pub struct Limits {
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

/// Everything one run needs.
pub struct Context<'a> {
    pub inv: &'a Arc<Inventory>,
    pub transport: &'a dyn Transport,
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

/// Runs the workflow until every node finished or `stop` is set, saving after every change. `Err`: it cannot go
/// on safely (the audit log or the state file cannot be written); the saved state says where it stopped.
pub fn run(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let Some(runtime) = crate::runtime::runtime() else {
        return Err("cannot start the runtime for node probes".into());
    };
    let mut last_jobs: Vec<String> = vec![String::new(); wf.nodes.len()];
    save(wf)?;
    while !wf.finished() {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Ctrl-C stops between steps: the command of the step in progress finishes and its result is saved.
        macro_rules! then_stop_if_asked {
            ($step:expr) => {
                $step?;
                if ctx.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            };
        }
        then_stop_if_asked!(drain(ctx, wf, save, report));
        then_stop_if_asked!(wait_jobs(ctx, wf, &mut last_jobs, save, report));
        then_stop_if_asked!(reset::reset(ctx, wf, save, report));
        then_stop_if_asked!(reboot(ctx, wf, save, report));
        then_stop_if_asked!(wait_back(ctx, &runtime, wf, save, report));
        then_stop_if_asked!(validate::validate(ctx, wf, save, report));
        undrain(ctx, wf, save, report)?;
        if wf.finished() {
            break;
        }
        // A node that is rebooting is looked at every second whatever the poll: a quick reboot must not fall
        // between two looks, or it is never seen going down.
        let rebooting = wf.nodes.iter().any(|n| {
            matches!(
                n.step,
                Step::WaitBack {
                    went_down: false,
                    ..
                }
            )
        });
        let poll = Duration::from_millis(wf.poll_ms.max(100));
        sleep(
            ctx.stop,
            if rebooting {
                poll.min(REBOOT_LOOK)
            } else {
                poll
            },
        );
    }
    Ok(())
}

fn sleep(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

/// The inventory ids of the workflow's nodes in `step`'s kind; a node no longer in the inventory fails.
pub(super) fn nodes_in(
    ctx: &Context,
    wf: &mut Workflow,
    wanted: fn(&Step) -> bool,
) -> Vec<(usize, NodeId)> {
    let mut out = Vec::new();
    for (i, n) in wf.nodes.iter_mut().enumerate() {
        if !wanted(&n.step) {
            continue;
        }
        match ctx.inv.find_node(&n.node) {
            Some(id) => out.push((i, id)),
            None => {
                n.step = Step::Failed {
                    why: format!("{} is no longer in the inventory", n.node),
                }
            }
        }
    }
    out
}

pub(super) fn set(
    wf: &mut Workflow,
    i: usize,
    step: Step,
    note: String,
    report: &mut dyn FnMut(Event),
) {
    wf.nodes[i].step = step.clone();
    report(Event::Step {
        node: wf.nodes[i].node.clone(),
        step,
        note,
    });
}

pub(super) fn request(
    ctx: &Context,
    wf: &Workflow,
    kind: ActionKind,
    nodes: Vec<NodeId>,
    reason: String,
) -> Request {
    Request {
        kind,
        nodes,
        reason: Some(reason),
        operator: wf.operator.clone(),
        force: false,
        read_only: ctx.read_only,
        gpu: None,
        keep_drained: true,
    }
}

/// Each node's command line when its step succeeded, else why not.
pub(super) type NodeOutcomes = Vec<(NodeId, Result<String, String>)>;

/// Runs one request through the action runner: each node's result, or every node's refusal.
pub(super) fn act(ctx: &Context, req: &Request) -> Result<NodeOutcomes, String> {
    let mut out = Vec::new();
    let mut stopped = None;
    run::run(ctx.inv, req, ctx.exec, |p| match p {
        Progress::Refused(reasons) => {
            let why = format!("{} refused: {}", req.kind.as_str(), reasons.join("; "));
            out = req.nodes.iter().map(|&n| (n, Err(why.clone()))).collect();
        }
        Progress::Started { .. } | Progress::Accepted { .. } => {}
        Progress::Finished { node, result, .. } => out.push((
            node,
            if result.ok {
                Ok(result.command)
            } else {
                Err(format!("{} failed: {}", req.kind.as_str(), result.detail))
            },
        )),
        Progress::Stopped(why) => stopped = Some(why),
    });
    match stopped {
        Some(why) => Err(why),
        None => Ok(out),
    }
}
