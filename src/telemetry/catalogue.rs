//! NVIDIA's XID and SXid catalogue as NVIDIA ships it in NVSentinel (the CSV files beside this module, with their
//! source and licence in `SOURCE.md`), and what each of its resolution buckets means to an on-call engineer.
//!
//! The files are compiled in and parsed on first use. A row this build cannot read is a failing test
//! (`every_row_parses`), never a panic: at run time an unreadable table reads as empty, so every code is
//! "unclassified" (warn) rather than silently ok.

mod doc;

use std::sync::OnceLock;

pub use doc::{render_markdown, BEGIN, END};

/// `code,mnemonic,resolution bucket,FATAL|NONFATAL` for GPU XIDs.
const XID_CSV: &str = include_str!("catalogue/xiderrorsmapping.csv");
/// The same columns for NVSwitch SXids.
const SXID_CSV: &str = include_str!("catalogue/sxiderrorsmapping.csv");

/// How urgent a bucket is. `Info` adds a reason and leaves the health `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warn,
    Crit,
}

/// One catalogue row with fleetop's reading of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub code: u32,
    /// NVIDIA's name for the error (empty for a few new codes), without the file's stray spaces.
    pub mnemonic: &'static str,
    /// NVIDIA's resolution bucket (immediate action), as the file spells it.
    pub action: &'static str,
    /// The file's FATAL/NONFATAL column.
    pub fatal: bool,
    pub severity: Severity,
    /// What to do, in words, naming the mnemonic and NVIDIA's bucket: the reason shown to the operator.
    pub what: String,
}

/// What fleetop makes of each resolution bucket, and what it tells the operator to do. `None`: a bucket this
/// build does not know (a test fails on it, so a new catalogue is read before it ships).
///
/// Crit: the GPU, node or fabric needs an operator now (reset, reboot, a mechanical or thermal check, a field
/// diagnostic, a fabric reset, one of NVIDIA's workflows). Warn: NVIDIA asks to report an unexpected error, or a
/// software/firmware update. Information: the application's fault (restart it) or an event the catalogue says to
/// ignore. Decisions beyond the brief: `WORKFLOW_XID_45` (NONFATAL) is information, because XID 45 is the cleanup
/// after an earlier XID, which carries its own verdict; `CHECK_UVM` (XID 159, NONFATAL) is information about the
/// application's unified-memory use; `UPDATE_SWFW` (XID 78, vGPU start) warns; `RESTART_VM` (XID 151, FATAL)
/// is crit, a reboot on bare metal.
pub(crate) fn bucket(action: &str) -> Option<(Severity, &'static str)> {
    use Severity::{Crit, Info, Warn};
    Some(match action {
        "RESET_GPU" => (Crit, "reset the GPU"),
        "RESTART_BM" => (Crit, "reboot the node"),
        "CHECK_MECHANICALS" => (
            Crit,
            "check the GPU's power and mechanics (cables, seating, cooling)",
        ),
        "WORKFLOW_XID_45" => (
            Info,
            "cleanup after an earlier error or a stopped application: the earlier XID carries the verdict",
        ),
        "WORKFLOW_XID_48" => (
            Crit,
            "double-bit ECC error: reset the GPU, then check row remapping (XID 63/64)",
        ),
        "WORKFLOW_NVLINK_ERR" | "WORKFLOW_NVLINK5_ERR" => {
            (Crit, "NVLink error: reset the GPU, then check the link")
        }
        "WORKFLOW_NVLINK_POTENTIALY_FATAL_ERR" => (
            Crit,
            "NVLink fabric error that may stall traffic: reset the fabric (reboot the node) if jobs hang",
        ),
        a if a.starts_with("WORKFLOW_") => (Crit, "follow NVIDIA's workflow for this code"),
        "RESET_FABRIC" => (Crit, "reset the NVLink fabric: reboot the node"),
        "CHECK_LINK_MECHANICAL_CONNECTIONS" => (
            Crit,
            "check the link's mechanical connections (cables, connectors)",
        ),
        "CHECK_THERMALS" => (Crit, "check cooling: the switch or a transceiver is too hot"),
        "INVESTIGATE_LINK_SI" => (Crit, "investigate the link's signal integrity"),
        "RUN_FIELDDIAG" => (Crit, "run NVIDIA's field diagnostics"),
        "CHECK_FM_CONFIG" => (Crit, "check the Fabric Manager configuration"),
        "RESTART_VM" => (Crit, "restart the VM (on bare metal: reboot the node)"),
        "CONTACT_SUPPORT" | "UNEXPECTED_ERR_REPORT_ISSUE" | "REPORT_ISSUE" => (
            Warn,
            "unexpected error: report it to NVIDIA support if it repeats",
        ),
        "UPDATE_SWFW" => (Warn, "update the driver or firmware"),
        "RESTART_APP" => (Info, "application fault: restart the application"),
        "IGNORE" => (Info, "informational, no action"),
        "CHECK_UVM" => (
            Info,
            "check the application's unified-memory (UVM) use",
        ),
        // XID 154: "Follow guidance as it applies to another Xid" (sic): the driver's recovery action says what.
        a if a.starts_with("Follow guidance") => (
            Crit,
            "recovery action required: follow the action nvidia-smi -q reports",
        ),
        _ => return None,
    })
}

