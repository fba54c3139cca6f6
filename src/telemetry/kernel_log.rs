//! Kernel log parsing: `NVRM: Xid` and NVSwitch `SXid` lines, from `/dev/kmsg` records or `dmesg` and
//! `journalctl -k` text. Only messages that *begin* with the driver's prefix count, as the driver prints
//! them: the kernel's own reports quote text a user chooses (the segfault report names the file mapped at the
//! faulting address), so a match anywhere else in a line would let any tenant forge an XID.

pub(crate) use super::xid_tally::Tally;

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

/// A PCI address as the kernel log and NVML name it: domain, bus, device (function ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u32,
    pub device: u32,
}

impl PciAddr {
    /// Parses `0000:18:00`, `0000:18:00.0` and NVML's `00000000:18:00.0`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(':');
        let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
        let bus = u32::from_str_radix(parts.next()?, 16).ok()?;
        let device_fn = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let device = device_fn.split('.').next()?;
        let device = u32::from_str_radix(device, 16).ok()?;
        (bus <= 0xff && device <= 0x1f).then_some(PciAddr {
            domain,
            bus,
            device,
        })
    }
}

impl std::fmt::Display for PciAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}",
            self.domain, self.bus, self.device
        )
    }
}

/// What a kernel log line reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Found<'a> {
    /// A GPU XID: `NVRM: Xid (PCI:0000:18:00): 79, pid=…, name=…, GPU has fallen off the bus.`
    Xid {
        pci: PciAddr,
        code: u32,
        text: &'a str,
    },
    /// An NVSwitch SXid: `nvidia-nvswitch1: SXid (PCI:0000:02:00.0): 22013, Non-fatal, Link 00 …`.
    SXid {
        pci: PciAddr,
        code: u32,
        fatal: Option<bool>,
        text: &'a str,
    },
}

/// The prefix the GPU driver puts before every message it prints.
const XID_PREFIX: &str = "NVRM: Xid (";

/// Finds an XID or SXid in a kernel message, which must begin as the driver prints it: `NVRM: Xid (` for GPUs
/// (`NV_PRINTF`'s `NVRM: ` prefix), `nvidia-nvswitchN: SXid (` for NVSwitches (open-gpu-kernel-modules,
/// `NVSWITCH_PRINT_SXID`: `"nvidia-%s: SXid (PCI:…): %05d, "`). The `Severity …` and `Data {…}` lines the
/// NVSwitch driver prints after an SXid's first line are details of the same event, not events.
pub fn find(text: &str) -> Option<Found<'_>> {
    if let Some(after) = text.strip_prefix(XID_PREFIX) {
        let (pci, code, rest) = parse_after(after)?;
        return Some(Found::Xid {
            pci,
            code,
            text: message(rest),
        });
    }
    let after = text.strip_prefix("nvidia-nvswitch")?;
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let after = after[digits..].strip_prefix(": SXid (")?;
    let (pci, code, rest) = parse_after(after)?;
    let rest = rest.trim_start();
    if rest.starts_with("Severity ") || rest.starts_with("Data {") {
        return None;
    }
    let fatal = if rest.starts_with("Non-fatal") {
        Some(false)
    } else if rest.starts_with("Fatal") {
        Some(true)
    } else {
        None
    };
    Some(Found::SXid {
        pci,
        code,
        fatal,
        text: rest,
    })
}

/// `PCI:0000:18:00): 79, rest` (the `PCI:` is missing in very old drivers) → address, code, rest. The
/// address is hex digits, `:` and `.` only, and the code follows at once, as the driver prints them.
fn parse_after(s: &str) -> Option<(PciAddr, u32, &str)> {
    let s = s.strip_prefix("PCI:").unwrap_or(s);
    let (addr, rest) = s.split_once(')')?;
    if !addr
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return None;
    }
    let pci = PciAddr::parse(addr)?;
    let rest = rest.strip_prefix(':')?.trim_start_matches(' ');
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let code: u32 = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with(',')) {
        return None;
    }
    Some((pci, code, rest.strip_prefix(',').unwrap_or(rest)))
}

