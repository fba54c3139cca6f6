//! The stable `fleetop.snapshot/1` JSON document.

use serde::Serialize;

use super::report::Report;
use crate::fleet::view::{GpuView, NodeView};
use crate::telemetry::board::{ClockViolation, GpuFabric, PcieAer, RemapBanks, Rise};
use crate::telemetry::{GpuError, XidEvent};

pub(crate) const SCHEMA: &str = "fleetop.snapshot/1";

#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    taken_at: String,
    inventory: &'a str,
    /// Aspects on which nodes differ (agent, driver, GPU model, VBIOS, GPU count), nodes grouped by value.
    drift: &'a [super::report::Drift<'a>],
    summary: Summary,
    /// Each site's summary under `--context all` (absent for one site).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sites: Vec<SiteSummary<'a>>,
    nodes: Vec<Node<'a>>,
}

#[derive(Serialize)]
struct SiteSummary<'a> {
    site: &'a str,
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    nodes: usize,
    nodes_up: usize,
    gpus_expected: u64,
    gpus_seen: u64,
    health: &'static str,
    power_watts: f64,
    /// Nodes someone took out of service (drained, draining, rebooting, resetting, in repair).
    out_of_service: usize,
    /// The worst health of the nodes in service: what the exit status goes by (without `--include-drained`).
    health_in_service: &'static str,
}

/// What is being done to a node: `{"state": "drained", "reason": "…", "by": "…"}`.
#[derive(Serialize)]
struct Operations<'a> {
    /// in-service, draining, drained, rebooting, resetting, in-repair, or unknown (the backend could not tell).
    state: &'static str,
    reason: Option<&'a str>,
    by: Option<&'a str>,
}

#[derive(Serialize)]
struct Node<'a> {
    /// The site under `--context all` (absent for one site); `name` then starts with it: `east/c012n2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    name: &'a str,
    cabinet: &'a str,
    tenant: Option<String>,
    state: &'static str,
    health: &'static str,
    source: Option<&'static str>,
    sample_age_ms: Option<u64>,
    error: Option<String>,
    /// Drained by whom and why, a restart, a repair (`null`: not checked, as without a drain backend).
    operations: Option<Operations<'a>>,
    /// The Slurm jobs and pods the schedulers place on the node (`[]`: none; `null`: its scheduler was not asked
    /// or did not answer); absent where the inventory names no scheduler.
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<Option<Vec<&'a crate::workload::Job>>>,
    /// What the agent said about itself and its node (`null` for nvidia-smi nodes).
    driver: Option<&'a str>,
    cuda: Option<&'a str>,
    agent_version: Option<&'a str>,
    kernel: Option<&'a str>,
    /// Why the node is warn or crit, GPU reasons included.
    reasons: &'a [String],
    /// NVSwitch SXids from the kernel log (`null`: not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    sxid: Option<&'a [XidEvent]>,
    /// XIDs on PCI addresses the node lists no GPU at.
    #[serde(skip_serializing_if = "<[XidEvent]>::is_empty")]
    unmatched_xid: &'a [XidEvent],
    /// InfiniBand ports (`null`: not checked, as through nvidia-smi).
    ib: Option<&'a [crate::telemetry::fabric::IbPort]>,
    gpus: Vec<Gpu<'a>>,
}

#[derive(Serialize)]
struct Gpu<'a> {
    index: u32,
    uuid: Option<&'a str>,
    name: Option<&'a str>,
    util_pct: Option<u32>,
    mem_util_pct: Option<u32>,
    mem_used_mib: Option<u64>,
    mem_total_mib: Option<u64>,
    temp_c: Option<u32>,
    mem_temp_c: Option<u32>,
    power_w: Option<f64>,
    power_limit_w: Option<f64>,
    sm_clock_mhz: Option<u32>,
    throttle: Option<&'a [String]>,
    ecc_uncorrected: Option<u64>,
    remapped_rows_pending: Option<bool>,
    remapped_rows_failed: Option<bool>,
    remapped_rows_uncorrectable: Option<u64>,
    mig_enabled: Option<bool>,
    pci_bus_id: Option<&'a str>,
    serial: Option<&'a str>,
    vbios: Option<&'a str>,
    tlimit_margin_c: Option<i32>,
    xid: Option<&'a [u32]>,
    xid_events: Option<&'a [XidEvent]>,
    /// The driver's recovery action by name (`none`, `gpu_reset`, `node_reboot`, `drain_p2p`,
    /// `drain_and_reset`, `unknown_N`); `null`: not reported (drivers before R565 without an XID 154).
    recovery_action: Option<String>,
    /// NVLinks: active, and their error counters (`null`: no NVLink, or not known).
    nvlink: Option<&'a crate::telemetry::fabric::NvLinks>,
    /// Processes with a context on the GPU (`null`: unknown, as through nvidia-smi; `[]`: checked, none).
    processes: Option<&'a [crate::telemetry::process::GpuProcess]>,
    /// The PCIe link now and at most (`null`: not reported), replays since the driver loaded, their rise over
    /// the agent's last minute and AER reports from the kernel log.
    pcie_gen: Option<u32>,
    pcie_width: Option<u32>,
    pcie_max_gen: Option<u32>,
    pcie_max_width: Option<u32>,
    pcie_replay: Option<u64>,
    pcie_replay_rise: Option<Rise>,
    pcie_aer: Option<&'a PcieAer>,
    /// NVSwitch fabric registration (`null`: no fabric, or not reported).
    fabric: Option<&'a GpuFabric>,
    sram_threshold_exceeded: Option<bool>,
    memory_unrepairable: Option<bool>,
    remap_banks: Option<RemapBanks>,
    mem_temp_max_c: Option<u32>,
    /// Clock violation time within the agent's last minute (`null`: a single reading, or not reported).
    clock_violation: Option<ClockViolation>,
    errors: &'a [GpuError],
    health: &'static str,
    reasons: &'a [String],
}

