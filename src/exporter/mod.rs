//! `fleetop agent --listen ADDR:PORT`: the agent as a Prometheus exporter. Each sample goes into a one-node
//! fleet state; a scrape renders it with the same families as `snapshot --format prom`, so it costs no NVML
//! calls, and a sample that stops coming shows as stale. The HTTP side is `http.rs`, bounded; if its
//! listener dies the process ends, so that the service manager starts it again.

mod http;
mod metrics;

pub use http::{HEAD_DEADLINE, MAX_CONNECTIONS};
pub(crate) use metrics::Exporter;
