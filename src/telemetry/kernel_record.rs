//! Kernel log record headers: the `/dev/kmsg` fields, `dmesg` stamps (also `-r`, `-x`, `--ctime`, ISO) and a
//! journal's or syslog's time, host and `kernel:` tag, stripped to leave the kernel's message as it printed it.

/// One kernel log line with its boot-relative time, when it had one.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub usec_since_boot: Option<u64>,
    /// The kernel's message: the text after the record's header (`/dev/kmsg` fields, a `dmesg` time stamp, a
    /// journal's time, host and `kernel:` tag).
    pub text: &'a str,
}

/// Reads a line as a `/dev/kmsg` record (`pri,seq,usec,flags;text`), a `dmesg` line (`[  123.456789] text`,
/// also with `dmesg -r`'s `<6>`, `dmesg -x`'s `kern  :err   : `, `--ctime` or ISO stamps), a journal or
/// syslog line (`Aug 30 11:43:09 host kernel: text`) or plain text. `None` for the key=value continuation
/// lines `/dev/kmsg` puts after a record, and for records the header shows the kernel did not write: a
/// facility other than `kern` (0). Userspace writing to `/dev/kmsg` gets `LOG_USER` unless it names a
/// facility, precisely so that kernel messages can be told apart (kernel/printk/printk.c, `devkmsg_write`).
pub fn record(line: &str) -> Option<Record<'_>> {
    if line.starts_with(' ') {
        return None;
    }
    if let Some((head, text)) = line.split_once(';') {
        let mut fields = head.split(',');
        let pri = fields.next().map(str::parse::<u32>);
        let seq = fields.next().map(str::parse::<u64>);
        let usec = fields.next().and_then(|u| u.parse::<u64>().ok());
        if let (Some(Ok(pri)), Some(Ok(_)), Some(usec)) = (pri, seq, usec) {
            return (pri >> 3 == 0).then_some(Record {
                usec_since_boot: Some(usec),
                text,
            });
        }
    }
    let mut rest = line;
    // `dmesg -r`: the raw priority, facility included.
    if let Some((pri, after)) = rest
        .strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .and_then(|(n, after)| Some((n.parse::<u32>().ok()?, after)))
    {
        if pri >> 3 != 0 {
            return None;
        }
        rest = after;
    }
    // `dmesg -x`: `kern  :info  : `; another facility's label stays and fails the prefix test.
    if let Some(after) = rest.strip_prefix("kern").and_then(|r| {
        let (level, after) = r.trim_start().strip_prefix(':')?.split_once(':')?;
        level
            .trim()
            .bytes()
            .all(|b| b.is_ascii_lowercase())
            .then_some(after)
    }) {
        rest = after.trim_start();
    }
    let (mut usec, after) = time_stamp(rest);
    rest = after;
    if let Some(after) = kernel_tag(rest) {
        rest = after;
        if usec.is_none() {
            (usec, rest) = time_stamp(rest);
        }
    }
    Some(Record {
        usec_since_boot: usec,
        text: rest,
    })
}

