//! The `fleetop` binary: parse the command line and hand over to the library.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use clap::Parser;

fn main() {
    let cli = match fleetop::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A usage error means "could not run" (3): clap's own 2 reads as CRITICAL to a monitoring system.
            if e.use_stderr() {
                let _ = e.print();
                std::process::exit(fleetop::runtime::EXIT_CANNOT_RUN);
            }
            // `--help` and `--version` go to stdout, which may be full like any other output.
            fleetop::text::stdout_written(e.print());
            std::process::exit(fleetop::runtime::exit_status(0));
        }
    };
    let code = fleetop::cmd::run(cli);
    // Node workers may still sit in blocking SSH reads; exiting the process ends them.
    std::process::exit(code);
}
