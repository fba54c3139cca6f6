//! Recordings of the fleet's message stream (`fleetop record`), read back for replay, `snapshot --at` and
//! reports: a directory of segments, one per period, each opening with a keyframe (every node's state) and then
//! only what changed as binary frames, bzip2-compressed in blocks of ten seconds; see `docs/architecture.md` for the
//! layout and its bounds.

mod block;
mod codec;
mod frame;
mod header;
mod layout;
mod packed;
mod reader;
mod time;
mod trail;
mod writer;

pub(crate) use layout::default_dir;
pub use layout::{DEFAULT_PERIOD, MAX_SEGMENT_BYTES};
pub(crate) use reader::Messages;
pub use reader::{Reader, Recorded};
pub(crate) use time::{parse_time, utc};
pub use writer::{Options, Writer, BEATS_PER_BLOCK};
