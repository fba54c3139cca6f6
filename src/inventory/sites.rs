//! Several sites as one fleet (`--context all`): their inventories merged, every node, cabinet and tenant named
//! `SITE/NAME`, so names that repeat across sites stay apart and every row says where it is. Each site keeps
//! its own rules (`[defaults]`, `[thresholds]`, `[expect]`, actions): a node is judged by its own site's.

use std::sync::Arc;

use super::model::{
    ActionSettings, Expect, Inventory, MergedSite, Node, NodeId, Settings, Thresholds,
};

/// Separates a site from a name: `east/c012n2`. Inventory names never hold it.
pub(crate) const SITE_SEPARATOR: char = '/';

/// The site a node name of a merged inventory starts with; `None` for a name of one site's own inventory.
pub(crate) fn site_of(name: &str) -> Option<&str> {
    name.split_once(SITE_SEPARATOR).map(|(site, _)| site)
}

/// A node name of a merged inventory without its site (`east/c012n2` → `c012n2`); any other name as it is.
pub(crate) fn name_within_site(name: &str) -> &str {
    name.split_once(SITE_SEPARATOR)
        .map_or(name, |(_, rest)| rest)
}

impl MergedSite {
    /// The merged inventory's name for this site's node `name`.
    pub(crate) fn merged_name(&self, name: &str) -> String {
        format!("{}{SITE_SEPARATOR}{name}", self.name)
    }
}

/// The rules a node is judged by: its site's in a merged inventory, else the inventory's own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub settings: &'a Settings,
    pub thresholds: &'a Thresholds,
    pub expect: &'a Expect,
    pub actions: &'a ActionSettings,
}

/// The merged name of the node a record names `name`, in a log or store that the `sharing` sites of a merged
/// inventory write: the one of them with a node of that name, or the only one whatever its nodes are now; `None`
/// where several sharing sites have such a node, since the record cannot say whose it is.
pub(crate) fn shared_name(sharing: &[&MergedSite], name: &str) -> Option<String> {
    let mut holding = sharing
        .iter()
        .filter(|s| s.inventory.find_node(name).is_some());
    match (sharing, holding.next(), holding.next()) {
        (_, Some(one), None) | ([one], None, None) => Some(one.merged_name(name)),
        _ => None,
    }
}

impl Node {
    /// The site of a node of a merged inventory; `None` in a single site's own inventory.
    pub fn site(&self) -> Option<&str> {
        site_of(&self.name)
    }
}

impl Inventory {
    /// The sites' inventories as one, in the order given; each site's nodes keep their order, after the previous
    /// site's. Each site's rules are kept for its nodes ([`Inventory::rules`]); the merged inventory's own are the
    /// first site's, with the shortest interval of any site (the pace of a view over all of them).
    pub fn merge(sites: &[(String, Arc<Inventory>)]) -> Option<Inventory> {
        let (_, first) = sites.first()?;
        let mut merged = Inventory::clone(first);
        merged.settings.interval = sites
            .iter()
            .map(|(_, inv)| inv.settings.interval)
            .min()
            .unwrap_or(first.settings.interval);
        merged.merged_sites = sites
            .iter()
            .map(|(site, inv)| MergedSite {
                name: site.clone(),
                inventory: Arc::clone(inv),
            })
            .collect();
        merged.source = sites
            .iter()
            .map(|(site, inv)| format!("{site}={}", inv.source))
            .collect::<Vec<_>>()
            .join(", ");
        merged.simulated = sites.iter().any(|(_, inv)| inv.simulated);
        merged.prometheus = None;
        merged.site = None;
        merged.file = None;
        merged.by_name = std::sync::OnceLock::new();
        merged.nodes.clear();
        merged.cabinets.clear();
        merged.tenants.clear();
        for (site, inv) in sites {
            let (nodes, cabinets, tenants) = (
                merged.nodes.len(),
                merged.cabinets.len(),
                merged.tenants.len(),
            );
            let named = |name: &str| format!("{site}{SITE_SEPARATOR}{name}");
            let shifted = |ids: &[NodeId]| ids.iter().map(|&n| n + nodes).collect();
            merged.nodes.extend(inv.nodes.iter().map(|n| {
                let mut node = n.clone();
                node.name = named(&n.name);
                node.cabinet += cabinets;
                for t in &mut node.tenancy {
                    t.tenant += tenants;
                }
                node
            }));
            merged.cabinets.extend(inv.cabinets.iter().map(|c| {
                let mut cabinet = c.clone();
                cabinet.name = named(&c.name);
                cabinet.nodes = shifted(&c.nodes);
                cabinet
            }));
            merged.tenants.extend(inv.tenants.iter().map(|t| {
                let mut tenant = t.clone();
                tenant.name = named(&t.name);
                tenant.nodes = shifted(&t.nodes);
                tenant
            }));
        }
        Some(merged)
    }

