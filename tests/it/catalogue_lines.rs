//! Real XID and SXid lines from public reports (tests/fixtures/kernel-log, sources in its SOURCES.md), judged by
//! their code through NVIDIA's catalogue as fleetop ships it (src/telemetry/catalogue).

use fleetop::telemetry::catalogue::{self, Severity};
use fleetop::telemetry::kernel_log::{find, record, Found};

fn real_lines() -> Vec<(&'static str, u32)> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kernel-log/real-lines.txt"),
    )
    .unwrap();
    text.lines()
        .filter_map(record)
        .filter_map(|r| match find(r.text)? {
            Found::Xid { code, .. } => Some(("xid", code)),
            Found::SXid { code, .. } => Some(("sxid", code)),
        })
        .collect()
}

#[test]
fn real_lines_are_judged_by_their_code() {
    let lines = real_lines();
    let judged = |kind: &str, code: u32| {
        let entry = match kind {
            "xid" => catalogue::xid(code),
            _ => catalogue::sxid(code),
        };
        entry.map(|e| (e.severity, e.action))
    };
    for &(kind, code) in &lines {
        assert!(
            judged(kind, code).is_some(),
            "{kind} {code} from a real line is in the catalogue"
        );
    }
    let expected = [
        // A user's bad kernel (leptonai/gpud #46): restart the application, information.
        ("xid", 13, Severity::Info, "RESTART_APP"),
        // CTX SWITCH TIMEOUT (same report): the catalogue resets the GPU.
        ("xid", 109, Severity::Crit, "RESET_GPU"),
        // Contained ECC error (gpud #1174): the application was stopped, the GPU is usable.
        ("xid", 94, Severity::Info, "RESTART_APP"),
        // Fallen off the bus (NVSentinel #155): reboot.
        ("xid", 79, Severity::Crit, "RESTART_BM"),
        ("xid", 32, Severity::Info, "RESTART_APP"),
        // Cleanup after XID 149 (open-gpu-kernel-modules #1150): the earlier XID carries the verdict.
        ("xid", 45, Severity::Info, "WORKFLOW_XID_45"),
        // MINION non-fatal at boot (nvtrust #124): ignore.
        ("sxid", 22013, Severity::Info, "IGNORE"),
    ];
    for (kind, code, severity, action) in expected {
        assert!(
            lines.contains(&(kind, code)),
            "the fixture has {kind} {code}"
        );
        assert_eq!(
            judged(kind, code),
            Some((severity, action)),
            "{kind} {code}"
        );
    }
}

#[test]
fn the_catalogue_is_whole() {
    assert_eq!(catalogue::xids().len(), 162);
    assert_eq!(catalogue::sxids().len(), 398);
    assert_eq!(catalogue::xid(4242), None);
    assert_eq!(
        catalogue::sxid(12028).map(|e| e.action),
        Some("RESET_FABRIC")
    );
}
