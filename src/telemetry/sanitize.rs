//! Range checks on every sample, from an agent or nvidia-smi alike: an implausible value becomes `null` with a
//! reason, strings and lists are bounded, and duplicate GPU indices are dropped. Applied by the agent before it
//! sends and by the jump host after it decodes, so a hostile or broken node cannot poison totals.

use super::board::MAX_AER_TEXT;
use super::fabric::{IbPort, NvLinks, MAX_HCAS, MAX_NVLINKS, MAX_PORTS_PER_HCA, MAX_RATE_GBPS};
use super::process::{GpuProcess, MAX_PROCESSES_PER_GPU};
use super::sample::{GpuError, GpuErrorKind, GpuSample, NodeSample, XidEvent};

/// Longest identity string kept (uuid, name, PCI bus id).
const MAX_ID_CHARS: usize = 128;
/// Longest message kept (XID text, error detail, node warning).
const MAX_TEXT_CHARS: usize = 200;
/// Most entries kept in any per-GPU list (errors, throttle reasons, XIDs).
const MAX_LIST: usize = 64;
/// Most node-level warnings kept.
const MAX_WARNINGS: usize = 16;
/// Hottest plausible reading; DCGM rejects memory temperatures above 200 °C as garbage.
const MAX_TEMP_C: u32 = 200;
/// No GPU draws or is limited to more than this.
const MAX_POWER_W: f64 = 5000.0;
const MAX_CLOCK_MHZ: u32 = 10_000;
/// 16 TiB in MiB: far beyond any GPU's memory.
const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
/// The last Unix millisecond an RFC 3339 time can name (9999-12-31T23:59:59.999Z): a later XID time is garbage
/// that no renderer could show.
const LATEST_MS: u64 = 253_402_300_799_999;
/// T.Limit margins live within a few tens of degrees of zero.
const TLIMIT_RANGE: std::ops::RangeInclusive<i32> = -100..=200;
/// nvml.h's recovery actions are a small enum (0-4, later bindings 0-7); room for more, not for garbage.
const MAX_RECOVERY_ACTION: u32 = 255;

/// HBM banks on any GPU: room for far more than the 3,072 an H200 reports, not for garbage.
const MAX_BANKS: u32 = 1 << 20;
/// The longest window a counter rise is measured over (the agent keeps at most a minute and a bit).
pub(super) const MAX_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Makes a node's string as fleetop keeps it: bounded, with terminal controls and bidi characters made
/// visible, so no output (table, CSV, prom, TUI, JSON) can carry them raw. A string that needs neither (the
/// usual case, every sample) is left as it is, without a copy.
pub(crate) fn make_inert(text: &mut String, max: usize) {
    let escaped = crate::text::escape(text);
    if matches!(escaped, std::borrow::Cow::Borrowed(_)) && text.len() <= max {
        return;
    }
    let safe = crate::text::bounded(&escaped, max);
    *text = safe;
}

impl NodeSample {
    /// Checks every GPU; keeps at most `max_gpus` GPUs and the first of any repeated index.
    pub fn sanitize(&mut self, max_gpus: usize) {
        if self.gpus.len() > max_gpus {
            self.warnings.push(format!(
                "node sent {} GPUs, more than the {max_gpus} accepted; the rest were dropped",
                self.gpus.len()
            ));
            self.gpus.truncate(max_gpus);
        }
        // At most 64 GPUs remain here, so a sorted copy of their indices finds repeats without a hash set.
        let mut indices: Vec<u32> = self.gpus.iter().map(|g| g.index).collect();
        indices.sort_unstable();
        let repeated = indices.windows(2).any(|w| w[0] == w[1]);
        let mut duplicates = Vec::new();
        if repeated {
            let mut seen = Vec::with_capacity(self.gpus.len());
            self.gpus.retain(|g| {
                let first = !seen.contains(&g.index);
                if first {
                    seen.push(g.index);
                } else {
                    duplicates.push(g.index);
                }
                first
            });
        }
        duplicates.dedup();
        for index in duplicates.into_iter().take(MAX_LIST) {
            self.warnings
                .push(format!("GPU index {index} reported more than once"));
        }
        for gpu in &mut self.gpus {
            gpu.sanitize();
        }
        self.warnings.truncate(MAX_WARNINGS);
        for w in &mut self.warnings {
            make_inert(w, MAX_TEXT_CHARS);
        }
        if let Some(list) = &mut self.sxid {
            bound_events(list);
        }
        bound_events(&mut self.unmatched_xid);
        if let Some(ports) = &mut self.ib {
            sanitize_ports(ports, &mut self.warnings);
        }
        if let Some(past) = &mut self.past {
            sanitize_past(past);
        }
    }
}

