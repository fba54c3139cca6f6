//! known_hosts, judged the way OpenSSH's `hostfile.c` and `match.c` judge it (not libssh2's looser rules):
//! `@revoked` lines, negated patterns, wildcards, hashed names, `[host]:port` for ports other than 22, exact
//! key type names. Read once, and again when the file changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;

use super::stamped::{self, Stamped};

/// What known_hosts says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds this key.
    Known,
    /// A line for this host holds another key of the same type: the key changed.
    Changed,
    /// An `@revoked` line for this host holds this key.
    Revoked,
    /// No line for this host holds a key of this type.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    /// `@cert-authority`: trusts certificates signed by the key, never the key itself as a host key.
    CertAuthority,
}

/// One valid line. Invalid lines (bad base64, a key type that is not the blob's own) are skipped, as
/// OpenSSH skips them.
#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    blob: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the lookup name, keyed with the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// A comma-separated pattern list (`!` negates, `*` and `?` are wildcards).
    Patterns(Vec<String>),
}

/// The file's valid lines, or why it could not be read.
type Parsed = Result<Vec<Entry>, String>;

/// A known_hosts file shared by every connection of a transport.
pub struct KnownHosts {
    pub path: PathBuf,
    cache: Mutex<Option<Stamped<Parsed>>>,
}

/// The key type name an SSH public key blob carries first (`ssh-ed25519`, `ssh-rsa`, …).
pub(crate) fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4usize.checked_add(len)?)?).ok()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut words = line.split_whitespace();
    let mut first = words.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = words.next()?;
    }
    let key_type = words.next()?.to_string();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(words.next()?)
        .ok()?;
    // OpenSSH reads the key from its blob and requires the named type to be the blob's own, exactly:
    // `SSH-ED25519` names no key type.
    if blob_type(&blob) != Some(key_type.as_str()) {
        return None;
    }
    let hosts = match first.strip_prefix("|1|") {
        Some(hashed) => {
            let (salt, hash) = hashed.split_once('|')?;
            let b64 = base64::engine::general_purpose::STANDARD;
            Hosts::Hashed {
                salt: b64.decode(salt).ok()?,
                hash: b64.decode(hash).ok()?,
            }
        }
        None => Hosts::Patterns(first.split(',').map(str::to_lowercase).collect()),
    };
    Some(Entry {
        marker,
        hosts,
        key_type,
        blob,
    })
}

fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

/// OpenSSH's `match_pattern`: `*` any run, `?` any one character.
fn wildcard(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| wildcard(&text[i..], rest)),
        Some((b'?', rest)) => !text.is_empty() && wildcard(&text[1..], rest),
        Some((c, rest)) => text.first() == Some(c) && wildcard(&text[1..], rest),
    }
}

impl Hosts {
    /// OpenSSH's `match_hostname`: a negated pattern that matches rules the line out, whatever else matches.
    fn applies_to(&self, lookup: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                hmac_sha1(salt, lookup.as_bytes()).as_deref() == Some(hash)
            }
            Hosts::Patterns(patterns) => {
                let mut positive = false;
                for p in patterns {
                    match p.strip_prefix('!') {
                        Some(negated) if wildcard(lookup.as_bytes(), negated.as_bytes()) => {
                            return false
                        }
                        Some(_) => {}
                        None => positive |= wildcard(lookup.as_bytes(), p.as_bytes()),
                    }
                }
                positive
            }
        }
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key).ok()?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

/// The name OpenSSH looks a host up by: lower case, `[host]:port` for any port but 22.
pub(crate) fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

impl KnownHosts {
    pub fn new(path: PathBuf) -> KnownHosts {
        KnownHosts {
            path,
            cache: Mutex::new(None),
        }
    }

