//! One recorded message as a line of JSON: wall time, node, and the event, a sample as a patch on the node's
//! previous one. Reading a frame makes its text inert again, as a node's own line is: a recording is a file,
//! and files are not trusted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::telemetry::sanitize::make_inert;
use crate::telemetry::wire::{AgentHello, MAX_GPUS_PER_SAMPLE};
use crate::telemetry::{NodeSample, Source};
use crate::transport::{FailureKind, GpuPast, NodeEvent};
use crate::workload::operations::OperationEvent;

/// Longest text kept from a frame's detail, bad line or operation text (the transports keep 200).
const MAX_TEXT: usize = 256;

/// One line of a segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Frame {
    /// Wall time the jump host received the event, ms since the Unix epoch.
    pub t: u64,
    /// The node's index in the recording's inventory.
    pub n: usize,
    /// Part of a segment's keyframe: the node's state restated, not a new event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub k: bool,
    pub e: Event,
}

/// A [`NodeEvent`] as recorded; samples are whole (`sample`) or a patch on the node's previous one (`delta`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Event {
    Connecting,
    Streaming {
        source: Source,
        detail: String,
        hello: Option<Box<AgentHello>>,
    },
    Sample(Value),
    Delta(Value),
    History(Vec<GpuPast>),
    BadLine(String),
    Operation(OperationEvent),
    Failed {
        kind: FailureKind,
        detail: String,
    },
}

impl Event {
    /// The event as recorded, except a sample, which the caller records whole or as a patch.
    pub fn of(event: &NodeEvent) -> Option<Event> {
        Some(match event {
            NodeEvent::Connecting => Event::Connecting,
            NodeEvent::Streaming {
                source,
                detail,
                hello,
            } => Event::Streaming {
                source: *source,
                detail: detail.clone(),
                hello: hello.clone(),
            },
            // `fleetop record` hands a delta over as the whole sample it made of it.
            NodeEvent::Sample(_) | NodeEvent::Delta(_) => return None,
            NodeEvent::History(h) => Event::History(h.clone()),
            NodeEvent::BadLine(b) => Event::BadLine(b.clone()),
            NodeEvent::Operation(o) => Event::Operation(o.clone()),
            NodeEvent::Failed { kind, detail } => Event::Failed {
                kind: *kind,
                detail: detail.clone(),
            },
        })
    }

    /// The node event again, checked and made inert as the transports do with a node's line. A sample comes
    /// from the caller, which rebuilt it from the patches.
    pub(crate) fn into_node_event(self, sample: Option<&Value>) -> Result<NodeEvent, String> {
        Ok(match self {
            Event::Connecting => NodeEvent::Connecting,
            Event::Streaming {
                source,
                mut detail,
                mut hello,
            } => {
                make_inert(&mut detail, MAX_TEXT);
                if let Some(h) = hello.as_mut() {
                    h.sanitize();
                }
                NodeEvent::Streaming {
                    source,
                    detail,
                    hello,
                }
            }
            Event::Sample(_) | Event::Delta(_) => {
                let value = sample.ok_or("a sample patch before any whole sample of its node")?;
                let mut s = NodeSample::deserialize(value).map_err(|e| format!("sample: {e}"))?;
                s.sanitize(MAX_GPUS_PER_SAMPLE);
                NodeEvent::Sample(s)
            }
            Event::History(mut gpus) => {
                gpus.truncate(MAX_GPUS_PER_SAMPLE);
                for (_, points) in &mut gpus {
                    // Ten minutes at the fastest interval the inventory accepts is far less.
                    points.truncate(4096);
                }
                NodeEvent::History(gpus)
            }
            Event::BadLine(mut why) => {
                make_inert(&mut why, MAX_TEXT);
                NodeEvent::BadLine(why)
            }
            Event::Operation(op) => NodeEvent::Operation(inert_operation(op)),
            Event::Failed { kind, mut detail } => {
                make_inert(&mut detail, MAX_TEXT);
                NodeEvent::Failed { kind, detail }
            }
        })
    }
}

