//! Node detail: the node's state and reasons, then one row per GPU with gauges and history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::format::{age, bar, clock, opt, sparkline};
use super::state_style;
use crate::fleet::view::Pending;
use crate::telemetry::{GpuErrorKind, GpuSample};
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Reasons listed above the GPU table; the nodes table and `snapshot` carry them all.
const MAX_REASONS: usize = 8;

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let fleet = &app.fleet;
    let Some(spec) = fleet.inventory().nodes.get(app.selected) else {
        return;
    };
    let view = fleet.node_view(app.selected, app.now, Pending::Connecting);
    let status = &fleet.nodes()[app.selected];
    let last_seen = status.sample_at.map_or_else(
        || "never".to_string(),
        |at| {
            format!(
                "{} ago, at {}",
                age(Some(app.now.saturating_duration_since(at))),
                clock(app.wall_time(at))
            )
        },
    );
    let mut info = vec![
        Line::from(vec![
            Span::styled(format!("{} ", spec.name), theme.accent()),
            Span::styled(format!("cabinet {} · ", view.cabinet), theme.dim()),
            Span::styled(
                format!("tenant {} · ", view.tenant.as_deref().unwrap_or("spare")),
                theme.dim(),
            ),
            Span::styled(view.state.as_str(), state_style(theme, view.state)),
            Span::raw(" · "),
            Span::styled(
                view.verdict.health.as_str(),
                theme.health(view.verdict.health),
            ),
            Span::styled(format!(" · last sample {last_seen}"), theme.dim()),
        ]),
        Line::styled(
            format!(
                "source: {} · {} of {} GPUs · {} bad lines",
                status.detail.as_deref().unwrap_or("none yet"),
                crate::fleet::view::gpus_seen(&view.gpus),
                view.expected_gpus,
                status.bad_lines
            ),
            theme.dim(),
        ),
    ];
    if let Some(error) = &view.error {
        info.push(Line::styled(format!("error: {error}"), theme.unreachable()));
    }
    if let Some(o) = &view.operations {
        let style = if o.activity.out_of_service() {
            state_style(theme, view.state)
        } else {
            theme.dim()
        };
        info.push(Line::styled(format!("operations: {}", o.describe()), style));
    }
    for reason in view.verdict.reasons.iter().take(MAX_REASONS) {
        info.push(Line::styled(
            format!("• {reason}"),
            theme.health(view.verdict.health),
        ));
    }
    if view.verdict.reasons.len() > MAX_REASONS {
        info.push(Line::styled(
            format!("• … and {} more", view.verdict.reasons.len() - MAX_REASONS),
            theme.dim(),
        ));
    }
    if let Some(h) = view.hello {
        info.push(Line::styled(
            format!(
                "node: driver {} · CUDA {} · agent {} · kernel {}",
                h.driver.as_deref().unwrap_or("?"),
                h.cuda.as_deref().unwrap_or("?"),
                h.version,
                h.kernel.as_deref().unwrap_or("?")
            ),
            theme.dim(),
        ));
    }
    for g in &view.gpus {
        info.push(Line::styled(identity(g.sample), theme.dim()));
    }
    if let Some(workload) = app.ops.workload.as_ref().filter(|w| w.knows(app.selected)) {
        let jobs = workload.jobs(app.selected);
        let line = if jobs.is_empty() {
            "jobs: none running".to_string()
        } else {
            let listed: Vec<String> = jobs
                .iter()
                .map(|j| {
                    let left = j.left_s.map_or(String::new(), |l| {
                        format!(", {} left", crate::workload::duration(l))
                    });
                    format!("{} [{}{left}]", j.describe(), j.state)
                })
                .collect();
            format!("jobs: {}", listed.join("; "))
        };
        info.push(Line::styled(line, theme.text()));
    }
    for g in &view.gpus {
        if let Some(line) = processes_line(g.sample) {
            info.push(Line::styled(line, theme.text()));
        }
    }
    for port in view
        .sample
        .and_then(|s| s.ib.as_deref())
        .unwrap_or_default()
    {
        let style = if port.is_up() {
            theme.dim()
        } else {
            theme.health(crate::telemetry::health::Health::Warn)
        };
        info.push(Line::styled(ib_line(port), style));
    }
    let info_height = (info.len() as u16 + 1).min(area.height / 2);
    let [top, table_area] =
        Layout::vertical([Constraint::Length(info_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(info).wrap(Wrap { trim: true }), top);

    let wide = area.width >= 140;
    let gauge = if wide { 12 } else { 6 };
    let faded = view.state != crate::fleet::NodeState::Up;
    let value = if faded { theme.stale() } else { theme.text() };
    let mut header = vec!["GPU", "UTIL", "MEM", "TEMP", "MEMT", "POWER", "SM", "FLAGS"];
    if wide {
        header.push("THROTTLE");
    }
    header.push("UTIL HISTORY");
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(gauge as u16 + 5),
        Constraint::Length(gauge as u16 + 5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(if wide { 14 } else { 6 }),
    ];
    if wide {
        widths.push(Constraint::Length(24));
    }
    // The sparkline fills what the fixed columns and their one-cell gaps leave.
    let fixed: u16 = widths
        .iter()
        .map(|c| {
            if let Constraint::Length(n) = c {
                *n + 1
            } else {
                0
            }
        })
        .sum();
    let history_width = usize::from(area.width.saturating_sub(fixed)).max(4);
    widths.push(Constraint::Min(4));
    let rows = view.gpus.iter().map(|g| {
        let s = g.sample;
        let util = s.util_pct.map(|u| f64::from(u) / 100.0);
        let mem = match (s.mem_used_mib, s.mem_total_mib) {
            (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
            _ => None,
        };
        let history = status
            .history
            .get(s.index as usize)
            .map(|h| h.util())
            .unwrap_or_default();
        let mut cells = vec![
            Cell::from(Span::styled(
                format!("{}", s.index),
                theme.health(g.verdict.health),
            )),
            Cell::from(Span::styled(
                format!("{} {:>4}", bar(util, gauge), opt(s.util_pct, "%")),
                value,
            )),
            Cell::from(Span::styled(
                format!(
                    "{} {:>4}",
                    bar(mem, gauge),
                    mem.map_or("–".into(), |m| format!("{:.0}%", m * 100.0))
                ),
                value,
            )),
            Cell::from(Span::styled(opt(s.temp_c, "°C"), value)),
            Cell::from(Span::styled(opt(s.mem_temp_c, "°C"), value)),
            Cell::from(Span::styled(power(s), value)),
            Cell::from(Span::styled(opt(s.sm_clock_mhz, ""), value)),
            Cell::from(Span::styled(flags(s), theme.health(g.verdict.health))),
        ];
        if wide {
            let throttle = s.throttle.as_ref().map_or("–".into(), |t| {
                if t.is_empty() {
                    "none".into()
                } else {
                    t.join(",")
                }
            });
            cells.push(Cell::from(Span::styled(throttle, theme.dim())));
        }
        cells.push(Cell::from(Span::styled(
            sparkline(&history, history_width, 100),
            theme.accent(),
        )));
        Row::new(cells)
    });
    let header = Row::new(
        header
            .into_iter()
            .map(|h| Cell::from(Span::styled(h, theme.header()))),
    );
    let [table_area, history_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(super::history::height(app)),
    ])
    .areas(table_area);
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table_area,
    );
    super::history::render(app, theme, frame, history_area);
}

