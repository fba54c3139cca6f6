//! Small text formatters shared by the views: percentages, power, ages, bars and sparklines.

use std::time::{Duration, SystemTime};

use crate::fleet::history::MISSING;

pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.0}%"))
}

pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x}{unit}"))
}

/// Watts as kW (or MW past 1,000 kW), one decimal.
pub(crate) fn kw(watts: f64) -> String {
    if watts >= 1_000_000.0 {
        format!("{:.2} MW", watts / 1_000_000.0)
    } else {
        format!("{:.1} kW", watts / 1000.0)
    }
}

/// A short age: `0.4s`, `12s`, `3m`, `2h`.
pub(crate) fn age(d: Option<Duration>) -> String {
    let Some(d) = d else { return "–".into() };
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 120.0 {
        format!("{s:.0}s")
    } else if s < 7200.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.0}h", s / 3600.0)
    }
}

/// `HH:MM:SS` (UTC) of a wall-clock time.
pub fn clock(t: SystemTime) -> String {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let full = crate::text::rfc3339_ms(ms);
    full.get(11..19).unwrap_or(&full).to_string()
}

/// A horizontal bar `width` cells wide for `fraction` of full, with eighth-cell resolution.
pub fn bar(fraction: Option<f64>, width: usize) -> String {
    let Some(f) = fraction else {
        return "╌".repeat(width);
    };
    let eighths = (f.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let partial = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push_str(partial[eighths % 8]);
    }
    let used = s.chars().count();
    s.push_str(&"·".repeat(width.saturating_sub(used)));
    s
}

/// The last `width` values as a sparkline (0..=100 scale); gaps where values are missing.
pub(crate) fn sparkline(values: &[u8], width: usize, max: u8) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(width);
    let mut s: String = values[start..]
        .iter()
        .map(|&v| {
            if v == MISSING {
                ' '
            } else {
                LEVELS[(usize::from(v.min(max)) * 7 / usize::from(max.max(1))).min(7)]
            }
        })
        .collect();
    let shown = s.chars().count();
    if shown < width {
        s = " ".repeat(width - shown) + &s;
    }
    s
}

/// Cuts text to `width` characters, marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bar(Some(0.5), 4), "██··");
        assert_eq!(bar(None, 3), "╌╌╌");
        assert_eq!(sparkline(&[0, 100, MISSING], 4, 100), " ▁█ ");
        assert_eq!(kw(4_916_600.0), "4.92 MW");
        assert_eq!(age(Some(Duration::from_millis(400))), "0.4s");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
