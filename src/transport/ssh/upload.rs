//! Deploy's SFTP upload, bounded by time and by progress: a node whose SFTP server stops reading fails
//! within the no-progress limit instead of holding the deploy, and the partial file is removed over a
//! fresh connection (the stalled one cannot be trusted to carry the removal).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::command::quoted;
use super::endpoint::Endpoint;
use super::known::KnownHosts;
use super::{oneshot, Timeouts};
use crate::transport::Ending;

/// Bytes per SFTP write: small enough that the deadline is checked often on a slow link.
const CHUNK: usize = 64 * 1024;
/// Time every upload may take whatever its size, on top of [`MIN_RATE`].
const BASE_ALLOWANCE: Duration = Duration::from_secs(60);
/// The slowest transfer that still counts as working, bytes per second.
const MIN_RATE: u64 = 512 * 1024;

/// How long an upload may take, and how long it may go without progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// No byte acknowledged for this long: the node's SFTP server has stalled.
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

/// Writes `bytes` to `temporary` (mode 0755) within `limits`. On failure the session is left non-blocking
/// (so dropping its stalled SFTP handles does not wait again) and must not be used further.
pub(super) fn upload(
    s: &ssh2::Session,
    temporary: &str,
    bytes: &[u8],
    limits: Limits,
) -> Result<(), String> {
    let started = Instant::now();
    s.set_timeout(millis(limits.no_progress));
    let sftp = match s.sftp() {
        Ok(sftp) => sftp,
        Err(e) => return Err(give_up(s, format!("SFTP: {e}"))),
    };
    let opened = sftp.open_mode(
        Path::new(temporary),
        ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE,
        0o755,
        ssh2::OpenType::File,
    );
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => {
            let why = format!("cannot create {temporary}: {}", sftp_reason(&e));
            return Err(give_up(s, why));
        }
    };
    let written = send(&mut file, bytes, started, limits).and_then(|()| {
        file.close()
            .map_err(|e| format!("closing {temporary}: {}", sftp_reason(&e)))
    });
    match written {
        Ok(()) => Ok(()),
        Err(why) => Err(give_up(s, format!("uploading {temporary}: {why}"))),
    }
}

/// Writes every byte, checking the deadline after each write; a write that sees no progress for
/// `limits.no_progress` returns the session's timeout.
fn send(
    file: &mut ssh2::File,
    bytes: &[u8],
    started: Instant,
    limits: Limits,
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
                "no progress for {} s after {sent} of {} bytes (the node's SFTP server stalled)",
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

/// Removes what a failed upload left at `temporary`, over a new connection bounded by `limit`; `Err` says
/// why it may remain.
pub(super) fn remove_leftover(
    ep: &Endpoint,
    known_hosts: &KnownHosts,
    t: &Timeouts,
    temporary: &str,
    limit: Duration,
) -> Result<(), String> {
    let command = format!("rm -f -- {}", quoted(temporary));
    let done = oneshot::run(ep, known_hosts, t, &command, limit).map_err(|f| f.detail)?;
    match done.ending {
        Ending::Exited(0) => Ok(()),
        Ending::Exited(code) => Err(format!("rm exited {code}")),
        Ending::Signalled(sig) => Err(format!("rm killed by signal {sig}")),
        Ending::Dropped(why) => Err(format!("connection lost: {why}")),
        Ending::TimedOut(limit) => Err(format!("no answer within {} s", limit.as_secs())),
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
