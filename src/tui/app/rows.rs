//! What the views show, computed from `FleetState` when data changes (not per frame): node rows,
//! tenant rows and fleet totals.

use std::time::{Duration, Instant};

use crate::fleet::operations::Activity;
use crate::fleet::view::{NodeView, Pending, Summary};
use crate::fleet::{FleetState, NodeState};
use crate::inventory::NodeId;
use crate::telemetry::health::Health;
use crate::telemetry::Source;

/// One node, reduced to what tables and cells show.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub id: NodeId,
    pub tenant: Option<String>,
    pub state: NodeState,
    pub health: Health,
    /// The first reason for the health, else the node's error.
    pub note: Option<String>,
    pub source: Option<Source>,
    pub age: Option<Duration>,
    pub gpus_seen: usize,
    pub gpus_expected: u32,
    pub avg_util: Option<f64>,
    pub max_util: Option<u32>,
    pub max_temp: Option<u32>,
    pub max_mem_temp: Option<u32>,
    pub power_w: Option<f64>,
    pub has_xid: bool,
    pub has_ecc: bool,
    pub has_remap: bool,
    pub hw_throttle: bool,
    /// A repeat offender (`fleet::memory::LEMON`): it or a GPU it holds had too many incidents lately.
    pub lemon: bool,
}

impl NodeRow {
    pub(crate) fn from_view(v: &NodeView) -> NodeRow {
        let samples = || v.gpus.iter().map(|g| g.sample);
        let utils: Vec<u32> = samples().filter_map(|g| g.util_pct).collect();
        let powers: Vec<f64> = samples().filter_map(|g| g.power_w).collect();
        NodeRow {
            id: v.id,
            tenant: v.tenant.clone(),
            state: v.state,
            health: v.verdict.health,
            note: note(v),
            source: v.source,
            age: v.sample_age,
            gpus_seen: crate::fleet::view::gpus_seen(&v.gpus),
            gpus_expected: v.expected_gpus,
            avg_util: (!utils.is_empty())
                .then(|| f64::from(utils.iter().sum::<u32>()) / utils.len() as f64),
            max_util: utils.iter().max().copied(),
            max_temp: samples().filter_map(|g| g.temp_c).max(),
            max_mem_temp: samples().filter_map(|g| g.mem_temp_c).max(),
            power_w: (!powers.is_empty()).then(|| crate::telemetry::total(powers.iter().copied())),
            has_xid: samples().any(|g| g.xid.as_ref().is_some_and(|x| !x.is_empty())),
            has_ecc: samples().any(|g| g.ecc_uncorrected.is_some_and(|n| n > 0)),
            has_remap: samples().any(|g| {
                g.remapped_rows_pending == Some(true) || g.remapped_rows_failed == Some(true)
            }),
            hw_throttle: samples()
                .any(|g| g.throttle.iter().flatten().any(|t| t.starts_with("hw_"))),
            lemon: v
                .verdict
                .reasons
                .iter()
                .any(|r| r.starts_with(crate::fleet::memory::LEMON)),
        }
    }

    /// Drained or draining, as the tenant rows count it.
    pub(crate) fn is_drained(&self) -> bool {
        matches!(self.state, NodeState::Drained | NodeState::Draining)
    }

    /// `X` XID, `E` ECC, `R` row remap, `T` hardware throttling, `L` repeat offender (lemon).
    pub(crate) fn flags(&self) -> String {
        [
            (self.has_xid, 'X'),
            (self.has_ecc, 'E'),
            (self.has_remap, 'R'),
            (self.hw_throttle, 'T'),
            (self.lemon, 'L'),
        ]
        .iter()
        .map(|&(on, c)| if on { c } else { '·' })
        .collect()
    }
}

/// The first reason for the health, else the node's error; a drain's who and why before it.
fn note(v: &NodeView) -> Option<String> {
    let reason = v.verdict.reasons.first().or(v.error.as_ref());
    let drain = v.operations.as_ref().filter(|o| {
        matches!(o.activity, Activity::Drained | Activity::Draining)
            && (o.reason.is_some() || o.by.is_some())
    });
    match (drain, reason) {
        (Some(o), Some(r)) => Some(format!("{}; {r}", o.describe())),
        (Some(o), None) => Some(o.describe()),
        (None, r) => r.cloned(),
    }
}

