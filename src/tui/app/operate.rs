//! Node actions in the TUI: marks, the reason prompt, the confirm dialog, progress per node, failures that
//! stay on screen until acknowledged. What an action did to a node (drained, rebooting) is `actions::after`'s to
//! say; the TUI files it into fleet state as an operations event and shows what fleet state holds.

use std::collections::HashMap;
use std::sync::Arc;

pub use super::action_state::{ActionEvent, Confirm, Operations, Progress};
use super::modes::Mode;
use super::state::App;
use crate::actions::status::{DrainState, NodeDrain};
use crate::actions::{self, plan, ActionKind, Request};
use crate::fleet::operations::OperationEvent;
use crate::inventory::NodeId;
use crate::telemetry::health::Health;
use crate::transport::{Msg, NodeEvent};

/// Average utilisation above which draining a tenant's node earns a warning in the dialog.
const BUSY_UTIL: f64 = 50.0;
/// Jobs named in the confirm dialog's first line; the rest are counted.
const MAX_JOBS_SHOWN: usize = 4;

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
        // A merged inventory holds the first site's SSH settings, not the selected node's site's.
        if !self.fleet.inventory().sites().is_empty() {
            self.ops
                .failures
                .push("shell: not across sites; :ctx SITE first, then open the shell there".into());
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
    pub(crate) fn confirm_repair(&mut self, reason: String) {
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
        let operation = event
            .operation()
            .and_then(|(node, op)| Some((self.fleet.inventory().find_node(node)?, op)));
        match event {
            crate::repair::Event::Step { node, step, note } => {
                let id = self.fleet.inventory().find_node(&node);
                let health = match step {
                    crate::repair::Step::Failed { .. } => Health::Crit,
                    _ => Health::Ok,
                };
                let text = crate::repair::Event::step_text(&step, &note);
                self.journal
                    .push(self.now, id, health, format!("{node}: {text}"));
                if health == Health::Crit {
                    self.ops.failures.push(format!("{node}: {text}"));
                }
            }
            crate::repair::Event::Problem(p) => {
                self.journal.push(self.now, None, Health::Warn, p);
            }
        }
        if let Some((id, operation)) = operation {
            self.operation(id, operation);
        }
    }

    pub fn on_action(&mut self, event: ActionEvent) {
        self.dirty = true;
        match event {
            ActionEvent::Started { node, kind } => {
                self.ops.progress.insert(node, Progress::Running(kind));
                if let Some(event) = actions::after::started(kind) {
                    self.operation(node, event);
                }
            }
            ActionEvent::Accepted { node, kind, note } => {
                self.ops
                    .progress
                    .insert(node, Progress::Accepted(kind, note));
            }
            ActionEvent::Finished { node, kind, result } => {
                let inv = Arc::clone(self.fleet.inventory());
                for event in
                    actions::after::finished(&inv, node, kind, result.ok, self.ops.simulated)
                {
                    self.operation(node, event);
                }
                let name = self.node_name(node).to_string();
                if result.ok {
                    self.journal.push(
                        self.now,
                        Some(node),
                        Health::Ok,
                        format!("{name}: {} ok", kind.as_str()),
                    );
                    // A reset or reboot just audited makes the XIDs before it history.
                    if matches!(kind, ActionKind::Reset | ActionKind::Reboot) {
                        let resets = crate::actions::resets::read_fleet(self.fleet.inventory());
                        self.fleet.note_resets(&resets);
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
