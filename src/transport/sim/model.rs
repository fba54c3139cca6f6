//! What the simulated reference fleet reports: believable, deterministic per seed, with a few sick nodes.

use crate::inventory::{Inventory, NodeId};
use crate::telemetry::process::{GpuProcess, ProcessKind};
use crate::telemetry::wire::AgentHello;
use crate::telemetry::{GpuSample, NodeSample};
use crate::workload::{Job, Scheduler, Workload};

/// Nodes that never answer in the demo fleet.
pub(crate) const UNREACHABLE: [&str; 2] = ["c017n2", "c203n1"];
/// The node whose GPU 5 fell off the bus (XID 79).
pub(crate) const XID79_NODE: &str = "c042n3";
/// The node with a pending row remap on GPU 2.
pub(crate) const REMAP_NODE: &str = "c118n1";
/// Nodes with one hot GPU (index 3).
pub(crate) const HOT_NODES: [&str; 3] = ["c077n1", "c145n2", "c260n1"];
/// Nodes still on the previous driver.
pub(crate) const OLD_DRIVER_NODES: [&str; 2] = ["c088n1", "c088n2"];
/// Nodes running an older fleetop agent (before builds were named).
pub(crate) const OLD_AGENT_NODES: [&str; 3] = ["c301n1", "c301n2", "c302n1"];
/// The node back from repair one GPU short: GPU 7 is missing.
pub(crate) const SHORT_NODE: &str = "c150n2";
/// The node whose GPU 4 was swapped for one with an older VBIOS.
pub(crate) const OLD_VBIOS_NODE: &str = "c210n1";
/// The cabinet running hot (a failing rear-door heat exchanger): every GPU about 12 °C warmer.
pub(crate) const HOT_CABINET: &str = "c066";
/// The node whose `mlx5_3` port is down (a dead cable or a switch port disabled).
pub(crate) const IB_DOWN_NODE: &str = "c099n2";
/// The node whose `mlx5_5` trained at HDR (200 Gb/s) instead of NDR.
pub(crate) const IB_SLOW_NODE: &str = "c123n1";
/// The node with a flapping `mlx5_1` link: `link_downed` and `symbol_error` keep rising.
pub(crate) const IB_FLAPPING_NODE: &str = "c187n3";
/// The node whose GPU 6 loses NVLink 11 after 20 samples.
pub(crate) const NVLINK_DOWN_NODE: &str = "c055n2";
/// HCAs per node (one per GPU, as on an 8-GPU rail-optimised node).
const HCAS: u32 = 8;
/// The driver most of the fleet runs.
const DRIVER: &str = "550.90.07";

/// How one simulated node behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    Training,
    Spare,
    Unreachable,
}

/// splitmix64: cheap, deterministic, well mixed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value in `0..n` fixed by the inputs.
fn pick(seed: u64, a: u64, b: u64, c: u64, n: u64) -> u64 {
    mix(seed ^ mix(a ^ mix(b ^ mix(c)))) % n.max(1)
}

pub fn role(inv: &Inventory, node: NodeId) -> Role {
    let name = inv.nodes[node].name.as_str();
    if UNREACHABLE.contains(&name) {
        Role::Unreachable
    } else if inv.nodes[node].tenancy.is_empty() {
        Role::Spare
    } else {
        Role::Training
    }
}

/// What node `node`'s agent says when it starts.
pub fn hello(inv: &Inventory, node: NodeId) -> AgentHello {
    let name = inv.nodes[node].name.as_str();
    let old_agent = OLD_AGENT_NODES.contains(&name);
    AgentHello {
        fleetop_agent: 1,
        version: if old_agent {
            "0.0.9".into()
        } else {
            crate::release::VERSION.into()
        },
        driver: Some(
            if OLD_DRIVER_NODES.contains(&name) {
                "550.54.15"
            } else {
                DRIVER
            }
            .into(),
        ),
        cuda: Some("12.4".into()),
        gpus: gpu_indices(inv, node).count() as u32,
        kernel: Some("6.8.0-60-generic".into()),
        build: (!old_agent).then(|| crate::release::BUILD.into()),
        compact: None,
    }
}

