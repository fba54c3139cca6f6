//! The metric families read from the store, dcgm-exporter's and fleetop's own, and how each series lands in a
//! node's GPU sample. Units follow each exporter's documentation: dcgm-exporter's `default-counters.csv` (MiB,
//! °C, W, MHz, the last XID's code) and fleetop's `/metrics` (ratios, bytes, hertz, XID counts).

use std::collections::{BTreeMap, HashMap};

use super::query::{Labels, Series};
use super::xids::XidTally;
use crate::inventory::NodeId;
use crate::telemetry::fabric::{NvLinkCounts, NvLinks, NVLINK_COUNTERS};
use crate::telemetry::metric_names as names;
use crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
use crate::telemetry::{throttle_names, GpuSample};

/// Which exporter a family comes from: it decides the node, GPU and UUID labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Dcgm,
    Fleetop,
}

impl Dialect {
    /// The label naming the node in this exporter's series: the configured one for dcgm-exporter, `node`
    /// for fleetop's own.
    pub fn node_label(self, configured: &str) -> &str {
        match self {
            Dialect::Dcgm => configured,
            Dialect::Fleetop => FLEETOP_NODE_LABEL,
        }
    }
}

/// What a family's value sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Util,
    MemUtil,
    MemUsedMib,
    MemFreeMib,
    MemReservedMib,
    Temp,
    MemTemp,
    PowerW,
    /// The limit the driver enforces: fleetop's agent reads it (nvmlDeviceGetEnforcedPowerLimit), DCGM field
    /// 164 `DCGM_FI_DEV_ENFORCED_POWER_LIMIT`.
    PowerLimitW,
    /// The limit management asked for, DCGM field 160 `DCGM_FI_DEV_POWER_MGMT_LIMIT`: the power limit only
    /// where no enforced one is exported (`NodeData::finish`).
    RequestedPowerLimitW,
    SmClockMhz,
    /// dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS`: the last XID only, a later one hides an earlier one.
    LastXid,
    /// The largest last-XID the store holds within [`XID_WINDOW`]: an XID 79 a later 13 replaced stays seen.
    XidInWindow,
    RemapPending,
    RemapFailure,
    EccDbe,
    ClockEvents,
    UtilRatio,
    MemUtilRatio,
    MemUsedBytes,
    MemTotalBytes,
    SmClockHz,
    XidCount,
    /// dcgm-exporter's NVLink error totals, by index into `NVLINK_COUNTERS`.
    NvLinkError(usize),
    /// fleetop's NVLink error totals, the counter named by the `counter` label.
    NvLinkErrorByCounter,
    NvLinkTotal,
    /// One series per inactive link, the link in the `link` label.
    NvLinkDown,
    /// The driver's recovery action, nvml.h's raw value.
    RecoveryAction,
}

impl Field {
    /// The label that says which code, link or counter a series is about, if the family has one.
    fn tag_label(self) -> Option<&'static str> {
        match self {
            Field::XidCount => Some("xid"),
            Field::NvLinkDown => Some("link"),
            Field::NvLinkErrorByCounter => Some("counter"),
            _ => None,
        }
    }
}

pub(crate) struct Family {
    pub name: &'static str,
    pub dialect: Dialect,
    field: Field,
}

impl Family {
    /// The query for this family, keeping only the labels fleetop reads: the store sends, and fleetop parses,
    /// a fraction of each series (dcgm-exporter adds a dozen labels per series). Identity labels (UUID, model,
    /// PCI bus) come with the utilisation family alone. The node label is kept as it is and read by name: a
    /// `label_replace` to rename it cost the store as much again as the aggregation.
    pub fn query(&self, node_label: &str) -> String {
        let identity = matches!(self.field, Field::Util | Field::UtilRatio);
        let extra = match (self.dialect, identity) {
            (_, false) => "",
            (Dialect::Dcgm, true) => ",UUID,modelName,pci_bus_id",
            (Dialect::Fleetop, true) => ",uuid",
        };
        let node = self.dialect.node_label(node_label);
        let tag = self
            .field
            .tag_label()
            .map(|t| format!(",{t}"))
            .unwrap_or_default();
        let selector = match self.field {
            Field::XidInWindow => {
                format!("max_over_time({}[{}s])", self.name, XID_WINDOW.as_secs())
            }
            _ => self.name.to_string(),
        };
        format!("max by ({node},gpu{extra}{tag}) ({selector})")
    }
}

