//! Agentless mode: `nvidia-smi --query-gpu=… --format=csv` rows (with or without header and units) into samples.

use super::sample::{GpuError, GpuErrorKind, GpuSample, NodeSample};

/// Fields every driver answers, in the naming of drivers from 535.54.03 on (`clocks_event_reasons.*`).
const BASE_FIELDS: &[&str] = &[
    "index",
    "uuid",
    "name",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "temperature.memory",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "clocks_event_reasons.sw_power_cap",
    "clocks_event_reasons.hw_slowdown",
    "clocks_event_reasons.hw_thermal_slowdown",
    "clocks_event_reasons.hw_power_brake_slowdown",
    "clocks_event_reasons.sw_thermal_slowdown",
    "ecc.errors.uncorrected.volatile.total",
    "pcie.link.gen.current",
    "pcie.link.width.current",
    "pci.bus_id",
];
/// Asked of drivers with row remapping and MIG (A100 and later).
const REMAP_FIELDS: &[&str] = &[
    "remapped_rows.pending",
    "remapped_rows.failure",
    "remapped_rows.uncorrectable",
    "mig.mode.current",
];
/// Asked of drivers that report the distance to T.Limit.
const TLIMIT_FIELDS: &[&str] = &["temperature.gpu.tlimit"];

/// The questions asked in turn: a driver that rejects a field (`Field "…" is not a valid field to query.`,
/// on stdout) gets the next, smaller list, once.
pub(crate) fn field_tiers() -> [Vec<String>; 3] {
    let owned = |lists: &[&[&str]]| -> Vec<String> {
        lists
            .iter()
            .flat_map(|l| l.iter().map(|f| f.to_string()))
            .collect()
    };
    [
        owned(&[BASE_FIELDS, REMAP_FIELDS, TLIMIT_FIELDS]),
        owned(&[BASE_FIELDS, REMAP_FIELDS]),
        legacy_fields(),
    ]
}

/// The question in the naming older drivers understand (`clocks_throttle_reasons.*`, no remapped rows).
pub fn legacy_fields() -> Vec<String> {
    BASE_FIELDS
        .iter()
        .map(|f| f.replace("clocks_event_reasons.", "clocks_throttle_reasons."))
        .collect()
}

/// The fullest question, which current drivers answer.
pub fn modern_fields() -> Vec<String> {
    field_tiers()[0].clone()
}

/// True for the line nvidia-smi prints (on stdout) when the driver does not know a field.
pub(crate) fn is_unknown_field(line: &str) -> bool {
    line.starts_with("Field \"") && line.contains("is not a valid field to query")
}

/// The line nvidia-smi prints when the driver is loaded but sees no GPU.
pub(crate) const NO_DEVICES: &str = "No devices were found";

