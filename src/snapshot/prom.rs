//! Prometheus text exposition (format 0.0.4): fleet, node and GPU gauges in base units. Under `--context all`
//! every series carries a `site` label, and the fleet's gauges are each site's, so no two sites' series collide.

use std::fmt::Write;

use super::report::Report;
use crate::fleet::view::{GpuView, NodeView, Summary};
use crate::telemetry::health::Health;
use crate::telemetry::metric_names as names;

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn health_value(h: Health) -> u8 {
    match h {
        Health::Ok => 0,
        Health::Warn => 1,
        Health::Crit => 2,
    }
}

type GpuMetric = (&'static str, &'static str, fn(&GpuView) -> Option<f64>);

const GPU_METRICS: &[GpuMetric] = &[
    (
        names::GPU_UTILIZATION,
        "GPU utilization, 0 to 1.",
        |g| g.sample.util_pct.map(|v| f64::from(v) / 100.0),
    ),
    (
        names::GPU_MEMORY_UTILIZATION,
        "Memory controller utilization, 0 to 1.",
        |g| g.sample.mem_util_pct.map(|v| f64::from(v) / 100.0),
    ),
    (
        names::GPU_MEMORY_USED,
        "Frame buffer memory in use.",
        |g| g.sample.mem_used_mib.map(|v| v as f64 * 1048576.0),
    ),
    (
        names::GPU_MEMORY_TOTAL,
        "Frame buffer memory size.",
        |g| g.sample.mem_total_mib.map(|v| v as f64 * 1048576.0),
    ),
    (
        names::GPU_TEMPERATURE,
        "GPU core temperature.",
        |g| g.sample.temp_c.map(f64::from),
    ),
    (
        names::GPU_MEMORY_TEMPERATURE,
        "HBM temperature.",
        |g| g.sample.mem_temp_c.map(f64::from),
    ),
    (names::GPU_POWER, "Power draw.", |g| {
        g.sample.power_w
    }),
    (
        names::GPU_POWER_LIMIT,
        "Enforced power limit.",
        |g| g.sample.power_limit_w,
    ),
    (names::GPU_SM_CLOCK, "SM clock.", |g| {
        g.sample.sm_clock_mhz.map(|v| f64::from(v) * 1e6)
    }),
    (
        names::GPU_ECC_UNCORRECTED,
        "Volatile uncorrected ECC errors since the last driver load.",
        |g| g.sample.ecc_uncorrected.map(|v| v as f64),
    ),
    (
        names::GPU_REMAPPED_ROWS_PENDING,
        "1 when a row remap waits for a GPU reset.",
        |g| {
            g.sample
                .remapped_rows_pending
                .map(|v| f64::from(u8::from(v)))
        },
    ),
    (
        names::GPU_RECOVERY_ACTION,
        "The driver's recovery action, nvml.h nvmlDeviceGpuRecoveryAction_t: 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain and reset.",
        |g| crate::telemetry::recovery::of(g.sample).map(|a| f64::from(a.raw())),
    ),
    (
        "fleetop_gpu_health",
        "GPU health: 0 ok, 1 warn, 2 crit.",
        |g| Some(f64::from(health_value(g.verdict.health))),
    ),
];

/// `site="…",` for a node of a merged inventory (`--context all`), else nothing: the first of a node's labels.
fn site_label(v: &NodeView) -> String {
    crate::inventory::site_of(v.name)
        .map_or(String::new(), |site| format!("site=\"{}\",", escape(site)))
}

