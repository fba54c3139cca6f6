//! One recorded message as a frame: its kind, wall time (a change from the frame before) and node in the head
//! lane, then a sample as binary fields (`packed.rs`) or any other event as bounded JSON. Reading a frame makes
//! its text inert again, as a node's own line is: a recording is a file, and files are not trusted.

use serde::{Deserialize, Serialize};

use super::codec::{Cursor, Lane, Lanes};
use super::packed::{self, Node};
use crate::telemetry::sanitize::make_inert;
use crate::telemetry::wire::{AgentHello, MAX_GPUS_PER_SAMPLE, MAX_LINE_BYTES};
use crate::telemetry::{NodeSample, Source};
use crate::transport::{FailureKind, GpuPast, NodeEvent};
use crate::workload::operations::OperationEvent;
use crate::workload::{Job, Scheduler};

/// Longest text kept from a frame's detail, bad line or operation text (the transports keep 200).
const MAX_TEXT: usize = 256;
/// Jobs kept per node from a frame, and the longest job id (ids are never cut where they are read live).
const MAX_JOBS_PER_NODE: usize = 256;
const MAX_JOB_ID: usize = 1024;
/// Longest practice reboot a frame may state: the demo fleet's take seconds.
const MAX_PRACTICE: std::time::Duration = std::time::Duration::from_secs(3600);
/// Scheduler answers one block holds at most (the writer starts a new block first): each hands out every
/// node's jobs, so a file of nothing but answers must not cost that a million times.
pub(super) const MAX_ANSWERS_PER_BLOCK: usize = 8;
/// Largest event JSON a frame holds: what a live line may (no node's event came in a longer one). The writer
/// drops a longer one, and the reader refuses it.
const MAX_EVENT: usize = MAX_LINE_BYTES;
/// Schedulers one answer names at most (there are two kinds).
const MAX_SCHEDULERS: usize = 8;
/// Points kept per GPU from a recorded history: ten minutes at the fastest interval the inventory accepts is
/// far less.
const MAX_HISTORY_POINTS: usize = 4096;

/// A frame's kind, the low bits of its first byte.
const WHOLE: u64 = 0;
const CHANGES: u64 = 1;
const EVENT: u64 = 2;
/// The recorder's heartbeat: a second in which nothing else was written.
const BEAT: u64 = 3;
/// The bit that marks a keyframe's frame.
const KEY: u64 = 8;

/// One frame of a segment.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    /// Wall time the jump host received the event, ms since the Unix epoch.
    pub t: u64,
    /// The node's index in the recording's inventory.
    pub n: usize,
    /// Part of a segment's keyframe: the node's state restated, not a new event.
    pub k: bool,
    pub e: Event,
}

/// A [`NodeEvent`] as recorded. A sample's values are not in it: they are the node's, kept beside (the
/// writer's last sample, the reader's [`Node`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Event {
    Connecting,
    Streaming {
        source: Source,
        detail: String,
        hello: Option<Box<AgentHello>>,
    },
    Sample,
    History(Vec<GpuPast>),
    BadLine(String),
    Operation(OperationEvent),
    Failed {
        kind: FailureKind,
        detail: String,
    },
    /// The node's jobs, written when a scheduler answer changed them (not a node event: the reader gathers them).
    Jobs(Vec<Job>),
    /// The end of a scheduler answer: what it could not say and which schedulers answered; with every node's
    /// latest jobs, the workload the TUI had then.
    Workload {
        problems: Vec<String>,
        checked: Vec<Scheduler>,
    },
    /// The recorder ran at this time while the fleet was silent (a frame of its own kind, not a node's event).
    Beat,
}

impl Event {
    /// The event as recorded, except a sample, which the caller records whole or as its changes.
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

