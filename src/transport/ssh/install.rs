//! `fleetop deploy` on one node: ask what runs there, upload by SFTP to a temporary name beside the agent,
//! check its SHA-256 and that it runs there, and only then rename it into place, so a node never holds half
//! a binary or one that cannot start.

use std::path::Path;
use std::time::Duration;

use super::command::quoted;
use super::endpoint::Endpoint;
pub(crate) use super::inspect::parse_version;
use super::inspect::probe;
pub(crate) use super::inspect::Probe;
use super::known::KnownHosts;
use super::session;
use super::timeouts::Timeouts;
pub(crate) use super::upload::Sent;
use super::upload::{self, Limits};
use crate::telemetry::sanitize::make_inert;

/// How long one remote command may take before the node counts as failed (the upload has its own
/// limits, [`Limits`]).
pub(crate) use super::inspect::Service;
use super::inspect::{script, STEP_LIMIT};
/// How long one call while checking the restarted service may wait.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// The binary to install, with what it needs from a node.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    /// What goes over the wire: the file to install, gzip-compressed (the node runs `gzip -dc`).
    pub compressed: std::sync::Arc<Vec<u8>>,
    /// Lowercase hex SHA-256 of the file to install (decompressed): checked on the node before the rename.
    pub sha256: String,
    /// Lowercase hex SHA-256 of the file deploy was given, before its debug sections were stripped: a node
    /// holding that file runs the same build too (as earlier releases installed it).
    pub source_sha256: String,
    /// Sizes in bytes of the file to install and of the file deploy was given.
    pub installed_len: usize,
    pub source_len: usize,
    /// How the file to install was made from the one given ("debug sections stripped", or why not).
    pub stripped: String,
    /// The architecture as `uname -m` names it (`x86_64`, `aarch64`).
    pub arch: String,
    /// The newest glibc symbol version it links against, when it links against glibc.
    pub glibc: Option<(u32, u32)>,
}

/// How a node's install ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Installed {
    /// The agent path already holds this exact binary.
    Current {
        version: Option<String>,
    },
    /// `--dry-run`: it would be updated.
    WouldUpdate {
        from: Option<String>,
    },
    Updated {
        from: Option<String>,
        to: String,
        /// What changed: the agent, its unit, or both.
        detail: String,
        /// How the agent went over the wire, when it was uploaded.
        upload: Option<Sent>,
    },
    Failed(String),
}

/// Installs `payload` at `path` (absolute) on the node. `before_change` runs after the probe and before
/// anything on the node changes (the audit intent); its error stops this node untouched.
#[allow(clippy::too_many_arguments)]
pub fn install(
    ep: &Endpoint,
    known_hosts: &KnownHosts,
    t: &Timeouts,
    payload: &Payload,
    path: &str,
    service: Option<&Service>,
    dry_run: bool,
    before_change: &mut dyn FnMut(&Probe) -> Result<(), String>,
) -> Installed {
    let connected = match session::connect(ep, known_hosts, t) {
        Ok(c) => c,
        Err(f) => return Installed::Failed(f.detail),
    };
    let s = &connected.session;
    s.set_timeout(u32::try_from(STEP_LIMIT.as_millis()).unwrap_or(u32::MAX));
    let probe = match probe(s, path, service) {
        Ok(p) => p,
        Err(why) => return Installed::Failed(why),
    };
    if probe.directory {
        return Installed::Failed(format!(
            "agent_path {path} is a directory on the node; name the binary itself (e.g. {}/fleetop)",
            path.trim_end_matches('/')
        ));
    }
    if let Some(why) = cannot_run(payload, &probe) {
        return Installed::Failed(why);
    }
    let agent_current = probe
        .installed_sha256
        .as_deref()
        .is_some_and(|h| h == payload.sha256 || h == payload.source_sha256);
    if !agent_current && !probe.gzip {
        return Installed::Failed(
            "the node has no gzip on its PATH; deploy sends the agent compressed and needs `gzip -dc` there"
                .into(),
        );
    }
    let unit_current =
        service.is_none_or(|svc| probe.unit_sha256.as_deref() == Some(svc.sha256.as_str()));
    if agent_current && unit_current {
        return Installed::Current {
            version: probe.installed_version,
        };
    }
    if dry_run {
        return Installed::WouldUpdate {
            from: probe.installed_version,
        };
    }
    if let Err(why) = before_change(&probe) {
        return Installed::Failed(why);
    }
    let mut changed = Vec::new();
    let mut sent = None;
    let to = if agent_current {
        probe.installed_version.clone().unwrap_or_default()
    } else {
        let temporary = temporary_path(path);
        let limits = Limits::for_len(payload.compressed.len(), t.stall);
        match upload::upload(s, &temporary, &payload.compressed, limits) {
            Ok(via) => sent = Some(via),
            Err(why) => {
                // The stalled session is left as it is; a new one removes the partial files.
                let left = upload::remove_leftover(ep, known_hosts, t, &temporary, STEP_LIMIT)
                    .err()
                    .map_or(String::new(), |e| {
                        format!("; {temporary} may remain on the node: {e}")
                    });
                return Installed::Failed(format!("{why}{left}"));
            }
        }
        match finish(s, &temporary, path, &payload.sha256) {
            Ok(to) => {
                changed.push("agent installed".to_string());
                to
            }
            Err(why) => return Installed::Failed(why),
        }
    };
    if let Some(svc) = service {
        let started = start_service(s, svc).and_then(|()| {
            s.set_timeout(u32::try_from(ANSWER_LIMIT.as_millis()).unwrap_or(u32::MAX));
            super::service::check_started(s, &svc.name, &svc.listen)
        });
        match started {
            Ok(answered) => changed.push(format!("{} enabled and restarted; {answered}", svc.name)),
            Err(why) => return Installed::Failed(format!("{}{why}", done_so_far(&changed))),
        }
    }
    Installed::Updated {
        from: probe.installed_version,
        to,
        detail: changed.join("; "),
        upload: sent,
    }
}

