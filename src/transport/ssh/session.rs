//! Opens one authenticated SSH session: TCP (or a jump tunnel), handshake, strict host key check, auth.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use base64::Engine;
use ssh2::{HashType, MethodType, Session};

use super::connected::{fail, Connected, NodeFailure};
use super::endpoint::Endpoint;
use super::known::{KnownHosts, Verdict};
use super::timeouts::Timeouts;
use crate::transport::FailureKind;

/// Host key algorithms in the order we ask for them; the first one the server has is used,
/// and known_hosts must hold a key of that type.
const HOST_KEY_PREFS: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// Ciphers in the order we ask for them. AES-GCM first: it is not open to the Terrapin prefix truncation
/// (CVE-2023-48795) whatever the server, where ChaCha20-Poly1305 is safe only with strict key exchange, which
/// libssh2 asks for but servers before OpenSSH 9.6 do not offer. Following 1,024 nodes costs the same either
/// way (docs/benchmarks.md, 2026-12-07). Every one is in OpenSSH's default list (ssh_config(5), `Ciphers`);
/// none is CBC, which libssh2 would otherwise offer after these.
const CIPHER_PREFS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn tcp_connect(ep: &Endpoint, timeout: Duration) -> Result<TcpStream, NodeFailure> {
    let target = format!("{}:{}", ep.host, ep.port);
    let addrs = (ep.host.as_str(), ep.port).to_socket_addrs().map_err(|e| {
        fail(
            FailureKind::Unreachable,
            format!("cannot resolve {}: {e}", ep.host),
        )
    })?;
    let mut last = format!("{} has no address", ep.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("connect to {target} timed out after {}", secs(timeout));
            }
            Err(e) => last = format!("connect to {target}: {e}"),
        }
    }
    Err(fail(FailureKind::Unreachable, last))
}

/// Connects, verifies the host key and authenticates, all within the configured timeouts.
pub fn connect(
    ep: &Endpoint,
    known_hosts: &KnownHosts,
    t: &Timeouts,
) -> Result<Connected, NodeFailure> {
    let mut session =
        Session::new().map_err(|e| fail(FailureKind::Unreachable, format!("libssh2: {e}")))?;
    let (fd, tunnel) = match &ep.jump {
        None => {
            let tcp = tcp_connect(ep, t.connect)?;
            let fd = tcp.as_raw_fd();
            session.set_tcp_stream(tcp);
            (fd, None)
        }
        Some(jump) => {
            let outer = connect(jump, known_hosts, t).map_err(|f| NodeFailure {
                detail: format!("jump host {}: {}", jump.host, f.detail),
                ..f
            })?;
            let (local, tunnel) = super::jump::open(outer, &ep.host, ep.port, t)?;
            let fd = local.as_raw_fd();
            session.set_tcp_stream(local);
            (fd, Some(tunnel))
        }
    };
    session.set_timeout(ms(t.handshake));
    let _ = session.method_pref(MethodType::HostKey, HOST_KEY_PREFS);
    let _ = session.method_pref(MethodType::CryptCs, CIPHER_PREFS);
    let _ = session.method_pref(MethodType::CryptSc, CIPHER_PREFS);
    session.handshake().map_err(|e| {
        let what = if e.code() == ssh2::ErrorCode::Session(-9) {
            format!(
                "no SSH answer within {} (port open but silent)",
                secs(t.handshake)
            )
        } else {
            e.to_string()
        };
        fail(
            FailureKind::Unreachable,
            format!("SSH handshake with {}:{}: {what}", ep.host, ep.port),
        )
    })?;
    verify_host_key(&session, ep, known_hosts)?;
    authenticate(&session, ep)?;
    Ok(Connected {
        session,
        fd,
        _tunnel: tunnel,
    })
}

fn verify_host_key(
    session: &Session,
    ep: &Endpoint,
    known_hosts: &KnownHosts,
) -> Result<(), NodeFailure> {
    let mismatch = |d: String| fail(FailureKind::HostKeyMismatch, d);
    let (key, _) = session
        .host_key()
        .ok_or_else(|| mismatch("server sent no host key".into()))?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| {
            format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
            )
        })
        .unwrap_or_else(|| "unknown fingerprint".into());
    let shown = if ep.port == 22 {
        ep.host.clone()
    } else {
        format!("[{}]:{}", ep.host, ep.port)
    };
    let file = known_hosts.path.display();
    match known_hosts
        .check(&ep.host, ep.port, key)
        .map_err(|e| mismatch(format!("{e}; refusing an unverified host")))?
    {
        Verdict::Known => Ok(()),
        Verdict::Unknown => Err(mismatch(format!(
            "unknown host key {fingerprint} for {shown}: not in {file}; verify it, then add it (ssh-keyscan)"
        ))),
        Verdict::Changed => Err(mismatch(format!(
            "HOST KEY CHANGED for {shown}: server offers {fingerprint}, {file} has another (possible man-in-the-middle)"
        ))),
        Verdict::Revoked => Err(mismatch(format!(
            "REVOKED host key {fingerprint} for {shown}: {file} marks it @revoked"
        ))),
    }
}

fn authenticate(session: &Session, ep: &Endpoint) -> Result<(), NodeFailure> {
    let mut tried = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
        tried.push("ssh-agent".to_string());
        if session.userauth_agent(&ep.user).is_ok() && session.authenticated() {
            return Ok(());
        }
    }
    for key in &ep.identity_files {
        if !key.exists() {
            continue;
        }
        tried.push(key.display().to_string());
        if super::identity::login(session, &ep.user, key).is_ok() && session.authenticated() {
            return Ok(());
        }
    }
    let tried = if tried.is_empty() {
        "no ssh-agent and no key file found".to_string()
    } else {
        tried.join(", ")
    };
    Err(fail(
        FailureKind::AuthFailed,
        format!(
            "{}@{}:{} refused authentication (tried {tried})",
            ep.user, ep.host, ep.port
        ),
    ))
}
