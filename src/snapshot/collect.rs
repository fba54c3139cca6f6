//! One pass over the fleet: follow every node until each has answered (a sample, a failure, or its last
//! allowed connection failure) or the timeout passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fleet::view::Pending;
use crate::fleet::FleetState;
use crate::inventory::{Inventory, NodeId};
use crate::transport::{FailureKind, NodeEvent, Transport};

/// Looks at `nodes` once, as `snapshot` does, over a one-pass SSH transport of their own (the demo fleet's
/// simulation for the practice inventory), within the inventory's connect, handshake and first-sample timeouts
/// (a minute at most). Node `k` of the state is `nodes[k]` (a transport made for the whole inventory would
/// number them otherwise), and the [`Pending`] says what a node not answered by then is.
pub async fn look(inv: &Inventory, nodes: &[NodeId]) -> Result<(FleetState, Pending), String> {
    let only = Arc::new(inv.only(nodes));
    let transport: Box<dyn Transport> = if inv.simulated {
        Box::new(crate::transport::sim::SimTransport::default())
    } else {
        Box::new(
            crate::transport::ssh::SshTransport::new(&only)
                .map_err(|e| e.to_string())?
                .one_pass(),
        )
    };
    let s = &inv.settings;
    let limit = (s.connect_timeout + s.handshake_timeout + s.first_sample_timeout)
        .min(Duration::from_secs(60));
    let started = Instant::now();
    let state = collect(only, transport.as_ref(), limit).await;
    Ok((state, Pending::TimedOut { limit, started }))
}

/// [`look`] from code that runs outside the runtime.
pub(crate) fn look_once(
    inv: &Inventory,
    nodes: &[NodeId],
) -> Result<(FleetState, Pending), String> {
    let runtime =
        crate::runtime::runtime().ok_or("cannot start the runtime to look at the nodes")?;
    runtime.block_on(look(inv, nodes))
}

/// Follows every node until each has answered (a sample or a failure) or `timeout` passes.
pub async fn collect(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    timeout: Duration,
) -> FleetState {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let following = transport.follow(&inventory, tx);
    let mut state = FleetState::new(inventory);
    let deadline = tokio::time::Instant::now() + timeout;
    // A connection that failed once (a reset under load, a blip) gets its second try before it counts as
    // the node's answer, so one transient error does not page anyone; other failures are answers at once.
    let tries = if transport.reconnects() { 2 } else { 1 };
    let mut unreachable = vec![0u32; state.nodes().len()];
    let mut answered = vec![false; state.nodes().len()];
    let mut waiting = state.nodes().len();
    while waiting > 0 {
        // A channel that always has a message ready would never let `timeout_at` fire: check first.
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(_) => break,
        };
        let node = msg.node;
        if node >= answered.len() {
            continue;
        }
        if let NodeEvent::Failed {
            kind: FailureKind::Unreachable,
            ..
        } = msg.event
        {
            unreachable[node] += 1;
        }
        state.apply(msg);
        // Once a node has answered it stays answered, whatever its later tries report.
        if !answered[node] && done(&state, node, &unreachable, tries) {
            answered[node] = true;
            waiting -= 1;
        }
    }
    // Whatever arrived together with the last answer is kept too.
    while let Ok(msg) = rx.try_recv() {
        state.apply(msg);
    }
    drop(following);
    state
}

/// True once `node` has given its answer: a sample, a failure that is not a lost connection, or its last
/// allowed connection failure.
fn done(state: &FleetState, node: NodeId, unreachable: &[u32], tries: u32) -> bool {
    let status = &state.nodes()[node];
    status.sample.is_some()
        || status
            .failure
            .as_ref()
            .is_some_and(|f| f.kind != FailureKind::Unreachable || unreachable[node] >= tries)
}
