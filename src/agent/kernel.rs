//! Reads the kernel log from the start of its buffer (`/dev/kmsg`, or a `dmesg`/`journalctl -k` file) without
//! blocking, to its end within a time budget per poll, and tallies XIDs per GPU (matched by PCI bus id) and
//! SXids per node, with wall-clock times, and PCIe AER errors per GPU. Until the log has been read to its end, XIDs are unknown.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::telemetry::board::PcieAer;
use crate::telemetry::kernel_log::{self, Found, PciAddr, Tally};
use crate::telemetry::xid_tally::MAX_CODES;
use crate::telemetry::XidEvent;

/// The default source: the kernel's own ring buffer, one record per read.
pub(crate) const DEFAULT_PATH: &str = "/dev/kmsg";
/// How long one poll of a streaming agent may read before the sample goes out (the rest is read by the next
/// poll): well under the jump host's staleness limit of three intervals.
pub(crate) const POLL_BUDGET: Duration = Duration::from_secs(2);
/// How long `agent --once` reads: its one sample must beat the jump host's first-sample timeout (10 s).
pub(crate) const ONCE_BUDGET: Duration = Duration::from_secs(5);
/// Longest line kept; `/dev/kmsg` records are far shorter. The rest of a longer line is skipped, never read
/// as a line of its own.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most PCI addresses without a listed GPU tallied.
const MAX_UNMATCHED: usize = 16;
/// How far past now a record's time may lie before it is taken as garbage (clock steps, a stamp that is no time).
const FUTURE_SLACK_MS: u64 = 60_000;

/// XIDs and SXids seen in the kernel log so far.
pub(crate) struct KernelLog {
    path: PathBuf,
    file: Option<File>,
    /// Why the log could not be read; XIDs are then unknown, not "none".
    error: Option<String>,
    pending: Vec<u8>,
    /// The line being read was longer than [`MAX_LINE_BYTES`]: skip to its end.
    skipping: bool,
    /// The last poll ran out of time before the end of the log: the tallies may miss its newest XIDs.
    behind: bool,
    bytes_read: u64,
    /// Occurrences on PCI addresses dropped from a full `unmatched` list.
    unmatched_dropped: u64,
    /// Unix ms at boot, to turn boot-relative record times into wall time.
    boot_ms: u64,
    gpu_by_pci: HashMap<PciAddr, usize>,
    per_gpu: Vec<Tally>,
    /// PCIe AER errors per GPU (bridges and other devices are not tallied).
    aer: Vec<PcieAer>,
    sxid: Tally,
    /// XIDs on PCI addresses NVML does not list (a GPU that fell off the bus before the agent started).
    unmatched: Vec<(PciAddr, Tally)>,
}