/// How far back dcgm-exporter's last-XID family is searched for a code a later XID replaced: the ten minutes
/// the fleet keeps in its sparklines. An XID stays seen that long after a reboot cleared DCGM's value.
pub(crate) const XID_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// The label fleetop's own exporter names the node with.
pub(crate) const FLEETOP_NODE_LABEL: &str = "node";

const fn dcgm(name: &'static str, field: Field) -> Family {
    Family {
        name,
        dialect: Dialect::Dcgm,
        field,
    }
}

const fn fleetop(name: &'static str, field: Field) -> Family {
    Family {
        name,
        dialect: Dialect::Fleetop,
        field,
    }
}

/// Every family asked, one query each per refresh for the whole fleet. A family no exporter sends answers
/// an empty vector and costs one round trip.
pub const FAMILIES: &[Family] = &[
    dcgm("DCGM_FI_DEV_GPU_UTIL", Field::Util),
    dcgm("DCGM_FI_DEV_MEM_COPY_UTIL", Field::MemUtil),
    dcgm("DCGM_FI_DEV_FB_USED", Field::MemUsedMib),
    dcgm("DCGM_FI_DEV_FB_FREE", Field::MemFreeMib),
    dcgm("DCGM_FI_DEV_FB_RESERVED", Field::MemReservedMib),
    dcgm("DCGM_FI_DEV_GPU_TEMP", Field::Temp),
    dcgm("DCGM_FI_DEV_MEMORY_TEMP", Field::MemTemp),
    dcgm("DCGM_FI_DEV_POWER_USAGE", Field::PowerW),
    dcgm("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", Field::PowerLimitW),
    dcgm("DCGM_FI_DEV_POWER_MGMT_LIMIT", Field::RequestedPowerLimitW),
    dcgm("DCGM_FI_DEV_SM_CLOCK", Field::SmClockMhz),
    dcgm("DCGM_FI_DEV_XID_ERRORS", Field::LastXid),
    dcgm("DCGM_FI_DEV_XID_ERRORS", Field::XidInWindow),
    dcgm("DCGM_FI_DEV_ROW_REMAP_PENDING", Field::RemapPending),
    dcgm("DCGM_FI_DEV_ROW_REMAP_FAILURE", Field::RemapFailure),
    dcgm("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", Field::EccDbe),
    dcgm("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", Field::ClockEvents),
    dcgm("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", Field::ClockEvents),
    dcgm(
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        Field::NvLinkError(0),
    ),
    dcgm(
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        Field::NvLinkError(1),
    ),
    dcgm(
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        Field::NvLinkError(2),
    ),
    dcgm(
        "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
        Field::NvLinkError(3),
    ),
    // DCGM field 1523 (nvmlDeviceGpuRecoveryAction_t), not in dcgm-exporter's default counters: exported when a
    // counters file lists it, under the name it is listed by. go-dcgm and DCGM 4.6 name it
    // DCGM_FI_DEV_GPU_RECOVERY_ACTION and keep DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION as its deprecated alias.
    dcgm("DCGM_FI_DEV_GPU_RECOVERY_ACTION", Field::RecoveryAction),
    dcgm("DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION", Field::RecoveryAction),
    fleetop(names::GPU_UTILIZATION, Field::UtilRatio),
    fleetop(names::GPU_MEMORY_UTILIZATION, Field::MemUtilRatio),
    fleetop(names::GPU_MEMORY_USED, Field::MemUsedBytes),
    fleetop(names::GPU_MEMORY_TOTAL, Field::MemTotalBytes),
    fleetop(names::GPU_TEMPERATURE, Field::Temp),
    fleetop(names::GPU_MEMORY_TEMPERATURE, Field::MemTemp),
    fleetop(names::GPU_POWER, Field::PowerW),
    fleetop(names::GPU_POWER_LIMIT, Field::PowerLimitW),
    fleetop(names::GPU_SM_CLOCK, Field::SmClockHz),
    fleetop(names::GPU_ECC_UNCORRECTED, Field::EccDbe),
    fleetop(names::GPU_REMAPPED_ROWS_PENDING, Field::RemapPending),
    fleetop(names::GPU_XID_ERRORS, Field::XidCount),
    fleetop(names::GPU_NVLINKS, Field::NvLinkTotal),
    fleetop(names::GPU_NVLINK_DOWN, Field::NvLinkDown),
    fleetop(names::GPU_NVLINK_ERRORS, Field::NvLinkErrorByCounter),
    fleetop(names::GPU_RECOVERY_ACTION, Field::RecoveryAction),
];

