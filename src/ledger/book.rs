//! The ledger itself: each GPU's time booked, between observations, to the class fleet state's verdicts give it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::classify::{self, Cause, GpuClass};
use super::repairs::Overlay;
use crate::fleet::FleetState;
use crate::inventory::{Inventory, NodeId};
use crate::transport::{Msg, NodeEvent};

/// Milliseconds in one hour: GPU-hours are booked milliseconds over this.
pub(crate) const MS_PER_HOUR: f64 = 3_600_000.0;

/// How far before the window fleet state's clock reaches: a recording restates each node's last messages from
/// before the window at their own times, and a sample that old must look as old as it is (stale), not fresh.
const CLOCK_BEFORE_MS: u64 = 86_400_000;
/// Crit spells kept per node (the newest): what a repair's detection is looked up in.
const MAX_SPELLS: usize = 1024;
/// Recorder stops listed (the oldest; the rest are counted): their time is booked either way.
const MAX_GAPS: usize = 1024;
/// A busy jump host's scheduling, on top of the longest a followed node stays silent, before a silence of the
/// whole fleet is taken for the recorder being stopped.
const SILENCE_GRACE_MS: u64 = 5_000;

/// One GPU's time, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub inventory_ms: u64,
    pub healthy_ms: u64,
    pub in_use_ms: u64,
    /// Lost, by cause and reason (`XID 79`, `unreachable`, …; empty when the cause says it all).
    pub lost_ms: BTreeMap<(Cause, String), u64>,
}

impl Tally {
    fn book(&mut self, class: &GpuClass, ms: u64) {
        if ms == 0 {
            return;
        }
        self.inventory_ms += ms;
        match &class.lost {
            None => {
                self.healthy_ms += ms;
                if class.busy {
                    self.in_use_ms += ms;
                }
            }
            Some(key) => *self.lost_ms.entry(key.clone()).or_default() += ms,
        }
    }

    /// Adds `other` into this one (grouping GPUs).
    pub fn add(&mut self, other: &Tally) {
        self.inventory_ms += other.inventory_ms;
        self.healthy_ms += other.healthy_ms;
        self.in_use_ms += other.in_use_ms;
        for (key, ms) in &other.lost_ms {
            *self.lost_ms.entry(key.clone()).or_default() += ms;
        }
    }

    /// Lost time of one cause, every reason together.
    pub fn lost(&self, cause: Cause) -> u64 {
        self.lost_ms
            .iter()
            .filter(|((c, _), _)| *c == cause)
            .map(|(_, ms)| ms)
            .sum()
    }
}

/// A node's GPUs as last judged, and since when.
#[derive(Debug, Clone, Default)]
struct Track {
    since_ms: u64,
    classes: Vec<GpuClass>,
    /// Since when one of its GPUs is crit.
    crit_since: Option<u64>,
    crit_spells: std::collections::VecDeque<(u64, u64)>,
}

impl Track {
    /// Ends a crit spell running at `ms`, keeping the newest [`MAX_SPELLS`].
    fn end_crit_spell(&mut self, ms: u64) {
        let Some(from) = self.crit_since.take() else {
            return;
        };
        if self.crit_spells.len() == MAX_SPELLS {
            self.crit_spells.pop_front();
        }
        self.crit_spells.push_back((from, ms));
    }
}

/// What the ledger found: per node, per expected GPU, its time; and the window it covers.
#[derive(Debug, Clone)]
pub struct Hours {
    pub inventory: Arc<Inventory>,
    /// The window asked for, Unix ms.
    pub window: (u64, u64),
    /// The part of it a recording covered; `None`: none did.
    pub recorded: Option<(u64, u64)>,
    /// By node id, then GPU index.
    pub gpus: Vec<Vec<Tally>>,
    /// By node id: when one of its GPUs was crit, (from, to) Unix ms, oldest first.
    pub crit_spells: Vec<Vec<(u64, u64)>>,
    /// Inside the recorded part, where the recorder was stopped: (from, to) Unix ms, oldest first, at most
    /// [`MAX_GAPS`].
    pub gaps: Vec<(u64, u64)>,
    /// Gaps past [`MAX_GAPS`], booked but not listed.
    pub gaps_unlisted: usize,
}

/// Feeds a recording's messages through fleet state and books each GPU's time.
pub struct Ledger {
    state: FleetState,
    window: (u64, u64),
    overlay: Overlay,
    /// The instant standing for `origin_ms` (a day before the window): fleet state works in `Instant`s, the
    /// recording in wall ms.
    base: Instant,
    origin_ms: u64,
    started: Option<u64>,
    last_ms: u64,
    tracks: Vec<Track>,
    gpus: Vec<Vec<Tally>>,
    /// By node: whether its last word was a streaming one (a hello, a sample, a bad line), and how many are.
    streaming: Vec<bool>,
    streaming_nodes: usize,
    /// The longest a running recorder hears nothing while some node streams, and while none does, in ms
    /// (`Timeouts::longest_silence`).
    silence_ms: (u64, u64),
    gaps: Vec<(u64, u64)>,
    gaps_unlisted: usize,
}

