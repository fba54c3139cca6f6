//! The simulated fleet: a thread that plays every node through the agent wire format and the real decoder, and
//! the demo's practice scheduler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::{self, Role};
use crate::inventory::Inventory;
use crate::telemetry::delta::{Encoder, DEFAULT_FULL_EVERY};
use crate::telemetry::Source;
use crate::transport::decode::StreamDecoder;
use crate::transport::{FailureKind, Following, MsgSender, NodeEvent, NodeSink, Transport};

/// Seed of the built-in demo fleet; fixed so every demo (and its snapshot tests) look the same.
pub(crate) const DEMO_SEED: u64 = 2026;

/// Simulates every node of an inventory. Each node's output is encoded as agent NDJSON and decoded
/// by the same [`StreamDecoder`] the SSH transport uses, so the demo runs the real pipeline.
#[derive(Debug, Clone)]
pub(crate) struct SimTransport {
    pub seed: u64,
}

impl Default for SimTransport {
    fn default() -> Self {
        SimTransport { seed: DEMO_SEED }
    }
}

impl Transport for SimTransport {
    fn follow(&self, inventory: &Arc<Inventory>, tx: MsgSender) -> Following {
        let stop = Arc::new(AtomicBool::new(false));
        let (inv, seed, flag) = (Arc::clone(inventory), self.seed, Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("sim-fleet".into())
            .spawn(move || simulate(&inv, seed, &tx, &flag));
        if let Err(e) = spawned {
            tracing::error!("cannot start the simulated fleet: {e}");
        }
        Following::new(stop)
    }
}

fn simulate(inv: &Inventory, seed: u64, tx: &MsgSender, stop: &AtomicBool) {
    let sinks: Vec<NodeSink> = (0..inv.nodes.len())
        .map(|node| NodeSink {
            node,
            tx: tx.clone(),
        })
        .collect();
    let mut decoders: Vec<StreamDecoder> = Vec::with_capacity(sinks.len());
    let mut encoders: Vec<Option<Encoder>> = (0..sinks.len()).map(|_| None).collect();
    for (node, sink) in sinks.iter().enumerate() {
        sink.send(NodeEvent::Connecting);
        decoders.push(StreamDecoder::agent(Source::Sim));
        if model::role(inv, node) == Role::Unreachable {
            sink.send(NodeEvent::Failed {
                kind: FailureKind::Unreachable,
                detail: format!(
                    "connect to {}:22: connection timed out (simulated)",
                    inv.nodes[node].name
                ),
            });
            continue;
        }
        // As over SSH, the agents of this release send the compact stream and the older ones whole samples.
        let mut hello = model::hello(inv, node);
        if hello.build.is_some() {
            hello.compact = Some(DEFAULT_FULL_EVERY);
            encoders[node] = Some(Encoder::new(DEFAULT_FULL_EVERY));
        }
        feed_json(&mut decoders[node], sink, &hello);
    }
    let interval = inv.settings.interval;
    let start = Instant::now();
    for tick in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let t_ms = crate::telemetry::unix_ms();
        for (node, sink) in sinks.iter().enumerate() {
            if model::role(inv, node) == Role::Unreachable {
                continue;
            }
            let sample = model::sample(inv, seed, node, tick, t_ms);
            let mut line = match &mut encoders[node] {
                Some(encoder) => encoder.line(&sample, false),
                None => serde_json::to_vec(&sample),
            }
            .unwrap_or_default();
            if line.is_empty() {
                continue;
            }
            line.push(b'\n');
            let mut alive = true;
            decoders[node].feed(&line, &mut |event| {
                alive &= sink.send(event);
                alive
            });
            if !alive {
                return;
            }
        }
        let next = start + interval * u32::try_from(tick + 1).unwrap_or(u32::MAX);
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}

/// The messages the demo fleet produces at `tick`, all stamped `at`, without threads or timing:
/// for benchmarks and fixture states. Unreachable nodes report their failure; at tick 0 every other node
/// first says hello.
pub fn messages(inv: &Inventory, seed: u64, tick: u64, at: Instant) -> Vec<crate::transport::Msg> {
    let t_ms = 1_700_000_000_000 + tick * inv.settings.interval.as_millis() as u64;
    let hellos = (0..inv.nodes.len())
        .filter(|&node| tick == 0 && model::role(inv, node) != Role::Unreachable)
        .map(|node| {
            let hello = model::hello(inv, node);
            crate::transport::Msg {
                node,
                at,
                event: NodeEvent::Streaming {
                    source: Source::Sim,
                    detail: format!("fleetop agent {} (simulated)", hello.version),
                    hello: Some(Box::new(hello)),
                },
            }
        });
    hellos
        .chain((0..inv.nodes.len()).map(|node| {
            let event = if model::role(inv, node) == Role::Unreachable {
                NodeEvent::Failed {
                    kind: FailureKind::Unreachable,
                    detail: format!(
                        "connect to {}:22: connection timed out (simulated)",
                        inv.nodes[node].name
                    ),
                }
            } else {
                NodeEvent::Sample(model::sample(inv, seed, node, tick, t_ms))
            };
            crate::transport::Msg { node, at, event }
        }))
        .collect()
}

fn feed_json(decoder: &mut StreamDecoder, sink: &NodeSink, value: &impl serde::Serialize) {
    if let Ok(mut bytes) = serde_json::to_vec(value) {
        bytes.push(b'\n');
        decoder.feed(&bytes, &mut |event| sink.send(event));
    }
}

/// The demo fleet's Slurm jobs, matching the processes its nodes report.
pub(crate) fn demo_workload(inv: &Inventory) -> crate::workload::Workload {
    model::workload(inv, DEMO_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_streams_compact_and_every_sample_arrives_whole_or_as_a_patch() {
        let mut inv = Inventory::demo();
        inv.settings.interval = Duration::from_millis(5);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = AtomicBool::new(false);
        let compact_node = (0..inv.nodes.len())
            .find(|&n| {
                model::role(&inv, n) != Role::Unreachable && model::hello(&inv, n).build.is_some()
            })
            .unwrap();
        let mut samples = Vec::new();
        let mut patched = 0;
        let mut hello = None;
        std::thread::scope(|scope| {
            scope.spawn(|| simulate(&inv, DEMO_SEED, &tx, &stop));
            let deadline = Instant::now() + Duration::from_secs(60);
            while samples.len() < 4 && Instant::now() < deadline {
                match rx.try_recv() {
                    Ok(msg) if msg.node == compact_node => match msg.event {
                        NodeEvent::Sample(s) => samples.push(s),
                        // A patch to the sample before, as fleet state applies it.
                        NodeEvent::Delta(d) => {
                            let mut s: crate::telemetry::NodeSample =
                                samples.last().cloned().unwrap();
                            d.apply_to(&mut s);
                            samples.push(s);
                            patched += 1;
                        }
                        NodeEvent::Streaming { hello: h, .. } => hello = h,
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(hello.and_then(|h| h.compact), Some(DEFAULT_FULL_EVERY));
        assert_eq!(samples.len(), 4);
        assert!(
            patched > 0,
            "the demo's samples need no sanitizing: sent as patches"
        );
        for (tick, got) in samples.iter().enumerate() {
            let mut sent = model::sample(&inv, DEMO_SEED, compact_node, tick as u64, got.t);
            sent.sanitize(crate::telemetry::wire::MAX_GPUS_PER_SAMPLE);
            assert_eq!(*got, sent, "tick {tick}");
        }
    }
}
