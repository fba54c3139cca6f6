//! The command layer behind `main.rs`: one module per subcommand; this one dispatches (`load.rs` loads the
//! inventory and picks the transport). Nothing below `cmd/` imports it.

mod actions;
mod agent;
mod check;
mod deploy;
mod docs;
mod history;
mod live;
mod load;
mod repair;
mod snapshot;

use std::io::IsTerminal;

use load::load_inventory;

use crate::actions::ActionKind;
use crate::cli::{Cli, Command};
use crate::inventory::Inventory;
use crate::runtime::{init_tracing, raise_fd_limit};

/// Runs the command; its exit status is 3 when its output could not be written.
pub fn run(cli: Cli) -> i32 {
    crate::runtime::exit_status(dispatch(cli))
}

fn dispatch(cli: Cli) -> i32 {
    let interactive = cli.command.is_none()
        && cli.bench_render.is_none()
        && cli.bench_memory.is_none()
        && std::io::stdout().is_terminal();
    init_tracing(interactive);
    raise_fd_limit();
    if let Some(frames) = cli.bench_render {
        // The demo fleet, or the one `--inventory` names (simulated the same way).
        let inventory = if cli.global.inventory.is_some() {
            match load_inventory(&cli.global) {
                Ok(i) => i,
                Err(e) => {
                    crate::text::warn(&e);
                    return crate::runtime::EXIT_CANNOT_RUN;
                }
            }
        } else {
            Inventory::demo()
        };
        crate::text::print(&crate::tui::bench::run(frames, inventory));
        return 0;
    }
    if let Some(secs) = cli.bench_memory {
        crate::text::print(&crate::tui::bench::memory(secs));
        return 0;
    }
    match cli.command {
        Some(Command::Agent(a)) => agent::run(a),
        Some(Command::Check) => check::run(&cli.global),
        Some(Command::Snapshot(args)) => snapshot::run(&cli.global, &args),
        Some(Command::Drain(args)) => actions::run(&cli.global, ActionKind::Drain, &args, None),
        Some(Command::Undrain(args)) => actions::run(&cli.global, ActionKind::Undrain, &args, None),
        Some(Command::Reboot(args)) => actions::run(&cli.global, ActionKind::Reboot, &args, None),
        Some(Command::Reset(args)) => {
            actions::run(&cli.global, ActionKind::Reset, &args.action, args.gpu)
        }
        Some(Command::Deploy(args)) => deploy::run(&cli.global, &args),
        Some(Command::Repair(args)) => repair::run(&cli.global, &args),
        Some(Command::History(args)) => history::run(&cli.global, &args),
        Some(Command::Completions { shell }) => docs::completions(shell),
        Some(Command::Manpage { dir }) => docs::manpage(dir.as_deref()),
        None => live::run(&cli.global, interactive),
    }
}
