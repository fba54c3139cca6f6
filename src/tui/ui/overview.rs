//! The fleet overview: one cell per node, grouped by cabinet, coloured by the chosen metric.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{fit, pct};
use super::scroll_offset;
use crate::fleet::{FleetState, NodeState};
use crate::inventory::NodeId;
use crate::telemetry::health::Health;
use crate::tui::app::rows::NodeRow;
use crate::tui::app::{App, Metric};
use crate::tui::theme::Theme;

/// Width of the cabinet label at the start of each line (`c001 `).
fn label_width(fleet: &FleetState) -> u16 {
    fleet
        .inventory()
        .cabinets
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4) as u16
        + 1
}

/// Cells per cabinet: its largest node count plus a gap.
fn cabinet_width(fleet: &FleetState) -> u16 {
    fleet
        .inventory()
        .cabinets
        .iter()
        .map(|c| c.nodes.len())
        .max()
        .unwrap_or(1) as u16
        + 1
}

/// Cabinets on one line at `width` columns.
pub(crate) fn cabinets_per_line(fleet: &FleetState, width: u16) -> usize {
    (usize::from(width.saturating_sub(label_width(fleet))) / usize::from(cabinet_width(fleet)))
        .max(1)
}

/// The node in the same slot of the cabinet `delta` lines above or below.
pub(crate) fn vertical_neighbour(
    fleet: &FleetState,
    width: u16,
    node: NodeId,
    delta: isize,
) -> NodeId {
    let inv = fleet.inventory();
    let cabinet = inv.nodes[node].cabinet;
    let slot = inv.cabinets[cabinet]
        .nodes
        .iter()
        .position(|&n| n == node)
        .unwrap_or(0);
    let step = cabinets_per_line(fleet, width) as isize * delta;
    let target = cabinet as isize + step;
    if target < 0 || target >= inv.cabinets.len() as isize {
        return node;
    }
    let nodes = &inv.cabinets[target as usize].nodes;
    nodes
        .get(slot.min(nodes.len().saturating_sub(1)))
        .copied()
        .unwrap_or(node)
}

/// A node's value of `metric` as 0..=1, if it has data.
fn level(row: &NodeRow, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Util => row.avg_util.map(|u| u / 100.0),
        Metric::Temp => row.max_temp.map(|t| (f64::from(t) - 25.0) / 65.0),
        Metric::MemTemp => row.max_mem_temp.map(|t| (f64::from(t) - 25.0) / 70.0),
        Metric::Power => row
            .power_w
            .map(|w| w / (f64::from(row.gpus_expected.max(1)) * 700.0)),
        Metric::Health => Some(match row.health {
            Health::Ok => 0.0,
            Health::Warn => 0.5,
            Health::Crit => 1.0,
        }),
    }
}

