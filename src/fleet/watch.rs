//! What only a series of samples shows: fabric error counters that rise (a link that is down now is judged
//! from the sample itself). A rise is reported for [`WINDOW`] after it happened, so a counter that rose once
//! is seen by an operator looking a minute later, and then clears. Rises are judged by the rules a one-pass
//! snapshot uses (`telemetry::rise`: NVLink at DCGM's rates, `port_xmit_discards` as congestion). Nothing is
//! allocated per sample once a node's ports and GPUs are known, and a sample whose counters are those of the
//! one before (an idle node's second) is only stamped, not walked: see [`Watch::observe_same`].

use std::time::{Duration, Instant};

use crate::telemetry::delta::NodeDelta;
use crate::telemetry::fabric::{IB_COUNTERS, NVLINK_COUNTERS};
use crate::telemetry::health::Health;
use crate::telemetry::rise::{ib_rise_health, nvlink_rise_health};
use crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
use crate::telemetry::NodeSample;

/// How long a rise stays in a node's reasons.
pub(crate) const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Ports kept per node before the watch starts over (a node that renames its HCAs cannot grow it).
const MAX_PORTS: usize = 256;

/// A moment as hundredths of a second after the watch's first sample, 0 for never: four bytes where an
/// `Option<Instant>` takes sixteen, which 1,025 nodes × 8 GPUs × 18 NVLinks × 4 counters add up (497 days).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp(u32);

impl Stamp {
    const NEVER: Stamp = Stamp(0);

    fn of(at: Instant, epoch: Instant) -> Stamp {
        let hundredths = at.saturating_duration_since(epoch).as_millis() / 10;
        Stamp(
            u32::try_from(hundredths)
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
        )
    }

    fn since(self, earlier: Stamp) -> Duration {
        Duration::from_millis(u64::from(self.0.saturating_sub(earlier.0)) * 10)
    }

    fn is_never(self) -> bool {
        self == Stamp::NEVER
    }
}

/// One counter: its last value (none before `last_at`), and the rise within the window (from `since`, the
/// reading before it began, to `rose_at`).
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    last: u64,
    risen: u64,
    last_at: Stamp,
    since: Stamp,
    rose_at: Stamp,
    /// The walk that read it last (it fits the padding: a counter stays 32 bytes).
    walk: u32,
}

impl Counter {
    /// Takes a value read by walk `walk`; true when it rose.
    fn observe(&mut self, value: u64, at: Stamp, walk: u32) -> bool {
        self.walk = walk;
        // A counter that went down was reset (driver reload, reboot): the new value is the new base.
        let rose = !self.last_at.is_never() && value > self.last;
        if rose {
            let recent = !self.rose_at.is_never() && at.since(self.rose_at) <= WINDOW;
            if !recent {
                self.risen = 0;
                self.since = self.last_at;
            }
            self.risen += value - self.last;
            self.rose_at = at;
        }
        self.last = value;
        self.last_at = at;
        rose
    }

    /// The rise within the window and the time it took.
    fn recent(&self, now: Stamp) -> Option<(u64, Duration)> {
        if self.rose_at.is_never() {
            return None;
        }
        let over = if self.since.is_never() {
            Duration::ZERO
        } else {
            self.rose_at.since(self.since)
        };
        (now.since(self.rose_at) <= WINDOW).then_some((self.risen, over))
    }

    /// Read again, unchanged, at `until` if walk `walk` read it: what walking the samples only stamped would
    /// have done to it.
    fn held(&mut self, walk: u32, until: Stamp) {
        if self.walk == walk {
            self.last_at = until;
        }
    }
}

/// One InfiniBand port's counters, by the port's name.
#[derive(Debug, Clone)]
struct PortCounters {
    hca: String,
    port: u32,
    counters: [Counter; IB_COUNTERS.len()],
}

#[derive(Debug, Clone, Default)]
struct GpuLinks {
    index: u32,
    /// When the GPU's links were last read, and by which walk.
    seen_at: Stamp,
    seen_walk: u32,
    /// Counters of links that ever reported one above zero (the others are zero), by link.
    counters: Vec<(u32, [Counter; 4])>,
    /// Counters summed over the links, where the source sends only those (a metrics store).
    summed: [Counter; 4],
}

