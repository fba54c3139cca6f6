//! Keys to actions: the default bindings, overrides from the config file, and help generated from them.

use std::collections::BTreeMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask for in normal mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Help,
    ViewOverview,
    ViewNodes,
    ViewDetail,
    ViewTenants,
    ViewEvents,
    ViewDrift,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Filter,
    Command,
    SortNext,
    SortReverse,
    CycleMetric,
    Mark,
    MarkFiltered,
    Drain,
    Undrain,
    Reboot,
    Reset,
    Repair,
    AckXids,
    Shell,
}

impl Action {
    /// Config-file name and help text; `None` for actions not available yet.
    pub(crate) fn describe(self) -> (&'static str, &'static str) {
        match self {
            Action::Quit => ("quit", "quit fleetop"),
            Action::Help => ("help", "show or hide this help"),
            Action::ViewOverview => (
                "view_overview",
                "fleet overview: one cell per node by cabinet",
            ),
            Action::ViewNodes => ("view_nodes", "nodes table"),
            Action::ViewDetail => ("view_detail", "detail of the selected node"),
            Action::ViewTenants => ("view_tenants", "tenants table"),
            Action::ViewEvents => ("view_events", "events log"),
            Action::ViewDrift => (
                "view_drift",
                "drift: nodes whose agent, driver, GPU model, VBIOS or GPU count differ",
            ),
            Action::Up => ("up", "move up"),
            Action::Down => ("down", "move down"),
            Action::Left => ("left", "move left (overview)"),
            Action::Right => ("right", "move right (overview)"),
            Action::PageUp => ("page_up", "page up"),
            Action::PageDown => ("page_down", "page down"),
            Action::Top => ("top", "go to the first row"),
            Action::Bottom => ("bottom", "go to the last row"),
            Action::Open => ("open", "open the node detail / filter nodes by tenant"),
            Action::Back => ("back", "back / clear the filter"),
            Action::Filter => (
                "filter",
                "filter: key=value terms (node cabinet tenant state health) or text",
            ),
            Action::Command => (
                "command",
                "command line (:nodes, :sort temp, :metric power, :q …)",
            ),
            Action::SortNext => ("sort", "sort by the next column"),
            Action::SortReverse => ("sort_reverse", "reverse the sort order"),
            Action::CycleMetric => ("metric", "cycle the overview's colour metric"),
            Action::Mark => ("mark", "mark the selected node"),
            Action::MarkFiltered => ("mark_filtered", "mark every node matching the filter"),
            Action::Drain => (
                "drain",
                "drain the marked (or selected) nodes: reason, then confirm",
            ),
            Action::Undrain => (
                "undrain",
                "undrain the marked (or selected) nodes, after a confirm",
            ),
            Action::Reboot => (
                "reboot",
                "reboot the marked (or selected) nodes, after a confirm",
            ),
            Action::Reset => (
                "reset",
                "reset every GPU of the marked (or selected) drained nodes (nvidia-smi -r), after a confirm",
            ),
            Action::Repair => (
                "repair",
                "repair the marked (or selected) nodes: drain, wait for jobs, reboot, check, undrain",
            ),
            Action::AckXids => (
                "ack_xids",
                "acknowledge the XIDs of the marked (or selected) nodes, with a reason (audit log)",
            ),
            Action::Shell => (
                "shell",
                "open an SSH shell on the selected node (OpenSSH, strict host keys); the view returns when it ends",
            ),
        }
    }

    pub const ALL: [Action; 32] = [
        Action::Quit,
        Action::Help,
        Action::ViewOverview,
        Action::ViewNodes,
        Action::ViewDetail,
        Action::ViewTenants,
        Action::ViewEvents,
        Action::ViewDrift,
        Action::Up,
        Action::Down,
        Action::Left,
        Action::Right,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Open,
        Action::Back,
        Action::Filter,
        Action::Command,
        Action::SortNext,
        Action::SortReverse,
        Action::CycleMetric,
        Action::Mark,
        Action::MarkFiltered,
        Action::Drain,
        Action::Undrain,
        Action::Reboot,
        Action::Reset,
        Action::Repair,
        Action::AckXids,
        Action::Shell,
    ];

