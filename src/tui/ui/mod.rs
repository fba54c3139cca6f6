//! Drawing: a pure function of `App` and `Theme` into a ratatui `Frame`. Nothing here writes state or reads the clock.

mod detail;
mod dialogs;
pub(crate) mod drift;
mod events;
pub(crate) mod format;
mod history;
mod nodes;
pub(crate) mod overview;
mod tenants;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Mode, View};
use super::keymap::Action;
use super::theme::Theme;
use crate::inventory::NodeId;
use format::{kw, pct};

/// The screen's three bands: header (totals, a line per site under `--context all`, and tabs), body (the
/// view), footer (hints or input).
pub(crate) fn areas(app: &App, area: Rect) -> [Rect; 3] {
    let sites = u16::try_from(app.totals.sites.len()).unwrap_or(u16::MAX);
    Layout::vertical([
        Constraint::Length(sites.saturating_add(2)),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame) {
    let [header, body, footer] = areas(app, frame.area());
    render_header(app, theme, frame, header);
    match app.view {
        View::Overview => overview::render(app, theme, frame, body),
        View::Nodes => nodes::render(app, theme, frame, body),
        View::Detail => detail::render(app, theme, frame, body),
        View::Tenants => tenants::render(app, theme, frame, body),
        View::Events => events::render(app, theme, frame, body),
        View::Drift => drift::render(app, theme, frame, body),
    }
    render_footer(app, theme, frame, footer);
    if !app.ops.failures.is_empty() {
        dialogs::render_failures(app, theme, frame, body);
    }
    match &app.mode {
        Mode::Help => render_help(app, theme, frame, body),
        Mode::Confirm(c) => dialogs::render_confirm(c, theme, frame, body),
        _ => {}
    }
}

fn render_header(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let t = &app.totals;
    let s = &t.summary;
    let sep = || Span::styled(" │ ", theme.border());
    let mut totals = vec![
        Span::styled(" fleetop ", theme.accent()),
        Span::styled(app.fleet.inventory().source.clone(), theme.dim()),
        sep(),
    ];
    if let Some(replay) = &app.replay {
        totals.extend([
            Span::styled(
                replay.clone(),
                theme.accent().add_modifier(Modifier::REVERSED),
            ),
            sep(),
        ]);
    }
    totals.extend([
        Span::styled(
            format!("{} up", s.nodes_up),
            theme.health(crate::telemetry::health::Health::Ok),
        ),
        Span::raw(" · "),
        Span::styled(
            format!("{} stale", t.stale),
            if t.stale > 0 {
                theme.stale()
            } else {
                theme.dim()
            },
        ),
        Span::raw(" · "),
        Span::styled(
            format!("{} no data", t.no_data),
            if t.no_data > 0 {
                theme.unreachable()
            } else {
                theme.dim()
            },
        ),
    ]);
    if t.connecting > 0 {
        totals.push(Span::styled(
            format!(" · {} connecting", t.connecting),
            theme.dim(),
        ));
    }
    // Trouble counts come before everything a narrow terminal may cut off.
    totals.extend([
        sep(),
        Span::styled(
            format!("{} crit", s.crit),
            if s.crit > 0 {
                theme.health(crate::telemetry::health::Health::Crit)
            } else {
                theme.dim()
            },
        ),
        Span::raw(" · "),
        Span::styled(
            format!("{} warn", s.warn),
            if s.warn > 0 {
                theme.health(crate::telemetry::health::Health::Warn)
            } else {
                theme.dim()
            },
        ),
        sep(),
        Span::raw(format!("GPUs {}/{}", s.gpus_seen, s.gpus_expected)),
        sep(),
        Span::raw(format!("util {}", pct(t.avg_util))),
        sep(),
        // Without cabinet budgets there is nothing to compare against: no "of 0 kW".
        Span::raw(if t.budget_kw > 0.0 {
            format!("{} of {}", kw(s.power_watts), kw(t.budget_kw * 1000.0))
        } else {
            kw(s.power_watts)
        }),
    ]);
    let mut tabs = vec![Span::raw(" ")];
    for (i, view) in View::ALL.iter().enumerate() {
        let label = format!("{} {}", i + 1, view.title());
        let style = if *view == app.view {
            theme.accent().add_modifier(Modifier::REVERSED)
        } else {
            theme.dim()
        };
        tabs.push(Span::styled(label, style));
        tabs.push(Span::raw("  "));
    }
    tabs.push(Span::styled(
        format!("colour: {}", app.metric.name()),
        theme.dim(),
    ));
    if !app.filter.text.is_empty() {
        tabs.push(Span::styled(
            format!("  filter: {} ({} nodes)", app.filter.text, app.order.len()),
            theme.accent(),
        ));
    }
    if !app.ops.marks.is_empty() {
        tabs.push(Span::styled(
            format!("  ● {} marked", app.ops.marks.len()),
            theme.accent(),
        ));
    }
    if crate::actions::read_only(app.ops.read_only, app.fleet.inventory()) {
        tabs.push(Span::styled("  read-only", theme.dim()));
    }
    let mut lines = vec![Line::from(totals)];
    lines.extend(
        app.totals
            .sites
            .iter()
            .map(|(site, s)| site_line(site, s, theme)),
    );
    lines.push(Line::from(tabs));
    frame.render_widget(Paragraph::new(lines), area);
}

/// One site's totals under `--context all`: `  east  1024 up · 0 crit · 2 warn · GPUs 8192/8192 · 512.0 kW`.
fn site_line<'a>(site: &str, s: &crate::fleet::view::Summary, theme: &Theme) -> Line<'a> {
    use crate::telemetry::health::Health;
    let counted = |n: usize, health: Health| {
        if n > 0 {
            theme.health(health)
        } else {
            theme.dim()
        }
    };
    Line::from(vec![
        Span::styled(format!("   {site:<8} "), theme.accent()),
        Span::styled(format!("{} up", s.nodes_up), theme.health(Health::Ok)),
        Span::raw(format!(" of {} · ", s.nodes)),
        Span::styled(format!("{} crit", s.crit), counted(s.crit, Health::Crit)),
        Span::raw(" · "),
        Span::styled(format!("{} warn", s.warn), counted(s.warn, Health::Warn)),
        Span::raw(format!(
            " · GPUs {}/{} · {}",
            s.gpus_seen,
            s.gpus_expected,
            kw(s.power_watts)
        )),
    ])
}

fn render_footer(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &app.mode {
        Mode::Filter(text) => Line::from(vec![
            Span::styled("/", theme.accent()),
            Span::raw(text.clone()),
            Span::styled("▏", theme.accent()),
        ]),
        Mode::Command(text) => Line::from(vec![
            Span::styled(":", theme.accent()),
            Span::raw(text.clone()),
            Span::styled("▏", theme.accent()),
        ]),
        Mode::AckReason(text) => prompt(
            app,
            theme,
            format!(
                "acknowledge the XIDs of {} node(s), reason: ",
                app.targets().len()
            ),
            text,
            "acknowledge",
        ),
        Mode::RepairReason(text) => prompt(
            app,
            theme,
            format!(
                "reason for repair (drain, wait for jobs, reboot, check, undrain) of {} node(s): ",
                app.targets().len()
            ),
            text,
            "continue",
        ),
        Mode::Reason { kind, text } => prompt(
            app,
            theme,
            format!(
                "reason for {} of {} node(s): ",
                kind.as_str(),
                app.targets().len()
            ),
            text,
            "continue",
        ),
        _ => match &app.status {
            Some(msg) => Line::from(Span::styled(
                msg.clone(),
                theme.health(crate::telemetry::health::Health::Warn),
            )),
            None => hints(app, theme),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Footer hints, generated from the live keymap.
/// A reason prompt: what is asked, the text so far with a cursor, the keys, and the last complaint.
fn prompt(app: &App, theme: &Theme, asked: String, text: &str, enter: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(asked, theme.accent()),
        Span::raw(text.to_string()),
        Span::styled("▏", theme.accent()),
        Span::styled(format!("  (enter: {enter} · esc: cancel)"), theme.dim()),
        Span::styled(
            app.status
                .clone()
                .map(|s| format!("  {s}"))
                .unwrap_or_default(),
            theme.health(crate::telemetry::health::Health::Warn),
        ),
    ])
}

fn hints(app: &App, theme: &Theme) -> Line<'static> {
    let wanted = [
        (Action::Help, "help"),
        (Action::Quit, "quit"),
        (Action::Open, "detail"),
        (Action::Back, "back"),
        (Action::Filter, "filter"),
        (Action::Command, "command"),
        (Action::SortNext, "sort"),
        (Action::CycleMetric, "colour"),
    ];
    let mut spans = Vec::new();
    for (action, label) in wanted {
        if let Some(key) = app.keymap.hint(action) {
            spans.push(Span::styled(
                format!(" {key} "),
                theme.accent().add_modifier(Modifier::REVERSED),
            ));
            spans.push(Span::styled(format!(" {label} "), theme.dim()));
        }
    }
    Line::from(spans)
}

fn render_help(app: &App, theme: &Theme, frame: &mut Frame, body: Rect) {
    let mut lines: Vec<Line> = app
        .keymap
        .help()
        .into_iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:>14}  "), theme.accent()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "commands: :nodes :overview :tenants :events :node NAME :filter EXPR :sort COLUMN [desc] :metric NAME :ctx NAME|all :q",
        theme.dim(),
    ));
    lines.push(Line::styled("any key closes this help", theme.dim()));
    let width = body.width.min(96);
    let height = (lines.len() as u16 + 2).min(body.height);
    let area = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y,
        width,
        height,
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" keys ")
                .border_style(theme.border())
                .title_style(theme.accent()),
        ),
        area,
    );
}

