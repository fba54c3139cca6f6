//! A Prometheus-compatible store as the fleet's source: every refresh asks one instant query per metric family
//! for the whole fleet (dcgm-exporter's and fleetop's own), groups the series by node and sends each node's
//! sample into the same channel SSH feeds. A node's age comes from its samples' timestamps, not from when the
//! answer arrived; a node in the inventory with no series is "no data", never ok.

mod families;
mod query;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{FailureKind, Following, Msg, MsgSender, NodeEvent, Transport};
use crate::inventory::{Inventory, PrometheusSource};
use crate::telemetry::{NodeSample, Source};
use families::{Dialect, NodeData, FAMILIES};
use query::Labels;

pub use query::Client;

/// How far back a starting view's sparklines are filled from the store (the fleet keeps ten minutes).
const HISTORY_SPAN: Duration = Duration::from_secs(600);

/// How many refreshes a node that had series may miss before it is "no data": twice the three intervals after
/// which the fleet calls a sample stale, so it shows stale (its last values, dimmed) for a while first.
const MISSES_BEFORE_NO_DATA: u32 = 6;

#[derive(Debug, Clone)]
pub struct PrometheusTransport {
    source: PrometheusSource,
    /// Evaluate every query at this time instead of now (`snapshot --at`).
    at: Option<SystemTime>,
    one_pass: bool,
}

impl PrometheusTransport {
    pub fn new(source: PrometheusSource) -> Self {
        PrometheusTransport {
            source,
            at: None,
            one_pass: false,
        }
    }

    /// One refresh, then stop: what `snapshot` needs.
    pub fn one_pass(mut self) -> Self {
        self.one_pass = true;
        self
    }

    /// Reads the fleet as it was at `at`.
    pub fn at(mut self, at: SystemTime) -> Self {
        self.at = Some(at);
        self
    }
}

impl Transport for PrometheusTransport {
    fn follow(&self, inventory: &Arc<Inventory>, tx: MsgSender) -> Following {
        let stop = Arc::new(AtomicBool::new(false));
        let (inv, me, flag) = (Arc::clone(inventory), self.clone(), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("prometheus".into())
            .spawn(move || me.run(&inv, &tx, &flag));
        if let Err(e) = spawned {
            tracing::error!("cannot start the Prometheus reader: {e}");
        }
        Following::new(stop)
    }
}

/// Every this many refreshes, families that answered empty are asked again (five minutes at a 15 s refresh).
const RECHECK_EMPTY: u64 = 20;

/// What one refresh found: every node's data, and the nodes whose scrape target is down (`up == 0`).
struct Round {
    nodes: HashMap<String, NodeData>,
    down: std::collections::HashSet<String>,
}

/// Which families answered empty, and how many refreshes ran.
#[derive(Debug, Default)]
struct Asked {
    refreshes: u64,
    empty: Vec<bool>,
}

/// What the reader remembers of each node between refreshes.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    streaming: bool,
    misses: u32,
    told_no_data: bool,
}

