//! The node detail's history pane: what the history store holds for the node and its GPUs (by serial and UUID,
//! wherever they were), newest first, as the App received it; every stored text escaped on its way out.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::store::Event;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Most lines the pane takes, its title included.
const MAX_LINES: u16 = 12;

/// The lines the pane needs for the node in the detail view; 0 when the store has not answered for it.
pub fn height(app: &App) -> u16 {
    if app.history.node != Some(app.selected) {
        return 0;
    }
    let body = match &app.history.events {
        Ok(events) => events.len().max(1),
        Err(_) => 1,
    };
    u16::try_from(body + 1).unwrap_or(MAX_LINES).min(MAX_LINES)
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let mut lines = vec![Line::styled(
        "history (fleet.sqlite, newest first, 30 days)",
        theme.header(),
    )];
    match &app.history.events {
        Err(e) => lines.push(Line::styled(
            format!("cannot read the history: {}", crate::text::escape(e)),
            theme.unreachable(),
        )),
        Ok(events) if events.is_empty() => {
            lines.push(Line::styled("nothing recorded", theme.dim()));
        }
        Ok(events) => {
            let here = app
                .fleet
                .inventory()
                .nodes
                .get(app.selected)
                .map_or("", |n| n.name.as_str());
            lines.extend(events.iter().map(|e| line(e, here, theme)));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `2026-12-06T03:12:00Z  GPU 3 SN 1652…  health  crit: XID 79 …`, with `on NODE` for what happened to one of
/// its GPUs on another node than `here`.
fn line<'a>(e: &Event, here: &str, theme: &Theme) -> Line<'a> {
    let mut gpu = e.gpu.map(|g| format!("GPU {g} ")).unwrap_or_default();
    if let Some(id) = e
        .serial
        .as_deref()
        .map(|s| format!("SN {s}"))
        .or(e.uuid.clone())
    {
        gpu.push_str(&id);
    }
    let elsewhere = if e.node == here {
        String::new()
    } else {
        format!("on {} ", e.node)
    };
    Line::from(vec![
        Span::styled(
            format!("{}  ", crate::text::rfc3339_ms(e.time_ms)),
            theme.dim(),
        ),
        Span::styled(
            format!("{:<34}", crate::text::escape(&format!("{elsewhere}{gpu}"))),
            theme.dim(),
        ),
        Span::styled(
            format!("  {:<10} ", crate::text::escape(&e.kind)),
            theme.accent(),
        ),
        Span::styled(crate::text::escape(&e.detail).into_owned(), theme.text()),
    ])
}
