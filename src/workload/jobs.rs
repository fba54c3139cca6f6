//! The jobs and pods each node runs, as the schedulers report them, and how a scheduler's fields are kept
//! (bounded, inert; a placeholder is unknown).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, NodeId};

/// Most jobs or pods read from one answer; a bigger answer is cut with a warning.
pub(crate) const MAX_JOBS: usize = 200_000;
/// Longest text kept from a scheduler field (user, account, partition, name).
const MAX_FIELD_CHARS: usize = 64;

/// Which scheduler runs the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Slurm,
    Kubernetes,
}

/// A Slurm job or a Kubernetes pod on one or more of the fleet's nodes (read back from a recording too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub scheduler: Scheduler,
    /// The Slurm job id, or `namespace/pod`: whole (never cut), as it identifies the job to its scheduler.
    pub id: String,
    pub user: Option<String>,
    /// The Slurm account or the Kubernetes namespace: whom the work is billed to.
    pub tenant: Option<String>,
    pub partition: Option<String>,
    /// GPUs the whole job holds (Slurm's allocated TRES, a pod's `nvidia.com/gpu` requests).
    pub gpus: Option<u32>,
    pub elapsed_s: Option<u64>,
    /// Time left before its limit (`None`: unlimited or unknown).
    pub left_s: Option<u64>,
    /// The scheduler's word for its state (`RUNNING`, `COMPLETING`, `Running`).
    pub state: String,
    /// The pod's UID, which the agent finds in a process's cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl Job {
    /// `1234 alice (acme) 16 GPUs 3d2h`.
    pub fn describe(&self) -> String {
        let mut text = crate::text::bounded(&self.id, MAX_FIELD_CHARS);
        if let Some(user) = &self.user {
            text += &format!(" {user}");
        }
        if let Some(tenant) = &self.tenant {
            text += &format!(" ({tenant})");
        }
        if let Some(gpus) = self.gpus {
            text += &format!(" {gpus} GPU{}", if gpus == 1 { "" } else { "s" });
        }
        if let Some(elapsed) = self.elapsed_s {
            text += &format!(" {}", duration(elapsed));
        }
        text
    }
}

/// `3d2h`, `5h12m`, `7m`, `40s`: the two largest units.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// The work on each node, as one answer from the schedulers gave it.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Jobs per node, each job shared by all of its nodes.
    pub by_node: HashMap<NodeId, Vec<Arc<Job>>>,
    /// Why a scheduler could not be asked, or what was cut; shown, never hidden.
    pub problems: Vec<String>,
    /// Which schedulers answered.
    pub checked: Vec<Scheduler>,
    /// Nodes no scheduler was asked about (under `--context all`, a site without one, or whose own could not be
    /// reached): their jobs are unknown, never none.
    pub unasked: std::collections::HashSet<NodeId>,
}

impl Workload {
    /// Whether the answer says what runs on `node`: a scheduler answered, and was asked about it.
    pub fn knows(&self, node: NodeId) -> bool {
        !self.checked.is_empty() && !self.unasked.contains(&node)
    }

    pub fn jobs(&self, node: NodeId) -> &[Arc<Job>] {
        self.by_node.get(&node).map_or(&[], Vec::as_slice)
    }

    /// The tenant shown for `node`: with its site's `tenant_from = "scheduler"` the distinct Slurm accounts or
    /// namespaces of the jobs on it, joined with `+` as split nodes are; else, or where no job names one, `own`
    /// (the inventory's).
    pub fn tenant(&self, inv: &Inventory, node: NodeId, own: Option<String>) -> Option<String> {
        if inv.rules(node).settings.tenant_from != crate::inventory::TenantFrom::Scheduler {
            return own;
        }
        let mut names: Vec<&str> = self
            .jobs(node)
            .iter()
            .filter_map(|j| j.tenant.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            own
        } else {
            Some(names.join("+"))
        }
    }

    /// Files `job` under each of `nodes` that the inventory knows; nodes outside the fleet are ignored.
    pub(crate) fn add(&mut self, inv: &Inventory, nodes: &[String], job: Job) {
        let job = Arc::new(job);
        for name in nodes {
            if let Some(id) = inv.find_node(name) {
                let list = self.by_node.entry(id).or_default();
                if !list.iter().any(|j| j.id == job.id) {
                    list.push(job.clone());
                }
            }
        }
    }

    /// Distinct jobs on `nodes`, in the order first met.
    pub fn on(&self, nodes: &[NodeId]) -> Vec<Arc<Job>> {
        let mut seen: Vec<Arc<Job>> = Vec::new();
        for &n in nodes {
            for job in self.jobs(n) {
                if !seen
                    .iter()
                    .any(|j| j.id == job.id && j.scheduler == job.scheduler)
                {
                    seen.push(job.clone());
                }
            }
        }
        seen
    }