impl Ledger {
    /// A ledger of `inventory`'s GPUs over `window` (Unix ms, start before end), with the store's repairs.
    pub fn new(inventory: Arc<Inventory>, window: (u64, u64), overlay: Overlay) -> Ledger {
        let gpus = inventory
            .nodes
            .iter()
            .map(|n| vec![Tally::default(); n.expected_gpus as usize])
            .collect();
        let timeouts = crate::transport::ssh::Timeouts::from_settings(&inventory.settings);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Ledger {
            streaming: vec![false; inventory.nodes.len()],
            streaming_nodes: 0,
            silence_ms: (
                ms(timeouts.longest_silence(true)),
                ms(timeouts.longest_silence(false)),
            ),
            gaps: Vec::new(),
            gaps_unlisted: 0,
            tracks: vec![Track::default(); inventory.nodes.len()],
            state: FleetState::new(inventory),
            window: (window.0, window.1.max(window.0)),
            overlay,
            base: Instant::now(),
            origin_ms: window.0.saturating_sub(CLOCK_BEFORE_MS),
            started: None,
            last_ms: window.0,
            gpus,
        }
    }

    fn instant(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms.saturating_sub(self.origin_ms))
    }

    /// Audited resets and reboots (`actions::resets::read`): XIDs older than them are history, as in every view.
    pub fn note_resets(&mut self, resets: &[crate::fleet::AuditedReset]) {
        self.state.note_resets(resets);
    }

    /// One message, at `wall_ms`. Messages come in time order (those from before the window restate the state
    /// it starts with); one that goes back in time is booked as now, and time past the window's end is not.
    /// A silence of the whole fleet longer than a followed fleet keeps is the recorder stopped: that time is
    /// `unrecorded`, not the nodes' (a node silent while others speak is still unreachable).
    pub fn feed(&mut self, wall_ms: u64, mut msg: Msg) {
        let t = wall_ms.clamp(self.last_ms, self.window.1);
        let node = msg.node;
        if node >= self.tracks.len() {
            return;
        }
        msg.at = self.instant(wall_ms.min(self.window.1));
        if self.started.is_none() {
            // The first message starts the recorded part: every node is judged from then, as fleet state holds
            // it (a node not heard of yet has no data: unreachable until its first message).
            self.started = Some(t);
            for id in 0..self.tracks.len() {
                self.tracks[id].since_ms = t;
                self.judge(id, t);
            }
            self.last_ms = t;
        } else {
            self.heard_recorder(t);
        }
        self.note_word(node, &msg.event);
        self.advance(node, t);
        self.state.apply(msg);
        self.judge(node, t);
    }

    /// The recorder's heartbeat at `wall_ms` (a beat frame it wrote in a second with nothing else to write):
    /// the recorder ran then, so a silence it breaks is the nodes', however long (a Prometheus outage says
    /// `NoData` once).
    pub fn recorder_alive(&mut self, wall_ms: u64) {
        if self.started.is_some() {
            self.heard_recorder(wall_ms.clamp(self.last_ms, self.window.1));
        }
    }

    /// The recorder was heard at `t`: a silence before it longer than a followed fleet keeps is unrecorded.
    fn heard_recorder(&mut self, t: u64) {
        if t - self.last_ms > self.longest_silence() {
            self.not_recorded(self.last_ms, t);
        }
        self.last_ms = t;
    }

    /// Books every node up to `end_ms` (the recording's last frame; the window's end at most) and returns
    /// the hours; the window outside the recorded part is `unrecorded`.
    pub fn finish(mut self, end_ms: u64) -> Hours {
        let Some(start) = self.started else {
            let whole = self.window.1 - self.window.0;
            for tallies in &mut self.gpus {
                for t in tallies.iter_mut() {
                    t.book(&unrecorded(), whole);
                }
            }
            return self.hours(None);
        };
        let end = end_ms.clamp(self.last_ms, self.window.1);
        for id in 0..self.tracks.len() {
            self.advance(id, end);
            self.tracks[id].end_crit_spell(end);
        }
        let outside = (start - self.window.0) + (self.window.1 - end);
        for tallies in &mut self.gpus {
            for t in tallies.iter_mut() {
                t.book(&unrecorded(), outside);
            }
        }
        self.hours(Some((start, end)))
    }

    fn hours(self, recorded: Option<(u64, u64)>) -> Hours {
        Hours {
            inventory: Arc::clone(self.state.inventory()),
            window: self.window,
            recorded,
            gpus: self.gpus,
            gaps: self.gaps,
            gaps_unlisted: self.gaps_unlisted,
            crit_spells: self
                .tracks
                .into_iter()
                .map(|t| t.crit_spells.into())
                .collect(),
        }
    }

    /// Node `id`'s GPUs judged at `ms`, from fleet state and the store's repairs.
    fn judge(&mut self, id: NodeId, ms: u64) {
        let repair = self.overlay.at(id, ms);
        let classes = classify::node(&self.state, id, self.instant(ms), repair);
        let crit = classes
            .iter()
            .any(|c| matches!(c.lost, Some((Cause::Crit, _))));
        let track = &mut self.tracks[id];
        track.classes = classes;
        match (crit, track.crit_since) {
            (true, None) => track.crit_since = Some(ms),
            (false, Some(_)) => track.end_crit_spell(ms),
            _ => {}
        }
    }

    /// How long the whole fleet may be silent while the recorder runs: a streaming node is heard within its
    /// stall limit, a failing one within a connection attempt and its backoff.
    fn longest_silence(&self) -> u64 {
        let limit = if self.streaming_nodes > 0 {
            self.silence_ms.0
        } else {
            self.silence_ms.1
        };
        limit.saturating_add(SILENCE_GRACE_MS)
    }

    /// Keeps whether node `id` is streaming after `event`; the read-backs' operations and a store's history
    /// say nothing of its connection.
    fn note_word(&mut self, id: NodeId, event: &NodeEvent) {
        let streaming = match event {
            NodeEvent::Streaming { .. }
            | NodeEvent::Sample(_)
            | NodeEvent::Delta(_)
            | NodeEvent::BadLine(_) => true,
            NodeEvent::Connecting | NodeEvent::Failed { .. } => false,
            NodeEvent::History(_) | NodeEvent::Operation(_) => return,
        };
        if streaming != self.streaming[id] {
            self.streaming[id] = streaming;
            if streaming {
                self.streaming_nodes += 1;
            } else {
                self.streaming_nodes -= 1;
            }
        }
    }

    /// The recorder was stopped from `from` to `to`: every node is booked up to `from`, the gap is booked
    /// `unrecorded`, and every node is judged again after it (its data by then stale).
    fn not_recorded(&mut self, from: u64, to: u64) {
        for id in 0..self.tracks.len() {
            self.advance(id, from);
            for tally in &mut self.gpus[id] {
                tally.book(&unrecorded(), to - from);
            }
            self.tracks[id].end_crit_spell(from);
            self.tracks[id].since_ms = to;
            self.judge(id, to);
        }
        if self.gaps.len() < MAX_GAPS {
            self.gaps.push((from, to));
        } else {
            self.gaps_unlisted += 1;
        }
    }

    /// Books node `id`'s time up to `to_ms`, judging it again where its data goes stale or a repair record
    /// starts or ends on the way.
    fn advance(&mut self, id: NodeId, to_ms: u64) {
        let stale_at = self.stale_at(id);
        loop {
            let since = self.tracks[id].since_ms;
            if since >= to_ms {
                return;
            }
            let next = [stale_at, self.overlay.next_change(id, since)]
                .into_iter()
                .flatten()
                .filter(|&b| b > since && b < to_ms)
                .min();
            let until = next.unwrap_or(to_ms);
            let ms = until - since;
            for (tally, class) in self.gpus[id].iter_mut().zip(&self.tracks[id].classes) {
                tally.book(class, ms);
            }
            self.tracks[id].since_ms = until;
            if next.is_some() {
                self.judge(id, until);
            }
        }
    }

    /// When node `id`'s last sample goes stale, in wall ms: fleet state calls a sample fresh while its age is at
    /// most `stale_after`, so from one millisecond past that the node has no fresh data.
    fn stale_at(&self, id: NodeId) -> Option<u64> {
        let at = self.state.nodes()[id].sample_at?;
        let sample_ms =
            self.origin_ms + u64::try_from(at.duration_since(self.base).as_millis()).ok()?;
        let after = u64::try_from(self.state.stale_after(id).as_millis()).ok()?;
        Some(sample_ms + after + 1)
    }
}

fn unrecorded() -> GpuClass {
    GpuClass {
        lost: Some((Cause::Unrecorded, String::new())),
        busy: false,
    }
}

#[cfg(test)]
#[path = "tests.rs"]
pub(super) mod tests;

#[cfg(test)]
#[path = "gap_tests.rs"]
mod gap_tests;