/// `GPU 0: NVIDIA H100 80GB HBM3 · GPU-… · SN 1652… · PCI 00000000:18:00.0 · VBIOS 96.00… · recovery action
/// none` (the driver's recovery action where it reports one).
fn identity(s: &GpuSample) -> String {
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    format!(
        "GPU {}: {} · {} · SN {} · PCI {} · VBIOS {}",
        s.index,
        or(&s.name),
        or(&s.uuid),
        or(&s.serial),
        or(&s.pci_bus_id),
        or(&s.vbios)
    ) + &s
        .nvlink
        .as_ref()
        .filter(|l| l.states_known())
        .map_or(String::new(), |l| {
            format!(" · NVLink {}/{} active", l.active(), l.total)
        })
        + &crate::telemetry::recovery::of(s).map_or(String::new(), |a| {
            format!(" · recovery action {}", a.name())
        })
}

/// Processes listed per GPU in the node detail; the rest are counted.
const MAX_PROCESSES_SHOWN: usize = 3;

/// `GPU 0 runs python3 518 alice 966 MiB job 1234; … (+2 more)`; `None` when the GPU runs nothing or
/// cannot say.
fn processes_line(s: &GpuSample) -> Option<String> {
    let list = s.processes.as_deref().filter(|l| !l.is_empty())?;
    let shown: Vec<String> = list
        .iter()
        .take(MAX_PROCESSES_SHOWN)
        .map(crate::telemetry::process::GpuProcess::describe)
        .collect();
    let more = list.len().saturating_sub(MAX_PROCESSES_SHOWN);
    Some(format!(
        "GPU {} runs {}{}",
        s.index,
        shown.join("; "),
        if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        }
    ))
}

