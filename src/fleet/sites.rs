//! Several sites in one fleet state (`--context all`): totals per site (the header's line per site, the
//! snapshot's summary per site), and what is counted within a site only — drift majorities and usual
//! InfiniBand rates, since two sites may rightly run different drivers and fabrics.

use super::drift::{self, AspectDrift};
use super::state::FleetState;
use super::view::{NodeView, Summary};
use crate::inventory::{site_of, NodeId};

/// The summary of each site's run of views (views come in inventory order, one site after the other);
/// empty for one site's own fleet.
pub(crate) fn site_summaries<'a>(views: &[NodeView<'a>]) -> Vec<(&'a str, Summary)> {
    let mut sites = Vec::new();
    let mut start = 0;
    while let Some(site) = views.get(start).and_then(|v| site_of(v.name)) {
        let len = views[start..]
            .iter()
            .take_while(|v| site_of(v.name) == Some(site))
            .count();
        sites.push((site, Summary::of(&views[start..start + len])));
        start += len;
    }
    sites
}

impl FleetState {
    /// Every aspect on which a site's nodes differ, nodes grouped by value, each site against its own
    /// `[expect]` and majority (one site's fleet: one list; several: each site's in turn).
    pub fn drift(&self) -> Vec<AspectDrift> {
        let inv = &self.inventory;
        // One site's own fleet: its nodes as they are, without copying their identities.
        if let [tally] = self.tallies.as_slice() {
            let declared: Vec<Option<u32>> = (0..self.identities.len())
                .map(|id| self.declared_gpus(id))
                .collect();
            return drift::groups(&self.identities, tally, inv.rules(0).expect, &declared);
        }
        let mut out = Vec::new();
        for (site, tally) in self.tallies.iter().enumerate() {
            let members: Vec<NodeId> = (0..self.identities.len())
                .filter(|&id| inv.site_index(id) == site)
                .collect();
            let Some(&first) = members.first() else {
                continue;
            };
            let identities: Vec<drift::Identity> = members
                .iter()
                .map(|&id| self.identities[id].clone())
                .collect();
            let declared: Vec<Option<u32>> =
                members.iter().map(|&id| self.declared_gpus(id)).collect();
            let expect = inv.rules(first).expect;
            for mut aspect in drift::groups(&identities, tally, expect, &declared) {
                for value in &mut aspect.values {
                    for node in &mut value.nodes {
                        *node = members[*node];
                    }
                }
                out.push(aspect);
            }
        }
        out
    }

    /// The rate port `port` of `hca` usually runs at across node `id`'s site.
    pub(super) fn usual_rate(&self, id: NodeId, hca: &str, port: u32) -> Option<f64> {
        self.rates
            .get(self.inventory.site_index(id))?
            .usual(hca, port)
    }
}
