//! The drift view: for each aspect on which nodes differ (agent, driver, GPU model, VBIOS, GPU count), the
//! reference it is judged against and every value with its nodes; drifting values in the warn colour.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::fit;
use crate::telemetry::health::Health;
use crate::tui::app::App;
use crate::tui::theme::Theme;

/// Most node names listed for one value before "and N more".
const NAMES_SHOWN: usize = 40;

/// How a line is drawn.
enum Kind {
    Aspect,
    Reference,
    Drift,
    Note,
}

/// The view's lines, without styles: shared by drawing and scrolling.
fn lines(app: &App) -> Vec<(Kind, String)> {
    let inv = app.fleet.inventory();
    let mut out = Vec::new();
    for aspect in app.fleet.drift() {
        let reference = aspect
            .reference
            .as_ref()
            .map_or(String::new(), |r| format!("  ({} {})", r.from, r.value));
        let site = aspect
            .site
            .as_deref()
            .map_or(String::new(), |s| format!("{s}: "));
        out.push((
            Kind::Aspect,
            format!("{site}{}{reference}", aspect.aspect.label()),
        ));
        for v in &aspect.values {
            let n = v.nodes.len();
            let count = format!("{n} node{}", if n == 1 { "" } else { "s" });
            let text = if v.is_reference {
                format!("    {:<32} {count:>11}", v.value)
            } else {
                let names: Vec<&str> = v
                    .nodes
                    .iter()
                    .take(NAMES_SHOWN)
                    .map(|&id| inv.nodes[id].name.as_str())
                    .collect();
                let more = n.saturating_sub(NAMES_SHOWN);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("    {:<32} {count:>11}  {}{more}", v.value, names.join(" "))
            };
            let kind = match (&v.drift, v.is_reference) {
                (Some(_), _) => Kind::Drift,
                (None, true) => Kind::Reference,
                (None, false) => Kind::Note,
            };
            out.push((kind, text));
        }
        out.push((Kind::Note, String::new()));
    }
    out
}

/// Lines the view has, for scrolling.
pub(crate) fn line_count(app: &App) -> usize {
    lines(app).len()
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let all = lines(app);
    if all.is_empty() {
        let msg = "no drift: agent, driver, GPU model, VBIOS and GPU count agree on every node";
        frame.render_widget(Paragraph::new(Line::styled(msg, theme.dim())), area);
        return;
    }
    let width = usize::from(area.width);
    let shown: Vec<Line> = all
        .iter()
        .skip(app.drift_scroll.min(all.len().saturating_sub(1)))
        .take(usize::from(area.height))
        .map(|(kind, text)| {
            let style = match kind {
                Kind::Aspect => theme.header(),
                Kind::Reference => theme.text(),
                Kind::Drift => theme.health(Health::Warn),
                Kind::Note => theme.dim(),
            };
            Line::from(Span::styled(fit(text, width), style))
        })
        .collect();
    frame.render_widget(Paragraph::new(shown), area);
}
