//! The agent's journal on the node (`--journal DIR`, the service's `/var/lib/fleetop`): each GPU event — an XID
//! occurrence, a recovery-action change, uncorrected ECC or row-remap changes, NVLinks going down, the GPU lost —
//! appended as one JSON line keyed by the GPU's serial and UUID, and fsync'd, so it outlives the reboot that
//! clears the kernel log. Bounded: `journal.jsonl` rotates to `journal.1.jsonl` at [`MAX_FILE_BYTES`] (two files
//! at most). A torn last line (a crash mid-write) is skipped on reading and the next record starts on a new line.
//! Each sample then carries the GPU's last 30 days (`GpuSample::past`). The node's own events — SXids, InfiniBand
//! ports down, NVLink and InfiniBand error counters that rose past `telemetry::rise`'s rules — are `fabric.rs`'s;
//! the node-level ones are keyed by the node and summarised in `NodeSample::past`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::telemetry::past::{PastEvent, MAX_PAST, SUMMARY_DAYS};
use crate::telemetry::{NodeSample, XidEvent};
use entry::{changes, Entry, NODE_KEY};

mod entry;
mod fabric;

/// Where the service keeps its journal (`deploy --systemd`'s unit names it).
pub const DEFAULT_DIR: &str = "/var/lib/fleetop";
/// Environment variable naming the journal directory when `--journal` is not given.
pub(crate) const JOURNAL_ENV: &str = "FLEETOP_JOURNAL";
/// One journal file's cap; with the rotated one, the journal never passes twice this.
pub(crate) const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest line read back: anything longer is not one the agent wrote.
const MAX_LINE_BYTES: usize = 4096;
const CURRENT: &str = "journal.jsonl";
const ROTATED: &str = "journal.1.jsonl";

/// A GPU (serial, else UUID), a kind and a code.
type Slot = (String, String, Option<u64>);
/// What was last written for a slot: count, first occurrence and [`Entry::stamp`].
type Written = (u64, Option<u64>, u64);

pub struct Journal {
    dir: PathBuf,
    /// [`MAX_FILE_BYTES`], smaller in tests.
    max_file_bytes: u64,
    file: Option<File>,
    size: u64,
    at_line_start: bool,
    /// What the two files hold (bounded by their size), oldest first.
    entries: Vec<Entry>,
    /// The last state written per (GPU, kind, code), so only changes are appended.
    last: HashMap<Slot, Written>,
    /// Unix ms of this boot (`/proc/stat` btime); entries before it are "before reboot".
    boot_ms: Option<u64>,
    /// The fabric counters at the start of the window rises are judged over when following.
    window: Option<crate::agent::state::Reading>,
    /// Lines that were not records (torn writes), said once.
    pub skipped: usize,
    /// The last write error, said in the sample's warnings.
    pub problem: Option<String>,
}

/// `--journal`, else `$FLEETOP_JOURNAL`; `None`: no journal.
pub fn dir(option: Option<&Path>) -> Option<PathBuf> {
    option
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(JOURNAL_ENV).map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
}

impl Journal {
    /// Reads the journal in `dir` back and opens it for appending; a directory that cannot be written leaves a
    /// journal that reads what it can and says why it cannot write.
    pub fn open(dir: &Path) -> Journal {
        Journal::open_capped(dir, MAX_FILE_BYTES)
    }

    /// [`Journal::open`] with each file capped at `max_file_bytes`.
    pub(crate) fn open_capped(dir: &Path, max_file_bytes: u64) -> Journal {
        let mut j = Journal {
            dir: dir.to_path_buf(),
            max_file_bytes,
            file: None,
            size: 0,
            at_line_start: true,
            entries: Vec::new(),
            last: HashMap::new(),
            boot_ms: boot_ms(),
            window: None,
            skipped: 0,
            problem: None,
        };
        for name in [ROTATED, CURRENT] {
            j.read(&dir.join(name));
        }
        for e in &j.entries {
            if let Some(key) = e.gpu_key() {
                j.last.insert(
                    (key.to_string(), e.kind.clone(), e.code),
                    (e.count, e.first_ms, e.stamp()),
                );
            }
        }
        // A torn tail is what a crash mid-write leaves: tolerated, said once on stderr, not a fault of the GPUs.
        if j.skipped > 0 {
            crate::text::warn(&format!(
                "fleetop agent: journal {}: {} unreadable line(s) skipped (a torn write?)",
                j.dir.display(),
                j.skipped
            ));
        }
        if let Err(e) = j.reopen() {
            j.problem = Some(e);
        }
        j
    }

