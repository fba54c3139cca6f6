//! Reads the kernel log from the start of its buffer (`/dev/kmsg`, or a `dmesg`/`journalctl -k` file) without
//! blocking, and tallies XIDs per GPU (matched by PCI bus id) and SXids per node, with wall-clock times.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::telemetry::kernel_log::{self, Found, PciAddr, Tally};
use crate::telemetry::XidEvent;

/// The default source: the kernel's own ring buffer, one record per read.
pub(crate) const DEFAULT_PATH: &str = "/dev/kmsg";
/// Most bytes read in one poll; the kernel buffer is a few MiB, a file may be larger or growing.
const MAX_POLL_BYTES: usize = 64 * 1024 * 1024;
/// Longest line kept; `/dev/kmsg` records are far shorter.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// XIDs and SXids seen in the kernel log so far.
pub(crate) struct KernelLog {
    path: PathBuf,
    file: Option<File>,
    /// Why the log could not be read; XIDs are then unknown, not "none".
    error: Option<String>,
    pending: Vec<u8>,
    /// Unix ms at boot, to turn boot-relative record times into wall time.
    boot_ms: u64,
    gpu_by_pci: HashMap<PciAddr, usize>,
    per_gpu: Vec<Tally>,
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
            boot_ms: boot_unix_ms(),
            gpu_by_pci: gpus
                .iter()
                .enumerate()
                .filter_map(|(i, pci)| pci.map(|p| (p, i)))
                .collect(),
            per_gpu: vec![Tally::default(); gpus.len()],
            sxid: Tally::default(),
            unmatched: Vec::new(),
        }
    }

    /// Reads every record available now and returns without waiting for more.
    pub fn poll(&mut self) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        while total < MAX_POLL_BYTES {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    self.pending.extend_from_slice(&buf[..n]);
                    self.take_lines();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The kernel overwrote records we had not read yet: carry on from the oldest that remains.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) => {
                    self.error = Some(unreadable(&self.path, &e));
                    return;
                }
            }
        }
        self.file = Some(file);
    }

    fn take_lines(&mut self) {
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.pending[start..start + nl]).into_owned();
            self.line(&line);
            start += nl + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            self.pending.clear();
        }
    }

    fn line(&mut self, line: &str) {
        let Some(record) = kernel_log::record(line) else {
            return;
        };
        let at = record
            .usec_since_boot
            .map(|us| self.boot_ms.saturating_add(us / 1000));
        match kernel_log::find(record.text) {
            Some(Found::Xid { pci, code, text }) => match self.gpu_by_pci.get(&pci) {
                Some(&i) => self.per_gpu[i].add(code, at, text, None),
                None => {
                    let slot = match self.unmatched.iter().position(|(p, _)| *p == pci) {
                        Some(i) => i,
                        None if self.unmatched.len() < 16 => {
                            self.unmatched.push((pci, Tally::default()));
                            self.unmatched.len() - 1
                        }
                        None => return,
                    };
                    self.unmatched[slot].1.add(code, at, text, None);
                }
            },
            Some(Found::SXid {
                code, fatal, text, ..
            }) => self.sxid.add(code, at, text, fatal),
            None => {}
        }
    }

    /// Why XIDs are unknown, when the log could not be read.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The i-th GPU's XIDs; `None` when the log could not be read.
    pub fn gpu(&self, i: usize) -> Option<&Tally> {
        self.error.is_none().then(|| self.per_gpu.get(i)).flatten()
    }

    pub fn sxid(&self) -> Option<Vec<XidEvent>> {
        self.error.is_none().then(|| self.sxid.events().to_vec())
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
        log.poll();
        let gpu0 = log.gpu(0).unwrap();
        assert_eq!(gpu0.codes(), [79]);
        assert_eq!(gpu0.events()[0].count, 2);
        let (first, last) = (gpu0.events()[0].first_ms, gpu0.events()[0].last_ms);
        assert_eq!(last.unwrap() - first.unwrap(), 1000);
        assert_eq!(log.gpu(1).unwrap().codes(), Vec::<u32>::new());
        assert_eq!(log.unmatched()[0].code, 48);
    }

    #[test]
    fn an_unreadable_log_is_unknown_not_empty() {
        let log = KernelLog::open(Path::new("/nonexistent/kmsg"), &[None]);
        assert!(log.error().unwrap().contains("kernel log not readable"));
        assert!(log.gpu(0).is_none());
        assert!(log.sxid().is_none());
    }
}
