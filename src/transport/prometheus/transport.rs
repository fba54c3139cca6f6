//! `PrometheusTransport`: each refresh round asks every family's query (a few in flight), resolves the series to
//! inventory nodes, merges them into samples and sends them; misses turn into "no data".

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::budget::Budget;
use super::cost::{QueryCost, RefreshCost};
use super::families::{Dialect, NodeData, Reading, FAMILIES, FLEETOP_NODE_LABEL};
use super::last_xids::LastXids;
use super::query::{Client, Labels};
use super::{families, query};
use crate::inventory::{Inventory, NodeId, PrometheusSource};
use crate::telemetry::{NodeSample, Source};
use crate::transport::{FailureKind, Following, Msg, MsgSender, NodeEvent, Transport};

/// How far back a starting view's sparklines are filled from the store (the fleet keeps ten minutes).
const HISTORY_SPAN: Duration = Duration::from_secs(600);

/// How many refreshes a node that had series may miss before it is "no data": twice the three intervals after
/// which the fleet calls a sample stale, so it shows stale (its last values, dimmed) for a while first.
const MISSES_BEFORE_NO_DATA: u32 = 6;

/// Queries in flight at once: the store evaluates some while fleetop parses the ones that came back; few
/// enough not to crowd a store that dashboards share.
const QUERIES_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct PrometheusTransport {
    source: PrometheusSource,
    /// Evaluate every query at this time instead of now (`snapshot --at`).
    at: Option<SystemTime>,
    one_pass: bool,
    /// What the latest refresh cost, for `snapshot --timings`.
    cost: Arc<Mutex<Option<RefreshCost>>>,
}

impl PrometheusTransport {
    pub fn new(source: PrometheusSource) -> Self {
        PrometheusTransport {
            source,
            at: None,
            one_pass: false,
            cost: Arc::default(),
        }
    }

