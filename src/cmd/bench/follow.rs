//! `fleetop --bench-follow SECS` (built with `--features bench`): the jump host's per-node work of following
//! 1,025 nodes at 1 Hz, in one process and without SSH: each node's full H100 sample (8 GPUs with a process
//! each and 18 NVLinks, 8 InfiniBand ports) is encoded by the agent's compact-stream encoder, decoded by the
//! node thread's decoder, applied to fleet state, and every node judged once a simulated second, as the line
//! mode does. Two fleets in the same run: idle (nothing rises and no load value moves, as on the fake NVML of
//! `scripts/bench-fleet`) and busy (utilisation, power, temperatures and clocks move every second and the
//! clocks are held to the power limit, as on a real loaded H100). It prints CPU per node-second by phase,
//! which `perf` can then break down, and how often a node's judgement was reused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::board::{Counters, Window};
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::telemetry::delta::{Encoder, DEFAULT_FULL_EVERY};
use crate::telemetry::fabric::{IbCounters, IbPort, NvLinks};
use crate::telemetry::process::{GpuProcess, ProcessKind};
use crate::telemetry::wire::AgentHello;
use crate::telemetry::{GpuSample, NodeSample, Source};
use crate::timings::cpu_time;
use crate::transport::decode::StreamDecoder;
use crate::transport::{Msg, NodeEvent};

/// One H100 as the agent reads it on the fake NVML, with values from a real H200 capture
/// (`tests/fixtures/real-gpu/h200-agent-busy.ndjson`).
fn h100(node: usize, index: u32) -> GpuSample {
    GpuSample {
        index,
        uuid: Some(format!("GPU-{node:08x}-{index:04x}-7ab2-b9312bf6a3f5")),
        name: Some("NVIDIA H100 80GB HBM3".into()),
        util_pct: Some(0),
        mem_util_pct: Some(0),
        mem_used_mib: Some(974),
        mem_total_mib: Some(81559),
        temp_c: Some(34),
        mem_temp_c: Some(31),
        power_w: Some(71.5),
        power_limit_w: Some(700.0),
        sm_clock_mhz: Some(345),
        throttle: Some(vec![]),
        ecc_uncorrected: Some(0),
        remapped_rows_pending: Some(false),
        remapped_rows_failed: Some(false),
        xid: Some(vec![]),
        xid_events: Some(vec![]),
        pcie_gen: Some(5),
        pcie_width: Some(16),
        pcie_max_gen: Some(5),
        pcie_max_width: Some(16),
        pcie_replay: Some(0),
        remapped_rows_uncorrectable: Some(0),
        mig_enabled: Some(false),
        pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x18 + index * 0x10)),
        serial: Some(format!("16528{node:04}{index:04}")),
        vbios: Some("96.00.A5.00.1A".into()),
        tlimit_margin_c: Some(50),
        nvlink: Some(NvLinks {
            total: 18,
            ..Default::default()
        }),
        processes: Some(vec![GpuProcess {
            pid: 10_000 + index,
            kind: ProcessKind::Compute,
            used_mib: Some(71_000),
            uid: Some(0),
            user: Some("root".into()),
            name: Some("python3".into()),
            slurm_job: None,
            pod_uid: None,
        }]),
        ..Default::default()
    }
}

fn port(hca: u32) -> IbPort {
    IbPort {
        hca: format!("mlx5_{hca}"),
        port: 1,
        hca_type: Some("MT4129".into()),
        link_layer: Some("InfiniBand".into()),
        state: Some("4: ACTIVE".into()),
        phys_state: Some("5: LinkUp".into()),
        rate_gbps: Some(400.0),
        counters: IbCounters {
            link_downed: Some(0),
            symbol_error: Some(0),
            port_rcv_errors: Some(0),
            port_xmit_discards: Some(0),
            ..Default::default()
        },
        fw_ver: Some("28.39.1002".into()),
        ..Default::default()
    }
}

fn node_sample(node: usize) -> NodeSample {
    NodeSample {
        t: 1_795_779_364_457,
        gpus: (0..8).map(|g| h100(node, g)).collect(),
        sxid: Some(vec![]),
        ib: Some((0..8).map(port).collect()),
        ..Default::default()
    }
}

/// The next second's reading of `sample`: each GPU's counters go through the agent's own rise window
/// (`agent/board.rs`), read with a few milliseconds of sampling jitter. On the idle fleet nothing rises; on a
/// busy one every GPU's load values move and its clocks are held to the power limit part of every second, as
/// on a loaded H100.
fn next_second(
    sample: &mut NodeSample,
    windows: &mut [Window],
    at: Instant,
    second: u64,
    busy: bool,
) {
    sample.t += 1000;
    for (g, window) in sample.gpus.iter_mut().zip(windows) {
        let wobble = (second * 7 + u64::from(g.index) * 13) % 17;
        let counters = Counters {
            replay: Some(0),
            power_ns: Some(if busy {
                second * 300_000_000 + wobble * 1_000_000
            } else {
                0
            }),
            thermal_ns: Some(0),
        };
        window.push(at + Duration::from_millis(wobble), counters, g);
        if busy {
            g.util_pct = Some(90 + (wobble % 10) as u32);
            g.mem_util_pct = Some(20 + (wobble % 7) as u32);
            g.power_w = Some(650.0 + wobble as f64 * 2.5);
            g.temp_c = Some(55 + (wobble % 5) as u32);
            g.mem_temp_c = Some(50 + (wobble % 4) as u32);
            g.sm_clock_mhz = Some(1_950 - (wobble as u32 % 3) * 15);
        }
    }
}

