//! The action confirm dialog and the box of unacknowledged failures.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::format::fit;
use crate::telemetry::health::Health;
use crate::tui::app::operate::Confirm;
use crate::tui::app::App;
use crate::tui::theme::Theme;

fn centered(body: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(body.width);
    let height = height.min(body.height);
    Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    }
}

pub(crate) fn render_confirm(c: &Confirm, theme: &Theme, frame: &mut Frame, body: Rect) {
    let kind = if c.repair {
        "repair"
    } else {
        c.request.kind.as_str()
    };
    let n = c.request.nodes.len();
    let width = body.width.saturating_sub(4).min(110);
    let inner = usize::from(width.saturating_sub(2));
    let mut lines = Vec::new();
    if let Some(reason) = &c.request.reason {
        lines.push(Line::from(vec![
            Span::styled("reason: ", theme.dim()),
            Span::raw(fit(reason, inner - 8)),
        ]));
    }
    for (text, busy) in c.impact.iter().take(8) {
        let (mark, style) = if *busy {
            ("⚠ ", theme.health(Health::Warn))
        } else {
            ("  ", theme.text())
        };
        lines.push(Line::styled(fit(&format!("{mark}{text}"), inner), style));
    }
    if c.impact.len() > 8 {
        lines.push(Line::styled(
            format!("  … and {} more nodes", c.impact.len() - 8),
            theme.dim(),
        ));
    }
    lines.push(Line::styled("commands:", theme.dim()));
    for cmd in c.commands.iter().take(6) {
        lines.push(Line::styled(
            fit(&format!("  {cmd}"), inner),
            theme.accent(),
        ));
    }
    if c.commands.len() > 6 {
        lines.push(Line::styled(
            format!("  … and {} more", c.commands.len() - 6),
            theme.dim(),
        ));
    }
    // Refusals are why nothing can happen: they wrap rather than being cut.
    for r in &c.refusals {
        for piece in wrap(&format!("✖ refused: {r}"), inner) {
            lines.push(Line::styled(piece, theme.health(Health::Crit)));
        }
    }
    if c.needs_count() && c.refusals.is_empty() {
        lines.push(Line::from(vec![
            Span::raw(format!("type {n} to confirm: ")),
            Span::styled(format!("{}▏", c.typed), theme.accent()),
        ]));
    }
    let button = |label: &str, focused: bool| {
        let style = if focused {
            theme.accent().add_modifier(Modifier::REVERSED)
        } else {
            theme.dim()
        };
        Span::styled(format!("[ {label} ]"), style)
    };
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        button("Cancel", !c.on_confirm),
        Span::raw("   "),
        button(&format!("{} {n}", capitalise(kind)), c.on_confirm),
        Span::styled("   tab: move · enter: choose · esc: cancel", theme.dim()),
    ]));
    let area = centered(body, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    let title = format!(" {kind} {n} node{} ", if n == 1 { "" } else { "s" });
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title)
                .title_style(theme.health(Health::Warn))
                .border_style(theme.health(Health::Warn)),
        ),
        area,
    );
}

/// Splits `text` into lines of at most `width` characters, at spaces where possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line.push_str("  ");
        } else if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

fn capitalise(word: &str) -> String {
    let mut c = word.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// Failures stay here until the operator presses enter or esc.
pub(crate) fn render_failures(app: &App, theme: &Theme, frame: &mut Frame, body: Rect) {
    let failures = &app.ops.failures;
    let width = body.width.saturating_sub(2);
    let inner = usize::from(width.saturating_sub(2));
    let mut lines: Vec<Line> = failures
        .iter()
        .rev()
        .take(6)
        .map(|f| Line::styled(fit(f, inner), theme.health(Health::Crit)))
        .collect();
    if failures.len() > 6 {
        lines.push(Line::styled(
            format!("… and {} more (events view)", failures.len() - 6),
            theme.dim(),
        ));
    }
    lines.push(Line::styled("enter or esc acknowledges", theme.dim()));
    let height = lines.len() as u16 + 2;
    let area = Rect {
        x: body.x + 1,
        y: body.y + body.height.saturating_sub(height),
        width,
        height: height.min(body.height),
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(
                    " {} failure{} ",
                    failures.len(),
                    if failures.len() == 1 { "" } else { "s" }
                ))
                .title_style(theme.health(Health::Crit))
                .border_style(theme.health(Health::Crit)),
        ),
        area,
    );
}