impl GpuSample {
    /// Drops implausible values to `None`, each with an `implausible` error naming it.
    pub fn sanitize(&mut self) {
        if let Some(links) = &mut self.nvlink {
            sanitize_links(links);
        }
        let mut rejected = Vec::new();
        let mut reject = |query: &str, shown: String| {
            rejected.push(GpuError {
                kind: GpuErrorKind::Implausible,
                query: query.into(),
                detail: shown,
            })
        };
        keep_if(
            &mut self.util_pct,
            |v| *v <= 100,
            "utilization.gpu",
            "%",
            &mut reject,
        );
        keep_if(
            &mut self.mem_util_pct,
            |v| *v <= 100,
            "utilization.memory",
            "%",
            &mut reject,
        );
        keep_if(
            &mut self.temp_c,
            |v| *v <= MAX_TEMP_C,
            "temperature.gpu",
            "°C",
            &mut reject,
        );
        keep_if(
            &mut self.mem_temp_c,
            |v| *v <= MAX_TEMP_C,
            "temperature.memory",
            "°C",
            &mut reject,
        );
        let watts = |v: &f64| v.is_finite() && (0.0..=MAX_POWER_W).contains(v);
        keep_if(&mut self.power_w, watts, "power.draw", "W", &mut reject);
        keep_if(
            &mut self.power_limit_w,
            watts,
            "power.limit",
            "W",
            &mut reject,
        );
        // -0.0 passes the range check; adding +0.0 makes it 0.0, so no output prints `-0`.
        for w in [&mut self.power_w, &mut self.power_limit_w]
            .into_iter()
            .flatten()
        {
            *w += 0.0;
        }
        keep_if(
            &mut self.sm_clock_mhz,
            |v| *v <= MAX_CLOCK_MHZ,
            "clocks.sm",
            "MHz",
            &mut reject,
        );
        keep_if(
            &mut self.mem_total_mib,
            |v| *v <= MAX_MEMORY_MIB,
            "memory.total",
            "MiB",
            &mut reject,
        );
        let total = self.mem_total_mib.unwrap_or(MAX_MEMORY_MIB);
        keep_if(
            &mut self.mem_used_mib,
            |v| *v <= total,
            "memory.used",
            "MiB",
            &mut reject,
        );
        keep_if(
            &mut self.pcie_gen,
            |v| *v <= 10,
            "pcie.link.gen",
            "",
            &mut reject,
        );
        keep_if(
            &mut self.pcie_width,
            |v| *v <= 64,
            "pcie.link.width",
            "",
            &mut reject,
        );
        for (field, name) in [
            (&mut self.temp_slowdown_c, "temperature.slowdown"),
            (&mut self.temp_shutdown_c, "temperature.shutdown"),
            (&mut self.mem_temp_max_c, "temperature.memory_max"),
        ] {
            keep_if(field, |v| *v <= MAX_TEMP_C, name, "°C", &mut reject);
        }
        for (field, name) in [
            (&mut self.tlimit_margin_c, "temperature.gpu.tlimit"),
            (&mut self.tlimit_shutdown_c, "tlimit.shutdown"),
            (&mut self.tlimit_slowdown_c, "tlimit.slowdown"),
            (&mut self.tlimit_mem_max_c, "tlimit.memory_max"),
            (&mut self.tlimit_gpu_max_c, "tlimit.gpu_max"),
        ] {
            keep_if(field, |v| TLIMIT_RANGE.contains(v), name, "°C", &mut reject);
        }
        self.sanitize_board(&mut reject);
        keep_if(
            &mut self.recovery_action,
            |v| *v <= MAX_RECOVERY_ACTION,
            "recovery_action",
            "",
            &mut reject,
        );
        self.errors.extend(rejected);
        self.errors.truncate(MAX_LIST);
        for e in &mut self.errors {
            make_inert(&mut e.query, MAX_ID_CHARS);
            make_inert(&mut e.detail, MAX_TEXT_CHARS);
        }
        for text in [
            &mut self.uuid,
            &mut self.name,
            &mut self.pci_bus_id,
            &mut self.serial,
            &mut self.vbios,
        ]
        .into_iter()
        .flatten()
        {
            make_inert(text, MAX_ID_CHARS);
        }
        if let Some(reasons) = &mut self.throttle {
            reasons.truncate(MAX_LIST);
            for r in reasons.iter_mut() {
                make_inert(r, MAX_ID_CHARS);
            }
        }
        if let Some(codes) = &mut self.xid {
            codes.truncate(MAX_LIST);
        }
        if let Some(events) = &mut self.xid_events {
            bound_events(events);
        }
        if let Some(processes) = &mut self.processes {
            sanitize_processes(processes);
        }
        if let Some(past) = &mut self.past {
            sanitize_past(past);
        }
    }
}

