//! `App`, the TUI's one owner of state: it merges transport messages, keeps the rows views read, and journals
//! what changed; input, actions, acknowledgements and tenancy extend it from their own files.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::action_state::Operations;
use super::journal::Journal;
use super::modes::{Metric, Mode, NodeFilter, SortKey, View};
use super::rows::{self, NodeRow, TenantRow, Totals};
use crate::fleet::{FleetState, NodeState};
use crate::inventory::{Inventory, NodeId};
use crate::telemetry::health::Health;
use crate::transport::{Msg, NodeEvent};
use crate::tui::keymap::Keymap;

/// Rows are recomputed at most this often while data streams in (batching at fleet scale).
const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// ... and at least this often, because ages and staleness change with time alone.
const REFRESH_IDLE: Duration = Duration::from_secs(1);

pub struct App {
    pub fleet: FleetState,
    /// The clock views use; set by the loop (or a test), never read from the system while drawing.
    pub now: Instant,
    /// Wall-clock time at `clock_base`, to print event times.
    pub wall_base: (Instant, SystemTime),
    pub view: View,
    pub previous_view: View,
    pub mode: Mode,
    pub metric: Metric,
    pub sort: SortKey,
    pub sort_descending: bool,
    pub filter: NodeFilter,
    pub keymap: Keymap,
    /// The selected node, kept by identity so sorting and filtering do not lose it.
    pub selected: NodeId,
    pub tenant_cursor: usize,
    pub events_scroll: usize,
    /// First line shown in the drift view.
    pub drift_scroll: usize,
    /// The terminal's size, set by the loop on resize: paging and overview geometry depend on it.
    pub viewport: (u16, u16),
    /// A one-line message for the footer (bad filter, unknown command).
    pub status: Option<String>,
    pub journal: Journal,
    pub rows: Vec<NodeRow>,
    /// Indices into `rows` that pass the filter, in sort order.
    pub order: Vec<usize>,
    pub tenants: Vec<TenantRow>,
    pub totals: Totals,
    /// Set when something visible changed; the loop draws and clears it.
    pub dirty: bool,
    pub quit: bool,
    /// `:ctx NAME`: the loop ends and the fleet of that context (or `all`) is followed instead.
    pub switch_to: Option<String>,
    /// Marks, action progress and unacknowledged failures.
    pub ops: Operations,
    /// A replay's header text (`replay 2026-11-24 03:12:05 UTC ×4`); `None` when following the fleet.
    pub replay: Option<String>,
    /// The node detail's history pane, read from the store by the loop.
    pub history: super::history::NodeHistory,
    data_changed: bool,
    last_refresh: Option<Instant>,
    last_seen: Vec<Option<(NodeState, Health)>>,
}

impl App {
    pub fn new(inventory: Arc<Inventory>, keymap: Keymap, now: Instant) -> App {
        let fleet = FleetState::new(inventory);
        let n = fleet.nodes().len();
        let mut app = App {
            fleet,
            now,
            wall_base: (now, SystemTime::now()),
            view: View::Overview,
            previous_view: View::Overview,
            mode: Mode::Normal,
            metric: Metric::Health,
            sort: SortKey::Name,
            sort_descending: false,
            filter: NodeFilter::default(),
            keymap,
            selected: 0,
            tenant_cursor: 0,
            events_scroll: 0,
            drift_scroll: 0,
            viewport: (80, 24),
            status: None,
            journal: Journal::default(),
            rows: Vec::new(),
            order: Vec::new(),
            tenants: Vec::new(),
            totals: Totals::default(),
            dirty: true,
            quit: false,
            switch_to: None,
            ops: Operations::default(),
            replay: None,
            history: super::history::NodeHistory::default(),
            data_changed: true,
            last_refresh: None,
            last_seen: vec![None; n],
        };
        app.refresh();
        app
    }

    /// Merges one transport message. Cheap: views are recomputed on the next tick, not per message.
    pub fn on_msg(&mut self, msg: Msg) {
        match &msg.event {
            NodeEvent::Sample(sample) => self.note_new_xids(msg.node, sample, msg.at),
            // Only a delta that carries XIDs can bring new ones: the sample it makes is looked at then.
            NodeEvent::Delta(delta)
                if delta
                    .gpus
                    .iter()
                    .any(|g| g.xid.is_some() || g.xid_events.is_some()) =>
            {
                let node = self.fleet.nodes().get(msg.node);
                if let Some(mut sample) = node.and_then(|n| n.sample.clone()) {
                    delta.as_ref().clone().apply_to(&mut sample);
                    self.note_new_xids(msg.node, &sample, msg.at);
                }
            }
            _ => {}
        }
        self.fleet.apply(msg);
        self.data_changed = true;
    }

