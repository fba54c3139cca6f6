//! The nvidia-smi CSV parser on real captured output (header with units, every field of the driver).

use fleetop::telemetry::smi_csv::{parse_row, Columns};
use fleetop::telemetry::GpuSample;

fn parse(name: &str) -> GpuSample {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/nvidia-smi/{name}.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut lines = text.lines();
    let columns = Columns::from_header(lines.next().unwrap());
    parse_row(&columns, lines.next().unwrap()).unwrap().gpu
}

#[test]
fn h100_under_load() {
    let g = parse("nvidia-h100-80gb-hbm3.load");
    assert_eq!(g.index, 0);
    assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(
        g.uuid.as_deref(),
        Some("GPU-00000000-0000-0000-0000-000000000000")
    );
    assert_eq!((g.util_pct, g.mem_util_pct), (Some(100), Some(11)));
    assert_eq!(
        (g.mem_used_mib, g.mem_total_mib),
        (Some(19818), Some(81559))
    );
    assert_eq!((g.temp_c, g.mem_temp_c), (Some(59), Some(54)));
    assert_eq!((g.power_w, g.power_limit_w), (Some(631.95), Some(700.0)));
    assert_eq!(g.sm_clock_mhz, Some(1980));
    assert_eq!(g.throttle, Some(vec![]));
    assert_eq!(g.ecc_uncorrected, Some(0));
    assert_eq!(
        (g.remapped_rows_pending, g.remapped_rows_failed),
        (Some(false), Some(false))
    );
    assert_eq!((g.pcie_gen, g.pcie_width), (Some(5), Some(16)));
    assert_eq!(g.xid, None, "nvidia-smi does not report XIDs");
}

#[test]
fn h100_idle_shows_the_idle_clock_reason_only_when_asked() {
    let g = parse("nvidia-h100-80gb-hbm3.idle");
    assert_eq!(
        (g.util_pct, g.temp_c, g.mem_temp_c),
        (Some(0), Some(41), Some(48))
    );
    assert_eq!(g.power_w, Some(69.85));
    assert_eq!(g.sm_clock_mhz, Some(345));
    assert_eq!(g.throttle.as_deref(), Some(&["gpu_idle".to_string()][..]));
}

#[test]
fn mig_mode_has_no_utilization() {
    let g = parse("nvidia-h100-mig.load");
    assert_eq!(
        (g.util_pct, g.mem_util_pct),
        (None, None),
        "[N/A] is null, never 0"
    );
    assert_eq!(g.remapped_rows_pending, None);
    assert_eq!(g.mem_used_mib, Some(11125));
    assert_eq!(g.power_w, Some(433.78));
}

#[test]
fn consumer_and_pcie_cards_have_gaps() {
    let rtx = parse("nvidia-geforce-rtx-2080-super.idle");
    assert_eq!(rtx.mem_temp_c, None, "bare N/A");
    assert_eq!(rtx.ecc_uncorrected, None);
    assert_eq!(
        rtx.throttle.as_deref(),
        Some(&["sw_power_cap".to_string()][..])
    );
    let l40s = parse("nvidia-l40s.load");
    assert_eq!(
        (l40s.util_pct, l40s.mem_temp_c, l40s.pcie_gen),
        (Some(9), None, Some(4))
    );
    let h200 = parse("nvidia-h200.load");
    assert_eq!(
        (h200.util_pct, h200.mem_used_mib, h200.temp_c),
        (Some(100), Some(32362), Some(52))
    );
}

#[test]
fn every_capture_parses() {
    for entry in std::fs::read_dir(format!(
        "{}/tests/fixtures/nvidia-smi",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let g = parse(&name);
            assert!(
                g.mem_total_mib.is_some() && g.temp_c.is_some(),
                "{name}: {g:?}"
            );
        }
    }
}
