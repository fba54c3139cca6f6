//! The tenants table: each tenant's share of nodes, GPUs, utilisation, power and trouble.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use super::format::{kw, pct};
use super::scroll_offset;
use crate::telemetry::health::Health;
use crate::tui::app::App;
use crate::tui::theme::Theme;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let height = usize::from(area.height.saturating_sub(1));
    let first = scroll_offset(Some(app.tenant_cursor), height);
    let header = [
        "TENANT", "NODES", "GPUS", "JOBS", "UTIL", "POWER", "WARN", "CRIT", "NO DATA", "DRAINED",
    ]
    .map(|h| Cell::from(Span::styled(h, theme.header())));
    let rows = app
        .tenants
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, t)| {
            let count = |n: usize, h: Health| {
                Span::styled(
                    n.to_string(),
                    if n > 0 { theme.health(h) } else { theme.dim() },
                )
            };
            let row = Row::new(vec![
                Cell::from(t.name.clone()),
                Cell::from(t.nodes.to_string()),
                Cell::from(t.gpus.to_string()),
                Cell::from(t.jobs.map_or("–".into(), |j| j.to_string())),
                Cell::from(pct(t.avg_util)),
                Cell::from(kw(t.power_w)),
                Cell::from(count(t.warn, Health::Warn)),
                Cell::from(count(t.crit, Health::Crit)),
                Cell::from(count(t.no_data, Health::Crit)),
                Cell::from(Span::styled(t.drained.to_string(), theme.dim())),
            ]);
            if i == app.tenant_cursor {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [14, 6, 6, 5, 5, 10, 5, 5, 8, 8].map(Constraint::Length);
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header))
            .column_spacing(1),
        area,
    );
}

pub fn hit(app: &App, area: Rect, row: u16) -> Option<usize> {
    let line = usize::from(row.checked_sub(area.y + 1)?);
    let height = usize::from(area.height.saturating_sub(1));
    let first = scroll_offset(Some(app.tenant_cursor), height);
    let i = first + line;
    (line < height && i < app.tenants.len()).then_some(i)
}
