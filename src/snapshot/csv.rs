//! CSV: a header, then one row per GPU (and one row with empty GPU fields for a node that sent none).

use std::fmt::Display;

use super::report::Report;
use crate::fleet::view::{GpuView, NodeView};

const HEADER: &str = "node,cabinet,tenant,state,node_health,source,sample_age_ms,error,operations,operations_reason,\
operations_by,gpu,uuid,name,util_pct,mem_util_pct,\
mem_used_mib,mem_total_mib,temp_c,mem_temp_c,power_w,power_limit_w,sm_clock_mhz,throttle,ecc_uncorrected,\
remapped_rows_pending,xid,gpu_health,reasons,nvlink_active,nvlink_total,recovery_action,ib_ports,ib_ports_up,\
ib_slowest_up_gbps";

/// One cell: RFC 4180 quoting, only when needed. A cell a spreadsheet would take for a formula (a GPU named
/// `=HYPERLINK(…)`) starts with `'`, as OWASP's CSV-injection guidance says, so it opens as text. A plain
/// decimal number (`-12.5`, as fleetop writes numbers) is a number to a spreadsheet, never a formula, and
/// stays one.
pub(crate) fn field(value: &str) -> String {
    let is_number = {
        let digits = value.strip_prefix('-').unwrap_or(value);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        [whole, fraction]
            .iter()
            .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r', '\0']) && !is_number;
    let value = if formula {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.into_owned()
    }
}

fn opt<T: Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn gpu_fields(g: Option<&GpuView>) -> Vec<String> {
    let Some(g) = g else {
        return vec![String::new(); 21];
    };
    let links = g
        .sample
        .nvlink
        .as_ref()
        .filter(|l| l.states_known())
        .map(|l| (l.active(), l.total));
    let s = g.sample;
    vec![
        s.index.to_string(),
        opt(s.uuid.as_deref()),
        opt(s.name.as_deref()),
        opt(s.util_pct),
        opt(s.mem_util_pct),
        opt(s.mem_used_mib),
        opt(s.mem_total_mib),
        opt(s.temp_c),
        opt(s.mem_temp_c),
        opt(s.power_w),
        opt(s.power_limit_w),
        opt(s.sm_clock_mhz),
        s.throttle.as_ref().map(|t| t.join(" ")).unwrap_or_default(),
        opt(s.ecc_uncorrected),
        opt(s.remapped_rows_pending),
        s.xid
            .as_ref()
            .map(|x| x.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        g.verdict.health.as_str().to_string(),
        g.verdict.reasons.join("; "),
        opt(links.map(|l| l.0)),
        opt(links.map(|l| l.1)),
        // The driver's recovery action by name; empty when not reported.
        opt(crate::telemetry::recovery::of(s).map(|a| a.name())),
    ]
}

/// A node's InfiniBand summary, appended to each of its rows: ports, ports up, the slowest up port's rate.
fn ib_fields(v: &NodeView) -> Vec<String> {
    let Some(ports) = v.sample.and_then(|s| s.ib.as_deref()) else {
        return vec![String::new(); 3];
    };
    let up = || ports.iter().filter(|p| p.is_up());
    vec![
        ports.len().to_string(),
        up().count().to_string(),
        opt(up()
            .filter_map(|p| p.rate_gbps)
            .min_by(f64::total_cmp)
            .map(crate::telemetry::fabric::gbps)),
    ]
}

fn node_fields(v: &NodeView) -> Vec<String> {
    vec![
        v.name.to_string(),
        v.cabinet.to_string(),
        v.tenant.clone().unwrap_or_default(),
        v.state.as_str().to_string(),
        v.verdict.health.as_str().to_string(),
        opt(v.source.map(|s| s.as_str())),
        opt(v.sample_age.map(|a| a.as_millis())),
        v.error.clone().unwrap_or_default(),
        // Empty: not checked.
        opt(v.operations.as_ref().map(|o| o.activity.as_str())),
        opt(v.operations.as_ref().and_then(|o| o.reason.as_deref())),
        opt(v.operations.as_ref().and_then(|o| o.by.as_deref())),
    ]
}

pub fn render(report: &Report) -> String {
    // Several sites (`--context all`): a `site` column first; one site's CSV keeps its columns.
    let sited = !report.sites.is_empty();
    let mut out = String::from(if sited { "site," } else { "" });
    out.push_str(HEADER);
    // Where a scheduler was asked: a last `jobs` column, each node's count (empty: not asked about it).
    if report.workload.is_some() {
        out.push_str(",jobs");
    }
    out.push('\n');
    for v in &report.nodes {
        let site = sited.then(|| {
            crate::inventory::site_of(v.name)
                .unwrap_or_default()
                .to_string()
        });
        let node: Vec<String> = site.into_iter().chain(node_fields(v)).collect();
        let ib = ib_fields(v);
        let jobs = report.workload.map(|_| opt(report.jobs(v).map(<[_]>::len)));
        let gpus: Vec<Option<&GpuView>> = if v.gpus.is_empty() {
            vec![None]
        } else {
            v.gpus.iter().map(Some).collect()
        };
        for g in gpus {
            let row: Vec<String> = node
                .iter()
                .cloned()
                .chain(gpu_fields(g))
                .chain(ib.iter().cloned())
                .chain(jobs.clone())
                .map(|f| field(&f))
                .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(super::field("plain"), "plain");
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    /// Issue #25 (5): text a spreadsheet would run as a formula opens as text; numbers stay numbers.
    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        use super::field;
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for (cell, shown) in [
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "\"'\r=1\""),
            ("\0=1", "'\0=1"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("-1.", "'-1."),
            ("-inf", "'-inf"),
            ("-1e5", "'-1e5"),
            ("-12.5", "-12.5"),
            ("-3", "-3"),
            ("0.0", "0.0"),
            ("42", "42"),
            ("c001n1", "c001n1"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(field(cell), shown, "{cell:?}");
        }
    }
}
