//! The audit log: JSON lines appended and fsync'd, an `intent` before each command and an `outcome` after.
//! An intent without an outcome means fleetop died mid-action; those are shown at the next start.

use std::collections::{BTreeMap, HashSet};
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
    /// The `[[context]]` it was written under (see `docs/security.md`, "Sites sharing an audit log"); absent: no
    /// context, or written before records carried their site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Written with no context: the inventory file it was run with, so it is not taken for a record written
    /// before records carried their site (`store::Scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// Written by `--demo` (practice on the simulated fleet): a real fleet of the same node names ignores it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub demo: bool,
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
    /// The `[[context]]` it was written under (see `docs/security.md`, "Sites sharing an audit log"); absent: no
    /// context, or written before records carried their site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Written with no context: the inventory file it was run with, so it is not taken for a record written
    /// before records carried their site (`store::Scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// Written by `--demo`: a real fleet ignores it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub demo: bool,
}

/// An operator acknowledged a node's XIDs: they stop raising its health until one happens again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub time: String,
    pub operator: String,
    pub node: String,
    pub reason: String,
    /// `GPU 5 XID 79 ×1`, one per acknowledged XID, for people reading the log.
    pub xids: Vec<String>,
    /// What it covers, by time: each XID as far as it had been seen when acknowledged. A record without
    /// it (written before acknowledgements went by time) covers nothing.
    #[serde(default)]
    pub seen: Vec<SeenXid>,
    /// The `[[context]]` it was written under (see `docs/security.md`, "Sites sharing an audit log"); absent: no
    /// context, or written before records carried their site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Written with no context: the inventory file it was run with, so it is not taken for a record written
    /// before records carried their site (`store::Scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// Written by `--demo`: a real fleet ignores it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub demo: bool,
}

/// One acknowledged XID: on this GPU, this code, occurrences up to `last_ms` (its count then, for the
/// clock slack a restarted agent needs; see `fleet::AckedXid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenXid {
    pub gpu: u32,
    pub code: u32,
    pub count: u64,
    /// Unix milliseconds of the last occurrence acknowledged.
    pub last_ms: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
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
    /// The `[[context]]` it was written under (see `docs/security.md`, "Sites sharing an audit log"); absent: no
    /// context, or written before records carried their site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Written with no context: the inventory file it was run with, so it is not taken for a record written
    /// before records carried their site (`store::Scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// Written by `--demo` (which does not write these today): kept apart like every other record.
    #[serde(default, skip_serializing_if = "is_false")]
    pub demo: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "lowercase")]
pub enum Record {
    Intent(Intent),
    Outcome(Outcome),
    Ack(Ack),
    Repaired(Repaired),
}

impl Record {
    /// Whether `--demo` wrote it.
    fn demo(&self) -> bool {
        match self {
            Record::Intent(r) => r.demo,
            Record::Outcome(r) => r.demo,
            Record::Ack(r) => r.demo,
            Record::Repaired(r) => r.demo,
        }
    }

    /// The `[[context]]` it was written under.
    pub(crate) fn site(&self) -> Option<&str> {
        match self {
            Record::Intent(r) => r.site.as_deref(),
            Record::Outcome(r) => r.site.as_deref(),
            Record::Ack(r) => r.site.as_deref(),
            Record::Repaired(r) => r.site.as_deref(),
        }
    }

    /// The inventory file a record written with no context was written with.
    pub(crate) fn inventory(&self) -> Option<&str> {
        match self {
            Record::Intent(r) => r.inventory.as_deref(),
            Record::Outcome(r) => r.inventory.as_deref(),
            Record::Ack(r) => r.inventory.as_deref(),
            Record::Repaired(r) => r.inventory.as_deref(),
        }
    }