impl GpuSample {
    /// Range checks of the board values: a link beyond any PCIe generation or width, a window longer than the
    /// agent keeps or a violation longer than its window, a bank count beyond any GPU become `None`, reported
    /// through `reject`.
    fn sanitize_board(&mut self, reject: &mut impl FnMut(&str, String)) {
        for (value, name, max) in [
            (&mut self.pcie_max_gen, "pcie.link.gen.max", 10),
            (&mut self.pcie_max_width, "pcie.link.width.max", 64),
        ] {
            if let Some(v) = value.filter(|v| *v > max) {
                reject(name, v.to_string());
                *value = None;
            }
        }
        if let Some(r) = self.pcie_replay_rise.filter(|r| r.over_ms > MAX_WINDOW_MS) {
            reject("pcie.replay.rise", format!("over {} ms", r.over_ms));
            self.pcie_replay_rise = None;
        }
        if let Some(v) = self.clock_violation.filter(|v| {
            v.over_ms > MAX_WINDOW_MS
                || [v.power_ms, v.thermal_ms]
                    .into_iter()
                    .flatten()
                    .any(|ms| ms > v.over_ms)
        }) {
            reject(
                "clocks.violation",
                format!("{:?}/{:?} ms of {} ms", v.power_ms, v.thermal_ms, v.over_ms),
            );
            self.clock_violation = None;
        }
        if let Some(b) = self.remap_banks.filter(|b| {
            [b.max, b.high, b.partial, b.low, b.none]
                .iter()
                .fold(0u64, |sum, n| sum + u64::from(*n))
                > u64::from(MAX_BANKS)
        }) {
            reject("remapped_rows.histogram", format!("{b:?}"));
            self.remap_banks = None;
        }
        if let Some(aer) = &mut self.pcie_aer {
            if let Some(text) = &mut aer.last_text {
                make_inert(text, MAX_AER_TEXT);
            }
        }
    }
}

/// Bounds a journal summary from a node: entries, kinds and texts; unknown kinds are dropped.
fn sanitize_past(past: &mut Vec<super::past::PastEvent>) {
    use super::past::{KINDS, MAX_PAST, MAX_TEXT};
    past.retain(|p| KINDS.contains(&p.kind.as_str()));
    past.truncate(MAX_PAST);
    for p in past {
        if let Some(t) = &mut p.text {
            make_inert(t, MAX_TEXT);
        }
    }
}

/// Bounds the list and its strings; a used-memory figure beyond any GPU becomes unknown.
fn sanitize_processes(processes: &mut Vec<GpuProcess>) {
    processes.truncate(MAX_PROCESSES_PER_GPU);
    for p in processes {
        if p.used_mib.is_some_and(|m| m > MAX_MEMORY_MIB) {
            p.used_mib = None;
        }
        for text in [&mut p.user, &mut p.name].into_iter().flatten() {
            make_inert(text, MAX_ID_CHARS);
        }
        if p.pod_uid.as_ref().is_some_and(|u| {
            u.len() > MAX_ID_CHARS || !u.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }) {
            p.pod_uid = None;
        }
    }
}

fn bound_events(events: &mut Vec<XidEvent>) {
    events.truncate(MAX_LIST);
    for e in events {
        e.first_ms = e.first_ms.filter(|&t| t <= LATEST_MS);
        e.last_ms = e.last_ms.filter(|&t| t <= LATEST_MS);
        if let Some(t) = &mut e.text {
            make_inert(t, MAX_TEXT_CHARS);
        }
    }
}

/// Keeps `value` when `ok` holds, else drops it and reports it to `reject`.
fn keep_if<T: std::fmt::Display>(
    value: &mut Option<T>,
    ok: impl Fn(&T) -> bool,
    query: &str,
    unit: &str,
    reject: &mut impl FnMut(&str, String),
) {
    if let Some(v) = value.as_ref().filter(|v| !ok(v)) {
        let shown = format!("{v} {unit}");
        reject(query, shown.trim_end().to_string());
        *value = None;
    }
}