/// The GPUs a node reports: all it should have, but on the node short a GPU.
fn gpu_indices(inv: &Inventory, node: NodeId) -> impl Iterator<Item = u32> {
    let short = inv.nodes[node].name == SHORT_NODE;
    (0..inv.nodes[node].expected_gpus).filter(move |&i| !(short && i == 7))
}

/// How hard a tenant's jobs drive their GPUs (60–95 %): tenants differ, a tenant's nodes look alike.
fn tenant_load(seed: u64, tenant: usize) -> u32 {
    60 + pick(seed, tenant as u64, 17, 0, 36) as u32
}

/// About one training node in forty sits idle between jobs, still held by its tenant.
fn between_jobs(seed: u64, node: NodeId) -> bool {
    pick(seed, node as u64, 99, 0, 40) == 0
}

/// What the demo's Slurm controller would list: one job per group of four tenant nodes that run work, the
/// same job ids and users the nodes' processes carry.
pub fn workload(inv: &Inventory, seed: u64) -> Workload {
    let mut w = Workload::default();
    for (node, spec) in inv.nodes.iter().enumerate() {
        let Some(tenancy) = spec.tenancy.first() else {
            continue;
        };
        if between_jobs(seed, node) {
            continue;
        }
        let group = node as u64 / 4;
        let process = demo_process(inv, seed, node, 0, None);
        let job = Job {
            scheduler: Scheduler::Slurm,
            id: demo_job(seed, node, tenancy.tenant).to_string(),
            user: process.user,
            tenant: inv.tenants.get(tenancy.tenant).map(|t| t.name.clone()),
            partition: Some("train".into()),
            gpus: Some(spec.expected_gpus),
            elapsed_s: Some(600 + pick(seed, group, 21, 0, 4 * 86_400)),
            left_s: Some(3600 + pick(seed, group, 22, 0, 3 * 86_400)),
            state: "RUNNING".into(),
            pod_uid: None,
        };
        w.add(inv, std::slice::from_ref(&spec.name), job);
    }
    // Several nodes share a job: count its GPUs over all of them.
    let mut gpus: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for jobs in w.by_node.values() {
        for j in jobs {
            *gpus.entry(j.id.clone()).or_default() += j.gpus.unwrap_or(0);
        }
    }
    for jobs in w.by_node.values_mut() {
        for j in jobs.iter_mut() {
            let total = gpus.get(&j.id).copied();
            std::sync::Arc::make_mut(j).gpus = total;
        }
    }
    w.checked.push(Scheduler::Slurm);
    w
}

