//! The workflow's loop: each pass moves every node through the steps it can take now, then sleeps until the next
//! look (every second while a node is rebooting), until every node finished or it is asked to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::steps::{drain, reboot, undrain, wait_back, wait_jobs};
use super::workflow::{Context, Event, Step, Workflow};
use super::{reset, validate};

/// How often a node that was asked to reboot is looked at until it has been seen down.
const REBOOT_LOOK: Duration = Duration::from_secs(1);

/// Runs the workflow until every node finished or `stop` is set, saving after every change. `Err`: it cannot go
/// on safely (the audit log or the state file cannot be written); the saved state says where it stopped.
pub fn run(
    ctx: &Context,
    wf: &mut Workflow,
    save: &mut dyn FnMut(&Workflow) -> Result<(), String>,
    report: &mut dyn FnMut(Event),
) -> Result<(), String> {
    let Some(runtime) = crate::runtime::runtime() else {
        return Err("cannot start the runtime for node probes".into());
    };
    let mut last_jobs: Vec<String> = vec![String::new(); wf.nodes.len()];
    save(wf)?;
    while !wf.finished() {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Ctrl-C stops between steps: the command of the step in progress finishes and its result is saved.
        macro_rules! then_stop_if_asked {
            ($step:expr) => {
                $step?;
                if ctx.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            };
        }
        then_stop_if_asked!(drain(ctx, wf, save, report));
        then_stop_if_asked!(wait_jobs(ctx, wf, &mut last_jobs, save, report));
        then_stop_if_asked!(reset::reset(ctx, wf, save, report));
        then_stop_if_asked!(reboot(ctx, wf, save, report));
        then_stop_if_asked!(wait_back(ctx, &runtime, wf, save, report));
        then_stop_if_asked!(validate::validate(ctx, wf, save, report));
        undrain(ctx, wf, save, report)?;
        if wf.finished() {
            break;
        }
        // A node that is rebooting is looked at every second whatever the poll: a quick reboot must not fall
        // between two looks, or it is never seen going down.
        let rebooting = wf.nodes.iter().any(|n| {
            matches!(
                n.step,
                Step::WaitBack {
                    went_down: false,
                    ..
                }
            )
        });
        let poll = Duration::from_millis(wf.poll_ms.max(100));
        sleep(
            ctx.stop,
            if rebooting {
                poll.min(REBOOT_LOOK)
            } else {
                poll
            },
        );
    }
    Ok(())
}

fn sleep(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}