impl PrometheusTransport {
    fn run(&self, inv: &Inventory, tx: &MsgSender, stop: &AtomicBool) {
        let client = match Client::new(&self.source) {
            Ok(c) => c,
            Err(e) => {
                fail_all(
                    inv,
                    tx,
                    FailureKind::Unreachable,
                    &format!("Prometheus: {e}"),
                );
                return;
            }
        };
        let mut seen = vec![Seen::default(); inv.nodes.len()];
        if !self.one_pass && self.at.is_none() && !self.backfill(inv, &client, tx) {
            return;
        }
        // Families no exporter sends are asked again only now and then: a fleet runs one exporter, not both.
        let mut asked = Asked::default();
        loop {
            let started = Instant::now();
            match self.refresh(inv, &client, &mut asked) {
                Ok(round) => {
                    if !self.deliver(inv, round, &mut seen, tx) {
                        return;
                    }
                }
                Err(e) => {
                    fail_all(
                        inv,
                        tx,
                        FailureKind::Unreachable,
                        &format!("Prometheus {}: {e}", self.source.url),
                    );
                    seen.iter_mut().for_each(|s| s.streaming = false);
                }
            }
            if self.one_pass {
                return;
            }
            let until = started + inv.settings.interval;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) || tx.is_closed() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    /// The inventory node a series belongs to, by its node label (renamed `fleetop_node` by the query).
    fn node_name(&self, inv: &Inventory, labels: &Labels) -> Option<String> {
        let name = inventory_name(
            labels.fleetop_node.as_deref()?,
            self.source.node_suffix.as_deref(),
        );
        inv.find_node(&name).map(|_| name)
    }

    /// Fills the sparklines of a view that just started from the store's last ten minutes: one range query each
    /// for utilisation and temperature per exporter. History is a convenience: a failed query leaves the rings
    /// to fill as samples arrive. False once the receiver is gone.
    fn backfill(&self, inv: &Inventory, client: &Client, tx: &MsgSender) -> bool {
        let step = inv.settings.interval.as_secs_f64().max(1.0);
        let end = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let start = end - HISTORY_SPAN.as_secs_f64();
        let points = ((end - start) / step).floor() as usize + 1;
        type Rings = Vec<(Option<u32>, Option<u32>)>;
        let mut history: HashMap<String, std::collections::BTreeMap<u32, Rings>> = HashMap::new();
        let label = self.source.node_label.as_str();
        let asked = [
            (renamed("DCGM_FI_DEV_GPU_UTIL", label), true, 1.0),
            (renamed("DCGM_FI_DEV_GPU_TEMP", label), false, 1.0),
            (
                "max by (node,gpu) (fleetop_gpu_utilization_ratio)".to_string(),
                true,
                100.0,
            ),
            (
                "max by (node,gpu) (fleetop_gpu_temperature_celsius)".to_string(),
                false,
                1.0,
            ),
        ];
        for (query, is_util, scale) in asked {
            let Ok(series) = client.range(&query, start, end, step) else {
                continue;
            };
            for s in series {
                let (Some(node), Some(gpu)) = (
                    self.node_name(inv, &s.metric),
                    s.metric.gpu.as_deref().and_then(|g| g.parse::<u32>().ok()),
                ) else {
                    continue;
                };
                let gpus = history.entry(node).or_default();
                if !gpus.contains_key(&gpu)
                    && gpus.len() >= crate::telemetry::wire::MAX_GPUS_PER_SAMPLE
                {
                    continue;
                }
                let ring = gpus
                    .entry(gpu)
                    .or_insert_with(|| vec![(None, None); points]);
                for (t, v) in &s.values {
                    let slot = ((t - start) / step).round();
                    let Ok(v) = v.parse::<f64>() else { continue };
                    if !(0.0..points as f64).contains(&slot) || !v.is_finite() || v < 0.0 {
                        continue;
                    }
                    let value = Some((v * scale).round().min(f64::from(u32::MAX)) as u32);
                    let point = &mut ring[slot as usize];
                    if is_util {
                        point.0 = value;
                    } else {
                        point.1 = value;
                    }
                }
            }
        }
        let now = Instant::now();
        for (name, gpus) in history {
            let Some(id) = inv.find_node(&name) else {
                continue;
            };
            let event = NodeEvent::History(gpus.into_iter().collect());
            if tx
                .send(Msg {
                    node: id,
                    at: now,
                    event,
                })
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// One query per family (those that answered empty last time only every [`RECHECK_EMPTY`] refreshes);
    /// every node's data, keyed by inventory name.
    fn refresh(
        &self,
        inv: &Inventory,
        client: &Client,
        asked: &mut Asked,
    ) -> Result<Round, String> {
        let time = self.at.map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
        let node_of = |labels: &Labels| self.node_name(inv, labels);
        let mut nodes: HashMap<String, NodeData> = HashMap::new();
        let recheck = asked.refreshes.is_multiple_of(RECHECK_EMPTY);
        asked.refreshes = asked.refreshes.wrapping_add(1);
        for (i, family) in FAMILIES.iter().enumerate() {
            if !recheck && asked.empty.get(i).copied().unwrap_or(false) {
                continue;
            }
            let series = client.instant(&family.query(&self.source.node_label), time)?;
            if asked.empty.len() < FAMILIES.len() {
                asked.empty.resize(FAMILIES.len(), false);
            }
            asked.empty[i] = series.is_empty();
            families::apply(family, &series, &node_of, &mut nodes);
        }
        for data in nodes.values_mut() {
            data.finish();
        }
        // Scrape targets that failed their last scrape, by the node label they carry (as `up == 0`).
        let mut down = std::collections::HashSet::new();
        let mut labels = vec![self.source.node_label.as_str()];
        if self.source.node_label != "node" {
            labels.push("node");
        }
        for label in labels {
            let query = format!(
                "max by (fleetop_node) (label_replace(up, \"fleetop_node\", \"$1\", \"{label}\", \"(.+)\")) == 0"
            );
            for series in client.instant(&query, time)? {
                if let Some(name) = self.node_name(inv, &series.metric) {
                    down.insert(name);
                }
            }
        }
        Ok(Round { nodes, down })
    }

    /// Sends each node its sample, or its absence; false once the receiver is gone.
    fn deliver(&self, inv: &Inventory, round: Round, seen: &mut [Seen], tx: &MsgSender) -> bool {
        let Round { mut nodes, down } = round;
        let reference = self.at.unwrap_or_else(SystemTime::now);
        let reference_s = reference
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let now = Instant::now();
        for (id, spec) in inv.nodes.iter().enumerate() {
            let send = |event| {
                tx.send(Msg {
                    node: id,
                    at: now,
                    event,
                })
                .is_ok()
            };
            let Some(data) = nodes.remove(&spec.name) else {
                let s = &mut seen[id];
                s.misses = s.misses.saturating_add(1);
                let target_down = down.contains(&spec.name);
                // Its last values stay, going stale, with the reason beside them.
                if target_down && s.streaming && s.misses == 1 {
                    let detail =
                        "Prometheus: its scrape target is down (up == 0); the last values go stale"
                            .into();
                    if !send(NodeEvent::Failed {
                        kind: FailureKind::StreamEnded,
                        detail,
                    }) {
                        return false;
                    }
                }
                // A node that never had series is no data at once; one that had them goes stale first.
                let gone = !s.streaming || s.misses >= MISSES_BEFORE_NO_DATA;
                if gone && !s.told_no_data {
                    s.told_no_data = true;
                    s.streaming = false;
                    let detail = format!(
                        "no series in Prometheus for this node ({} or node label = {:?}){}",
                        self.source.node_label,
                        spec.name,
                        if target_down {
                            ": its scrape target is down (up == 0)"
                        } else if s.misses > 1 {
                            ": its exporter stopped answering or was dropped"
                        } else {
                            ""
                        }
                    );
                    if !send(NodeEvent::Failed {
                        kind: FailureKind::NoData,
                        detail,
                    }) {
                        return false;
                    }
                }
                continue;
            };
            let s = &mut seen[id];
            s.misses = 0;
            s.told_no_data = false;
            if !s.streaming {
                s.streaming = true;
                let exporters: Vec<&str> = data
                    .dialects
                    .iter()
                    .map(|d| match d {
                        Dialect::Dcgm => "dcgm-exporter",
                        Dialect::Fleetop => "fleetop agent",
                    })
                    .collect();
                let detail = format!("Prometheus {} · {}", self.source.url, exporters.join(" + "));
                if !send(NodeEvent::Streaming {
                    source: Source::Prometheus,
                    detail,
                    hello: None,
                }) {
                    return false;
                }
            }
            // The sample is as old as its newest series, measured from the time asked about.
            let age = Duration::from_secs_f64((reference_s - data.newest).max(0.0));
            let mut sample = NodeSample {
                t: (data.newest * 1000.0) as u64,
                gpus: data.gpus.into_values().collect(),
                ..Default::default()
            };
            sample.sanitize(crate::telemetry::wire::MAX_GPUS_PER_SAMPLE);
            let at = now.checked_sub(age).unwrap_or(now);
            if tx
                .send(Msg {
                    node: id,
                    at,
                    event: NodeEvent::Sample(sample),
                })
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

/// `family` by node and GPU, its node label renamed `fleetop_node`.
fn renamed(family: &str, node_label: &str) -> String {
    format!("max by (fleetop_node,gpu) (label_replace({family}, \"fleetop_node\", \"$1\", \"{node_label}\", \"(.*)\"))")
}

/// Every query one refresh asks, in order (for benchmarks that ask the same of the store's own client).
pub fn queries(node_label: &str) -> Vec<String> {
    FAMILIES.iter().map(|f| f.query(node_label)).collect()
}

/// The inventory name a label value stands for: without a `:port` (as in `instance`) or the configured suffix.
fn inventory_name(value: &str, suffix: Option<&str>) -> String {
    let host = match value.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => value,
    };
    let host = suffix.and_then(|s| host.strip_suffix(s)).unwrap_or(host);
    host.to_string()
}

fn fail_all(inv: &Inventory, tx: &MsgSender, kind: FailureKind, detail: &str) {
    for id in 0..inv.nodes.len() {
        let event = NodeEvent::Failed {
            kind,
            detail: detail.to_string(),
        };
        if tx
            .send(Msg {
                node: id,
                at: Instant::now(),
                event,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_map_to_inventory_names() {
        assert_eq!(inventory_name("c001n1", None), "c001n1");
        assert_eq!(inventory_name("c001n1:9400", None), "c001n1");
        assert_eq!(
            inventory_name("c001n1.cluster.local:9400", Some(".cluster.local")),
            "c001n1"
        );
        assert_eq!(inventory_name("[::1]", None), "[::1]");
    }
}