    fn scope_mut(&mut self) -> (&mut Option<String>, &mut Option<String>) {
        match self {
            Record::Intent(r) => (&mut r.site, &mut r.inventory),
            Record::Outcome(r) => (&mut r.site, &mut r.inventory),
            Record::Ack(r) => (&mut r.site, &mut r.inventory),
            Record::Repaired(r) => (&mut r.site, &mut r.inventory),
        }
    }

    fn mark_demo(&mut self) {
        match self {
            Record::Intent(r) => r.demo = true,
            Record::Outcome(r) => r.demo = true,
            Record::Ack(r) => r.demo = true,
            Record::Repaired(r) => r.demo = true,
        }
    }
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
            site: None,
            inventory: None,
            demo: false,
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
            site: None,
            inventory: None,
            demo: false,
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
    /// Every record written is marked `demo` (practice on the simulated fleet, `--demo`).
    demo: bool,
    /// The `[[context]]` site every record written is marked with, unless it names one itself; with none, the
    /// inventory file (`store::Scope::mark`).
    site: Option<String>,
    inventory: Option<String>,
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
            demo: false,
            site: None,
            inventory: None,
        })
    }

    /// Marks every record written from now on as `--demo` practice (`demo`: whether it is).
    pub fn practice(mut self, demo: bool) -> AuditLog {
        self.demo = demo;
        self
    }

    /// Marks every record written from now on with `scope`'s site, else (no context) its inventory file.
    pub fn in_scope(mut self, scope: crate::store::Scope) -> AuditLog {
        self.site = scope.site.map(str::to_string);
        self.inventory = scope.mark();
        self
    }

    /// Appends one record and waits until it is on disk.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        let mut line = Vec::new();
        if !self.at_line_start {
            line.push(b'\n');
        }
        let mut marked = record.clone();
        if self.demo {
            marked.mark_demo();
        }
        if marked.site().is_none() && marked.inventory().is_none() {
            let (site, inventory) = marked.scope_mut();
            site.clone_from(&self.site);
            inventory.clone_from(&self.inventory);
        }
        let record = &marked;
        line.extend(serde_json::to_vec(record).map_err(|e| e.to_string())?);
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_all());
        self.at_line_start = written.is_ok();
        written.map_err(|e| format!("audit log {}: {e}", self.path.display()))?;
        // The history store indexes what the log holds, from this one place so nothing is missed; practice
        // records stay out of it, and a store that cannot be written is a warning, never a failed action.
        if !self.demo && !record.demo() {
            crate::store::record(&crate::store::beside(&self.path), &[indexed(record)]);
        }
        Ok(())
    }
}