const MIB: f64 = 1024.0 * 1024.0;

/// What one refresh found for one node.
#[derive(Debug, Default)]
pub(crate) struct NodeData {
    pub gpus: BTreeMap<u32, GpuSample>,
    /// Newest sample time among its series (Unix seconds).
    pub newest: f64,
    /// Values completed once every family is in, by GPU index.
    pending: HashMap<u32, Pending>,
    /// Which exporters spoke for it.
    pub dialects: Vec<Dialect>,
    /// fleetop's XID counts, bounded per GPU.
    xids: XidTally,
    /// Node-level problems with what the store sent (a GPU's XID tally truncated).
    pub warnings: Vec<String>,
    /// What the node's values stand in for, said beside its source (not a fault of the node).
    pub notes: Vec<&'static str>,
    /// dcgm-exporter's last XID of each GPU and when the store said so, for `LastXids` to remember: one per
    /// GPU, the largest where the store sent several.
    pub last_xids: Vec<LastXid>,
}

/// A GPU's last XID (not 0) as one refresh read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LastXid {
    pub gpu: u32,
    pub code: u32,
    /// The store's time for it, Unix seconds.
    pub t: f64,
}

/// dcgm-exporter values that need another family: free and reserved memory, summed with used into the total,
/// and the requested power limit, the limit only where no enforced one came.
#[derive(Debug, Default)]
struct Pending {
    free_mib: Option<f64>,
    reserved_mib: Option<f64>,
    requested_limit_w: Option<f64>,
}

/// Said of a node whose power limit is dcgm-exporter's requested one.
pub(crate) const REQUESTED_LIMIT_NOTE: &str = "power limit: the requested DCGM_FI_DEV_POWER_MGMT_LIMIT, as \
     dcgm-exporter sends no DCGM_FI_DEV_ENFORCED_POWER_LIMIT (docs/dcgm-exporter-counters.csv lists it)";

impl NodeData {
    /// Completes values that need several families.
    pub fn finish(&mut self) {
        self.warnings.extend(self.xids.warnings());
        for (index, p) in &self.pending {
            let Some(g) = self.gpus.get_mut(index) else {
                continue;
            };
            if let (None, Some(used), Some(free)) = (g.mem_total_mib, g.mem_used_mib, p.free_mib) {
                let rest = (free.round() as u64)
                    .saturating_add(p.reserved_mib.unwrap_or(0.0).round() as u64);
                g.mem_total_mib = Some(used.saturating_add(rest));
            }
            if let (None, Some(requested)) = (g.power_limit_w, p.requested_limit_w) {
                g.power_limit_w = Some(requested);
                if !self.notes.contains(&REQUESTED_LIMIT_NOTE) {
                    self.notes.push(REQUESTED_LIMIT_NOTE);
                }
            }
        }
    }
}

/// A GPU's identity, as the utilisation family's labels carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    uuid: Option<String>,
    model: Option<String>,
    pci_bus_id: Option<String>,
}

/// One series of a family, resolved to an inventory node and GPU and owned: what the parsing threads hand
/// to the merge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    node: NodeId,
    gpu: u32,
    /// Sample time, Unix seconds.
    t: f64,
    value: f64,
    identity: Option<Box<Identity>>,
    /// The XID code, link or counter (index into `NVLINK_COUNTERS`) the series is about.
    tag: Option<u32>,
}

