//! What the TUI's action side holds and hears: marks, progress, the confirm dialog, queued requests, and the
//! events the background work (runner, repair, read-backs, shell) sends into the loop.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::actions::{self, ActionKind, NodeResult, Request};
use crate::inventory::NodeId;

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
