//! The compact stream: after a full sample the agent sends only the values that changed (a delta line,
//! `{"d":T,…}`), and a full sample again every N lines, when asked, and whenever a GPU's or port's identity
//! changed. This module is the one place that says what a delta carries, how it is made and how it is applied.

use serde::{Deserialize, Serialize};

use super::fabric::IbPort;
use super::{GpuSample, NodeSample, XidEvent};

/// How a delta line begins: no hello (`{"fleetop_agent"`) or sample (`{"t"`) line does.
pub(crate) const DELTA_PREFIX: &str = "{\"d\":";
/// Set by the jump host on the agent's command line to ask for the compact stream, with a full sample every
/// that many lines; an older agent ignores it and sends full samples, which the decoder still reads.
pub(crate) const COMPACT_ENV: &str = "FLEETOP_COMPACT";
/// A full sample every this many lines when following: a minute at 1 Hz.
pub(crate) const DEFAULT_FULL_EVERY: u32 = 60;

/// Reads a field that is present as `Some`, so `null` becomes `Some(None)` ("now unknown") while an absent
/// field stays `None` ("unchanged", through `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Declares a delta of `$target`: its key fields (sent every time, they say what the delta is of) and the value
/// fields it may carry, each `None` when unchanged. Everything in `$target` not listed is identity: a change
/// there makes the agent send a full sample.
macro_rules! delta {
    (
        $(#[$meta:meta])*
        $name:ident of $target:ty {
            keys { $( $(#[$key_meta:meta])* $key:ident: $key_ty:ty, )* }
            values { $( $field:ident: $ty:ty, )* }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $( $(#[$key_meta])* pub $key: $key_ty, )*
            $(
                #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
                pub $field: Option<$ty>,
            )*
        }

        // A node's delta is sent even when it carries nothing (its time moved on), and a node's identity is
        // its GPUs' and ports': not every delta uses every function.
        #[allow(dead_code)]
        impl $name {
            /// Fills in the values in which `new` differs from `old`.
            fn diff(&mut self, old: &$target, new: &$target) {
                $( self.$field = (old.$field != new.$field).then(|| new.$field.clone()); )*
            }

            fn carries_values(&self) -> bool {
                false $( || self.$field.is_some() )*
            }

            /// Moves the values it carries into `to`.
            fn apply(self, to: &mut $target) {
                $( if let Some(value) = self.$field { to.$field = value; } )*
            }

            /// Copies the values it carries into `to`.
            fn copy_into(&self, to: &mut $target) {
                $( if let Some(value) = &self.$field { to.$field = value.clone(); } )*
            }

            /// Whether `sanitized`, made of this delta's values alone and then sanitized, still holds each
            /// value as carried and nothing else: sanitizing changed none of them.
            fn sanitizes_to_itself(&self, sanitized: &$target) -> bool {
                true $( && match &self.$field {
                    Some(value) => *value == sanitized.$field,
                    None => sanitized.$field == <$ty>::default(),
                } )*
            }

            /// The values `from` holds in each field this delta carries (taken from it: what sanitizing made
            /// of them), without keys, which the caller sets.
            fn taken_from(&self, from: &mut $target) -> Self {
                Self {
                    $( $field: self.$field.as_ref().map(|_| std::mem::take(&mut from.$field)), )*
                    ..Default::default()
                }
            }

            /// `value` without the fields a delta may carry: two readings with the same identity may be
            /// sent as a delta of each other.
            fn identity(value: &$target) -> $target {
                let mut kept = value.clone();
                $( kept.$field = Default::default(); )*
                kept
            }
        }
    };
}

delta! {
    /// What changed on one GPU, by its index.
    GpuDelta of GpuSample {
        keys { index: u32, }
        values {
            util_pct: Option<u32>,
            mem_util_pct: Option<u32>,
            mem_used_mib: Option<u64>,
            temp_c: Option<u32>,
            mem_temp_c: Option<u32>,
            power_w: Option<f64>,
            sm_clock_mhz: Option<u32>,
            throttle: Option<Vec<String>>,
            ecc_uncorrected: Option<u64>,
            remapped_rows_pending: Option<bool>,
            remapped_rows_failed: Option<bool>,
            xid: Option<Vec<u32>>,
            xid_events: Option<Vec<XidEvent>>,
            pcie_gen: Option<u32>,
            pcie_width: Option<u32>,
            remapped_rows_uncorrectable: Option<u64>,
            mig_enabled: Option<bool>,
            tlimit_margin_c: Option<i32>,
            recovery_action: Option<u32>,
            nvlink: Option<super::fabric::NvLinks>,
            processes: Option<Vec<super::process::GpuProcess>>,
            pcie_replay: Option<u64>,
            pcie_replay_rise: Option<super::board::Rise>,
            pcie_aer: Option<super::board::PcieAer>,
            fabric: Option<super::board::GpuFabric>,
            sram_threshold_exceeded: Option<bool>,
            memory_unrepairable: Option<bool>,
            remap_banks: Option<super::board::RemapBanks>,
            clock_violation: Option<super::board::ClockViolation>,
            errors: Vec<super::GpuError>,
            past: Option<Vec<super::past::PastEvent>>,
        }
    }
}

delta! {
    /// What changed on one InfiniBand port, by its position in the sample's list.
    IbDelta of IbPort {
        keys { at: u32, }
        values {
            state: Option<super::fabric::PortState>,
            phys_state: Option<super::fabric::PortState>,
            rate_gbps: Option<f64>,
            counters: super::fabric::IbCounters,
            rose: Option<super::fabric::IbRise>,
        }
    }
}

delta! {
    /// What changed on a node since the line before: a delta line.
    NodeDelta of NodeSample {
        keys {
            /// The sample's node-side time (`t`), Unix milliseconds.
            d: u64,
            /// GPUs with a changed value; at most one more than a sample may hold is kept while decoding.
            #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "super::bounded::list")]
            gpus: Vec<GpuDelta>,
            #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "super::bounded::list")]
            ib: Vec<IbDelta>,
        }
        values {
            warnings: Vec<String>,
            sxid: Option<Vec<XidEvent>>,
            unmatched_xid: Vec<XidEvent>,
            past: Option<Vec<super::past::PastEvent>>,
        }
    }
}

impl NodeDelta {
    /// `new` as a delta of `old`, or `None` where a delta cannot say it: a GPU or port came, went, moved or
    /// changed identity.
    pub fn between(old: &NodeSample, new: &NodeSample) -> Option<NodeDelta> {
        if old.gpus.len() != new.gpus.len()
            || old.ib.as_ref().map(Vec::len) != new.ib.as_ref().map(Vec::len)
        {
            return None;
        }
        // Every node-level field is either a key (`t`, `gpus`, `ib`) or a value above: a field added to
        // `NodeSample` stops this compiling until it is given a place, so no change is silently left out.
        let NodeSample {
            t: _,
            gpus: _,
            ib: _,
            warnings: _,
            sxid: _,
            unmatched_xid: _,
            past: _,
        } = new;
        let mut delta = NodeDelta {
            d: new.t,
            ..Default::default()
        };
        delta.diff(old, new);
        for (was, now) in old.gpus.iter().zip(&new.gpus) {
            if GpuDelta::identity(was) != GpuDelta::identity(now) {
                return None;
            }
            let mut gpu = GpuDelta {
                index: now.index,
                ..Default::default()
            };
            gpu.diff(was, now);
            if gpu.carries_values() {
                delta.gpus.push(gpu);
            }
        }
        let ports = old.ib.iter().flatten().zip(new.ib.iter().flatten());
        for ((was, now), at) in ports.zip(0u32..) {
            if IbDelta::identity(was) != IbDelta::identity(now) {
                return None;
            }
            let mut port = IbDelta {
                at,
                ..Default::default()
            };
            port.diff(was, now);
            if port.carries_values() {
                delta.ib.push(port);
            }
        }
        Some(delta)
    }
}

impl NodeDelta {
    /// Whether the delta says only that the node's time moved on: nothing about it changed.
    pub fn carries_time_only(&self) -> bool {
        self.gpus.is_empty() && self.ib.is_empty() && !self.carries_values()
    }

    /// Applies the delta to `to` in place: each GPU's values by its index, each port's by its position (the
    /// caller checked that `to` holds them; one it lacks is skipped).
    pub fn apply_to(mut self, to: &mut NodeSample) {
        to.t = self.d;
        for gpu in std::mem::take(&mut self.gpus) {
            if let Some(g) = to.gpus.iter_mut().find(|g| g.index == gpu.index) {
                gpu.apply(g);
            }
        }
        if let Some(list) = to.ib.as_mut() {
            for port in std::mem::take(&mut self.ib) {
                if let Some(p) = list.get_mut(port.at as usize) {
                    port.apply(p);
                }
            }
        }
        self.apply(to);
    }

    /// The delta with its values as sanitizing leaves them, when sanitizing changes none of them (nothing
    /// implausible, too long or unsafe to show): applied to a sample that sanitizing left alone, it gives one
    /// that sanitizing leaves alone too, so the jump host may patch its sanitized copy in place. `None` when
    /// it would change any, or the delta names a GPU or port twice. `base` gives the identity a range check
    /// reads (a GPU's total memory, which bounds its used memory).
    fn sanitized(&self, base: &NodeSample) -> Option<NodeDelta> {
        let mut alone = NodeSample {
            t: self.d,
            ..Default::default()
        };
        self.copy_into(&mut alone);
        alone.gpus = self
            .gpus
            .iter()
            .map(|d| {
                let mut g = GpuSample {
                    index: d.index,
                    mem_total_mib: base
                        .gpus
                        .iter()
                        .find(|b| b.index == d.index)
                        .and_then(|b| b.mem_total_mib),
                    ..Default::default()
                };
                d.copy_into(&mut g);
                g
            })
            .collect();
        if !self.ib.is_empty() {
            alone.ib = Some(
                self.ib
                    .iter()
                    .map(|d| {
                        let mut p = IbPort {
                            port: d.at,
                            ..Default::default()
                        };
                        d.copy_into(&mut p);
                        p
                    })
                    .collect(),
            );
        }
        alone.sanitize(super::bounded::MAX_GPUS_PER_SAMPLE);
        let gpus_kept = alone.gpus.len() == self.gpus.len()
            && self
                .gpus
                .iter()
                .zip(&alone.gpus)
                .all(|(d, g)| d.index == g.index && d.sanitizes_to_itself(g));
        let ports = alone.ib.as_deref().unwrap_or_default();
        let ports_kept = ports.len() == self.ib.len()
            && self
                .ib
                .iter()
                .zip(ports)
                .all(|(d, p)| d.at == p.port && d.sanitizes_to_itself(p));
        if !(gpus_kept && ports_kept && self.sanitizes_to_itself(&alone)) {
            return None;
        }
        let gpus = (self.gpus.iter().zip(&mut alone.gpus))
            .map(|(d, g)| GpuDelta {
                index: d.index,
                ..d.taken_from(g)
            })
            .collect();
        let ib = (self.ib.iter().zip(alone.ib.iter_mut().flatten()))
            .map(|(d, p)| IbDelta {
                at: d.at,
                ..d.taken_from(p)
            })
            .collect();
        Some(NodeDelta {
            d: self.d,
            gpus,
            ib,
            ..self.taken_from(&mut alone)
        })
    }
}

/// What a delta line gives the jump host.
#[derive(Debug)]
pub enum Rebuilt {
    /// The delta itself, its values sanitized, to apply in place to the sample sent before: the stream's
    /// samples have needed no sanitizing, so that sample is the agent's own and the patched one is what
    /// sanitizing the whole would give.
    Patch(NodeDelta),
    /// The whole sample it describes, still to be sanitized (and then given back to
    /// [`Reassembler::sanitized`]).
    Whole(NodeSample),
}

/// The agent's side: turns each sample into the line to send.
#[derive(Debug)]
pub(crate) struct Encoder {
    full_every: u32,
    /// Lines sent since the last full sample.
    since_full: u32,
    last: Option<NodeSample>,
}

impl Encoder {
    pub fn new(full_every: u32) -> Self {
        Encoder {
            full_every: full_every.max(1),
            since_full: 0,
            last: None,
        }
    }

    /// The line (without its newline) for `sample`: the whole sample first, every `full_every` lines, when
    /// `full` asks for it and whenever a delta cannot say what changed; else a delta.
    pub fn line(&mut self, sample: &NodeSample, full: bool) -> serde_json::Result<Vec<u8>> {
        let due = full || self.since_full.saturating_add(1) >= self.full_every;
        let delta = match &self.last {
            Some(last) if !due => NodeDelta::between(last, sample),
            _ => None,
        };
        let line = match &delta {
            Some(delta) => serde_json::to_vec(delta)?,
            None => serde_json::to_vec(sample)?,
        };
        self.since_full = if delta.is_some() {
            self.since_full.saturating_add(1)
        } else {
            0
        };
        match &mut self.last {
            Some(last) => last.clone_from(sample),
            None => self.last = Some(sample.clone()),
        }
        Ok(line)
    }
}

/// The jump host's side: keeps the last full reading a stream's deltas apply to.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// The agent said in its hello that it sends the compact stream.
    compact: bool,
    /// The node as the agent last described it, before the jump host's own sanitizing (an implausible value
    /// the agent corrects later must not leave the error sanitizing added behind).
    base: Option<NodeSample>,
    /// The stream lost its place (a bad line, a delta that does not apply): ask the agent for a full sample.
    wants_full: bool,
    /// The last sample sent on was `base` itself (sanitizing changed nothing), so the next delta may be sent
    /// as a patch to it.
    clean: bool,
}

impl Reassembler {
    /// The agent's hello: whether its stream is compact.
    pub fn start(&mut self, compact: bool) {
        *self = Reassembler {
            compact,
            ..Default::default()
        };
    }

    /// A full sample arrived: deltas apply to it from now on.
    pub fn full(&mut self, sample: &NodeSample) {
        if !self.compact {
            return;
        }
        match &mut self.base {
            Some(base) => base.clone_from(sample),
            None => self.base = Some(sample.clone()),
        }
    }

    /// A whole sample was sent on, sanitized: whether it is the agent's own (sanitizing changed nothing)
    /// decides whether the next delta may be sent as a patch to it.
    pub fn sanitized(&mut self, sent: &NodeSample) {
        self.clean = self.base.as_ref() == Some(sent);
    }

    /// A sample was not sent on (the node sends faster than its interval): the next delta goes whole, so
    /// that the receiver catches up.
    pub fn unsent(&mut self) {
        self.clean = false;
    }

    /// A line was lost or rejected: deltas cannot apply until the next full sample.
    pub fn lost(&mut self) {
        self.base = None;
        self.clean = false;
        self.wants_full |= self.compact;
    }

    /// Whether the agent should be asked for a full sample now (asked once per loss).
    pub fn take_full_request(&mut self) -> bool {
        std::mem::take(&mut self.wants_full)
    }

    /// What `delta` gives, as a patch or the whole sample it describes, or why it cannot apply (then nothing
    /// applies until a full sample).
    pub fn apply(&mut self, delta: NodeDelta) -> Result<Rebuilt, String> {
        let Some(base) = self.base.as_mut() else {
            self.lost();
            return Err("a delta line before any full sample".into());
        };
        let unknown_gpu = delta
            .gpus
            .iter()
            .find(|g| !base.gpus.iter().any(|b| b.index == g.index))
            .map(|g| g.index);
        let ports = base.ib.as_ref().map_or(0, Vec::len);
        let unknown_port = delta
            .ib
            .iter()
            .find(|p| p.at as usize >= ports)
            .map(|p| p.at);
        let why = match (unknown_gpu, unknown_port) {
            (Some(index), _) => {
                format!("a delta for GPU {index}, which the last full sample does not list")
            }
            (None, Some(at)) => format!(
                "a delta for InfiniBand port #{at}, beyond the {ports} of the last full sample"
            ),
            (None, None) if self.clean => {
                // An idle node's delta holds no value to check: it goes on as it came.
                let patch = if delta.carries_time_only() {
                    Some(NodeDelta {
                        d: delta.d,
                        ..Default::default()
                    })
                } else {
                    delta.sanitized(base)
                };
                delta.apply_to(base);
                return Ok(match patch {
                    Some(patch) => Rebuilt::Patch(patch),
                    None => {
                        self.clean = false;
                        Rebuilt::Whole(base.clone())
                    }
                });
            }
            (None, None) => {
                delta.apply_to(base);
                return Ok(Rebuilt::Whole(base.clone()));
            }
        };
        self.lost();
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::fabric::{IbCounters, NvLinks};

    fn gpu(index: u32, util: u32) -> GpuSample {
        GpuSample {
            index,
            uuid: Some(format!("GPU-{index}")),
            name: Some("NVIDIA H100 80GB HBM3".into()),
            util_pct: Some(util),
            temp_c: Some(40),
            power_w: Some(400.5),
            power_limit_w: Some(700.0),
            xid: Some(vec![]),
            ..Default::default()
        }
    }

    fn node(t: u64, utils: &[u32]) -> NodeSample {
        NodeSample {
            t,
            gpus: utils.iter().zip(0..).map(|(&u, i)| gpu(i, u)).collect(),
            ib: Some(vec![IbPort {
                hca: "mlx5_0".into(),
                port: 1,
                state: Some("4: ACTIVE".into()),
                rate_gbps: Some(400.0),
                counters: IbCounters::default(),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    /// The whole sample a delta gave: this reassembler was never told its samples were sanitized.
    fn whole(rebuilt: Result<Rebuilt, String>) -> NodeSample {
        match rebuilt.unwrap() {
            Rebuilt::Whole(s) => s,
            Rebuilt::Patch(p) => {
                panic!("a patch from a reassembler that never saw a clean sample: {p:?}")
            }
        }
    }

    /// Encodes `samples` and decodes every line as the jump host does; returns the lines and the samples.
    fn round_trip(samples: &[NodeSample], full_every: u32) -> (Vec<String>, Vec<NodeSample>) {
        let mut encoder = Encoder::new(full_every);
        let mut decoder = Reassembler::default();
        decoder.start(true);
        let mut lines = Vec::new();
        let mut decoded = Vec::new();
        for s in samples {
            let line = String::from_utf8(encoder.line(s, false).unwrap()).unwrap();
            if line.starts_with(DELTA_PREFIX) {
                decoded.push(whole(decoder.apply(serde_json::from_str(&line).unwrap())));
            } else {
                let whole: NodeSample = serde_json::from_str(&line).unwrap();
                decoder.full(&whole);
                decoded.push(whole);
            }
            lines.push(line);
        }
        (lines, decoded)
    }

    #[test]
    fn a_delta_carries_only_what_changed_and_applies_to_the_same_sample() {
        let mut changed = node(2, &[10, 20]);
        changed.gpus[1].power_w = None;
        changed.gpus[1].processes = Some(vec![]);
        changed.gpus[0].nvlink = Some(NvLinks {
            total: 18,
            ..Default::default()
        });
        changed.ib.as_mut().unwrap()[0].counters.symbol_error = Some(3);
        changed.warnings = vec!["kernel log unreadable".into()];
        let samples = [node(1, &[10, 20]), changed, node(3, &[10, 20])];
        let (lines, decoded) = round_trip(&samples, 60);
        assert!(lines[0].starts_with("{\"t\":1,"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            r#"{"d":2,"gpus":[{"index":0,"nvlink":{"total":18,"down":[],"errors":[]}},{"index":1,"power_w":null,"processes":[]}],"ib":[{"at":0,"counters":{"symbol_error":3}}],"warnings":["kernel log unreadable"]}"#
        );
        assert!(lines[2].starts_with("{\"d\":3,"), "{}", lines[2]);
        assert_eq!(decoded, samples);
    }

    #[test]
    fn the_node_s_own_past_travels_in_a_delta() {
        let mut journaled = node(2, &[10, 20]);
        journaled.past = Some(vec![super::super::past::PastEvent {
            kind: "sxid".into(),
            code: Some(22013),
            count: 1,
            last_ms: 2,
            before_reboot: false,
            text: None,
        }]);
        let samples = [node(1, &[10, 20]), journaled];
        let (lines, decoded) = round_trip(&samples, 60);
        assert!(lines[1].starts_with("{\"d\":2,"), "{}", lines[1]);
        assert!(lines[1].contains("22013"), "{}", lines[1]);
        assert_eq!(decoded, samples);
    }

    #[test]
    fn identity_changes_and_every_nth_line_go_whole() {
        let mut renamed = node(3, &[1, 1]);
        renamed.gpus[0].serial = Some("1650923456789".into());
        let samples = [
            node(1, &[1, 1]),
            node(2, &[2, 1]),
            renamed,
            node(4, &[1]),
            node(5, &[5]),
            node(6, &[6]),
            node(7, &[7]),
        ];
        let (lines, decoded) = round_trip(&samples, 3);
        let whole: Vec<bool> = lines.iter().map(|l| l.starts_with("{\"t\"")).collect();
        assert_eq!(whole, [true, false, true, true, false, false, true]);
        assert_eq!(decoded, samples);
    }

    #[test]
    fn a_delta_that_cannot_apply_is_refused_and_asks_for_a_full_sample() {
        let mut r = Reassembler::default();
        r.start(true);
        let delta = |index| NodeDelta {
            d: 9,
            gpus: vec![GpuDelta {
                index,
                util_pct: Some(Some(50)),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            r.apply(delta(0)).unwrap_err(),
            "a delta line before any full sample"
        );
        assert!(r.take_full_request());
        assert!(!r.take_full_request(), "asked once per loss");
        r.full(&node(1, &[10, 20]));
        assert_eq!(
            r.apply(delta(7)).unwrap_err(),
            "a delta for GPU 7, which the last full sample does not list"
        );
        assert!(r.take_full_request());
        assert!(
            r.apply(delta(0)).is_err(),
            "nothing applies until a full sample"
        );
        r.full(&node(1, &[10, 20]));
        let port = NodeDelta {
            d: 9,
            ib: vec![IbDelta {
                at: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(r.apply(port).unwrap_err().contains("port #1, beyond the 1"));
        r.full(&node(1, &[10, 20]));
        assert_eq!(whole(r.apply(delta(1))).gpus[1].util_pct, Some(50));
    }

    #[test]
    fn an_idle_node_s_delta_goes_on_as_a_patch_of_its_time_alone() {
        let mut r = Reassembler::default();
        r.start(true);
        let first = node(1, &[10, 20]);
        r.full(&first);
        r.sanitized(&first);
        let mut encoder = Encoder::new(60);
        encoder.line(&first, false).unwrap();
        let line = encoder.line(&node(2, &[10, 20]), false).unwrap();
        assert_eq!(line, br#"{"d":2}"#);
        let delta: NodeDelta = serde_json::from_slice(&line).unwrap();
        assert!(delta.carries_time_only());
        match r.apply(delta).unwrap() {
            Rebuilt::Patch(patch) => assert_eq!(
                patch,
                NodeDelta {
                    d: 2,
                    ..Default::default()
                }
            ),
            Rebuilt::Whole(s) => panic!("a clean stream's idle delta went whole: {s:?}"),
        }
        let mut changed = node(3, &[10, 21]);
        changed.t = 3;
        let delta = NodeDelta::between(&node(2, &[10, 20]), &changed).unwrap();
        assert!(!delta.carries_time_only());
        assert_eq!(whole_or_patched(r.apply(delta).unwrap()), 21);
    }

    /// GPU 1's utilisation as a patch or a whole sample gives it.
    fn whole_or_patched(rebuilt: Rebuilt) -> u32 {
        match rebuilt {
            Rebuilt::Patch(p) => p.gpus[0].util_pct.flatten().unwrap(),
            Rebuilt::Whole(s) => s.gpus[1].util_pct.unwrap(),
        }
    }

    #[test]
    fn a_stream_that_is_not_compact_keeps_nothing_and_asks_nothing() {
        let mut r = Reassembler::default();
        r.start(false);
        r.full(&node(1, &[10]));
        assert!(r.apply(NodeDelta::default()).is_err());
        assert!(!r.take_full_request());
    }
}
