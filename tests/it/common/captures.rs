//! Captured real output under `tests/fixtures/`: nvidia-smi rows reshaped for a fleet, and lookups in
//! snapshot documents.

use std::fs;
use std::path::Path;

/// Projects a captured `--format=csv` (header with units) row onto the columns fleetop asks for,
/// printing it the way `--format=csv,noheader,nounits` would.
pub fn noheader_row(capture: &str, fields: &[String]) -> String {
    let mut lines = capture.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| h.split(" [").next().unwrap().trim().to_string())
        .collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    fields
        .iter()
        .map(|f| {
            let alt = f
                .replace("clocks_throttle_reasons.", "clocks_event_reasons.")
                .replace("clocks.sm", "clocks.current.sm");
            let i = header
                .iter()
                .position(|h| h == f || *h == alt)
                .unwrap_or_else(|| panic!("no column {f}"));
            let cell = row[i];
            // nounits: "631.95 W" prints as "631.95"; bracketed no-values stay as they are.
            match cell.split(' ').next() {
                Some(number) if number.parse::<f64>().is_ok() => number.to_string(),
                _ => cell.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` rows as nvidia-smi prints them for an `n`-GPU node, from one captured `index, uuid, …` row: each row
/// gets its own index and its own UUID (the capture's, with the last two digits replaced by the index), as
/// distinct boards have.
pub fn gpu_rows(row: &str, n: u32) -> String {
    let mut cells = row.splitn(3, ',');
    let (_, uuid, rest) = (
        cells.next().unwrap_or(""),
        cells.next().unwrap_or("").trim(),
        cells.next().unwrap_or(""),
    );
    let stem = &uuid[..uuid.len().saturating_sub(2)];
    (0..n)
        .map(|i| format!("{i}, {stem}{i:02x},{rest}\n"))
        .collect()
}

pub fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// The node called `name` in a `snapshot --format json` document.
pub fn node<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {doc:#}"))
}
