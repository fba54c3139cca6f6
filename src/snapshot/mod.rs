//! `fleetop snapshot`: one pass over the fleet within a deadline, rendered as table, JSON, CSV or Prometheus text.

pub(crate) mod csv;
mod json;
mod prom;
mod table;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::fleet::filter::Filter;
use crate::fleet::view::{NodeView, Pending, Summary};
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::inventory::NodeId;
use crate::transport::{FailureKind, NodeEvent, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Prom,
}

/// What one snapshot saw, ready to render.
pub(crate) struct Report<'a> {
    pub taken_at: SystemTime,
    pub inventory: &'a str,
    pub nodes: Vec<NodeView<'a>>,
    pub summary: Summary,
    /// Aspects on which nodes differ, fleet-wide (the filter does not apply).
    pub drift: Vec<Drift<'a>>,
}

/// One aspect on which nodes differ, with node names, for renderers.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Drift<'a> {
    pub aspect: &'static str,
    /// What values are compared with: `[expect]`, the fleet majority, or the jump host's build.
    pub reference: Option<String>,
    pub values: Vec<DriftValue<'a>>,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct DriftValue<'a> {
    pub value: String,
    pub count: usize,
    pub nodes: Vec<&'a str>,
    /// Why these nodes drift (`null`: they do not, e.g. the majority or nodes without an agent).
    pub drift: Option<String>,
    /// The value is the one compared with.
    pub is_reference: bool,
}

fn drift(state: &FleetState) -> Vec<Drift<'_>> {
    let inv = state.inventory();
    state
        .drift()
        .into_iter()
        .map(|a| Drift {
            aspect: a.aspect.label(),
            reference: a.reference.map(|r| format!("{} {}", r.from, r.value)),
            values: a
                .values
                .into_iter()
                .map(|v| DriftValue {
                    count: v.nodes.len(),
                    nodes: v
                        .nodes
                        .iter()
                        .map(|&n| inv.nodes[n].name.as_str())
                        .collect(),
                    value: v.value,
                    drift: v.drift,
                    is_reference: v.is_reference,
                })
                .collect(),
        })
        .collect()
}

/// Follows every node until each has answered (a sample or a failure) or `timeout` passes.
pub async fn collect(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    timeout: Duration,
) -> FleetState {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let following = transport.follow(&inventory, tx);
    let mut state = FleetState::new(inventory);
    let deadline = tokio::time::Instant::now() + timeout;
    // A connection that failed once (a reset under load, a blip) gets its second try before it counts as
    // the node's answer, so one transient error does not page anyone; other failures are answers at once.
    let tries = if transport.reconnects() { 2 } else { 1 };
    let mut unreachable = vec![0u32; state.nodes().len()];
    let mut answered = vec![false; state.nodes().len()];
    let mut waiting = state.nodes().len();
    while waiting > 0 {
        // A channel that always has a message ready would never let `timeout_at` fire: check first.
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(_) => break,
        };
        let node = msg.node;
        if node >= answered.len() {
            continue;
        }
        if let NodeEvent::Failed {
            kind: FailureKind::Unreachable,
            ..
        } = msg.event
        {
            unreachable[node] += 1;
        }
        state.apply(msg);
        // Once a node has answered it stays answered, whatever its later tries report.
        if !answered[node] && done(&state, node, &unreachable, tries) {
            answered[node] = true;
            waiting -= 1;
        }
    }
    // Whatever arrived together with the last answer is kept too.
    while let Ok(msg) = rx.try_recv() {
        state.apply(msg);
    }
    drop(following);
    state
}

/// True once `node` has given its answer: a sample, a failure that is not a lost connection, or its last
/// allowed connection failure.
fn done(state: &FleetState, node: NodeId, unreachable: &[u32], tries: u32) -> bool {
    let status = &state.nodes()[node];
    status.sample.is_some()
        || status
            .failure
            .as_ref()
            .is_some_and(|f| f.kind != FailureKind::Unreachable || unreachable[node] >= tries)
}

/// Prometheus text of every node `state` holds, judged as live views judge them at `now`: the agent's
/// `/metrics`, the same families `snapshot --format prom` writes.
pub fn prometheus(state: &FleetState, now: Instant) -> String {
    Report::of(
        state,
        state.node_views(now, Pending::Connecting),
        Vec::new(),
    )
    .render(Format::Prom)
}

impl<'a> Report<'a> {
    /// The views of a pass that `started` and was bounded by `timeout`, taken at `now`.
    pub fn new(
        state: &'a FleetState,
        filter: &Filter,
        started: Instant,
        now: Instant,
        timeout: Duration,
    ) -> Self {
        let nodes: Vec<NodeView> = state
            .node_views(
                now,
                Pending::TimedOut {
                    limit: timeout,
                    started,
                },
            )
            .into_iter()
            .filter(|v| filter.matches(v))
            .collect();
        Report::of(state, nodes, drift(state))
    }

    fn of(state: &'a FleetState, nodes: Vec<NodeView<'a>>, drift: Vec<Drift<'a>>) -> Self {
        Report {
            taken_at: SystemTime::now(),
            inventory: &state.inventory().source,
            summary: Summary::of(&nodes),
            nodes,
            drift,
        }
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => table::render(self),
            Format::Json => json::render(self),
            Format::Csv => csv::render(self),
            Format::Prom => prom::render(self),
        }
    }
}

#[cfg(test)]
mod output_tests;
