//! Node actions in the TUI: marks, the reason prompt, the confirm dialog, progress per node, the
//! drain/reboot overlays on node state, and failures that stay on screen until acknowledged.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{App, Mode};
use crate::actions::status::{DrainState, NodeDrain};
use crate::actions::{self, plan, ActionKind, NodeResult, Request};
use crate::fleet::NodeState;
use crate::inventory::NodeId;
use crate::telemetry::health::Health;

/// Average utilisation above which draining a tenant's node earns a warning in the dialog.
const BUSY_UTIL: f64 = 50.0;
/// Jobs named in the confirm dialog's first line; the rest are counted.
const MAX_JOBS_SHOWN: usize = 4;
/// In the demo fleet a rebooting node stays down this long before its samples count again.
const DEMO_REBOOT: Duration = Duration::from_secs(10);

/// What the confirm dialog shows and what it will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub request: Request,
    pub commands: Vec<String>,
    /// One line per node: its tenant and how busy its GPUs are.
    pub impact: Vec<(String, bool)>,
    /// Guard refusals; when any, the dialog can only be cancelled.
    pub refusals: Vec<String>,
    /// The node count typed so far (needed for more than one node).
    pub typed: String,
    /// Cancel has the focus until the operator moves it (k9s convention).
    pub on_confirm: bool,
    /// The whole repair workflow rather than one action; `request` is its drain, which the guards judge.
    pub repair: bool,
}

impl Confirm {
    pub(crate) fn needs_count(&self) -> bool {
        self.request.nodes.len() > 1
    }

    pub fn ready(&self) -> bool {
        self.refusals.is_empty()
            && (!self.needs_count() || self.typed == self.request.nodes.len().to_string())
    }
}

/// A node's latest action, shown in place.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Running(ActionKind),
    Done(ActionKind, NodeResult),
}

/// A reboot being watched: the node must go down and come back before `deadline`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reboot {
    pub since: Instant,
    pub deadline: Instant,
    pub went_down: bool,
}

/// Messages from the action worker and the drain read-back, into `App::on_action`.
#[derive(Debug, Clone)]
pub enum ActionEvent {
    Started {
        node: NodeId,
        kind: ActionKind,
    },
    Finished {
        node: NodeId,
        kind: ActionKind,
        result: NodeResult,
    },
    /// The request could not run at all (audit log not writable, plan error).
    Refused(String),
    DrainStates(HashMap<NodeId, NodeDrain>),
    /// The schedulers' jobs and pods per node, asked every few seconds.
    Workload(Box<crate::workload::Workload>),
    /// A repair moved on.
    Repair(crate::repair::Event),
    /// A repair ended: its summary, or why it stopped (its state is kept for `fleetop repair --resume`).
    RepairEnded(Result<String, String>),
    /// The shell on a node ended (the terminal is the view's again), or why it failed.
    ShellEnded(Result<(), String>),
}

impl ActionEvent {
    /// The runner's report, as the TUI takes it: a refusal or a stop is a failure on screen.
    pub(crate) fn from_progress(kind: ActionKind, progress: actions::run::Progress) -> ActionEvent {
        use actions::run::Progress as P;
        match progress {
            P::Started { node, kind } => ActionEvent::Started { node, kind },
            P::Finished { node, kind, result } => ActionEvent::Finished { node, kind, result },
            P::Refused(reasons) => {
                ActionEvent::Refused(format!("{} refused: {}", kind.as_str(), reasons.join("; ")))
            }
            P::Stopped(why) => ActionEvent::Refused(format!("stopped: {why}")),
        }
    }
}

