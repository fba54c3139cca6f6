//! How samples reach the jump host: a [`Transport`] follows every node and sends [`Msg`]s into one channel.

pub(crate) mod decode;
mod follow;
mod message;
pub mod prometheus;
pub mod sim;
pub mod sites;
pub mod ssh;

pub use follow::{Completed, Ending, Following, NodeCommands, Transport};
pub(crate) use message::GpuPast;
pub use message::{FailureKind, Msg, NodeEvent};
pub(crate) use message::{MsgSender, NodeSink};