/// `IB mlx5_0 port 1: 4: ACTIVE, 5: LinkUp · 400 Gb/s · InfiniBand · MT4129 · errors: symbol_error 12`.
fn ib_line(p: &crate::telemetry::fabric::IbPort) -> String {
    let errors: Vec<String> = p
        .counters
        .all()
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k} {}", v.filter(|n| *n > 0)?)))
        .collect();
    format!(
        "IB {}: {}, {} · {} Gb/s · {} · {} · errors: {}",
        p.name(),
        p.state.as_deref().unwrap_or("?"),
        p.phys_state.as_deref().unwrap_or("?"),
        p.rate_gbps
            .map_or("?".into(), crate::telemetry::fabric::gbps),
        p.link_layer.as_deref().unwrap_or("?"),
        p.hca_type.as_deref().unwrap_or("?"),
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(" ")
        }
    )
}

fn power(s: &GpuSample) -> String {
    match (s.power_w, s.power_limit_w) {
        (Some(p), Some(l)) => format!("{p:.0}/{l:.0}W"),
        (Some(p), None) => format!("{p:.0}W"),
        _ => "–".into(),
    }
}

/// The driver's recovery action as a flag: `GRST` reset the GPU, `RBOOT` reboot the node, `DRST` drain and
/// reset, `P2P` drain peer-to-peer traffic, `RA7` a value this build does not know; none has no flag.
fn recovery_flag(action: crate::telemetry::RecoveryAction) -> Option<String> {
    use crate::telemetry::RecoveryAction as A;
    Some(match action {
        A::None => return None,
        A::GpuReset => "GRST".into(),
        A::NodeReboot => "RBOOT".into(),
        A::DrainAndReset => "DRST".into(),
        A::DrainP2p => "P2P".into(),
        A::Other(n) => format!("RA{n}"),
    })
}

/// Recovery-action, query-error, ECC, row-remap and XID flags of one GPU: `RBOOT`, `LOST`, `RESET`, `ERR`,
/// `E2 Rp X79`.
fn flags(s: &GpuSample) -> String {
    let mut parts = Vec::new();
    // What the driver asks for comes first: it says what to do.
    if let Some(flag) = crate::telemetry::recovery::of(s).and_then(recovery_flag) {
        parts.push(flag);
    }
    for e in &s.errors {
        let flag = match e.kind {
            GpuErrorKind::Lost => "LOST",
            GpuErrorKind::ResetRequired => "RESET",
            GpuErrorKind::Unknown | GpuErrorKind::Failed => "ERR",
            GpuErrorKind::Implausible => "BAD",
        };
        if !parts.iter().any(|p: &String| p == flag) {
            parts.push(flag.to_string());
        }
    }
    if let Some(n) = s.ecc_uncorrected.filter(|&n| n > 0) {
        parts.push(format!("E{n}"));
    }
    if s.remapped_rows_failed == Some(true) {
        parts.push("Rf".into());
    } else if s.remapped_rows_pending == Some(true) {
        parts.push("Rp".into());
    }
    for x in s.xid.iter().flatten() {
        parts.push(format!("X{x}"));
    }
    if parts.is_empty() {
        "ok".into()
    } else {
        parts.join(" ")
    }
}
