//! `fleetop deploy`: puts an agent binary on nodes, a bounded number at a time, behind the read-only guard,
//! with an audit intent before a node changes and its outcome after. The SSH side is
//! `transport/ssh/install.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::audit::{self, AuditLog};
use super::exec::Reach;
use super::run::record_id;
use super::slim;
use crate::inventory::{Inventory, NodeId};
use crate::transport::ssh::endpoint;
use crate::transport::ssh::install::{self, Installed, Payload};

/// Where an agent goes when the inventory names it without a directory (found on the node's PATH).
pub const DEFAULT_DIR: &str = "/usr/local/bin";
/// The agent's systemd unit (`deploy --systemd`, and the Debian package's).
pub(crate) const UNIT_NAME: &str = "fleetop-agent.service";
/// Where `deploy --systemd` puts the unit by default.
pub(crate) const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
/// Where the agent's exporter listens by default: beside dcgm-exporter's 9400.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:9401";
/// Largest binary deploy reads: far above fleetop's own size, far below what a mistake could send.
const MAX_BINARY: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct DeployRequest {
    pub nodes: Vec<NodeId>,
    pub dry_run: bool,
    pub read_only: bool,
    pub operator: String,
    pub reason: Option<String>,
    /// Nodes installing at once.
    pub parallel: usize,
    /// Also install, enable and restart the agent's systemd unit (`agent --listen`).
    pub systemd: Option<Systemd>,
}

/// `deploy --systemd`: where the unit goes and where the agent listens.
#[derive(Debug, Clone)]
pub(crate) struct Systemd {
    pub unit_dir: String,
    pub listen: String,
}