/// One node's watched counters and link states. Ports and GPUs are kept in the order of the node's last sample
/// (then any it stopped listing, whose rises still count), so each sample finds its entries in place, without a
/// lookup by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    ports: Vec<PortCounters>,
    gpus: Vec<GpuLinks>,
    /// The latest rise of any counter: a node with none in the window has no reasons, found without a walk.
    latest_rise: Option<Instant>,
    /// The first sample's time, which counters' [`Stamp`]s count from.
    epoch: Option<Instant>,
    /// Samples walked so far, 0 for none (each counter notes the walk that read it last).
    walks: u32,
    /// The latest sample stamped since the last walk, if any: it held the counters that walk read, at the same
    /// values (and no others).
    held_until: Stamp,
}

/// Whether a compact stream's `delta` leaves every counter the watch reads as it was: it carries no port's
/// counters and no GPU's links (which ports and GPUs a sample lists, and their names, are identity, which deltas
/// never carry).
pub(super) fn kept_by(delta: &NodeDelta) -> bool {
    delta.ib.iter().all(|p| p.counters.is_none()) && delta.gpus.iter().all(|g| g.nvlink.is_none())
}

/// The entry of `list` that `matches`, moved to `at` (its place in the sample) when it is elsewhere, or made by
/// `new` there: a node that lists its ports and GPUs in the same order each time finds each at once.
fn in_place<T>(
    list: &mut Vec<T>,
    at: usize,
    matches: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    let found = if list.get(at).is_some_and(&matches) {
        at
    } else {
        let i = match list.iter().position(&matches) {
            Some(i) => i,
            None => {
                list.push(new());
                list.len() - 1
            }
        };
        if at < list.len() {
            list.swap(at, i);
            at
        } else {
            i
        }
    };
    &mut list[found]
}

impl Watch {
    /// Takes a sample's InfiniBand and NVLink counters at `at`: a walk over every counter.
    pub(crate) fn observe(&mut self, sample: &NodeSample, at: Instant) {
        let epoch = *self.epoch.get_or_insert(at);
        let stamp = Stamp::of(at, epoch);
        self.catch_up();
        // Never 0, which counters read by no walk hold.
        let walk = self.walks.checked_add(1).unwrap_or(1);
        self.walks = walk;
        if self.ports.len() > MAX_PORTS {
            self.ports.clear();
        }
        for (i, port) in sample.ib.iter().flatten().enumerate() {
            let kept = in_place(
                &mut self.ports,
                i,
                |k| k.port == port.port && k.hca == port.hca,
                || PortCounters {
                    hca: port.hca.clone(),
                    port: port.port,
                    counters: Default::default(),
                },
            );
            for (c, (_, value)) in kept.counters.iter_mut().zip(port.counters.all()) {
                if value.is_some_and(|v| c.observe(v, stamp, walk)) {
                    self.latest_rise = Some(at);
                }
            }
        }
        for (i, gpu) in sample.gpus.iter().enumerate() {
            let Some(links) = &gpu.nvlink else { continue };
            // No node has a GPU past the sample bound: a node naming new ones each sample must not grow the
            // list (nor its linear lookups) for ever.
            if gpu.index as usize >= MAX_GPUS_PER_SAMPLE {
                continue;
            }
            let w = in_place(
                &mut self.gpus,
                i,
                |w| w.index == gpu.index,
                || GpuLinks {
                    index: gpu.index,
                    ..Default::default()
                },
            );
            for e in &links.errors {
                if !w.counters.iter().any(|(link, _)| *link == e.link) {
                    // First seen above zero: from zero if the GPU was watched before, else a base.
                    let base = Counter {
                        last_at: w.seen_at,
                        ..Counter::default()
                    };
                    w.counters.push((e.link, [base; 4]));
                }
            }
            for (link, counters) in w.counters.iter_mut() {
                for (c, (_, v)) in counters.iter_mut().zip(links.counters_of(*link)) {
                    if c.observe(v, stamp, walk) {
                        self.latest_rise = Some(at);
                    }
                }
            }
            if let Some(summed) = &links.summed {
                for (c, (_, v)) in w.summed.iter_mut().zip(summed.counters()) {
                    if v.is_some_and(|v| c.observe(v, stamp, walk)) {
                        self.latest_rise = Some(at);
                    }
                }
            }
            w.seen_at = stamp;
            w.seen_walk = walk;
        }
    }

    /// Takes a sample at `at` whose counters are those of the sample before, value for value (a patch that
    /// carried none of them, or a whole sample equal to the last but for its time): only its time is kept.
    /// Walking it would have changed nothing but the times of what the last walk read, which the next walk
    /// sets first ([`Watch::catch_up`]): rises and the spans DCGM's rates divide by stay as a walk leaves them.
    pub(crate) fn observe_same(&mut self, sample: &NodeSample, at: Instant) {
        match self.epoch {
            // A watch over its bound starts over at each walk: walked, as before.
            Some(epoch) if self.walks != 0 && self.ports.len() <= MAX_PORTS => {
                self.held_until = Stamp::of(at, epoch)
            }
            _ => self.observe(sample, at),
        }
    }