    /// The event bounded and made inert as the transports and schedulers do with what a node or a controller
    /// says: done as a frame is read, before the reader keeps it, so a file cannot make it hold more.
    fn inert(self) -> Event {
        match self {
            Event::Connecting => Event::Connecting,
            Event::Sample => Event::Sample,
            Event::Beat => Event::Beat,
            Event::Streaming {
                source,
                mut detail,
                mut hello,
            } => {
                make_inert(&mut detail, MAX_TEXT);
                if let Some(h) = hello.as_mut() {
                    h.sanitize();
                }
                Event::Streaming {
                    source,
                    detail,
                    hello,
                }
            }
            Event::History(mut gpus) => {
                gpus.truncate(MAX_GPUS_PER_SAMPLE);
                gpus.shrink_to_fit();
                for (_, points) in &mut gpus {
                    points.truncate(MAX_HISTORY_POINTS);
                    points.shrink_to_fit();
                }
                Event::History(gpus)
            }
            Event::BadLine(mut why) => {
                make_inert(&mut why, MAX_TEXT);
                Event::BadLine(why)
            }
            Event::Operation(op) => Event::Operation(inert_operation(op)),
            Event::Failed { kind, mut detail } => {
                make_inert(&mut detail, MAX_TEXT);
                Event::Failed { kind, detail }
            }
            Event::Jobs(jobs) => Event::Jobs(inert_jobs(jobs)),
            Event::Workload {
                problems,
                mut checked,
            } => {
                checked.truncate(MAX_SCHEDULERS);
                checked.shrink_to_fit();
                Event::Workload {
                    problems: inert_problems(problems),
                    checked,
                }
            }
        }
    }

    /// The node event again (already made inert as it was read); a sample comes from the caller, which
    /// rebuilt it from the frames, and is checked as a node's own.
    pub(crate) fn into_node_event(self, sample: Option<&NodeSample>) -> Result<NodeEvent, String> {
        Ok(match self {
            Event::Connecting => NodeEvent::Connecting,
            Event::Streaming {
                source,
                detail,
                hello,
            } => NodeEvent::Streaming {
                source,
                detail,
                hello,
            },
            Event::Sample => {
                let mut s = sample
                    .ok_or("a sample's changes before any whole sample of its node")?
                    .clone();
                s.sanitize(MAX_GPUS_PER_SAMPLE);
                NodeEvent::Sample(s)
            }
            Event::History(gpus) => NodeEvent::History(gpus),
            Event::BadLine(why) => NodeEvent::BadLine(why),
            Event::Operation(op) => NodeEvent::Operation(op),
            Event::Failed { kind, detail } => NodeEvent::Failed { kind, detail },
            Event::Jobs(_) | Event::Workload { .. } => {
                return Err("a scheduler frame where a node event was expected".into())
            }
            Event::Beat => return Err("a heartbeat where a node event was expected".into()),
        })
    }
}

/// A node's jobs from a frame, bounded and made inert as the schedulers' own answers are.
fn inert_jobs(mut jobs: Vec<Job>) -> Vec<Job> {
    jobs.truncate(MAX_JOBS_PER_NODE);
    jobs.shrink_to_fit();
    for job in &mut jobs {
        make_inert(&mut job.id, MAX_JOB_ID);
        make_inert(&mut job.state, MAX_TEXT);
        for text in [
            &mut job.user,
            &mut job.tenant,
            &mut job.partition,
            &mut job.pod_uid,
        ] {
            if let Some(t) = text.as_mut() {
                make_inert(t, MAX_TEXT);
            }
        }
    }
    jobs
}

/// A scheduler answer's problems from a frame, bounded and made inert.
fn inert_problems(mut problems: Vec<String>) -> Vec<String> {
    problems.truncate(MAX_JOBS_PER_NODE);
    problems.shrink_to_fit();
    for p in &mut problems {
        make_inert(p, MAX_TEXT);
    }
    problems
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
            practice: practice.map(|p| p.min(MAX_PRACTICE)),
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
    Jobs,
}

/// Slots a node has.
pub(super) const SLOTS: usize = 10;