/// Sorts, bounds and cleans a node's InfiniBand ports: strings escaped and bounded, rates in range, each
/// port once.
fn sanitize_ports(ports: &mut Vec<IbPort>, warnings: &mut Vec<String>) {
    let limit = MAX_HCAS * MAX_PORTS_PER_HCA;
    if ports.len() > limit {
        warnings.push(format!(
            "node sent {} InfiniBand ports, more than the {limit} accepted; the rest were dropped",
            ports.len()
        ));
        ports.truncate(limit);
    }
    for p in ports.iter_mut() {
        make_inert(&mut p.hca, 32);
        for s in [
            p.hca_type.as_mut(),
            p.link_layer.as_mut(),
            p.fw_ver.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            make_inert(s, 32);
        }
        for state in [p.state.as_mut(), p.phys_state.as_mut()]
            .into_iter()
            .flatten()
        {
            state.rewrite(|text| make_inert(text, 32));
        }
        p.rate_gbps = p
            .rate_gbps
            .filter(|r| r.is_finite() && (0.0..=MAX_RATE_GBPS).contains(r));
        sanitize_ib_rise(&mut p.rose);
    }
    ports.sort_by(|a, b| a.hca.cmp(&b.hca).then(a.port.cmp(&b.port)));
    ports.dedup_by(|a, b| a.hca == b.hca && a.port == b.port);
}

/// At most [`MAX_NVLINKS`] links, each listed once, in order.
fn sanitize_links(links: &mut NvLinks) {
    links.total = links.total.min(MAX_NVLINKS as u32);
    let total = links.total;
    links.down.retain(|&l| l < total);
    links.down.sort_unstable();
    links.down.dedup();
    links.errors.retain(|e| e.link < total);
    links.errors.sort_by_key(|e| e.link);
    links.errors.dedup_by_key(|e| e.link);
    sanitize_nvlink_rise(&mut links.rose, total);
}

/// Keeps a rise plausible: an interval within [`super::fabric::MAX_OVER_MS`] (else the rise is unknown), links within
/// `total` and each once.
pub(crate) fn sanitize_nvlink_rise(rise: &mut Option<super::fabric::NvLinkRise>, total: u32) {
    if rise
        .as_ref()
        .is_some_and(|r| r.over_ms == 0 || r.over_ms > super::fabric::MAX_OVER_MS)
    {
        *rise = None;
    }
    if let Some(r) = rise {
        r.links.retain(|l| l.link < total);
        r.links.sort_by_key(|l| l.link);
        r.links.dedup_by_key(|l| l.link);
    }
}

