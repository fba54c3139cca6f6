//! Writes an RMA bundle: one tar.gz (the `tar` crate over `flate2`) holding the members under one folder and
//! `manifest.json` last, every header made here (mode 0644, owner 0, the bundle's own time: nothing of the
//! operator's user, home or environment). Within [`MAX_TOTAL_BYTES`] altogether. Written to a hidden file beside
//! `out` and moved into place only when complete; an existing `out` is kept unless `force`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::member::{Identity, Member, Status};

/// Most bytes of all members together (the manifest apart, which is small).
pub(crate) const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// What the bundle holds and what it lacks, and why.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    schema: &'static str,
    node: &'a str,
    gpu: u32,
    serial: Option<&'a str>,
    uuid: Option<&'a str>,
    /// RFC 3339, UTC.
    created: String,
    fleetop: &'static str,
    /// Every member collected (or truncated to its bound), none missing for a failure.
    complete: bool,
    members: &'a [Member],
}

/// Whether every member was collected or found to be empty (nothing failed).
pub fn complete(members: &[Member]) -> bool {
    members.iter().all(|m| m.status != Status::Failed)
}

/// The bundle's folder: `rma-NODE-gpuN[-SERIAL]`, of safe characters only.
pub fn folder(node: &str, gpu: u32, identity: Option<&Identity>) -> String {
    let serial = identity
        .and_then(|i| i.serial.as_deref())
        .map(|s| format!("-{s}"))
        .unwrap_or_default();
    format!("rma-{node}-gpu{gpu}{serial}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// Cuts members past [`MAX_TOTAL_BYTES`] (the later ones give way: identity and `nvidia-smi -q` come first).
pub(crate) fn bound_total(members: &mut [Member]) {
    let mut left = MAX_TOTAL_BYTES;
    for m in members.iter_mut() {
        if m.text.len() <= left {
            left -= m.text.len();
            continue;
        }
        let (text, _) = super::member::tail_within(std::mem::take(&mut m.text), left);
        m.text = text;
        m.bytes = m.text.len();
        left -= m.text.len();
        m.status = Status::Truncated;
        m.detail = Some(format!(
            "cut to keep the bundle within {} KiB",
            MAX_TOTAL_BYTES / 1024
        ));
    }
}

/// Writes `members` and their manifest to `out` (see the module's rules); `now_s` is the bundle's time, Unix s.
pub fn write(
    out: &Path,
    force: bool,
    node: &str,
    gpu: u32,
    identity: Option<&Identity>,
    members: &[Member],
    now_s: u64,
) -> Result<(), String> {
    if out.exists() && !force {
        return Err(exists(out));
    }
    let root = folder(node, gpu, identity);
    let manifest = Manifest {
        schema: "fleetop.rma/1",
        node,
        gpu,
        serial: identity.and_then(|i| i.serial.as_deref()),
        uuid: identity.and_then(|i| i.uuid.as_deref()),
        created: humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(now_s),
        )
        .to_string(),
        fleetop: env!("CARGO_PKG_VERSION"),
        complete: complete(members),
        members,
    };
    let manifest = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
    let tmp = hidden_beside(out);
    let written = (|| -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let present = members.iter().filter(|m| !m.text.is_empty());
        for (name, text) in present
            .map(|m| (m.name.as_str(), m.text.as_str()))
            .chain([("manifest.json", manifest.as_str())])
        {
            let mut header = tar::Header::new_ustar();
            header.set_path(format!("{root}/{name}"))?;
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(now_s);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            tar.append(&header, text.as_bytes())?;
        }
        let mut file = tar.into_inner()?.finish()?;
        file.flush()?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", out.display()));
    }
    place(&tmp, out, force)
}

/// Moves the finished `tmp` to `out`: a rename with `force`, else a hard link, which fails rather than replace
/// a file that appeared meanwhile.
fn place(tmp: &Path, out: &Path, force: bool) -> Result<(), String> {
    let moved = if force {
        std::fs::rename(tmp, out)
    } else {
        match std::fs::hard_link(tmp, out) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(tmp);
                return Err(exists(out));
            }
            // A filesystem without hard links: the check before writing stands.
            Err(_) if !out.exists() => std::fs::rename(tmp, out),
            other => other.and_then(|()| std::fs::remove_file(tmp)),
        }
    };
    moved.map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        format!("{}: {e}", out.display())
    })
}

fn exists(out: &Path) -> String {
    format!(
        "{} exists: give another --out, or --force to replace it",
        out.display()
    )
}

/// `.NAME.PID.tmp` beside `out`, so the final move stays on one filesystem.
fn hidden_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "rma".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, text: &str) -> Member {
        Member {
            name: name.into(),
            status: Status::Collected,
            bytes: text.len(),
            detail: None,
            text: text.into(),
        }
    }

    fn read(path: &Path) -> Vec<(String, u32, u64, String)> {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
        let mut archive = tar::Archive::new(gz);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut e, &mut text).unwrap();
                let h = e.header();
                (
                    h.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    text,
                )
            })
            .collect()
    }

    #[test]
    fn a_bundle_is_written_whole_and_not_over_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("gpu3.tar.gz");
        let mut members = vec![
            member("identity.json", "{}\n"),
            Member {
                name: "kernel-log.txt".into(),
                status: Status::Failed,
                bytes: 0,
                detail: Some("exit status 3: cannot read the kernel log".into()),
                text: String::new(),
            },
            member("history.json", &"h".repeat(MAX_TOTAL_BYTES)),
        ];
        bound_total(&mut members);
        assert_eq!(members[2].status, Status::Truncated);
        write(&out, false, "n/1", 3, None, &members, 1_700_000_000).unwrap();
        let entries = read(&out);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "rma-n_1-gpu3/identity.json",
                "rma-n_1-gpu3/history.json",
                "rma-n_1-gpu3/manifest.json"
            ]
        );
        assert!(entries.iter().all(|e| e.1 == 0o644 && e.2 == 0));
        let total: usize = entries.iter().map(|e| e.3.len()).sum();
        assert!(total <= MAX_TOTAL_BYTES + 4096, "{total}");
        let manifest: serde_json::Value = serde_json::from_str(&entries[2].3).unwrap();
        assert_eq!(manifest["complete"], false);
        assert_eq!(manifest["members"][1]["status"], "failed");
        assert_eq!(manifest["created"], "2023-11-14T22:13:20Z");
        // An existing file is kept without --force, replaced with it; no temporary file is left.
        std::fs::write(&out, "mine").unwrap();
        assert!(write(&out, false, "n1", 3, None, &members, 0)
            .unwrap_err()
            .contains("--force"));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
        write(&out, true, "n1", 3, None, &members, 0).unwrap();
        assert_eq!(read(&out).len(), 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
