//! What every step does: pick the workflow's nodes in its step, move one on (reporting it), and run a request
//! through the action runner.

use super::workflow::{Context, Event, Step, Workflow};
use crate::actions::run::{self, Progress};
use crate::actions::{ActionKind, Request};
use crate::inventory::NodeId;

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