/// The remote command: each field list in turn until the driver accepts one.
/// With `interval_ms`, nvidia-smi's own loop mode; without, one pass and exit (snapshots).
pub(crate) fn remote_command(interval_ms: Option<u64>) -> String {
    let looping = interval_ms
        .map(|ms| format!(" -lms {ms}"))
        .unwrap_or_default();
    field_tiers()
        .iter()
        .map(|fields| {
            format!(
                "nvidia-smi --query-gpu={} --format=csv,noheader,nounits{looping}",
                fields.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

/// Which sample field a CSV column feeds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Index,
    Uuid,
    Name,
    Util,
    MemUtil,
    MemUsed,
    MemTotal,
    Temp,
    MemTemp,
    Power,
    PowerLimit,
    SmClock,
    Reason(&'static str),
    Ecc,
    RemapPending,
    RemapFailed,
    RemapUncorrectable,
    Mig,
    PciBusId,
    Tlimit,
    PcieGen,
    PcieWidth,
    Ignored,
}

fn field_for(name: &str) -> Field {
    let base = name.split(" [").next().unwrap_or(name).trim();
    let base = base.replace("clocks_throttle_reasons.", "clocks_event_reasons.");
    match base.as_str() {
        "index" => Field::Index,
        "uuid" => Field::Uuid,
        "name" | "gpu_name" => Field::Name,
        "utilization.gpu" => Field::Util,
        "utilization.memory" => Field::MemUtil,
        "memory.used" => Field::MemUsed,
        "memory.total" => Field::MemTotal,
        "temperature.gpu" => Field::Temp,
        "temperature.memory" => Field::MemTemp,
        "power.draw" => Field::Power,
        "power.limit" => Field::PowerLimit,
        "clocks.sm" | "clocks.current.sm" => Field::SmClock,
        "ecc.errors.uncorrected.volatile.total" => Field::Ecc,
        "pcie.link.gen.current" => Field::PcieGen,
        "pcie.link.width.current" => Field::PcieWidth,
        "remapped_rows.pending" => Field::RemapPending,
        "remapped_rows.failure" => Field::RemapFailed,
        "remapped_rows.uncorrectable" => Field::RemapUncorrectable,
        "mig.mode.current" => Field::Mig,
        "pci.bus_id" => Field::PciBusId,
        "temperature.gpu.tlimit" => Field::Tlimit,
        other => match other.strip_prefix("clocks_event_reasons.") {
            Some(reason) => super::sample::THROTTLE_REASONS
                .iter()
                .find(|(n, _)| *n == reason)
                .map_or(Field::Ignored, |(n, _)| Field::Reason(n)),
            None => Field::Ignored,
        },
    }
}

/// The meaning of each column of a CSV stream.
#[derive(Debug, Clone)]
pub struct Columns(Vec<Field>);

impl Columns {
    /// Columns of a `noheader` stream: the fields named in the query, in order.
    pub fn from_query<S: AsRef<str>>(fields: &[S]) -> Self {
        Columns(fields.iter().map(|f| field_for(f.as_ref())).collect())
    }

    /// Columns from a header row such as `index, utilization.gpu [%], …`.
    pub fn from_header(header: &str) -> Self {
        Columns(header.split(',').map(field_for).collect())
    }
}

/// The cells nvidia-smi prints for a GPU in trouble, and what each means.
const ERROR_CELLS: &[(&str, GpuErrorKind)] = &[
    ("[GPU is lost]", GpuErrorKind::Lost),
    ("[GPU requires reset]", GpuErrorKind::ResetRequired),
    ("[Unknown Error]", GpuErrorKind::Unknown),
    ("Unknown Error", GpuErrorKind::Unknown),
    ("ERR!", GpuErrorKind::Unknown),
];

/// The error a cell reports, if it is one of nvidia-smi's error spellings.
fn cell_error(raw: &str) -> Option<GpuErrorKind> {
    let v = raw.trim();
    ERROR_CELLS
        .iter()
        .find(|(text, _)| v.eq_ignore_ascii_case(text))
        .map(|(_, kind)| *kind)
}

/// Reads one cell; `None` for the many ways nvidia-smi says "no value" (errors are read by [`cell_error`]).
fn cell(raw: &str) -> Option<&str> {
    let v = raw.trim();
    let missing = v.is_empty()
        || (v.starts_with('[') && v.ends_with(']'))
        || v.eq_ignore_ascii_case("N/A")
        || cell_error(v).is_some();
    (!missing).then_some(v)
}

/// The number at the start of a cell, units (`%`, `MiB`, `W`, `MHz`) dropped.
fn number(raw: &str) -> Option<f64> {
    cell(raw)?.split_whitespace().next()?.parse().ok()
}

fn flag(raw: &str) -> Option<bool> {
    match cell(raw)?.to_ascii_lowercase().as_str() {
        "active" | "yes" | "1" | "true" | "enabled" => Some(true),
        "not active" | "no" | "0" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

/// One parsed row; `index` is `None` when the index cell itself was an error (the GPU is then placed by
/// its position in the pass).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub gpu: GpuSample,
    pub index: Option<u32>,
}

/// Parses one row. Fails only for a line that is not GPU data at all (an error message); a row of error
/// cells is a GPU in trouble, kept with its errors.
pub fn parse_row(columns: &Columns, line: &str) -> Result<Row, String> {
    let mut gpu = GpuSample::default();
    let mut index = None;
    let mut reasons: Option<Vec<String>> = None;
    let cells: Vec<&str> = line.split(',').collect();
    for (field, raw) in columns
        .0
        .iter()
        .zip(cells.iter().copied().chain(std::iter::repeat("")))
    {
        if let Some(kind) = cell_error(raw) {
            if !gpu.errors.iter().any(|e| e.kind == kind) {
                gpu.errors.push(GpuError {
                    kind,
                    query: format!("{field:?}").to_lowercase(),
                    detail: format!("nvidia-smi: {}", raw.trim()),
                });
            }
            continue;
        }
        let whole = |v: f64| (v >= 0.0 && v.fract() == 0.0).then_some(v);
        match field {
            Field::Index => index = cell(raw).and_then(|v| v.parse::<u32>().ok()),
            Field::Uuid => gpu.uuid = cell(raw).map(str::to_string),
            Field::Name => gpu.name = cell(raw).map(str::to_string),
            Field::PciBusId => gpu.pci_bus_id = cell(raw).map(str::to_string),
            Field::Util => gpu.util_pct = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemUtil => gpu.mem_util_pct = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemUsed => gpu.mem_used_mib = number(raw).and_then(whole).map(|v| v as u64),
            Field::MemTotal => gpu.mem_total_mib = number(raw).and_then(whole).map(|v| v as u64),
            Field::Temp => gpu.temp_c = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemTemp => gpu.mem_temp_c = number(raw).and_then(whole).map(|v| v as u32),
            Field::Tlimit => {
                gpu.tlimit_margin_c = number(raw)
                    .filter(|v| v.fract() == 0.0 && v.abs() < 1e6)
                    .map(|v| v as i32)
            }
            Field::Power => gpu.power_w = number(raw),
            Field::PowerLimit => gpu.power_limit_w = number(raw),
            Field::SmClock => gpu.sm_clock_mhz = number(raw).and_then(whole).map(|v| v as u32),
            Field::Ecc => gpu.ecc_uncorrected = number(raw).and_then(whole).map(|v| v as u64),
            Field::PcieGen => gpu.pcie_gen = number(raw).and_then(whole).map(|v| v as u32),
            Field::PcieWidth => gpu.pcie_width = number(raw).and_then(whole).map(|v| v as u32),
            Field::RemapPending => gpu.remapped_rows_pending = flag(raw),
            Field::RemapFailed => gpu.remapped_rows_failed = flag(raw),
            Field::RemapUncorrectable => {
                gpu.remapped_rows_uncorrectable = number(raw).and_then(whole).map(|v| v as u64)
            }
            Field::Mig => gpu.mig_enabled = flag(raw),
            Field::Reason(name) => {
                if let Some(active) = flag(raw) {
                    let list = reasons.get_or_insert_with(Vec::new);
                    if active {
                        list.push((*name).to_string());
                    }
                }
            }
            Field::Ignored => {}
        }
    }
    gpu.throttle = reasons;
    if index.is_none() && gpu.errors.is_empty() {
        let shown: String = line.chars().take(80).collect();
        return Err(format!("not an nvidia-smi data row: {shown:?}"));
    }
    gpu.index = index.unwrap_or(0);
    Ok(Row { gpu, index })
}

/// Groups streamed rows into node samples: a sample ends when every expected GPU has reported
/// or when the GPU index wraps around to the start of the next loop.
#[derive(Debug)]
pub(crate) struct RowAssembler {
    expected: usize,
    pending: Vec<GpuSample>,
}

impl RowAssembler {
    pub fn new(expected_gpus: u32) -> Self {
        RowAssembler {
            expected: expected_gpus.max(1) as usize,
            pending: Vec::new(),
        }
    }

    /// Adds a row; returns the node sample it completed, if any. A row without a readable index takes the
    /// place after the previous row.
    pub fn push(&mut self, row: Row, now_ms: u64) -> Option<NodeSample> {
        let mut gpu = row.gpu;
        gpu.index = row.index.unwrap_or_else(|| {
            self.pending
                .last()
                .map_or(0, |last| last.index.saturating_add(1))
        });
        let wrapped = self
            .pending
            .last()
            .is_some_and(|last| gpu.index <= last.index);
        let mut done = None;
        if wrapped {
            done = Some(self.take(now_ms));
        }
        self.pending.push(gpu);
        if done.is_none() && self.pending.len() >= self.expected {
            done = Some(self.take(now_ms));
        }
        done
    }

    /// The rows still waiting at the end of the stream (a node with fewer GPUs than expected).
    pub(crate) fn flush(&mut self, now_ms: u64) -> Option<NodeSample> {
        (!self.pending.is_empty()).then(|| self.take(now_ms))
    }

    fn take(&mut self, now_ms: u64) -> NodeSample {
        NodeSample {
            t: now_ms,
            gpus: std::mem::take(&mut self.pending),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_noheader_row_with_gaps() {
        let cols = Columns::from_query(&modern_fields());
        let row = "3, GPU-abc, NVIDIA H100 80GB HBM3, 97, 41, 70000, 81559, 71, [N/A], 650.5, 700.00, 1980, \
                   Not Active, Active, Not Active, Not Active, Not Active, 0, 5, 16, 00000000:18:00.0, No";
        let g = parse_row(&cols, row).unwrap().gpu;
        assert_eq!(g.index, 3);
        assert_eq!(g.pci_bus_id.as_deref(), Some("00000000:18:00.0"));
        assert_eq!(g.util_pct, Some(97));
        assert_eq!(g.mem_temp_c, None);
        assert_eq!(g.power_w, Some(650.5));
        assert_eq!(
            g.throttle.as_deref(),
            Some(&["hw_slowdown".to_string()][..])
        );
        assert_eq!(g.remapped_rows_pending, Some(false));
        assert_eq!(
            g.remapped_rows_failed, None,
            "missing trailing field is null"
        );
    }

    #[test]
    fn every_no_value_spelling_is_null() {
        for v in [
            "[N/A]",
            "[Not Supported]",
            "[Unknown Error]",
            "ERR!",
            "N/A",
            "",
            "[GPU requires reset]",
        ] {
            assert_eq!(number(v), None, "{v}");
        }
        assert_eq!(number("69.85 W"), Some(69.85));
    }

    #[test]
    fn legacy_names_map_to_the_same_fields() {
        let cols = Columns::from_query(&legacy_fields());
        let row = "0, GPU-x, Tesla V100, 5, 1, 10, 32000, 40, [N/A], 50, 250, 1300, Active, Not Active, Not Active, Not Active, Not Active, 0, 3, 16, 00000000:00:1E.0";
        let g = parse_row(&cols, row).unwrap().gpu;
        assert_eq!(
            g.throttle.as_deref(),
            Some(&["sw_power_cap".to_string()][..])
        );
        assert_eq!(g.remapped_rows_pending, None);
    }

    #[test]
    fn error_text_is_not_a_row() {
        let cols = Columns::from_query(&modern_fields());
        assert!(parse_row(
            &cols,
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
        )
        .is_err());
    }

    #[test]
    fn assembler_groups_by_count_and_wrap() {
        let mut a = RowAssembler::new(2);
        let g = |i| Row {
            gpu: GpuSample::default(),
            index: Some(i),
        };
        assert!(a.push(g(0), 1).is_none());
        assert_eq!(a.push(g(1), 1).unwrap().gpus.len(), 2);
        assert!(a.push(g(0), 2).is_none());
        // GPU 1 fell off the bus: the wrap to 0 completes the short sample.
        assert_eq!(a.push(g(0), 3).unwrap().gpus.len(), 1);
    }

    #[test]
    fn error_cells_make_a_gpu_in_trouble_not_a_blank() {
        let cols = Columns::from_query(&modern_fields());
        // As a real H100 prints it after a crash.
        let row = "0, [GPU requires reset], [GPU requires reset], 0, 0, 0, 0, [N/A]";
        let r = parse_row(&cols, row).unwrap();
        assert_eq!(r.index, Some(0));
        assert_eq!(r.gpu.errors.len(), 1, "one error per kind");
        assert_eq!(r.gpu.errors[0].kind, GpuErrorKind::ResetRequired);
        assert_eq!(r.gpu.errors[0].detail, "nvidia-smi: [GPU requires reset]");
        assert_eq!(r.gpu.uuid, None);
        for (cell, kind) in [
            ("[GPU is lost]", GpuErrorKind::Lost),
            ("[Unknown Error]", GpuErrorKind::Unknown),
            ("ERR!", GpuErrorKind::Unknown),
        ] {
            let r = parse_row(&cols, &format!("1, GPU-x, H100, {cell}")).unwrap();
            assert_eq!(r.gpu.errors[0].kind, kind, "{cell}");
        }
        // The index itself is an error: the row is placed after the previous one.
        let lost = parse_row(&cols, "[GPU is lost], [GPU is lost], [GPU is lost]").unwrap();
        assert_eq!(lost.index, None);
        let mut a = RowAssembler::new(2);
        let ok = parse_row(&cols, "0, GPU-a, H100, 5").unwrap();
        assert!(a.push(ok, 1).is_none());
        let sample = a.push(lost, 1).unwrap();
        assert_eq!(sample.gpus[1].index, 1);
        assert_eq!(sample.gpus[1].errors[0].kind, GpuErrorKind::Lost);
    }

    #[test]
    fn tiers_shrink_and_rejections_are_recognised() {
        let tiers = field_tiers();
        assert!(tiers[0].contains(&"temperature.gpu.tlimit".to_string()));
        assert!(!tiers[1].contains(&"temperature.gpu.tlimit".to_string()));
        assert!(tiers[2].iter().all(|f| !f.starts_with("remapped_rows")));
        assert_eq!(remote_command(None).matches(" || ").count(), 2);
        assert!(is_unknown_field(
            "Field \"temperature.gpu.tlimit\" is not a valid field to query."
        ));
    }
}