impl KernelLog {
    /// Opens the log; `gpus[i]` is the PCI address of the i-th GPU the agent reports, when known.
    pub fn open(path: &Path, gpus: &[Option<PciAddr>]) -> Self {
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        let (file, error) = match opened {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(unreadable(path, &e))),
        };
        KernelLog {
            path: path.to_path_buf(),
            file,
            error,
            pending: Vec::new(),
            skipping: false,
            behind: false,
            bytes_read: 0,
            unmatched_dropped: 0,
            boot_ms: boot_unix_ms(),
            gpu_by_pci: gpus
                .iter()
                .enumerate()
                .filter_map(|(i, pci)| pci.map(|p| (p, i)))
                .collect(),
            per_gpu: vec![Tally::default(); gpus.len()],
            aer: vec![PcieAer::default(); gpus.len()],
            sxid: Tally::sxids(),
            unmatched: Vec::new(),
        }
    }

    /// Reads every record available now, for at most `budget`, and returns without waiting for more. A log
    /// longer than the budget allows is read on by the next poll; meanwhile XIDs are unknown, not "none".
    pub fn poll(&mut self, budget: Duration) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        let deadline = Instant::now() + budget;
        let mut buf = vec![0u8; 64 * 1024];
        self.behind = loop {
            match file.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => {
                    self.bytes_read = self.bytes_read.saturating_add(n as u64);
                    self.pending.extend_from_slice(&buf[..n]);
                    self.take_lines();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The kernel overwrote records we had not read yet: carry on from the oldest that remains.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) => {
                    self.error = Some(unreadable(&self.path, &e));
                    return;
                }
            }
            if Instant::now() >= deadline {
                break true;
            }
        };
        self.file = Some(file);
    }

    fn take_lines(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + nl];
            start += nl + 1;
            // The tail of a line cut for length is not a line of its own.
            if !std::mem::take(&mut self.skipping) {
                self.line(&String::from_utf8_lossy(line));
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE_BYTES {
            pending.clear();
            self.skipping = true;
        }
        self.pending = pending;
    }

    fn line(&mut self, line: &str) {
        let Some(record) = kernel_log::record(line) else {
            return;
        };
        if let Some((pci, severity)) = crate::telemetry::aer::find(record.text) {
            let at = self.wall_ms(record.usec_since_boot);
            if let Some(aer) = self.gpu_by_pci.get(&pci).and_then(|&i| self.aer.get_mut(i)) {
                aer.add(severity, record.text, at);
            }
            return;
        }
        let Some(found) = kernel_log::find(record.text) else {
            return;
        };
        let at = self.wall_ms(record.usec_since_boot);
        match found {
            Found::Xid { pci, code, text } => match self.gpu_by_pci.get(&pci) {
                Some(&i) => self.per_gpu[i].add(code, at, text, None),
                None => self.add_unmatched(pci, code, at, text),
            },
            Found::SXid {
                code, fatal, text, ..
            } => self.sxid.add(code, at, text, fatal),
        }
    }

    /// A record's wall-clock time, or `None` when its boot-relative stamp puts it in the future: a stamp no
    /// clock can show must not reach a renderer.
    fn wall_ms(&self, usec_since_boot: Option<u64>) -> Option<u64> {
        let at = self.boot_ms.checked_add(usec_since_boot? / 1000)?;
        (at <= crate::telemetry::unix_ms().saturating_add(FUTURE_SLACK_MS)).then_some(at)
    }

    /// Tallies an XID on an address no listed GPU has. A full list gives the place of the address whose worst
    /// code is least severe to a more severe newcomer, as each tally does with its codes.
    fn add_unmatched(&mut self, pci: PciAddr, code: u32, at: Option<u64>, text: &str) {
        if let Some(slot) = self.unmatched.iter_mut().find(|(p, _)| *p == pci) {
            return slot.1.add(code, at, text, None);
        }
        let mut tally = Tally::default();
        tally.add(code, at, text, None);
        if self.unmatched.len() < MAX_UNMATCHED {
            return self.unmatched.push((pci, tally));
        }
        let weakest = self
            .unmatched
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, t))| t.worst())
            .map(|(i, (_, t))| (i, t.worst()));
        match weakest {
            Some((i, worst)) if tally.worst() > worst => {
                let (_, evicted) = self.unmatched.remove(i);
                let lost: u64 = evicted.events().iter().map(|e| e.count).sum();
                self.unmatched_dropped = self
                    .unmatched_dropped
                    .saturating_add(lost)
                    .saturating_add(evicted.dropped());
                self.unmatched.push((pci, tally));
            }
            _ => self.unmatched_dropped = self.unmatched_dropped.saturating_add(1),
        }
    }

    /// What the node should know about the log: why it cannot be read, that it was not read to its end, that
    /// a tally was full and dropped its least severe codes (GPUs named by position, which is the NVML index:
    /// the agent lists them in index order).
    pub fn warnings(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            return vec![e.clone()];
        }
        if self.behind {
            return vec![format!(
                "kernel log ({}) not read to its end yet ({} MiB so far): XIDs unknown until it is",
                self.path.display(),
                self.bytes_read / (1024 * 1024)
            )];
        }
        let full = "distinct codes; the least severe were dropped";
        let mut out: Vec<String> = self
            .per_gpu
            .iter()
            .enumerate()
            .filter(|(_, t)| t.dropped() > 0)
            .map(|(i, t)| {
                format!(
                    "XID tally of GPU {i} truncated: {} occurrences of codes not kept (over {MAX_CODES} {full})",
                    t.dropped()
                )
            })
            .collect();
        if self.sxid.dropped() > 0 {
            out.push(format!(
                "SXid tally truncated: {} occurrences not kept (over {MAX_CODES} {full})",
                self.sxid.dropped()
            ));
        }
        let unmatched: u64 = self
            .unmatched
            .iter()
            .map(|(_, t)| t.dropped())
            .sum::<u64>()
            .saturating_add(self.unmatched_dropped);
        if unmatched > 0 {
            out.push(format!(
                "XIDs on unlisted PCI addresses truncated: {unmatched} occurrences not kept (over {MAX_UNMATCHED} addresses or {MAX_CODES} {full})"
            ));
        }
        out
    }

    /// Whether the tallies hold the whole log: it could be read, and was read to its end.
    fn complete(&self) -> bool {
        self.error.is_none() && !self.behind
    }

    /// The i-th GPU's XIDs; `None` when the log could not be read, or not to its end.
    pub fn gpu(&self, i: usize) -> Option<&Tally> {
        self.complete().then(|| self.per_gpu.get(i)).flatten()
    }

    /// The i-th GPU's AER errors; `None` when the log could not be read, or not to its end.
    pub fn aer(&self, i: usize) -> Option<&PcieAer> {
        self.complete().then(|| self.aer.get(i)).flatten()
    }

    pub fn sxid(&self) -> Option<Vec<XidEvent>> {
        self.complete().then(|| self.sxid.events().to_vec())
    }

    /// XIDs on PCI addresses no listed GPU has, each event's text prefixed with the address.
    pub(crate) fn unmatched(&self) -> Vec<XidEvent> {
        self.unmatched
            .iter()
            .flat_map(|(pci, tally)| {
                tally.events().iter().map(move |e| XidEvent {
                    text: Some(format!(
                        "PCI {pci} (no GPU listed there): {}",
                        e.text.as_deref().unwrap_or("")
                    )),
                    ..e.clone()
                })
            })
            .collect()
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> String {
    format!(
        "kernel log not readable ({}: {e}): run the agent as root or set kernel.dmesg_restrict=0",
        path.display()
    )
}

/// Wall-clock time of boot: now minus the monotonic clock, which kernel log times count from.
fn boot_unix_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0;
    let since_boot_ms = if ok {
        (ts.tv_sec.max(0) as u64) * 1000 + (ts.tv_nsec.max(0) as u64) / 1_000_000
    } else {
        0
    };
    crate::telemetry::unix_ms().saturating_sub(since_boot_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_maps_bus_ids_and_keeps_unmatched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dmesg");
        std::fs::write(
            &path,
            "[   10.000000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.\n\
             [   11.000000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.\n\
             [   12.000000] NVRM: Xid (PCI:0000:44:00): 48, pid=1, name=x, DBE\n\
             partial line without newline NVRM: Xid (PCI:0000:18:00): 13",
        )
        .unwrap();
        let mut log = KernelLog::open(&path, &[PciAddr::parse("00000000:18:00.0"), None]);
        log.poll(POLL_BUDGET);
        let gpu0 = log.gpu(0).unwrap();
        assert_eq!(gpu0.codes(), [79]);
        assert_eq!(gpu0.events()[0].count, 2);
        let (first, last) = (gpu0.events()[0].first_ms, gpu0.events()[0].last_ms);
        assert_eq!(last.unwrap() - first.unwrap(), 1000);
        assert_eq!(log.gpu(1).unwrap().codes(), Vec::<u32>::new());
        assert_eq!(log.unmatched()[0].code, 48);
    }

    #[test]
    fn a_log_longer_than_one_poll_is_unknown_until_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let mut text =
            "[    1.000000] usb 1-1: new high-speed USB device number 2\n".repeat(20_000);
        text += "[    9.000000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.\n";
        std::fs::write(&path, text).unwrap();
        let mut log = KernelLog::open(&path, &[PciAddr::parse("0000:18:00")]);
        // A budget spent after the first read leaves the XID at the end unread: unknown, with the reason.
        log.poll(Duration::ZERO);
        assert!(log.gpu(0).is_none(), "not \"none\" before the end is read");
        assert!(log.sxid().is_none());
        assert!(
            log.warnings()[0].contains("not read to its end"),
            "{:?}",
            log.warnings()
        );
        for _ in 0..10_000 {
            log.poll(Duration::ZERO);
            if log.gpu(0).is_some() {
                break;
            }
        }
        assert_eq!(log.gpu(0).map(Tally::codes), Some(vec![79]));
        assert!(log.warnings().is_empty(), "{:?}", log.warnings());
    }

    #[test]
    fn a_line_cut_for_length_does_not_start_a_line_and_times_stay_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let long = format!(
            "[    1.000000] {}NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, forged\n",
            "x".repeat(3 * MAX_LINE_BYTES)
        );
        let future = "[1000000000000.000000] NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=x, late\n";
        std::fs::write(&path, long + future).unwrap();
        let mut log = KernelLog::open(&path, &[PciAddr::parse("0000:18:00")]);
        log.poll(POLL_BUDGET);
        let gpu = log.gpu(0).unwrap();
        assert_eq!(gpu.codes(), [13], "the tail of the long line is no XID");
        assert_eq!(gpu.events()[0].first_ms, None, "a time past now is unknown");
    }

    #[test]
    fn junk_codes_then_a_real_xid_79_keep_the_79_and_say_the_tally_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let mut text: String = (1000..1064)
            .map(|c| format!("[    1.000000] NVRM: Xid (PCI:0000:18:00): {c}, junk\n"))
            .collect();
        text += "[    2.000000] NVRM: Xid (PCI:0000:18:00): 79, GPU has fallen off the bus.\n";
        // 17 unlisted addresses: the 16th and 17th are more severe than the first ones.
        for bus in 0x40..0x50 {
            text += &format!("[    3.000000] NVRM: Xid (PCI:0000:{bus:02x}:00): 13, app\n");
        }
        text += "[    4.000000] NVRM: Xid (PCI:0000:60:00): 79, GPU has fallen off the bus.\n";
        std::fs::write(&path, text).unwrap();
        let mut log = KernelLog::open(&path, &[PciAddr::parse("0000:18:00")]);
        log.poll(POLL_BUDGET);
        assert!(log.gpu(0).unwrap().codes().contains(&79));
        assert!(log.unmatched().iter().any(|e| e.code == 79));
        assert_eq!(log.unmatched().len(), MAX_UNMATCHED);
        let warnings = log.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("XID tally of GPU 0 truncated"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("unlisted PCI addresses truncated"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_unreadable_log_is_unknown_not_empty() {
        let log = KernelLog::open(Path::new("/nonexistent/kmsg"), &[None]);
        assert!(log.warnings()[0].contains("kernel log not readable"));
        assert!(log.gpu(0).is_none());
        assert!(log.sxid().is_none());
    }
}
