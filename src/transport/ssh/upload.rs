//! Deploy's upload of the compressed agent, bounded by time and by progress: by SFTP to a hidden `.gz` beside
//! the temporary file, then `gzip -dc` into it; where the node's sshd offers no SFTP subsystem, over an exec
//! channel into `gzip -dc` writing the same temporary file. A node that stops reading fails within the
//! no-progress limit instead of holding the deploy, and what a failed upload left is removed over a fresh
//! connection (the stalled one cannot be trusted to carry the removal).

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::command::quoted;
use super::endpoint::Endpoint;
use super::known::KnownHosts;
use super::oneshot;
use super::timeouts::Timeouts;
use crate::transport::Ending;

/// Bytes per write: small enough that the deadline is checked often on a slow link.
const CHUNK: usize = 64 * 1024;
/// Time every upload may take whatever its size, on top of [`MIN_RATE`].
const BASE_ALLOWANCE: Duration = Duration::from_secs(60);
/// The slowest transfer that still counts as working, bytes per second.
const MIN_RATE: u64 = 512 * 1024;
/// Most of the decompressor's error output kept for the report.
const STDERR_KEEP: u64 = 4096;
/// libssh2's `LIBSSH2_ERROR_CHANNEL_FAILURE`, which `libssh2_sftp_init` returns (with "Unable to request SFTP
/// subsystem") when the server refuses the `sftp` subsystem request (RFC 4254 §6.5).
const CHANNEL_FAILURE: i32 = -21;

/// How long an upload may take, and how long it may go without progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// No byte acknowledged for this long: the node has stalled.
    pub no_progress: Duration,
    /// The whole transfer, from opening the file to closing it.
    pub total: Duration,
}

impl Limits {
    /// Limits for `len` bytes: a node silent for `no_progress` is stalled; the whole transfer may take
    /// [`BASE_ALLOWANCE`] plus the time [`MIN_RATE`] needs.
    pub(super) fn for_len(len: usize, no_progress: Duration) -> Limits {
        Limits {
            no_progress,
            total: BASE_ALLOWANCE + Duration::from_secs(len as u64 / MIN_RATE),
        }
    }
}

/// How the agent went over the wire to one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Sent {
    /// Bytes of the compressed file sent (the payload, without SSH's own framing).
    pub bytes: u64,
    /// `sftp`, or `exec` where the node's sshd offers no SFTP subsystem.
    pub via: &'static str,
}

/// Where the compressed upload lands before `gzip -dc` (SFTP only): beside the temporary file, as hidden.
fn packed_path(temporary: &str) -> String {
    format!("{temporary}.gz")
}

/// Puts the decompressed `compressed` at `temporary` (mode 0755) within `limits`. On failure the session is
/// left non-blocking (so dropping its stalled handles does not wait again) and must not be used further.
pub(super) fn upload(
    s: &ssh2::Session,
    temporary: &str,
    compressed: &[u8],
    limits: Limits,
) -> Result<Sent, String> {
    let started = Instant::now();
    s.set_timeout(millis(limits.no_progress));
    let via = match s.sftp() {
        Ok(sftp) => {
            let packed = packed_path(temporary);
            by_sftp(s, &sftp, &packed, compressed, started, limits)?;
            drop(sftp);
            unpack(s, &packed, temporary, limits)?;
            "sftp"
        }
        Err(e) if no_sftp_subsystem(&e) => {
            by_exec(s, temporary, compressed, started, limits)?;
            "exec"
        }
        Err(e) => return Err(give_up(s, format!("SFTP: {e}"))),
    };
    Ok(Sent {
        bytes: compressed.len() as u64,
        via,
    })
}

/// The server refused the `sftp` subsystem (no `Subsystem sftp` line in its sshd_config).
fn no_sftp_subsystem(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(CHANNEL_FAILURE) && e.message().contains("SFTP subsystem")
}

