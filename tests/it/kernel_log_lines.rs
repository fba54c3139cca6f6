//! The kernel log parser on real XID and SXid lines from public reports (tests/fixtures/kernel-log).

use fleetop::telemetry::kernel_log::{find, record, Found};

#[test]
fn every_real_line_is_found_with_its_code_and_message() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kernel-log/real-lines.txt"),
    )
    .unwrap();
    let found: Vec<String> = text
        .lines()
        .filter_map(record)
        .filter_map(|r| find(r.text))
        .map(|f| match f {
            Found::Xid { pci, code, text } => format!("xid {pci} {code} {text}"),
            Found::SXid {
                pci, code, fatal, ..
            } => format!("sxid {pci} {code} {fatal:?}"),
        })
        .collect();
    assert_eq!(
        found,
        [
            "xid 0000:cb:00 13 Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter",
            "xid 0000:cb:00 109 Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005",
            "xid 0000:9b:00 94 Contained ECC error",
            "xid 0000:44:00 79 GPU has fallen off the bus",
            "xid 0000:01:00 32 Channel ID 00000000 intr 00004000",
            "xid 0000:dc:00 45 Ch 00000001 caused by previous Xid 149",
            "sxid 0000:02:00 22013 Some(false)",
        ]
    );
}
