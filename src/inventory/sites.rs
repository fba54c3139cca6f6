//! Several sites as one fleet (`--context all`): their inventories merged, every node, cabinet and tenant named
//! `SITE/NAME`, so names that repeat across sites stay apart and every row says where it is.

use super::model::{Inventory, Node, NodeId};

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

impl Node {
    /// The site of a node of a merged inventory; `None` in a single site's own inventory.
    pub fn site(&self) -> Option<&str> {
        site_of(&self.name)
    }
}

impl Inventory {
    /// The sites' inventories as one, in the order given; each site's nodes keep their order, after the previous
    /// site's. Settings, thresholds and expectations are the first site's: each site is still followed through
    /// its own transport, built from its own inventory.
    pub fn merge(sites: &[(String, &Inventory)]) -> Option<Inventory> {
        let (_, first) = sites.first()?;
        let mut merged = (*first).clone();
        merged.source = sites
            .iter()
            .map(|(site, inv)| format!("{site}={}", inv.source))
            .collect::<Vec<_>>()
            .join(", ");
        merged.simulated = sites.iter().any(|(_, inv)| inv.simulated);
        merged.prometheus = None;
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
        let merged = Inventory::merge(&[("east".into(), &east), ("west".into(), &west)]).unwrap();
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
}