/// Reads one catalogue file; the first bad row is an error naming its line. Rows come back sorted by code.
pub fn parse(text: &'static str) -> Result<Vec<Entry>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        let fields: Vec<&'static str> = line.split(',').collect();
        let [code, mnemonic, action, fatal] = fields[..] else {
            return Err(at("not four fields"));
        };
        let code: u32 = code.trim().parse().map_err(|_| at("bad code"))?;
        let fatal = match fatal.trim() {
            "FATAL" => true,
            "NONFATAL" => false,
            _ => return Err(at("severity is neither FATAL nor NONFATAL")),
        };
        let (mnemonic, action) = (mnemonic.trim(), action.trim());
        let (severity, words) = bucket(action).ok_or_else(|| at("unknown resolution bucket"))?;
        let label = if action.starts_with("Follow guidance") {
            "follow the other XID's guidance"
        } else {
            action
        };
        let what = match mnemonic {
            "" => format!("{words} (NVIDIA: {label})"),
            m => format!("{words} ({m}; NVIDIA: {label})"),
        };
        rows.push(Entry {
            code,
            mnemonic,
            action,
            fatal,
            severity,
            what,
        });
    }
    rows.sort_by_key(|e| e.code);
    if let Some(w) = rows.windows(2).find(|w| w[0].code == w[1].code) {
        return Err(format!("code {} listed twice", w[0].code));
    }
    Ok(rows)
}

fn table(cell: &'static OnceLock<Vec<Entry>>, text: &'static str) -> &'static [Entry] {
    cell.get_or_init(|| parse(text).unwrap_or_default())
}

/// Every XID row, by code.
pub fn xids() -> &'static [Entry] {
    static XIDS: OnceLock<Vec<Entry>> = OnceLock::new();
    table(&XIDS, XID_CSV)
}

/// Every SXid row, by code.
pub fn sxids() -> &'static [Entry] {
    static SXIDS: OnceLock<Vec<Entry>> = OnceLock::new();
    table(&SXIDS, SXID_CSV)
}

fn find(rows: &'static [Entry], code: u32) -> Option<&'static Entry> {
    rows.binary_search_by_key(&code, |e| e.code)
        .ok()
        .map(|i| &rows[i])
}

/// The catalogue's row for a GPU XID, if it has one.
pub fn xid(code: u32) -> Option<&'static Entry> {
    find(xids(), code)
}

/// The catalogue's row for an NVSwitch SXid, if it has one.
pub fn sxid(code: u32) -> Option<&'static Entry> {
    find(sxids(), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_once() {
        let xids = parse(XID_CSV).expect("XID catalogue");
        assert_eq!(xids.len(), 162, "XIDs 1-162");
        assert_eq!(xids.len(), XID_CSV.lines().count(), "no row skipped");
        assert!(xids.iter().enumerate().all(|(i, e)| e.code == i as u32 + 1));
        let sxids = parse(SXID_CSV).expect("SXid catalogue");
        assert_eq!(sxids.len(), 398);
        assert_eq!(sxids.len(), SXID_CSV.lines().count(), "no row skipped");
        assert_eq!(xids, super::xids(), "the table in use is the parsed one");
    }

    #[test]
    fn a_bad_row_is_an_error_naming_its_line() {
        for bad in [
            "1,A,RESET_GPU,FATAL\n2,B,RESET_GPU\n",
            "1,A,RESET_GPU,FATAL\nx,B,RESET_GPU,FATAL\n",
            "1,A,RESET_GPU,FATAL\n2,B,REBOOT_EVERYTHING,FATAL\n",
            "1,A,RESET_GPU,FATAL\n2,B,RESET_GPU,MAYBE\n",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("line 2:"), "{e}");
        }
        assert_eq!(
            parse("7,A,IGNORE,NONFATAL\n7,B,IGNORE,NONFATAL\n").unwrap_err(),
            "code 7 listed twice"
        );
    }

    #[test]
    fn quirks_of_the_files_are_read_as_meant() {
        let e = xid(160).unwrap();
        assert_eq!(
            (e.mnemonic, e.action),
            ("CHANNEL_RETIREMENT_EVENT", "RESTART_BM")
        );
        assert_eq!(xid(162).unwrap().mnemonic, "");
        assert_eq!(xid(154).unwrap().severity, Severity::Crit);
        assert_eq!(sxid(28006).unwrap().severity, Severity::Warn);
    }
}
