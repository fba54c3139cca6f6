//! SSH transport: per node one thread, one persistent session and one streaming exec channel, with
//! bounded handshake concurrency and jittered exponential backoff. A slow node only ever blocks its own thread.

mod backoff;
mod command;
mod connected;
pub(crate) mod endpoint;
mod gate;
mod identity;
mod inspect;
pub(crate) mod install;
mod jump;
pub mod known;
pub(crate) mod oneshot;
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