/// The driver's message without the `pid=…` and `name=…` fields newer and older drivers put first.
fn message(rest: &str) -> &str {
    let mut rest = rest.trim_start();
    while rest.starts_with("pid=") || rest.starts_with("name=") {
        rest = match rest.split_once(',') {
            Some((_, after)) => after.trim_start(),
            None => "",
        };
    }
    rest.trim_end()
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
    fn finds_xids_in_old_and_new_forms() {
        let old = "NVRM: Xid (PCI:0000:9b:00): 94, pid=1234, name=python3, Contained ECC error";
        assert_eq!(
            find(old),
            Some(Found::Xid {
                pci: PciAddr::parse("0000:9b:00").unwrap(),
                code: 94,
                text: "Contained ECC error"
            })
        );
        let new = "NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception";
        assert!(matches!(
            find(new),
            Some(Found::Xid {
                code: 13,
                text: "Graphics SM Warp Exception",
                ..
            })
        ));
        let bare = "NVRM: Xid (PCI:0000:44:00): 79, GPU has fallen off the bus";
        assert!(matches!(
            find(bare),
            Some(Found::Xid {
                code: 79,
                text: "GPU has fallen off the bus",
                ..
            })
        ));
        assert_eq!(find("NVRM: Xid (PCI:zz): 79"), None);
        assert_eq!(find("nothing here"), None);
    }

    #[test]
    fn sxid_headers_count_and_details_do_not() {
        let head = "nvidia-nvswitch1: SXid (PCI:0000:02:00.0): 22013, Non-fatal, Link 00 Minion Link DLREQ interrupt";
        assert!(matches!(
            find(head),
            Some(Found::SXid {
                code: 22013,
                fatal: Some(false),
                ..
            })
        ));
        let data = "nvidia-nvswitch1: SXid (PCI:0000:02:00.0): 22013, Data {0x00000000}";
        assert_eq!(find(data), None);
        let fatal =
            "nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 11001, Fatal, ingress invalid command";
        assert!(matches!(
            find(fatal),
            Some(Found::SXid {
                fatal: Some(true),
                ..
            })
        ));
    }

    #[test]
    fn a_forged_xid_inside_another_message_is_not_an_xid() {
        // The kernel's segfault report names the mapped file; a tenant picks that name.
        let forged = "a.out[4242]: segfault at 0 ip 0000000000401000 sp 00007ffd8c0e9a30 error 4 in \
                      NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.[400000+1000]";
        for line in [
            format!("6,1234,5000000,-;{forged}"),
            format!("[ 5.000000] {forged}"),
            format!("Aug 30 11:43:09 gpu01 kernel: {forged}"),
            forged.to_string(),
        ] {
            let r = record(&line).unwrap();
            assert_eq!(find(r.text), None, "{line}");
        }
        // A process named for the prefix (15 characters at most) is followed by the kernel's own text.
        let named =
            "6,1,5,-;NVRM: Xid (PCI:[4242]: segfault at 0 ip 0 sp 0 error 4 in x[400000+1000]";
        assert_eq!(find(record(named).unwrap().text), None);
        // Userspace writing to /dev/kmsg gets the user facility (1): not the kernel's record.
        assert_eq!(
            record("14,99,5000000,-;NVRM: Xid (PCI:0000:18:00): 79, x"),
            None
        );
        assert_eq!(
            record("<14>[    5.000000] NVRM: Xid (PCI:0000:18:00): 79, x"),
            None
        );
        let other = "Aug 30 11:43:09 gpu01 python3[77]: NVRM: Xid (PCI:0000:18:00): 79, x";
        assert_eq!(find(record(other).unwrap().text), None);
        let user = "user  :notice: [    5.000000] NVRM: Xid (PCI:0000:18:00): 79, x";
        assert_eq!(find(record(user).unwrap().text), None);
        let sxid =
            "x: nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 11001, Fatal, ingress invalid command";
        assert_eq!(find(sxid), None);
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
            assert!(matches!(find(r.text), Some(Found::Xid { code: 79, .. })));
        }
    }

    #[test]
    fn nvml_and_kernel_bus_ids_match() {
        assert_eq!(
            PciAddr::parse("00000000:18:00.0"),
            PciAddr::parse("0000:18:00")
        );
        assert_eq!(
            PciAddr::parse("0000:18:00").unwrap().to_string(),
            "0000:18:00"
        );
        assert_eq!(PciAddr::parse("0000:1ff:00"), None);
    }
}
