//! ProxyJump: a `direct-tcpip` channel on the jump host's session, bridged to a local socketpair
//! because libssh2 needs a real file descriptor for the inner session.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ssh2::Channel;

use super::connected::{fail, Connected, NodeFailure, Tunnel};
use super::timeouts::Timeouts;
use crate::transport::FailureKind;

/// Opens a tunnel to `host:port` through `jump`; returns the local end for the inner session.
pub fn open(
    jump: Connected,
    host: &str,
    port: u16,
    t: &Timeouts,
) -> Result<(UnixStream, Tunnel), NodeFailure> {
    jump.session
        .set_timeout(u32::try_from(t.connect.as_millis()).unwrap_or(u32::MAX));
    let channel = jump
        .session
        .channel_direct_tcpip(host, port, None)
        .map_err(|e| {
            fail(
                FailureKind::Unreachable,
                format!("jump host could not open a tunnel to {host}:{port}: {e}"),
            )
        })?;
    let (local, remote) = UnixStream::pair().map_err(|e| {
        fail(
            FailureKind::Unreachable,
            format!("socketpair for jump tunnel: {e}"),
        )
    })?;
    remote
        .set_nonblocking(true)
        .map_err(|e| fail(FailureKind::Unreachable, format!("jump tunnel: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name(format!("jump-{host}"))
        .stack_size(128 * 1024)
        .spawn(move || {
            jump.session.set_blocking(false);
            pump(channel, remote, jump.fd, &flag);
            // Keep the jump session (and its tunnel, if nested) alive until the pump ends.
            drop(jump);
        })
        .map_err(|e| fail(FailureKind::Unreachable, format!("jump tunnel thread: {e}")))?;
    Ok((local, Tunnel::new(stop)))
}

/// Bytes read from one side and not yet written to the other.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    done: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.done >= self.buf.len()
    }
}

/// Moves bytes both ways until either side closes or `stop` is set; waits in `poll` when idle.
fn pump(mut channel: Channel, mut local: UnixStream, jump_fd: RawFd, stop: &AtomicBool) {
    let mut scratch = vec![0u8; 32 * 1024];
    let mut up = Pending::default();
    let mut down = Pending::default();
    while !stop.load(Ordering::Relaxed) {
        let mut progress = false;
        if up.is_empty() {
            match local.read(&mut scratch) {
                Ok(0) => return,
                Ok(n) => {
                    up = Pending {
                        buf: scratch[..n].to_vec(),
                        done: 0,
                    };
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !up.is_empty() {
            match channel.write(&up.buf[up.done..]) {
                Ok(n) => {
                    up.done += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if down.is_empty() {
            match channel.read(&mut scratch) {
                Ok(0) if channel.eof() => return,
                Ok(0) => {}
                Ok(n) => {
                    down = Pending {
                        buf: scratch[..n].to_vec(),
                        done: 0,
                    };
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !down.is_empty() {
            match local.write(&down.buf[down.done..]) {
                Ok(n) => {
                    down.done += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !progress {
            wait_readable(&[local.as_raw_fd(), jump_fd], 50);
        }
    }
}

/// Sleeps until one of `fds` is readable or `timeout_ms` passes.
fn wait_readable(fds: &[RawFd], timeout_ms: i32) {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `polls` is a valid, exclusively borrowed array of pollfd for the duration of the call.
    unsafe {
        libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms);
    }
}