fn inert_operation(op: OperationEvent) -> OperationEvent {
    let inert = |t: Option<String>| {
        t.map(|mut t| {
            make_inert(&mut t, MAX_TEXT);
            t
        })
    };
    match op {
        OperationEvent::Drain(mut d) => {
            d.reason = inert(d.reason);
            d.user = inert(d.user);
            d.state = match d.state {
                crate::workload::operations::DrainState::Active(s) => {
                    crate::workload::operations::DrainState::Active(
                        inert(Some(s)).unwrap_or_default(),
                    )
                }
                crate::workload::operations::DrainState::Unknown(s) => {
                    crate::workload::operations::DrainState::Unknown(
                        inert(Some(s)).unwrap_or_default(),
                    )
                }
                other => other,
            };
            OperationEvent::Drain(d)
        }
        OperationEvent::Restarting {
            kind,
            by,
            practice,
            seen_down,
        } => OperationEvent::Restarting {
            kind,
            by: inert(by),
            practice,
            seen_down,
        },
        OperationEvent::Resetting(on) => OperationEvent::Resetting(on),
        OperationEvent::Repair { text, active, by } => OperationEvent::Repair {
            text: inert(Some(text)).unwrap_or_default(),
            active,
            by: inert(by),
        },
    }
}

/// Which of a node's latest events a keyframe restates: the ones fleet state keeps (a node's hello, its last
/// sample, its last failure, each kind of operation), so applying them in time order rebuilds the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Streaming,
    Sample,
    Failed,
    History,
    BadLine,
    Drain,
    Restarting,
    Resetting,
    Repair,
}

/// Slots a node has.
pub(super) const SLOTS: usize = 9;

impl Slot {
    pub fn of(event: &Event) -> Option<Slot> {
        Some(match event {
            Event::Connecting => return None,
            Event::Streaming { .. } => Slot::Streaming,
            Event::Sample(_) | Event::Delta(_) => Slot::Sample,
            Event::Failed { .. } => Slot::Failed,
            Event::History(_) => Slot::History,
            Event::BadLine(_) => Slot::BadLine,
            Event::Operation(OperationEvent::Drain(_)) => Slot::Drain,
            Event::Operation(OperationEvent::Restarting { .. }) => Slot::Restarting,
            Event::Operation(OperationEvent::Resetting(_)) => Slot::Resetting,
            Event::Operation(OperationEvent::Repair { .. }) => Slot::Repair,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A node's latest event per slot, with its wall time (a sample's value is kept by the caller, who patches it).
#[derive(Debug, Clone, Default)]
pub(super) struct NodeSlots {
    pub latest: [Option<(u64, Event)>; SLOTS],
}

impl NodeSlots {
    /// Keeps `event` as its slot's latest; a sample's value is the node's current one, given to [`keyframe`].
    pub fn keep(&mut self, t: u64, event: &Event) {
        let Some(slot) = Slot::of(event) else {
            return;
        };
        let kept = match event {
            Event::Sample(_) | Event::Delta(_) => Event::Sample(Value::Null),
            other => other.clone(),
        };
        self.latest[slot.index()] = Some((t, kept));
    }

    /// The kept events in time order, as keyframe frames of node `n` whose current sample is `sample`.
    pub fn keyframe(&self, n: usize, sample: Option<&Value>) -> Vec<Frame> {
        let mut frames: Vec<Frame> = self
            .latest
            .iter()
            .flatten()
            .filter_map(|(t, e)| {
                let e = match e {
                    Event::Sample(_) => Event::Sample(sample?.clone()),
                    other => other.clone(),
                };
                Some(Frame {
                    t: *t,
                    n,
                    k: true,
                    e,
                })
            })
            .collect();
        frames.sort_by_key(|f| f.t);
        frames
    }
}
