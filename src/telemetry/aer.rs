//! PCIe Advanced Error Reporting lines in the kernel log. The kernel prints one line per error and device, with
//! the device's own `dev_printk` prefix (driver name, then its PCI address): `nvidia 0000:18:00.0: AER: PCIe Bus
//! Error: severity=Corrected, type=Physical Layer, (Receiver ID)` (drivers/pci/pcie/aer.c `aer_print_error`;
//! kernels before 5.x print it without `AER: `, kernels from 6.x say `Correctable`/`Uncorrectable`). Only
//! messages that begin with that prefix count, as with XIDs.

use super::board::AerSeverity;
use super::kernel_log::PciAddr;

/// The device and severity of an AER error line, or `None` for any other line.
pub fn find(text: &str) -> Option<(PciAddr, AerSeverity)> {
    let (driver, rest) = text.split_once(' ')?;
    if driver.is_empty()
        || !driver
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let (addr, rest) = rest.split_once(": ")?;
    if !addr
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return None;
    }
    let pci = PciAddr::parse(addr)?;
    let rest = rest.strip_prefix("AER: ").unwrap_or(rest);
    let severity = rest.strip_prefix("PCIe Bus Error: severity=")?;
    let severity = severity.split(',').next()?;
    let class = if severity.starts_with("Correct") {
        AerSeverity::Corrected
    } else if severity.starts_with("Uncorrect") && severity.contains("Non-Fatal") {
        AerSeverity::NonFatal
    } else if severity.starts_with("Uncorrect") && severity.contains("Fatal") {
        AerSeverity::Fatal
    } else {
        return None;
    };
    Some((pci, class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_aer_errors_in_old_and_new_kernel_forms() {
        let gpu = PciAddr::parse("0000:18:00.0");
        for (line, severity) in [
            // Kernel 5.x/6.x (aer.c with the "AER: " prefix).
            (
                "nvidia 0000:18:00.0: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)",
                AerSeverity::Corrected,
            ),
            // Kernel 4.x, without it.
            (
                "nvidia 0000:18:00.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, id=1800(Requester ID)",
                AerSeverity::NonFatal,
            ),
            (
                "nvidia 0000:18:00.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, (Receiver ID)",
                AerSeverity::Fatal,
            ),
            // Kernels from 6.10 name the classes Correctable/Uncorrectable.
            (
                "nvidia 0000:18:00.0: AER: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Transmitter ID)",
                AerSeverity::Corrected,
            ),
        ] {
            assert_eq!(find(line), Some((gpu.unwrap(), severity)), "{line}");
        }
    }

    #[test]
    fn other_lines_and_quotes_are_not_errors() {
        for line in [
            // The root port's summary names the device at its end: the device's own line is counted instead.
            "pcieport 0000:00:01.0: AER: Corrected error received: 0000:18:00.0",
            "nvidia 0000:18:00.0:   device [10de:2330] error status/mask=00000001/0000e000",
            "python3[123]: segfault at 0 ip 0 sp 0 error 4 in nvidia 0000:18:00.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal)",
            "nvidia 0000:18:00.0: AER: PCIe Bus Error: severity=Bogus, type=x",
            "",
        ] {
            assert_eq!(find(line), None, "{line}");
        }
    }
}
