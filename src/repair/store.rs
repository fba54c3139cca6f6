//! Where a repair's state lives between steps: `$XDG_STATE_HOME/fleetop/repair.json`, written whole to a
//! temporary file, synced and renamed, so a crash leaves the old state or the new one, never half of either.
//! One repair at a time: a process holds `repair.json.lock` (flock) for as long as it works on the state.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::workflow::{now_ms, Workflow};

/// A state file larger than this is not one fleetop wrote.
const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) fn default_path() -> Option<PathBuf> {
    crate::dirs::state().map(|d| d.join("repair.json"))
}

/// The saved workflow, `None` when there is none; a file that cannot be read or parsed is an error naming it
/// and saying how to go on.
pub fn load(path: &Path) -> Result<Option<Workflow>, String> {
    read(path).map_err(|e| {
        format!(
            "{e}; `fleetop repair --abandon` moves it aside (the nodes it named stay as they are: look at them \
             with sinfo or kubectl and undrain by hand what is repaired)"
        )
    })
}

/// [`load`] without the advice: what is wrong with the file.
pub fn read(path: &Path) -> Result<Option<Workflow>, String> {
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

pub(crate) fn save(path: &Path, wf: &Workflow) -> Result<(), String> {
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

/// A state file that cannot be read as one, renamed to `repair.json.corrupt-<unix seconds>` beside it so that
/// nothing of it is lost: the new name.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf, String> {
    let aside = path.with_extension(format!("json.corrupt-{}", now_ms() / 1000));
    std::fs::rename(path, &aside).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(aside)
}

/// Held while a process works on the repair state; released when dropped (or when the process dies: the
/// kernel drops a dead process's flock, so a crash never leaves a stale lock).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: std::fs::File,
}

/// Takes the repair lock beside the state file `path`, without waiting: another process holding it is an
/// error naming that process.
pub fn lock(path: &Path) -> Result<Lock, String> {
    use std::io::{Read, Seek};
    use std::os::unix::io::AsRawFd;
    let lock_path = path.with_extension("json.lock");
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let held = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if held != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("{}: {err}", lock_path.display()));
        }
        let mut text = String::new();
        let _ = (&file).take(64).read_to_string(&mut text);
        let who = match text.trim().parse::<u32>() {
            Ok(pid) => format!("fleetop process {pid}"),
            Err(_) => "another fleetop process".into(),
        };
        return Err(format!(
            "another repair is running: {who} holds {}; wait for it, or stop it (Ctrl-C) and --resume",
            lock_path.display()
        ));
    }
    // Who holds it, for the next one to name; the lock itself is the flock, not this text.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Lock { _file: file })
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
        assert_eq!(load(&path), Ok(Some(wf.clone())));
        std::fs::write(&path, "{\"version\": 1").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("repair.json: not a repair state"), "{err}");
        assert!(err.contains("--abandon` moves it aside"), "{err}");
        let aside = move_aside(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "{\"version\": 1");
        assert_eq!(load(&path), Ok(None));
        save(&path, &wf).unwrap();
        remove(&path).unwrap();
        assert_eq!(load(&path), Ok(None));
    }

    #[test]
    fn the_lock_is_held_once_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetop/repair.json");
        let first = lock(&path).unwrap();
        // flock locks belong to the open file description: a second open in this process is refused too.
        let err = lock(&path).unwrap_err();
        assert!(
            err.contains(&format!("fleetop process {} holds", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = lock(&path);
        assert!(again.is_ok(), "{again:?}");
    }
}
