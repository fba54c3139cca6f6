//! Validation before return: once a repaired node is back and healthy, a command (`[repair] validate`, by
//! default DCGM's quick diagnostic `dcgmi diag -r 1` where `dcgmi` is installed) runs on it over SSH with its
//! own time limit. Exit 0 lets the node go back to service; anything else, a timeout included, keeps it drained
//! with the first line of what the validation said.

use std::time::Duration;

use super::act::{nodes_in, set};
use super::audited::{audit_intent, audit_outcome};
use super::steps::stay_drained;
use super::workflow::{Context, Event, Step, Workflow};
use crate::actions::audit::Ending as AuditEnding;
use crate::actions::exec::Executor;
use crate::inventory::{NodeId, Validate, DCGMI_DIAG};
use crate::transport::{Completed, Ending};

/// Output of a validation kept in the repair's state and the audit log.
const KEEP_CHARS: usize = 4000;
/// The first line as the drain reason carries it.
const FIRST_LINE_CHARS: usize = 200;
/// How long asking the node whether `dcgmi` is installed may take.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// What validation the inventory asks of a node: the command, or `None` (the dry run says "no validation
/// configured"). `Err`: the node could not be asked whether `dcgmi` is there.
pub(crate) fn command_for(
    ctx_exec: &Executor,
    inv: &crate::inventory::Inventory,
    node: NodeId,
) -> Result<Option<String>, String> {
    match &inv.actions.repair.validate {
        Validate::Off => Ok(None),
        Validate::Command(c) => Ok(Some(c.clone())),
        Validate::DcgmiWhereInstalled => {
            if matches!(ctx_exec, Executor::Simulated(_)) {
                return Ok(None);
            }
            let done = ctx_exec.on_node(inv, node, "command -v dcgmi", PROBE_LIMIT)?;
            // Only the shell's own answer "no such command" means dcgmi is not there; a look that timed out,
            // dropped or was killed says nothing, and must not let a node go back unvalidated.
            match done.ending {
                Ending::Exited(0) => Ok(Some(DCGMI_DIAG.to_string())),
                Ending::Exited(_) => Ok(None),
                Ending::TimedOut(limit) => Err(format!(
                    "could not ask whether dcgmi is installed: no answer within {} s",
                    limit.as_secs()
                )),
                Ending::Dropped(why) | Ending::Signalled(why) => Err(format!(
                    "could not ask whether dcgmi is installed: {}",
                    crate::text::escape(&why)
                )),
            }
        }
    }
}

/// The validation as the inventory sets it, without asking the nodes: for the confirm dialog.
pub fn describe(inv: &crate::inventory::Inventory) -> String {
    match &inv.actions.repair.validate {
        Validate::Off => "no validation configured".into(),
        Validate::Command(c) => format!("validate on each node: {}", crate::text::escape(c)),
        Validate::DcgmiWhereInstalled => {
            format!("validate on each node: {DCGMI_DIAG} where dcgmi is installed, else no validation configured")
        }
    }
}

/// The validation step: every node standing at `Validate` is validated, then undrained or kept drained.
pub(super) fn validate(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let ready = nodes_in(ctx, wf, |s| *s == Step::Validate);
    for (i, id) in ready {
        if matches!(ctx.exec, Executor::Simulated(_)) {
            let note = "validation simulated (--demo): nothing was run".to_string();
            set(wf, i, Step::Undrain, note, report);
            save(wf)?;
            continue;
        }
        let command = match command_for(ctx.exec, ctx.inv, id) {
            Ok(Some(c)) => c,
            Ok(None) => {
                set(
                    wf,
                    i,
                    Step::Undrain,
                    "no validation configured".into(),
                    report,
                );
                save(wf)?;
                continue;
            }
            Err(e) => {
                stay_drained(
                    ctx,
                    wf,
                    i,
                    id,
                    &format!("cannot tell whether dcgmi is installed: {e}"),
                    report,
                )?;
                save(wf)?;
                continue;
            }
        };
        let limit = ctx.inv.actions.repair.validate_timeout;
        let audit_id = audit_intent(ctx, wf, id, "repair-validate", &command)?;
        let started = std::time::Instant::now();
        let (ok, exit_status, output, first) = match ctx.exec.on_node(ctx.inv, id, &command, limit)
        {
            Ok(done) => judge(&done, limit),
            Err(e) => (false, None, e.clone(), e),
        };
        let output = bounded(&output);
        audit_outcome(
            ctx,
            wf,
            id,
            &audit_id,
            "repair-validate",
            &command,
            AuditEnding {
                ok,
                exit_status,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                detail: output.clone(),
            },
        )?;
        wf.nodes[i].validation = Some(output);
        if ok {
            set(
                wf,
                i,
                Step::Undrain,
                format!("validation passed ({command})"),
                report,
            );
        } else {
            stay_drained(
                ctx,
                wf,
                i,
                id,
                &format!("validation failed: {first}"),
                report,
            )?;
        }
        save(wf)?;
    }
    Ok(())
}

/// Passed only on exit status 0; a timeout, a signal or a dropped connection is a failure, never a pass.
/// Returns (passed, exit status, output, first line).
fn judge(done: &Completed, limit: Duration) -> (bool, Option<i32>, String, String) {
    let output = format!("{}{}", done.stdout, done.stderr);
    let first_output = first_line(&output);
    match &done.ending {
        Ending::Exited(0) => (true, Some(0), output, first_output),
        Ending::Exited(code) => {
            let first = if first_output.is_empty() {
                format!("exit status {code}")
            } else {
                first_output
            };
            (false, Some(*code), output, first)
        }
        Ending::TimedOut(_) => (
            false,
            None,
            output,
            format!("no result within {}", humantime::format_duration(limit)),
        ),
        Ending::Signalled(s) => (false, None, output, format!("killed by signal {s}")),
        Ending::Dropped(why) => (false, None, output, format!("connection lost ({why})")),
    }
}

/// The first non-blank line, escaped for a terminal and a scheduler's reason, cut to a length a reason holds.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let escaped = crate::text::escape(line);
    match escaped.char_indices().nth(FIRST_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped.into_owned(),
    }
}

/// The output's last [`KEEP_CHARS`] characters, escaped (line breaks kept).
fn bounded(text: &str) -> String {
    let t = text.trim();
    let start = t.char_indices().rev().nth(KEEP_CHARS).map_or(0, |(i, _)| i);
    crate::text::escape_lines(&t[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(ending: Ending, stdout: &str) -> Completed {
        Completed {
            ending,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn only_exit_zero_passes_and_the_first_line_is_escaped() {
        let limit = Duration::from_secs(600);
        assert!(judge(&done(Ending::Exited(0), "Pass\n"), limit).0);
        let (ok, code, _, first) = judge(
            &done(Ending::Exited(226), "\n  Memory \x1b[31mFail\nmore\n"),
            limit,
        );
        assert_eq!((ok, code), (false, Some(226)));
        assert!(!first.contains('\x1b'), "{first:?}");
        assert!(first.starts_with("Memory "), "{first:?}");
        let (ok, _, _, first) = judge(&done(Ending::TimedOut(limit), ""), limit);
        assert!(!ok);
        assert_eq!(first, "no result within 10m");
        assert_eq!(
            judge(&done(Ending::Exited(3), ""), limit).3,
            "exit status 3"
        );
        let long = "x".repeat(5000);
        assert_eq!(first_line(&long).chars().count(), FIRST_LINE_CHARS + 1);
        assert_eq!(bounded(&long).chars().count(), KEEP_CHARS + 1);
    }
}