/// Operator-side state the TUI keeps beside the fleet data.
#[derive(Debug, Default)]
pub struct Operations {
    pub marks: BTreeSet<NodeId>,
    pub progress: HashMap<NodeId, Progress>,
    pub drain: HashMap<NodeId, NodeDrain>,
    pub reboots: HashMap<NodeId, Reboot>,
    /// Failures not yet acknowledged (enter or esc); newest last.
    pub failures: Vec<String>,
    /// Requests confirmed and waiting for the loop to run them.
    pub queued: Vec<Request>,
    /// XID acknowledgements waiting for the loop to write them to the audit log.
    pub acks: Vec<crate::actions::audit::Ack>,
    pub read_only: bool,
    /// The demo fleet: actions are simulated and reboots come back by themselves.
    pub simulated: bool,
    /// The schedulers' last answer (`None`: not asked yet, or no scheduler to ask).
    pub workload: Option<crate::workload::Workload>,
    /// Repairs confirmed and waiting for the loop to start them.
    pub repairs_queued: Vec<Request>,
    /// Each repaired node's latest step, shown in place of its note.
    pub repairs: HashMap<NodeId, String>,
    /// A node to open a shell on, waiting for the loop (which owns the terminal) to hand it over.
    pub shell: Option<NodeId>,
}

impl App {
    /// The nodes an action applies to: the marked ones, else the selected one.
    pub(crate) fn targets(&self) -> Vec<NodeId> {
        if self.ops.marks.is_empty() {
            vec![self.selected]
        } else {
            self.ops.marks.iter().copied().collect()
        }
    }

    /// Asks the loop for an SSH shell on the selected node.
    pub(crate) fn shell(&mut self) {
        if self.ops.simulated {
            self.ops.failures.push(
                "shell: the demo fleet's nodes are simulated; there is no machine to log in to"
                    .into(),
            );
            return;
        }
        self.ops.shell = Some(self.selected);
    }

    pub(crate) fn toggle_mark(&mut self) {
        if !self.ops.marks.remove(&self.selected) {
            self.ops.marks.insert(self.selected);
        }
    }

    pub(crate) fn mark_filtered(&mut self) {
        let ids: Vec<NodeId> = self.order.iter().map(|&i| self.rows[i].id).collect();
        self.ops.marks.extend(ids);
    }

    /// Starts drain, undrain or reboot of the targets: the reason prompt first.
    pub(crate) fn begin(&mut self, kind: ActionKind) {
        if self.ops.read_only || self.fleet.inventory().actions.read_only {
            self.ops.failures.push(format!(
                "read-only: {} refused (--read-only or [actions] read_only)",
                kind.as_str()
            ));
            return;
        }
        self.mode = Mode::Reason {
            kind,
            text: String::new(),
        };
    }

    /// Builds the confirm dialog for `kind` with `reason`.
    pub fn confirm(&mut self, kind: ActionKind, reason: String) {
        let inv = &self.fleet.inventory();
        let request = Request {
            kind,
            nodes: self.targets(),
            reason: (!reason.trim().is_empty()).then_some(reason),
            operator: actions::operator(),
            force: false,
            read_only: self.ops.read_only,
        };
        let (commands, mut refusals) = match plan::plan(inv, &request) {
            Ok(steps) => (
                steps.iter().map(|s| s.invocation.display(inv)).collect(),
                Vec::new(),
            ),
            Err(e) => (Vec::new(), vec![e]),
        };
        let drain = self.drain_for_guards(&request);
        refusals.extend(actions::guard(inv, &request, request.read_only, &drain));
        let workload = self.ops.workload.as_ref();
        let mut impact: Vec<(String, bool)> = Vec::new();
        // What the action ends, first: the jobs it hits and the GPUs that are working.
        if kind != ActionKind::Undrain {
            let busy = self.busy_gpus(&request.nodes);
            let jobs = workload.and_then(|w| w.hits(&request.nodes, MAX_JOBS_SHOWN));
            let line = match jobs {
                Some(jobs) => format!("{jobs}; {busy} GPUs busy"),
                None => format!("jobs unknown (no scheduler answered); {busy} GPUs busy"),
            };
            impact.push((line, busy > 0));
        }
        impact.extend(request.nodes.iter().map(|&n| {
            let row = &self.rows[n];
            let name = &inv.nodes[n].name;
            let jobs = workload
                .map(|w| w.jobs(n))
                .filter(|j| !j.is_empty())
                .map_or(String::new(), |j| {
                    let ids: Vec<&str> = j.iter().map(|j| j.id.as_str()).collect();
                    format!(" · jobs {}", ids.join(","))
                });
            match (&row.tenant, row.avg_util) {
                (Some(t), Some(u)) => (
                    format!("{name} hosts {t}: {} GPUs at {u:.0}%{jobs}", row.gpus_seen),
                    u >= BUSY_UTIL,
                ),
                (Some(t), None) => (
                    format!("{name} hosts {t}: no current utilisation{jobs}"),
                    false,
                ),
                (None, _) => (format!("{name}: spare{jobs}"), !jobs.is_empty()),
            }
        }));
        self.mode = Mode::Confirm(Confirm {
            request,
            commands,
            impact,
            refusals,
            typed: String::new(),
            on_confirm: false,
            repair: false,
        });
    }