    pub(crate) fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.describe().0 == name)
    }
}

/// A key with its modifiers, as written in config files: `q`, `ctrl-c`, `enter`, `pgdn`, `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub code: KeyCodeOrd,
    pub ctrl: bool,
}

/// `KeyCode` subset with an order, so keymaps print stably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum KeyCodeOrd {
    Char(char),
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    Backspace,
}

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let (ctrl, name) = match text.strip_prefix("ctrl-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let code = match name {
            "enter" => KeyCodeOrd::Enter,
            "esc" => KeyCodeOrd::Esc,
            "up" => KeyCodeOrd::Up,
            "down" => KeyCodeOrd::Down,
            "left" => KeyCodeOrd::Left,
            "right" => KeyCodeOrd::Right,
            "pgup" => KeyCodeOrd::PageUp,
            "pgdn" => KeyCodeOrd::PageDown,
            "home" => KeyCodeOrd::Home,
            "end" => KeyCodeOrd::End,
            "tab" => KeyCodeOrd::Tab,
            "backspace" => KeyCodeOrd::Backspace,
            "space" => KeyCodeOrd::Char(' '),
            one if one.chars().count() == 1 => KeyCodeOrd::Char(one.chars().next().unwrap_or(' ')),
            other => return Err(format!("unknown key {other:?}")),
        };
        Ok(Key { code, ctrl })
    }

    pub(crate) fn from_event(ev: &KeyEvent) -> Option<Key> {
        let code = match ev.code {
            KeyCode::Char(c) => KeyCodeOrd::Char(c),
            KeyCode::Enter => KeyCodeOrd::Enter,
            KeyCode::Esc => KeyCodeOrd::Esc,
            KeyCode::Up => KeyCodeOrd::Up,
            KeyCode::Down => KeyCodeOrd::Down,
            KeyCode::Left => KeyCodeOrd::Left,
            KeyCode::Right => KeyCodeOrd::Right,
            KeyCode::PageUp => KeyCodeOrd::PageUp,
            KeyCode::PageDown => KeyCodeOrd::PageDown,
            KeyCode::Home => KeyCodeOrd::Home,
            KeyCode::End => KeyCodeOrd::End,
            KeyCode::Tab => KeyCodeOrd::Tab,
            KeyCode::Backspace => KeyCodeOrd::Backspace,
            _ => return None,
        };
        Some(Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
        })
    }

    pub fn label(&self) -> String {
        let name = match self.code {
            KeyCodeOrd::Char(' ') => "space".to_string(),
            KeyCodeOrd::Char(c) => c.to_string(),
            KeyCodeOrd::Enter => "enter".into(),
            KeyCodeOrd::Esc => "esc".into(),
            KeyCodeOrd::Up => "↑".into(),
            KeyCodeOrd::Down => "↓".into(),
            KeyCodeOrd::Left => "←".into(),
            KeyCodeOrd::Right => "→".into(),
            KeyCodeOrd::PageUp => "pgup".into(),
            KeyCodeOrd::PageDown => "pgdn".into(),
            KeyCodeOrd::Home => "home".into(),
            KeyCodeOrd::End => "end".into(),
            KeyCodeOrd::Tab => "tab".into(),
            KeyCodeOrd::Backspace => "backspace".into(),
        };
        if self.ctrl {
            format!("ctrl-{name}")
        } else {
            name
        }
    }
}

/// Normal-mode bindings, in the order they were declared (help and hints show them so).
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Key, Action)>,
}

