//! Kernel log parsing: `NVRM: Xid` and NVSwitch `SXid` lines, from `/dev/kmsg` records or `dmesg` and
//! `journalctl -k` text. Only messages that *begin* with the driver's prefix count, as the driver prints
//! them: the kernel's own reports quote text a user chooses (the segfault report names the file mapped at the
//! faulting address), so a match anywhere else in a line would let any tenant forge an XID.

pub use super::kernel_record::{record, Record};
pub(crate) use super::xid_tally::Tally;

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
    fn an_xid_154_message_parses_through_the_xid_finder_into_its_recovery_action() {
        use crate::telemetry::{recovery, RecoveryAction};
        let set = "NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)";
        let Some(Found::Xid { code, text, .. }) = find(set) else {
            panic!("not an XID line");
        };
        assert_eq!(code, recovery::XID_RECOVERY_ACTION_CHANGED);
        assert_eq!(recovery::parse_xid154(text), Some(RecoveryAction::GpuReset));
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