    /// Builds the confirm dialog of a repair: its drain judged by the guards, every command it may run listed.
    pub fn confirm_repair(&mut self, reason: String) {
        self.confirm(ActionKind::Drain, reason);
        let Mode::Confirm(mut c) = std::mem::replace(&mut self.mode, Mode::Normal) else {
            return;
        };
        let inv = self.fleet.inventory();
        let reason = c.request.reason.clone().unwrap_or_default();
        match crate::repair::commands(inv, &c.request.nodes, &reason, &c.request.operator) {
            Ok(commands) => c.commands = commands,
            Err(e) => c.refusals.push(e),
        }
        c.repair = true;
        self.mode = Mode::Confirm(c);
    }

    /// GPUs of `nodes` that are working now: utilization above zero or a process on them, per the last sample.
    fn busy_gpus(&self, nodes: &[NodeId]) -> usize {
        nodes
            .iter()
            .filter_map(|&n| self.fleet.nodes()[n].sample.as_ref())
            .flat_map(|s| &s.gpus)
            .filter(|g| {
                g.util_pct.is_some_and(|u| u > 0)
                    || g.processes.as_ref().is_some_and(|p| !p.is_empty())
            })
            .count()
    }

    /// Drain states for the guards: the read-back where there is one, else unknown.
    /// Drain states for the dialog's guards, from the last read-back: a preview. The runner asks the
    /// backend again before anything runs.
    fn drain_for_guards(&self, req: &Request) -> HashMap<NodeId, NodeDrain> {
        actions::run::affected(self.fleet.inventory(), req)
            .into_iter()
            .map(|n| {
                let d = self.ops.drain.get(&n).cloned().unwrap_or(NodeDrain {
                    state: DrainState::Unknown("no read-back from the drain backend yet".into()),
                    reason: None,
                    user: None,
                });
                (n, d)
            })
            .collect()
    }

    /// Acknowledges the targets' XIDs as they stand: they stop raising the node's health until one happens
    /// again. Each acknowledgement goes to the audit log.
    pub(crate) fn acknowledge_xids(&mut self, reason: &str) {
        let operator = actions::operator();
        for n in self.targets() {
            let covered = self
                .fleet
                .acknowledge_xids(n, &format!("{reason} ({operator})"));
            let name = self.node_name(n).to_string();
            if covered.is_empty() {
                self.status = Some(format!("{name}: no XIDs to acknowledge"));
                continue;
            }
            let xids: Vec<String> = covered
                .iter()
                .map(|(gpu, code, count)| format!("GPU {gpu} XID {code} ×{count}"))
                .collect();
            self.journal.push(
                self.now,
                Some(n),
                Health::Ok,
                format!(
                    "{name}: {} acknowledged by {operator}: {reason}",
                    xids.join(", ")
                ),
            );
            self.ops.acks.push(crate::actions::audit::Ack {
                time: crate::actions::audit::now(),
                operator: operator.clone(),
                node: name,
                reason: reason.to_string(),
                xids,
            });
        }
        self.ops.marks.clear();
        self.refresh();
    }

