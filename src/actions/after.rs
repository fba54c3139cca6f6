//! What an action did to its node, as fleet state files it (an operations event) until the next read-back says
//! otherwise: one rule, so a front end only forwards the runner's progress and renders what fleet state holds.

use std::time::Duration;

use super::probe::reboot_confirms_down;
use super::request::ActionKind;
use crate::inventory::{Inventory, NodeId};
use crate::workload::operations::{DrainState, NodeDrain, OperationEvent, Restart};

/// In the demo fleet a rebooting node stays down this long before its samples count again.
const DEMO_REBOOT: Duration = Duration::from_secs(10);

/// What starting `kind` on a node does to it: a GPU reset is running from now on.
pub fn started(kind: ActionKind) -> Option<OperationEvent> {
    (kind == ActionKind::Reset).then_some(OperationEvent::Resetting(true))
}

/// What `kind` ending on `node` did to it, in order: a reset has ended, whatever its result; a successful drain
/// drains (at once on the demo fleet's practice scheduler, else draining until the read-back says drained), an
/// undrain resumes it, and a reboot starts the watch for the node going down and coming back (in the demo fleet,
/// whose nodes never drop off, it counts as down after a while; an SSH reboot the runner already saw go down).
pub fn finished(
    inv: &Inventory,
    node: NodeId,
    kind: ActionKind,
    ok: bool,
    simulated: bool,
) -> Vec<OperationEvent> {
    let mut events = Vec::new();
    if kind == ActionKind::Reset {
        events.push(OperationEvent::Resetting(false));
    }
    if !ok {
        return events;
    }
    let drain = |state| {
        OperationEvent::Drain(NodeDrain {
            state,
            reason: None,
            user: None,
        })
    };
    match kind {
        ActionKind::Drain => events.push(drain(if simulated {
            DrainState::Drained
        } else {
            DrainState::Draining
        })),
        ActionKind::Undrain => events.push(drain(DrainState::Active("resumed".into()))),
        ActionKind::Reboot => events.push(OperationEvent::Restarting {
            kind: Restart::Reboot,
            by: None,
            practice: simulated.then_some(DEMO_REBOOT),
            seen_down: !simulated && reboot_confirms_down(inv, node),
        }),
        // The runner judged the GPUs on a fresh look after the reset; the node never drops off, so there is no
        // return to watch.
        ActionKind::Reset => {}
    }
    events
}
