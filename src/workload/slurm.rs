//! Slurm jobs from one `squeue` for the whole fleet: a fixed `--Format` list with `|` after each field, which
//! Slurm prints unpadded (checked against slurm-wlm 22.05 in the test suite).

use super::jobs::{field, key, Job, Scheduler, Workload, MAX_JOBS};
use crate::inventory::{nodeset, Inventory};

/// The fields asked, in order; each ends with `|` (Slurm's `type:[size][suffix]` with no size).
const FIELDS: [&str; 9] = [
    "JobID",
    "UserName",
    "Account",
    "Partition",
    "NodeList",
    "tres-alloc",
    "TimeUsed",
    "TimeLeft",
    "State",
];

/// `squeue`'s arguments: running and completing jobs (both still hold their nodes), no header.
pub(crate) fn squeue_args() -> Vec<String> {
    let format: Vec<String> = FIELDS.iter().map(|f| format!("{f}:|")).collect();
    ["-h", "-t", "RUNNING,COMPLETING", "-O"]
        .iter()
        .map(|s| s.to_string())
        .chain([format.join(",")])
        .collect()
}

/// Reads `squeue` output into `workload`, filing each job under the fleet's nodes it runs on.
pub fn parse(inv: &Inventory, text: &str, workload: &mut Workload) {
    let mut bad = 0usize;
    let mut first_bad = None;
    for (n, line) in text.lines().enumerate() {
        if n >= MAX_JOBS {
            workload.problems.push(format!(
                "squeue listed more than {MAX_JOBS} jobs; the rest were not read"
            ));
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        match job(line) {
            Some((nodes, job)) => workload.add(inv, &nodes, job),
            None => {
                bad += 1;
                first_bad.get_or_insert(n + 1);
            }
        }
    }
    if let Some(line) = first_bad {
        workload.problems.push(format!(
            "squeue: {bad} line{} not understood (first: line {line})",
            if bad == 1 { "" } else { "s" }
        ));
    }
    workload.checked.push(Scheduler::Slurm);
}

/// One `squeue` line: exactly the fields asked, each ended by `|`. squeue does not escape a `|` inside a
/// field (an account, user or partition may hold one), and a line with more or fewer separators cannot be
/// read safely: its node list would be some other field, so the job would land on no node.
fn job(line: &str) -> Option<(Vec<String>, Job)> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() != FIELDS.len() + 1 || !f[FIELDS.len()].trim().is_empty() {
        return None;
    }
    let id = key(f[0])?;
    let nodes = nodeset::expand(f[4].trim()).ok()?;
    Some((
        nodes,
        Job {
            scheduler: Scheduler::Slurm,
            id,
            user: field(f[1]),
            tenant: field(f[2]),
            partition: field(f[3]),
            gpus: gpus_of_tres(f[5]),
            elapsed_s: seconds(f[6]),
            left_s: seconds(f[7]),
            state: field(f[8]).unwrap_or_else(|| "?".into()),
            pod_uid: None,
        },
    ))
}

/// GPUs in an allocated-TRES string (`cpu=64,node=2,billing=64,gres/gpu=16`): the untyped `gres/gpu` count,
/// else the sum of typed ones (`gres/gpu:h100=16`). `None` when it names no GPU (the job holds none: 0).
pub(crate) fn gpus_of_tres(tres: &str) -> Option<u32> {
    let mut untyped = None;
    let mut typed: Option<u32> = None;
    for entry in tres.trim().split(',') {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        let Ok(count) = value.trim().parse::<u32>() else {
            continue;
        };
        if key == "gres/gpu" {
            untyped = Some(count);
        } else if key.starts_with("gres/gpu:") {
            typed = Some(typed.unwrap_or(0).saturating_add(count));
        }
    }
    untyped.or(typed).or(Some(0))
}