/// The reading of series `s` of `family`, added to `out` when its node (named through `node_of`), GPU and
/// value are good.
pub fn read(
    family: &Family,
    s: &Series,
    node_of: &dyn Fn(&Labels) -> Option<NodeId>,
    out: &mut Vec<Reading>,
) {
    let Some(node) = node_of(&s.metric) else {
        return;
    };
    let Some(gpu) = s.metric.get("gpu").and_then(|g| g.parse::<u32>().ok()) else {
        return;
    };
    let Ok(value) = s.value.1.as_str().parse::<f64>() else {
        return;
    };
    if !value.is_finite() || !s.value.0.is_finite() {
        return;
    }
    if family.dialect == Dialect::Dcgm && dcgm_blank(value) {
        return;
    }
    // The code, link or counter a tagged family's series is about; one without it is no reading.
    let tag = match family.field.tag_label() {
        None => None,
        Some(label) => {
            let text = s.metric.get(label);
            let tag = if family.field == Field::NvLinkErrorByCounter {
                text.and_then(|t| NVLINK_COUNTERS.iter().position(|c| *c == t))
                    .map(|i| i as u32)
            } else {
                text.and_then(|t| t.parse::<u32>().ok())
            };
            if tag.is_none() {
                return;
            }
            tag
        }
    };
    let owned = |name: &str| s.metric.get(name).map(str::to_string);
    let identity = matches!(family.field, Field::Util | Field::UtilRatio).then(|| {
        Box::new(match family.dialect {
            Dialect::Dcgm => Identity {
                uuid: owned("UUID"),
                model: owned("modelName"),
                pci_bus_id: owned("pci_bus_id"),
            },
            Dialect::Fleetop => Identity {
                uuid: owned("uuid"),
                ..Identity::default()
            },
        })
    });
    out.push(Reading {
        node,
        gpu,
        t: s.value.0,
        value,
        identity,
        tag,
    });
}

/// Files `readings` of `family` under their nodes (indexed by inventory id), creating the GPU on first sight.
pub fn apply(family: &Family, readings: &[Reading], nodes: &mut [Option<NodeData>]) {
    for r in readings {
        let Some(slot) = nodes.get_mut(r.node) else {
            continue;
        };
        let data = slot.get_or_insert_with(NodeData::default);
        if !data.gpus.contains_key(&r.gpu) && data.gpus.len() >= MAX_GPUS_PER_SAMPLE {
            continue;
        }
        data.newest = data.newest.max(r.t);
        if !data.dialects.contains(&family.dialect) {
            data.dialects.push(family.dialect);
        }
        let gpu = data.gpus.entry(r.gpu).or_insert_with(|| GpuSample {
            index: r.gpu,
            ..Default::default()
        });
        if let Some(id) = &r.identity {
            if gpu.uuid.is_none() {
                gpu.uuid.clone_from(&id.uuid);
            }
            if gpu.name.is_none() {
                gpu.name.clone_from(&id.model);
            }
            if gpu.pci_bus_id.is_none() {
                gpu.pci_bus_id.clone_from(&id.pci_bus_id);
            }
        }
        if family.field == Field::LastXid && whole(r.value) != 0 {
            let seen = LastXid {
                gpu: r.gpu,
                code: whole(r.value),
                t: r.t,
            };
            match data.last_xids.iter_mut().find(|x| x.gpu == r.gpu) {
                Some(x) if x.code < seen.code => *x = seen,
                Some(_) => {}
                None => data.last_xids.push(seen),
            }
        }
        match (family.field, r.tag) {
            // fleetop: occurrences of each XID code the agent saw, one series per code.
            (Field::XidCount, Some(code)) => data.xids.add(gpu, code, count(r.value)),
            _ => set(gpu, family.field, r.value, r.tag, &mut data.pending),
        }
    }
}

