//! The user's `$XDG_CONFIG_HOME/fleetop/config.toml`: theme and key overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// `config.toml`; every key optional, unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Theme name (`default`, `light`, `high-contrast`, `colorblind`) or path; `--theme` wins.
    pub theme: Option<String>,
    /// Refuse every drain, undrain and reboot, in the TUI and from the command line (like `--read-only`).
    #[serde(default)]
    pub read_only: bool,
    /// Key overrides: `action = "key"` or `action = ["key", "key"]` (see the help screen for action names).
    #[serde(default)]
    pub keys: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Config {
    pub fn path() -> Option<PathBuf> {
        crate::dirs::config().map(|d| d.join("config.toml"))
    }

    /// Reads the config file if there is one; a broken file is an error naming its position.
    pub fn load() -> Result<Config, String> {
        let Some(path) = Config::path() else {
            return Ok(Config::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Config::parse(&path.display().to_string(), &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Config, String> {
        let loc = crate::inventory::Locator { file, text };
        toml::from_str(text).map_err(|e| loc.toml_error(&e).to_string())
    }

    pub(crate) fn key_overrides(&self) -> BTreeMap<String, Vec<String>> {
        self.keys
            .iter()
            .map(|(action, keys)| {
                let list = match keys {
                    OneOrMany::One(k) => vec![k.clone()],
                    OneOrMany::Many(ks) => ks.clone(),
                };
                (action.clone(), list)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_rejects_unknown_fields() {
        let c = Config::parse(
            "c.toml",
            "theme = \"light\"\n[keys]\nquit = \"x\"\nhelp = [\"?\", \"h\"]\n",
        )
        .unwrap();
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert_eq!(c.key_overrides()["help"], vec!["?", "h"]);
        let e = Config::parse("c.toml", "colour = 1\n").unwrap_err();
        assert!(e.starts_with("c.toml:1:1:"), "{e}");
    }
}
