//! The events log: state and health changes and XIDs, newest first.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{clock, fit};
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if app.journal.is_empty() {
        let msg = "no events yet: state changes, health changes and XIDs appear here";
        frame.render_widget(Paragraph::new(Line::styled(msg, theme.dim())), area);
        return;
    }
    let width = usize::from(area.width.saturating_sub(10));
    let lines: Vec<Line> = app
        .journal
        .newest_first()
        .skip(app.events_scroll)
        .take(usize::from(area.height))
        .map(|e| {
            Line::from(vec![
                Span::styled(format!("{} ", clock(app.wall_time(e.at))), theme.dim()),
                Span::styled(fit(&e.text, width), theme.health(e.severity)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}
