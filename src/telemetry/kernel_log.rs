//! Kernel log parsing: `NVRM: Xid` and NVSwitch `SXid` lines, from `/dev/kmsg` records or `dmesg` and
//! `journalctl -k` text, tallied per code with counts and first/last times.

use super::sanitize::bounded;
use super::XidEvent;

/// Longest XID message kept.
const MAX_TEXT_CHARS: usize = 200;
/// Most distinct codes tallied per GPU or switch; counts of codes already known keep growing.
const MAX_CODES: usize = 64;

/// One kernel log line with its boot-relative time, when it had one.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub usec_since_boot: Option<u64>,
    pub text: &'a str,
}

/// Reads a line as a `/dev/kmsg` record (`pri,seq,usec,flags;text`), a `dmesg` line (`[  123.456789] text`)
/// or plain text (`journalctl -k`, `dmesg --ctime`: no boot-relative time). `None` for the key=value
/// continuation lines `/dev/kmsg` puts after a record.
pub fn record(line: &str) -> Option<Record<'_>> {
    if line.starts_with(' ') {
        return None;
    }
    if let Some((head, text)) = line.split_once(';') {
        let mut fields = head.split(',');
        let pri = fields.next().map(str::parse::<u32>);
        let seq = fields.next().map(str::parse::<u64>);
        let usec = fields.next().and_then(|u| u.parse::<u64>().ok());
        if matches!((pri, seq), (Some(Ok(_)), Some(Ok(_)))) && usec.is_some() {
            return Some(Record {
                usec_since_boot: usec,
                text,
            });
        }
    }
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((stamp, text)) = rest.split_once(']') {
            if let Some(usec) = seconds_to_usec(stamp.trim()) {
                return Some(Record {
                    usec_since_boot: Some(usec),
                    text: text.trim_start(),
                });
            }
        }
    }
    Some(Record {
        usec_since_boot: None,
        text: line,
    })
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

/// Finds an XID or SXid in the text of one kernel log line. The `Severity …` and `Data {…}` lines the
/// NVSwitch driver prints after an SXid's first line are details of the same event, not events.
pub fn find(text: &str) -> Option<Found<'_>> {
    if let Some(at) = text.find("NVRM: Xid (") {
        let (pci, code, rest) = parse_after(&text[at + "NVRM: Xid (".len()..])?;
        return Some(Found::Xid {
            pci,
            code,
            text: message(rest),
        });
    }
    let at = text.find("SXid (")?;
    let (pci, code, rest) = parse_after(&text[at + "SXid (".len()..])?;
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

/// `PCI:0000:18:00): 79, rest` (the `PCI:` is missing in very old drivers) → address, code, rest.
fn parse_after(s: &str) -> Option<(PciAddr, u32, &str)> {
    let s = s.strip_prefix("PCI:").unwrap_or(s);
    let (addr, rest) = s.split_once(')')?;
    let pci = PciAddr::parse(addr)?;
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let code: u32 = rest[..digits].parse().ok()?;
    let rest = rest[digits..].trim_start();
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

/// Every code seen on one GPU or switch, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally(Vec<XidEvent>);

impl Tally {
    /// Counts one occurrence at `at_ms` (wall clock, when known).
    pub fn add(&mut self, code: u32, at_ms: Option<u64>, text: &str, fatal: Option<bool>) {
        let text = (!text.is_empty()).then(|| bounded(text, MAX_TEXT_CHARS));
        if let Some(e) = self.0.iter_mut().find(|e| e.code == code) {
            e.count = e.count.saturating_add(1);
            e.first_ms = e.first_ms.or(at_ms);
            e.last_ms = at_ms.or(e.last_ms);
            e.text = text.or(e.text.take());
            e.fatal = match (e.fatal, fatal) {
                (Some(a), Some(b)) => Some(a || b),
                (a, b) => a.or(b),
            };
            return;
        }
        if self.0.len() < MAX_CODES {
            self.0.push(XidEvent {
                code,
                count: 1,
                first_ms: at_ms,
                last_ms: at_ms,
                text,
                fatal,
            });
        }
    }

    pub fn events(&self) -> &[XidEvent] {
        &self.0
    }

    pub fn codes(&self) -> Vec<u32> {
        self.0.iter().map(|e| e.code).collect()
    }
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

    #[test]
    fn tally_counts_and_keeps_first_and_last() {
        let mut t = Tally::default();
        t.add(79, Some(10), "a", None);
        t.add(79, Some(20), "b", None);
        t.add(13, None, "", None);
        assert_eq!(t.codes(), [79, 13]);
        let e = &t.events()[0];
        assert_eq!((e.count, e.first_ms, e.last_ms), (2, Some(10), Some(20)));
        assert_eq!(e.text.as_deref(), Some("b"));
    }
}