    fn read(&mut self, path: &Path) {
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        // The files are capped when written; one grown past twice the cap by hand is read from its end.
        let start = bytes
            .len()
            .saturating_sub(usize::try_from(2 * self.max_file_bytes).unwrap_or(usize::MAX));
        for line in bytes[start..].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match (line.len() <= MAX_LINE_BYTES)
                .then(|| serde_json::from_slice::<Entry>(line).ok())
                .flatten()
            {
                Some(e) => self.entries.push(e),
                None => self.skipped += 1,
            }
        }
    }

    fn reopen(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.said(&e))?;
        let path = self.dir.join(CURRENT);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| self.said(&e))?;
        self.size = file.metadata().map_or(0, |m| m.len());
        self.at_line_start = ends_with_newline(&file, self.size);
        self.file = Some(file);
        Ok(())
    }

    fn said(&self, e: &dyn std::fmt::Display) -> String {
        format!("journal {}: {e}", self.dir.display())
    }

    /// Appends what changed in `sample` since the last entries, then gives each GPU its summary.
    pub fn note(&mut self, sample: &mut NodeSample) {
        let now = sample.t;
        let (mut per_gpu, node) = fabric::entries(sample, &mut self.window);
        for (position, gpu) in sample.gpus.iter().enumerate() {
            let mut found = changes(gpu, now);
            found.extend(
                per_gpu
                    .get_mut(position)
                    .map(std::mem::take)
                    .unwrap_or_default(),
            );
            self.record(gpu.serial.as_deref().or(gpu.uuid.as_deref()), found);
        }
        self.record(Some(NODE_KEY), node);
        for gpu in &mut sample.gpus {
            let key = gpu.serial.as_deref().or(gpu.uuid.as_deref());
            // The kernel log is read for XIDs when `xid` is known: then it is the record since boot.
            let log = gpu
                .xid
                .is_some()
                .then(|| gpu.xid_events.as_deref().unwrap_or_default());
            gpu.past = key.map(|k| self.summary(k, ("xid", log), now));
        }
        sample.past = Some(self.summary(NODE_KEY, ("sxid", sample.sxid.as_deref()), now));
        if let Some(p) = &self.problem {
            sample.warnings.push(p.clone());
        }
    }

    /// Appends what is new among `found`, the current entries of `key` (a GPU, or the node).
    fn record(&mut self, key: Option<&str>, found: Vec<Entry>) {
        // A state that went away is written again when it comes back.
        if let Some(key) = key {
            self.last.retain(|(k, kind, code), (_, first, _)| {
                k != key
                    || *first != Some(0)
                    || found.iter().any(|e| e.kind == *kind && e.code == *code)
            });
        }
        for e in found {
            self.append(e);
        }
    }

    fn append(&mut self, e: Entry) {
        let Some(key) = e.gpu_key().map(str::to_string) else {
            return;
        };
        let slot = (key, e.kind.clone(), e.code);
        // A state compares by its value alone; an XID by its tally and times.
        let state = (e.count, e.first_ms, e.stamp());
        if self.last.get(&slot) == Some(&state) {
            return;
        }
        self.last.insert(slot, state);
        if let Err(err) = self.write(&e) {
            self.problem = Some(err);
        }
        self.entries.push(e);
        // The entries kept in memory follow the files: at most what two full files hold.
        let most = usize::try_from(2 * self.max_file_bytes / 64).unwrap_or(usize::MAX);
        if self.entries.len() > most {
            self.entries.drain(..self.entries.len() - most);
        }
    }

    fn write(&mut self, e: &Entry) -> Result<(), String> {
        let mut line = Vec::with_capacity(256);
        if !self.at_line_start {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(e).map_err(|e| e.to_string())?);
        line.push(b'\n');
        if self.size + line.len() as u64 > self.max_file_bytes {
            self.file = None;
            std::fs::rename(self.dir.join(CURRENT), self.dir.join(ROTATED))
                .map_err(|e| self.said(&e))?;
            self.reopen()?;
        }
        let Some(file) = &mut self.file else {
            self.reopen()?;
            return self.write(e);
        };
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        self.at_line_start = written.is_ok();
        written.map_err(|e| self.said(&e))?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// The last [`SUMMARY_DAYS`] days of `key` (a GPU, or the node), per kind and code: occurrences, the last
    /// one, and whether it came before this boot (before `/proc/stat`'s btime, or an XID or SXid of `log`'s kind
    /// that the kernel log, read, no longer holds).
    fn summary(
        &self,
        key: &str,
        (log_kind, log): (&str, Option<&[XidEvent]>),
        now: u64,
    ) -> Vec<PastEvent> {
        let since = now.saturating_sub(SUMMARY_DAYS * 86_400_000);
        let mut out: Vec<PastEvent> = Vec::new();
        // Per (kind, code): the previous entry's (count, first_ms), to count each occurrence once.
        let mut prev: HashMap<(String, Option<u64>), (u64, Option<u64>)> = HashMap::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.gpu_key() == Some(key) && e.last_ms >= since)
        {
            let slot = (e.kind.clone(), e.code);
            let added = match prev.get(&slot) {
                _ if e.is_state() => 1,
                Some(&(count, first)) if first == e.first_ms && e.count >= count => e.count - count,
                _ => e.count,
            };
            prev.insert(slot, (e.count, e.first_ms));
            match out
                .iter_mut()
                .find(|p| p.kind == e.kind && p.code == e.code)
            {
                Some(p) => {
                    p.count += added;
                    p.last_ms = p.last_ms.max(e.last_ms);
                    p.text = e.text.clone().or(p.text.take());
                }
                None => out.push(PastEvent {
                    kind: e.kind.clone(),
                    code: e.code,
                    count: added.max(1),
                    last_ms: e.last_ms,
                    before_reboot: false,
                    text: e.text.clone(),
                }),
            }
        }
        for p in &mut out {
            // A state that holds now (a port still down, a remap still pending) is today's, whenever written.
            let holds = self
                .last
                .get(&(key.to_string(), p.kind.clone(), p.code))
                .is_some_and(|(_, first, _)| *first == Some(0));
            let before_boot = !holds && self.boot_ms.is_some_and(|b| p.last_ms < b);
            // The kernel log is the record since boot: an XID it was read for and no longer holds came before.
            let gone = p.kind == log_kind
                && log.is_some_and(|events| {
                    !events.iter().any(|x| Some(u64::from(x.code)) == p.code)
                });
            p.before_reboot = before_boot || gone;
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.last_ms));
        out.truncate(MAX_PAST);
        out
    }
}

/// True for an empty file or one whose last byte is a newline.
fn ends_with_newline(file: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return true;
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

/// This boot's time, Unix ms, from `/proc/stat`'s `btime`.
fn boot_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests;