/// The glyph and style of one node's cell. Glyphs carry meaning without colour (NO_COLOR).
fn cell(app: &App, theme: &Theme, row: &NodeRow, dimmed: bool) -> (char, Style) {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if dimmed {
        return ('·', theme.dim());
    }
    match row.state {
        NodeState::Connecting => return ('·', theme.dim()),
        NodeState::Stale => return ('~', theme.stale()),
        NodeState::Rebooting | NodeState::Resetting => return ('↻', theme.health(Health::Warn)),
        // A repair holds its node drained.
        NodeState::Drained | NodeState::InRepair => return ('D', theme.health(Health::Warn)),
        NodeState::Draining => return ('d', theme.health(Health::Warn)),
        s if s.is_failure() => return ('×', theme.unreachable()),
        _ => {}
    }
    if app.metric == Metric::Health {
        let glyph = match row.health {
            Health::Ok => '■',
            Health::Warn => '▲',
            Health::Crit => '✖',
        };
        return (glyph, theme.health(row.health));
    }
    match level(row, app.metric) {
        Some(f) => {
            let glyph = LEVELS[(f.clamp(0.0, 1.0) * 7.0).round() as usize];
            (glyph, Style::new().fg(theme.ramp(f)))
        }
        None => ('?', theme.dim()),
    }
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let fleet = &app.fleet;
    let inv = fleet.inventory();
    let per_line = cabinets_per_line(fleet, area.width);
    let lines_total = inv.cabinets.len().div_ceil(per_line);
    let visible = usize::from(area.height.saturating_sub(2));
    let selected_line = inv.nodes.get(app.selected).map(|n| n.cabinet / per_line);
    let first = scroll_offset(selected_line, visible);
    let filtering = !app.filter.text.is_empty();
    let passes: Vec<bool> = if filtering {
        let mut p = vec![false; app.rows.len()];
        for &i in &app.order {
            p[i] = true;
        }
        p
    } else {
        Vec::new()
    };
    let label_w = usize::from(label_width(fleet));
    let cab_w = usize::from(cabinet_width(fleet));

    let mut lines = Vec::with_capacity(visible + 2);
    let legend = match app.metric {
        Metric::Health => "■ ok  ▲ warn  ✖ crit".to_string(),
        m => format!("{} ▁ low … █ high", m.name()),
    };
    // Paging first: on a narrow terminal the legend is what gets cut.
    let paging = if lines_total > visible {
        format!(
            "lines {}-{} of {lines_total} · ",
            first + 1,
            (first + visible).min(lines_total)
        )
    } else {
        String::new()
    };
    let legend_line = format!(
        "{paging}{} cabinets · {legend} · × no data · ~ stale · D drained · ↻ rebooting · · waiting",
        inv.cabinets.len()
    );
    lines.push(Line::styled(
        fit(&legend_line, usize::from(area.width)),
        theme.dim(),
    ));
    for line_no in first..(first + visible).min(lines_total) {
        let cabinets =
            &inv.cabinets[line_no * per_line..((line_no + 1) * per_line).min(inv.cabinets.len())];
        let mut spans = Vec::with_capacity(cabinets.len() * cab_w + 1);
        spans.push(Span::styled(
            format!("{:<label_w$}", cabinets[0].name),
            theme.dim(),
        ));
        for cab in cabinets {
            for &node in &cab.nodes {
                let row = &app.rows[node];
                let (glyph, mut style) = cell(app, theme, row, filtering && !passes[node]);
                if node == app.selected {
                    style = style.patch(theme.selected());
                }
                spans.push(Span::styled(glyph.to_string(), style));
            }
            spans.push(Span::raw(" ".repeat(cab_w - cab.nodes.len())));
        }
        lines.push(Line::from(spans));
    }
    while lines.len() < visible + 1 {
        lines.push(Line::raw(""));
    }
    lines.push(selected_line_summary(app, theme, area.width));
    frame.render_widget(Paragraph::new(lines), area);
}

/// One line about the selected node, at the bottom of the overview.
fn selected_line_summary(app: &App, theme: &Theme, width: u16) -> Line<'static> {
    let Some(row) = app.rows.get(app.selected) else {
        return Line::raw("");
    };
    let inv = app.fleet.inventory();
    let node = &inv.nodes[row.id];
    let text = format!(
        "▶ {} · {} · {} · {} · util {} · {} · {}",
        node.name,
        inv.cabinets[node.cabinet].name,
        row.tenant.as_deref().unwrap_or("spare"),
        row.state.as_str(),
        pct(row.avg_util),
        row.max_temp.map_or("–".into(), |t| format!("{t}°C")),
        row.note.as_deref().unwrap_or(row.health.as_str()),
    );
    Line::styled(fit(&text, usize::from(width)), theme.health(row.health))
}

/// The node under (`column`, `row`) in an overview drawn into `area`.
pub fn hit(app: &App, area: Rect, column: u16, row: u16) -> Option<NodeId> {
    let fleet = &app.fleet;
    let inv = fleet.inventory();
    let per_line = cabinets_per_line(fleet, area.width);
    let visible = usize::from(area.height.saturating_sub(2));
    let selected_line = inv.nodes.get(app.selected).map(|n| n.cabinet / per_line);
    let first = scroll_offset(selected_line, visible);
    let line = usize::from(row.checked_sub(area.y + 1)?);
    if line >= visible {
        return None;
    }
    let x = usize::from(column.checked_sub(area.x + label_width(fleet))?);
    let cab_w = usize::from(cabinet_width(fleet));
    let (cab_in_line, slot) = (x / cab_w, x % cab_w);
    if cab_in_line >= per_line {
        return None;
    }
    let cabinet = inv.cabinets.get((first + line) * per_line + cab_in_line)?;
    cabinet.nodes.get(slot).copied()
}