    /// Whether the answer may miss jobs: a scheduler was not asked, not understood, or cut. Such an answer
    /// never says "none".
    pub(crate) fn incomplete(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The problems in a few words, on one line: the first line of the first (a scheduler's error may run to
    /// many), and how many more.
    fn why_incomplete(&self) -> String {
        let first = self
            .problems
            .first()
            .and_then(|p| p.lines().next())
            .unwrap_or("");
        let first = field(first).unwrap_or_default();
        match self.problems.len() {
            0 | 1 => first,
            n => format!("{first}; {} more problem(s)", n - 1),
        }
    }

    /// What a drain or reboot of `nodes` hits: `3 jobs: 1234 alice (acme) 16 GPUs 3d2h, …`, or `no jobs` when
    /// the schedulers answered in full, `jobs unknown (why)` when an answer was not understood or another
    /// scheduler did not answer, or `None` when none answered or some node was not asked
    /// about (the problems say why).
    pub fn hits(&self, nodes: &[NodeId], shown: usize) -> Option<String> {
        if !nodes.iter().all(|&n| self.knows(n)) {
            return None;
        }
        let jobs = self.on(nodes);
        if jobs.is_empty() {
            return Some(if self.incomplete() {
                format!("jobs unknown ({})", self.why_incomplete())
            } else {
                "no running jobs or pods".into()
            });
        }
        let listed: Vec<String> = jobs.iter().take(shown).map(|j| j.describe()).collect();
        let more = jobs.len().saturating_sub(shown);
        Some(
            format!(
                "{} job{}: {}{}",
                jobs.len(),
                if jobs.len() == 1 { "" } else { "s" },
                listed.join(", "),
                if more > 0 {
                    format!(", … and {more} more")
                } else {
                    String::new()
                }
            ) + &if self.incomplete() {
                format!(", perhaps more ({})", self.why_incomplete())
            } else {
                String::new()
            },
        )
    }
}

/// A scheduler's field as fleetop keeps it: trimmed, bounded, terminal controls made visible; empty or a
/// placeholder (`(null)`, `N/A`) is unknown. For text shown only; a name that identifies something is a
/// [`key`].
pub(crate) fn field(text: &str) -> Option<String> {
    key(text).map(|k| crate::text::bounded(&k, MAX_FIELD_CHARS))
}

/// A scheduler's identifier (job id, namespace, pod name): like [`field`] but whole, since a cut name would
/// match no node and name another pod (Kubernetes names run to 253 characters).
pub(crate) fn key(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || matches!(t, "(null)" | "N/A" | "n/a") {
        return None;
    }
    Some(crate::text::escape(t).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_the_two_largest_units() {
        assert_eq!(duration(40), "40s");
        assert_eq!(duration(7 * 60 + 5), "7m");
        assert_eq!(duration(5 * 3600 + 12 * 60), "5h12m");
        assert_eq!(duration(3 * 86_400 + 2 * 3600 + 59), "3d2h");
    }

    fn job(id: &str, tenant: &str) -> Job {
        Job {
            scheduler: Scheduler::Slurm,
            id: id.into(),
            user: None,
            tenant: Some(tenant.into()),
            partition: None,
            gpus: None,
            elapsed_s: None,
            left_s: None,
            state: "RUNNING".into(),
            pod_uid: None,
        }
    }

    #[test]
    fn a_nodes_tenant_comes_from_its_jobs_only_where_its_inventory_says_so() {
        let nodes = "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-3]\"\n";
        let by_jobs = Inventory::parse(
            "s.toml",
            &format!("[defaults]\ntenant_from = \"scheduler\"\n{nodes}"),
        )
        .unwrap();
        let by_inventory = Inventory::parse("i.toml", nodes).unwrap();
        let mut w = Workload::default();
        w.add(&by_jobs, &["n1".into()], job("7", "globex"));
        w.add(&by_jobs, &["n1".into(), "n2".into()], job("8", "acme"));
        let own = || Some("t".to_string());
        assert_eq!(w.tenant(&by_jobs, 0, own()).as_deref(), Some("acme+globex"));
        assert_eq!(w.tenant(&by_jobs, 1, own()).as_deref(), Some("acme"));
        assert_eq!(
            w.tenant(&by_jobs, 2, own()).as_deref(),
            Some("t"),
            "no job: the inventory's"
        );
        assert_eq!(w.tenant(&by_inventory, 0, own()).as_deref(), Some("t"));
    }

    #[test]
    fn a_node_not_asked_about_is_unknown_never_none() {
        let inv =
            Inventory::parse("s.toml", "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n").unwrap();
        let mut w = Workload::default();
        assert!(!w.knows(0), "no scheduler answered");
        w.checked.push(Scheduler::Slurm);
        w.unasked.insert(1);
        assert!(w.knows(0) && !w.knows(1));
        assert_eq!(w.hits(&[0], 3).as_deref(), Some("no running jobs or pods"));
        assert_eq!(w.hits(&[0, 1], 3), None);
        w.add(&inv, &["n1".into()], job("7", "acme"));
        assert!(w
            .hits(&[0], 3)
            .is_some_and(|h| h.starts_with("1 job: 7 (acme)")));
    }

    #[test]
    fn fields_are_bounded_and_inert() {
        assert_eq!(field("  alice "), Some("alice".into()));
        assert_eq!(field("(null)"), None);
        assert_eq!(field("\x1b[2Jx").as_deref(), Some("\\x1b[2Jx"));
        assert!(field(&"a".repeat(500)).is_some_and(|f| f.chars().count() == MAX_FIELD_CHARS + 1));
    }
}
