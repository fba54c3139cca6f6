//! Client key files, read once per process (and again when a file changes) instead of by every login.
//!
//! libssh2 re-reads a key file at each login and hands it to OpenSSL 3's decoders twice, once to derive
//! the public key and once to sign; that was most of fleetop's CPU per connection. An unencrypted ed25519
//! key, OpenSSH's default, is parsed here once and signs in-process through libssh2's callback. Any
//! other key (RSA, ECDSA, encrypted) still goes through libssh2's file reader, given the `.pub` file
//! beside it when there is one so that only the signing read remains.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uchar, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use ssh2::Session;

use super::stamped::{self, Stamped};

/// How logins with one key file are made.
enum Identity {
    /// Signs in-process: the public key in SSH wire form and the private key.
    Ed25519 {
        public_blob: Vec<u8>,
        key: PKey<Private>,
    },
    /// libssh2 reads the private key file, with this public key file when there is one.
    File { public: Option<PathBuf> },
}

type Cache = Mutex<HashMap<PathBuf, Option<Stamped<Identity>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn load(path: &Path) -> Identity {
    let public_file = {
        let mut p = path.as_os_str().to_owned();
        p.push(".pub");
        Some(PathBuf::from(p)).filter(|p| p.is_file())
    };
    let fallback = || Identity::File {
        public: public_file.clone(),
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return fallback();
    };
    let Ok(parsed) = ssh_key::PrivateKey::from_openssh(&text) else {
        return fallback();
    };
    let (Some(pair), Ok(public_blob)) =
        (parsed.key_data().ed25519(), parsed.public_key().to_bytes())
    else {
        return fallback();
    };
    match PKey::private_key_from_raw_bytes(pair.private.as_ref(), Id::ED25519) {
        Ok(key) => Identity::Ed25519 { public_blob, key },
        Err(_) => fallback(),
    }
}

fn identity(path: &Path) -> Arc<Identity> {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let slot = cache.entry(path.to_path_buf()).or_default();
    stamped::current(slot, path, load)
}

/// Logs `user` in with the key in file `path`. Err holds libssh2's or the signer's reason.
pub fn login(session: &Session, user: &str, path: &Path) -> Result<(), String> {
    match &*identity(path) {
        Identity::File { public } => session
            .userauth_pubkey_file(user, public.as_deref(), path, None)
            .map_err(|e| e.to_string()),
        Identity::Ed25519 { public_blob, key } => sign_in(session, user, public_blob, key),
    }
}

type SignCallback = unsafe extern "C" fn(
    session: *mut c_void,
    sig: *mut *mut c_uchar,
    sig_len: *mut usize,
    data: *const c_uchar,
    data_len: usize,
    abstract_: *mut *mut c_void,
) -> c_int;

extern "C" {
    // libssh2's public-key login with a caller-supplied signer (libssh2.h); ssh2-rs does not wrap it.
    fn libssh2_userauth_publickey(
        session: *mut c_void,
        username: *const c_char,
        pubkeydata: *const c_uchar,
        pubkeydata_len: usize,
        sign_callback: Option<SignCallback>,
        abstract_: *mut *mut c_void,
    ) -> c_int;
}

/// Signs what libssh2 asks with the ed25519 key behind `abstract_`. The signature is returned in memory
/// from `malloc`, which libssh2 frees with its default allocator (ssh2-rs sets no other).
unsafe extern "C" fn sign_ed25519(
    _session: *mut c_void,
    sig: *mut *mut c_uchar,
    sig_len: *mut usize,
    data: *const c_uchar,
    data_len: usize,
    abstract_: *mut *mut c_void,
) -> c_int {
    const FAILED: c_int = -1;
    if sig.is_null() || sig_len.is_null() || data.is_null() || abstract_.is_null() {
        return FAILED;
    }
    // SAFETY: `abstract_` points at the pointer `sign_in` passed, to a key that outlives the login call;
    // `data` is libssh2's buffer of `data_len` bytes.
    let (key, data) = unsafe {
        (
            &*(*abstract_ as *const PKey<Private>),
            std::slice::from_raw_parts(data, data_len),
        )
    };
    let Ok(signature) =
        Signer::new_without_digest(key).and_then(|mut s| s.sign_oneshot_to_vec(data))
    else {
        return FAILED;
    };
    // SAFETY: a fresh allocation of the signature's length, filled before libssh2 sees it.
    unsafe {
        let out = libc::malloc(signature.len()).cast::<c_uchar>();
        if out.is_null() {
            return FAILED;
        }
        std::ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        *sig = out;
        *sig_len = signature.len();
    }
    0
}

fn sign_in(
    session: &Session,
    user: &str,
    public_blob: &[u8],
    key: &PKey<Private>,
) -> Result<(), String> {
    let user_c =
        CString::new(user).map_err(|_| format!("user name {user:?} contains a NUL byte"))?;
    let mut key_ptr = std::ptr::from_ref(key).cast_mut().cast::<c_void>();
    let rc = {
        let mut raw = session.raw();
        // SAFETY: the session pointer is ssh2-rs's own, locked for the call; the user name, key blob and
        // key outlive the call, which is blocking (the session has a timeout, not non-blocking mode).
        unsafe {
            libssh2_userauth_publickey(
                std::ptr::from_mut(&mut *raw).cast::<c_void>(),
                user_c.as_ptr(),
                public_blob.as_ptr(),
                public_blob.len(),
                Some(sign_ed25519),
                &mut key_ptr,
            )
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ssh2::Error::from_session_error(session, rc).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
        let path = dir.join(name);
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", passphrase, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        path
    }

    #[test]
    fn unencrypted_ed25519_signs_in_process_with_its_own_public_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = keygen(dir.path(), "id_ed25519", "ed25519", "");
        let Identity::Ed25519 { public_blob, key } = load(&path) else {
            panic!("an unencrypted ed25519 key should sign in-process");
        };
        // The blob is what the .pub file holds, base64-decoded.
        let pub_text = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
        let encoded = pub_text.split_whitespace().nth(1).expect("base64 field");
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(public_blob, expected);
        // And the private key matches it: its raw public half is the blob's last 32 bytes.
        assert_eq!(
            key.raw_public_key().expect("raw public"),
            &public_blob[public_blob.len() - 32..]
        );
    }

    #[test]
    fn other_keys_go_to_libssh2_with_their_public_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, kind, pass) in [("enc", "ed25519", "secret"), ("ec", "ecdsa", "")] {
            let path = keygen(dir.path(), name, kind, pass);
            let Identity::File { public } = load(&path) else {
                panic!("{name} should be read by libssh2");
            };
            assert_eq!(public, Some(dir.path().join(format!("{name}.pub"))));
        }
        let lone = keygen(dir.path(), "lone", "ecdsa", "");
        std::fs::remove_file(dir.path().join("lone.pub")).expect("rm");
        assert!(matches!(load(&lone), Identity::File { public: None }));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Identity::File { public: None }
        ));
    }

    #[test]
    fn a_changed_key_file_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = keygen(dir.path(), "k", "ed25519", "");
        let first = identity(&path);
        assert!(
            Arc::ptr_eq(&first, &identity(&path)),
            "cached while unchanged"
        );
        std::fs::remove_file(&path).expect("rm");
        std::fs::remove_file(path.with_extension("pub")).expect("rm pub");
        // A later mtime: some filesystems keep whole seconds only.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        keygen(dir.path(), "k", "ecdsa", "");
        assert!(matches!(&*identity(&path), Identity::File { .. }));
    }
}
