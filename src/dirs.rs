//! fleetop's XDG directories: `$XDG_CONFIG_HOME/fleetop` and `$XDG_STATE_HOME/fleetop`.

use std::path::PathBuf;

/// `$VAR/fleetop` when `$VAR` is an absolute path, else `$HOME/<fallback>/fleetop`.
fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(fallback)))
        .map(|d| d.join("fleetop"))
}

/// Where config.toml and a default inventory live (`~/.config/fleetop`).
pub fn config() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config")
}

/// Where the audit log and the TUI's log file live (`~/.local/state/fleetop`).
pub fn state() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state")
}
