//! A compact stream's deltas patched into fleet state in place give the sample that sanitizing the whole would:
//! over random streams with implausible values, unsafe strings, `-0.0`, identity changes and patches the node
//! thread did not send on (a node sending faster than its interval), and NVLink and InfiniBand counters that
//! rise now and then (a sample whose counters did not change is stamped, not walked).

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::watch::Watch;
use crate::fleet::view::Pending;
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::telemetry::delta::Encoder;
use crate::telemetry::fabric::{IbCounters, IbPort, NvLinkCounts, NvLinkErrors, NvLinks};
use crate::telemetry::process::{GpuProcess, ProcessKind};
use crate::telemetry::wire::{AgentHello, MAX_GPUS_PER_SAMPLE};
use crate::telemetry::{GpuSample, NodeSample, Source};
use crate::transport::decode::StreamDecoder;
use crate::transport::{Msg, NodeEvent};

/// One reading's changes against the one before.
#[derive(Debug, Clone)]
struct Change {
    gpu: usize,
    /// Beyond 100: implausible.
    util: u32,
    /// Beyond 200: implausible.
    temp: u32,
    power: f64,
    /// A throttle reason, with a terminal escape in it when `unsafe_text`.
    throttled: bool,
    unsafe_text: bool,
    /// The process list changes.
    process: Option<u32>,
    symbol_errors: u64,
    port_state: bool,
    warning: bool,
    /// The GPU's serial changes: its identity, which goes whole.
    new_serial: bool,
    /// The jump host's pacing does not send this one on.
    unsent: bool,
    /// The GPU stops reporting values; its port goes down (both clean, sent as patches).
    values_lost: bool,
    port_down: bool,
    /// What the GPU's NVLink replay counter rises by (mostly nothing: a delta without NVLinks is stamped).
    nvlink_replay: u64,
}

fn change() -> impl Strategy<Value = Change> {
    (
        (0usize..2, 0u32..=120, 0u32..=260),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(250.5),
            Just(9_999.0),
            100.0..700.0f64
        ],
        (any::<bool>(), prop::bool::weighted(0.2)),
        (
            prop::option::weighted(0.3, 0u32..3),
            0u64..4,
            prop::bool::weighted(0.2),
        ),
        (
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.15),
        ),
        (
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.15),
            prop_oneof![4 => Just(0u64), 1 => 1u64..300],
        ),
    )
        .prop_map(
            |(
                (gpu, util, temp),
                power,
                (throttled, unsafe_text),
                (process, symbol_errors, port_state),
                (warning, new_serial, unsent),
                (values_lost, port_down, nvlink_replay),
            )| Change {
                gpu,
                util,
                temp,
                power,
                throttled,
                unsafe_text,
                process,
                symbol_errors,
                port_state,
                warning,
                new_serial,
                unsent,
                values_lost,
                port_down,
                nvlink_replay,
            },
        )
}

