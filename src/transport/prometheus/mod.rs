//! A Prometheus-compatible store as the fleet's source: every refresh asks one instant query per metric family
//! for the whole fleet (dcgm-exporter's and fleetop's own), groups the series by node and sends each node's
//! sample into the same channel SSH feeds. A node's age comes from its samples' timestamps, not from when the
//! answer arrived; a node in the inventory with no series is "no data", never ok.

mod budget;
mod cost;
#[cfg(test)]
mod dcgm_tests;
mod families;
mod last_xids;
mod query;
mod transport;
mod xids;

pub use transport::{queries, PrometheusTransport};