    fn current(&self) -> Arc<Parsed> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        stamped::current(&mut cache, &self.path, |path| {
            std::fs::read_to_string(path)
                .map(|t| parse(&t))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        })
    }

    /// Judges the key `blob` offered by `host` on `port`, as `ssh -o StrictHostKeyChecking=yes` would: by
    /// `[host]:port`, and for a port other than 22 with no key of that type there, by the bare host name
    /// (OpenSSH's "checking without port identifier"), which counts only when it knows the key.
    pub fn check(&self, host: &str, port: u16, blob: &[u8]) -> Result<Verdict, String> {
        let parsed = self.current();
        let entries = (*parsed).as_ref().map_err(Clone::clone)?;
        let verdict = judge(entries, &lookup_name(host, port), blob);
        if verdict == Verdict::Unknown
            && port != 22
            && judge(entries, &lookup_name(host, 22), blob) == Verdict::Known
        {
            return Ok(Verdict::Known);
        }
        Ok(verdict)
    }
}

/// OpenSSH's `check_key_in_hostkeys` for one lookup name.
fn judge(entries: &[Entry], lookup: &str, blob: &[u8]) -> Verdict {
    {
        let Some(key_type) = blob_type(blob) else {
            return Verdict::Unknown;
        };
        let mut verdict = Verdict::Unknown;
        for e in entries.iter().filter(|e| e.hosts.applies_to(lookup)) {
            match e.marker {
                // A revoked key is refused whatever else the file says about it.
                Marker::Revoked if e.blob == blob => return Verdict::Revoked,
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if e.key_type != key_type => {}
                Marker::None if e.blob == blob => verdict = Verdict::Known,
                Marker::None if verdict == Verdict::Unknown => verdict = Verdict::Changed,
                Marker::None => {}
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> (String, Vec<u8>) {
        let mut blob = Vec::new();
        blob.extend(11u32.to_be_bytes());
        blob.extend(b"ssh-ed25519");
        blob.extend(32u32.to_be_bytes());
        blob.extend([seed; 32]);
        (
            base64::engine::general_purpose::STANDARD.encode(&blob),
            blob,
        )
    }

    fn known(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        (dir, KnownHosts::new(path))
    }

    #[test]
    fn openssh_rules() {
        let (a, blob) = key(1);
        let (b, _) = key(2);
        let check = |text: String| known(&text).1.check("10.0.0.1", 2222, &blob).unwrap();
        assert_eq!(
            check(format!("[10.0.0.1]:2222 ssh-ed25519 {a}\n")),
            Verdict::Known
        );
        assert_eq!(
            check(format!("[10.0.0.1]:2222 ssh-ed25519 {b}\n")),
            Verdict::Changed
        );
        assert_eq!(
            check(format!("10.0.0.1 ssh-ed25519 {a}\n")),
            Verdict::Known,
            "checked without the port when the port knows no key"
        );
        assert_eq!(
            check(format!(
                "10.0.0.1 ssh-ed25519 {a}\n[10.0.0.1]:2222 ssh-ed25519 {b}\n"
            )),
            Verdict::Changed,
            "the port's own entry decides"
        );
        assert_eq!(check(format!("* ssh-ed25519 {a}\n")), Verdict::Known);
        assert_eq!(
            check(format!(
                "@revoked * ssh-ed25519 {a}\n[10.0.0.1]:2222 ssh-ed25519 {a}\n"
            )),
            Verdict::Revoked
        );
        assert_eq!(
            check(format!(
                "![10.0.0.1]:2222,[10.0.0.1]:2222 ssh-ed25519 {a}\n"
            )),
            Verdict::Unknown
        );
        assert_eq!(
            check(format!("[10.0.0.1]:2222 SSH-ED25519 {a}\n")),
            Verdict::Unknown
        );
        assert_eq!(
            check(format!("@cert-authority * ssh-ed25519 {a}\n")),
            Verdict::Unknown
        );
        assert_eq!(
            check(format!("[10.0.0.?]:2222 ssh-ed25519 {a}\n")),
            Verdict::Known
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let (dir, _) = known("");
        assert!(KnownHosts::new(dir.path().join("missing"))
            .check("x", 22, &key(1).1)
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn a_changed_file_is_read_again() {
        let (a, blob) = key(1);
        let (dir, k) = known("");
        assert_eq!(k.check("n9", 22, &blob).unwrap(), Verdict::Unknown);
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("n9 ssh-ed25519 {a}\n")).unwrap();
        let touched = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(touched)
            .unwrap();
        assert_eq!(
            k.check("N9", 22, &blob).unwrap(),
            Verdict::Known,
            "names are case-blind"
        );
    }
}
