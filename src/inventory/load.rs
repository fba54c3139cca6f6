//! Where an inventory comes from: a file (found by `--inventory`'s fallbacks), inventory text, or the built-in
//! demo fleet; each is validated by `resolve`.

use std::path::{Path, PathBuf};

use super::error::{InventoryError, InventoryErrors};
use super::model::Inventory;
use super::resolve;

/// The reference fleet's inventory, built into the binary for `--demo`.
pub(crate) const DEMO_INVENTORY: &str = include_str!("../../inventory.toml");

impl Inventory {
    /// Reads and validates an inventory file; every problem is reported, each with file:line:column.
    pub fn load(path: &Path) -> Result<Self, InventoryErrors> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            InventoryErrors(vec![InventoryError {
                file: shown.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read inventory: {e}"),
            }])
        })?;
        Self::parse(&shown, &text)
    }

    /// Validates inventory text; `file` is the name used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Self, InventoryErrors> {
        resolve::resolve(file, text)
    }

    /// The built-in reference fleet used by `--demo`.
    pub fn demo() -> Self {
        match Self::parse("demo", DEMO_INVENTORY) {
            Ok(inv) => Inventory {
                simulated: true,
                ..inv
            },
            // The file is compiled in and checked by a unit test, so this is a build defect.
            Err(e) => panic!("built-in demo inventory is invalid: {e}"),
        }
    }
}

/// Where `--inventory` falls back to: `$FLEETOP_INVENTORY`, `./inventory.toml`, then the XDG config dir.
pub(crate) fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLEETOP_INVENTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("inventory.toml");
    if local.exists() {
        return Some(local);
    }
    let xdg = crate::dirs::config()?.join("inventory.toml");
    xdg.exists().then_some(xdg)
}

/// Expands a leading `~/` to `$HOME`.
pub(crate) fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
