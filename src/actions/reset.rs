//! GPU reset (`fleetop reset NODESET [--gpu N]`): the command, the guard on the processes a fresh look at the
//! node reports, and the judgement of the look taken after it.
//!
//! Source: nvidia-smi(1), `-r, --gpu-reset`: "There can't be any applications using these devices … There also
//! can't be any compute applications running on any other GPU in the system if individual GPU reset is not
//! feasible." Whether one GPU can be reset alone is the driver's call: on NVSwitch systems an Ampere-or-later GPU
//! can be reset individually while Fabric Manager runs, otherwise "all PEER connected GPUs must be reset in same
//! command", and "if the -i option does not specify a complete set of NVLink GPUs to reset, this command will
//! issue an error identifying the additional GPUs that must be included". fleetop therefore runs exactly what was
//! asked (`-r -i N`, or `-r` for every GPU: `plan::reset_argv`), never widens it by itself, and reports that error in the node's
//! words; and because a reset may have to take the node's other GPUs along, one GPU's reset is refused while a
//! process holds any GPU of the node. The same page: "Following a reset, it is recommended that the health of
//! each reset GPU be verified before further use": hence the fresh look afterwards.

use super::exec::{Executor, Ran};
use super::probe::Look;
use super::request::Request;
use crate::inventory::{Inventory, NodeId};
use crate::telemetry::{GpuErrorKind, GpuSample, RecoveryAction};

/// The reset's GPUs as words: "GPU 3", "every GPU".
pub fn scope(gpu: Option<u32>) -> String {
    gpu.map_or_else(|| "every GPU".into(), |g| format!("GPU {g}"))
}

/// Refusals from a fresh look at each node, taken just before: the GPU must exist, and no process may hold any
/// GPU of the node (see the module's source). An unknown process list (nvidia-smi, an older agent) refuses
/// unless forced; a known process always refuses.
pub(crate) fn guard(inv: &Inventory, req: &Request, exec: &Executor) -> Vec<String> {
    let looks = match exec.look(inv, &req.nodes) {
        Ok(l) => l,
        Err(e) => return vec![format!("cannot take a fresh look at the nodes: {e}")],
    };
    req.nodes
        .iter()
        .zip(looks)
        .filter_map(|(&n, look)| refusal(inv, n, req, &look))
        .collect()
}

fn refusal(inv: &Inventory, node: NodeId, req: &Request, look: &Look) -> Option<String> {
    let name = &inv.nodes[node].name;
    let Some(sample) = look.sample.as_ref().filter(|_| look.up) else {
        return Some(format!(
            "{name}: no fresh sample to check for processes ({})",
            crate::text::escape(&look.said)
        ));
    };
    if let Some(g) = req.gpu {
        if !sample.gpus.iter().any(|s| s.index == g) {
            let seen: Vec<String> = sample.gpus.iter().map(|s| s.index.to_string()).collect();
            return Some(format!(
                "{name}: no GPU {g} (the node reports GPUs {})",
                seen.join(",")
            ));
        }
    }
    let mut held = Vec::new();
    let mut unknown = Vec::new();
    for gpu in &sample.gpus {
        match &gpu.processes {
            Some(p) if !p.is_empty() => {
                let pids: Vec<String> = p.iter().map(|p| p.pid.to_string()).collect();
                held.push(format!("GPU {} (pid {})", gpu.index, pids.join(",")));
            }
            Some(_) => {}
            None => unknown.push(gpu.index.to_string()),
        }
    }
    if !held.is_empty() {
        return Some(format!(
            "{name}: processes hold {}; a reset needs every GPU of the node idle",
            held.join(", ")
        ));
    }
    if !unknown.is_empty() && !req.force {
        return Some(format!(
            "{name}: cannot tell whether a process holds GPU {} (the node reports no process list); override with --force on the command line",
            unknown.join(",")
        ));
    }
    None
}

/// A reset is ok only when the command exited 0 and a fresh look afterwards shows each reset GPU answering
/// without an error, with recovery action NONE (or none reported: drivers before R565). Anything else fails,
/// in the node's words.
pub(crate) fn confirm(
    inv: &Inventory,
    node: NodeId,
    gpu: Option<u32>,
    exec: &Executor,
    mut ran: Ran,
) -> Ran {
    let started = std::time::Instant::now();
    let verdict = match exec.look(inv, &[node]) {
        Ok(looks) => match looks.into_iter().next() {
            Some(look) => judge(&look, gpu).and_then(|how| {
                every_gpu_back(&look, gpu, inv.nodes[node].expected_gpus).map(|()| how)
            }),
            None => Err("no look at the node after the reset".into()),
        },
        Err(e) => Err(format!("cannot take a fresh look after the reset: {e}")),
    };
    let said = ran.detail.trim().to_string();
    match verdict {
        Ok(how) => ran.detail = join(&said, &how),
        Err(why) => {
            ran.ok = false;
            ran.detail = join(&said, &format!("the reset command exited 0 but {why}"));
        }
    }
    ran.duration += started.elapsed();
    ran
}

