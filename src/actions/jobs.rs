//! Asks the schedulers what runs on the fleet: one `squeue` for the Slurm-drained nodes and one `kubectl get
//! pods` for the Kubernetes ones, on the controller (or locally), as drains run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::exec::Executor;
use super::plan::{Argv, Invocation, Place};
use crate::inventory::{DrainBackend, Inventory};
use crate::workload::{kube, slurm, Job, Scheduler, Workload};

/// The jobs and pods on the fleet's nodes now: under `--context all` each site's, asked through its own scheduler
/// settings and controller, filed under the merged inventory's nodes, their tenants named `SITE/NAME` as its
/// inventory's are. A scheduler that cannot be asked is a problem in the answer, not an error: the rest still
/// shows.
pub fn query(inv: &Inventory, exec: &Executor) -> Workload {
    if let Executor::Simulated(sim) = exec {
        // Practice: a job ends as soon as its node is drained, so a practice repair goes on.
        let mut workload = crate::transport::sim::demo_workload(inv);
        workload.by_node.retain(|&n, _| !sim.is_drained(n));
        return workload;
    }
    if inv.merged_sites().is_empty() {
        return query_site(inv, exec);
    }
    merge_sites(
        inv,
        super::sites::every_site(inv, exec, |own, exec| Ok(query_site(own, exec))),
    )
}

/// The sites' answers as one workload of the merged inventory `inv` (`--context all`): each site's jobs filed
/// under the merged inventory's nodes, their tenants named `SITE/NAME`; the nodes of sites that gave no answer,
/// or whose own scheduler did not answer, stay unknown.
pub(crate) fn merge_sites(
    inv: &Inventory,
    answers: Vec<super::sites::SiteAnswer<'_, Workload>>,
) -> Workload {
    let mut merged = Workload {
        unasked: (0..inv.nodes.len()).collect(),
        ..Workload::default()
    };
    for site in answers {
        let name = site.site.map_or("", |s| s.name.as_str());
        let workload = match &site.answer {
            Ok(workload) => workload,
            Err(e) => {
                merged.problems.push(format!("jobs unknown: {e}"));
                continue;
            }
        };
        if let Some(own) = site.site.map(|s| &s.inventory) {
            // Only nodes whose own scheduler answered: `checked` tells of every site, so a node whose site's
            // scheduler failed would read as running nothing.
            let answered = |n: &usize| {
                scheduler_of(own.drain_backend(*n)).is_some_and(|s| workload.checked.contains(&s))
            };
            for node in (0..own.nodes.len())
                .filter(answered)
                .filter_map(|n| site.merged_id(n))
            {
                merged.unasked.remove(&node);
            }
        }
        // A job on several nodes stays one job, as in a site's own answer.
        let mut renamed: HashMap<*const Job, Arc<Job>> = HashMap::new();
        for (&own, jobs) in &workload.by_node {
            let Some(node) = site.merged_id(own) else {
                continue;
            };
            let list = merged.by_node.entry(node).or_default();
            list.extend(jobs.iter().map(|job| {
                let renamed = renamed.entry(Arc::as_ptr(job)).or_insert_with(|| {
                    let mut job = Job::clone(job);
                    job.tenant = job.tenant.map(|t| site.merged_label(&t));
                    Arc::new(job)
                });
                Arc::clone(renamed)
            }));
        }
        merged.problems.extend(
            workload
                .problems
                .iter()
                .map(|p| format!("site {name}: {p}")),
        );
        for scheduler in &workload.checked {
            if !merged.checked.contains(scheduler) {
                merged.checked.push(*scheduler);
            }
        }
    }
    merged
}

/// The scheduler that says what runs on a node drained through `backend`, if any.
fn scheduler_of(backend: &DrainBackend) -> Option<Scheduler> {
    match backend {
        DrainBackend::Slurm => Some(Scheduler::Slurm),
        DrainBackend::Kubernetes => Some(Scheduler::Kubernetes),
        DrainBackend::Command { .. } => None,
    }
}

/// One site's jobs and pods, asked of its own schedulers.
fn query_site(inv: &Inventory, exec: &Executor) -> Workload {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::inventory::Inventory;

    /// Under `--context all` a site whose own scheduler could not be asked (here: `kubectl` fails) keeps its nodes
    /// unknown (`null`), even with another site's Slurm answering, never running nothing (`[]`).
    #[test]
    fn a_site_whose_scheduler_failed_keeps_its_nodes_unknown() {
        // Stand-ins put ahead of the real PATH (other tests run meanwhile and still find theirs): east's Slurm
        // answers, west's kubectl cannot reach its cluster.
        let bin = tempfile::tempdir().unwrap();
        let standin = |name: &str, script: &str| {
            use std::os::unix::fs::PermissionsExt;
            let path = bin.path().join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        standin(
            "squeue",
            "#!/bin/sh\nprintf '4242|alice|acme|batch|n1|cpu=128,node=1,gres/gpu=8|3-02:00:00|1:00:00|RUNNING|\\n'\n",
        );
        standin(
            "kubectl",
            "#!/bin/sh\necho 'The connection to the server was refused' >&2\nexit 1\n",
        );
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::set_var("PATH", format!("{}:{path}", bin.path().display()));
        let site = |name: &str, backend: &str| {
            let text = format!(
                "[drain]\nbackend = \"{backend}\"\n[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n"
            );
            let inv = Inventory::parse(&format!("{name}.toml"), &text).unwrap();
            (name.to_string(), Arc::new(inv))
        };
        let merged =
            Inventory::merge(&[site("east", "slurm"), site("west", "kubernetes")]).unwrap();
        let exec = crate::actions::exec::Executor::real(&merged).unwrap();
        let workload = super::query(&merged, &exec);
        let east_n1 = merged.find_node("east/n1").unwrap();
        let west_n1 = merged.find_node("west/n1").unwrap();
        assert_eq!(
            workload.jobs(east_n1)[0].id,
            "4242",
            "{:?}",
            workload.problems
        );
        assert!(workload.knows(east_n1));
        assert!(
            workload.problems.iter().any(|p| p.contains("west")),
            "{:?}",
            workload.problems
        );
        assert!(
            !workload.knows(west_n1),
            "west's pods were never listed, yet its node is said to run nothing"
        );
    }
}
