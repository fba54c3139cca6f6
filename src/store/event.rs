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
    /// Written with no context: the inventory file it was run with (canonical path), so it is told apart from a
    /// row written before rows carried their site ([`Scope`]). Not shown: a local path, which an RMA bundle's
    /// `history.json` must not carry off the jump host.
    #[serde(skip)]
    pub inventory: Option<String>,
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
            inventory: None,
        }
    }
}

/// The columns an [`Event`] is read back from, in [`Event::from_row`]'s order.
pub(super) const EVENT_COLUMNS: &str =
    "time_ms, node, gpu, serial, uuid, kind, detail, site, inventory";

/// Whose records (audit log) and rows (store) a session writes and counts: its `[[context]]`'s site, and the
/// inventory file it runs with (canonical path), with which a session without a site marks what it writes.
/// See `docs/security.md`, "Sites sharing one audit log".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    pub site: Option<&'a str>,
    pub inventory: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn new(site: Option<&'a str>, inventory: Option<&'a str>) -> Scope<'a> {
        Scope { site, inventory }
    }

    /// Whether this scope counts a record or row carrying `site` and the inventory mark `inventory`: one of its
    /// own site; or one without a site that is unmarked (written before records carried their site: the log
    /// cannot say whose, and each site read alone counts it) or marked with this scope's own inventory file (a
    /// run without a context with that file). The store's twin is [`in_scope`].
    pub fn counts(&self, site: Option<&str>, inventory: Option<&str>) -> bool {
        match site {
            Some(site) => self.site == Some(site),
            None => inventory.is_none() || inventory == self.inventory,
        }
    }

    /// The mark a record or row written in this scope carries: the inventory file, only when there is no site.
    pub fn mark(&self) -> Option<String> {
        self.site
            .is_none()
            .then_some(self.inventory)
            .flatten()
            .map(str::to_string)
    }
}

/// The rows [`Scope::counts`] counts, in SQL: `?S` the scope's site and `?I` its inventory file (parameter
/// numbers `site` and `site + 1`).
pub(super) fn in_scope(site: usize) -> String {
    format!(
        "(site = ?{site} OR (site IS NULL AND (inventory IS NULL OR inventory = ?{})))",
        site + 1
    )
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
            inventory: r.get(8)?,
        })
    }
}
