//! The terminal the TUI draws on, for the live loop and the replay alike: opened with mouse capture and restored
//! on exit, error and panic, and the one thread that reads its input (held off while a shell owns it).

use std::io::stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::UnboundedReceiver;

use super::shell::InputPause;

/// Restores the terminal when dropped, whatever path leaves the TUI.
pub(super) struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// The terminal in raw mode with mouse capture, and the guard that restores it; `None` (said on stderr) where
/// it cannot be opened. A panic releases the mouse before its message is printed.
pub(super) fn open() -> Option<(DefaultTerminal, TerminalGuard)> {
    let terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            crate::text::warn(&format!("cannot open the terminal: {e}"));
            return None;
        }
    };
    let guard = TerminalGuard;
    let panic_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableMouseCapture);
        panic_hook(info);
    }));
    let _ = execute!(stdout(), EnableMouseCapture);
    Some((terminal, guard))
}

/// The input thread: dropping it stops the thread and waits for it, so a key typed after the TUI's loop ends
/// (`:ctx` starts the next one) is left for whoever reads next.
pub(super) struct InputReader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for InputReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads the terminal's input events on a thread of its own until the receiver or the [`InputReader`] goes away,
/// except while `pause` says a shell owns the terminal: then nothing may read its keys.
pub(super) fn read_input(pause: InputPause) -> (UnboundedReceiver<Event>, InputReader) {
    let (input_tx, input) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            if pause.paused.load(Ordering::SeqCst) {
                pause.idle.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            pause.idle.store(false, Ordering::SeqCst);
            match event::poll(Duration::from_millis(50)) {
                Ok(true) if stopped.load(Ordering::SeqCst) => break,
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if input_tx.send(ev).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        });
    let thread = match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::error!("cannot start the input thread: {e}");
            None
        }
    };
    (input, InputReader { stop, thread })
}
