//! Text on its way to an operator's terminal or a file they read: control, C1 and bidi characters are made
//! visible (`\x1b`, `\u{202e}`) in one place, and a closed stdout ends output quietly instead of panicking.
//! The model is OpenSSH's `utf8.c`, which makes server-sent strings safe before printing them.

use std::borrow::Cow;
use std::io::Write;

/// Characters that change how a terminal shows what follows: C0 and C1 controls, DEL, bidi overrides and
/// isolates, and the Unicode line separators.
pub(crate) fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn escaped(c: char) -> String {
    if (c as u32) < 0x100 {
        format!("\\x{:02x}", c as u32)
    } else {
        format!("\\u{{{:04x}}}", c as u32)
    }
}

/// Makes every dangerous character visible, newlines and tabs included: for one field or one line.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, false)
}

/// Like [`escape`] but keeps newlines: for a whole rendered output whose fields were escaped already.
pub(crate) fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_except(text, true)
}

/// True when `text` holds a dangerous character (a newline too, unless `keep_newline`). Plain ASCII, what nearly
/// every output is, is checked a byte at a time in a loop the compiler vectorises: a snapshot of 100,000 GPUs
/// is tens of megabytes.
fn has_dangerous(text: &str, keep_newline: bool) -> bool {
    let bytes = text.as_bytes();
    let ascii_end = bytes.iter().position(|&b| b >= 0x80).unwrap_or(bytes.len());
    let ascii = &bytes[..ascii_end];
    let control = if keep_newline {
        ascii.iter().fold(false, |hit, &b| {
            hit | ((b < 0x20 && b != b'\n') | (b == 0x7f))
        })
    } else {
        ascii
            .iter()
            .fold(false, |hit, &b| hit | ((b < 0x20) | (b == 0x7f)))
    };
    // The first byte at or above 0x80 starts a character: every byte before it is ASCII.
    control
        || text[ascii_end..]
            .chars()
            .any(|c| is_dangerous(c) && !(keep_newline && c == '\n'))
}

fn escape_except(text: &str, keep_newline: bool) -> Cow<'_, str> {
    if !has_dangerous(text, keep_newline) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_dangerous(c) && !(keep_newline && c == '\n') {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` escaped and cut to at most `max` characters (then `…`): for quoting a value in a message, where a
/// value from a file may be megabytes long.
pub(crate) fn cut(text: &str, max: usize) -> String {
    bounded(&escape(text), max)
}

/// Cuts `text` to at most `max` characters.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// JSON as serde_json writes it leaves C1 controls, bidi overrides and line separators raw inside strings;
/// this writes them as `\uXXXX` escapes, which any JSON reader decodes back to the same text.
pub(crate) fn json_safe(json: String) -> String {
    if !has_dangerous(&json, true) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_dangerous(c) && c != '\n' {
            // Outside strings serde_json writes only ASCII punctuation and newlines: every hit is inside one.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `text` to stdout with newlines kept and everything else dangerous escaped. False when stdout is
/// closed (`fleetop … | head -1`): the reader went away, which ends output normally. False too when the
/// write failed otherwise (a full disk), which [`stdout_failure`] then reports.
pub fn print(text: &str) -> bool {
    print_bytes(escape_lines(text).as_bytes())
}

/// Writes bytes that are fleetop's own (generated completions, man pages) to stdout as they are, flushed;
/// false as for [`print`].
pub(crate) fn print_bytes(bytes: &[u8]) -> bool {
    let mut out = std::io::stdout().lock();
    stdout_written(out.write_all(bytes).and_then(|()| out.flush()))
}

/// The first failed write to stdout that was not a closed pipe, kept for the exit status.
static STDOUT_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Every write to stdout ends here: true when it was written. A closed pipe is the reader going away (`| head`)
/// and ends output quietly; any other error (`ENOSPC`, `EIO`) means the output is lost or cut, and is kept
/// so that the command fails instead of reading as success.
pub fn stdout_written(result: std::io::Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            let mut first = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
            false
        }
    }
}

/// Why stdout could not be written, if a write failed for any reason but a closed pipe.
pub(crate) fn stdout_failure() -> Option<String> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// A message line to stderr, escaped like stdout; a closed stderr is ignored, never a panic (as
/// `eprintln!` would be). Messages may quote what a node or a backend said.
pub fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(escape_lines(&format!("{text}\n")).as_bytes());
}

/// [`print`] with a newline after `text`.
pub fn println(text: &str) -> bool {
    print(&format!("{text}\n"))
}

/// The last millisecond of year 9999, the latest time a calendar (RFC 3339) can write.
pub(crate) const LAST_DATE_MS: u64 = 253_402_300_799_999;

/// `ms` since 1970 as RFC 3339 to the second (`2026-11-27T03:12:00Z`); past year 9999, which no calendar
/// writes, "N ms after 1970 (not a date)". Times come from nodes, files and stores: saying one never panics
/// (humantime refuses such a date, and `to_string` would turn the refusal into a panic).
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    if ms > LAST_DATE_MS {
        return format!("{ms} ms after 1970 (not a date)");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_character_boundaries() {
        assert_eq!(bounded("héllo", 2), "hé…");
        assert_eq!(bounded("ok", 2), "ok");
    }

    #[test]
    fn terminal_controls_and_bidi_are_made_visible() {
        assert_eq!(escape("ok"), "ok");
        assert_eq!(
            escape("\x1b]52;c;cHduZWQ=\x07\u{9b}2J\u{202e}x\ny"),
            "\\x1b]52;c;cHduZWQ=\\x07\\x9b2J\\u{202e}x\\x0ay"
        );
        assert_eq!(escape_lines("a\x1b[2J\nb"), "a\\x1b[2J\nb");
    }

    proptest::proptest! {
        #[test]
        fn the_byte_scan_finds_what_a_character_scan_finds(text in "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202a}-\\u{202e}\\u{2028}\\n]){0,40}") {
            let slow = text.chars().any(|c| is_dangerous(c) && c != '\n');
            proptest::prop_assert_eq!(has_dangerous(&text, true), slow);
            proptest::prop_assert_eq!(has_dangerous(&text, false), text.chars().any(is_dangerous));
        }
    }

    #[test]
    fn pretty_json_with_newlines_only_is_kept_as_it_is() {
        let pretty = "{\n  \"a\": 1\n}".to_string();
        let ptr = pretty.as_ptr();
        let kept = json_safe(pretty);
        assert_eq!(kept.as_ptr(), ptr, "no copy of a safe document");
        assert_eq!(kept, "{\n  \"a\": 1\n}");
    }

    #[test]
    fn json_keeps_its_meaning() {
        let raw = serde_json::to_string(&serde_json::json!({"n": "a\u{202e}b\u{9b}c\n"})).unwrap();
        let safe = json_safe(raw);
        assert!(
            !safe.contains('\u{202e}') && !safe.contains('\u{9b}'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["n"], "a\u{202e}b\u{9b}c\n");
    }

    #[test]
    fn a_time_past_year_9999_is_said_not_panicked_on() {
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339_ms(super::LAST_DATE_MS),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            super::rfc3339_ms(u64::MAX),
            format!("{} ms after 1970 (not a date)", u64::MAX)
        );
    }
}