/// One word of a unit's command line (`ExecStart=`) as systemd.service(5), "Command lines", reads it back:
/// words split on whitespace unless double-quoted, where C escapes apply (so `\` and `"` are escaped);
/// `$` expands variables and `%` specifiers (systemd.unit(5)) even inside quotes, so both are doubled; a lone
/// `;` separates commands. A control character (a newline would start another directive) is refused.
pub(crate) fn unit_word(word: &str) -> Result<String, String> {
    if word.chars().any(char::is_control) {
        return Err(format!(
            "{:?} holds a control character; a systemd unit cannot carry it",
            word
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:,+=@[]".contains(c);
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if !word.is_empty() && word.chars().all(plain) {
        return Ok(escaped);
    }
    Ok(format!(
        "\"{}\"",
        escaped.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The agent's unit: `agent --listen` as an unprivileged dynamic user that may read the kernel log
/// (CAP_SYSLOG, for XIDs) and the GPUs, restarted when it exits, journaling GPU events in its state directory
/// `/var/lib/fleetop` (systemd's `StateDirectory=`, writable under `ProtectSystem=strict`). `Err` when a path or address cannot be
/// written into a unit (see [`unit_word`]).
pub(crate) fn unit_text(agent_path: &str, listen: &str) -> Result<String, String> {
    let exec = format!(
        "{} agent --listen {}",
        unit_word(agent_path)?,
        unit_word(listen)?
    );
    // The description is specifier-expanded too (systemd.unit(5)).
    let shown = listen.replace('%', "%%");
    Ok(format!(
        "[Unit]\n\
         Description=fleetop agent: GPU telemetry for Prometheus on {shown}\n\
         Documentation=man:fleetop-agent(1)\n\
         After=network-online.target nvidia-persistenced.service\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={exec}\n\
         Environment=FLEETOP_JOURNAL=/var/lib/fleetop\n\
         StateDirectory=fleetop\n\
         Restart=always\n\
         RestartSec=5\n\
         DynamicUser=yes\n\
         SupplementaryGroups=video\n\
         AmbientCapabilities=CAP_SYSLOG\n\
         CapabilityBoundingSet=CAP_SYSLOG\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    ))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What happened on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NodeDeploy {
    pub node: String,
    /// `updated`, `current`, `would-update` or `failed`.
    pub outcome: &'static str,
    pub path: String,
    /// What the node ran before (`--version`), when it ran anything.
    pub from: Option<String>,
    /// What it runs now, when it changed.
    pub to: Option<String>,
    pub detail: String,
    pub duration_ms: u64,
    /// How the agent went over the wire (compressed bytes, `sftp` or `exec`), when it was uploaded.
    pub upload: Option<install::Sent>,
}

impl NodeDeploy {
    pub fn failed(&self) -> bool {
        self.outcome == "failed"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeployProgress {
    Refused(Vec<String>),
    Finished(NodeDeploy),
    /// The audit log failed: nodes not yet started were left alone.
    Stopped(String),
}

/// Reads the binary to deploy (this one when `binary` is `None`) and what it needs from a node.
pub(crate) fn payload(binary: Option<&Path>) -> Result<Payload, String> {
    let path: PathBuf = match binary {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?,
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_BINARY {
        return Err(format!(
            "{}: {size} bytes is more than the {MAX_BINARY} a deploy sends",
            path.display()
        ));
    }
    let given = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let arch = elf_arch(&given).map_err(|e| format!("{}: {e}", path.display()))?;
    let source_sha256 = hex_sha256(&given);
    let source_len = given.len();
    let (installed, stripped) = match slim::strip_debug(&given) {
        slim::Stripped::Slim(bytes) => (bytes, "debug sections stripped".to_string()),
        slim::Stripped::Unchanged => (given, "no debug sections".to_string()),
        // Still installable: the node runs it as it is, only the transfer is bigger.
        slim::Stripped::Refused(why) => (given, format!("sent unstripped: {why}")),
    };
    let compressed = slim::gzip(&installed)?;
    Ok(Payload {
        glibc: glibc_needed(&installed),
        sha256: hex_sha256(&installed),
        source_sha256,
        installed_len: installed.len(),
        source_len,
        stripped,
        compressed: Arc::new(compressed),
        arch,
    })
}

/// The architecture an ELF executable is for, as `uname -m` names it.
pub(crate) fn elf_arch(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF executable".into());
    }
    let machine = match bytes[5] {
        1 => u16::from_le_bytes([bytes[18], bytes[19]]),
        _ => u16::from_be_bytes([bytes[18], bytes[19]]),
    };
    Ok(match machine {
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        243 => "riscv64".into(),
        21 if bytes[5] == 1 => "ppc64le".into(),
        other => format!("ELF machine {other}"),
    })
}

/// The newest `GLIBC_2.N` symbol version the binary names (its dynamic section lists each one it needs).
pub(crate) fn glibc_needed(bytes: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"GLIBC_";
    let mut newest = None;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(TAG.len()).position(|w| w == TAG) {
        let start = at + found + TAG.len();
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.'))
            .map_or(bytes.len(), |n| start + n);
        if let Some(v) = std::str::from_utf8(&bytes[start..end])
            .ok()
            .and_then(install::parse_version)
        {
            newest = newest.max(Some(v));
        }
        at = end.max(start);
    }
    newest
}

/// Where the agent goes on `node`: its `agent_path` when absolute, else that name in [`DEFAULT_DIR`].
pub(crate) fn install_path(inv: &Inventory, node: NodeId) -> Result<String, String> {
    let path = inv.nodes[node]
        .agent_path
        .as_deref()
        .unwrap_or(&inv.settings.agent_path);
    if path.starts_with('/') {
        return Ok(path.to_string());
    }
    if path.contains('/') || path.is_empty() {
        return Err(format!(
            "{}: agent_path {path:?} is relative; deploy needs an absolute path",
            inv.nodes[node].name
        ));
    }
    Ok(format!("{DEFAULT_DIR}/{path}"))
}

/// Installs `payload` on every node of `req` (simulated for `--demo`), reporting each node as it ends.
pub fn deploy(
    inv: &Inventory,
    req: &DeployRequest,
    payload: &Payload,
    simulated: bool,
    mut report: impl FnMut(DeployProgress),
) {
    if super::guard::read_only(req.read_only, inv) {
        return report(DeployProgress::Refused(vec![
            super::guard::read_only_refusal("deploy"),
        ]));
    }
    let mut paths = Vec::with_capacity(req.nodes.len());
    let mut refusals = Vec::new();
    for &n in &req.nodes {
        match install_path(inv, n) {
            Ok(p) => paths.push((n, p)),
            Err(e) => refusals.push(e),
        }
    }
    if !refusals.is_empty() {
        return report(DeployProgress::Refused(refusals));
    }
    let log = if req.dry_run {
        None
    } else {
        match super::run::open_audit(inv) {
            Ok(l) => Some(Mutex::new(l)),
            Err(e) => {
                return report(DeployProgress::Refused(vec![format!(
                    "cannot write the audit log: {e}"
                )]))
            }
        }
    };
    let reach = match Reach::new(inv) {
        Ok(s) => s,
        Err(e) => return report(DeployProgress::Refused(vec![e])),
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..req.parallel.clamp(1, 256).min(paths.len()) {
            let tx = tx.clone();
            let (next, stop, paths, log, reach) = (&next, &stop, &paths, &log, &reach);
            let worker = move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some((node, path)) = paths.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let target = Target {
                    node: *node,
                    path,
                    simulated,
                };
                let (result, stopped) = one_node(inv, req, payload, reach, log.as_ref(), &target);
                let _ = tx.send(DeployProgress::Finished(result));
                if let Some(why) = stopped {
                    stop.store(true, Ordering::Relaxed);
                    let _ = tx.send(DeployProgress::Stopped(why));
                }
            };
            if let Err(e) = std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn_scoped(scope, worker)
            {
                // Workers already started take the remaining nodes.
                crate::text::warn(&format!("deploy: cannot start another thread: {e}"));
                break;
            }
        }
        drop(tx);
        for progress in rx {
            report(progress);
        }
    });
}

struct Target<'a> {
    node: NodeId,
    path: &'a str,
    simulated: bool,
}

/// One node, between its audit intent and outcome. The second value stops the run: the audit log failed.
fn one_node(
    inv: &Inventory,
    req: &DeployRequest,
    payload: &Payload,
    reach: &Reach,
    log: Option<&Mutex<AuditLog>>,
    target: &Target,
) -> (NodeDeploy, Option<String>) {
    let started = Instant::now();
    let name = inv.nodes[target.node].name.clone();
    let command = format!(
        "install sha256:{} at {}",
        payload.sha256.get(..12).unwrap_or(&payload.sha256),
        target.path
    );
    let id = record_id();
    let backend = if target.simulated { "simulated" } else { "ssh" };
    let entry = audit::Entry {
        operator: &req.operator,
        action: "deploy",
        node: &name,
        reason: req.reason.as_deref(),
        backend,
        command: &command,
    };
    let mut intended = false;
    let mut audit_failure = None;
    let mut before_change = |_: &install::Probe| -> Result<(), String> {
        let Some(log) = log else { return Ok(()) };
        let written = log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(&entry.intent(&id));
        match written {
            Ok(()) => {
                intended = true;
                Ok(())
            }
            Err(e) => {
                let why = format!("cannot write the audit log: {e}");
                audit_failure = Some(why.clone());
                Err(why)
            }
        }
    };
    let installed = if target.simulated {
        simulated(req.dry_run, &mut before_change)
    } else {
        match (
            endpoint::resolve(inv, reach.ssh_config.as_deref(), target.node),
            service(req, target.path),
        ) {
            (Ok(ep), Ok(service)) => install::install(
                &ep,
                &reach.known_hosts,
                &reach.timeouts,
                payload,
                target.path,
                service.as_ref(),
                req.dry_run,
                &mut before_change,
            ),
            (Err(e), _) => Installed::Failed(e.to_string()),
            (_, Err(e)) => Installed::Failed(format!("agent_path or --listen: {e}")),
        }
    };
    let result = describe(name.clone(), target.path, installed, started);
    if intended {
        if let Some(log) = log {
            let written = log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(&entry.outcome(
                    &id,
                    audit::Ending {
                        ok: !result.failed(),
                        exit_status: None,
                        duration_ms: result.duration_ms,
                        detail: result.detail.clone(),
                    },
                ));
            if let Err(e) = written {
                audit_failure = Some(format!(
                    "{}: the node was changed but its outcome is not in the audit log: {e}",
                    result.node
                ));
            }
        }
    }
    (result, audit_failure)
}

/// The unit to install on a node whose agent is at `path`, when asked for.
fn service(req: &DeployRequest, path: &str) -> Result<Option<install::Service>, String> {
    let Some(sd) = req.systemd.as_ref() else {
        return Ok(None);
    };
    let text = unit_text(path, &sd.listen)?;
    Ok(Some(install::Service {
        dir: sd.unit_dir.clone(),
        name: UNIT_NAME.into(),
        sha256: hex_sha256(text.as_bytes()),
        listen: sd.listen.clone(),
        text,
    }))
}

/// `--demo`: nothing leaves the machine, but the audit records are written as for a real node.
fn simulated(
    dry_run: bool,
    before_change: &mut dyn FnMut(&install::Probe) -> Result<(), String>,
) -> Installed {
    if dry_run {
        return Installed::WouldUpdate { from: None };
    }
    let probe = install::Probe {
        arch: std::env::consts::ARCH.into(),
        glibc: None,
        installed_sha256: None,
        installed_version: None,
        unit_sha256: None,
        directory: false,
        gzip: true,
    };
    match before_change(&probe) {
        Ok(()) => Installed::Updated {
            from: None,
            to: "simulated (--demo): nothing was run".into(),
            detail: "simulated".into(),
            upload: None,
        },
        Err(why) => Installed::Failed(why),
    }
}

fn describe(node: String, path: &str, installed: Installed, started: Instant) -> NodeDeploy {
    let mut upload = None;
    let (outcome, from, to, detail) = match installed {
        Installed::Current { version } => {
            ("current", version, None, "already runs this build".into())
        }
        Installed::WouldUpdate { from } => (
            "would-update",
            from,
            None,
            "would upload and install".into(),
        ),
        Installed::Updated {
            from,
            to,
            detail,
            upload: sent,
        } => {
            upload = sent;
            ("updated", from, Some(to), detail)
        }
        Installed::Failed(why) => ("failed", None, None, why),
    };
    NodeDeploy {
        node,
        outcome,
        path: path.to_string(),
        from,
        to,
        detail,
        duration_ms: started.elapsed().as_millis() as u64,
        upload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_binary_is_read_as_a_payload() {
        let p = payload(None).unwrap();
        assert_eq!(p.arch, std::env::consts::ARCH);
        assert_eq!(p.sha256.len(), 64);
        let glibc = p.glibc.expect("a glibc build names its symbol versions");
        assert!(glibc >= (2, 2), "{glibc:?}");
        // What lands is the stripped file (its own hash); the wire carries a small fraction of the binary.
        assert_eq!(p.stripped, "debug sections stripped");
        assert_ne!(p.sha256, p.source_sha256);
        assert!(
            p.installed_len < p.source_len / 2,
            "{} of {}",
            p.installed_len,
            p.source_len
        );
        assert!(p.compressed.len() < p.source_len / 10);
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused() {
        assert!(elf_arch(b"#!/bin/sh\necho hi\n").is_err());
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[5] = 1;
        header[18] = 183;
        assert_eq!(elf_arch(&header).unwrap(), "aarch64");
    }

    #[test]
    fn the_newest_glibc_version_is_found() {
        let bytes = b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_PRIVATE\0GLIBC_2.17\0GLIBC_";
        assert_eq!(glibc_needed(bytes), Some((2, 34)));
        assert_eq!(glibc_needed(b"static musl"), None);
    }

    #[test]
    fn the_packaged_unit_is_the_one_deploy_writes() {
        let packaged = include_str!("../../packaging/fleetop-agent.service");
        assert_eq!(
            Ok(packaged.to_string()),
            unit_text("/usr/bin/fleetop", DEFAULT_LISTEN)
        );
    }

    #[test]
    fn a_unit_quotes_what_systemd_would_split_or_expand() {
        assert_eq!(unit_word("/usr/bin/fleetop").unwrap(), "/usr/bin/fleetop");
        assert_eq!(unit_word("[::]:9401").unwrap(), "[::]:9401");
        assert_eq!(
            unit_word("/opt/my agent/fleetop").unwrap(),
            "\"/opt/my agent/fleetop\""
        );
        assert_eq!(
            unit_word(r#"/opt/a"b\c/$HOME/%h"#).unwrap(),
            r#""/opt/a\"b\\c/$$HOME/%%h""#
        );
        assert_eq!(unit_word(";").unwrap(), "\";\"");
        assert!(unit_word("/opt/x\nExecStartPre=/bin/evil").is_err());
        let unit = unit_text("/opt/my agent/fleetop", "127.0.0.1:9401").unwrap();
        assert!(
            unit.contains("\nExecStart=\"/opt/my agent/fleetop\" agent --listen 127.0.0.1:9401\n"),
            "{unit}"
        );
    }

    #[test]
    fn a_bare_agent_name_goes_to_usr_local_bin() {
        let inv = Inventory::demo();
        let path = install_path(&inv, 0).unwrap();
        assert!(path.starts_with('/'), "{path}");
    }
}
