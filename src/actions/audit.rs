//! The audit log: JSON lines appended and fsync'd, an `intent` before each command and an `outcome` after.
//! An intent without an outcome means fleetop died mid-action; those are shown at the next start.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    pub time: String,
    pub operator: String,
    pub action: String,
    pub node: String,
    pub reason: Option<String>,
    pub backend: String,
    pub command: String,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub id: String,
    pub time: String,
    pub operator: String,
    pub action: String,
    pub node: String,
    pub backend: String,
    pub command: String,
    pub ok: bool,
    pub exit_status: Option<i32>,
    pub duration_ms: u64,
    pub detail: String,
}

/// An operator acknowledged a node's XIDs: they stop raising its health until one happens again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub time: String,
    pub operator: String,
    pub node: String,
    pub reason: String,
    /// `GPU 5 XID 79 ×1`, one per acknowledged XID.
    pub xids: Vec<String>,
}

/// A repair applied a remedy to a GPU: the history the lemon rule counts (`[repair] max_repairs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repaired {
    pub time: String,
    pub operator: String,
    pub node: String,
    pub gpu: u32,
    /// `SN <serial>`, or the UUID when the GPU has no serial.
    pub gpu_id: String,
    /// `XID 79`, `recovery action gpu_reset`, `lost`.
    pub cause: String,
    /// `reset` or `reboot`.
    pub remedy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Record {
    Intent(Intent),
    Outcome(Outcome),
    Ack(Ack),
    Repaired(Repaired),
}

/// One audited change, as its intent and its outcome both tell it: who, what, on which node, why, through
/// which backend and with which command. The one place the two records are built.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub operator: &'a str,
    pub action: &'a str,
    pub node: &'a str,
    pub reason: Option<&'a str>,
    pub backend: &'a str,
    pub command: &'a str,
}

/// How an audited change ended.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub ok: bool,
    pub exit_status: Option<i32>,
    pub duration_ms: u64,
    pub detail: String,
}

impl Entry<'_> {
    /// The intent record, written before the change.
    pub fn intent(&self, id: &str) -> Record {
        Record::Intent(Intent {
            id: id.into(),
            time: now(),
            operator: self.operator.into(),
            action: self.action.into(),
            node: self.node.into(),
            reason: self.reason.map(str::to_string),
            backend: self.backend.into(),
            command: self.command.into(),
            pid: std::process::id(),
        })
    }

    /// The outcome record closing intent `id`.
    pub fn outcome(&self, id: &str, ending: Ending) -> Record {
        Record::Outcome(Outcome {
            id: id.into(),
            time: now(),
            operator: self.operator.into(),
            action: self.action.into(),
            node: self.node.into(),
            backend: self.backend.into(),
            command: self.command.into(),
            ok: ending.ok,
            exit_status: ending.exit_status,
            duration_ms: ending.duration_ms,
            detail: ending.detail,
        })
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The default location: `$XDG_STATE_HOME/fleetop/audit.jsonl` (`~/.local/state/fleetop/audit.jsonl`).
pub(crate) fn default_path() -> PathBuf {
    crate::dirs::state()
        .unwrap_or_else(|| PathBuf::from(".").join("fleetop"))
        .join("audit.jsonl")
}

pub struct AuditLog {
    pub path: PathBuf,
    file: File,
    /// False when the file may end inside a record (torn by a full disk or a failed write): the next
    /// record then starts on a new line, so it stays readable on its own.
    at_line_start: bool,
}

impl AuditLog {
    /// Opens (creating) the log for appending; an error here must refuse the action.
    pub fn open(path: &Path) -> Result<AuditLog, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        let at_line_start = ends_with_newline(&file);
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            at_line_start,
        })
    }

    /// Appends one record and waits until it is on disk.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        let mut line = Vec::new();
        if !self.at_line_start {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(record).map_err(|e| e.to_string())?);
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_all());
        self.at_line_start = written.is_ok();
        written.map_err(|e| format!("audit log {}: {e}", self.path.display()))
    }
}

/// True for an empty file or one whose last byte is a newline.
fn ends_with_newline(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_or(0, |m| m.len());
    if len == 0 {
        return true;
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

/// What reading the log back found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Intents that never got an outcome: fleetop stopped mid-action.
    pub unfinished: Vec<Intent>,
    /// Line numbers (from 1) that are not records: torn writes, or edits by hand.
    pub unparseable: Vec<usize>,
    /// The last XID acknowledgement of each node, so a restarted TUI keeps it.
    pub acks: Vec<Ack>,
}

/// Reads the log at `path` back (a missing log is an empty one).
pub(crate) fn scan(path: &Path) -> Scan {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Scan::default();
    };
    let mut unparseable = Vec::new();
    let records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str(l) {
            Ok(r) => Some(r),
            Err(_) => {
                unparseable.push(i + 1);
                None
            }
        })
        .collect();
    let done: HashSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Outcome(o) => Some(o.id.as_str()),
            Record::Intent(_) | Record::Ack(_) | Record::Repaired(_) => None,
        })
        .collect();
    let unfinished = records
        .iter()
        .filter_map(|r| match r {
            Record::Intent(i) if !done.contains(i.id.as_str()) => Some(i.clone()),
            _ => None,
        })
        .collect();
    let mut acks: Vec<Ack> = Vec::new();
    for r in records {
        if let Record::Ack(a) = r {
            acks.retain(|old| old.node != a.node);
            acks.push(a);
        }
    }
    Scan {
        unfinished,
        unparseable,
        acks,
    }
}

impl Ack {
    /// The (GPU, XID, count) triples it covers, read back from its `GPU 5 XID 79 ×1` lines; lines in another
    /// shape are skipped (the log is a file anyone may have edited).
    pub fn covered(&self) -> Vec<(u32, u32, u64)> {
        self.xids
            .iter()
            .filter_map(|x| {
                let words: Vec<&str> = x.split_whitespace().collect();
                let ["GPU", gpu, "XID", code, count] = words[..] else {
                    return None;
                };
                Some((
                    gpu.parse().ok()?,
                    code.parse().ok()?,
                    count.strip_prefix('×')?.parse().ok()?,
                ))
            })
            .collect()
    }
}

impl Scan {
    /// One line per problem, for the operator: unfinished intents first, then unreadable lines.
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        let mut out: Vec<String> = self
            .unfinished
            .iter()
            .map(|i| {
                format!(
                    "unfinished {} of {} by {} at {}: fleetop stopped before recording its outcome; check the node (command: {})",
                    i.action, i.node, i.operator, i.time, i.command
                )
            })
            .collect();
        if !self.unparseable.is_empty() {
            let shown: Vec<String> = self
                .unparseable
                .iter()
                .take(10)
                .map(|n| n.to_string())
                .collect();
            out.push(format!(
                "audit log {}: {} line(s) are not records (torn writes?), line {}{}",
                path.display(),
                self.unparseable.len(),
                shown.join(", "),
                if self.unparseable.len() > 10 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_reads_back_what_it_covered() {
        let ack = Ack {
            time: "t".into(),
            operator: "ann".into(),
            node: "c042n3".into(),
            reason: "RMA open".into(),
            xids: vec![
                "GPU 5 XID 79 ×1".into(),
                "GPU 2 XID 63 ×12".into(),
                "edited by hand".into(),
            ],
        };
        assert_eq!(ack.covered(), [(5, 79, 1), (2, 63, 12)]);
    }
}
