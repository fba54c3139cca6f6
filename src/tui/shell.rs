//! Handing the terminal to an interactive `ssh` on one node and taking it back: the input thread pauses so
//! it reads none of the shell's keys, the screen and raw mode are restored for the shell, and re-entered after.

use std::io::{stdout, BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{enable_raw_mode, EnterAlternateScreen};

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

/// Runs an interactive shell on `node` in this terminal and comes back; `Err` says why it could not run or
/// how ssh failed.
pub(super) fn open(inv: &Inventory, node: NodeId, input: &InputPause) -> Result<(), String> {
    let name = &inv.nodes[node].name;
    let argv = crate::transport::ssh::shell::shell_command(inv, node)
        .map_err(|e| format!("shell on {name}: {e}"))?;
    input.idle.store(false, Ordering::SeqCst);
    input.paused.store(true, Ordering::SeqCst);
    let waited = Instant::now();
    while !input.idle.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
    println!(
        "fleetop: {} (the view comes back when the shell ends)",
        crate::text::escape(&shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default())
    );
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status();
    let outcome = match status {
        Ok(s) if s.code() == Some(SSH_FAILED) => {
            // ssh's own message is on the screen now; the view would cover it.
            print!("fleetop: ssh could not open a shell on {name} (its message is above); press Enter to return ");
            let _ = stdout().flush();
            let _ = std::io::stdin().lock().read_line(&mut String::new());
            Err(format!("shell on {name}: ssh failed (exit {SSH_FAILED})"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("shell on {name}: cannot run ssh: {e}")),
    };
    let _ = enable_raw_mode();
    let _ = execute!(stdout(), EnterAlternateScreen, EnableMouseCapture);
    input.paused.store(false, Ordering::SeqCst);
    outcome
}