/// `node="…",gpu="…",uuid="…"`: the labels of every per-GPU series.
fn gpu_labels(v: &NodeView, g: &GpuView) -> String {
    format!(
        "{}node=\"{}\",gpu=\"{}\",uuid=\"{}\"",
        site_label(v),
        escape(v.name),
        g.sample.index,
        escape(g.sample.uuid.as_deref().unwrap_or(""))
    )
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// The fleet's gauges, each from a summary.
type FleetGauge = (&'static str, &'static str, fn(&Summary) -> f64);

const FLEET: [FleetGauge; 7] = [
    ("fleetop_fleet_nodes", "Nodes in the snapshot.", |s| {
        s.nodes as f64
    }),
    (
        "fleetop_fleet_nodes_up",
        "Nodes with a fresh sample.",
        |s| s.nodes_up as f64,
    ),
    (
        "fleetop_fleet_gpus_expected",
        "GPUs the inventory expects.",
        |s| s.gpus_expected as f64,
    ),
    ("fleetop_fleet_gpus_seen", "GPUs that reported.", |s| {
        s.gpus_seen as f64
    }),
    ("fleetop_fleet_power_watts", "Total GPU power draw.", |s| {
        s.power_watts
    }),
    (
        "fleetop_fleet_health",
        "Worst health: 0 ok, 1 warn, 2 crit.",
        |s| f64::from(health_value(s.health)),
    ),
    (
        "fleetop_fleet_nodes_out_of_service",
        "Nodes someone took out of service (drained, draining, rebooting, resetting, in repair).",
        |s| s.out_of_service as f64,
    ),
];

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // One site: the fleet's gauges without labels. Several: each site's, by `site`, and no total beside them
    // (a `sum` over the sites is the fleet's, which an unlabelled total would count twice).
    let summaries: Vec<(String, &Summary)> = match report.sites.as_slice() {
        [] => vec![(String::new(), &report.summary)],
        sites => sites
            .iter()
            .map(|(site, s)| (format!("{{site=\"{}\"}}", escape(site)), s))
            .collect(),
    };
    for (name, help, value) in FLEET {
        header(&mut out, name, help);
        for (labels, s) in &summaries {
            let _ = writeln!(out, "{name}{labels} {}", value(s));
        }
    }
    let node_labels = |v: &NodeView| {
        format!(
            "{}node=\"{}\",cabinet=\"{}\",tenant=\"{}\"",
            site_label(v),
            escape(v.name),
            escape(v.cabinet),
            escape(v.tenant.as_deref().unwrap_or(""))
        )
    };
    header(
        &mut out,
        "fleetop_node_up",
        "1 when the node streamed a fresh sample.",
    );
    for v in &report.nodes {
        let up = u8::from(v.data_state == crate::fleet::NodeState::Up);
        let _ = writeln!(out, "fleetop_node_up{{{}}} {up}", node_labels(v));
    }
    header(
        &mut out,
        "fleetop_node_health",
        "Node health: 0 ok, 1 warn, 2 crit.",
    );
    for v in &report.nodes {
        let _ = writeln!(
            out,
            "fleetop_node_health{{{}}} {}",
            node_labels(v),
            health_value(v.verdict.health)
        );
    }
    header(
        &mut out,
        "fleetop_node_state",
        "1 for the node's current state.",
    );
    for v in &report.nodes {
        let _ = writeln!(
            out,
            "fleetop_node_state{{{},state=\"{}\"}} 1",
            node_labels(v),
            v.state.as_str()
        );
    }
    header(
        &mut out,
        "fleetop_node_operations",
        "1 for what is being done to the node (drained, draining, rebooting, resetting, in-repair, in-service, unknown), with who and why; no series: not checked.",
    );
    for v in &report.nodes {
        if let Some(o) = &v.operations {
            let _ = writeln!(
                out,
                "fleetop_node_operations{{{},state=\"{}\",reason=\"{}\",by=\"{}\"}} 1",
                node_labels(v),
                o.activity.as_str(),
                escape(o.reason.as_deref().unwrap_or("")),
                escape(o.by.as_deref().unwrap_or(""))
            );
        }
    }
    for (name, help, get) in GPU_METRICS {
        header(&mut out, name, help);
        for v in &report.nodes {
            for g in &v.gpus {
                if let Some(value) = get(g) {
                    let _ = writeln!(out, "{name}{{{}}} {value}", gpu_labels(v, g));
                }
            }
        }
    }
    header(
        &mut out,
        names::GPU_XID_ERRORS,
        "Occurrences of each XID since boot (kernel log), or since the agent started (NVML events).",
    );
    for v in &report.nodes {
        for g in &v.gpus {
            for (code, count) in g.sample.xid_counts() {
                let _ = writeln!(
                    out,
                    "{}{{{},xid=\"{code}\"}} {count}",
                    names::GPU_XID_ERRORS,
                    gpu_labels(v, g)
                );
            }
        }
    }
    fabric(&mut out, report);
    out
}

