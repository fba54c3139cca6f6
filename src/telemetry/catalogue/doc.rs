//! The catalogue as `docs/health.md` shows it: one table per kind, a row per resolution bucket, generated here so
//! the page and the verdicts cannot drift (a test compares the page's section with this text).

use super::{sxids, xids, Entry, Severity};

/// The lines between these markers in `docs/health.md` are [`render_markdown`]'s text.
pub const BEGIN: &str = "<!-- catalogue: generated from src/telemetry/catalogue, do not edit -->";
pub const END: &str = "<!-- catalogue: end -->";

/// Both tables, as they stand between [`BEGIN`] and [`END`].
pub fn render_markdown() -> String {
    let mut out = String::new();
    out += "| XID catalogue bucket | fleetop | XIDs |\n|---|---|---|\n";
    rows(&mut out, xids());
    out += "\n| SXid catalogue bucket | fleetop | SXids |\n|---|---|---|\n";
    rows(&mut out, sxids());
    out
}

/// One row per bucket, the most urgent first, codes in ranges (`96–105`).
fn rows(out: &mut String, entries: &[Entry]) {
    let mut buckets: Vec<(Severity, &str)> =
        entries.iter().map(|e| (e.severity, e.action)).collect();
    buckets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    buckets.dedup();
    for (severity, action) in buckets {
        let codes: Vec<u32> = entries
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.code)
            .collect();
        let words = super::bucket(action).map_or("", |(_, w)| w);
        let verdict = match severity {
            Severity::Crit => "crit",
            Severity::Warn => "warn",
            Severity::Info => "information",
        };
        *out += &format!("| `{action}` | {verdict}: {words} | {} |\n", ranges(&codes));
    }
}

/// `[1, 2, 3, 5]` → `1–3, 5`.
fn ranges(codes: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let mut j = i;
        while j + 1 < codes.len() && codes[j + 1] == codes[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => codes[i].to_string(),
            1 => format!("{}, {}", codes[i], codes[j]),
            _ => format!("{}–{}", codes[i], codes[j]),
        });
        i = j + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_runs() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1–3, 5, 7, 8");
        assert_eq!(ranges(&[]), "");
    }

    /// `docs/health.md` shows the catalogue this build judges by. To refresh the page after a catalogue update,
    /// paste the text this test prints between the markers.
    #[test]
    fn the_health_page_shows_the_catalogue_in_use() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/health.md");
        let page = std::fs::read_to_string(path).expect("docs/health.md");
        let section = page
            .split_once(BEGIN)
            .and_then(|(_, rest)| rest.split_once(END))
            .map(|(inside, _)| inside.trim_matches('\n'));
        let expected = render_markdown();
        assert_eq!(
            section,
            Some(expected.trim_matches('\n')),
            "docs/health.md's catalogue section is out of date; between {BEGIN} and {END} it should read:\n\n{expected}"
        );
    }
}
