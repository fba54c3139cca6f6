//! Tenants from the schedulers: with `tenant_from = "scheduler"` a node's tenant is the Slurm accounts or
//! Kubernetes namespaces of the jobs on it (the inventory's when none runs), and the tenants table is regrouped
//! by them; in either mode each tenant's jobs are counted.

use std::collections::BTreeMap;

use super::rows::TenantRow;
use super::state::App;
use crate::inventory::TenantFrom;
use crate::telemetry::health::Health;

impl App {
    /// Applies the schedulers' tenants and job counts to the rows just derived.
    pub(crate) fn overlay_tenancy(&mut self) {
        let Some(workload) = self.ops.workload.as_ref() else {
            return;
        };
        // Each node's site says where its tenants come from (`--context all`).
        let inventory = std::sync::Arc::clone(self.fleet.inventory());
        let from_scheduler =
            |node: usize| inventory.rules(node).settings.tenant_from == TenantFrom::Scheduler;
        if self.rows.iter().any(|r| from_scheduler(r.id)) {
            for row in &mut self.rows {
                row.tenant = workload.tenant(&inventory, row.id, row.tenant.take());
            }
            self.tenants = regroup(&self.rows);
        }
        // A tenant's jobs: those billed to it when tenants come from the schedulers, else those on its nodes.
        for tenant in &mut self.tenants {
            let rows: Vec<&super::rows::NodeRow> = self
                .rows
                .iter()
                .filter(|r| holds(r.tenant.as_deref(), &tenant.name))
                .collect();
            // A node no scheduler was asked about (another site's, `--context all`) leaves the count unknown.
            if !rows.iter().all(|r| workload.knows(r.id)) {
                tenant.jobs = None;
                continue;
            }
            let mut ids: Vec<&str> = rows
                .iter()
                .flat_map(|r| workload.jobs(r.id).iter().map(move |j| (r.id, j)))
                .filter(|(node, j)| {
                    !from_scheduler(*node) || j.tenant.as_deref() == Some(tenant.name.as_str())
                })
                .map(|(_, j)| j.id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            tenant.jobs = Some(ids.len());
        }
    }
}

/// True when a node labelled `label` (`acme` or `acme+globex`) belongs to `tenant`.
fn holds(label: Option<&str>, tenant: &str) -> bool {
    label.is_some_and(|l| l.split('+').any(|t| t == tenant))
}

/// Tenant rows from the nodes' tenant labels: a node shared by several counts for each.
fn regroup(rows: &[super::rows::NodeRow]) -> Vec<TenantRow> {
    let mut by_name: BTreeMap<&str, (TenantRow, f64, usize)> = BTreeMap::new();
    for r in rows {
        let Some(label) = r.tenant.as_deref() else {
            continue;
        };
        for name in label.split('+') {
            let (t, util_sum, util_n) = by_name.entry(name).or_insert_with(|| {
                (
                    TenantRow {
                        name: name.to_string(),
                        ..TenantRow::default()
                    },
                    0.0,
                    0,
                )
            });
            t.nodes += 1;
            t.gpus += u64::from(r.gpus_expected);
            if let Some(u) = r.avg_util {
                *util_sum += u * r.gpus_seen as f64;
                *util_n += r.gpus_seen;
            }
            t.power_w += r.power_w.unwrap_or(0.0);
            match r.health {
                Health::Warn => t.warn += 1,
                Health::Crit => t.crit += 1,
                Health::Ok => {}
            }
            t.no_data += usize::from(r.state.is_failure());
            t.drained += usize::from(r.is_drained());
        }
    }
    by_name
        .into_values()
        .map(|(mut t, sum, n)| {
            t.avg_util = (n > 0).then(|| sum / n as f64);
            t
        })
        .collect()
}