/// DCGM's "blank" values, which dcgm-exporter passes on as numbers: a field the GPU does not support, was not
/// found or may not be read (`DCGM_INT32_BLANK` 0x7ffffff0 + 0..15, `DCGM_INT64_BLANK` 0x7ffffffffffffff0 and
/// `DCGM_FP64_BLANK` 2^47 and above; NVIDIA/DCGM `dcgmlib/dcgm_structs.h`). A T4 sends 9223372036854775794
/// (`DCGM_INT64_NOT_SUPPORTED`) for NVLink counters and memory temperature: no value, not an implausible one.
fn dcgm_blank(v: f64) -> bool {
    const INT32_BLANK: f64 = 2_147_483_632.0;
    const FP64_BLANK: f64 = 140_737_488_355_328.0;
    (INT32_BLANK..INT32_BLANK + 16.0).contains(&v) || v >= FP64_BLANK
}

/// The GPU's NVLinks, created on the first NVLink family seen.
fn links(gpu: &mut GpuSample) -> &mut NvLinks {
    gpu.nvlink.get_or_insert_with(NvLinks::default)
}

/// Whole numbers as the exporters send them; a negative or huge one becomes `u32::MAX` so the range check
/// names it rather than wrapping it.
fn whole(v: f64) -> u32 {
    if (0.0..=f64::from(u32::MAX)).contains(&v) {
        v.round() as u32
    } else {
        u32::MAX
    }
}

fn count(v: f64) -> u64 {
    if v >= 0.0 && v < u64::MAX as f64 {
        v.round() as u64
    } else {
        u64::MAX
    }
}