/// Writes `compressed` to `packed` over SFTP.
fn by_sftp(
    s: &ssh2::Session,
    sftp: &ssh2::Sftp,
    packed: &str,
    compressed: &[u8],
    started: Instant,
    limits: Limits,
) -> Result<(), String> {
    let opened = sftp.open_mode(
        Path::new(packed),
        ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
        0o600,
        ssh2::OpenType::File,
    );
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => {
            let why = format!("cannot create {packed}: {}", sftp_reason(&e));
            return Err(give_up(s, why));
        }
    };
    let written = send(&mut file, compressed, started, limits, "SFTP server").and_then(|()| {
        file.close()
            .map_err(|e| format!("closing {packed}: {}", sftp_reason(&e)))
    });
    match written {
        Ok(()) => Ok(()),
        Err(why) => Err(give_up(s, format!("uploading {packed}: {why}"))),
    }
}

/// Decompresses the SFTP upload `packed` into `temporary` on the node, and removes `packed` whatever happens.
fn unpack(s: &ssh2::Session, packed: &str, temporary: &str, limits: Limits) -> Result<(), String> {
    let text = format!(
        "z={z}; t={t}\n\
         e=$(gzip -dc \"$z\" 2>&1 >\"$t\") || {{ rm -f \"$z\" \"$t\"; echo \"gzip -dc: $e\"; exit 3; }}\n\
         rm -f \"$z\"\n\
         chmod 755 \"$t\" || {{ rm -f \"$t\"; exit 3; }}\n",
        z = quoted(packed),
        t = quoted(temporary),
    );
    let done = oneshot::run_on(s, &format!("sh -c {}", quoted(&text)), limits.total)
        .map_err(|e| give_up(s, format!("decompressing {packed}: SSH: {e}")))?;
    match done.ending {
        Ending::Exited(0) => Ok(()),
        ending => {
            let mut said = format!("{}{}", done.stdout.trim(), done.stderr.trim());
            crate::telemetry::sanitize::make_inert(&mut said, 300);
            Err(give_up(
                s,
                format!("decompressing {packed}: {}: {said}", ended(&ending)),
            ))
        }
    }
}

