//! What one snapshot saw, ready to render: the nodes' views (filtered), the summary and the fleet's drift.

use std::time::{Duration, Instant, SystemTime};

use crate::fleet::filter::Filter;
use crate::fleet::view::{NodeView, Pending, Summary};
use crate::fleet::FleetState;
use crate::workload::{Job, Workload};

/// What one snapshot saw, ready to render.
pub(crate) struct Report<'a> {
    pub taken_at: SystemTime,
    pub inventory: &'a str,
    pub nodes: Vec<NodeView<'a>>,
    pub summary: Summary,
    /// Each site's summary, in inventory order, under `--context all`; empty for one site.
    pub sites: Vec<(&'a str, Summary)>,
    /// Aspects on which nodes differ, fleet-wide (the filter does not apply).
    pub drift: Vec<Drift<'a>>,
    /// What the schedulers said runs where (each site's, under `--context all`); `None` where none was asked.
    pub workload: Option<&'a Workload>,
}

/// One aspect on which nodes differ, with node names, for renderers.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Drift<'a> {
    /// The site whose nodes these are, under `--context all` (each site's drift is its own); absent for one site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
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
            site: a.site,
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

    pub(super) fn of(
        state: &'a FleetState,
        nodes: Vec<NodeView<'a>>,
        drift: Vec<Drift<'a>>,
    ) -> Self {
        Report {
            taken_at: SystemTime::now(),
            inventory: &state.inventory().source,
            summary: Summary::of(&nodes),
            sites: crate::fleet::sites::site_summaries(&nodes),
            nodes,
            drift,
            workload: None,
        }
    }

    /// Adds the schedulers' answer: each node's jobs, and its tenant where its site takes tenants from them.
    pub fn note_workload(&mut self, workload: &'a Workload, inv: &crate::inventory::Inventory) {
        for v in &mut self.nodes {
            v.tenant = workload.tenant(inv, v.id, v.tenant.take());
        }
        self.workload = Some(workload);
    }

    /// The jobs on `v`'s node: `None` where no scheduler was asked about it (unknown), else those it runs.
    pub(super) fn jobs(&self, v: &NodeView) -> Option<&'a [std::sync::Arc<Job>]> {
        self.workload
            .filter(|w| w.knows(v.id))
            .map(|w| w.jobs(v.id))
    }
}
