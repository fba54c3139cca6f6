//! The user's `$XDG_CONFIG_HOME/fleetop/config.toml`: theme and key overrides, and the sites (`[[context]]`)
//! that `--context NAME` chooses between.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::inventory::{InventoryError, Locator, PrometheusSource, SourceFile};

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
    /// Sites, one `[[context]]` each, chosen with `--context NAME` (or `$FLEETOP_CONTEXT`).
    #[serde(default, rename = "context")]
    context_entries: Vec<Spanned<ContextFile>>,
    /// The entries validated by [`Config::parse`].
    #[serde(skip)]
    pub contexts: Vec<Context>,
}

/// One `[[context]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextFile {
    /// The site's name: letters, digits, `-` and `_`; `all` is reserved for every site at once.
    name: Spanned<String>,
    /// The site's inventory file (`~/` expanded; relative to the config file's directory).
    inventory: Spanned<String>,
    /// Where the site's telemetry comes from: the keys of an inventory's `[source]`, or the path of an
    /// inventory whose `[source]` is used [default: the site inventory's own `[source]`].
    source: Option<Spanned<toml::Value>>,
    /// The site its records (audit log, history store) carry and are read by, so two contexts over the same
    /// nodes (one over SSH, one from Prometheus) share their resets and acks [default: the context's name].
    site: Option<Spanned<String>>,
}

/// A site: its inventory, and where its telemetry comes from when not from that inventory's `[source]`.
#[derive(Debug, Clone)]
pub struct Context {
    pub name: String,
    /// What its records carry: `site = NAME`, else the context's name.
    pub site: String,
    pub inventory: PathBuf,
    pub source: Option<ContextSource>,
}

/// A context's `source`.
#[derive(Debug, Clone)]
pub enum ContextSource {
    /// Given in the config: a Prometheus-compatible store, or `None` for the nodes over SSH.
    Given(Option<PrometheusSource>),
    /// The `[source]` of this inventory file.
    FromInventory(PathBuf),
}

/// The name that means every context at once.
pub(crate) const ALL_CONTEXTS: &str = "all";

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
        let loc = Locator { file, text };
        let mut config: Config =
            toml::from_str(text).map_err(|e| loc.toml_error(&e).to_string())?;
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        let mut errors = Vec::new();
        let entries = std::mem::take(&mut config.context_entries);
        for entry in &entries {
            if let Some(context) = resolve_context(entry, base, &loc, &mut errors) {
                if config.contexts.iter().any(|c| c.name == context.name) {
                    errors.push(loc.at(
                        entry.get_ref().name.span().start,
                        format!("context {:?} is defined twice", context.name),
                    ));
                } else {
                    config.contexts.push(context);
                }
            }
        }
        match errors.is_empty() {
            true => Ok(config),
            false => Err(crate::inventory::InventoryErrors(errors).to_string()),
        }
    }

    /// The context called `name`, or an error listing the ones there are.
    pub fn context(&self, name: &str) -> Result<&Context, String> {
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.contexts.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "--context {:?}: no such [[context]] in {} (known: {})",
                    crate::text::escape(name),
                    Config::path()
                        .map_or_else(|| "config.toml".into(), |p| p.display().to_string()),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })
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