/// Keeps a port's rise plausible: an interval within [`super::fabric::MAX_OVER_MS`], else unknown.
pub(crate) fn sanitize_ib_rise(rise: &mut Option<super::fabric::IbRise>) {
    if rise
        .as_ref()
        .is_some_and(|r| r.over_ms == 0 || r.over_ms > super::fabric::MAX_OVER_MS)
    {
        *rise = None;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostile_ports_are_bounded_and_cleaned() {
        let mut ports = vec![
            crate::telemetry::fabric::IbPort {
                hca: "mlx5_0\u{1b}[2J".into(),
                rate_gbps: Some(1e12),
                counters: crate::telemetry::fabric::IbCounters {
                    symbol_error: Some(2),
                    ..Default::default()
                },
                ..Default::default()
            };
            super::MAX_HCAS * super::MAX_PORTS_PER_HCA + 5
        ];
        let mut warnings = Vec::new();
        super::sanitize_ports(&mut ports, &mut warnings);
        assert_eq!(warnings.len(), 1);
        assert_eq!(ports.len(), 1, "repeats of one port are one port");
        assert!(!ports[0].hca.contains('\u{1b}'));
        assert_eq!(ports[0].rate_gbps, None);
        assert_eq!(ports[0].counters.symbol_error, Some(2));
    }

    use super::*;

    #[test]
    fn a_recovery_action_out_of_range_is_null_with_a_reason() {
        let mut gpu = GpuSample {
            recovery_action: Some(u32::MAX),
            ..Default::default()
        };
        gpu.sanitize();
        assert_eq!(gpu.recovery_action, None);
        assert_eq!(gpu.errors[0].query, "recovery_action");
        assert_eq!(gpu.errors[0].kind, GpuErrorKind::Implausible);
        let mut newer = GpuSample {
            recovery_action: Some(7),
            ..Default::default()
        };
        newer.sanitize();
        assert_eq!(
            newer.recovery_action,
            Some(7),
            "a later driver's value passes"
        );
    }

    #[test]
    fn implausible_values_become_null_with_a_reason() {
        let mut gpu = GpuSample {
            util_pct: Some(4_294_967_295),
            power_w: Some(f64::NAN),
            power_limit_w: Some(-5.0),
            mem_temp_c: Some(1_000_000),
            temp_c: Some(60),
            ..Default::default()
        };
        gpu.sanitize();
        assert_eq!(gpu.util_pct, None);
        assert_eq!(gpu.power_w, None);
        assert_eq!(gpu.power_limit_w, None);
        assert_eq!(gpu.mem_temp_c, None);
        assert_eq!(gpu.temp_c, Some(60));
        let queries: Vec<&str> = gpu.errors.iter().map(|e| e.query.as_str()).collect();
        assert_eq!(
            queries,
            [
                "utilization.gpu",
                "temperature.memory",
                "power.draw",
                "power.limit"
            ]
        );
        assert!(gpu
            .errors
            .iter()
            .all(|e| e.kind == GpuErrorKind::Implausible));
        assert_eq!(gpu.errors[1].detail, "1000000 °C");
    }

    #[test]
    fn duplicate_indices_and_excess_gpus_are_dropped_with_a_warning() {
        let gpu = |index| GpuSample {
            index,
            ..Default::default()
        };
        let mut sample = NodeSample {
            gpus: (0..8).map(|_| gpu(0)).chain([gpu(1)]).collect(),
            ..Default::default()
        };
        sample.sanitize(64);
        assert_eq!(sample.gpus.len(), 2);
        assert_eq!(sample.warnings, ["GPU index 0 reported more than once"]);
        let mut flood = NodeSample {
            gpus: (0..1000).map(gpu).collect(),
            ..Default::default()
        };
        flood.sanitize(64);
        assert_eq!(flood.gpus.len(), 64);
        assert!(flood.warnings[0].contains("1000 GPUs"));
    }

    #[test]
    fn hostile_processes_are_bounded_and_cleaned() {
        use crate::telemetry::process::ProcessKind;
        let process = |pid| GpuProcess {
            pid,
            kind: ProcessKind::Compute,
            used_mib: Some(u64::MAX),
            uid: Some(0),
            user: Some("root\x1b[2J".into()),
            name: Some("x".repeat(10_000)),
            slurm_job: Some(1),
            pod_uid: Some("../../etc".into()),
        };
        let mut gpu = GpuSample {
            processes: Some((0..1000).map(process).collect()),
            ..Default::default()
        };
        gpu.sanitize();
        let kept = gpu.processes.unwrap_or_default();
        assert_eq!(kept.len(), MAX_PROCESSES_PER_GPU);
        assert_eq!(kept[0].used_mib, None);
        assert_eq!(kept[0].user.as_deref(), Some("root\\x1b[2J"));
        assert!(kept[0]
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() <= MAX_ID_CHARS + 1));
        assert_eq!(kept[0].pod_uid, None);
        assert_eq!(kept[0].slurm_job, Some(1));
    }

    #[test]
    fn node_strings_are_made_inert() {
        let mut sample = NodeSample {
            gpus: vec![GpuSample {
                name: Some("H100\x1b]52;c;AAAA\x07\u{202e}".into()),
                ..Default::default()
            }],
            warnings: vec!["\x1b[2Jwiped".into()],
            ..Default::default()
        };
        sample.sanitize(64);
        assert_eq!(
            sample.gpus[0].name.as_deref(),
            Some("H100\\x1b]52;c;AAAA\\x07\\u{202e}")
        );
        assert_eq!(sample.warnings[0], "\\x1b[2Jwiped");
    }

    #[test]
    fn xid_times_past_year_9999_are_unknown() {
        let event = |first_ms, last_ms| XidEvent {
            code: 79,
            count: 1,
            first_ms,
            last_ms,
            ..Default::default()
        };
        let mut s = NodeSample {
            gpus: vec![GpuSample {
                xid: Some(vec![79]),
                xid_events: Some(vec![event(Some(u64::MAX), Some(LATEST_MS))]),
                ..Default::default()
            }],
            sxid: Some(vec![event(Some(LATEST_MS + 1), None)]),
            ..Default::default()
        };
        s.sanitize(64);
        let e = &s.gpus[0].xid_events.as_ref().unwrap()[0];
        assert_eq!(e.first_ms, None);
        assert_eq!(e.last_ms, Some(LATEST_MS), "the last writable time stays");
        assert_eq!(s.sxid.unwrap()[0].first_ms, None);
    }
}
