//! `[repair]`: what `fleetop repair` checks before a node goes back to service, and when it holds a GPU back
//! for hardware inspection instead of repairing it again.

use std::time::Duration;

use serde::Deserialize;

use super::error::{InventoryError, Locator};

/// `[repair]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepairFile {
    /// Command run on the node over SSH once it is back and healthy; exit 0 lets the node return to service,
    /// anything else keeps it drained. Default: `dcgmi diag -r 1` where `dcgmi` is on the node's PATH, else no
    /// validation; `""` turns validation off.
    pub validate: Option<String>,
    /// Longest the validation may run; past it the validation failed (default `10m`; `90s`, `15m`, `1h`).
    pub validate_timeout: Option<String>,
    /// How many incidents of one GPU (health turning crit, repairs; any cause) within `repair_window` make it a
    /// lemon: flagged `L` and "repeat offender", and the next repair stops after the drain and holds it for
    /// hardware inspection (default 2).
    pub max_repairs: Option<u32>,
    /// The window `max_repairs` counts in, as an age (default `30d`).
    pub repair_window: Option<String>,
}

/// The validation a repair runs before it undrains a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Validate {
    /// `dcgmi diag -r 1` on a node whose PATH has `dcgmi`; nothing elsewhere.
    DcgmiWhereInstalled,
    /// This command, run by the node's shell.
    Command(String),
    /// `validate = ""`: none.
    Off,
}

/// Resolved `[repair]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairSettings {
    pub validate: Validate,
    pub validate_timeout: Duration,
    pub max_repairs: u32,
    pub repair_window: Duration,
}

impl Default for RepairSettings {
    fn default() -> Self {
        RepairSettings {
            validate: Validate::DcgmiWhereInstalled,
            validate_timeout: Duration::from_secs(600),
            max_repairs: 2,
            repair_window: Duration::from_secs(30 * 86_400),
        }
    }
}

/// DCGM's quick diagnostic (level 1 runs in seconds; 2 takes about two minutes, 3 about fifteen).
pub(crate) const DCGMI_DIAG: &str = "dcgmi diag -r 1";

/// Longest `validate_timeout` accepted: DCGM's longest diagnostic (level 4) runs for hours, not days.
const MAX_VALIDATE: Duration = Duration::from_secs(86_400);
/// Longest `repair_window` accepted.
const MAX_WINDOW: Duration = Duration::from_secs(10 * 365 * 86_400);

pub(crate) fn resolve(
    r: &RepairFile,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> RepairSettings {
    let defaults = RepairSettings::default();
    let validate = match r.validate.as_deref().map(str::trim) {
        None => Validate::DcgmiWhereInstalled,
        Some("") => Validate::Off,
        Some(c) if c.chars().any(char::is_control) => {
            errors.push(loc.at(
                loc.key("repair", "validate"),
                "[repair] validate holds a control character",
            ));
            Validate::Off
        }
        Some(c) => Validate::Command(c.to_string()),
    };
    let mut age = |key: &str, value: &Option<String>, default: Duration, max: Duration| {
        let Some(text) = value else {
            return default;
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() && d <= max => d,
            _ => {
                errors.push(loc.at(
                    loc.key("repair", key),
                    format!(
                        "[repair] {key} = {:?} is not a duration between 1s and {} (e.g. \"10m\", \"30d\")",
                        crate::text::escape(text),
                        humantime::format_duration(max)
                    ),
                ));
                default
            }
        }
    };
    let validate_timeout = age(
        "validate_timeout",
        &r.validate_timeout,
        defaults.validate_timeout,
        MAX_VALIDATE,
    );
    let repair_window = age(
        "repair_window",
        &r.repair_window,
        defaults.repair_window,
        MAX_WINDOW,
    );
    let max_repairs = r.max_repairs.unwrap_or(defaults.max_repairs);
    if max_repairs == 0 {
        errors.push(loc.at(
            loc.key("repair", "max_repairs"),
            "[repair] max_repairs = 0 would hold every GPU back: at least 1",
        ));
    }
    RepairSettings {
        validate,
        validate_timeout,
        max_repairs: max_repairs.max(1),
        repair_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    const NODES: &str = "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n";

    #[test]
    fn defaults_settings_and_bad_values_at_their_line() {
        let inv = Inventory::parse("t.toml", NODES).unwrap();
        assert_eq!(inv.actions.repair, RepairSettings::default());
        let text = format!(
            "{NODES}[repair]\nvalidate = \"/opt/check --quick\"\nvalidate_timeout = \"90s\"\nmax_repairs = 3\nrepair_window = \"7d\"\n"
        );
        let r = Inventory::parse("t.toml", &text).unwrap().actions.repair;
        assert_eq!(r.validate, Validate::Command("/opt/check --quick".into()));
        assert_eq!(r.validate_timeout, Duration::from_secs(90));
        assert_eq!(
            (r.max_repairs, r.repair_window),
            (3, Duration::from_secs(7 * 86_400))
        );
        let off = format!("{NODES}[repair]\nvalidate = \"\"\n");
        assert_eq!(
            Inventory::parse("t.toml", &off)
                .unwrap()
                .actions
                .repair
                .validate,
            Validate::Off
        );
        let bad = format!("{NODES}[repair]\nvalidate_timeout = \"forever\"\nmax_repairs = 0\n");
        let err = Inventory::parse("t.toml", &bad).unwrap_err().to_string();
        assert!(
            err.contains("t.toml:5") && err.contains("validate_timeout = \"forever\""),
            "{err}"
        );
        assert!(
            err.contains("t.toml:6") && err.contains("max_repairs = 0"),
            "{err}"
        );
        let unknown = format!("{NODES}[repair]\nvalidation = \"x\"\n");
        assert!(Inventory::parse("t.toml", &unknown).is_err());
    }
}
