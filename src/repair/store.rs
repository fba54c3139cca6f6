//! Where a repair's state lives between steps: `$XDG_STATE_HOME/fleetop/repair.json`, written whole to a
//! temporary file, synced and renamed, so a crash leaves the old state or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Workflow;

/// A state file larger than this is not one fleetop wrote.
const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;

pub fn default_path() -> Option<PathBuf> {
    crate::dirs::state().map(|d| d.join("repair.json"))
}

/// The saved workflow, `None` when there is none; a file that cannot be read or parsed is an error naming it.
pub fn load(path: &Path) -> Result<Option<Workflow>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(format!(
            "{}: {} bytes is too large for a repair state",
            path.display(),
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not a repair state: {e}", path.display()))
}

pub fn save(path: &Path, wf: &Workflow) -> Result<(), String> {
    let shown = || path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", shown()))?;
    }
    let text = serde_json::to_vec_pretty(wf).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", shown()))
}

pub fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// True when `pid` is another fleetop process that is still running (it holds the workflow).
pub fn held_by_other(pid: u32) -> bool {
    if pid == std::process::id() || pid == 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "fleetop")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair::{Limits, Step};

    #[test]
    fn a_saved_workflow_loads_back_and_garbage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repair.json");
        assert_eq!(load(&path), Ok(None));
        let inv = crate::inventory::Inventory::demo();
        let limits = Limits {
            max_wait: std::time::Duration::from_secs(7200),
            kill_after: None,
            poll: std::time::Duration::from_secs(10),
        };
        let mut wf = Workflow::new(&inv, &[0, 1], "XID 79", "ana", limits);
        wf.nodes[1].step = Step::WaitBack {
            since_ms: 5,
            went_down: true,
        };
        save(&path, &wf).unwrap();
        assert_eq!(load(&path), Ok(Some(wf)));
        std::fs::write(&path, "{\"version\": 1").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("repair.json: not a repair state"), "{err}");
        remove(&path).unwrap();
        assert_eq!(load(&path), Ok(None));
    }
}