    /// Advances the clock; recomputes rows when data changed (at most every 250 ms) or a second passed.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        let since = self
            .last_refresh
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        if (self.data_changed && since >= REFRESH_EVERY) || since >= REFRESH_IDLE {
            self.refresh();
        }
    }

    /// Recomputes rows, tenants and totals, and journals state changes.
    pub fn refresh(&mut self) {
        let derived = rows::derive(&self.fleet, self.now);
        self.rows = derived.rows;
        self.tenants = derived.tenants;
        self.totals = derived.totals;
        self.journal_returns();
        self.overlay_tenancy();
        self.journal_changes();
        self.reorder();
        self.data_changed = false;
        self.last_refresh = Some(self.now);
        self.dirty = true;
    }

    /// Applies filter and sort to the rows.
    pub(crate) fn reorder(&mut self) {
        let inv = self.fleet.inventory();
        let mut order: Vec<usize> = (0..self.rows.len()).filter(|&i| self.matches(i)).collect();
        let rows = &self.rows;
        let key = self.sort;
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&rows[a], &rows[b]);
            let by = match key {
                SortKey::Name => ra.id.cmp(&rb.id),
                SortKey::Tenant => ra.tenant.cmp(&rb.tenant),
                SortKey::State => ra.state.cmp(&rb.state),
                SortKey::Health => ra.health.cmp(&rb.health),
                SortKey::Age => ra.age.cmp(&rb.age),
                SortKey::Util => ra
                    .avg_util
                    .partial_cmp(&rb.avg_util)
                    .unwrap_or(std::cmp::Ordering::Equal),
                SortKey::Temp => ra.max_temp.cmp(&rb.max_temp),
                SortKey::MemTemp => ra.max_mem_temp.cmp(&rb.max_mem_temp),
                SortKey::Power => ra
                    .power_w
                    .partial_cmp(&rb.power_w)
                    .unwrap_or(std::cmp::Ordering::Equal),
            };
            let by = if self.sort_descending {
                by.reverse()
            } else {
                by
            };
            by.then_with(|| inv.nodes[ra.id].name.cmp(&inv.nodes[rb.id].name))
        });
        self.order = order;
        self.dirty = true;
    }

    /// True when row `i` passes the node filter.
    pub fn matches(&self, i: usize) -> bool {
        let row = &self.rows[i];
        if self.filter.terms.0.is_empty() && self.filter.words.is_empty() {
            return true;
        }
        // The row, not a fresh node view: it is what the table shows, drain and reboot states included.
        let inv = self.fleet.inventory();
        let node = &inv.nodes[row.id];
        let subject = crate::fleet::filter::Subject {
            name: &node.name,
            cabinet: &inv.cabinets[node.cabinet].name,
            tenant: row.tenant.as_deref(),
            state: row.state.as_str(),
            health: row.health.as_str(),
        };
        if !self.filter.terms.accepts(&subject) {
            return false;
        }
        let haystack = format!(
            "{} {} {} {}",
            subject.name,
            subject.cabinet,
            subject.tenant.unwrap_or("spare"),
            row.note.as_deref().unwrap_or("")
        )
        .to_lowercase();
        self.filter
            .words
            .iter()
            .all(|w| haystack.contains(&w.to_lowercase()))
    }

    /// Position of the selected node in `order`, if it passes the filter.
    pub fn selected_position(&self) -> Option<usize> {
        self.order
            .iter()
            .position(|&i| self.rows[i].id == self.selected)
    }

    pub fn node_name(&self, id: NodeId) -> &str {
        &self.fleet.inventory().nodes[id].name
    }

    /// Wall-clock time of an instant, for display.
    pub(crate) fn wall_time(&self, at: Instant) -> SystemTime {
        let (base, wall) = self.wall_base;
        if at >= base {
            wall + (at - base)
        } else {
            wall - (base - at)
        }
    }

    fn journal_changes(&mut self) {
        for row in &self.rows {
            let now = (row.state, row.health);
            let before = self.last_seen[row.id].replace(now);
            let name = &self.fleet.inventory().nodes[row.id].name;
            let note = row.note.as_deref().unwrap_or("");
            match before {
                None => {}
                Some(b) if b == now => {}
                // The first answer of a healthy node is not news.
                Some((NodeState::Connecting, _))
                    if row.state == NodeState::Up && row.health == Health::Ok => {}
                Some((state, health)) => {
                    let text = if state != row.state {
                        format!(
                            "{name}: {} → {}  {note}",
                            state.as_str(),
                            row.state.as_str()
                        )
                    } else {
                        format!(
                            "{name}: health {} → {}  {note}",
                            health.as_str(),
                            row.health.as_str()
                        )
                    };
                    self.journal.push(self.now, Some(row.id), row.health, text);
                }
            }
        }
    }

    /// Journals each XID that is new or happened again since the last sample, with its count and message.
    fn note_new_xids(&mut self, node: NodeId, sample: &crate::telemetry::NodeSample, at: Instant) {
        let previous = self.fleet.nodes().get(node).and_then(|n| n.sample.as_ref());
        let name = &self.fleet.inventory().nodes[node].name;
        for gpu in &sample.gpus {
            let old = previous.and_then(|p| p.gpus.iter().find(|g| g.index == gpu.index));
            let clock = crate::telemetry::xid_age::XidClock {
                now_ms: (sample.t > 0).then_some(sample.t),
                ..self.fleet.xid_clock(node, Some(gpu.index), None)
            };
            for line in crate::fleet::events::new_xids(old, gpu, &clock) {
                let (health, text) = line;
                self.journal
                    .push(at, Some(node), health, format!("{name}: {text}"));
            }
        }
    }

    /// The node whose history the loop should read now (the one in the detail view, read again every 30 s
    /// while it stays open); `None` outside the detail view and for the demo fleet, which has no store.
    pub fn history_wanted(&mut self) -> Option<NodeId> {
        let shown = (self.view == View::Detail && !self.fleet.inventory().simulated)
            .then_some(self.selected);
        self.history.wanted(shown, self.now)
    }

    /// The store's answer for `node`'s history pane.
    pub fn on_history(&mut self, node: NodeId, events: Result<Vec<crate::store::Event>, String>) {
        self.history.answer(node, events);
        self.dirty = true;
    }
}