    /// One refresh, then stop: what `snapshot` needs.
    pub(crate) fn one_pass(mut self) -> Self {
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
        share_malloc_arenas();
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

    fn timings(&self) -> Option<String> {
        let cost = self.cost.lock().ok()?;
        cost.as_ref()
            .map(|c| c.render(&self.source.url, QUERIES_IN_FLIGHT))
    }
}

/// Every this many refreshes, families that answered empty are asked again (five minutes at a 15 s refresh).
const RECHECK_EMPTY: u64 = 20;

/// What one refresh found: every node's data, and whether its scrape target is down (`up == 0`), by
/// inventory id.
pub(super) struct Round {
    pub(super) nodes: Vec<Option<NodeData>>,
    down: Vec<bool>,
}

/// Which families answered empty, and how many refreshes ran.
#[derive(Debug, Default)]
pub(super) struct Asked {
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
        let mut last_xids = LastXids::default();
        loop {
            let started = Instant::now();
            match self.refresh(inv, &client, &mut asked, &Budget::for_refresh()) {
                Ok(mut round) => {
                    let now_s = unix_seconds(self.at.unwrap_or_else(SystemTime::now));
                    last_xids.merge(&mut round.nodes, now_s);
                    if !self.deliver(inv, round, &mut seen, tx) {
                        return;
                    }
                    release_freed_memory();
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

    /// Fills the sparklines of a view that just started from the store's last ten minutes: one range query each
    /// for utilisation and temperature per exporter. History is a convenience: a failed query leaves the rings
    /// to fill as samples arrive. False once the receiver is gone.
    fn backfill(&self, inv: &Inventory, client: &Client, tx: &MsgSender) -> bool {
        let step = inv.settings.interval.as_secs_f64().max(1.0);
        let end = unix_seconds(SystemTime::now());
        let start = end - HISTORY_SPAN.as_secs_f64();
        let points = ((end - start) / step).floor() as usize + 1;
        type Rings = Vec<(Option<u32>, Option<u32>)>;
        let mut history: HashMap<NodeId, std::collections::BTreeMap<u32, Rings>> = HashMap::new();
        let resolver = Resolver::new(inv, &self.source);
        let budget = Budget::for_refresh();
        // (exporter, family, utilisation rather than temperature, scale to percent or °C)
        let asked = [
            (Dialect::Dcgm, "DCGM_FI_DEV_GPU_UTIL", true, 1.0),
            (Dialect::Dcgm, "DCGM_FI_DEV_GPU_TEMP", false, 1.0),
            (
                Dialect::Fleetop,
                "fleetop_gpu_utilization_ratio",
                true,
                100.0,
            ),
            (
                Dialect::Fleetop,
                "fleetop_gpu_temperature_celsius",
                false,
                1.0,
            ),
        ];
        for (dialect, family, is_util, scale) in asked {
            let label = dialect.node_label(&self.source.node_label);
            let query = format!("max by ({label},gpu) ({family})");
            let Ok(body) = client.range(&query, (start, end, step), &budget) else {
                continue;
            };
            // A garbled answer may have filled some rings before it failed: history is a convenience.
            let _ = query::each_matrix(&query, &body.bytes, |s| {
                let (Some(node), Some(gpu)) = (
                    s.metric.get(label).and_then(|v| resolver.node(v)),
                    s.metric.get("gpu").and_then(|g| g.parse::<u32>().ok()),
                ) else {
                    return;
                };
                let gpus = history.entry(node).or_default();
                if !gpus.contains_key(&gpu)
                    && gpus.len() >= crate::telemetry::wire::MAX_GPUS_PER_SAMPLE
                {
                    return;
                }
                let ring = gpus
                    .entry(gpu)
                    .or_insert_with(|| vec![(None, None); points]);
                for (t, v) in &s.values {
                    let slot = ((t - start) / step).round();
                    let Ok(v) = v.as_str().parse::<f64>() else {
                        continue;
                    };
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
            });
        }
        let now = Instant::now();
        for (id, gpus) in history {
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

    /// One query per family (those that answered empty last time only every [`RECHECK_EMPTY`] refreshes),
    /// [`QUERIES_IN_FLIGHT`] at a time, each answer parsed on the thread that asked; then every node's data,
    /// by inventory id, and the scrape targets that are down. The answers' bytes and the readings kept until
    /// the merge come from one [`Budget`] for the whole refresh: past it, the refresh is refused.
    pub(super) fn refresh(
        &self,
        inv: &Inventory,
        client: &Client,
        asked: &mut Asked,
        budget: &Budget,
    ) -> Result<Round, String> {
        let started = Instant::now();
        let time = self.at.map(unix_seconds);
        let recheck = asked.refreshes.is_multiple_of(RECHECK_EMPTY);
        asked.refreshes = asked.refreshes.wrapping_add(1);
        asked.empty.resize(FAMILIES.len(), false);
        let todo: Vec<usize> = (0..FAMILIES.len())
            .filter(|&i| recheck || !asked.empty[i])
            .collect();
        let resolver = Resolver::new(inv, &self.source);
        let answers = in_parallel(&todo, |&i| -> Result<(Vec<Reading>, QueryCost), String> {
            let family = &FAMILIES[i];
            let query = family.query(&self.source.node_label);
            let body = client.instant(&query, time, budget)?;
            let parsing = Instant::now();
            let label = family.dialect.node_label(&self.source.node_label);
            let node_of = |l: &Labels| resolver.node(l.get(label)?);
            let mut readings = Vec::new();
            // Past what is left of the budget, no more readings are kept and the family is refused below.
            let mut over = false;
            let series = query::each_vector(&query, &body.bytes, |s| {
                if !over {
                    families::read(family, &s, &node_of, &mut readings);
                    over = readings.len() as u64 > budget.readings_left();
                }
            })?;
            if over || !budget.charge_readings(readings.len() as u64) {
                return Err(budget.over_readings(&query));
            }
            let cost = QueryCost::new(family.name, body.cost, parsing.elapsed(), series);
            Ok((readings, cost))
        });
        let merging = Instant::now();
        let mut nodes: Vec<Option<NodeData>> = Vec::new();
        nodes.resize_with(inv.nodes.len(), || None);
        let mut queries = Vec::with_capacity(todo.len() + 1);
        for (&i, answer) in todo.iter().zip(answers) {
            let (readings, cost) =
                answer.unwrap_or_else(|| Err("a query's thread stopped".to_string()))?;
            asked.empty[i] = cost.series == 0;
            families::apply(&FAMILIES[i], &readings, &mut nodes);
            queries.push(cost);
        }
        nodes.iter_mut().flatten().for_each(NodeData::finish);
        let merge = merging.elapsed();
        // Scrape targets that failed their last scrape (few: only those answer), by whichever of the node
        // label, fleetop's `node` or `instance` names an inventory node.
        let mut down = vec![false; inv.nodes.len()];
        let query = query::TARGETS_DOWN;
        let body = client.instant(query, time, budget)?;
        let parsing = Instant::now();
        let series = query::each_vector(query, &body.bytes, |s| {
            if let Some(id) = resolver.target(&s.metric, &self.source.node_label) {
                down[id] = true;
            }
        })?;
        queries.push(QueryCost::new(query, body.cost, parsing.elapsed(), series));
        if let Ok(mut cost) = self.cost.lock() {
            *cost = Some(RefreshCost {
                wall: started.elapsed(),
                queries,
                merge,
            });
        }
        Ok(Round { nodes, down })
    }

    /// Sends each node its sample, or its absence; false once the receiver is gone.
    fn deliver(&self, inv: &Inventory, round: Round, seen: &mut [Seen], tx: &MsgSender) -> bool {
        let Round { mut nodes, down } = round;
        let reference_s = unix_seconds(self.at.unwrap_or_else(SystemTime::now));
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
            let Some(data) = nodes.get_mut(id).and_then(Option::take) else {
                let s = &mut seen[id];
                s.misses = s.misses.saturating_add(1);
                let target_down = down.get(id).copied().unwrap_or(false);
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
                let mut detail =
                    format!("Prometheus {} · {}", self.source.url, exporters.join(" + "));
                for note in &data.notes {
                    detail.push_str(" · ");
                    detail.push_str(note);
                }
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
                warnings: data.warnings,
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

/// Keeps the process to two malloc arenas. glibc gives threads arenas of their own (up to eight per core);
/// memory a query thread allocated and the view's thread freed then stays in arenas nobody reuses, and a
/// follower of 100,000 GPUs grew by a fifth over ten minutes. A store source runs a handful of threads, so
/// sharing two arenas costs nothing measurable (the SSH transport, with a thread per node, does not do this).
fn share_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the memory a refresh freed back to the system. A refresh allocates some 100 MB for a few seconds on
/// its query threads (answers, readings); glibc keeps what those threads freed in their arenas, and a
/// follower's resident size would creep up refresh after refresh without this.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `t` as Unix seconds, the store's time unit.
fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Names inventory nodes from label values.
struct Resolver<'a> {
    inv: &'a Inventory,
    suffix: Option<&'a str>,
    rewrite: Option<&'a (regex::Regex, String)>,
}

impl<'a> Resolver<'a> {
    fn new(inv: &'a Inventory, source: &'a PrometheusSource) -> Self {
        Resolver {
            inv,
            suffix: source.node_suffix.as_deref(),
            rewrite: source.node_rewrite.as_ref(),
        }
    }

    /// The inventory node a node label's value names: less its `:port` and suffix, then rewritten where
    /// `node_pattern` matches it (as Prometheus relabelling does, a value it does not match is kept).
    fn node(&self, value: &str) -> Option<NodeId> {
        let name = inventory_name(value, self.suffix);
        if let Some((pattern, replacement)) = self.rewrite {
            if let Some(captures) = pattern.captures(name) {
                let mut rewritten = String::new();
                captures.expand(replacement, &mut rewritten);
                return self.inv.find_node(&rewritten);
            }
        }
        self.inv.find_node(name)
    }

    /// The inventory node a scrape target stands for: by the node label, fleetop's `node`, or `instance`.
    fn target(&self, labels: &Labels, node_label: &str) -> Option<NodeId> {
        [node_label, FLEETOP_NODE_LABEL, "instance"]
            .iter()
            .find_map(|l| self.node(labels.get(l)?))
    }
}

/// `work` on every item, [`QUERIES_IN_FLIGHT`] at a time (the calling thread among them, so the work gets
/// done even where no thread can be started); each result in its item's place, `None` where work panicked.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        let result = work(item);
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..QUERIES_IN_FLIGHT.min(items.len()) {
            let _ = std::thread::Builder::new()
                .name("prometheus-query".into())
                .spawn_scoped(scope, worker);
        }
        worker();
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().ok().flatten())
        .collect()
}

/// Every query one refresh asks, in order (for benchmarks that ask the same of the store's own client).
pub fn queries(node_label: &str) -> Vec<String> {
    let mut all: Vec<String> = FAMILIES.iter().map(|f| f.query(node_label)).collect();
    all.push(query::TARGETS_DOWN.into());
    all
}

/// The inventory name a label value stands for: without a `:port` (as in `instance`) or the configured suffix.
fn inventory_name<'v>(value: &'v str, suffix: Option<&str>) -> &'v str {
    let host = match value.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => value,
    };
    suffix.and_then(|s| host.strip_suffix(s)).unwrap_or(host)
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

    #[test]
    fn a_scrape_target_names_its_node_by_the_node_label_node_or_instance() {
        let inv = Inventory::parse(
            "t.toml",
            "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-04]\"\n",
        )
        .unwrap();
        let mut source = PrometheusSource::at("http://prometheus:9090");
        source.node_suffix = Some(".cluster.local".into());
        let resolver = Resolver::new(&inv, &source);
        let target = |pairs: &[(&str, &str)]| {
            resolver
                .target(&Labels::of(pairs), "Hostname")
                .map(|id| inv.nodes[id].name.as_str())
        };
        assert_eq!(
            target(&[("Hostname", "gpu01"), ("instance", "gpu02:9400")]),
            Some("gpu01")
        );
        assert_eq!(
            target(&[("node", "gpu03"), ("instance", "10.0.0.3:9400")]),
            Some("gpu03")
        );
        assert_eq!(
            target(&[("job", "dcgm"), ("instance", "gpu04.cluster.local:9400")]),
            Some("gpu04"),
            "a dcgm-exporter target known only by its address"
        );
        assert_eq!(target(&[("instance", "10.0.0.9:9400")]), None);
        let mut rewritten = source.clone();
        rewritten.node_rewrite = Some((
            regex::Regex::new("^(?:node-(\\d+))$").unwrap(),
            "gpu$1".into(),
        ));
        let rewriting = Resolver::new(&inv, &rewritten);
        let named = |value: &str| rewriting.node(value).map(|id| inv.nodes[id].name.as_str());
        assert_eq!(named("node-03.cluster.local:9400"), Some("gpu03"));
        assert_eq!(
            named("gpu04"),
            Some("gpu04"),
            "a value the pattern does not match is kept"
        );
        assert_eq!(named("node-09"), None);
        assert_eq!(
            target(&[("Hostname", "elsewhere"), ("instance", "gpu02:9400")]),
            Some("gpu02"),
            "a label naming no inventory node gives way to the next"
        );
    }
}