/// What a mouse click landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Node(NodeId),
    Tenant(usize),
}

/// The node or tenant at screen position (`column`, `row`), using the same geometry as drawing.
pub fn hit(app: &App, column: u16, row: u16) -> Option<Hit> {
    let screen = Rect {
        x: 0,
        y: 0,
        width: app.viewport.0,
        height: app.viewport.1,
    };
    let [_, body, _] = areas(app, screen);
    if row < body.y || row >= body.y + body.height {
        return None;
    }
    match app.view {
        View::Overview => overview::hit(app, body, column, row).map(Hit::Node),
        View::Nodes => nodes::hit(app, body, row).map(Hit::Node),
        View::Tenants => tenants::hit(app, body, row).map(Hit::Tenant),
        View::Detail | View::Events | View::Drift => None,
    }
}

/// Keeps `selected` visible in a window of `height` rows; returns the first row to show.
pub(crate) fn scroll_offset(selected: Option<usize>, height: usize) -> usize {
    match selected {
        Some(s) if height > 0 && s >= height => s + 1 - height,
        _ => 0,
    }
}

/// The style for a node's state: failures stand out, stale data is dimmed.
pub(crate) fn state_style(theme: &Theme, state: crate::fleet::NodeState) -> Style {
    use crate::fleet::NodeState;
    match state {
        NodeState::Up => theme.text(),
        NodeState::Stale => theme.stale(),
        NodeState::Connecting => theme.dim(),
        NodeState::Draining
        | NodeState::Drained
        | NodeState::Rebooting
        | NodeState::Resetting
        | NodeState::InRepair => theme.health(crate::telemetry::health::Health::Warn),
        _ => theme.unreachable(),
    }
}
