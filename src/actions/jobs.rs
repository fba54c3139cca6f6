//! Asks the schedulers what runs on the fleet: one `squeue` for the Slurm-drained nodes and one `kubectl get
//! pods` for the Kubernetes ones, on the controller (or locally), as drains run.

use std::sync::Arc;
use std::time::Duration;

use super::exec::Executor;
use super::plan::{Argv, Invocation, Place};
use crate::inventory::{DrainBackend, Inventory};
use crate::workload::{kube, slurm, Workload};

/// The jobs and pods on the fleet's nodes now. A scheduler that cannot be asked is a problem in the answer,
/// not an error: the rest still shows.
pub fn query(inv: &Inventory, exec: &Executor) -> Workload {
    if let Executor::Simulated(sim) = exec {
        // Practice: a job ends as soon as its node is drained, so a practice repair goes on.
        let mut workload = crate::transport::sim::demo_workload(inv);
        workload.by_node.retain(|&n, _| !sim.is_drained(n));
        return workload;
    }
    let mut workload = Workload::default();
    let place = inv
        .actions
        .controller
        .clone()
        .map_or(Place::Local, Place::Controller);
    let ask = |program: &str, args: Vec<String>| {
        exec.capture(
            inv,
            &Invocation {
                place: place.clone(),
                argv: Argv::new(program, args),
                env: Vec::new(),
            },
        )
    };
    if inv.any_drained_by(&DrainBackend::Slurm) {
        match ask("squeue", slurm::squeue_args()) {
            Ok(text) => slurm::parse(inv, &text, &mut workload),
            Err(e) => workload.problems.push(format!("Slurm jobs unknown: {e}")),
        }
    }
    if inv.any_drained_by(&DrainBackend::Kubernetes) {
        match ask("kubectl", kube::kubectl_args()) {
            Ok(text) => kube::parse(inv, &text, unix_now(), &mut workload),
            Err(e) => workload
                .problems
                .push(format!("Kubernetes pods unknown: {e}")),
        }
    }
    workload
}

/// How often the TUI and the recorder ask the schedulers what runs where.
pub(crate) const READBACK_EVERY: Duration = Duration::from_secs(15);

/// Asks the schedulers now and every `every` on a thread of its own, so a slow controller holds up no one, handing
/// each answer to `send` until it returns false (its receiver is gone). Nothing starts where no scheduler can
/// answer (the demo fleet's practice scheduler always can).
pub fn follow(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    every: Duration,
    mut send: impl FnMut(Workload) -> bool + Send + 'static,
) {
    if !inv.any_scheduler() && !matches!(**exec, Executor::Simulated(_)) {
        return;
    }
    let (inv, exec) = (Arc::clone(inv), Arc::clone(exec));
    let spawned = std::thread::Builder::new()
        .name("workload-readback".into())
        .spawn(move || {
            while send(query(&inv, &exec)) {
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the workload read-back: {e}");
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