/// Strips one leading time stamp: `[  123.456789] ` (boot-relative, returned), `[Fri Aug 30 11:43:09 2024] `,
/// a syslog `Aug 30 11:43:09[.frac] `, journalctl's `Fri 2024-08-30 11:43:09 UTC `, an ISO 8601 or a Unix
/// time token.
fn time_stamp(line: &str) -> (Option<u64>, &str) {
    if let Some((stamp, text)) = line.strip_prefix('[').and_then(|r| r.split_once(']')) {
        if let Some(usec) = seconds_to_usec(stamp.trim()) {
            return (Some(usec), text.trim_start());
        }
        let words: Vec<&str> = stamp.split_whitespace().collect();
        let ctime = words.len() == 5
            && words[4].len() == 4
            && words[4].bytes().all(|b| b.is_ascii_digit())
            && is_clock(words[3]);
        return if ctime {
            (None, text.trim_start())
        } else {
            (None, line)
        };
    }
    let mut words = line.splitn(5, ' ');
    let w: Vec<&str> = words.by_ref().take(4).collect();
    let skip = |n: usize| {
        let len: usize = w[..n].iter().map(|s| s.len() + 1).sum();
        line.get(len..).unwrap_or("")
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `Aug  5 …`: syslog pads the day with a space, which splits as an empty word.
    let w0 = w.first().copied().unwrap_or("");
    if MONTHS.contains(&w0) {
        let day_at = if w.get(1) == Some(&"") { 2 } else { 1 };
        if w.len() > day_at + 1
            && w[day_at].bytes().all(|b| b.is_ascii_digit())
            && is_clock(w[day_at + 1])
        {
            return (None, skip(day_at + 2));
        }
    }
    if w.len() == 4 && is_date(w[1]) && is_clock(w[2]) {
        return (None, skip(4));
    }
    let iso = w0.get(..10).is_some_and(is_date) && w0.get(10..).is_some_and(|t| t.starts_with('T'));
    let unix = w0.split_once('.').is_some_and(|(s, f)| {
        s.len() >= 9 && !f.is_empty() && (s.bytes().chain(f.bytes())).all(|b| b.is_ascii_digit())
    });
    if (iso || unix) && w.len() > 1 {
        return (None, skip(1));
    }
    (None, line)
}

/// `11:43:09`, with optional fraction.
fn is_clock(word: &str) -> bool {
    let hms = word.split(['.', ',']).next().unwrap_or("");
    hms.len() == 8
        && hms.split(':').count() == 3
        && hms
            .split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `2024-08-30`.
fn is_date(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() == 3
        && [4, 2, 2] == [parts[0].len(), parts[1].len(), parts[2].len()]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// A journal's or syslog's `host kernel: ` (or a bare `kernel: `) tag, which only the kernel's messages carry.
fn kernel_tag(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix("kernel: ") {
        return Some(rest);
    }
    let (host, rest) = text.split_once(' ')?;
    let plausible_host = !host.is_empty() && host.len() <= 253 && !host.contains([':', '[', ']']);
    plausible_host
        .then(|| rest.strip_prefix("kernel: "))
        .flatten()
}

/// `123.456789` → microseconds.
fn seconds_to_usec(stamp: &str) -> Option<u64> {
    let (secs, frac) = stamp.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let micros: u64 = format!("{frac:0<6}")[..6].parse().ok()?;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsg_dmesg_and_plain_lines() {
        let r = record("3,1234,5000000,-;NVRM: Xid (PCI:0000:18:00): 79, x").unwrap();
        assert_eq!(r.usec_since_boot, Some(5_000_000));
        assert!(r.text.starts_with("NVRM"));
        let r = record("[  123.456789] NVRM: hello").unwrap();
        assert_eq!(r.usec_since_boot, Some(123_456_789));
        assert_eq!(r.text, "NVRM: hello");
        let r = record("[Fri Aug 30 11:43:09 2024] NVRM: x").unwrap();
        assert_eq!(r.usec_since_boot, None);
        assert_eq!(record(" SUBSYSTEM=pci"), None);
    }

    #[test]
    fn every_header_the_driver_s_lines_come_with_is_read() {
        let xid = "NVRM: Xid (PCI:0000:18:00): 79, GPU has fallen off the bus.";
        for (line, usec) in [
            (format!("4,77,5000000,-,caller=T12;{xid}"), Some(5_000_000)),
            (format!("<4>[    5.000000] {xid}"), Some(5_000_000)),
            (
                format!("kern  :warn  : [    5.000000] {xid}"),
                Some(5_000_000),
            ),
            (format!("[Fri Aug 30 11:43:09 2024] {xid}"), None),
            (format!("2024-08-30T11:43:09,123456+00:00 {xid}"), None),
            (format!("Aug 30 11:43:09 gpu01 kernel: {xid}"), None),
            (
                format!("Aug  5 11:43:09 gpu01 kernel: [    5.000000] {xid}"),
                Some(5_000_000),
            ),
            (
                format!("Fri 2024-08-30 11:43:09 UTC gpu01 kernel: {xid}"),
                None,
            ),
            (
                format!("2024-08-30T11:43:09+0000 gpu01 kernel: {xid}"),
                None,
            ),
            (format!("1725018189.123456 gpu01 kernel: {xid}"), None),
            (
                format!("[   25.948274] gpu01 kernel: {xid}"),
                Some(25_948_274),
            ),
            (format!("kernel: {xid}"), None),
            (xid.to_string(), None),
        ] {
            let r = record(&line).unwrap();
            assert_eq!(r.text, xid, "{line}");
            assert_eq!(r.usec_since_boot, usec, "{line}");
        }
    }
}