/// The sample node `node` reports at tick `tick` (one tick per interval).
pub fn sample(inv: &Inventory, seed: u64, node: NodeId, tick: u64, t_ms: u64) -> NodeSample {
    let spec = &inv.nodes[node];
    let between_jobs = between_jobs(seed, node);
    let load = spec
        .tenancy
        .first()
        .map_or(0, |t| tenant_load(seed, t.tenant));
    let hot_cabinet = inv.cabinets[spec.cabinet].name == HOT_CABINET;
    let busy_gpus: Vec<u32> = spec
        .tenancy
        .iter()
        .flat_map(|t| {
            t.gpus
                .clone()
                .unwrap_or_else(|| (0..spec.expected_gpus).collect())
        })
        .filter(|_| !between_jobs)
        .collect();
    let n = node as u64;
    let gpus = gpu_indices(inv, node)
        .map(|i| {
            let g = u64::from(i);
            let busy = busy_gpus.contains(&i);
            // Training jobs breathe a little from tick to tick; spares sit still.
            let wobble = pick(seed, n, g, tick, 5);
            let (util, power, temp) = if busy {
                let util = (load + wobble as u32).min(100);
                (
                    util,
                    190.0 + f64::from(util) * 4.6 + pick(seed, n, g, tick + 7, 60) as f64,
                    44 + util / 5 + pick(seed, n, g, 3, 8) as u32,
                )
            } else {
                (
                    0,
                    68.0 + pick(seed, n, g, tick, 6) as f64,
                    31 + pick(seed, n, g, 3, 6) as u32,
                )
            };
            let mut gpu = GpuSample {
                index: i,
                uuid: Some(format!(
                    "GPU-{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    mix(seed ^ n) as u32,
                    i,
                    n % 0xfff,
                    g,
                    mix(n * 8 + g) & 0xffff_ffff_ffff
                )),
                name: Some("NVIDIA H100 80GB HBM3".into()),
                util_pct: Some(util),
                mem_util_pct: Some(if busy { 40 + wobble as u32 * 3 } else { 0 }),
                mem_used_mib: Some(if busy {
                    71_000 + pick(seed, n, g, 11, 6000)
                } else {
                    0
                }),
                mem_total_mib: Some(81_559),
                temp_c: Some(temp),
                mem_temp_c: Some(temp + 6),
                power_w: Some(power),
                power_limit_w: Some(700.0),
                sm_clock_mhz: Some(if busy { 1980 } else { 345 }),
                throttle: Some(if busy {
                    vec![]
                } else {
                    vec!["gpu_idle".into()]
                }),
                ecc_uncorrected: Some(0),
                remapped_rows_pending: Some(false),
                remapped_rows_failed: Some(false),
                xid: Some(vec![]),
                pcie_gen: Some(5),
                pcie_width: Some(16),
                temp_slowdown_c: Some(89),
                temp_shutdown_c: Some(92),
                mem_temp_max_c: Some(95),
                mig_enabled: Some(false),
                pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x18 + i * 0x10)),
                serial: Some(format!("16523{:07}", n * 8 + g)),
                vbios: Some("96.00.99.00.01".into()),
                ..Default::default()
            };
            gpu.nvlink = Some(crate::telemetry::fabric::NvLinks {
                total: 18,
                down: if spec.name == NVLINK_DOWN_NODE && i == 6 && tick >= 20 {
                    vec![11]
                } else {
                    vec![]
                },
                errors: vec![],
                summed: None,
                rose: None,
            });
            gpu.processes = Some(if busy {
                vec![demo_process(inv, seed, node, i, gpu.mem_used_mib)]
            } else {
                vec![]
            });
            if hot_cabinet {
                gpu.temp_c = gpu.temp_c.map(|t| t + 12);
                gpu.mem_temp_c = gpu.mem_temp_c.map(|t| t + 12);
            }
            sicken(&spec.name, &mut gpu, t_ms);
            gpu
        })
        .collect();
    NodeSample {
        t: t_ms,
        gpus,
        ib: Some(ib_ports(&spec.name, tick)),
        ..Default::default()
    }
}

/// The training process on a busy GPU: one per GPU, as a Slurm job's ranks run, the job spanning the four
/// nodes of the node's group so a drain hits the same job on its neighbours.
fn demo_process(
    inv: &Inventory,
    seed: u64,
    node: NodeId,
    gpu: u32,
    used_mib: Option<u64>,
) -> GpuProcess {
    const USERS: [&str; 6] = ["alice", "bob", "chen", "dana", "emil", "fatima"];
    let spec = &inv.nodes[node];
    let tenant = spec.tenancy.first().map_or(0, |t| t.tenant);
    let group = node as u64 / 4;
    GpuProcess {
        pid: 40_000 + (pick(seed, group, 5, 0, 20_000) as u32) + gpu,
        kind: ProcessKind::Compute,
        used_mib: used_mib.map(|m| m.saturating_sub(512)),
        uid: Some(2000 + tenant as u32),
        user: Some(USERS[(tenant + group as usize) % USERS.len()].into()),
        name: Some("python3".into()),
        slurm_job: Some(demo_job(seed, node, tenant)),
        pod_uid: None,
    }
}

