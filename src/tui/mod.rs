//! The interactive TUI: one task owns the `App`, merges transport messages and input, and draws at most
//! ten times a second, only when something changed. The terminal is restored on exit, error and panic.

pub mod app;
#[cfg(feature = "bench")]
pub(crate) mod bench;
mod event_loop;
mod history;
pub mod keymap;
pub mod replay;
mod shell;
mod terminal;
pub mod theme;
pub mod ui;

pub use event_loop::{run, Ended, Options, Resume};