/// Streams `compressed` into `gzip -dc > temporary` on an exec channel: for nodes without SFTP.
fn by_exec(
    s: &ssh2::Session,
    temporary: &str,
    compressed: &[u8],
    started: Instant,
    limits: Limits,
) -> Result<(), String> {
    let text = format!(
        "t={t}\n\
         gzip -dc >\"$t\" || {{ s=$?; rm -f \"$t\"; echo \"gzip -dc exited $s\" >&2; exit 3; }}\n\
         chmod 755 \"$t\" || {{ rm -f \"$t\"; exit 3; }}\n",
        t = quoted(temporary),
    );
    let mut channel = match s.channel_session().and_then(|mut c| {
        c.exec(&format!("sh -c {}", quoted(&text)))?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => return Err(give_up(s, format!("no SFTP subsystem, and exec: {e}"))),
    };
    let sent = send(&mut channel, compressed, started, limits, "decompressor");
    let remote_gone = channel.eof();
    if let Err(why) = sent {
        // A shell that could not create the file exits at once: its words say more than the write's error.
        let why = if remote_gone {
            exit_words(&mut channel).unwrap_or(why)
        } else {
            why
        };
        return Err(give_up(
            s,
            format!("uploading {temporary} over exec: {why}"),
        ));
    }
    let ending = channel
        .send_eof()
        .map_err(|e| e.to_string())
        .and_then(|()| exit_words(&mut channel).map_or(Ok(()), Err));
    ending.map_err(|why| give_up(s, format!("uploading {temporary} over exec: {why}")))
}

/// Waits for the exec channel's end (each read bounded by the session's timeout): `None` when it exited 0,
/// else what went wrong in words, with its error output.
fn exit_words(channel: &mut ssh2::Channel) -> Option<String> {
    let mut sink = Vec::new();
    if let Err(e) = (&mut *channel).take(STDERR_KEEP).read_to_end(&mut sink) {
        return Some(format!("waiting for the node: {e}"));
    }
    let mut stderr = String::new();
    let _ = channel
        .stderr()
        .take(STDERR_KEEP)
        .read_to_string(&mut stderr);
    if let Err(e) = channel.wait_close() {
        return Some(format!("waiting for the node: {e}"));
    }
    let mut said = stderr.trim().to_string();
    crate::telemetry::sanitize::make_inert(&mut said, 300);
    match channel.exit_status() {
        Ok(0) => None,
        Ok(code) => Some(format!("exit {code}: {said}")),
        Err(e) => Some(format!("no exit status: {e}")),
    }
}

fn ended(ending: &Ending) -> String {
    match ending {
        Ending::Exited(code) => format!("exit {code}"),
        Ending::Signalled(sig) => format!("killed by signal {sig}"),
        Ending::Dropped(why) => format!("connection lost: {why}"),
        Ending::TimedOut(limit) => format!("no answer within {} s", limit.as_secs()),
    }
}

/// Writes every byte, checking the deadline after each write; a write that sees no progress for
/// `limits.no_progress` returns the session's timeout.
fn send(
    file: &mut impl Write,
    bytes: &[u8],
    started: Instant,
    limits: Limits,
    reader: &str,
) -> Result<(), String> {
    let mut sent = 0usize;
    while sent < bytes.len() {
        if started.elapsed() > limits.total {
            return Err(format!(
                "not done within {} s ({sent} of {} bytes sent)",
                limits.total.as_secs(),
                bytes.len()
            ));
        }
        let end = sent.saturating_add(CHUNK).min(bytes.len());
        match file.write(&bytes[sent..end]) {
            Ok(0) => return Err(format!("the node took no more after {sent} bytes")),
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!(
                    "no progress for {} s after {sent} of {} bytes (the node's {reader} stalled)",
                    limits.no_progress.as_secs(),
                    bytes.len()
                ))
            }
            Err(e) => return Err(format!("{e} after {sent} of {} bytes", bytes.len())),
        }
    }
    Ok(())
}

/// Leaves the session non-blocking, so the stalled handles are dropped without another wait; returns `why`.
fn give_up(s: &ssh2::Session, why: String) -> String {
    s.set_blocking(false);
    why
}

/// Removes what a failed upload left at `temporary` (and its compressed form), over a new connection
/// bounded by `limit`; `Err` says why it may remain.
pub(super) fn remove_leftover(
    ep: &Endpoint,
    known_hosts: &KnownHosts,
    t: &Timeouts,
    temporary: &str,
    limit: Duration,
) -> Result<(), String> {
    let command = format!(
        "rm -f -- {} {}",
        quoted(temporary),
        quoted(&packed_path(temporary))
    );
    let done = oneshot::run(ep, known_hosts, t, &command, limit).map_err(|f| f.detail)?;
    match done.ending {
        Ending::Exited(0) => Ok(()),
        ending => Err(format!("rm: {}", ended(&ending))),
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// SFTP's status codes in words (libssh2 reports them as numbers).
pub(super) fn sftp_reason(e: &ssh2::Error) -> String {
    match e.code() {
        ssh2::ErrorCode::SFTP(2) => "no such file or directory".into(),
        ssh2::ErrorCode::SFTP(3) => "permission denied".into(),
        ssh2::ErrorCode::SFTP(4) => "failure (read-only file system or no space?)".into(),
        ssh2::ErrorCode::SFTP(12) => "read-only file system".into(),
        ssh2::ErrorCode::SFTP(14) => "no space on the file system".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bigger_upload_gets_more_time_never_less_than_the_base() {
        let small = Limits::for_len(1, Duration::from_secs(10));
        assert_eq!(small.total, BASE_ALLOWANCE);
        let big = Limits::for_len(512 * 1024 * 1024, Duration::from_secs(10));
        assert_eq!(big.total, BASE_ALLOWANCE + Duration::from_secs(1024));
        assert_eq!(big.no_progress, Duration::from_secs(10));
    }
}
