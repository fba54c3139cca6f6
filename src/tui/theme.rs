//! Colour themes by semantic role. Theme files hold overrides patched onto the built-in default.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// Themes shipped with fleetop (also in `themes/`), built into the binary.
pub(crate) const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

/// Colours by role; widgets ask for a role, never for a colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub text: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub header: Color,
    pub selected_bg: Color,
    pub ok: Color,
    pub warn: Color,
    pub crit: Color,
    pub stale: Color,
    pub unreachable: Color,
    /// Low to high, for metrics (utilisation, temperature, power) in the overview.
    pub util_ramp: Vec<Color>,
    /// True when `NO_COLOR` is set: only modifiers (bold, dim, reverse) carry meaning.
    pub monochrome: bool,
}

/// A theme file: every key optional, unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThemeFile {
    /// Ordinary text.
    pub text: Option<String>,
    /// Secondary text, stale rows.
    pub dim: Option<String>,
    /// Highlights: the current view tab, titles.
    pub accent: Option<String>,
    /// Block borders.
    pub border: Option<String>,
    /// Table headers.
    pub header: Option<String>,
    /// Background of the selected row or cell.
    pub selected_bg: Option<String>,
    /// Healthy.
    pub ok: Option<String>,
    /// Needs a look.
    pub warn: Option<String>,
    /// Needs action now.
    pub crit: Option<String>,
    /// Data older than three intervals.
    pub stale: Option<String>,
    /// No data at all (unreachable, auth failed, host key, no driver).
    pub unreachable: Option<String>,
    /// Colours from low to high for the overview's metric cells (at least two).
    pub util_ramp: Option<Vec<String>>,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            text: Color::Reset,
            dim: Color::DarkGray,
            accent: Color::Cyan,
            border: Color::DarkGray,
            header: Color::Yellow,
            selected_bg: Color::Indexed(238),
            ok: Color::Green,
            warn: Color::Yellow,
            crit: Color::Red,
            stale: Color::DarkGray,
            unreachable: Color::Magenta,
            util_ramp: vec![
                Color::Indexed(24),
                Color::Indexed(31),
                Color::Indexed(37),
                Color::Indexed(71),
                Color::Indexed(178),
                Color::Indexed(208),
                Color::Indexed(196),
            ],
            monochrome: false,
        }
    }
}

fn color(role: &str, value: &str) -> Result<Color, String> {
    value
        .parse::<Color>()
        .map_err(|_| format!("{role} = {value:?} is not a colour (a name like \"red\", \"#rrggbb\" or an index 0-255)"))
}

