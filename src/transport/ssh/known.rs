//! known_hosts, read once (and again when the file changes) instead of by every handshake: libssh2 would
//! parse the whole file per connection, which at fleet size is quadratic. Each check gets only the lines that
//! can concern its host: entries naming it, plus hashed, wildcard and marker lines that libssh2 must judge.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::stamped::{self, Stamped};

/// One usable line and, when it names hosts in plain text, those names.
struct Entry {
    text: String,
    /// `None`: hashed (`|1|…`), a marker (`@cert-authority`, `@revoked`) or a pattern with wildcards.
    names: Option<Vec<String>>,
}

/// The file's usable lines, or why it could not be read.
type Parsed = Result<Vec<Entry>, String>;

/// A known_hosts file shared by every connection of a transport.
pub struct KnownHosts {
    pub path: PathBuf,
    cache: Mutex<Option<Stamped<Parsed>>>,
}

fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            let plain = !first.starts_with('|')
                && !first.starts_with('@')
                && !first.contains(['*', '?', '!']);
            Entry {
                text: l.to_string(),
                names: plain.then(|| first.split(',').map(String::from).collect()),
            }
        })
        .collect()
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

    /// The lines that can decide `host`'s key on `port`; an error if the file cannot be read.
    pub fn lines_for(&self, host: &str, port: u16) -> Result<Vec<String>, String> {
        let parsed = self.current();
        let entries = (*parsed).as_ref().map_err(Clone::clone)?;
        let wanted = if port == 22 {
            host.to_string()
        } else {
            format!("[{host}]:{port}")
        };
        Ok(entries
            .iter()
            .filter(|e| e.names.as_ref().is_none_or(|names| names.contains(&wanted)))
            .map(|e| e.text.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relevant_lines_reach_libssh2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            "# comment\n[10.0.0.1]:2222 ssh-ed25519 AAAA1\n10.0.0.1 ssh-ed25519 AAAA2\nn1,n2 ssh-ed25519 AAAA3\n\
             |1|salt|hash ssh-ed25519 AAAA4\n*.lab ssh-ed25519 AAAA5\n@revoked * ssh-ed25519 AAAA6\n",
        )
        .unwrap();
        let k = KnownHosts::new(path.clone());
        let lines = k.lines_for("10.0.0.1", 2222).unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].ends_with("AAAA1"));
        assert_eq!(k.lines_for("n2", 22).unwrap().len(), 4);
        assert!(KnownHosts::new(dir.path().join("missing"))
            .lines_for("x", 22)
            .unwrap_err()
            .contains("cannot read"));
        // A changed file is read again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "n9 ssh-ed25519 AAAA9\n").unwrap();
        let touched = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(touched)
            .unwrap();
        assert_eq!(k.lines_for("n9", 22).unwrap(), ["n9 ssh-ed25519 AAAA9"]);
    }
}
