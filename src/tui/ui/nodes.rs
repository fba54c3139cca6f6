//! The nodes table: one row per node passing the filter, sortable by any column.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::format::{age, fit, kw, opt, pct};
use super::{scroll_offset, state_style};
use crate::inventory::NodeId;
use crate::tui::app::{App, SortKey};
use crate::tui::theme::Theme;

/// A table column: header, the sort key it shows, width, and whether narrow terminals keep it.
struct Column {
    name: &'static str,
    key: Option<SortKey>,
    width: u16,
    narrow: bool,
}

const fn col(name: &'static str, key: Option<SortKey>, width: u16, narrow: bool) -> Column {
    Column {
        name,
        key,
        width,
        narrow,
    }
}

const COLUMNS: [Column; 13] = [
    // Only with several sites (`--context all`); NODE then shows the name within the site.
    col("SITE", None, 6, true),
    col("NODE", Some(SortKey::Name), 9, true),
    col("TENANT", Some(SortKey::Tenant), 10, true),
    col("STATE", Some(SortKey::State), 17, true),
    col("HLTH", Some(SortKey::Health), 4, true),
    col("SRC", None, 10, false),
    col("AGE", Some(SortKey::Age), 5, true),
    col("UTIL", Some(SortKey::Util), 7, true),
    col("TEMP", Some(SortKey::Temp), 4, true),
    col("MEMT", Some(SortKey::MemTemp), 4, false),
    col("POWER", Some(SortKey::Power), 7, true),
    col("JOBS", None, 4, false),
    col("FLAG", None, 5, true),
];

/// Below this width the table drops optional columns and abbreviates states.
const WIDE: u16 = 120;

/// Rows of the table body that fit in `area` (one line is the header).
fn body_height(area: Rect) -> usize {
    usize::from(area.height.saturating_sub(1))
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if app.order.is_empty() {
        let msg = format!(
            "no node matches the filter {:?} (esc clears it)",
            app.filter.text
        );
        frame.render_widget(Paragraph::new(Line::styled(msg, theme.dim())), area);
        return;
    }
    let height = body_height(area);
    let first = scroll_offset(app.selected_position(), height);
    let arrow = if app.sort_descending { "▼" } else { "▲" };
    let wide = area.width >= WIDE;
    let inv = app.fleet.inventory();
    let sited = inv.nodes.first().and_then(|n| n.site()).is_some();
    let shown: Vec<&Column> = COLUMNS
        .iter()
        .filter(|c| (wide || c.narrow) && (sited || c.name != "SITE"))
        .collect();
    let width_of = |c: &Column| {
        if c.name == "STATE" && !wide {
            9
        } else {
            c.width
        }
    };
    let mut header: Vec<Cell> = shown
        .iter()
        .map(|c| {
            let marked = if c.key == Some(app.sort) {
                format!("{}{arrow}", c.name)
            } else {
                c.name.to_string()
            };
            Cell::from(Span::styled(marked, theme.header()))
        })
        .collect();
    header.push(Cell::from(Span::styled("NOTE", theme.header())));
    let fixed: u16 = shown.iter().map(|c| width_of(c) + 1).sum();
    let note_width = usize::from(area.width.saturating_sub(fixed));
    let rows = app.order.iter().skip(first).take(height).map(|&i| {
        let r = &app.rows[i];
        let faded = r.state != crate::fleet::NodeState::Up;
        let value_style = if faded { theme.stale() } else { theme.text() };
        let state = if wide {
            r.state.as_str()
        } else {
            r.state.short()
        };
        let mut cells = Vec::with_capacity(shown.len() + 1);
        for c in &shown {
            cells.push(match c.name {
                "NODE" => {
                    let mark = if app.ops.marks.contains(&r.id) {
                        "●"
                    } else {
                        ""
                    };
                    let within_site = crate::inventory::name_within_site(&inv.nodes[r.id].name);
                    Cell::from(Span::styled(format!("{mark}{within_site}"), theme.text()))
                }
                "SITE" => Cell::from(Span::styled(
                    inv.nodes[r.id].site().unwrap_or_default().to_string(),
                    theme.dim(),
                )),
                "TENANT" => Cell::from(Span::styled(
                    r.tenant.clone().unwrap_or_else(|| "spare".into()),
                    theme.dim(),
                )),
                "STATE" => Cell::from(Span::styled(state, state_style(theme, r.state))),
                "HLTH" => Cell::from(Span::styled(r.health.as_str(), theme.health(r.health))),
                "SRC" => Cell::from(Span::styled(
                    r.source.map_or("–", |s| s.as_str()),
                    theme.dim(),
                )),
                "AGE" => Cell::from(Span::styled(
                    age(r.age),
                    if faded { theme.stale() } else { theme.dim() },
                )),
                // Average and busiest GPU: a node at 50% may be four GPUs idle and four flat out.
                "UTIL" => Cell::from(Span::styled(
                    match (r.avg_util, r.max_util) {
                        (Some(avg), Some(max)) => format!("{avg:.0}/{max}%"),
                        _ => pct(r.avg_util),
                    },
                    value_style,
                )),
                "TEMP" => Cell::from(Span::styled(opt(r.max_temp, "°"), value_style)),
                "MEMT" => Cell::from(Span::styled(opt(r.max_mem_temp, "°"), value_style)),
                "POWER" => Cell::from(Span::styled(r.power_w.map_or("–".into(), kw), value_style)),
                // Jobs and pods the schedulers place here; "–" until a scheduler answered about this node.
                "JOBS" => Cell::from(Span::styled(
                    app.ops
                        .workload
                        .as_ref()
                        .filter(|w| w.knows(r.id))
                        .map_or("–".into(), |w| w.jobs(r.id).len().to_string()),
                    theme.dim(),
                )),
                _ => Cell::from(Span::styled(r.flags(), theme.health(r.health))),
            });
        }
        // An action's progress or outcome is shown in place of the usual note.
        let note = app
            .progress_note(r.id)
            .or_else(|| r.note.clone())
            .unwrap_or_default();
        cells.push(Cell::from(Span::styled(
            fit(&note, note_width),
            theme.dim(),
        )));
        let row = Row::new(cells);
        if r.id == app.selected {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let mut widths: Vec<Constraint> = shown
        .iter()
        .map(|c| Constraint::Length(width_of(c)))
        .collect();
    widths.push(Constraint::Min(0));
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header))
            .column_spacing(1),
        area,
    );
}

/// The node on screen row `row` of a table drawn into `area`.
pub fn hit(app: &App, area: Rect, row: u16) -> Option<NodeId> {
    let line = usize::from(row.checked_sub(area.y + 1)?);
    let height = body_height(area);
    if line >= height {
        return None;
    }
    let first = scroll_offset(app.selected_position(), height);
    app.order.get(first + line).map(|&i| app.rows[i].id)
}