    /// Gives what the last walk read the time of the latest sample stamped since, as walking it would have.
    fn catch_up(&mut self) {
        let until = std::mem::take(&mut self.held_until);
        if until.is_never() {
            return;
        }
        let walk = self.walks;
        for p in &mut self.ports {
            p.counters.iter_mut().for_each(|c| c.held(walk, until));
        }
        for g in &mut self.gpus {
            if g.seen_walk == walk {
                g.seen_at = until;
            }
            for (_, counters) in &mut g.counters {
                counters.iter_mut().for_each(|c| c.held(walk, until));
            }
            g.summed.iter_mut().for_each(|c| c.held(walk, until));
        }
    }

    /// Everything a walk leaves in the watch but the walk numbers (values, rises and the times they are
    /// measured by), as the next walk finds it: what the stamped and walked paths must agree on.
    #[cfg(test)]
    pub(super) fn readings(&self) -> String {
        let mut w = self.clone();
        w.catch_up();
        let counter = |c: &Counter| {
            format!(
                "{}/{}@{},{}..{} ",
                c.last, c.risen, c.last_at.0, c.since.0, c.rose_at.0
            )
        };
        let mut out = format!("{:?} {:?}\n", w.latest_rise, w.epoch);
        for p in &w.ports {
            out += &format!("{} {}: ", p.hca, p.port);
            p.counters.iter().for_each(|c| out += &counter(c));
            out += "\n";
        }
        for g in &w.gpus {
            out += &format!("GPU {} seen {}: ", g.index, g.seen_at.0);
            for (link, counters) in &g.counters {
                out += &format!("link {link} ");
                counters.iter().for_each(|c| out += &counter(c));
            }
            out += "summed ";
            g.summed.iter().for_each(|c| out += &counter(c));
            out += "\n";
        }
        out
    }

    /// No counter rose within the window before `now`: no reasons now, nor later until a sample comes.
    pub(crate) fn quiet(&self, now: Instant) -> bool {
        self.latest_rise
            .is_none_or(|t| now.saturating_duration_since(t) > WINDOW)
    }

    /// Rises within [`WINDOW`] of `now`, one reason per link or port with its health, sorted; ports for which
    /// `ignored(hca, port)` holds (`[expect] ib_ignore`) are left out.
    pub(crate) fn reasons(
        &self,
        now: Instant,
        ignored: &dyn Fn(&str, u32) -> bool,
    ) -> Vec<(Health, String)> {
        if self.quiet(now) {
            return Vec::new();
        }
        let now = Stamp::of(now, self.epoch.unwrap_or(now));
        let rose = |names: &[&str],
                    counters: &[Counter],
                    judge: &dyn Fn(&str, u64, Duration) -> Health|
         -> Option<(Health, String)> {
            let mut health = Health::Ok;
            let parts: Vec<String> = names
                .iter()
                .zip(counters)
                .filter_map(|(name, c)| {
                    let (risen, over) = c.recent(now)?;
                    health = health.max(judge(name, risen, over));
                    let note = if *name == "port_xmit_discards" {
                        " (congestion)"
                    } else {
                        ""
                    };
                    Some(format!("{name} rose by {risen}{note}"))
                })
                .collect();
            (!parts.is_empty()).then(|| (health, format!("{} in the last 5 min", parts.join(", "))))
        };
        let ib = |name: &str, _: u64, _: Duration| ib_rise_health(name);
        let mut out = Vec::new();
        for p in self.ports.iter().filter(|p| !ignored(&p.hca, p.port)) {
            if let Some((h, r)) = rose(&IB_COUNTERS, &p.counters, &ib) {
                out.push((h, format!("IB {} port {}: {r}", p.hca, p.port)));
            }
        }
        for w in &self.gpus {
            let gpu = w.index;
            for (link, counters) in &w.counters {
                if let Some((h, r)) = rose(&NVLINK_COUNTERS, counters, &nvlink_rise_health) {
                    out.push((h, format!("GPU {gpu} NVLink {link}: {r}")));
                }
            }
            if let Some((h, r)) = rose(&NVLINK_COUNTERS, &w.summed, &nvlink_rise_health) {
                out.push((h, format!("GPU {gpu} NVLinks (summed over links): {r}")));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }
}

#[cfg(test)]
mod tests;
