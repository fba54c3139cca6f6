//! What the store holds: one event, to a node or one of its GPUs, and the kinds it may be.

/// What kind of thing happened, as stored (`kind` column).
pub mod kind {
    /// A node's or a GPU's health changed (`detail`: `ok → crit: XID 79`).
    pub const HEALTH: &str = "health";
    /// An XID or SXid as a node's kernel log or agent journal reported it.
    pub const XID: &str = "xid";
    /// An audited action began (intent) or ended (outcome).
    pub const ACTION: &str = "action";
    pub const OUTCOME: &str = "outcome";
    /// A repair applied a remedy to a GPU.
    pub(crate) const REPAIR: &str = "repair";
    /// An operator acknowledged a node's XIDs.
    pub(crate) const ACK: &str = "ack";
    /// A GPU serial was first seen on a node, or seen on another node than before.
    pub(crate) const SEEN: &str = "seen";
    pub(crate) const MOVED: &str = "moved";
    /// A validation (repair's acceptance test) result.
    pub const VALIDATION: &str = "validation";
}

/// One thing that happened, to a node or to one of its GPUs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Unix milliseconds (the node's clock for XIDs, the jump host's for everything else).
    pub time_ms: u64,
    pub node: String,
    /// The GPU's index on the node when the event concerns one GPU.
    pub gpu: Option<u32>,
    pub serial: Option<String>,
    pub uuid: Option<String>,
    pub kind: String,
    pub detail: String,
    /// The `[[context]]` it was written under; `None`: no context, or written before rows carried their site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl Event {
    /// A node-level event at `time_ms`.
    pub fn node(time_ms: u64, node: &str, kind: &str, detail: &str) -> Event {
        Event {
            time_ms,
            node: node.into(),
            gpu: None,
            serial: None,
            uuid: None,
            kind: kind.into(),
            detail: detail.into(),
            site: None,
        }
    }
}

/// The columns an [`Event`] is read back from, in [`Event::from_row`]'s order.
pub(super) const EVENT_COLUMNS: &str = "time_ms, node, gpu, serial, uuid, kind, detail, site";

/// The rows a reader under the `[[context]]` `?N` counts (SQL, `N` its parameter's number): its own site's and
/// those that carry none; with no context (`NULL`), those that carry none. See `docs/security.md`.
pub(super) fn of_site(param: usize) -> String {
    format!("(site IS NULL OR site = ?{param})")
}

impl Event {
    /// An event from a row selecting [`EVENT_COLUMNS`].
    pub(super) fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Event> {
        Ok(Event {
            time_ms: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            node: r.get(1)?,
            gpu: r.get(2)?,
            serial: r.get(3)?,
            uuid: r.get(4)?,
            kind: r.get(5)?,
            detail: r.get(6)?,
            site: r.get(7)?,
        })
    }
}
