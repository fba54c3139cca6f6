//! Node actions in the TUI: marks, the reason prompt, the confirm dialog, progress per node, failures that
//! stay on screen until acknowledged. What an action did to a node (drained, rebooting) goes into fleet state
//! as an operations event; the TUI shows what fleet state holds.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use super::{App, Mode};
use crate::actions::status::{DrainState, NodeDrain};
use crate::actions::{self, plan, ActionKind, NodeResult, Request};
use crate::fleet::operations::{OperationEvent, Restart};
use crate::inventory::NodeId;
use crate::telemetry::health::Health;
use crate::transport::{Msg, NodeEvent};

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
    /// Taken by the node; waiting to see it act.
    Accepted(ActionKind, String),
    Done(ActionKind, NodeResult),
}

/// Messages from the action worker and the drain read-back, into `App::on_action`.
#[derive(Debug, Clone)]
pub enum ActionEvent {
    Started {
        node: NodeId,
        kind: ActionKind,
    },
    /// The node took the command; the runner waits to see it act (a reboot going down).
    Accepted {
        node: NodeId,
        kind: ActionKind,
        note: String,
    },
    Finished {
        node: NodeId,
        kind: ActionKind,
        result: NodeResult,
    },
    /// The request could not run at all (audit log not writable, plan error).
    Refused(String),
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
            P::Accepted { node, kind, note } => ActionEvent::Accepted { node, kind, note },
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
    /// Nodes fleet state showed restarting at the last refresh, so the journal can say when each is back.
    pub restarting: HashSet<NodeId>,
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
        if actions::read_only(self.ops.read_only, self.fleet.inventory()) {
            self.ops
                .failures
                .push(actions::read_only_refusal(kind.as_str()));
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
            gpu: None,
            keep_drained: false,
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
        // The remedy each node's last sample asks for; the repair looks again before it starts.
        let plans: Vec<_> = c
            .request
            .nodes
            .iter()
            .map(|&n| crate::repair::remedy::from_state(&self.fleet, n, self.now))
            .collect();
        let checks = [crate::repair::validate::describe(inv)];
        match crate::repair::commands(
            inv,
            &c.request.nodes,
            &plans,
            &checks,
            &reason,
            &c.request.operator,
        ) {
            Ok(commands) => {
                c.commands = crate::repair::remedy_lines(inv, &c.request.nodes, &plans);
                c.commands.extend(commands);
            }
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

    /// Drain states for the dialog's guards, from fleet state's last read-back: a preview. The runner asks the
    /// backend again before anything runs.
    fn drain_for_guards(&self, req: &Request) -> HashMap<NodeId, NodeDrain> {
        actions::run::affected(self.fleet.inventory(), req)
            .into_iter()
            .map(|n| {
                let d = self.fleet.drain(n).cloned().unwrap_or(NodeDrain {
                    state: DrainState::Unknown("no read-back from the drain backend yet".into()),
                    reason: None,
                    user: None,
                });
                (n, d)
            })
            .collect()
    }

    pub(crate) fn submit(&mut self, confirm: Confirm) {
        let verb = if confirm.repair {
            "repair"
        } else {
            confirm.request.kind.as_str()
        };
        for &n in &confirm.request.nodes {
            if confirm.repair {
                self.operation(
                    n,
                    OperationEvent::Repair {
                        text: "repair: starting".into(),
                        active: true,
                        by: Some(confirm.request.operator.clone()),
                    },
                );
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
                    // A step names no one: fleet state keeps who started the repair.
                    let event = OperationEvent::Repair {
                        text,
                        active: !step.finished(),
                        by: None,
                    };
                    self.operation(id, event);
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
                if kind == ActionKind::Reset {
                    self.operation(node, OperationEvent::Resetting(true));
                }
            }
            ActionEvent::Accepted { node, kind, note } => {
                self.ops
                    .progress
                    .insert(node, Progress::Accepted(kind, note));
            }
            ActionEvent::Finished { node, kind, result } => {
                if kind == ActionKind::Reset {
                    self.operation(node, OperationEvent::Resetting(false));
                }
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
                    if matches!(kind, ActionKind::Reset | ActionKind::Reboot) {
                        let log = crate::actions::run::audit_path(self.fleet.inventory());
                        let simulated = self.fleet.inventory().simulated;
                        self.fleet
                            .note_resets(&crate::actions::resets::read(&log, simulated));
                    }
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
                    .retain(|_, p| !matches!(p, Progress::Running(_) | Progress::Accepted(..)));
            }
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

    /// Files what an action or repair did to `node` into fleet state, as a read-back would.
    fn operation(&mut self, node: NodeId, event: OperationEvent) {
        self.fleet.apply(Msg {
            node,
            at: self.now,
            event: NodeEvent::Operation(event),
        });
    }

    /// What a successful action did to the node, until the next read-back says otherwise.
    fn after_success(&mut self, node: NodeId, kind: ActionKind) {
        let drain = |state| {
            OperationEvent::Drain(NodeDrain {
                state,
                reason: None,
                user: None,
            })
        };
        match kind {
            ActionKind::Drain => {
                let state = if self.ops.simulated {
                    DrainState::Drained
                } else {
                    DrainState::Draining
                };
                self.operation(node, drain(state));
            }
            ActionKind::Undrain => {
                self.operation(node, drain(DrainState::Active("resumed".into())));
            }
            ActionKind::Reboot => self.restarting(node, Restart::Reboot),
            // The runner judged the GPUs on a fresh look after the reset; the node never drops off, so there is
            // no return to watch.
            ActionKind::Reset => {}
        }
    }

    /// A reboot or reset was accepted: fleet state watches the node go down and come back (in the demo fleet,
    /// whose nodes never drop off, it counts as down after a while).
    fn restarting(&mut self, node: NodeId, kind: Restart) {
        let practice = self.ops.simulated.then_some(DEMO_REBOOT);
        // The runner reports an SSH reboot ok only once it saw the node down.
        let seen_down = !self.ops.simulated
            && kind == Restart::Reboot
            && actions::probe::reboot_confirms_down(self.fleet.inventory(), node);
        self.operation(
            node,
            OperationEvent::Restarting {
                kind,
                by: None,
                practice,
                seen_down,
            },
        );
    }

    /// Journals each node whose restart fleet state now sees back.
    pub(crate) fn journal_returns(&mut self) {
        let now = self.now;
        let was: Vec<NodeId> = self.ops.restarting.drain().collect();
        for node in 0..self.fleet.nodes().len() {
            if let Some((kind, ret)) = self.fleet.restart(node, now) {
                if ret.in_flight() {
                    self.ops.restarting.insert(node);
                } else if was.contains(&node) {
                    let name = self.node_name(node).to_string();
                    self.journal.push(
                        now,
                        Some(node),
                        Health::Ok,
                        format!("{name}: back after {}", kind.as_str()),
                    );
                }
            }
        }
    }

    /// The in-place note for a node's latest action, if any.
    pub fn progress_note(&self, node: NodeId) -> Option<String> {
        if let Some(note) = self.fleet.repair_note(node) {
            return Some(note.to_string());
        }
        match self.ops.progress.get(&node)? {
            Progress::Running(kind) => Some(format!("{}: running…", kind.as_str())),
            Progress::Accepted(kind, note) => Some(format!("{}: {note}", kind.as_str())),
            Progress::Done(kind, r) if r.ok => Some(format!("{}: ok", kind.as_str())),
            Progress::Done(kind, r) => Some(format!("{}: FAILED: {}", kind.as_str(), r.detail)),
        }
    }
}