/// CPU seconds of each phase, summed over the measured seconds.
#[derive(Default)]
struct Phases {
    decode: Duration,
    apply: Duration,
    judge: Duration,
    /// The share of samples that came as patches.
    patched: f64,
    /// The share of the measured seconds' node judgements that were reused.
    reused: f64,
}

/// Follows `inventory`'s nodes for `seconds` simulated seconds (the first ten not measured).
fn follow(inventory: &Arc<Inventory>, seconds: u64, busy: bool) -> (Phases, u64) {
    let nodes = inventory.nodes.len();
    let mut state = FleetState::new(Arc::clone(inventory));
    let mut samples: Vec<NodeSample> = (0..nodes).map(node_sample).collect();
    let mut windows: Vec<Vec<Window>> = (0..nodes)
        .map(|_| (0..8).map(|_| Window::default()).collect())
        .collect();
    let mut encoders: Vec<Encoder> = (0..nodes)
        .map(|_| Encoder::new(DEFAULT_FULL_EVERY))
        .collect();
    let mut decoders: Vec<StreamDecoder> = (0..nodes)
        .map(|_| StreamDecoder::agent(Source::Agent))
        .collect();
    let hello = AgentHello {
        fleetop_agent: 1,
        version: env!("CARGO_PKG_VERSION").into(),
        driver: Some("580.159.04".into()),
        cuda: Some("13.0".into()),
        gpus: 8,
        kernel: None,
        build: None,
        compact: Some(DEFAULT_FULL_EVERY),
    };
    let mut hello_line = serde_json::to_vec(&hello).unwrap_or_default();
    hello_line.push(b'\n');
    let t0 = Instant::now();
    let mut phases = Phases::default();
    let mut measured = 0;
    let (mut patches, mut wholes) = (0u64, 0u64);
    let mut judged_before = (0, 0);
    let mut msgs: Vec<Msg> = Vec::with_capacity(nodes * 2);
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); nodes];
    for second in 0..seconds {
        let at = t0 + Duration::from_secs(second);
        // The agents' side, not the jump host's: not measured.
        let agents = samples.iter_mut().zip(&mut windows).zip(&mut encoders);
        for (id, ((sample, windows), encoder)) in agents.enumerate() {
            next_second(sample, windows, at, second, busy);
            let mut line = if second == 0 {
                hello_line.clone()
            } else {
                Vec::new()
            };
            line.extend(encoder.line(sample, false).unwrap_or_default());
            line.push(b'\n');
            lines[id] = line;
        }
        let counted = second >= 10;
        if second == 10 {
            judged_before = state.judgements_reused();
        }
        let started = cpu_time();
        for (node, (decoder, line)) in decoders.iter_mut().zip(&lines).enumerate() {
            decoder.feed(line, &mut |event| {
                if counted {
                    patches += u64::from(matches!(event, NodeEvent::Delta(_)));
                    wholes += u64::from(matches!(event, NodeEvent::Sample(_)));
                }
                msgs.push(Msg { node, at, event });
                true
            });
        }
        let decoded = cpu_time();
        for msg in msgs.drain(..) {
            state.apply(msg);
        }
        let applied = cpu_time();
        let summary = state.summary(at);
        let judged = cpu_time();
        if counted {
            phases.decode += decoded.saturating_sub(started);
            phases.apply += applied.saturating_sub(decoded);
            phases.judge += judged.saturating_sub(applied);
            measured += 1;
        }
        if second + 1 == seconds && summary.nodes_up != nodes {
            crate::text::warn(&format!(
                "bench-follow: {} of {nodes} nodes up at the end",
                summary.nodes_up
            ));
        }
    }
    phases.patched = patches as f64 / (patches + wholes).max(1) as f64;
    let (reused, fresh) = state.judgements_reused();
    let (reused, fresh) = (reused - judged_before.0, fresh - judged_before.1);
    phases.reused = reused as f64 / (reused + fresh).max(1) as f64;
    (phases, measured)
}

/// The report `--bench-follow SECS` prints.
pub(super) fn run(seconds: u64) -> String {
    let inventory = Arc::new(Inventory::demo());
    let nodes = inventory.nodes.len();
    let seconds = seconds.max(11);
    let mut out = format!(
        "in-process following: {nodes} nodes × 8 GPUs, 8 InfiniBand ports, compact stream, {seconds} simulated s \
         (the first 10 not measured)\n{:<6} {:>10} {:>10} {:>10} {:>10} {:>14} {:>9} {:>9}\n",
        "fleet", "decode", "apply", "judge", "total", "% of one core", "patched", "reused"
    );
    for (name, busy) in [("idle", false), ("busy", true)] {
        let (p, measured) = follow(&inventory, seconds, busy);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (measured.max(1) as f64 * nodes as f64);
        let total = p.decode + p.apply + p.judge;
        out += &format!(
            "{name:<6} {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>8.1}µs {:>13.2}% {:>8.0}% {:>8.0}%\n",
            per(p.decode),
            per(p.apply),
            per(p.judge),
            per(total),
            total.as_secs_f64() * 100.0 / measured.max(1) as f64,
            p.patched * 100.0,
            p.reused * 100.0
        );
    }
    out + "(µs: CPU per node-second; the share of one core is that of the whole fleet at 1 Hz, without SSH)\n"
}
