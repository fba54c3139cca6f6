//! What only a series of samples shows: fabric error counters that rise (a link that is down now is judged
//! from the sample itself). A rise is reported for [`WINDOW`] after it happened, so a counter that rose once
//! is seen by an operator looking a minute later, and then clears. Rises are judged by the rules a one-pass
//! snapshot uses (`telemetry::rise`: NVLink at DCGM's rates, `port_xmit_discards` as congestion). Nothing is
//! allocated per sample once a node's ports and GPUs are known.

use std::time::{Duration, Instant};

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
}

impl Counter {
    /// Takes a value; true when it rose.
    fn observe(&mut self, value: u64, at: Stamp) -> bool {
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
    /// When the GPU's links were last read.
    seen_at: Stamp,
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
    /// Takes a sample's InfiniBand and NVLink counters at `at`.
    pub(crate) fn observe(&mut self, sample: &NodeSample, at: Instant) {
        let epoch = *self.epoch.get_or_insert(at);
        let stamp = Stamp::of(at, epoch);
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
                if value.is_some_and(|v| c.observe(v, stamp)) {
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
                    if c.observe(v, stamp) {
                        self.latest_rise = Some(at);
                    }
                }
            }
            if let Some(summed) = &links.summed {
                for (c, (_, v)) in w.summed.iter_mut().zip(summed.counters()) {
                    if v.is_some_and(|v| c.observe(v, stamp)) {
                        self.latest_rise = Some(at);
                    }
                }
            }
            w.seen_at = stamp;
        }
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
mod tests {
    use super::*;
    use crate::telemetry::fabric::{IbCounters, IbPort, NvLinkErrors, NvLinks};
    use crate::telemetry::GpuSample;

    fn none(_: &str, _: u32) -> bool {
        false
    }

