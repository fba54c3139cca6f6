//! The watch's rises and their spans, and the same spans whether a sample is walked or only stamped.
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
            "GPU 5 NVLinks (summed over links): crc_flit rose by 3 in the last 5 min".to_string()
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

/// A GPU whose link 0 has `crc_flit` errors counted.
fn crc(crc_flit: u64) -> NodeSample {
    NodeSample {
        gpus: vec![GpuSample {
            index: 0,
            nvlink: Some(NvLinks {
                total: 18,
                errors: vec![NvLinkErrors {
                    link: 0,
                    counts: crate::telemetry::fabric::NvLinkCounts {
                        crc_flit: Some(crc_flit),
                        ..Default::default()
                    },
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_rise_after_stamped_seconds_is_divided_by_the_second_it_took() {
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut w = Watch::default();
    w.observe(&crc(1), t0);
    for n in 1..=100 {
        w.observe_same(&crc(1), s(n));
    }
    assert_eq!(w.walks, 1, "the same counters are stamped, not walked");
    w.observe(&crc(151), s(101));
    // 150 CRC errors in the last second is DCGM's crit rate; over the 101 s since the walk it would be a warn.
    assert_eq!(
        w.reasons(s(101), &none),
        [(
            Health::Crit,
            "GPU 0 NVLink 0: crc_flit rose by 150 in the last 5 min".to_string()
        )]
    );
}

#[test]
fn a_first_sample_and_an_overgrown_watch_are_walked_even_when_the_same() {
    let t0 = Instant::now();
    let mut w = Watch::default();
    w.observe_same(&sample(3), t0);
    assert_eq!((w.walks, w.ports.len()), (1, 1), "nothing to stamp yet");
    w.ports = vec![w.ports[0].clone(); MAX_PORTS + 1];
    w.observe_same(&sample(3), t0 + Duration::from_secs(1));
    assert_eq!((w.walks, w.ports.len()), (2, 1), "walked, and started over");
}

/// One second's change to a node's fabric counters (or none).
#[derive(Debug, Clone)]
enum Change {
    Same,
    IbRise {
        port: usize,
        counter: usize,
        by: u64,
    },
    IbUnknown {
        port: usize,
        counter: usize,
    },
    IbReset {
        port: usize,
        counter: usize,
    },
    PortsReordered,
    PortUnlisted(usize),
    NvLinkRise {
        gpu: usize,
        link: u32,
        counter: usize,
        by: u64,
    },
    NvLinkUnread(usize),
    SummedRise {
        gpu: usize,
        by: u64,
    },
}

fn change() -> impl proptest::strategy::Strategy<Value = Change> {
    use proptest::prelude::*;
    prop_oneof![
        6 => Just(Change::Same),
        2 => (0..3usize, 0..4usize, 1..200u64)
            .prop_map(|(port, counter, by)| Change::IbRise { port, counter, by }),
        1 => (0..3usize, 0..4usize).prop_map(|(port, counter)| Change::IbUnknown { port, counter }),
        1 => (0..3usize, 0..4usize).prop_map(|(port, counter)| Change::IbReset { port, counter }),
        1 => Just(Change::PortsReordered),
        1 => (0..3usize).prop_map(Change::PortUnlisted),
        2 => (0..2usize, 0..3u32, 0..4usize, 1..500u64)
            .prop_map(|(gpu, link, counter, by)| Change::NvLinkRise { gpu, link, counter, by }),
        1 => (0..2usize).prop_map(Change::NvLinkUnread),
        1 => (0..2usize, 1..500u64).prop_map(|(gpu, by)| Change::SummedRise { gpu, by }),
    ]
}

/// The fabric a node reports: three ports (in `order`, `listed` or not), two GPUs' links (read or not).
#[derive(Debug, Clone)]
struct Fabric {
    ports: [[Option<u64>; 4]; 3],
    order: [usize; 3],
    listed: [bool; 3],
    links: [Option<NvLinks>; 2],
}

impl Fabric {
    fn new() -> Fabric {
        Fabric {
            ports: [[Some(0); 4]; 3],
            order: [0, 1, 2],
            listed: [true; 3],
            links: std::array::from_fn(|_| {
                Some(NvLinks {
                    total: 18,
                    ..Default::default()
                })
            }),
        }
    }

    fn change(&mut self, c: &Change) {
        match *c {
            Change::Same => {}
            Change::IbRise { port, counter, by } => {
                let v = &mut self.ports[port][counter];
                *v = Some(v.unwrap_or(0) + by);
                self.listed[port] = true;
            }
            Change::IbUnknown { port, counter } => self.ports[port][counter] = None,
            Change::IbReset { port, counter } => self.ports[port][counter] = Some(0),
            Change::PortsReordered => self.order.rotate_left(1),
            Change::PortUnlisted(port) => self.listed[port] = !self.listed[port],
            Change::NvLinkRise {
                gpu,
                link,
                counter,
                by,
            } => {
                let links = self.links[gpu].get_or_insert_with(NvLinks::default);
                let i = match links.errors.iter().position(|e| e.link == link) {
                    Some(i) => i,
                    None => {
                        links.errors.push(NvLinkErrors {
                            link,
                            ..Default::default()
                        });
                        links.errors.len() - 1
                    }
                };
                let counts = &mut links.errors[i].counts;
                let was = counts.counters()[counter].1.unwrap_or(0);
                counts.set(counter, was + by);
            }
            Change::NvLinkUnread(gpu) => {
                self.links[gpu] = match self.links[gpu].take() {
                    Some(_) => None,
                    None => Some(NvLinks::default()),
                }
            }
            Change::SummedRise { gpu, by } => {
                let links = self.links[gpu].get_or_insert_with(NvLinks::default);
                let summed = links.summed.get_or_insert_with(Default::default);
                summed.replay = Some(summed.replay.unwrap_or(0) + by);
            }
        }
    }

    fn sample(&self) -> NodeSample {
        let port = |i: usize| {
            let [link_downed, symbol_error, port_rcv_errors, port_xmit_discards] = self.ports[i];
            IbPort {
                hca: format!("mlx5_{i}"),
                port: 1,
                counters: IbCounters {
                    link_downed,
                    symbol_error,
                    port_rcv_errors,
                    port_xmit_discards,
                    ..Default::default()
                },
                ..Default::default()
            }
        };
        NodeSample {
            ib: Some(
                self.order
                    .iter()
                    .filter(|&&i| self.listed[i])
                    .map(|&i| port(i))
                    .collect(),
            ),
            gpus: (0..2)
                .map(|g| GpuSample {
                    index: g as u32,
                    nvlink: self.links[g].clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

proptest::proptest! {
    /// Over the same samples at the same times, a watch that only stamps a sample whose counters are those of
    /// the one before holds what a watch that walks every sample holds: the same values, rises and spans (so
    /// the same DCGM rates), and the same reasons at any time after.
    #[test]
    fn stamping_a_same_sample_leaves_what_walking_it_leaves(
        seconds in proptest::collection::vec(
            (change(), proptest::prop_oneof![
                proptest::strategy::Just(3u64),
                proptest::strategy::Just(10),
                proptest::strategy::Just(1_000),
                proptest::strategy::Just(61_000),
                proptest::strategy::Just(WINDOW.as_millis() as u64 + 1_000),
                1u64..5_000,
            ]),
            1..80,
        )
    ) {
        let t0 = Instant::now();
        let mut at = t0;
        let mut fabric = Fabric::new();
        let (mut walked, mut stamped) = (Watch::default(), Watch::default());
        let mut before: Option<NodeSample> = None;
        for (c, gap_ms) in &seconds {
            fabric.change(c);
            at += Duration::from_millis(*gap_ms);
            let sample = fabric.sample();
            walked.observe(&sample, at);
            if before.as_ref() == Some(&sample) {
                stamped.observe_same(&sample, at);
            } else {
                stamped.observe(&sample, at);
            }
            before = Some(sample);
            proptest::prop_assert_eq!(walked.readings(), stamped.readings());
            for later in [Duration::ZERO, Duration::from_secs(1), WINDOW, WINDOW + Duration::from_secs(1)] {
                proptest::prop_assert_eq!(
                    walked.reasons(at + later, &none),
                    stamped.reasons(at + later, &none)
                );
            }
        }
    }
}
