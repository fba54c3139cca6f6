//! SSH transport: per node one thread, one persistent session and one streaming exec channel, with
//! bounded handshake concurrency and jittered exponential backoff; while nodes stream, one poller thread reads
//! them all. A slow node only ever blocks its own thread, never the poller (its sockets are non-blocking).

mod backoff;
mod command;
mod connected;
pub(crate) mod endpoint;
mod following;
mod gate;
mod identity;
mod inspect;
pub(crate) mod install;
mod jump;
pub mod known;
pub(crate) mod oneshot;
mod poller;
mod service;
mod session;
mod sessions;
pub(crate) mod shell;
mod stamped;
mod stream;
mod timeouts;
mod transport;
mod upload;
mod worker;

pub use sessions::Sessions;
pub use timeouts::Timeouts;
pub use transport::SshTransport;