fn first() -> NodeSample {
    let gpu = |index: u32| GpuSample {
        index,
        uuid: Some(format!("GPU-{index}")),
        name: Some("NVIDIA H100 80GB HBM3".into()),
        serial: Some(format!("16528{index}")),
        util_pct: Some(0),
        temp_c: Some(40),
        power_w: Some(70.0),
        mem_total_mib: Some(81_559),
        mem_used_mib: Some(0),
        throttle: Some(vec![]),
        xid: Some(vec![]),
        processes: Some(vec![]),
        nvlink: Some(NvLinks {
            total: 18,
            errors: vec![NvLinkErrors {
                link: 2,
                counts: NvLinkCounts {
                    replay: Some(0),
                    crc_flit: Some(0),
                    ..Default::default()
                },
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let port = |hca: &str| IbPort {
        hca: hca.into(),
        port: 1,
        link_layer: Some("InfiniBand".into()),
        state: Some("4: ACTIVE".into()),
        phys_state: Some("5: LinkUp".into()),
        rate_gbps: Some(400.0),
        counters: IbCounters {
            symbol_error: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    // GPU 1 reports no total memory, so losing its values makes it report none at all.
    let mut second = gpu(1);
    second.mem_total_mib = None;
    NodeSample {
        t: 1_000,
        gpus: vec![gpu(0), second],
        // Ports of two rates: one going down changes the node's slowest up port.
        ib: Some(vec![
            port("mlx5_0"),
            IbPort {
                rate_gbps: Some(200.0),
                ..port("mlx5_1")
            },
        ]),
        ..Default::default()
    }
}

/// The agent's next reading: its values as read, not sanitized (a broken or hostile agent sends them so).
fn next(sample: &mut NodeSample, c: &Change) {
    sample.t += 1_000;
    let g = &mut sample.gpus[c.gpu];
    g.util_pct = Some(c.util);
    g.temp_c = Some(c.temp);
    g.power_w = Some(c.power);
    g.throttle = Some(if c.throttled {
        vec![if c.unsafe_text {
            "hw_slowdown\u{1b}[31m".into()
        } else {
            "sw_power_cap".into()
        }]
    } else {
        vec![]
    });
    if let Some(pid) = c.process {
        g.processes = Some(vec![GpuProcess {
            pid: 1000 + pid,
            kind: ProcessKind::Compute,
            used_mib: Some(if pid == 2 { u64::MAX } else { 70_000 }),
            uid: None,
            user: None,
            name: Some("python3".into()),
            slurm_job: None,
            pod_uid: None,
        }]);
    }
    if c.values_lost {
        (g.util_pct, g.temp_c, g.power_w, g.mem_used_mib) = (None, None, None, None);
    }
    if let Some(link) = g.nvlink.as_mut().and_then(|l| l.errors.first_mut()) {
        link.counts.replay = link.counts.replay.map(|n| n + c.nvlink_replay);
    }
    if c.new_serial {
        g.serial = Some(format!("{}9", g.serial.as_deref().unwrap_or("")));
    }
    if let Some(ports) = sample.ib.as_mut() {
        let p = &mut ports[c.gpu];
        p.counters.symbol_error = p.counters.symbol_error.map(|n| n + c.symbol_errors);
        p.state = Some(if c.port_state {
            "1: DOWN\u{7}".into()
        } else if c.port_down {
            "1: DOWN".into()
        } else {
            "4: ACTIVE".into()
        });
    }
    sample.warnings = if c.warning {
        vec!["kernel log unreadable".into()]
    } else {
        vec![]
    };
}

fn fleet() -> FleetState {
    let inv = Inventory::parse(
        "fixture.toml",
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n1\"\n",
    )
    .unwrap();
    FleetState::new(Arc::new(inv))
}

proptest! {
    #[test]
    fn deltas_patched_in_place_give_the_sanitized_whole_sample(
        changes in proptest::collection::vec(change(), 1..40),
        full_every in 2u32..12,
    ) {
        let mut fleet = self::fleet();
        // The same stream with every sample sent whole: identity, port rates and verdicts must agree.
        let mut by_whole = self::fleet();
        // And a watch that walks every whole sample: the fabric counters' rises and spans must agree with it
        // however many samples the patched fleet only stamped.
        let mut walked = Watch::default();
        let mut encoder = Encoder::new(full_every);
        let mut decoder = StreamDecoder::agent(Source::Agent);
        let t0 = Instant::now();
        let hello = AgentHello {
            fleetop_agent: 1,
            version: "0.1.0".into(),
            driver: None,
            cuda: None,
            gpus: 2,
            kernel: None,
            build: None,
            compact: Some(full_every),
        };
        let mut lines = serde_json::to_vec(&hello).unwrap();
        lines.push(b'\n');
        let mut sample = first();
        let mut patches = 0;
        for (i, c) in std::iter::once(None).chain(changes.iter().map(Some)).enumerate() {
            if let Some(c) = c {
                next(&mut sample, c);
            }
            lines.extend(encoder.line(&sample, false).unwrap());
            lines.push(b'\n');
            let at = t0 + Duration::from_secs(i as u64);
            let unsent = c.is_some_and(|c| c.unsent);
            let mut delivered = false;
            decoder.feed(&std::mem::take(&mut lines), &mut |event| {
                if event.is_sample() && unsent {
                    return false;
                }
                delivered |= event.is_sample();
                if !event.is_sample() {
                    by_whole.apply(Msg { node: 0, at, event: event.clone() });
                }
                patches += usize::from(matches!(event, NodeEvent::Delta(_)));
                fleet.apply(Msg { node: 0, at, event });
                true
            });
            if !delivered {
                continue;
            }
            // As the jump host reads the whole sample: through JSON (whose floats may round), then sanitized.
            let mut whole: NodeSample =
                serde_json::from_slice(&serde_json::to_vec(&sample).unwrap()).unwrap();
            whole.sanitize(MAX_GPUS_PER_SAMPLE);
            // Debug tells -0.0 from 0.0, which equality does not.
            let held = fleet.nodes()[0].sample.as_ref();
            prop_assert_eq!(format!("{held:?}"), format!("{:?}", Some(&whole)));
            walked.observe(&whole, at);
            prop_assert_eq!(fleet.nodes()[0].watch.readings(), walked.readings());
            by_whole.apply(Msg { node: 0, at, event: NodeEvent::Sample(whole) });
            prop_assert_eq!(by_whole.nodes()[0].watch.readings(), walked.readings());
            prop_assert_eq!(fleet.identity(0), by_whole.identity(0));
            let judged = |f: &FleetState| f.judge_node(0, at, Pending::Connecting).verdict;
            prop_assert_eq!(judged(&fleet), judged(&by_whole));
        }
        // Streams with nothing to sanitize are patched, not rebuilt (checked over the runs, not every one).
        if changes.iter().all(|c| c.util <= 100 && c.temp <= 200 && c.power < 5_000.0
            && !c.unsafe_text && !c.port_state && c.process != Some(2) && !c.unsent && !c.new_serial) && changes.len() > 3 {
            prop_assert!(patches > 0);
        }
    }
}

/// A node idle for a while, then one change each second, followed through the compact stream: the view the
/// live modes reuse shows each change the second it comes, however many seconds before were only stamped.
#[test]
fn an_idle_stream_shows_a_rise_an_xid_and_a_lost_gpu_the_second_they_come() {
    use crate::telemetry::health::Health;
    use crate::telemetry::{GpuError, GpuErrorKind};

    let mut fleet = self::fleet();
    let mut encoder = Encoder::new(60);
    let mut decoder = StreamDecoder::agent(Source::Agent);
    let t0 = Instant::now();
    let mut sample = first();
    for g in &mut sample.gpus {
        g.nvlink = Some(NvLinks {
            total: 18,
            ..Default::default()
        });
    }
    let hello = AgentHello {
        fleetop_agent: 1,
        version: "0.1.0".into(),
        driver: None,
        cuda: None,
        gpus: 2,
        kernel: None,
        build: None,
        compact: Some(60),
    };
    let mut line = serde_json::to_vec(&hello).unwrap();
    line.push(b'\n');
    let mut second = 0;
    let mut time_only = 0;
    let mut follow = |fleet: &mut FleetState, sample: &mut NodeSample| {
        sample.t += 1_000;
        line.extend(encoder.line(sample, false).unwrap());
        line.push(b'\n');
        let at = t0 + Duration::from_secs(second);
        second += 1;
        decoder.feed(&std::mem::take(&mut line), &mut |event| {
            time_only +=
                usize::from(matches!(&event, NodeEvent::Delta(d) if d.carries_time_only()));
            fleet.apply(Msg { node: 0, at, event });
            true
        });
        let view = fleet.node_view(0, at, Pending::Connecting);
        (view.verdict.health, view.verdict.reasons.join("; "))
    };
    for _ in 0..20 {
        assert_eq!(follow(&mut fleet, &mut sample), (Health::Ok, String::new()));
    }
    sample.gpus[1].nvlink.as_mut().unwrap().errors = vec![NvLinkErrors {
        link: 3,
        counts: NvLinkCounts {
            replay: Some(200),
            ..Default::default()
        },
    }];
    let (health, reasons) = follow(&mut fleet, &mut sample);
    assert_eq!(health, Health::Crit, "{reasons}");
    assert!(
        reasons.contains("GPU 1 NVLink 3: replay rose by 200"),
        "{reasons}"
    );
    sample.gpus[1].nvlink.as_mut().unwrap().errors.clear();
    let (health, reasons) = follow(&mut fleet, &mut sample);
    assert!(
        health == Health::Crit && reasons.contains("replay rose by 200"),
        "a counter reset is not the end of a rise: {reasons}"
    );
    for _ in 0..5 {
        follow(&mut fleet, &mut sample);
    }
    sample.ib.as_mut().unwrap()[0].counters.symbol_error = Some(9);
    let (_, reasons) = follow(&mut fleet, &mut sample);
    assert!(
        reasons.contains("IB mlx5_0 port 1: symbol_error rose by 9"),
        "{reasons}"
    );
    sample.gpus[0].xid = Some(vec![79]);
    let (health, reasons) = follow(&mut fleet, &mut sample);
    assert!(
        health == Health::Crit && reasons.contains("XID 79"),
        "{reasons}"
    );
    let lost = &mut sample.gpus[1];
    (lost.util_pct, lost.temp_c, lost.power_w, lost.mem_used_mib) = (None, None, None, None);
    lost.errors = vec![GpuError {
        kind: GpuErrorKind::Lost,
        query: "utilization".into(),
        detail: "NVML: GPU is lost".into(),
    }];
    let (health, reasons) = follow(&mut fleet, &mut sample);
    assert!(
        health == Health::Crit && reasons.contains("GPU 1: "),
        "{reasons}"
    );
    assert!(time_only >= 20, "{time_only} deltas of the time alone");
}
