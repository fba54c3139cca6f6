//! The `fleetop` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = match fleetop::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error means "could not run" (3): clap's own 2 reads as CRITICAL to a monitoring system.
            std::process::exit(if e.use_stderr() {
                fleetop::runtime::EXIT_CANNOT_RUN
            } else {
                0
            });
        }
    };
    let code = fleetop::cmd::run(cli);
    // Node workers may still sit in blocking SSH reads; exiting the process ends them.
    std::process::exit(code);
}