fn is_context_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn resolve_context(
    entry: &Spanned<ContextFile>,
    base: &Path,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> Option<Context> {
    let c = entry.get_ref();
    let name = c.name.get_ref();
    let site = c.site.as_ref().unwrap_or(&c.name);
    for (key, value) in [("name", &c.name), ("site", site)] {
        let text = value.get_ref();
        if !is_context_name(text) || text == ALL_CONTEXTS {
            errors.push(loc.at(
                value.span().start,
                format!(
                    "context {key} {:?}: use 1 to 32 letters, digits, '-' or '_' (and not \"{ALL_CONTEXTS}\", which means every context)",
                    crate::text::escape(text)
                ),
            ));
            return None;
        }
    }
    let at = (c.inventory.get_ref().as_str(), c.inventory.span().start);
    let inventory = existing_file(at, base, "inventory", loc, errors)?;
    let source = match c.source.as_ref() {
        None => None,
        Some(value) => match value.get_ref() {
            toml::Value::String(_) => {
                let path = value.get_ref().as_str().unwrap_or_default();
                let at = (path, value.span().start);
                Some(ContextSource::FromInventory(existing_file(
                    at, base, "source", loc, errors,
                )?))
            }
            toml::Value::Table(table) => {
                let keys: SourceFile = match table.clone().try_into() {
                    Ok(keys) => keys,
                    Err(e) => {
                        errors.push(loc.at(
                            value.span().start,
                            format!("context {name:?} source: {}", e.message()),
                        ));
                        return None;
                    }
                };
                let before = errors.len();
                let prometheus = crate::inventory::prometheus_source(
                    &keys,
                    (loc, entry.span().start, "context.source"),
                    errors,
                );
                if errors.len() > before {
                    return None;
                }
                Some(ContextSource::Given(prometheus))
            }
            _ => {
                errors.push(loc.at(
                    value.span().start,
                    format!("context {name:?} source: expected an inventory path or a table of [source] keys"),
                ));
                return None;
            }
        },
    };
    Some(Context {
        name: name.clone(),
        site: site.get_ref().clone(),
        inventory,
        source,
    })
}

/// `path` (with `~/` expanded, relative to `base`), written at byte `offset`, which must be a file.
fn existing_file(
    (path, offset): (&str, usize),
    base: &Path,
    key: &str,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> Option<PathBuf> {
    let resolved = base.join(crate::inventory::expand_home(path));
    match std::fs::metadata(&resolved) {
        Ok(m) if m.is_file() => Some(resolved),
        Ok(_) => {
            errors.push(loc.at(offset, format!("{key} {}: not a file", resolved.display())));
            None
        }
        Err(e) => {
            errors.push(loc.at(offset, format!("{key} {}: {e}", resolved.display())));
            None
        }
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

    /// A config file in a fresh directory holding `east.toml` and `prom.toml` (an inventory with a
    /// Prometheus `[source]`), and what parsing it gives.
    fn parse_in_dir(config: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("east.toml"), "").unwrap();
        std::fs::write(dir.path().join("prom.toml"), "").unwrap();
        let file = dir.path().join("config.toml");
        Config::parse(&file.display().to_string(), config)
    }

    #[test]
    fn contexts_resolve_their_inventory_and_source() {
        let c = parse_in_dir(
            "[[context]]\nname = \"east\"\ninventory = \"east.toml\"\n\
             [[context]]\nname = \"west-2\"\ninventory = \"east.toml\"\nsource = \"prom.toml\"\n\
             [[context]]\nname = \"prom\"\ninventory = \"east.toml\"\n\
             [context.source]\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9090/\"\n\
             [[context]]\nname = \"ssh\"\ninventory = \"east.toml\"\nsource = { kind = \"ssh\" }\nsite = \"east\"\n",
        )
        .unwrap();
        let names: Vec<&str> = c.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["east", "west-2", "prom", "ssh"]);
        let sites: Vec<&str> = c.contexts.iter().map(|c| c.site.as_str()).collect();
        assert_eq!(
            sites,
            ["east", "west-2", "prom", "east"],
            "a site defaults to the name"
        );
        assert!(c.contexts[0].inventory.ends_with("east.toml"));
        assert!(c.contexts[0].inventory.is_absolute());
        assert!(c.contexts[0].source.is_none());
        assert!(
            matches!(&c.contexts[1].source, Some(ContextSource::FromInventory(p)) if p.ends_with("prom.toml"))
        );
        match &c.contexts[2].source {
            Some(ContextSource::Given(Some(p))) => assert_eq!(p.url, "http://127.0.0.1:9090"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.contexts[3].source,
            Some(ContextSource::Given(None))
        ));
        assert_eq!(c.context("prom").unwrap().name, "prom");
        let e = c.context("north").unwrap_err();
        assert!(e.contains("known: east, west-2, prom, ssh"), "{e}");
    }

    #[test]
    fn bad_contexts_are_errors_at_their_line() {
        let entry = |body: &str| format!("theme = \"light\"\n[[context]]\n{body}");
        let cases = [
            (
                entry("name = \"east\"\ninventory = \"east.toml\"\n[[context]]\nname = \"east\"\ninventory = \"east.toml\"\n"),
                ":6:8: context \"east\" is defined twice",
            ),
            (entry("name = \"east\"\ninventory = \"east.toml\"\nzone = 1\n"), ":5:1: unknown field `zone`"),
            (entry("name = \"east\"\ninventory = \"missing.toml\"\n"), ":4:13: inventory "),
            (entry("name = \"all\"\ninventory = \"east.toml\"\n"), ":3:8: context name \"all\""),
            (entry("name = \"a b\"\ninventory = \"east.toml\"\n"), ":3:8: context name \"a b\""),
            (entry("name = \"e\"\ninventory = \"east.toml\"\nsite = \"a/b\"\n"), ":5:8: context site \"a/b\""),
            (entry("name = \"e\"\ninventory = \"east.toml\"\nsite = \"all\"\n"), ":5:8: context site \"all\""),
            (entry("name = \"e\"\ninventory = \"east.toml\"\nsource = \"nope.toml\"\n"), ":5:10: source "),
            (
                entry("name = \"e\"\ninventory = \"east.toml\"\n[context.source]\nkind = \"prometheus\"\n"),
                ":6:1: [context.source] kind = \"prometheus\" needs url",
            ),
            (
                entry("name = \"e\"\ninventory = \"east.toml\"\nsource = { kind = \"ssh\", colour = 1 }\n"),
                ":5:10: context \"e\" source: unknown field `colour`",
            ),
        ];
        for (text, expected) in cases {
            let e = parse_in_dir(&text).unwrap_err();
            assert!(e.contains(expected), "{text}\n→ {e}\nexpected {expected}");
            assert!(e.contains("config.toml:"), "{e}");
        }
    }
}
