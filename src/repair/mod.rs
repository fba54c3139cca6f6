//! The repair workflow: drain → wait until no job runs → reboot → wait until the node went down and came back
//! with its agent answering → undrain, or keep it drained with the reason when it came back crit. One resumable
//! state machine per node; every command goes through the action runner, every wait is an audited
//! intent/outcome, and the state is saved after each change so a crash resumes where it stopped.

pub mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::actions::audit::{self, AuditLog, Intent, Outcome, Record};
use crate::actions::exec::Executor;
use crate::actions::run::{self, Progress};
use crate::actions::status::{self, DrainState};
use crate::actions::{jobs, record_id, ActionKind, Request};
use crate::fleet::view::Pending;
use crate::fleet::NodeState;
use crate::inventory::{Inventory, NodeId};
use crate::telemetry::health::Health;
use crate::telemetry::Source;
use crate::transport::Transport;

/// Reasons fleetop records for the drains a repair makes, after its own `fleetop: ` prefix.
const REASON_PREFIX: &str = "repair: ";

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
    /// The reboot was asked for (or was about to be when the state was saved): waiting for the node to drop
    /// off and come back with its agent answering.
    WaitBack {
        since_ms: u64,
        went_down: bool,
    },
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

fn now_ms() -> u64 {
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
        drain(ctx, wf, save, report)?;
        wait_jobs(ctx, wf, &mut last_jobs, save, report)?;
        reboot(ctx, wf, save, report)?;
        wait_back(ctx, &runtime, wf, save, report)?;
        undrain(ctx, wf, save, report)?;
        if wf.finished() {
            break;
        }
        sleep(ctx.stop, Duration::from_millis(wf.poll_ms.max(100)));
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
fn nodes_in(ctx: &Context, wf: &mut Workflow, wanted: fn(&Step) -> bool) -> Vec<(usize, NodeId)> {
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

fn set(wf: &mut Workflow, i: usize, step: Step, note: String, report: &mut dyn FnMut(Event)) {
    wf.nodes[i].step = step.clone();
    report(Event::Step {
        node: wf.nodes[i].node.clone(),
        step,
        note,
    });
}

fn request(
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
    }
}

/// Each node's command line when its step succeeded, else why not.
type NodeOutcomes = Vec<(NodeId, Result<String, String>)>;

/// Runs one request through the action runner: each node's result, or every node's refusal.
fn act(ctx: &Context, req: &Request) -> Result<NodeOutcomes, String> {
    let mut out = Vec::new();
    let mut stopped = None;
    run::run(ctx.inv, req, ctx.exec, |p| match p {
        Progress::Refused(reasons) => {
            let why = format!("{} refused: {}", req.kind.as_str(), reasons.join("; "));
            out = req.nodes.iter().map(|&n| (n, Err(why.clone()))).collect();
        }
        Progress::Started { .. } => {}
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

fn drain(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| *s == Step::Drain);
    if waiting.is_empty() {
        return Ok(());
    }
    // A resumed repair finds its own drain done already: it does not drain twice.
    let ids: Vec<NodeId> = waiting.iter().map(|&(_, id)| id).collect();
    let states = status::query(ctx.inv, ctx.exec, &ids).unwrap_or_default();
    let mut to_drain = Vec::new();
    for &(i, id) in &waiting {
        match states.get(&id) {
            Some(d)
                if d.ours() && matches!(d.state, DrainState::Drained | DrainState::Draining) =>
            {
                enter_wait_jobs(ctx, wf, i, "already drained by fleetop".into(), report)?;
            }
            _ => to_drain.push((i, id)),
        }
    }
    if !to_drain.is_empty() {
        let req = request(
            ctx,
            wf,
            ActionKind::Drain,
            to_drain.iter().map(|&(_, id)| id).collect(),
            format!("{REASON_PREFIX}{}", wf.reason),
        );
        for (node, result) in act(ctx, &req)? {
            let Some(&(i, _)) = to_drain.iter().find(|&&(_, id)| id == node) else {
                continue;
            };
            match result {
                Ok(command) => enter_wait_jobs(ctx, wf, i, format!("drained ({command})"), report)?,
                Err(why) => set(wf, i, Step::Failed { why }, String::new(), report),
            }
        }
    }
    save(wf)
}

fn enter_wait_jobs(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    note: String,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let what = format!(
        "wait until no job or pod runs (at most {})",
        humantime::format_duration(Duration::from_secs(wf.max_wait_s))
    );
    wf.nodes[i].wait_audit = Some(audit_wait(ctx, wf, i, "repair-wait-jobs", &what)?);
    set(
        wf,
        i,
        Step::WaitJobs {
            since_ms: now_ms(),
            killed: false,
        },
        note,
        report,
    );
    Ok(())
}

fn wait_jobs(
    ctx: &Context,
    wf: &mut Workflow,
    last: &mut [String],
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| matches!(s, Step::WaitJobs { .. }));
    if waiting.is_empty() {
        return Ok(());
    }
    let workload = jobs::query(ctx.inv, ctx.exec);
    for p in &workload.problems {
        report(Event::Problem(p.clone()));
    }
    // A scheduler that did not answer leaves the jobs unknown: wait, never assume none.
    let unknown = !workload.problems.is_empty();
    let mut changed = false;
    for (i, id) in waiting {
        let Step::WaitJobs { since_ms, killed } = wf.nodes[i].step.clone() else {
            continue;
        };
        let waited = Duration::from_millis(now_ms().saturating_sub(since_ms));
        let running = workload.jobs(id);
        if running.is_empty() && !unknown {
            close_wait(ctx, wf, i, true, "no job or pod runs")?;
            set(wf, i, Step::Reboot, "no job or pod runs".into(), report);
            changed = true;
            continue;
        }
        let list = workload
            .hits(&[id], 5)
            .unwrap_or_else(|| "jobs unknown".into());
        if waited > Duration::from_secs(wf.max_wait_s) {
            let why = format!(
                "still running after {}: {list}; the node stays drained",
                humantime::format_duration(Duration::from_secs(wf.max_wait_s))
            );
            close_wait(ctx, wf, i, false, &why)?;
            set(wf, i, Step::Failed { why }, String::new(), report);
            changed = true;
            continue;
        }
        let kill_due = wf
            .kill_after_s
            .is_some_and(|k| waited > Duration::from_secs(k));
        if kill_due && !killed && !running.is_empty() {
            let note = kill(ctx, wf, id, running)?;
            wf.nodes[i].step = Step::WaitJobs {
                since_ms,
                killed: true,
            };
            report(Event::Step {
                node: wf.nodes[i].node.clone(),
                step: wf.nodes[i].step.clone(),
                note,
            });
            changed = true;
        } else if last[i] != ids_of(running) {
            // Said again only when the jobs change, not as their clocks tick.
            last[i] = ids_of(running);
            report(Event::Step {
                node: wf.nodes[i].node.clone(),
                step: wf.nodes[i].step.clone(),
                note: format!("waiting for {list}"),
            });
        }
    }
    if changed {
        save(wf)?;
    }
    Ok(())
}

fn ids_of(jobs: &[Arc<crate::workload::Job>]) -> String {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    ids.join(",")
}

/// `--kill-after`: requeues each Slurm job (or cancels one that cannot be requeued), deletes each pod; every
/// command audited through the runner's log like any other.
fn kill(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    running: &[Arc<crate::workload::Job>],
) -> Result<String, String> {
    use crate::actions::plan::{Argv, Invocation, Place};
    let place = ctx
        .inv
        .actions
        .controller
        .clone()
        .map_or(Place::Local, Place::Controller);
    let mut notes = Vec::new();
    for job in running {
        let argvs: Vec<Argv> = match job.scheduler {
            crate::workload::Scheduler::Slurm => vec![
                Argv::new("scontrol", vec!["requeue".into(), job.id.clone()]),
                Argv::new("scancel", vec![job.id.clone()]),
            ],
            crate::workload::Scheduler::Kubernetes => {
                let (ns, pod) = job.id.split_once('/').unwrap_or(("default", &job.id));
                vec![Argv::new(
                    "kubectl",
                    vec![
                        "delete".into(),
                        "pod".into(),
                        "-n".into(),
                        ns.into(),
                        "--".into(),
                        pod.into(),
                    ],
                )]
            }
        };
        for argv in argvs {
            let invocation = Invocation {
                place: place.clone(),
                argv,
                env: Vec::new(),
            };
            let command = invocation.display(ctx.inv);
            let id = audit_intent(ctx, wf, node, "repair-kill-job", &command)?;
            let result = ctx.exec.capture(ctx.inv, &invocation);
            audit_outcome(
                ctx,
                wf,
                node,
                &id,
                "repair-kill-job",
                &command,
                result.is_ok(),
                result.as_ref().map_or_else(String::clone, String::clone),
            )?;
            if result.is_ok() {
                notes.push(format!("{} ended ({command})", job.id));
                break;
            }
        }
    }
    Ok(if notes.is_empty() {
        "--kill-after: no job could be requeued or cancelled".into()
    } else {
        format!("--kill-after: {}", notes.join(", "))
    })
}

fn reboot(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let ready = nodes_in(ctx, wf, |s| *s == Step::Reboot);
    if ready.is_empty() {
        return Ok(());
    }
    // The reboot guard's limit holds across the workflow: nodes still coming back count against it.
    let in_flight = wf
        .nodes
        .iter()
        .filter(|n| matches!(n.step, Step::WaitBack { .. }))
        .count();
    let room = ctx
        .inv
        .actions
        .max_concurrent_reboots
        .saturating_sub(in_flight);
    for &(i, id) in ready.iter().take(room) {
        // Saved before the command runs: a crash between the two waits for a reboot that may not have happened
        // (and says so at the deadline) rather than rebooting a node twice.
        let what = format!(
            "wait until the node went down and came back with its agent answering (at most {})",
            humantime::format_duration(ctx.inv.actions.reboot_deadline)
        );
        wf.nodes[i].wait_audit = Some(audit_wait(ctx, wf, i, "repair-wait-back", &what)?);
        wf.nodes[i].step = Step::WaitBack {
            since_ms: now_ms(),
            went_down: false,
        };
        save(wf)?;
        let req = request(
            ctx,
            wf,
            ActionKind::Reboot,
            vec![id],
            format!("{REASON_PREFIX}{}", wf.reason),
        );
        for (_, result) in act(ctx, &req)? {
            match result {
                Ok(command) => {
                    let step = wf.nodes[i].step.clone();
                    set(wf, i, step, format!("reboot asked ({command})"), report);
                    if matches!(ctx.exec, Executor::Simulated(_)) {
                        // Practice: the simulated fleet does not drop off; count the reboot as seen.
                        wf.nodes[i].step = Step::WaitBack {
                            since_ms: now_ms(),
                            went_down: true,
                        };
                    }
                }
                Err(why) => {
                    close_wait(ctx, wf, i, false, &why)?;
                    set(wf, i, Step::Failed { why }, String::new(), report);
                }
            }
        }
        save(wf)?;
    }
    Ok(())
}

fn wait_back(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let waiting = nodes_in(ctx, wf, |s| matches!(s, Step::WaitBack { .. }));
    if waiting.is_empty() {
        return Ok(());
    }
    // One pass over just these nodes, as `snapshot` would make it.
    let ids: Vec<NodeId> = waiting.iter().map(|&(_, id)| id).collect();
    let only = Arc::new(ctx.inv.only(&ids));
    let s = &ctx.inv.settings;
    let limit = (s.connect_timeout + s.handshake_timeout + s.first_sample_timeout)
        .min(Duration::from_secs(60));
    let started = Instant::now();
    let state = runtime.block_on(crate::snapshot::collect(
        Arc::clone(&only),
        ctx.transport,
        limit,
    ));
    let pending = Pending::TimedOut { limit, started };
    let deadline = ctx.inv.actions.reboot_deadline;
    let mut changed = false;
    for (k, &(i, _)) in waiting.iter().enumerate() {
        let Step::WaitBack {
            since_ms,
            went_down,
        } = wf.nodes[i].step.clone()
        else {
            continue;
        };
        let view = state.node_view(k, Instant::now(), pending);
        // The demo fleet's simulated agent counts as the agent.
        let answering =
            view.state == NodeState::Up && matches!(view.source, Some(Source::Agent | Source::Sim));
        let waited = Duration::from_millis(now_ms().saturating_sub(since_ms));
        if !went_down {
            if !answering {
                let note = format!(
                    "went down ({})",
                    view.error.as_deref().unwrap_or(view.state.as_str())
                );
                set(
                    wf,
                    i,
                    Step::WaitBack {
                        since_ms,
                        went_down: true,
                    },
                    note,
                    report,
                );
                changed = true;
            } else if waited > deadline {
                let why = format!(
                    "did not go down within {} of the reboot (was it issued? see the audit log); the node stays drained",
                    humantime::format_duration(deadline)
                );
                close_wait(ctx, wf, i, false, &why)?;
                set(wf, i, Step::Failed { why }, String::new(), report);
                changed = true;
            }
            continue;
        }
        if answering {
            if view.verdict.health == Health::Crit {
                let reasons = view.verdict.reasons.join("; ");
                let why = format!("came back crit: {reasons}; the node stays drained");
                close_wait(ctx, wf, i, false, &why)?;
                // The drain's reason says why it stays out, where the scheduler shows it.
                let id = waiting[k].1;
                let req = request(
                    ctx,
                    wf,
                    ActionKind::Drain,
                    vec![id],
                    format!("{REASON_PREFIX}came back crit: {reasons}"),
                );
                if let Some((_, Err(e))) = act(ctx, &req)?.into_iter().next() {
                    report(Event::Problem(format!(
                        "{}: drain reason not updated: {e}",
                        wf.nodes[i].node
                    )));
                }
                set(wf, i, Step::Failed { why }, String::new(), report);
            } else {
                close_wait(ctx, wf, i, true, "back, agent answering")?;
                let note = format!(
                    "back, agent answering, health {}",
                    view.verdict.health.as_str()
                );
                set(wf, i, Step::Undrain, note, report);
            }
            changed = true;
        } else if waited > deadline {
            let why = format!(
                "did not come back within {} ({}); the node stays drained",
                humantime::format_duration(deadline),
                view.error.as_deref().unwrap_or(view.state.as_str())
            );
            close_wait(ctx, wf, i, false, &why)?;
            set(wf, i, Step::Failed { why }, String::new(), report);
            changed = true;
        }
    }
    if changed {
        save(wf)?;
    }
    Ok(())
}

fn undrain(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let ready = nodes_in(ctx, wf, |s| *s == Step::Undrain);
    if ready.is_empty() {
        return Ok(());
    }
    // A backend that resumes by itself after a reboot (Slurm's `nextstate=RESUME`) leaves nothing to undrain.
    let ids: Vec<NodeId> = ready.iter().map(|&(_, id)| id).collect();
    let states = status::query(ctx.inv, ctx.exec, &ids).unwrap_or_default();
    let mut ready = ready;
    ready.retain(|&(i, id)| match states.get(&id).map(|d| &d.state) {
        Some(DrainState::Active(word)) => {
            set(
                wf,
                i,
                Step::Done,
                format!("back in service ({word})"),
                report,
            );
            false
        }
        _ => true,
    });
    if ready.is_empty() {
        return save(wf);
    }
    let req = request(
        ctx,
        wf,
        ActionKind::Undrain,
        ready.iter().map(|&(_, id)| id).collect(),
        format!("{REASON_PREFIX}{}", wf.reason),
    );
    for (node, result) in act(ctx, &req)? {
        let Some(&(i, _)) = ready.iter().find(|&&(_, id)| id == node) else {
            continue;
        };
        match result {
            Ok(command) => set(
                wf,
                i,
                Step::Done,
                format!("back in service ({command})"),
                report,
            ),
            Err(why) => set(wf, i, Step::Failed { why }, String::new(), report),
        }
    }
    save(wf)
}

/// Opens an audited wait for node `i`: its intent id, to close with [`close_wait`].
fn audit_wait(
    ctx: &Context,
    wf: &Workflow,
    i: usize,
    action: &str,
    what: &str,
) -> Result<String, String> {
    let node = ctx.inv.find_node(&wf.nodes[i].node).unwrap_or_default();
    audit_intent(ctx, wf, node, action, what)
}

fn close_wait(
    ctx: &Context,
    wf: &mut Workflow,
    i: usize,
    ok: bool,
    detail: &str,
) -> Result<(), String> {
    let Some(id) = wf.nodes[i].wait_audit.take() else {
        return Ok(());
    };
    let node = ctx.inv.find_node(&wf.nodes[i].node).unwrap_or_default();
    let action = match wf.nodes[i].step {
        Step::WaitJobs { .. } => "repair-wait-jobs",
        _ => "repair-wait-back",
    };
    audit_outcome(ctx, wf, node, &id, action, "wait", ok, detail.to_string())
}

fn audit_intent(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    action: &str,
    command: &str,
) -> Result<String, String> {
    let id = record_id();
    let mut log = AuditLog::open(&run::audit_path(ctx.inv))?;
    log.write(&Record::Intent(Intent {
        id: id.clone(),
        time: audit::now(),
        operator: wf.operator.clone(),
        action: action.into(),
        node: ctx.inv.nodes[node].name.clone(),
        reason: Some(format!("{REASON_PREFIX}{}", wf.reason)),
        backend: "fleetop".into(),
        command: command.into(),
        pid: std::process::id(),
    }))?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
fn audit_outcome(
    ctx: &Context,
    wf: &Workflow,
    node: NodeId,
    id: &str,
    action: &str,
    command: &str,
    ok: bool,
    detail: String,
) -> Result<(), String> {
    let mut log = AuditLog::open(&run::audit_path(ctx.inv))?;
    log.write(&Record::Outcome(Outcome {
        id: id.into(),
        time: audit::now(),
        operator: wf.operator.clone(),
        action: action.into(),
        node: ctx.inv.nodes[node].name.clone(),
        backend: "fleetop".into(),
        command: command.into(),
        ok,
        exit_status: None,
        duration_ms: 0,
        detail,
    }))
}
