//! `--bench-render N`, `--bench-memory SECS` and `--bench-follow SECS`, the in-process parts of
//! `scripts/bench-fleet`, in a build with `--features bench`; without it they do not exist and nothing here runs.

use crate::cli::Cli;

#[cfg(feature = "bench")]
mod follow;

/// Whether the command line asks for a benchmark (which never opens the terminal).
#[cfg(feature = "bench")]
pub(super) fn asked(cli: &Cli) -> bool {
    cli.bench_render.is_some() || cli.bench_memory.is_some() || cli.bench_follow.is_some()
}

#[cfg(not(feature = "bench"))]
pub(super) fn asked(_: &Cli) -> bool {
    false
}

/// Runs the benchmark the command line asks for: its exit status, or `None` when it asks for none.
#[cfg(feature = "bench")]
pub(super) fn run(cli: &Cli) -> Option<i32> {
    use crate::inventory::Inventory;
    if let Some(frames) = cli.bench_render {
        // The demo fleet, or the one `--inventory` names (simulated the same way).
        let inventory = if cli.global.inventory.is_some() {
            match super::load::load_inventory(&cli.global) {
                Ok(i) => i,
                Err(e) => {
                    crate::text::warn(&e);
                    return Some(crate::runtime::EXIT_CANNOT_RUN);
                }
            }
        } else {
            Inventory::demo()
        };
        crate::text::print(&crate::tui::bench::run(frames, inventory));
        return Some(0);
    }
    if let Some(secs) = cli.bench_follow {
        crate::text::print(&follow::run(secs));
        return Some(0);
    }
    let secs = cli.bench_memory?;
    crate::text::print(&crate::tui::bench::memory(secs));
    Some(0)
}

#[cfg(not(feature = "bench"))]
pub(super) fn run(_: &Cli) -> Option<i32> {
    None
}
