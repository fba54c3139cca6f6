//! What `fleetop deploy` asks a node before it changes anything, in one command: architecture, glibc, the
//! installed agent's hash and version, the unit's hash, whether the agent path is a directory, and whether
//! `gzip` is there to decompress the upload. Every line is the node's word.

use super::command::quoted;
use super::oneshot;
use crate::telemetry::sanitize::make_inert;
use crate::transport::Ending;

/// How long one command of an install may take (the probe, a rename, the unit's restart).
pub(super) const STEP_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A systemd unit to install beside the agent (`deploy --systemd`), enabled and restarted.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The unit's directory on the node (`/etc/systemd/system`).
    pub dir: String,
    pub name: String,
    pub text: String,
    /// Lowercase hex of `text`.
    pub sha256: String,
    /// Where the agent it runs listens (`agent --listen`): asked once the service is restarted.
    pub listen: String,
}

/// Runs a script with `sh -c` and returns its stdout lines, or why it failed.
pub(super) fn script(s: &ssh2::Session, text: &str) -> Result<String, String> {
    let done = oneshot::run_on(s, &format!("sh -c {}", quoted(text)), STEP_LIMIT)
        .map_err(|e| format!("SSH: {e}"))?;
    let mut said = format!("{}{}", done.stdout.trim(), done.stderr.trim());
    make_inert(&mut said, 300);
    match done.ending {
        Ending::Exited(0) => Ok(done.stdout),
        Ending::Exited(code) => Err(format!("exit {code}: {said}")),
        Ending::Signalled(sig) => Err(format!("killed by signal {sig}: {said}")),
        Ending::Dropped(why) => Err(format!("connection lost: {why}")),
        Ending::TimedOut(limit) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

/// What a node runs now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    pub arch: String,
    pub glibc: Option<(u32, u32)>,
    /// The SHA-256 of the file at the agent path, when there is one.
    pub installed_sha256: Option<String>,
    /// What that file's `--version` printed.
    pub installed_version: Option<String>,
    /// The SHA-256 of the systemd unit, when one was asked about and is there.
    pub unit_sha256: Option<String>,
    /// The agent path names a directory on the node (a rename would move the upload into it).
    pub directory: bool,
    /// `gzip` is on the node's PATH (it decompresses the upload).
    pub gzip: bool,
}
/// Architecture, glibc, the installed file's hash and version, and the unit's hash, in one command.
pub(super) fn probe(
    s: &ssh2::Session,
    path: &str,
    service: Option<&Service>,
) -> Result<Probe, String> {
    let unit = service.map_or_else(
        || "/nonexistent/fleetop-no-unit".to_string(),
        |svc| format!("{}/{}", svc.dir.trim_end_matches('/'), svc.name),
    );
    let text = format!(
        "p={}; u={}\nuname -m\ngetconf GNU_LIBC_VERSION 2>/dev/null || echo -\n\
         if [ -f \"$p\" ]; then\n  h=$(sha256sum \"$p\" 2>/dev/null) && echo \"${{h%% *}}\" || echo -\n  \
         v=$(timeout 10 \"$p\" --version 2>/dev/null | head -n 1); echo \"${{v:--}}\"\n\
         else\n  echo -; echo -\nfi\n\
         h=$(sha256sum \"$u\" 2>/dev/null) && echo \"${{h%% *}}\" || echo -\n\
         if [ -d \"$p\" ]; then echo directory; else echo -; fi\n\
         if command -v gzip >/dev/null 2>&1; then echo gzip; else echo -; fi\n",
        quoted(path),
        quoted(&unit)
    );
    let out = script(s, &text).map_err(|e| format!("cannot inspect the node: {e}"))?;
    parse_probe(&out)
}

/// The probe's seven lines; every one is the node's word, so each is checked or made inert.
pub(crate) fn parse_probe(out: &str) -> Result<Probe, String> {
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let [arch, libc, hash, version, unit, kind, gzip] = lines[..] else {
        return Err(format!(
            "cannot inspect the node: expected 7 lines, got {}",
            lines.len()
        ));
    };
    let known = |v: &str| (v != "-" && !v.is_empty()).then(|| v.to_string());
    let sha256 =
        |v: &str| known(v).filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let installed_sha256 = sha256(hash);
    let installed_version = known(version).map(|mut v| {
        make_inert(&mut v, 80);
        v
    });
    let mut arch = arch.to_string();
    make_inert(&mut arch, 32);
    Ok(Probe {
        arch,
        glibc: libc.strip_prefix("glibc ").and_then(parse_version),
        installed_sha256,
        installed_version,
        unit_sha256: sha256(unit),
        directory: kind == "directory",
        gzip: gzip == "gzip",
    })
}

/// `2.36` (or `2.2.5`) → (2, 36).
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_read_line_by_line_and_checked() {
        let hash = "a".repeat(64);
        let p = parse_probe(&format!(
            "x86_64\nglibc 2.36\n{hash}\nfleetop 0.1.0 (build x)\n{hash}\n-\ngzip\n"
        ))
        .unwrap();
        assert_eq!(p.unit_sha256.as_deref(), Some(hash.as_str()));
        assert_eq!(p.arch, "x86_64");
        assert_eq!(p.glibc, Some((2, 36)));
        assert_eq!(p.installed_sha256.as_deref(), Some(hash.as_str()));
        assert_eq!(
            p.installed_version.as_deref(),
            Some("fleetop 0.1.0 (build x)")
        );

        let none = parse_probe("aarch64\n-\n-\n-\n-\n-\n-\n").unwrap();
        assert_eq!(
            (none.glibc, none.installed_sha256, none.installed_version),
            (None, None, None)
        );

        let hostile =
            parse_probe("x86_64\nglibc 2.36\nnot-a-hash\n\u{1b}[2Jowned\n-\n-\ngzip\n").unwrap();
        assert_eq!(
            hostile.installed_sha256, None,
            "only a SHA-256 is taken as one"
        );
        assert!(!hostile.installed_version.unwrap().contains('\u{1b}'));
        assert!(parse_probe("x86_64\n").is_err());
        assert!(!p.directory && !none.directory);
        assert!(p.gzip && !none.gzip, "a node without gzip is seen");
        let dir = parse_probe("x86_64\n-\n-\n-\n-\ndirectory\n-\n").unwrap();
        assert!(dir.directory, "an agent_path naming a directory is seen");
    }
}