impl Theme {
    /// The default with a theme file's overrides applied; `file` names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<Theme, String> {
        let loc = crate::inventory::Locator { file, text };
        let parsed: ThemeFile = toml::from_str(text).map_err(|e| loc.toml_error(&e).to_string())?;
        let mut theme = Theme::default();
        let roles: [(&str, &Option<String>, &mut Color); 11] = [
            ("text", &parsed.text, &mut theme.text),
            ("dim", &parsed.dim, &mut theme.dim),
            ("accent", &parsed.accent, &mut theme.accent),
            ("border", &parsed.border, &mut theme.border),
            ("header", &parsed.header, &mut theme.header),
            ("selected_bg", &parsed.selected_bg, &mut theme.selected_bg),
            ("ok", &parsed.ok, &mut theme.ok),
            ("warn", &parsed.warn, &mut theme.warn),
            ("crit", &parsed.crit, &mut theme.crit),
            ("stale", &parsed.stale, &mut theme.stale),
            ("unreachable", &parsed.unreachable, &mut theme.unreachable),
        ];
        for (role, value, slot) in roles {
            if let Some(v) = value {
                *slot = color(role, v).map_err(|e| format!("{file}: {e}"))?;
            }
        }
        if let Some(ramp) = &parsed.util_ramp {
            if ramp.len() < 2 {
                return Err(format!("{file}: util_ramp needs at least two colours"));
            }
            theme.util_ramp = ramp
                .iter()
                .map(|c| color("util_ramp", c))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{file}: {e}"))?;
        }
        Ok(theme)
    }

    /// A shipped theme by name, or a theme file by path.
    pub fn load(name_or_path: &str) -> Result<Theme, String> {
        if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::parse(&format!("themes/{name}.toml"), text);
        }
        let path = crate::inventory::expand_home(name_or_path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            format!("theme {name_or_path:?}: not a shipped theme ({}) and cannot read it as a file: {e}", names.join(", "))
        })?;
        Theme::parse(&path.display().to_string(), &text)
    }

    /// Strips every colour, keeping the layout and modifiers (for `NO_COLOR`).
    pub fn without_color(mut self) -> Theme {
        for c in [
            &mut self.text,
            &mut self.dim,
            &mut self.accent,
            &mut self.border,
            &mut self.header,
            &mut self.selected_bg,
            &mut self.ok,
            &mut self.warn,
            &mut self.crit,
            &mut self.stale,
            &mut self.unreachable,
        ] {
            *c = Color::Reset;
        }
        self.util_ramp = vec![Color::Reset, Color::Reset];
        self.monochrome = true;
        self
    }

    pub fn text(&self) -> Style {
        Style::new().fg(self.text)
    }

    pub(crate) fn dim(&self) -> Style {
        Style::new().fg(self.dim).add_modifier(Modifier::DIM)
    }

    pub fn header(&self) -> Style {
        Style::new().fg(self.header).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn border(&self) -> Style {
        Style::new().fg(self.border)
    }

    pub(crate) fn accent(&self) -> Style {
        Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        let s = Style::new()
            .bg(self.selected_bg)
            .add_modifier(Modifier::BOLD);
        if self.monochrome {
            s.add_modifier(Modifier::REVERSED)
        } else {
            s
        }
    }

    pub fn health(&self, h: crate::telemetry::health::Health) -> Style {
        use crate::telemetry::health::Health;
        match h {
            Health::Ok => Style::new().fg(self.ok),
            Health::Warn => Style::new().fg(self.warn).add_modifier(Modifier::BOLD),
            Health::Crit => Style::new().fg(self.crit).add_modifier(Modifier::BOLD),
        }
    }

    pub fn stale(&self) -> Style {
        Style::new().fg(self.stale).add_modifier(Modifier::DIM)
    }

    pub fn unreachable(&self) -> Style {
        Style::new()
            .fg(self.unreachable)
            .add_modifier(Modifier::BOLD)
    }

    /// The ramp colour for `fraction` in 0..=1.
    pub(crate) fn ramp(&self, fraction: f64) -> Color {
        let n = self.util_ramp.len();
        let i = (fraction.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize;
        self.util_ramp[i.min(n - 1)]
    }
}

/// The theme to use: `--theme`, then the config file's, then the default; `NO_COLOR` strips colour.
pub(crate) fn choose(flag: Option<&str>, config: Option<&str>) -> Result<Theme, String> {
    let theme = match flag.or(config) {
        Some(name) => Theme::load(name)?,
        None => Theme::default(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Ok(if no_color {
        theme.without_color()
    } else {
        theme
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_theme_parses_and_differs_from_the_default() {
        for (name, text) in SHIPPED {
            let theme = Theme::parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            if *name != "default" {
                assert_ne!(theme, Theme::default(), "{name} changes something");
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_colours_are_errors_with_position() {
        let e = Theme::parse("t.toml", "ok = \"green\"\ncolour = \"red\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:2:1: unknown field `colour`"), "{e}");
        let e = Theme::parse("t.toml", "crit = \"blood\"\n").unwrap_err();
        assert!(e.contains("crit = \"blood\" is not a colour"), "{e}");
        assert!(Theme::parse("t.toml", "util_ramp = [\"red\"]\n").is_err());
    }

    #[test]
    fn overrides_patch_the_default() {
        let t = Theme::parse("t", "crit = \"#ff0000\"\n").unwrap();
        assert_eq!(t.crit, Color::Rgb(255, 0, 0));
        assert_eq!(t.ok, Theme::default().ok);
    }

    #[test]
    fn no_color_keeps_meaning_in_modifiers() {
        let t = Theme::default().without_color();
        assert_eq!(
            t.health(crate::telemetry::health::Health::Crit).fg,
            Some(Color::Reset)
        );
        assert!(t.selected().add_modifier.contains(Modifier::REVERSED));
    }
}