impl Slot {
    pub fn of(event: &Event) -> Option<Slot> {
        Some(match event {
            Event::Connecting | Event::Workload { .. } | Event::Beat => return None,
            Event::Jobs(_) => Slot::Jobs,
            Event::Streaming { .. } => Slot::Streaming,
            Event::Sample => Slot::Sample,
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

/// A node's latest event per slot, with its wall time (a sample's values are kept by the caller).
#[derive(Debug, Clone, Default)]
pub(super) struct NodeSlots {
    pub latest: [Option<(u64, Event)>; SLOTS],
}

impl NodeSlots {
    /// Keeps `event` as its slot's latest.
    pub fn keep(&mut self, t: u64, event: &Event) {
        if let Some(slot) = Slot::of(event) {
            self.latest[slot.index()] = Some((t, event.clone()));
        }
    }

    /// The kept events in time order, as keyframe frames of node `n`; its sample only where it `has_sample`.
    pub fn keyframe(&self, n: usize, has_sample: bool) -> Vec<Frame> {
        let mut frames: Vec<Frame> = self
            .latest
            .iter()
            .flatten()
            .filter(|(_, e)| has_sample || !matches!(e, Event::Sample))
            .map(|(t, e)| Frame {
                t: *t,
                n,
                k: true,
                e: e.clone(),
            })
            .collect();
        frames.sort_by_key(|f| f.t);
        frames
    }
}

/// The time and node of the frame before, which a frame's are written as changes from: frames come a node
/// after another, so the node is mostly the one after.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct After {
    pub t: u64,
    pub n: usize,
}

impl After {
    fn node_change(self, n: usize) -> i64 {
        (n as i64).wrapping_sub(self.n as i64).wrapping_sub(1)
    }
}

/// Writes `frame` after the frame `after`; a sample frame's values are `sample`, as its changes from `base`
/// (see [`packed::delta_base`]) or whole, with its changed fields (see [`packed::Held::masks`]).
pub(super) fn write(
    frame: &Frame,
    after: After,
    sample: Option<(Option<&NodeSample>, &NodeSample, &[u64])>,
    out: &mut Lanes,
) -> Result<(), String> {
    let kind = match (&frame.e, sample) {
        (Event::Sample, Some((Some(_), _, _))) => CHANGES,
        (Event::Sample, Some((None, _, _))) => WHOLE,
        (Event::Sample, None) => return Err("a sample frame without its sample".into()),
        (Event::Beat, _) => BEAT,
        _ => EVENT,
    };
    out.uint(Lane::Head, kind | if frame.k { KEY } else { 0 });
    out.int(Lane::Head, frame.t.wrapping_sub(after.t) as i64);
    out.int(Lane::Head, after.node_change(frame.n));
    match sample {
        _ if kind == BEAT => Ok(()),
        Some((base, new, masks)) if kind != EVENT => packed::put(base, new, masks, out),
        _ => {
            let json = serde_json::to_vec(&frame.e).map_err(|e| format!("encode a frame: {e}"))?;
            if json.len() > MAX_EVENT {
                return Err(format!(
                    "an event of {} bytes, past the {MAX_EVENT} byte cap",
                    json.len()
                ));
            }
            out.bytes(&json);
            Ok(())
        }
    }
}

/// A frame's kind, time and node, read before its body: a reader hands out the state before the frame first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    kind: u64,
    pub t: u64,
    pub n: usize,
    pub k: bool,
}

/// Reads the head of the frame after the frame `after`.
pub(super) fn read_head(c: &mut Cursor, after: After) -> Result<Head, String> {
    let head = c.uint(Lane::Head)?;
    let t = after.t.wrapping_add(c.int(Lane::Head)? as u64);
    let change = c.int(Lane::Head)?;
    let n = (after.n as i64)
        .checked_add(1)
        .and_then(|n| n.checked_add(change))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("a frame's node {} after node {}", change, after.n))?;
    Ok(Head {
        kind: head & !KEY,
        t,
        n,
        k: head & KEY != 0,
    })
}

/// Reads the body of the frame `head` begins; a sample's values go into its node of `nodes`.
pub(super) fn read_body(c: &mut Cursor, head: Head, nodes: &mut [Node]) -> Result<Frame, String> {
    let (count, n) = (nodes.len(), head.n);
    let node = nodes
        .get_mut(n)
        .ok_or_else(|| format!("a frame for node {n} of an inventory of {count}"))?;
    let e = match head.kind {
        WHOLE => packed::get_whole(node, c).map(|()| Event::Sample),
        CHANGES => packed::get_delta(node, c).map(|()| Event::Sample),
        BEAT => Ok(Event::Beat),
        EVENT => {
            let json = c.bytes(MAX_EVENT, "an event's length")?;
            match serde_json::from_slice::<Event>(json) {
                Ok(Event::Sample | Event::Beat) => Err("an event frame holding no event".into()),
                Ok(e) => Ok(e.inert()),
                Err(e) => Err(format!("an event: {e}")),
            }
        }
        other => Err(format!(
            "a frame of kind {other}, which this fleetop does not know"
        )),
    }
    .map_err(|e| format!("node {n}: {e}"))?;
    Ok(Frame {
        t: head.t,
        n,
        k: head.k,
        e,
    })
}
