//! Keyboard and mouse input: normal-mode actions, the filter and command lines, navigation.

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};

use super::modes::{Metric, Mode, NodeFilter, SortKey, View};
use super::state::App;
use crate::actions::ActionKind;
use crate::fleet::filter::Filter;
use crate::tui::keymap::Action;

impl App {
    pub fn on_key(&mut self, key: KeyEvent) {
        self.dirty = true;
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => {
                self.status = None;
                // Failures stay on screen until acknowledged.
                if !self.ops.failures.is_empty()
                    && matches!(key.code, KeyCode::Enter | KeyCode::Esc)
                {
                    self.ops.failures.clear();
                    return;
                }
                if let Some(action) = self.keymap.action(&key) {
                    self.act(action);
                }
            }
            Mode::Reason { kind, text } => match edit(text, &key) {
                Edit::Typing(t) => self.mode = Mode::Reason { kind, text: t },
                Edit::Done(t) if kind == ActionKind::Drain && t.trim().is_empty() => {
                    self.status = Some("a drain needs a reason".into());
                    self.mode = Mode::Reason { kind, text: t };
                }
                Edit::Done(t) => self.confirm(kind, t),
                Edit::Cancelled => {}
            },
            Mode::RepairReason(text) => match edit(text, &key) {
                Edit::Typing(t) => self.mode = Mode::RepairReason(t),
                Edit::Done(t) if t.trim().is_empty() => {
                    self.status = Some("a repair needs a reason".into());
                    self.mode = Mode::RepairReason(t);
                }
                Edit::Done(t) => self.confirm_repair(t),
                Edit::Cancelled => {}
            },
            Mode::AckReason(text) => match edit(text, &key) {
                Edit::Typing(t) => self.mode = Mode::AckReason(t),
                Edit::Done(t) if t.trim().is_empty() => {
                    self.status = Some("an acknowledgement needs a reason".into());
                    self.mode = Mode::AckReason(t);
                }
                Edit::Done(t) => self.acknowledge_xids(t.trim()),
                Edit::Cancelled => {}
            },
            Mode::Confirm(mut c) => match key.code {
                KeyCode::Tab | KeyCode::Left | KeyCode::Right => {
                    c.on_confirm = !c.on_confirm;
                    self.mode = Mode::Confirm(c);
                }
                KeyCode::Char(d) if d.is_ascii_digit() => {
                    c.typed.push(d);
                    self.mode = Mode::Confirm(c);
                }
                KeyCode::Backspace => {
                    c.typed.pop();
                    self.mode = Mode::Confirm(c);
                }
                KeyCode::Enter if c.on_confirm && c.ready() => self.submit(c),
                KeyCode::Enter if c.on_confirm => {
                    self.status = Some(if c.refusals.is_empty() {
                        format!("type {} to confirm", c.request.nodes.len())
                    } else {
                        "refused: see the reasons in the dialog".into()
                    });
                    self.mode = Mode::Confirm(c);
                }
                KeyCode::Enter | KeyCode::Esc => {}
                _ => self.mode = Mode::Confirm(c),
            },
            Mode::Help => {
                // Any key closes help; quitting from help takes the quit key.
                if self.keymap.action(&key) == Some(Action::Quit) {
                    self.quit = true;
                }
            }
            Mode::Filter(text) => match edit(text, &key) {
                Edit::Typing(t) => self.mode = Mode::Filter(t),
                Edit::Done(t) => self.set_filter(&t),
                Edit::Cancelled => {}
            },
            Mode::Command(text) => match edit(text, &key) {
                Edit::Typing(t) => self.mode = Mode::Command(t),
                Edit::Done(t) => self.command(&t),
                Edit::Cancelled => {}
            },
        }
    }

    pub fn act(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.mode = Mode::Help,
            Action::ViewOverview => self.show(View::Overview),
            Action::ViewNodes => self.show(View::Nodes),
            Action::ViewDetail => self.show(View::Detail),
            Action::ViewTenants => self.show(View::Tenants),
            Action::ViewEvents => self.show(View::Events),
            Action::ViewDrift => self.show(View::Drift),
            Action::Up => self.step(-1, true),
            Action::Down => self.step(1, true),
            Action::Left => self.step(-1, false),
            Action::Right => self.step(1, false),
            Action::PageUp => self.move_rows(-(self.page() as isize)),
            Action::PageDown => self.move_rows(self.page() as isize),
            Action::Top => self.move_rows(isize::MIN / 2),
            Action::Bottom => self.move_rows(isize::MAX / 2),
            Action::Open => self.open(),
            Action::Back => self.back(),
            Action::Filter => self.mode = Mode::Filter(self.filter.text.clone()),
            Action::Command => self.mode = Mode::Command(String::new()),
            Action::SortNext => {
                let i = SortKey::ALL
                    .iter()
                    .position(|k| *k == self.sort)
                    .unwrap_or(0);
                self.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
                self.reorder();
            }
            Action::SortReverse => {
                self.sort_descending = !self.sort_descending;
                self.reorder();
            }
            Action::CycleMetric => {
                let i = Metric::ALL
                    .iter()
                    .position(|m| *m == self.metric)
                    .unwrap_or(0);
                self.metric = Metric::ALL[(i + 1) % Metric::ALL.len()];
            }
            Action::Mark => self.toggle_mark(),
            Action::MarkFiltered => self.mark_filtered(),
            Action::Drain => self.begin(ActionKind::Drain),
            Action::AckXids => self.mode = Mode::AckReason(String::new()),
            Action::Undrain => self.begin(ActionKind::Undrain),
            Action::Reboot => self.begin(ActionKind::Reboot),
            Action::Reset => self.begin(ActionKind::Reset),
            Action::Repair => self.mode = Mode::RepairReason(String::new()),
            Action::Shell => self.shell(),
        }
    }

    fn show(&mut self, view: View) {
        if view != self.view {
            self.previous_view = self.view;
            self.view = view;
        }
    }

    /// Rows a page moves: the visible table height.
    fn page(&self) -> usize {
        usize::from(self.viewport.1.saturating_sub(8)).max(1)
    }

    /// Vertical moves go row by row, except in the overview where they jump a cabinet row.
    fn step(&mut self, delta: isize, vertical: bool) {
        match self.view {
            View::Overview if vertical => {
                self.selected = crate::tui::ui::overview::vertical_neighbour(
                    &self.fleet,
                    self.viewport.0,
                    self.selected,
                    delta,
                );
            }
            View::Overview => self.move_in_inventory(delta),
            View::Tenants if vertical => {
                let last = self.tenants.len().saturating_sub(1) as isize;
                self.tenant_cursor = (self.tenant_cursor as isize + delta).clamp(0, last) as usize;
            }
            View::Events if vertical => {
                let last = self.journal.len().saturating_sub(1) as isize;
                self.events_scroll =
                    (self.events_scroll as isize + delta).clamp(0, last.max(0)) as usize;
            }
            View::Drift if vertical => self.scroll_drift(delta),
            View::Nodes | View::Detail if vertical => self.move_rows(delta),
            _ => {}
        }
    }

    fn scroll_drift(&mut self, delta: isize) {
        let last = crate::tui::ui::drift::line_count(self).saturating_sub(1) as isize;
        self.drift_scroll = (self.drift_scroll as isize)
            .saturating_add(delta)
            .clamp(0, last.max(0)) as usize;
    }

    fn move_in_inventory(&mut self, delta: isize) {
        let last = self.fleet.nodes().len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last) as usize;
    }

    /// Moves the selection within the filtered, sorted rows (or the tenants / events lists).
    fn move_rows(&mut self, delta: isize) {
        match self.view {
            View::Tenants => {
                let last = self.tenants.len().saturating_sub(1) as isize;
                self.tenant_cursor = (self.tenant_cursor as isize)
                    .saturating_add(delta)
                    .clamp(0, last) as usize;
            }
            View::Events => {
                let last = self.journal.len().saturating_sub(1) as isize;
                self.events_scroll = (self.events_scroll as isize)
                    .saturating_add(delta)
                    .clamp(0, last.max(0)) as usize;
            }
            View::Drift => self.scroll_drift(delta),
            _ => {
                if self.order.is_empty() {
                    return;
                }
                let last = self.order.len() as isize - 1;
                let here = self.selected_position().map_or(0, |p| p as isize);
                let to = here.saturating_add(delta).clamp(0, last) as usize;
                self.selected = self.rows[self.order[to]].id;
            }
        }
    }

    fn open(&mut self) {
        match self.view {
            View::Overview | View::Nodes => self.show(View::Detail),
            View::Tenants => {
                if let Some(t) = self.tenants.get(self.tenant_cursor) {
                    let expr = format!("tenant={}", t.name);
                    self.set_filter(&expr);
                    self.show(View::Nodes);
                }
            }
            View::Detail | View::Events | View::Drift => {}
        }
    }

    fn back(&mut self) {
        if !self.ops.marks.is_empty() {
            self.ops.marks.clear();
        } else if self.view == View::Detail {
            self.view = self.previous_view;
        } else if !self.filter.text.is_empty() {
            self.set_filter("");
        }
    }

    /// Applies a filter expression; a bad one leaves the old filter and says why.
    pub fn set_filter(&mut self, text: &str) {
        let (terms, words): (Vec<&str>, Vec<&str>) =
            text.split_whitespace().partition(|w| w.contains('='));
        match Filter::parse(&terms.join(" ")) {
            Ok(filter) => {
                self.filter = NodeFilter {
                    text: text.trim().to_string(),
                    terms: filter,
                    words: words.into_iter().map(String::from).collect(),
                };
                self.reorder();
                if self.selected_position().is_none() {
                    if let Some(&first) = self.order.first() {
                        self.selected = self.rows[first].id;
                    }
                }
            }
            Err(e) => self.status = Some(format!("filter: {e}")),
        }
    }

    /// Runs a `:` command.
    pub fn command(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let (Some(cmd), rest) = (words.next(), words.collect::<Vec<_>>()) else {
            return;
        };
        match (cmd, rest.as_slice()) {
            ("q" | "quit", _) => self.quit = true,
            ("help", _) => self.mode = Mode::Help,
            ("overview" | "1", _) => self.show(View::Overview),
            ("nodes" | "2", _) => self.show(View::Nodes),
            ("detail" | "3", _) => self.show(View::Detail),
            ("tenants" | "4", _) => self.show(View::Tenants),
            ("events" | "5", _) => self.show(View::Events),
            ("drift" | "6", _) => self.show(View::Drift),
            ("filter", terms) => self.set_filter(&terms.join(" ")),
            ("sort", [column, order @ ..]) => {
                match SortKey::ALL.iter().find(|k| k.name() == *column) {
                    Some(k) => {
                        self.sort = *k;
                        self.sort_descending = order.first() == Some(&"desc");
                        self.reorder();
                        self.show(View::Nodes);
                    }
                    None => self.status = Some(format!("sort: unknown column {column:?}")),
                }
            }
            ("metric", [name]) => match Metric::ALL.iter().find(|m| m.name() == *name) {
                Some(m) => self.metric = *m,
                None => self.status = Some(format!("metric: unknown metric {name:?}")),
            },
            ("ctx" | "context", [name]) => {
                // An action or repair in flight reports to this view; switching would lose its outcome.
                let in_flight = !self.ops.repairs_queued.is_empty()
                    || self.ops.progress.values().any(|p| {
                        matches!(
                            p,
                            super::action_state::Progress::Running(_)
                                | super::action_state::Progress::Accepted(..)
                        )
                    });
                if in_flight {
                    self.status =
                        Some("ctx: an action is running here; switch when it ends".into());
                } else {
                    self.switch_to = Some((*name).to_string());
                }
            }
            ("ctx" | "context", _) => {
                self.status =
                    Some("usage: :ctx NAME (a [[context]] of config.toml) or :ctx all".into());
            }
            ("node", [name]) => match self.fleet.inventory().find_node(name) {
                Some(id) => {
                    self.selected = id;
                    self.show(View::Detail);
                }
                None => self.status = Some(format!("no node {name:?}")),
            },
            _ => self.status = Some(format!("unknown command {line:?} (try :help)")),
        }
    }

    /// A left click selects the node or tenant under the pointer.
    pub fn on_mouse(&mut self, ev: MouseEvent) {
        if ev.kind != MouseEventKind::Down(MouseButton::Left) {
            return;
        }
        match crate::tui::ui::hit(self, ev.column, ev.row) {
            Some(crate::tui::ui::Hit::Node(id)) => self.selected = id,
            Some(crate::tui::ui::Hit::Tenant(i)) => self.tenant_cursor = i,
            None => return,
        }
        self.dirty = true;
    }
}

enum Edit {
    Typing(String),
    Done(String),
    Cancelled,
}

fn edit(mut text: String, key: &KeyEvent) -> Edit {
    match key.code {
        KeyCode::Enter => Edit::Done(text),
        KeyCode::Esc => Edit::Cancelled,
        KeyCode::Backspace => {
            text.pop();
            Edit::Typing(text)
        }
        KeyCode::Char(c) => {
            text.push(c);
            Edit::Typing(text)
        }
        _ => Edit::Typing(text),
    }
}
