//! The interactive TUI: one task owns the `App`, merges transport messages and input, and draws at most
//! ten times a second, only when something changed. The terminal is restored on exit, error and panic.

pub mod app;
pub mod bench;
pub mod config;
pub mod keymap;
pub mod theme;
pub mod ui;

use std::io::stdout;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;

use crate::inventory::Inventory;
use crate::transport::Transport;
use app::App;
use keymap::Keymap;
use theme::Theme;

/// Frames are drawn at most this often (10 fps), and only when state changed.
const FRAME: Duration = Duration::from_millis(100);

/// Restores the terminal when dropped, whatever path leaves the TUI.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

pub fn run(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    theme: Theme,
    keymap: Keymap,
) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return crate::app::EXIT_CANNOT_RUN;
        }
    };
    runtime.block_on(event_loop(inventory, transport, theme, keymap))
}

async fn event_loop(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    theme: Theme,
    keymap: Keymap,
) -> i32 {
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let _following = transport.follow(&inventory, tx);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            eprintln!("cannot open the terminal: {e}");
            return crate::app::EXIT_CANNOT_RUN;
        }
    };
    let _guard = TerminalGuard;
    let panic_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableMouseCapture);
        panic_hook(info);
    }));
    let _ = execute!(stdout(), EnableMouseCapture);

    let (input_tx, mut input) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if input_tx.send(ev).is_err() {
                    break;
                }
            }
        })
        .ok();

    let mut app = App::new(inventory, keymap, Instant::now());
    if let Ok(size) = terminal.size() {
        app.viewport = (size.width, size.height);
    }
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !app.quit {
        tokio::select! {
            Some(msg) = messages.recv() => {
                app.on_msg(msg);
                // Merge whatever else is queued before the next frame.
                while let Ok(more) = messages.try_recv() {
                    app.on_msg(more);
                }
            }
            Some(ev) = input.recv() => match ev {
                Event::Key(key) if key.kind != KeyEventKind::Release => app.on_key(key),
                Event::Mouse(mouse) => app.on_mouse(mouse),
                Event::Resize(w, h) => {
                    app.viewport = (w, h);
                    app.dirty = true;
                }
                _ => {}
            },
            _ = frames.tick() => {
                app.tick(Instant::now());
                if app.dirty {
                    if let Err(e) = terminal.draw(|frame| ui::render(&app, &theme, frame)) {
                        tracing::error!("draw failed: {e}");
                        return 1;
                    }
                    app.dirty = false;
                }
            }
        }
    }
    0
}