fn set(
    gpu: &mut GpuSample,
    field: Field,
    v: f64,
    tag: Option<u32>,
    pending: &mut HashMap<u32, Pending>,
) {
    match field {
        Field::Util => gpu.util_pct = Some(whole(v)),
        Field::MemUtil => gpu.mem_util_pct = Some(whole(v)),
        Field::MemUsedMib => gpu.mem_used_mib = Some(count(v)),
        Field::MemFreeMib => pending.entry(gpu.index).or_default().free_mib = Some(v),
        Field::MemReservedMib => pending.entry(gpu.index).or_default().reserved_mib = Some(v),
        Field::Temp => gpu.temp_c = Some(whole(v)),
        Field::MemTemp => gpu.mem_temp_c = Some(whole(v)),
        Field::PowerW => gpu.power_w = Some(v),
        Field::PowerLimitW => gpu.power_limit_w = Some(v),
        Field::RequestedPowerLimitW => {
            pending.entry(gpu.index).or_default().requested_limit_w = Some(v);
        }
        Field::SmClockMhz => gpu.sm_clock_mhz = Some(whole(v)),
        // dcgm-exporter: "Value of the last XID error encountered"; 0 is none since DCGM started watching. The
        // last one and the largest within the window are both kept: neither family downgrades the other.
        Field::LastXid | Field::XidInWindow => {
            let codes = gpu.xid.get_or_insert_with(Vec::new);
            let code = whole(v);
            if code != 0 && !codes.contains(&code) {
                codes.push(code);
                codes.sort_unstable();
            }
        }
        Field::RemapPending => gpu.remapped_rows_pending = Some(v != 0.0),
        Field::RemapFailure => gpu.remapped_rows_failed = Some(v != 0.0),
        Field::EccDbe => gpu.ecc_uncorrected = Some(count(v)),
        Field::ClockEvents => gpu.throttle = Some(throttle_names(count(v))),
        Field::UtilRatio => gpu.util_pct = Some(whole(v * 100.0)),
        Field::MemUtilRatio => gpu.mem_util_pct = Some(whole(v * 100.0)),
        Field::MemUsedBytes => gpu.mem_used_mib = Some(count(v / MIB)),
        Field::MemTotalBytes => gpu.mem_total_mib = Some(count(v / MIB)),
        Field::SmClockHz => gpu.sm_clock_mhz = Some(whole(v / 1e6)),
        Field::NvLinkError(index) => links(gpu)
            .summed
            .get_or_insert_with(NvLinkCounts::default)
            .set(index, count(v)),
        Field::NvLinkErrorByCounter => {
            if let Some(index) = tag {
                links(gpu)
                    .summed
                    .get_or_insert_with(NvLinkCounts::default)
                    .set(index as usize, count(v));
            }
        }
        Field::NvLinkTotal => links(gpu).total = whole(v),
        Field::NvLinkDown => {
            if let Some(link) = tag.filter(|_| v != 0.0) {
                links(gpu).down.push(link);
            }
        }
        Field::RecoveryAction => gpu.recovery_action = Some(whole(v)),
        // Filed by `apply` through the GPU's bounded tally.
        Field::XidCount => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::prometheus::query::Text;
    use std::borrow::Cow;

    #[test]
    fn fleetop_s_own_families_are_the_ones_its_exporter_writes() {
        let mut read: Vec<&str> = FAMILIES
            .iter()
            .filter(|f| f.dialect == Dialect::Fleetop)
            .map(|f| f.name)
            .collect();
        let mut written = crate::telemetry::metric_names::READ_BACK.to_vec();
        read.sort_unstable();
        written.sort_unstable();
        assert_eq!(read, written);
    }

    /// A series as the store sends it.
    fn series<'a>(labels: &[(&'a str, &'a str)], value: &'a str) -> Series<'a> {
        Series {
            metric: Labels::of(labels),
            value: (1_700_000_000.5, Text(Cow::Borrowed(value))),
        }
    }

    #[test]
    fn queries_keep_only_the_labels_read() {
        let find = |name: &str| FAMILIES.iter().find(|f| f.name == name).unwrap();
        assert_eq!(
            find("DCGM_FI_DEV_GPU_UTIL").query("instance"),
            "max by (instance,gpu,UUID,modelName,pci_bus_id) (DCGM_FI_DEV_GPU_UTIL)"
        );
        assert_eq!(
            find("DCGM_FI_DEV_GPU_TEMP").query("Hostname"),
            "max by (Hostname,gpu) (DCGM_FI_DEV_GPU_TEMP)"
        );
        assert_eq!(
            find("fleetop_gpu_xid_errors").query("Hostname"),
            "max by (node,gpu,xid) (fleetop_gpu_xid_errors)"
        );
    }

    #[test]
    fn families_land_in_their_fields_with_their_units() {
        // Node n1 is inventory id 0 (named by Hostname), n2 id 1 (named by fleetop's `node`).
        let node_of = |m: &Labels| match m.get("Hostname").or(m.get("node")) {
            Some("n1") => Some(0),
            Some("n2") => Some(1),
            _ => None,
        };
        let mut nodes: Vec<Option<NodeData>> = vec![None, None, None];
        let find = |name: &str| FAMILIES.iter().find(|f| f.name == name).unwrap();
        let mut feed = |family: &str, labels: &[(&str, &str)], value: &str| {
            let family = find(family);
            let mut readings = Vec::new();
            read(family, &series(labels, value), &node_of, &mut readings);
            apply(family, &readings, &mut nodes);
        };
        let dcgm_labels = [
            ("Hostname", "n1"),
            ("gpu", "3"),
            ("UUID", "GPU-x"),
            ("modelName", "NVIDIA H100 80GB HBM3"),
        ];
        feed("DCGM_FI_DEV_GPU_UTIL", &dcgm_labels, "40");
        feed("DCGM_FI_DEV_FB_USED", &dcgm_labels, "1000");
        feed("DCGM_FI_DEV_FB_FREE", &dcgm_labels, "80000");
        feed("DCGM_FI_DEV_XID_ERRORS", &dcgm_labels, "79");
        feed("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", &dcgm_labels, "12");
        feed("DCGM_FI_DEV_POWER_USAGE", &dcgm_labels, "NaN");
        let fleetop_labels = [("node", "n2"), ("gpu", "0"), ("uuid", "GPU-y")];
        feed("fleetop_gpu_utilization_ratio", &fleetop_labels, "0.97");
        feed("fleetop_gpu_sm_clock_hertz", &fleetop_labels, "1980000000");
        let xid = [("node", "n2"), ("gpu", "0"), ("xid", "48")];
        feed("fleetop_gpu_xid_errors", &xid, "2");
        // A series without a node or GPU label (an exporter's own counters) is not a GPU.
        feed("DCGM_FI_DEV_GPU_UTIL", &[("gpu", "0")], "5");
        feed("DCGM_FI_DEV_GPU_UTIL", &[("Hostname", "n1")], "5");
        feed(
            "DCGM_FI_DEV_GPU_UTIL",
            &[("Hostname", "elsewhere"), ("gpu", "0")],
            "5",
        );
        // NVLink: dcgm-exporter's totals (DCGM's "not supported" is no value), fleetop's states and counters.
        feed(
            "DCGM_FI_DEV_MEMORY_TEMP",
            &dcgm_labels,
            "9223372036854775794",
        );
        feed(
            "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
            &dcgm_labels,
            "7",
        );
        feed(
            "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
            &dcgm_labels,
            "9223372036854775794",
        );
        feed("DCGM_FI_DEV_SM_CLOCK", &dcgm_labels, "2147483634");
        feed("DCGM_FI_DEV_GPU_RECOVERY_ACTION", &dcgm_labels, "2");
        feed("fleetop_gpu_recovery_action", &fleetop_labels, "1");
        feed("fleetop_gpu_nvlinks", &fleetop_labels, "18");
        feed(
            "fleetop_gpu_nvlink_down",
            &[("node", "n2"), ("gpu", "0"), ("link", "11")],
            "1",
        );
        feed(
            "fleetop_gpu_nvlink_down",
            &[("node", "n2"), ("gpu", "0")],
            "1",
        );
        let counter = |name| [("node", "n2"), ("gpu", "0"), ("counter", name)];
        feed("fleetop_gpu_nvlink_errors_total", &counter("replay"), "2");
        feed("fleetop_gpu_nvlink_errors_total", &counter("crc_data"), "0");
        feed("fleetop_gpu_nvlink_errors_total", &counter("bogus"), "9");
        for n in nodes.iter_mut().flatten() {
            n.finish();
        }
        let n1 = nodes[0].as_ref().unwrap();
        let g = &n1.gpus[&3];
        assert_eq!(g.util_pct, Some(40));
        assert_eq!((g.mem_used_mib, g.mem_total_mib), (Some(1000), Some(81000)));
        assert_eq!(g.xid, Some(vec![79]));
        assert_eq!(
            g.throttle,
            Some(vec!["sw_power_cap".to_string(), "hw_slowdown".to_string()])
        );
        assert_eq!(g.power_w, None, "NaN is no value");
        assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(g.uuid.as_deref(), Some("GPU-x"));
        assert_eq!(n1.gpus.len(), 1);
        assert_eq!(
            g.recovery_action,
            Some(2),
            "dcgm-exporter's recovery action"
        );
        assert_eq!(
            (g.mem_temp_c, g.sm_clock_mhz),
            (None, None),
            "DCGM blanks are unknown"
        );
        let links = g.nvlink.as_ref().unwrap();
        assert!(!links.states_known(), "dcgm-exporter sends no link states");
        assert_eq!(
            links.summed,
            Some(NvLinkCounts {
                crc_flit: Some(7),
                ..Default::default()
            })
        );
        let n2 = nodes[1].as_ref().unwrap();
        let f = &n2.gpus[&0];
        assert_eq!((f.util_pct, f.sm_clock_mhz), (Some(97), Some(1980)));
        assert_eq!(f.uuid.as_deref(), Some("GPU-y"));
        assert_eq!(f.xid_counts(), vec![(48, 2)]);
        assert_eq!(f.recovery_action, Some(1), "fleetop's recovery action");
        let links = f.nvlink.as_ref().unwrap();
        assert_eq!((links.total, links.down.clone()), (18, vec![11]));
        assert_eq!(
            links.sums(),
            [
                ("replay", 2),
                ("recovery", 0),
                ("crc_flit", 0),
                ("crc_data", 0)
            ]
        );
        assert_eq!(links.summed.as_ref().unwrap().crc_data, Some(0));
        assert!(nodes[2].is_none());
        assert_eq!(n1.newest, 1_700_000_000.5);
        assert_eq!(n2.dialects, vec![Dialect::Fleetop]);
    }
}
