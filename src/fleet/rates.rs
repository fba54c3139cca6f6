//! The rate each InfiniBand port (by HCA name and port number) usually runs at across the fleet, tallied as
//! nodes report, so a port that trained lower than the same port on other nodes is named. Rates are kept in
//! Mb/s as integers so they can be counted exactly.

use std::collections::HashMap;

use crate::inventory::NodeId;
use crate::telemetry::delta::NodeDelta;
use crate::telemetry::fabric::IbPort;

#[derive(Debug, Clone, Default)]
pub(crate) struct PortRates {
    /// HCA → port → the nodes at each rate, and the usual rate.
    counts: HashMap<String, HashMap<u32, PortTally>>,
    /// What each node contributed last: (HCA, port, rate).
    by_node: Vec<Vec<(String, u32, u64)>>,
}

/// One port across the fleet: nodes by rate (Mb/s), and the rate more nodes run than any other, kept as the
/// counts change (rarely) so a lookup per port and refresh costs two hash probes.
#[derive(Debug, Clone, Default)]
struct PortTally {
    nodes: HashMap<u64, usize>,
    usual: Option<u64>,
}

impl PortTally {
    fn recompute(&mut self) {
        let mut best: Option<(u64, usize)> = None;
        let mut tied = false;
        for (&rate, &n) in self.nodes.iter().filter(|(_, n)| **n > 0) {
            match best {
                Some((_, m)) if n == m => tied = true,
                Some((_, m)) if n < m => {}
                _ => {
                    best = Some((rate, n));
                    tied = false;
                }
            }
        }
        self.usual = best.filter(|_| !tied).map(|(rate, _)| rate);
    }
}

/// Whether a compact stream's `delta` leaves every port's state and rate as they were: then the rates a node
/// contributes stay (its ports' names, link layers and number are identity, which deltas never carry).
pub(super) fn kept_by(delta: &NodeDelta) -> bool {
    delta
        .ib
        .iter()
        .all(|p| p.state.is_none() && p.phys_state.is_none() && p.rate_gbps.is_none())
}

/// The rates that count: up InfiniBand ports that report one.
fn counted(ports: &[IbPort]) -> impl Iterator<Item = (&str, u32, u64)> {
    ports
        .iter()
        .filter(|p| p.is_infiniband() && p.is_up())
        .filter_map(|p| {
            Some((
                p.hca.as_str(),
                p.port,
                (p.rate_gbps? * 1000.0).round() as u64,
            ))
        })
}

impl PortRates {
    pub(crate) fn new(nodes: usize) -> PortRates {
        PortRates {
            counts: HashMap::new(),
            by_node: vec![Vec::new(); nodes],
        }
    }

    /// Takes a node's ports (`None`: not checked, which leaves its last contribution alone); true when the
    /// node's contribution changed, which may change any node's usual rate.
    pub(crate) fn observe(&mut self, node: NodeId, ports: Option<&[IbPort]>) -> bool {
        let Some(ports) = ports else { return false };
        let Some(before) = self.by_node.get(node) else {
            return false;
        };
        // The usual case, checked without allocating: nothing changed.
        let same = before.len() == counted(ports).count()
            && before
                .iter()
                .zip(counted(ports))
                .all(|((h, p, r), (h2, p2, r2))| h == h2 && *p == p2 && *r == r2);
        if same {
            return false;
        }
        let now: Vec<(String, u32, u64)> = counted(ports)
            .map(|(h, p, r)| (h.to_string(), p, r))
            .collect();
        let old = std::mem::replace(&mut self.by_node[node], now.clone());
        for (hca, port, rate) in old {
            if let Some(tally) = self
                .counts
                .get_mut(&hca)
                .and_then(|ports| ports.get_mut(&port))
            {
                if let Some(n) = tally.nodes.get_mut(&rate) {
                    *n = n.saturating_sub(1);
                }
                tally.recompute();
            }
        }
        for (hca, port, rate) in now {
            let tally = self.counts.entry(hca).or_default().entry(port).or_default();
            *tally.nodes.entry(rate).or_insert(0) += 1;
            tally.recompute();
        }
        true
    }

    /// The rate most nodes run this port at, in Gb/s, when one rate is more common than every other.
    pub(crate) fn usual(&self, hca: &str, port: u32) -> Option<f64> {
        let usual = self.counts.get(hca)?.get(&port)?.usual?;
        Some(usual as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(hca: &str, rate: f64) -> IbPort {
        IbPort {
            hca: hca.into(),
            port: 1,
            link_layer: Some("InfiniBand".into()),
            state: Some("4: ACTIVE".into()),
            phys_state: Some("5: LinkUp".into()),
            rate_gbps: Some(rate),
            ..Default::default()
        }
    }

    #[test]
    fn each_port_has_its_own_usual_rate() {
        let mut r = PortRates::new(3);
        // Compute rails at NDR, a storage HCA at HDR on every node; node 2's mlx5_0 trained at HDR.
        r.observe(0, Some(&[port("mlx5_0", 400.0), port("mlx5_8", 200.0)]));
        r.observe(1, Some(&[port("mlx5_0", 400.0), port("mlx5_8", 200.0)]));
        r.observe(2, Some(&[port("mlx5_0", 200.0), port("mlx5_8", 200.0)]));
        assert_eq!(r.usual("mlx5_0", 1), Some(400.0));
        assert_eq!(
            r.usual("mlx5_8", 1),
            Some(200.0),
            "a slower HCA of its own is no fault"
        );
        // Node 2's port recovers: the tally follows.
        r.observe(2, Some(&[port("mlx5_0", 400.0), port("mlx5_8", 200.0)]));
        r.observe(0, Some(&[port("mlx5_0", 200.0), port("mlx5_8", 200.0)]));
        assert_eq!(r.usual("mlx5_0", 1), Some(400.0));
        r.observe(1, Some(&[port("mlx5_0", 200.0)]));
        assert_eq!(r.usual("mlx5_0", 1), Some(200.0), "the majority moved");
        assert_eq!(r.usual("mlx5_9", 1), None);
    }

    #[test]
    fn an_even_split_has_no_usual_rate() {
        let mut r = PortRates::new(2);
        r.observe(0, Some(&[port("mlx5_0", 400.0)]));
        r.observe(1, Some(&[port("mlx5_0", 200.0)]));
        assert_eq!(r.usual("mlx5_0", 1), None);
    }
}