/// One tenant's share of the fleet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantRow {
    pub name: String,
    pub nodes: usize,
    pub gpus: u64,
    pub avg_util: Option<f64>,
    pub power_w: f64,
    pub warn: usize,
    pub crit: usize,
    pub no_data: usize,
    pub drained: usize,
    /// Distinct jobs and pods on the tenant's nodes (`None`: no scheduler answered).
    pub jobs: Option<usize>,
}

/// Fleet totals for the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub summary: Summary,
    pub stale: usize,
    pub no_data: usize,
    pub connecting: usize,
    pub avg_util: Option<f64>,
    pub budget_kw: f64,
    /// Each site's summary under `--context all`, in inventory order; empty for one site.
    pub sites: Vec<(String, Summary)>,
}

/// Everything derived in one pass over the fleet.
pub(crate) struct Derived {
    pub rows: Vec<NodeRow>,
    pub tenants: Vec<TenantRow>,
    pub totals: Totals,
}

pub fn derive(fleet: &FleetState, now: Instant) -> Derived {
    let views = fleet.node_views(now, Pending::Connecting);
    let rows: Vec<NodeRow> = views.iter().map(NodeRow::from_view).collect();
    let inv = &fleet.inventory();
    let (mut util_sum, mut util_n) = (0.0, 0usize);
    for v in &views {
        for u in v.gpus.iter().filter_map(|g| g.sample.util_pct) {
            util_sum += f64::from(u);
            util_n += 1;
        }
    }
    let totals = Totals {
        summary: Summary::of(&views),
        stale: rows.iter().filter(|r| r.state == NodeState::Stale).count(),
        no_data: rows.iter().filter(|r| r.state.is_failure()).count(),
        connecting: rows
            .iter()
            .filter(|r| r.state == NodeState::Connecting)
            .count(),
        avg_util: (util_n > 0).then(|| util_sum / util_n as f64),
        budget_kw: crate::telemetry::total(inv.cabinets.iter().filter_map(|c| c.power_budget_kw)),
        sites: crate::fleet::sites::site_summaries(&views)
            .into_iter()
            .map(|(site, s)| (site.to_string(), s))
            .collect(),
    };
    let tenants = inv
        .tenants
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let mut row = TenantRow {
                name: t.name.clone(),
                nodes: t.nodes.len(),
                gpus: 0,
                avg_util: None,
                power_w: 0.0,
                warn: 0,
                crit: 0,
                no_data: 0,
                drained: 0,
                jobs: None,
            };
            let (mut sum, mut n) = (0.0, 0usize);
            for &id in &t.nodes {
                let node = &inv.nodes[id];
                let held: Vec<u32> = node
                    .tenancy
                    .iter()
                    .filter(|h| h.tenant == index)
                    .flat_map(|h| {
                        h.gpus
                            .clone()
                            .unwrap_or_else(|| (0..node.expected_gpus).collect())
                    })
                    .collect();
                row.gpus += held.len() as u64;
                for g in views[id]
                    .gpus
                    .iter()
                    .filter(|g| held.contains(&g.sample.index))
                {
                    if let Some(u) = g.sample.util_pct {
                        sum += f64::from(u);
                        n += 1;
                    }
                    row.power_w += g.sample.power_w.unwrap_or(0.0);
                }
                match rows[id].health {
                    Health::Warn => row.warn += 1,
                    Health::Crit => row.crit += 1,
                    Health::Ok => {}
                }
                row.no_data += usize::from(rows[id].state.is_failure());
                row.drained += usize::from(rows[id].is_drained());
            }
            row.avg_util = (n > 0).then(|| sum / n as f64);
            row
        })
        .collect();
    Derived {
        rows,
        tenants,
        totals,
    }
}
