//! Agentless mode: `nvidia-smi --query-gpu=… --format=csv` rows (with or without header and units) into samples.

use super::{GpuSample, NodeSample};

/// Fields asked of drivers from 535.54.03 on (`clocks_event_reasons.*`, remapped rows).
const MODERN_FIELDS: &[&str] = &[
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
    "remapped_rows.pending",
    "remapped_rows.failure",
];

/// The same question in the naming older drivers understand (`clocks_throttle_reasons.*`, no remapped rows).
pub fn legacy_fields() -> Vec<String> {
    MODERN_FIELDS
        .iter()
        .filter(|f| !f.starts_with("remapped_rows."))
        .map(|f| f.replace("clocks_event_reasons.", "clocks_throttle_reasons."))
        .collect()
}

pub fn modern_fields() -> Vec<String> {
    MODERN_FIELDS.iter().map(|f| f.to_string()).collect()
}

/// The remote command: modern field names, then the legacy ones if the driver rejects them.
/// With `interval_ms`, nvidia-smi's own loop mode; without, one pass and exit (snapshots).
pub fn remote_command(interval_ms: Option<u64>) -> String {
    let looping = interval_ms
        .map(|ms| format!(" -lms {ms}"))
        .unwrap_or_default();
    let query = |fields: &[String]| {
        format!(
            "nvidia-smi --query-gpu={} --format=csv,noheader,nounits{looping}",
            fields.join(",")
        )
    };
    format!("{} || {}", query(&modern_fields()), query(&legacy_fields()))
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
        other => match other.strip_prefix("clocks_event_reasons.") {
            Some(reason) => super::THROTTLE_REASONS
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

/// Reads one cell; `None` for the many ways nvidia-smi says "no value".
fn cell(raw: &str) -> Option<&str> {
    let v = raw.trim();
    let missing = v.is_empty()
        || (v.starts_with('[') && v.ends_with(']'))
        || v.eq_ignore_ascii_case("N/A")
        || v == "ERR!"
        || v.eq_ignore_ascii_case("Unknown Error");
    (!missing).then_some(v)
}

/// The number at the start of a cell, units (`%`, `MiB`, `W`, `MHz`) dropped.
fn number(raw: &str) -> Option<f64> {
    cell(raw)?.split_whitespace().next()?.parse().ok()
}

fn flag(raw: &str) -> Option<bool> {
    match cell(raw)?.to_ascii_lowercase().as_str() {
        "active" | "yes" | "1" | "true" => Some(true),
        "not active" | "no" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// Parses one row. Fails only when the row has no usable GPU index (e.g. an error message, not data).
pub fn parse_row(columns: &Columns, line: &str) -> Result<GpuSample, String> {
    let mut gpu = GpuSample::default();
    let mut index = None;
    let mut reasons: Option<Vec<String>> = None;
    let cells: Vec<&str> = line.split(',').collect();
    for (field, raw) in columns
        .0
        .iter()
        .zip(cells.iter().copied().chain(std::iter::repeat("")))
    {
        let whole = |v: f64| (v >= 0.0 && v.fract() == 0.0).then_some(v);
        match field {
            Field::Index => index = cell(raw).and_then(|v| v.parse::<u32>().ok()),
            Field::Uuid => gpu.uuid = cell(raw).map(str::to_string),
            Field::Name => gpu.name = cell(raw).map(str::to_string),
            Field::Util => gpu.util_pct = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemUtil => gpu.mem_util_pct = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemUsed => gpu.mem_used_mib = number(raw).and_then(whole).map(|v| v as u64),
            Field::MemTotal => gpu.mem_total_mib = number(raw).and_then(whole).map(|v| v as u64),
            Field::Temp => gpu.temp_c = number(raw).and_then(whole).map(|v| v as u32),
            Field::MemTemp => gpu.mem_temp_c = number(raw).and_then(whole).map(|v| v as u32),
            Field::Power => gpu.power_w = number(raw),
            Field::PowerLimit => gpu.power_limit_w = number(raw),
            Field::SmClock => gpu.sm_clock_mhz = number(raw).and_then(whole).map(|v| v as u32),
            Field::Ecc => gpu.ecc_uncorrected = number(raw).and_then(whole).map(|v| v as u64),
            Field::PcieGen => gpu.pcie_gen = number(raw).and_then(whole).map(|v| v as u32),
            Field::PcieWidth => gpu.pcie_width = number(raw).and_then(whole).map(|v| v as u32),
            Field::RemapPending => gpu.remapped_rows_pending = flag(raw),
            Field::RemapFailed => gpu.remapped_rows_failed = flag(raw),
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
    gpu.index = index.ok_or_else(|| {
        let shown: String = line.chars().take(80).collect();
        format!("not an nvidia-smi data row: {shown:?}")
    })?;
    Ok(gpu)
}

/// Groups streamed rows into node samples: a sample ends when every expected GPU has reported
/// or when the GPU index wraps around to the start of the next loop.
#[derive(Debug)]
pub struct RowAssembler {
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

    /// Adds a row; returns the node sample it completed, if any.
    pub fn push(&mut self, gpu: GpuSample, now_ms: u64) -> Option<NodeSample> {
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
    pub fn flush(&mut self, now_ms: u64) -> Option<NodeSample> {
        (!self.pending.is_empty()).then(|| self.take(now_ms))
    }

    fn take(&mut self, now_ms: u64) -> NodeSample {
        NodeSample {
            t: now_ms,
            gpus: std::mem::take(&mut self.pending),
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
                   Not Active, Active, Not Active, Not Active, Not Active, 0, 5, 16, No";
        let g = parse_row(&cols, row).unwrap();
        assert_eq!(g.index, 3);
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
        let row = "0, GPU-x, Tesla V100, 5, 1, 10, 32000, 40, [N/A], 50, 250, 1300, Active, Not Active, Not Active, Not Active, Not Active, 0, 3, 16";
        let g = parse_row(&cols, row).unwrap();
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
        let g = |i| GpuSample {
            index: i,
            ..Default::default()
        };
        assert!(a.push(g(0), 1).is_none());
        assert_eq!(a.push(g(1), 1).unwrap().gpus.len(), 2);
        assert!(a.push(g(0), 2).is_none());
        // GPU 1 fell off the bus: the wrap to 0 completes the short sample.
        assert_eq!(a.push(g(0), 3).unwrap().gpus.len(), 1);
    }
}
