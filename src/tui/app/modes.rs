//! What the operator is looking at and doing: the view, the input mode, the metric, the sort key and the filter.

use crate::fleet::filter::Filter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Nodes,
    Detail,
    Tenants,
    Events,
    Drift,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Nodes,
        View::Detail,
        View::Tenants,
        View::Events,
        View::Drift,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Nodes => "Nodes",
            View::Detail => "Detail",
            View::Tenants => "Tenants",
            View::Events => "Events",
            View::Drift => "Drift",
        }
    }
}

/// What keystrokes currently mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a filter; the text so far.
    Filter(String),
    /// Typing a `:` command.
    Command(String),
    Help,
    /// Typing the reason for an action.
    Reason {
        kind: crate::actions::ActionKind,
        text: String,
    },
    /// The confirm dialog of an action.
    Confirm(super::action_state::Confirm),
    /// Typing the reason for acknowledging the targets' XIDs.
    AckReason(String),
    /// Typing the reason for repairing the targets.
    RepairReason(String),
}

/// The overview's colour metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Util,
    Temp,
    MemTemp,
    Power,
    Health,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Health,
        Metric::Util,
        Metric::Temp,
        Metric::MemTemp,
        Metric::Power,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Util => "util",
            Metric::Temp => "temp",
            Metric::MemTemp => "memtemp",
            Metric::Power => "power",
            Metric::Health => "health",
        }
    }
}

/// Columns the nodes table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Tenant,
    State,
    Health,
    Age,
    Util,
    Temp,
    MemTemp,
    Power,
}

impl SortKey {
    pub const ALL: [SortKey; 9] = [
        SortKey::Name,
        SortKey::Tenant,
        SortKey::State,
        SortKey::Health,
        SortKey::Age,
        SortKey::Util,
        SortKey::Temp,
        SortKey::MemTemp,
        SortKey::Power,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Tenant => "tenant",
            SortKey::State => "state",
            SortKey::Health => "health",
            SortKey::Age => "age",
            SortKey::Util => "util",
            SortKey::Temp => "temp",
            SortKey::MemTemp => "memtemp",
            SortKey::Power => "power",
        }
    }
}

/// The node filter: `key=value` terms plus free words matched against name, cabinet, tenant and notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFilter {
    pub text: String,
    pub terms: Filter,
    pub words: Vec<String>,
}
