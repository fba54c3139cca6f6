//! Handing the terminal to an interactive `ssh` on one node and taking it back: the input thread pauses so
//! it reads none of the shell's keys, the screen and raw mode are restored for the shell, and re-entered after.

use std::io::{stdout, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{enable_raw_mode, EnterAlternateScreen};

use tokio::sync::mpsc::UnboundedSender;

use super::app::operate::ActionEvent;
use crate::inventory::{Inventory, NodeId};

/// Tells the input thread to stop reading (`paused`) and shows when it has (`idle`).
#[derive(Debug, Clone, Default)]
pub(super) struct InputPause {
    pub paused: Arc<AtomicBool>,
    pub idle: Arc<AtomicBool>,
}

/// OpenSSH's exit status for its own failures (connection, authentication, host key), as opposed to the
/// remote shell's.
const SSH_FAILED: i32 = 255;

/// Hands the terminal to an interactive shell on `node`, on a thread of its own that reports
/// `ActionEvent::ShellEnded` when the shell is over; the loop then calls [`resume`]. False (and the failure
/// reported the same way) where nothing was started.
pub(super) fn start(
    inv: &Arc<Inventory>,
    node: NodeId,
    input: &InputPause,
    tx: &UnboundedSender<ActionEvent>,
) -> bool {
    let name = inv.nodes[node].name.clone();
    let argv = match crate::transport::ssh::shell::shell_command(inv, node) {
        Ok(argv) => argv,
        Err(e) => {
            let _ = tx.send(ActionEvent::ShellEnded(Err(format!(
                "shell on {name}: {e}"
            ))));
            return false;
        }
    };
    input.idle.store(false, Ordering::SeqCst);
    input.paused.store(true, Ordering::SeqCst);
    let waited = Instant::now();
    while !input.idle.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
    let ended = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("shell".into())
        .spawn(move || {
            let _ = ended.send(ActionEvent::ShellEnded(run(&name, &argv)));
        });
    if let Err(e) = spawned {
        let _ = tx.send(ActionEvent::ShellEnded(Err(format!(
            "shell: no thread: {e}"
        ))));
    }
    true
}

/// Takes the terminal back after the shell: raw mode, the alternate screen, mouse reports, and the keys.
pub(super) fn resume(input: &InputPause) {
    let _ = enable_raw_mode();
    let _ = execute!(stdout(), EnterAlternateScreen, EnableMouseCapture);
    input.paused.store(false, Ordering::SeqCst);
}

/// Runs `argv` in this terminal until it ends; `Err` says how ssh failed.
fn run(name: &str, argv: &[String]) -> Result<(), String> {
    println!(
        "fleetop: {} (the view comes back when the shell ends)",
        crate::text::escape(&shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default())
    );
    let Some((program, args)) = argv.split_first() else {
        return Err(format!("shell on {name}: no command"));
    };
    match std::process::Command::new(program).args(args).status() {
        Ok(s) if s.code() == Some(SSH_FAILED) => {
            // ssh's own message is on the screen now; the view would cover it.
            print!("fleetop: ssh could not open a shell on {name} (its message is above); press Enter to return ");
            let _ = stdout().flush();
            let _ = std::io::stdin().lock().read_line(&mut String::new());
            Err(format!("shell on {name}: ssh failed (exit {SSH_FAILED})"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("shell on {name}: cannot run ssh: {e}")),
    }
}
