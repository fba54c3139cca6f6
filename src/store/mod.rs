//! The jump host's memory: one SQLite file (`fleet.sqlite`, beside the audit log) indexing what happened to each
//! node and each GPU (by serial and UUID): health transitions, XIDs, actions and their outcomes, repairs,
//! acknowledgements and a GPU's moves between nodes. The audit log stays the source of truth for actions; this is
//! the index `fleetop history` and the lemon flag read.
//!
//! Several writers at once (a TUI, `repair`, a snapshot) share it: WAL mode lets readers go on while one writes,
//! and a busy timeout makes a writer wait its turn for a short, bounded time instead of failing. The file is
//! bounded: past [`MAX_EVENTS`] rows the oldest go, and the WAL is truncated back to [`WAL_LIMIT_BYTES`].

mod event;
pub mod query;
mod span;
mod sqlite;

pub use event::{kind, Event, Scope};
pub use query::Incidents;
pub(crate) use sqlite::default_path;
pub use sqlite::{beside, record, Store, MAX_EVENTS};

#[cfg(test)]
mod scope_tests;
#[cfg(test)]
mod tests;