/// `record` as a history store event.
fn indexed(record: &Record) -> crate::store::Event {
    use crate::store::{kind, Event};
    let ms = |t: &str| {
        humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    let event = match record {
        Record::Intent(i) => Event::node(
            ms(&i.time),
            &i.node,
            kind::ACTION,
            &format!(
                "{} by {}{} ({}: {})",
                i.action,
                i.operator,
                i.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default(),
                i.backend,
                i.command
            ),
        ),
        Record::Outcome(o) => Event::node(
            ms(&o.time),
            &o.node,
            kind::OUTCOME,
            &format!(
                "{} {}{}{}",
                o.action,
                if o.ok { "succeeded" } else { "failed" },
                o.exit_status
                    .map(|s| format!(" (exit {s})"))
                    .unwrap_or_default(),
                if o.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", o.detail)
                }
            ),
        ),
        Record::Ack(a) => Event::node(
            ms(&a.time),
            &a.node,
            kind::ACK,
            &format!(
                "acknowledged by {}: {} ({})",
                a.operator,
                a.reason,
                a.xids.join(", ")
            ),
        ),
        Record::Repaired(r) => {
            let serial = r.gpu_id.strip_prefix("SN ").map(str::to_string);
            Event {
                uuid: serial.is_none().then(|| r.gpu_id.clone()),
                serial,
                gpu: Some(r.gpu),
                ..Event::node(
                    ms(&r.time),
                    &r.node,
                    kind::REPAIR,
                    &format!("{} for {} by {}", r.remedy, r.cause, r.operator),
                )
            }
        }
    };
    Event {
        site: record.site().map(str::to_string),
        inventory: record.inventory().map(str::to_string),
        ..event
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
    /// The last XID acknowledgement of each node of each site, so a restarted TUI keeps it.
    pub acks: Vec<Ack>,
    /// Records that carry neither a site nor an inventory file (written before records carried them): every
    /// context reading the log counts them (`store::Scope::counts`).
    pub siteless: usize,
    /// How many records carry each site, for the first [`MAX_SITES`] sites the log names (a log's text is
    /// untrusted: its names are bounded in count here, and escaped where shown).
    pub sites: BTreeMap<String, usize>,
}

/// Most distinct sites a [`Scan`] counts records of.
pub(crate) const MAX_SITES: usize = 64;

/// The newest `max` bytes of the log at `path` as text, less the partial line a read that starts inside the
/// file begins with; `None` when it cannot be read. Readers that want only recent records (audited resets, a
/// GPU's repairs) use it, so a long log costs them a bounded read.
pub(crate) fn tail(path: &Path, max: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let len = file.metadata().map_or(0, |m| m.len());
    let skip = len.saturating_sub(max);
    file.seek(SeekFrom::Start(skip)).ok()?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    Some(if skip > 0 {
        text.split_once('\n')
            .map_or("", |(_, rest)| rest)
            .to_string()
    } else {
        text.into_owned()
    })
}

/// Reads the log at `path` back (a missing log is an empty one). Unfinished intents and acknowledgements
/// come only from records of the same mode: `demo` reads `--demo`'s practice records, otherwise a real
/// fleet's (practice on the simulated fleet uses the real node names, and must not acknowledge a real XID).
pub(crate) fn scan(path: &Path, demo: bool) -> Scan {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Scan::default();
    };
    let mut unparseable = Vec::new();
    let records: Vec<Record> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str::<Record>(l) {
            Ok(r) => Some(r),
            Err(_) => {
                unparseable.push(i + 1);
                None
            }
        })
        .filter(|r| r.demo() == demo)
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
    let siteless = records
        .iter()
        .filter(|r| r.site().is_none() && r.inventory().is_none())
        .count();
    let mut sites: BTreeMap<String, usize> = BTreeMap::new();
    for site in records.iter().filter_map(Record::site) {
        let full = sites.len() >= MAX_SITES;
        match sites.get_mut(site) {
            Some(count) => *count += 1,
            None if !full => {
                sites.insert(site.to_string(), 1);
            }
            None => {}
        }
    }
    let mut acks: Vec<Ack> = Vec::new();
    for r in records {
        if let Record::Ack(a) = r {
            acks.retain(|old| {
                old.node != a.node || old.site != a.site || old.inventory != a.inventory
            });
            acks.push(a);
        }
    }
    Scan {
        unfinished,
        unparseable,
        acks,
        siteless,
        sites,
    }
}

/// Most characters of one field an operator's warning quotes from the log.
const MAX_QUOTED: usize = 200;

impl Scan {
    /// One line per problem, for the operator: unfinished intents first, then unreadable lines.
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        let mut out: Vec<String> = self
            .unfinished
            .iter()
            .map(|i| {
                // Quoted from a file: the TUI's failure box shows the line as it is.
                let quoted = |field: &str| crate::text::cut(field, MAX_QUOTED);
                format!(
                    "unfinished {} of {}{} by {} at {}: fleetop stopped before recording its outcome; check the node (command: {})",
                    quoted(&i.action),
                    quoted(&i.node),
                    i.site.as_deref().map(|s| format!(" (site {})", quoted(s))).unwrap_or_default(),
                    quoted(&i.operator),
                    quoted(&i.time),
                    quoted(&i.command)
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
#[path = "audit_tests.rs"]
mod tests;