fn done_so_far(changed: &[String]) -> String {
    if changed.is_empty() {
        String::new()
    } else {
        format!("{}, but ", changed.join("; "))
    }
}

/// Writes the unit (beside itself, then renamed), reloads systemd, enables and restarts the service, so a
/// new agent binary is the one running.
fn start_service(s: &ssh2::Session, svc: &Service) -> Result<(), String> {
    let unit = format!("{}/{}", svc.dir.trim_end_matches('/'), svc.name);
    let text = format!(
        "u={u}; t={u}.fleetop-deploy-{pid}\n\
         printf '%s' {body} > \"$t\" || {{ rm -f \"$t\"; echo \"cannot write $u\"; exit 3; }}\n\
         mv -f \"$t\" \"$u\" || {{ rm -f \"$t\"; exit 3; }}\n\
         systemctl daemon-reload && systemctl enable {name} && systemctl restart {name}\n",
        u = quoted(&unit),
        pid = std::process::id(),
        body = quoted(&svc.text),
        name = quoted(&svc.name),
    );
    script(s, &text)
        .map(|_| ())
        .map_err(|e| format!("the systemd unit: {e}"))
}

/// Why the node cannot run the binary, before anything is uploaded: another architecture, an older glibc.
fn cannot_run(payload: &Payload, probe: &Probe) -> Option<String> {
    if probe.arch != payload.arch {
        return Some(format!(
            "the node is {}, the binary is built for {}; deploy one built for {} with --binary",
            probe.arch, payload.arch, probe.arch
        ));
    }
    match (payload.glibc, probe.glibc) {
        (Some(need), Some(has)) if has < need => Some(format!(
            "the node has glibc {}.{}, the binary needs {}.{} or newer",
            has.0, has.1, need.0, need.1
        )),
        _ => None,
    }
}

/// A hidden name in the agent's own directory, so the final rename stays on one filesystem (atomic).
fn temporary_path(path: &str) -> String {
    let p = Path::new(path);
    let dir = p.parent().map_or("/".into(), |d| d.display().to_string());
    let name = p
        .file_name()
        .map_or("fleetop".into(), |n| n.to_string_lossy().into_owned());
    format!(
        "{}/.{name}.fleetop-deploy-{}",
        dir.trim_end_matches('/'),
        std::process::id()
    )
}

/// Checks the upload's hash and that it runs, then renames it into place; returns what `--version` printed.
fn finish(s: &ssh2::Session, temporary: &str, path: &str, sha256: &str) -> Result<String, String> {
    let text = format!(
        "t={t}; p={p}\n\
         h=$(sha256sum \"$t\" 2>&1) || {{ rm -f \"$t\"; echo \"cannot checksum the upload: $h\"; exit 3; }}\n\
         [ \"${{h%% *}}\" = {sha256} ] || {{ rm -f \"$t\"; echo \"checksum mismatch after upload: ${{h%% *}}\"; exit 3; }}\n\
         v=$(timeout 30 \"$t\" --version 2>&1) || {{ rm -f \"$t\"; echo \"the binary does not run on this node: $v\"; exit 3; }}\n\
         [ -d \"$p\" ] && {{ rm -f \"$t\"; echo \"$p is a directory\"; exit 3; }}\n\
         mv -f \"$t\" \"$p\" || {{ rm -f \"$t\"; exit 3; }}\n\
         echo \"$v\"\n",
        t = quoted(temporary),
        p = quoted(path),
    );
    let out = script(s, &text)?;
    let mut version = out.lines().next().unwrap_or("").trim().to_string();
    make_inert(&mut version, 80);
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_architecture_or_an_older_glibc_is_refused_before_upload() {
        let payload = Payload {
            compressed: std::sync::Arc::new(Vec::new()),
            sha256: "0".repeat(64),
            source_sha256: "1".repeat(64),
            installed_len: 0,
            source_len: 0,
            stripped: String::new(),
            arch: "x86_64".into(),
            glibc: Some((2, 34)),
        };
        let node = |arch: &str, glibc| Probe {
            arch: arch.into(),
            glibc,
            installed_sha256: None,
            installed_version: None,
            unit_sha256: None,
            directory: false,
            gzip: true,
        };
        assert_eq!(cannot_run(&payload, &node("x86_64", Some((2, 36)))), None);
        assert_eq!(
            cannot_run(&payload, &node("x86_64", None)),
            None,
            "musl or unknown: the run check decides"
        );
        let arm = cannot_run(&payload, &node("aarch64", Some((2, 36)))).unwrap();
        assert!(arm.contains("aarch64") && arm.contains("x86_64"), "{arm}");
        let old = cannot_run(&payload, &node("x86_64", Some((2, 28)))).unwrap();
        assert!(old.contains("glibc 2.28") && old.contains("2.34"), "{old}");
    }

    #[test]
    fn the_temporary_file_sits_beside_the_agent() {
        let t = temporary_path("/usr/local/bin/fleetop");
        assert!(
            t.starts_with("/usr/local/bin/.fleetop.fleetop-deploy-"),
            "{t}"
        );
    }
}