/// NVLink and InfiniBand families: links and ports up, port rates, and their error counters (counters
/// since the driver loaded, typed `counter`).
fn fabric(out: &mut String, report: &Report) {
    let with_links = || {
        report.nodes.iter().flat_map(|v| {
            v.gpus
                .iter()
                .filter_map(move |g| Some((v, g, g.sample.nvlink.as_ref()?)))
        })
    };
    header(out, names::GPU_NVLINKS, "NVLinks the GPU has.");
    for (v, g, links) in with_links().filter(|(_, _, l)| l.states_known()) {
        let _ = writeln!(
            out,
            "{}{{{}}} {}",
            names::GPU_NVLINKS,
            gpu_labels(v, g),
            links.total
        );
    }
    header(
        out,
        "fleetop_gpu_nvlinks_active",
        "NVLinks of the GPU that are active.",
    );
    for (v, g, links) in with_links().filter(|(_, _, l)| l.states_known()) {
        let _ = writeln!(
            out,
            "fleetop_gpu_nvlinks_active{{{}}} {}",
            gpu_labels(v, g),
            links.active()
        );
    }
    // Only the links that are down have a series: 8 GPUs × 18 links of ones would dwarf the rest.
    header(
        out,
        names::GPU_NVLINK_DOWN,
        "1 for each NVLink of the GPU that is not active (links that are up have no series).",
    );
    for (v, g, links) in with_links() {
        for link in &links.down {
            let _ = writeln!(
                out,
                "{}{{{},link=\"{link}\"}} 1",
                names::GPU_NVLINK_DOWN,
                gpu_labels(v, g)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP {n} NVLink data-link errors of the GPU's links (replay, recovery, crc_flit, crc_data).\n\
         # TYPE {n} counter",
        n = names::GPU_NVLINK_ERRORS
    );
    // Summed over the GPU's links: 4 series per GPU rather than 72 (the reasons name the link).
    for (v, g, links) in with_links() {
        for (name, n) in links.sums() {
            let _ = writeln!(
                out,
                "{}{{{},counter=\"{name}\"}} {n}",
                names::GPU_NVLINK_ERRORS,
                gpu_labels(v, g),
            );
        }
    }
    let port_labels = |v: &NodeView, p: &crate::telemetry::fabric::IbPort| {
        format!(
            "{}node=\"{}\",hca=\"{}\",port=\"{}\"",
            site_label(v),
            escape(v.name),
            escape(&p.hca),
            p.port
        )
    };
    let ports = || {
        report.nodes.iter().flat_map(|v| {
            v.sample
                .and_then(|s| s.ib.as_deref())
                .unwrap_or_default()
                .iter()
                .map(move |p| (v, p))
        })
    };
    header(
        out,
        "fleetop_ib_port_up",
        "1 when the InfiniBand port is ACTIVE and LinkUp.",
    );
    for (v, p) in ports() {
        let _ = writeln!(
            out,
            "fleetop_ib_port_up{{{}}} {}",
            port_labels(v, p),
            u8::from(p.is_up())
        );
    }
    header(
        out,
        "fleetop_ib_port_rate_bytes_per_second",
        "The port's link rate.",
    );
    for (v, p) in ports() {
        if let Some(r) = p.rate_gbps {
            let _ = writeln!(
                out,
                "fleetop_ib_port_rate_bytes_per_second{{{}}} {}",
                port_labels(v, p),
                r * 1e9 / 8.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP fleetop_ib_port_errors_total InfiniBand port error counters, by sysfs counter name.\n\
         # TYPE fleetop_ib_port_errors_total counter"
    );
    for (v, p) in ports() {
        for (name, n) in p.counters.all() {
            if let Some(n) = n {
                let _ = writeln!(
                    out,
                    "fleetop_ib_port_errors_total{{{},counter=\"{name}\"}} {n}",
                    port_labels(v, p),
                );
            }
        }
    }
}