    /// Takes back the acknowledgements the audit log holds, for nodes still in the inventory.
    pub(crate) fn restore_acks(&mut self, acks: &[crate::actions::audit::Ack]) {
        for ack in acks {
            if let Some(n) = self.fleet.inventory().find_node(&ack.node) {
                let reason = format!("{} ({})", ack.reason, ack.operator);
                self.fleet.restore_ack(n, &reason, ack.covered());
            }
        }
    }

    pub(crate) fn submit(&mut self, confirm: Confirm) {
        let verb = if confirm.repair {
            "repair"
        } else {
            confirm.request.kind.as_str()
        };
        for &n in &confirm.request.nodes {
            if confirm.repair {
                self.ops.repairs.insert(n, "repair: starting".into());
            } else {
                self.ops
                    .progress
                    .insert(n, Progress::Running(confirm.request.kind));
            }
        }
        let names: Vec<&str> = confirm
            .request
            .nodes
            .iter()
            .map(|&n| self.node_name(n))
            .collect();
        let text = format!(
            "{verb} of {} started by {}",
            names.join(","),
            confirm.request.operator
        );
        self.journal.push(self.now, None, Health::Ok, text);
        self.ops.marks.clear();
        if confirm.repair {
            self.ops.repairs_queued.push(confirm.request);
        } else {
            self.ops.queued.push(confirm.request);
        }
        self.refresh();
    }

    fn on_repair(&mut self, event: crate::repair::Event) {
        match event {
            crate::repair::Event::Step { node, step, note } => {
                let id = self.fleet.inventory().find_node(&node);
                let health = match step {
                    crate::repair::Step::Failed { .. } => Health::Crit,
                    _ => Health::Ok,
                };
                let text = if note.is_empty() {
                    format!("repair: {}", step.label())
                } else {
                    format!("repair: {} — {note}", step.label())
                };
                self.journal
                    .push(self.now, id, health, format!("{node}: {text}"));
                if health == Health::Crit {
                    self.ops.failures.push(format!("{node}: {text}"));
                }
                if let Some(id) = id {
                    self.ops.repairs.insert(id, text);
                }
            }
            crate::repair::Event::Problem(p) => {
                self.journal.push(self.now, None, Health::Warn, p);
            }
        }
    }

    pub fn on_action(&mut self, event: ActionEvent) {
        self.dirty = true;
        match event {
            ActionEvent::Started { node, kind } => {
                self.ops.progress.insert(node, Progress::Running(kind));
            }
            ActionEvent::Finished { node, kind, result } => {
                let name = self.node_name(node).to_string();
                if result.ok {
                    self.journal.push(
                        self.now,
                        Some(node),
                        Health::Ok,
                        format!("{name}: {} ok", kind.as_str()),
                    );
                    self.after_success(node, kind);
                    // A reset or reboot just audited makes the XIDs before it history.
                    let log = crate::actions::run::audit_path(self.fleet.inventory());
                    self.fleet.note_resets(&crate::actions::resets::read(&log));
                } else {
                    let text = format!("{name}: {} FAILED: {}", kind.as_str(), result.detail);
                    self.journal
                        .push(self.now, Some(node), Health::Crit, text.clone());
                    self.ops.failures.push(text);
                }
                self.ops.progress.insert(node, Progress::Done(kind, result));
            }
            ActionEvent::Refused(why) => {
                self.journal.push(self.now, None, Health::Crit, why.clone());
                self.ops.failures.push(why);
                self.ops
                    .progress
                    .retain(|_, p| !matches!(p, Progress::Running(_)));
            }
            ActionEvent::DrainStates(states) => self.ops.drain.extend(states),
            ActionEvent::Workload(workload) => self.ops.workload = Some(*workload),
            ActionEvent::Repair(event) => self.on_repair(event),
            ActionEvent::RepairEnded(Err(why)) => {
                let text = format!("repair stopped: {why}");
                self.journal
                    .push(self.now, None, Health::Crit, text.clone());
                self.ops.failures.push(text);
            }
            ActionEvent::RepairEnded(Ok(summary)) => {
                self.journal.push(self.now, None, Health::Ok, summary);
            }
            ActionEvent::ShellEnded(Ok(())) => {}
            ActionEvent::ShellEnded(Err(why)) => self.ops.failures.push(why),
        }
        self.refresh();
    }

