//! The one fan-out over the sites of `--context all` for what the schedulers are asked (drain state, jobs and
//! pods): each site through its own inventory, backends, controller and SSH settings, its answer renumbered to
//! the merged inventory's nodes.

use super::exec::Executor;
use crate::inventory::{Inventory, MergedSite, NodeId};

/// A site's answer as `ask` gave it, and how its node ids read in the inventory asked about.
pub(crate) struct SiteAnswer<'a, T> {
    /// The site, `None` for a single site's own inventory.
    pub site: Option<&'a MergedSite>,
    pub answer: Result<T, String>,
    inv: &'a Inventory,
}

impl<'a, T> SiteAnswer<'a, T> {
    /// The answer `site` of the merged inventory `inv` gave another way (a recording of it).
    pub(crate) fn of(inv: &'a Inventory, site: &'a MergedSite, answer: T) -> Self {
        SiteAnswer {
            site: Some(site),
            answer: Ok(answer),
            inv,
        }
    }

    /// The id in the inventory asked about of the site's node `own`; `None` for a node it no longer holds.
    pub(crate) fn merged_id(&self, own: NodeId) -> Option<NodeId> {
        let Some(site) = self.site else {
            return Some(own);
        };
        let name = site.merged_name(&site.inventory.nodes.get(own)?.name);
        self.inv.find_node(&name)
    }

    /// A name the site's scheduler gives (a Slurm account, a namespace) as the merged inventory names its
    /// tenants (`SITE/NAME`), so the same account at two sites stays two tenants; as it is for a single site.
    pub(crate) fn merged_label(&self, label: &str) -> String {
        self.site
            .map_or_else(|| label.to_string(), |site| site.merged_name(label))
    }
}

/// Asks `ask` once per site of `inv`: a single site's inventory through `exec`; a merged inventory's
/// (`--context all`) sites that have a scheduler (Slurm or Kubernetes) one by one, each through its own
/// inventory and an executor of its own (`exec` is not theirs), an executor that cannot be made being that site's
/// error. Errors name their site. Sites without a scheduler are not asked.
pub(crate) fn every_site<'a, T>(
    inv: &'a Inventory,
    exec: &Executor,
    ask: impl Fn(&Inventory, &Executor) -> Result<T, String>,
) -> Vec<SiteAnswer<'a, T>> {
    let sites = inv.merged_sites();
    if sites.is_empty() {
        return vec![SiteAnswer {
            site: None,
            answer: ask(inv, exec),
            inv,
        }];
    }
    sites
        .iter()
        .filter(|site| site.inventory.any_scheduler())
        .map(|site| SiteAnswer {
            site: Some(site),
            answer: Executor::real(&site.inventory)
                .and_then(|exec| ask(&site.inventory, &exec))
                .map_err(|e| format!("site {}: {e}", site.name)),
            inv,
        })
        .collect()
}