    fn sample(symbol_errors: u64) -> NodeSample {
        NodeSample {
            ib: Some(vec![IbPort {
                hca: "mlx5_0".into(),
                port: 1,
                counters: IbCounters {
                    symbol_error: Some(symbol_errors),
                    ..Default::default()
                },
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn a_rising_counter_is_reported_for_the_window_then_clears() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watch::default();
        w.observe(&sample(3), t0);
        assert!(
            w.reasons(t0, &none).is_empty(),
            "a first value is a base, not a rise"
        );
        w.observe(&sample(3), s(1));
        assert!(w.reasons(s(1), &none).is_empty());
        w.observe(&sample(10), s(2));
        w.observe(&sample(15), s(3));
        assert_eq!(
            w.reasons(s(4), &none),
            [(
                Health::Warn,
                "IB mlx5_0 port 1: symbol_error rose by 12 in the last 5 min".to_string()
            )]
        );
        assert!(w.reasons(s(4) + WINDOW, &none).is_empty());
        // A reset is a new base.
        w.observe(&sample(0), s(5));
        assert!(w.reasons(s(6) + WINDOW, &none).is_empty());
    }

    fn ports(listed: &[(&str, u64)]) -> NodeSample {
        NodeSample {
            ib: Some(
                listed
                    .iter()
                    .map(|&(hca, symbol_errors)| IbPort {
                        hca: hca.into(),
                        port: 1,
                        counters: IbCounters {
                            symbol_error: Some(symbol_errors),
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn ports_keep_their_counters_whatever_order_they_come_in_and_after_they_go() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut w = Watch::default();
        w.observe(&ports(&[("mlx5_0", 1), ("mlx5_1", 5)]), t0);
        // Listed the other way round, with mlx5_0 risen: its own base, not mlx5_1's, is what it rose from.
        w.observe(&ports(&[("mlx5_1", 5), ("mlx5_0", 4)]), s(1));
        assert_eq!(
            w.reasons(s(1), &none),
            [(
                Health::Warn,
                "IB mlx5_0 port 1: symbol_error rose by 3 in the last 5 min".to_string()
            )]
        );
        // A new port comes first and mlx5_0 is no longer listed: its rise is still in the window, and
        // mlx5_1 rises from its own base.
        w.observe(&ports(&[("mlx5_2", 0), ("mlx5_1", 7)]), s(2));
        assert_eq!(
            w.reasons(s(2), &none),
            [
                (
                    Health::Warn,
                    "IB mlx5_0 port 1: symbol_error rose by 3 in the last 5 min".to_string()
                ),
                (
                    Health::Warn,
                    "IB mlx5_1 port 1: symbol_error rose by 2 in the last 5 min".to_string()
                )
            ]
        );
        // Back in its place, mlx5_0 goes on from its last value.
        w.observe(&ports(&[("mlx5_0", 4), ("mlx5_1", 7), ("mlx5_2", 0)]), s(3));
        assert_eq!(w.reasons(s(3), &none).len(), 2);
        let ignored = |hca: &str, _: u32| hca == "mlx5_0";
        assert_eq!(w.reasons(s(3), &ignored).len(), 1);
    }

    fn gpu(down: &[u32], replay: Option<u64>) -> NodeSample {
        NodeSample {
            gpus: vec![GpuSample {
                index: 3,
                nvlink: Some(NvLinks {
                    total: 18,
                    down: down.to_vec(),
                    errors: replay
                        .map(|r| NvLinkErrors {
                            link: 7,
                            counts: crate::telemetry::fabric::NvLinkCounts {
                                replay: Some(r),
                                ..Default::default()
                            },
                        })
                        .into_iter()
                        .collect(),
                    summed: None,
                    rose: None,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_slow_replay_rise_warns_and_discards_inform() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe(&gpu(&[], Some(1)), t0);
        w.observe(&gpu(&[], Some(2)), t0 + Duration::from_secs(120));
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(120), &none)[0].0,
            Health::Warn,
            "one replay error in two minutes is below DCGM's rate"
        );
        let discards = |n| NodeSample {
            ib: Some(vec![IbPort {
                hca: "mlx5_1".into(),
                port: 1,
                counters: IbCounters {
                    port_xmit_discards: Some(n),
                    ..Default::default()
                },
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut w = Watch::default();
        w.observe(&discards(5), t0);
        w.observe(&discards(9), t0 + Duration::from_secs(1));
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(1), &none),
            [(
                Health::Ok,
                "IB mlx5_1 port 1: port_xmit_discards rose by 4 (congestion) in the last 5 min"
                    .to_string()
            )]
        );
    }

    #[test]
    fn an_nvlink_counter_rising_from_zero_is_named() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe(&gpu(&[2], None), t0);
        assert!(w.reasons(t0, &none).is_empty());
        w.observe(&gpu(&[2], Some(4)), t0 + Duration::from_secs(1));
        // DCGM fails replay errors at one a minute: four in a second is crit.
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(1), &none),
            [(
                Health::Crit,
                "GPU 3 NVLink 7: replay rose by 4 in the last 5 min".to_string()
            )]
        );
    }

    #[test]
    fn counters_summed_over_links_rise_too() {
        let summed = |crc_flit: u64| NodeSample {
            gpus: vec![GpuSample {
                index: 5,
                nvlink: Some(NvLinks {
                    summed: Some(crate::telemetry::fabric::NvLinkCounts {
                        crc_flit: Some(crc_flit),
                        replay: Some(0),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe(&summed(40), t0);
        assert!(w.reasons(t0, &none).is_empty(), "a first value is a base");
        w.observe(&summed(43), t0 + Duration::from_secs(15));
        // DCGM warns CRC errors below 100 a second.
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(15), &none),
            [(
                Health::Warn,
                "GPU 5 NVLinks (summed over links): crc_flit rose by 3 in the last 5 min"
                    .to_string()
            )]
        );
        // 3,000 more within the next 15 s: 100 a second over the rise's 30 s, crit.
        w.observe(&summed(3_043), t0 + Duration::from_secs(30));
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(30), &none)[0].0,
            Health::Crit
        );
    }

    #[test]
    fn nvlink_watch_keeps_no_gpu_past_the_sample_bound() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        for i in 0..100u32 {
            let sample = NodeSample {
                gpus: (0..64)
                    .map(|g| GpuSample {
                        index: 1000 + i * 64 + g,
                        nvlink: Some(NvLinks::default()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            w.observe(&sample, t0 + Duration::from_secs(u64::from(i)));
        }
        assert!(w.gpus.is_empty(), "{} GPUs watched", w.gpus.len());
        // A GPU within the bound is still watched after such a flood.
        w.observe(&gpu(&[2], None), t0 + Duration::from_secs(200));
        w.observe(&gpu(&[2], Some(4)), t0 + Duration::from_secs(201));
        assert_eq!(w.gpus.len(), 1);
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(201), &none)[0].0,
            Health::Crit
        );
    }
}