    fn after_success(&mut self, node: NodeId, kind: ActionKind) {
        let set = |state| NodeDrain {
            state,
            reason: None,
            user: None,
        };
        match kind {
            // Until the next read-back says otherwise.
            ActionKind::Drain => {
                let state = if self.ops.simulated {
                    DrainState::Drained
                } else {
                    DrainState::Draining
                };
                self.ops.drain.insert(node, set(state));
            }
            ActionKind::Undrain => {
                self.ops
                    .drain
                    .insert(node, set(DrainState::Active("resumed".into())));
            }
            ActionKind::Reboot => {
                let deadline = self.now + self.fleet.inventory().actions.reboot_deadline;
                self.ops.reboots.insert(
                    node,
                    Reboot {
                        since: self.now,
                        deadline,
                        went_down: false,
                    },
                );
            }
        }
    }

    /// Overlays operator states on the rows and settles reboots: gone down and back, or past the deadline.
    pub(crate) fn overlay_operations(&mut self) {
        let now = self.now;
        let mut back = Vec::new();
        for (&node, reboot) in self.ops.reboots.iter_mut() {
            let status = &self.fleet.nodes()[node];
            let failed_since = status
                .failure
                .as_ref()
                .is_some_and(|f| f.at >= reboot.since);
            reboot.went_down |=
                failed_since || (self.ops.simulated && now >= reboot.since + DEMO_REBOOT);
            let fresh = status
                .sample_at
                .is_some_and(|at| at > reboot.since && reboot.went_down);
            if fresh && (!self.ops.simulated || now >= reboot.since + DEMO_REBOOT) {
                back.push(node);
            }
        }
        for node in back {
            self.ops.reboots.remove(&node);
            let name = self.node_name(node).to_string();
            self.journal.push(
                now,
                Some(node),
                Health::Ok,
                format!("{name}: back after reboot"),
            );
        }
        let deadline_text =
            |d: Duration| format!("did not come back within {} s of the reboot", d.as_secs());
        let limit = self.fleet.inventory().actions.reboot_deadline;
        for row in &mut self.rows {
            if let Some(reboot) = self.ops.reboots.get(&row.id) {
                row.state = NodeState::Rebooting;
                if now > reboot.deadline {
                    row.health = Health::Crit;
                    row.note = Some(deadline_text(limit));
                }
                continue;
            }
            match self.ops.drain.get(&row.id).map(|d| &d.state) {
                Some(DrainState::Drained) if !row.state.is_failure() => {
                    row.state = NodeState::Drained
                }
                Some(DrainState::Draining) if !row.state.is_failure() => {
                    row.state = NodeState::Draining
                }
                _ => {}
            }
        }
        for tenant in &mut self.tenants {
            tenant.drained = 0;
        }
        let inv = &self.fleet.inventory();
        for (i, t) in inv.tenants.iter().enumerate() {
            self.tenants[i].drained = t
                .nodes
                .iter()
                .filter(|&&n| {
                    matches!(self.rows[n].state, NodeState::Drained | NodeState::Draining)
                })
                .count();
        }
    }

    /// The in-place note for a node's latest action, if any.
    pub fn progress_note(&self, node: NodeId) -> Option<String> {
        if let Some(note) = self.ops.repairs.get(&node) {
            return Some(note.clone());
        }
        match self.ops.progress.get(&node)? {
            Progress::Running(kind) => Some(format!("{}: running…", kind.as_str())),
            Progress::Done(kind, r) if r.ok => Some(format!("{}: ok", kind.as_str())),
            Progress::Done(kind, r) => Some(format!("{}: FAILED: {}", kind.as_str(), r.detail)),
        }
    }
}
