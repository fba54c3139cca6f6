//! The command layer behind `main.rs`: one module per subcommand; this one dispatches (`load.rs` loads the
//! inventory and picks the transport). Nothing below `cmd/` imports it.

mod actions;
mod agent;
mod bench;
mod check;
mod deploy;
mod docs;
mod history;
mod live;
mod load;
mod record;
mod repair;
mod replayed;
mod report;
mod rma;
mod snapshot;

use std::io::IsTerminal;

use crate::actions::ActionKind;
use crate::cli::{Cli, Command};
use crate::runtime::{init_tracing, raise_fd_limit};

/// Runs the command; its exit status is 3 when its output could not be written.
pub fn run(cli: Cli) -> i32 {
    crate::runtime::exit_status(dispatch(cli))
}

fn dispatch(cli: Cli) -> i32 {
    let interactive =
        cli.command.is_none() && !bench::asked(&cli) && std::io::stdout().is_terminal();
    init_tracing(interactive);
    raise_fd_limit();
    if let Some(status) = bench::run(&cli) {
        return status;
    }
    if cli.global.replay.is_some()
        && !matches!(
            cli.command,
            None | Some(Command::Snapshot(_)) | Some(Command::Report(_))
        )
    {
        crate::text::warn(
            "--replay: only the TUI (no subcommand), snapshot and report read a recording",
        );
        return crate::runtime::EXIT_CANNOT_RUN;
    }
    if cli.global.replay.is_some()
        && load::every_site_chosen(&cli.global)
        && !matches!(cli.command, Some(Command::Snapshot(_)))
    {
        crate::text::warn(
            "--replay with --context all: snapshot reads every site's recording (DIR/SITE/); the TUI and \
             report read one site's, under its own context (--context SITE --replay DIR/SITE)",
        );
        return crate::runtime::EXIT_CANNOT_RUN;
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
        Some(Command::Rma(args)) => rma::run(&cli.global, &args),
        Some(Command::Record(args)) => record::run(&cli.global, &args),
        Some(Command::Report(args)) => report::run(&cli.global, &args),
        Some(Command::Completions { shell }) => docs::completions(shell),
        Some(Command::Manpage { dir }) => docs::manpage(dir.as_deref()),
        None => live::run(&cli.global, interactive, cli.at.as_deref(), cli.speed),
    }
}