/// Slurm's `[days-][hours:]minutes:seconds`; `UNLIMITED`, `NOT_SET`, `INVALID` and anything else are `None`.
pub(crate) fn seconds(text: &str) -> Option<u64> {
    let t = text.trim();
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, t),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, s) = match parts.as_slice() {
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_slurm_formats() {
        assert_eq!(seconds("0:02"), Some(2));
        assert_eq!(seconds("1:02:03"), Some(3723));
        assert_eq!(seconds("3-02:00:00"), Some(3 * 86_400 + 7200));
        assert_eq!(seconds("UNLIMITED"), None);
        assert_eq!(seconds("INVALID"), None);
        assert_eq!(seconds(""), None);
    }

    #[test]
    fn gpus_from_allocated_tres() {
        assert_eq!(gpus_of_tres("cpu=1,node=1,billing=1"), Some(0));
        assert_eq!(
            gpus_of_tres("cpu=64,mem=500G,node=2,billing=64,gres/gpu=16"),
            Some(16)
        );
        assert_eq!(
            gpus_of_tres("cpu=8,gres/gpu:h100=4,gres/gpu:a100=2"),
            Some(6)
        );
        assert_eq!(gpus_of_tres("gres/gpu=8,gres/gpu:h100=8"), Some(8));
    }

    #[test]
    fn a_line_per_job_filed_under_the_fleets_nodes() {
        let inv = Inventory::parse(
            "t.toml",
            "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-03]\"\n",
        )
        .unwrap();
        let text = "4242|alice|acme|batch|gpu[01-02],other9|cpu=128,node=2,gres/gpu=16|3-02:00:00|UNLIMITED|RUNNING|\n\
                    17|bob|(null)|debug|gpu03|cpu=1|0:05|9:55|COMPLETING|\n\
                    garbage\n";
        let mut w = Workload::default();
        parse(&inv, text, &mut w);
        let gpu01 = inv.find_node("gpu01").unwrap();
        let gpu02 = inv.find_node("gpu02").unwrap();
        let gpu03 = inv.find_node("gpu03").unwrap();
        assert_eq!(
            w.jobs(gpu01)[0].describe(),
            "4242 alice (acme) 16 GPUs 3d2h"
        );
        assert_eq!(w.jobs(gpu02)[0].id, "4242");
        assert_eq!(w.jobs(gpu03)[0].tenant, None);
        assert_eq!(w.jobs(gpu03)[0].left_s, Some(595));
        assert_eq!(w.on(&[gpu01, gpu02, gpu03]).len(), 2);
        assert_eq!(
            w.hits(&[gpu01, gpu02], 3).as_deref(),
            Some("1 job: 4242 alice (acme) 16 GPUs 3d2h, perhaps more (squeue: 1 line not understood (first: line 3))")
        );
        assert_eq!(
            w.problems,
            ["squeue: 1 line not understood (first: line 3)"]
        );
    }

    #[test]
    fn a_field_holding_the_separator_is_not_understood_never_none() {
        let inv = Inventory::parse(
            "t.toml",
            "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-03]\"\n",
        )
        .unwrap();
        // squeue prints an account `ac|me` as it is: one separator too many, every later field shifted.
        let text = "4242|alice|ac|me|batch|gpu01|cpu=1,node=1,billing=1|0:07|UNLIMITED|RUNNING|\n\
                    17|bob|acme|debug|gpu03|cpu=1|0:05|9:55|COMPLETING|\n";
        let mut w = Workload::default();
        parse(&inv, text, &mut w);
        let gpu01 = inv.find_node("gpu01").unwrap();
        let gpu03 = inv.find_node("gpu03").unwrap();
        assert_eq!(
            w.problems,
            ["squeue: 1 line not understood (first: line 1)"]
        );
        assert!(w.incomplete());
        assert_eq!(
            w.hits(&[gpu01], 3).as_deref(),
            Some("jobs unknown (squeue: 1 line not understood (first: line 1))")
        );
        assert_eq!(
            w.hits(&[gpu03], 3).as_deref(),
            Some("1 job: 17 bob (acme) 0 GPUs 5s, perhaps more (squeue: 1 line not understood (first: line 1))")
        );
        // A line missing its last separator is cut short: not understood either.
        let mut short = Workload::default();
        parse(
            &inv,
            "17|bob|acme|debug|gpu03|cpu=1|0:05|9:55|COMPLETING\n",
            &mut short,
        );
        assert!(short.incomplete() && short.jobs(gpu03).is_empty());
    }
}