const DEFAULTS: &[(&str, Action)] = &[
    ("q", Action::Quit),
    ("ctrl-c", Action::Quit),
    ("?", Action::Help),
    ("1", Action::ViewOverview),
    ("2", Action::ViewNodes),
    ("3", Action::ViewDetail),
    ("4", Action::ViewTenants),
    ("5", Action::ViewEvents),
    ("6", Action::ViewDrift),
    ("k", Action::Up),
    ("up", Action::Up),
    ("j", Action::Down),
    ("down", Action::Down),
    ("h", Action::Left),
    ("left", Action::Left),
    ("l", Action::Right),
    ("right", Action::Right),
    ("pgup", Action::PageUp),
    ("ctrl-b", Action::PageUp),
    ("pgdn", Action::PageDown),
    ("ctrl-f", Action::PageDown),
    ("g", Action::Top),
    ("home", Action::Top),
    ("G", Action::Bottom),
    ("end", Action::Bottom),
    ("enter", Action::Open),
    ("esc", Action::Back),
    ("/", Action::Filter),
    (":", Action::Command),
    ("s", Action::SortNext),
    ("S", Action::SortReverse),
    ("m", Action::CycleMetric),
    ("space", Action::Mark),
    ("V", Action::MarkFiltered),
    // Capitals, and each opens a confirm dialog: no destructive action is one stray keystroke away.
    ("D", Action::Drain),
    ("U", Action::Undrain),
    ("R", Action::Reboot),
    ("X", Action::Reset),
    ("F", Action::Repair),
    ("a", Action::AckXids),
    ("x", Action::Shell),
];

impl Default for Keymap {
    fn default() -> Self {
        let bindings = DEFAULTS
            .iter()
            .filter_map(|(k, a)| Key::parse(k).ok().map(|key| (key, *a)))
            .collect();
        Keymap { bindings }
    }
}

impl Keymap {
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(ev)?;
        self.bindings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, a)| *a)
    }

    /// Applies `[keys]` overrides (`action = "key"` or `["k1", "k2"]`): the action's default keys are
    /// replaced, and a key taken from another action moves to this one.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        for (name, keys) in overrides {
            let action = Action::from_name(name)
                .ok_or_else(|| format!("unknown action {name:?} in [keys]"))?;
            self.bindings.retain(|(_, a)| *a != action);
            for k in keys {
                let key = Key::parse(k).map_err(|e| format!("[keys] {name}: {e}"))?;
                self.bindings.retain(|(taken, _)| *taken != key);
                self.bindings.push((key, action));
            }
        }
        Ok(self)
    }

    /// Keys bound to `action`, in a stable order.
    pub(crate) fn keys_for(&self, action: Action) -> Vec<Key> {
        self.bindings
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| *k)
            .collect()
    }

    /// `(keys, description)` for every bound action, in `Action::ALL` order: the help screen.
    pub fn help(&self) -> Vec<(String, &'static str)> {
        Action::ALL
            .into_iter()
            .filter_map(|a| {
                let keys = self.keys_for(a);
                (!keys.is_empty()).then(|| {
                    let labels: Vec<String> = keys.iter().map(Key::label).collect();
                    (labels.join(" "), a.describe().1)
                })
            })
            .collect()
    }

    /// The first key of `action`, for footer hints.
    pub fn hint(&self, action: Action) -> Option<String> {
        self.keys_for(action).first().map(Key::label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_and_steal_keys() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["x".to_string()]);
        o.insert("help".to_string(), vec!["q".to_string()]);
        let map = Keymap::default().with_overrides(&o).unwrap();
        let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(map.action(&q), Some(Action::Help));
        assert_eq!(
            map.keys_for(Action::Quit)
                .iter()
                .map(Key::label)
                .collect::<Vec<_>>(),
            ["x"]
        );
        let mut bad = BTreeMap::new();
        bad.insert("fly".to_string(), vec!["f".to_string()]);
        assert!(Keymap::default().with_overrides(&bad).is_err());
    }

    #[test]
    fn help_lists_bound_actions_in_declared_order() {
        let help = Keymap::default().help();
        assert_eq!(help[0], ("q ctrl-c".to_string(), "quit fleetop"));
        assert!(
            help.iter()
                .any(|(k, d)| k == "R" && d.starts_with("reboot")),
            "{help:?}"
        );
        let mut o = BTreeMap::new();
        o.insert("reboot".to_string(), Vec::new());
        let unbound = Keymap::default().with_overrides(&o).unwrap().help();
        assert!(
            !unbound.iter().any(|(_, d)| d.starts_with("reboot")),
            "an unbound action is not listed"
        );
    }
}