/// The demo's Slurm job id for a tenant's nodes in one group of four.
fn demo_job(seed: u64, node: NodeId, tenant: usize) -> u64 {
    100_000 + pick(seed, node as u64 / 4, 9 + tenant as u64, 0, 800_000)
}

/// The node's NDR ports, with the demo's fabric faults.
fn ib_ports(node: &str, tick: u64) -> Vec<crate::telemetry::fabric::IbPort> {
    (0..HCAS)
        .map(|h| {
            let mut port = crate::telemetry::fabric::IbPort {
                hca: format!("mlx5_{h}"),
                port: 1,
                hca_type: Some("MT4129".into()),
                link_layer: Some("InfiniBand".into()),
                state: Some("4: ACTIVE".into()),
                phys_state: Some("5: LinkUp".into()),
                rate_gbps: Some(400.0),
                counters: crate::telemetry::fabric::IbCounters {
                    link_downed: Some(0),
                    symbol_error: Some(0),
                    port_rcv_errors: Some(0),
                    port_xmit_discards: Some(0),
                    excessive_buffer_overrun_errors: Some(0),
                    local_link_integrity_errors: Some(0),
                    link_error_recovery: Some(0),
                    port_rcv_remote_physical_errors: Some(0),
                    rnr_nak_retry_err: Some(0),
                    local_ack_timeout_err: Some(0),
                },
                fw_ver: Some("28.39.1002".into()),
                rose: None,
            };
            if node == IB_DOWN_NODE && h == 3 {
                port.state = Some("1: DOWN".into());
                port.phys_state = Some("3: Disabled".into());
            }
            if node == IB_SLOW_NODE && h == 5 {
                port.rate_gbps = Some(200.0);
            }
            if node == IB_FLAPPING_NODE && h == 1 {
                // Down and back every 30 samples, with bit errors around each flap.
                port.counters.link_downed = Some(tick / 30);
                port.counters.symbol_error = Some(tick / 30 * 17);
            }
            port
        })
        .collect()
}

/// The demo fleet's deliberate faults. The XID is dated the start of the day (UTC) of `t_ms`, like a log
/// record with a time, so a practice acknowledgement holds (acknowledgements go by time).
fn sicken(node: &str, gpu: &mut GpuSample, t_ms: u64) {
    const DAY_MS: u64 = 86_400_000;
    let xid_at = t_ms / DAY_MS * DAY_MS;
    if node == XID79_NODE && gpu.index == 5 {
        *gpu = GpuSample {
            index: gpu.index,
            uuid: gpu.uuid.take(),
            name: gpu.name.take(),
            pci_bus_id: gpu.pci_bus_id.take(),
            xid: Some(vec![79]),
            xid_events: Some(vec![crate::telemetry::XidEvent {
                code: 79,
                count: 1,
                first_ms: Some(xid_at),
                last_ms: Some(xid_at),
                text: Some("GPU has fallen off the bus.".into()),
                ..Default::default()
            }]),
            errors: vec![crate::telemetry::GpuError {
                kind: crate::telemetry::GpuErrorKind::Lost,
                query: "utilization".into(),
                detail: "NVML: device fell off the bus or has otherwise become inacessible".into(),
            }],
            ..Default::default()
        };
    }
    if node == REMAP_NODE && gpu.index == 2 {
        gpu.remapped_rows_pending = Some(true);
        gpu.xid = Some(vec![63]);
    }
    if node == OLD_VBIOS_NODE && gpu.index == 4 {
        gpu.vbios = Some("96.00.74.00.0B".into());
    }
    if HOT_NODES.contains(&node) && gpu.index == 3 {
        gpu.temp_c = Some(86);
        gpu.mem_temp_c = Some(91);
        gpu.throttle = Some(vec!["sw_thermal_slowdown".into()]);
    }
}
