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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Record {
    Intent(Intent),
    Outcome(Outcome),
    Ack(Ack),
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The default location: `$XDG_STATE_HOME/fleetop/audit.jsonl` (`~/.local/state/fleetop/audit.jsonl`).
pub fn default_path() -> PathBuf {
    crate::dirs::state()
        .unwrap_or_else(|| PathBuf::from(".").join("fleetop"))
        .join("audit.jsonl")
}

pub struct AuditLog {
    pub path: PathBuf,
    file: File,
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
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record and waits until it is on disk.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        let mut line = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| format!("audit log {}: {e}", self.path.display()))
    }
}

/// Intents in the log at `path` that never got an outcome.
pub fn unfinished(path: &Path) -> Vec<Intent> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let records: Vec<Record> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let done: HashSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Outcome(o) => Some(o.id.as_str()),
            Record::Intent(_) | Record::Ack(_) => None,
        })
        .collect();
    records
        .iter()
        .filter_map(|r| match r {
            Record::Intent(i) if !done.contains(i.id.as_str()) => Some(i.clone()),
            _ => None,
        })
        .collect()
}