/// A reset of every GPU took only when every GPU the node should have answered afterwards: one that fell off the
/// bus is missing from the sample, not judged there.
fn every_gpu_back(look: &Look, gpu: Option<u32>, expected: u32) -> Result<(), String> {
    let seen = look.sample.as_ref().map_or(0, |s| s.gpus.len());
    if gpu.is_none() && seen < expected as usize {
        return Err(format!(
            "only {seen} of the node's {expected} GPUs answered afterwards"
        ));
    }
    Ok(())
}

fn join(said: &str, note: &str) -> String {
    if said.is_empty() {
        note.to_string()
    } else {
        format!("{said}; {note}")
    }
}

/// The look after a reset: `Ok` says how the GPUs answered, `Err` why the reset did not take.
pub fn judge(look: &Look, gpu: Option<u32>) -> Result<String, String> {
    let Some(sample) = look.sample.as_ref().filter(|_| look.up) else {
        return Err(format!(
            "the node did not answer afterwards ({})",
            look.said
        ));
    };
    let reset: Vec<&GpuSample> = sample
        .gpus
        .iter()
        .filter(|s| gpu.is_none_or(|g| s.index == g))
        .collect();
    if reset.is_empty() {
        return Err(format!(
            "{} is missing from the sample afterwards",
            scope(gpu)
        ));
    }
    let mut problems = Vec::new();
    for g in &reset {
        // An implausible value is noted, not a fault (as the health rules read it).
        for e in g
            .errors
            .iter()
            .filter(|e| e.kind != GpuErrorKind::Implausible)
        {
            problems.push(format!("GPU {}: {}: {}", g.index, e.query, e.detail));
        }
        if let Some(raw) = g.recovery_action {
            let action = RecoveryAction::from_raw(raw);
            if action != RecoveryAction::None {
                problems.push(format!(
                    "GPU {}: the driver still asks for {}",
                    g.index,
                    action.name()
                ));
            }
        }
    }
    if problems.is_empty() {
        let reported = reset.iter().any(|g| g.recovery_action.is_some());
        Ok(format!(
            "{} answering without error afterwards{}",
            scope(gpu),
            if reported {
                ", recovery action none"
            } else {
                ""
            }
        ))
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{GpuError, NodeSample};

    fn look(gpus: Vec<GpuSample>) -> Look {
        Look {
            answering: true,
            up: true,
            said: "up".into(),
            sample: Some(NodeSample {
                gpus,
                ..Default::default()
            }),
        }
    }

    fn gpu(index: u32, recovery_action: Option<u32>, errors: Vec<GpuError>) -> GpuSample {
        GpuSample {
            index,
            recovery_action,
            errors,
            ..Default::default()
        }
    }

    fn error(kind: GpuErrorKind, detail: &str) -> GpuError {
        GpuError {
            kind,
            query: "temperature".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn a_reset_takes_when_the_gpus_answer_cleanly_with_no_action_or_none_reported() {
        // R550 reports no recovery action: answering without error is enough.
        assert!(judge(
            &look(vec![gpu(0, None, vec![]), gpu(1, None, vec![])]),
            None
        )
        .is_ok());
        assert!(
            every_gpu_back(&look(vec![gpu(0, Some(0), vec![])]), None, 2)
                .unwrap_err()
                .contains("only 1 of the node's 2 GPUs answered")
        );
        assert!(every_gpu_back(&look(vec![gpu(0, Some(0), vec![])]), Some(0), 2).is_ok());
        assert!(judge(&look(vec![gpu(3, Some(0), vec![])]), Some(3))
            .unwrap()
            .contains("recovery action none"));
        // Another GPU's fault is not this reset's business.
        let other = gpu(
            4,
            Some(2),
            vec![error(GpuErrorKind::Lost, "NVML: GPU is lost")],
        );
        assert!(judge(&look(vec![gpu(3, Some(0), vec![]), other]), Some(3)).is_ok());
        // An implausible value is noted, not a fault.
        let odd = gpu(3, None, vec![error(GpuErrorKind::Implausible, "250")]);
        assert!(judge(&look(vec![odd]), Some(3)).is_ok());
    }

    #[test]
    fn a_reset_fails_on_an_error_a_recovery_action_a_missing_gpu_or_a_silent_node() {
        let lost = gpu(
            3,
            None,
            vec![error(GpuErrorKind::Lost, "NVML: GPU is lost")],
        );
        assert!(judge(&look(vec![lost]), Some(3))
            .unwrap_err()
            .contains("GPU 3: temperature: NVML: GPU is lost"));
        for (raw, name) in [(1, "gpu_reset"), (2, "node_reboot"), (4, "drain_and_reset")] {
            let why = judge(&look(vec![gpu(0, Some(raw), vec![])]), None).unwrap_err();
            assert!(why.contains(&format!("still asks for {name}")), "{why}");
        }
        assert!(judge(&look(vec![gpu(0, None, vec![])]), Some(5))
            .unwrap_err()
            .contains("GPU 5 is missing"));
        let silent = Look {
            answering: false,
            up: false,
            said: "unreachable".into(),
            sample: None,
        };
        assert!(judge(&silent, None).unwrap_err().contains("did not answer"));
    }
}
