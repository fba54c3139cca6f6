//! The `fleetop` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = fleetop::cli::Cli::parse();
    let code = fleetop::app::run(cli);
    // Node workers may still sit in blocking SSH reads; exiting the process ends them.
    std::process::exit(code);
}
