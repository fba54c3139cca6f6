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
            let name = inv
                .nodes
                .get(first)
                .and_then(|n| n.site())
                .map(String::from);
            for mut aspect in drift::groups(&identities, tally, expect, &declared) {
                aspect.site.clone_from(&name);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::fleet::{FleetState, NodeState};
    use crate::inventory::Inventory;
    use crate::telemetry::NodeSample;
    use crate::transport::{Msg, NodeEvent};

    /// A node is stale after 3 intervals of its own site, not of the first site's.
    #[test]
    fn each_node_goes_stale_by_its_own_sites_interval() {
        let site = |name: &str, interval_ms: u32| {
            let text = format!(
                "[defaults]\ninterval_ms = {interval_ms}\n[[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\n"
            );
            let inv = Inventory::parse(&format!("{name}.toml"), &text).unwrap();
            (name.to_string(), Arc::new(inv))
        };
        let merged = Inventory::merge(&[site("slow", 10_000), site("fast", 1_000)]).unwrap();
        let mut state = FleetState::new(Arc::new(merged));
        let at = Instant::now();
        for node in [0, 1] {
            let event = NodeEvent::Sample(NodeSample::default());
            state.apply(Msg { node, at, event });
        }
        let later = at + Duration::from_secs(5);
        assert_eq!(state.state(0, later), NodeState::Up);
        assert_eq!(state.state(1, later), NodeState::Stale);
        assert_eq!(state.stale_after(1), Duration::from_secs(3));
    }
}