    /// Where node `id`'s site's rules are in a merged inventory; 0 (the inventory's own) elsewhere.
    pub(crate) fn site_index(&self, id: NodeId) -> usize {
        if self.merged_sites.is_empty() {
            return 0;
        }
        self.nodes
            .get(id)
            .and_then(Node::site)
            .and_then(|site| self.merged_sites.iter().position(|r| r.name == site))
            .unwrap_or(0)
    }

    /// How many sets of rules nodes are judged by: one per site, one for a single site's own inventory.
    pub(crate) fn site_count(&self) -> usize {
        self.merged_sites.len().max(1)
    }

    /// The rules node `id` is judged by: its own site's.
    pub(crate) fn rules(&self, id: NodeId) -> Rules<'_> {
        match self.merged_sites.get(self.site_index(id)) {
            Some(site) => site.inventory.own_rules(),
            None => self.own_rules(),
        }
    }

    fn own_rules(&self) -> Rules<'_> {
        Rules {
            settings: &self.settings,
            thresholds: &self.thresholds,
            expect: &self.expect,
            actions: &self.actions,
        }
    }

    /// The sites of a merged inventory with their own inventories, in order; empty for one site's own.
    pub(crate) fn merged_sites(&self) -> &[MergedSite] {
        &self.merged_sites
    }

    /// The node another record names `name` in the inventory read from `source` (a repair's, a store's): this
    /// inventory's own node, or in a merged inventory the node of the site read from `source`.
    pub(crate) fn find_node_of(&self, source: &str, name: &str) -> Option<NodeId> {
        if self.source == source {
            return self.find_node(name);
        }
        let site = self
            .merged_sites
            .iter()
            .find(|s| s.inventory.source == source)?;
        self.find_node(&site.merged_name(name))
    }

    /// The sites of a merged inventory in order, each with how many nodes it has; empty for one site's own.
    pub fn sites(&self) -> Vec<(&str, usize)> {
        let mut sites: Vec<(&str, usize)> = Vec::new();
        for site in self.nodes.iter().filter_map(Node::site) {
            match sites.last_mut() {
                Some((last, count)) if *last == site => *count += 1,
                _ => sites.push((site, 1)),
            }
        }
        sites
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_sites_keep_repeated_names_apart() {
        let text = "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n[[tenant]]\nname = \"t\"\nnodes = \"n2\"\n";
        let east = Inventory::parse("east.toml", text).unwrap();
        let west = Inventory::parse("west.toml", text).unwrap();
        let sites = [
            ("east".into(), Arc::new(east.clone())),
            ("west".into(), Arc::new(west.clone())),
        ];
        let merged = Inventory::merge(&sites).unwrap();
        let names: Vec<&str> = merged.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["east/n1", "east/n2", "west/n1", "west/n2"]);
        assert_eq!(merged.sites(), [("east", 2), ("west", 2)]);
        assert_eq!(merged.nodes[3].site(), Some("west"));
        assert_eq!(merged.cabinets[merged.nodes[3].cabinet].name, "west/c1");
        assert_eq!(merged.tenants[1].nodes, [3]);
        assert_eq!(merged.tenant_label(3).as_deref(), Some("west/t"));
        assert_eq!(merged.source, "east=east.toml, west=west.toml");
        assert!(east.sites().is_empty());
        assert_eq!(east.nodes[0].site(), None);
    }

    #[test]
    fn each_node_keeps_its_own_sites_rules() {
        let nodes = "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n";
        let east = Inventory::parse(
            "east.toml",
            &format!("[defaults]\ninterval_ms = 2000\n[thresholds]\ngpu_temp_crit_c = 70\n{nodes}"),
        )
        .unwrap();
        let west = Inventory::parse(
            "west.toml",
            &format!("[defaults]\ninterval_ms = 500\n[expect]\ndriver = \"560.35.03\"\n{nodes}"),
        )
        .unwrap();
        let sites = [
            ("east".into(), Arc::new(east.clone())),
            ("west".into(), Arc::new(west.clone())),
        ];
        let merged = Inventory::merge(&sites).unwrap();
        assert_eq!(merged.site_count(), 2);
        assert_eq!(merged.site_index(1), 0);
        assert_eq!(merged.site_index(2), 1);
        assert_eq!(merged.rules(0).thresholds.gpu_temp_crit_c, Some(70.0));
        assert_eq!(merged.rules(3).thresholds.gpu_temp_crit_c, None);
        assert_eq!(merged.rules(0).expect.driver, None);
        assert_eq!(merged.rules(3).expect.driver.as_deref(), Some("560.35.03"));
        assert_eq!(merged.rules(0).settings.interval.as_millis(), 2000);
        assert_eq!(merged.rules(2).settings.interval.as_millis(), 500);
        // The view over both keeps the faster site's pace.
        assert_eq!(merged.settings.interval.as_millis(), 500);
        // Kept as nodes are picked out of the merged inventory.
        let picked = merged.only(&[3]);
        assert_eq!(picked.rules(0).expect.driver.as_deref(), Some("560.35.03"));
        assert_eq!(east.site_count(), 1);
        assert_eq!(east.rules(1).thresholds.gpu_temp_crit_c, Some(70.0));
    }
}