fn gpu<'a>(g: &'a GpuView) -> Gpu<'a> {
    let s = g.sample;
    Gpu {
        index: s.index,
        uuid: s.uuid.as_deref(),
        name: s.name.as_deref(),
        util_pct: s.util_pct,
        mem_util_pct: s.mem_util_pct,
        mem_used_mib: s.mem_used_mib,
        mem_total_mib: s.mem_total_mib,
        temp_c: s.temp_c,
        mem_temp_c: s.mem_temp_c,
        power_w: s.power_w,
        power_limit_w: s.power_limit_w,
        sm_clock_mhz: s.sm_clock_mhz,
        throttle: s.throttle.as_deref(),
        ecc_uncorrected: s.ecc_uncorrected,
        remapped_rows_pending: s.remapped_rows_pending,
        remapped_rows_failed: s.remapped_rows_failed,
        remapped_rows_uncorrectable: s.remapped_rows_uncorrectable,
        mig_enabled: s.mig_enabled,
        pci_bus_id: s.pci_bus_id.as_deref(),
        serial: s.serial.as_deref(),
        vbios: s.vbios.as_deref(),
        tlimit_margin_c: s.tlimit_margin_c,
        xid: s.xid.as_deref(),
        xid_events: s.xid_events.as_deref(),
        recovery_action: crate::telemetry::recovery::of(s).map(|a| a.name()),
        nvlink: s.nvlink.as_ref(),
        processes: s.processes.as_deref(),
        pcie_gen: s.pcie_gen,
        pcie_width: s.pcie_width,
        pcie_max_gen: s.pcie_max_gen,
        pcie_max_width: s.pcie_max_width,
        pcie_replay: s.pcie_replay,
        pcie_replay_rise: s.pcie_replay_rise,
        pcie_aer: s.pcie_aer.as_ref(),
        fabric: s.fabric.as_ref(),
        sram_threshold_exceeded: s.sram_threshold_exceeded,
        memory_unrepairable: s.memory_unrepairable,
        remap_banks: s.remap_banks,
        mem_temp_max_c: s.mem_temp_max_c,
        clock_violation: s.clock_violation,
        errors: &s.errors,
        health: g.verdict.health.as_str(),
        reasons: &g.verdict.reasons,
    }
}

fn node<'a>(report: &Report<'a>, v: &'a NodeView) -> Node<'a> {
    Node {
        site: crate::inventory::site_of(v.name),
        name: v.name,
        cabinet: v.cabinet,
        tenant: v.tenant.clone(),
        state: v.state.as_str(),
        health: v.verdict.health.as_str(),
        source: v.source.map(|s| s.as_str()),
        sample_age_ms: v.sample_age.map(|a| a.as_millis() as u64),
        error: v.error.clone(),
        operations: v.operations.as_ref().map(|o| Operations {
            state: o.activity.as_str(),
            reason: o.reason.as_deref(),
            by: o.by.as_deref(),
        }),
        jobs: report.workload.map(|_| {
            report
                .jobs(v)
                .map(|jobs| jobs.iter().map(|j| &**j).collect())
        }),
        driver: v.hello.and_then(|h| h.driver.as_deref()),
        cuda: v.hello.and_then(|h| h.cuda.as_deref()),
        agent_version: v.hello.map(|h| h.version.as_str()),
        kernel: v.hello.and_then(|h| h.kernel.as_deref()),
        reasons: &v.verdict.reasons,
        sxid: v.sample.and_then(|s| s.sxid.as_deref()),
        unmatched_xid: v.sample.map_or(&[], |s| &s.unmatched_xid),
        ib: v.sample.and_then(|s| s.ib.as_deref()),
        gpus: v.gpus.iter().map(gpu).collect(),
    }
}

fn summary(s: &crate::fleet::view::Summary) -> Summary {
    Summary {
        nodes: s.nodes,
        nodes_up: s.nodes_up,
        gpus_expected: s.gpus_expected,
        gpus_seen: s.gpus_seen,
        health: s.health.as_str(),
        power_watts: (s.power_watts * 100.0).round() / 100.0,
        out_of_service: s.out_of_service,
        health_in_service: s.health_in_service.as_str(),
    }
}

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let doc = Doc {
        schema: SCHEMA,
        taken_at: humantime::format_rfc3339_millis(report.taken_at).to_string(),
        inventory: report.inventory,
        drift: &report.drift,
        summary: summary(s),
        sites: report
            .sites
            .iter()
            .map(|(site, s)| SiteSummary {
                site,
                summary: summary(s),
            })
            .collect(),
        nodes: report.nodes.iter().map(|v| node(report, v)).collect(),
    };
    let mut out = crate::text::json_safe(
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    );
    out.push('\n');
    out
}
