//! The availability ledger (`fleetop report`): GPU-hours in inventory, healthy, in use and lost by cause, and how
//! long each repair phase took. A pure core: a recording's messages (wall time, [`Msg`]) go into one
//! [`FleetState`], each GPU's time between two changes is booked to what fleet state's verdicts said of it then
//! ([`classify`]), and the history store's repair records ([`repairs`]) say when a repair or its validation held
//! a node.
//!
//! Time is booked per GPU, in milliseconds, between observations: a node's GPUs are judged again at each of its
//! messages, when its data goes stale, and when a repair record starts or ends. The staleness rule is fleet
//! state's own, `FleetState::stale_after` (`fleet/state.rs`: older than `STALE_AFTER_INTERVALS` intervals): from
//! then on, without a new sample, the node's GPUs are unreachable. Where the whole fleet is silent for longer than
//! a followed fleet can be, the recorder was stopped: that time, like the time outside the recording, is
//! unrecorded.

pub(crate) mod book;
pub(crate) mod classify;
pub mod render;
pub mod repairs;

pub use book::{Hours, Ledger, Tally};
pub use classify::Cause;
