//! `fleetop completions SHELL` and the man pages, both generated from the clap definitions so they never
//! disagree with the parser.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::runtime::EXIT_CANNOT_RUN;

pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fleetop", &mut out);
    print_bytes(&out)
}

/// `fleetop.1` on stdout; with `dir`, also `fleetop-SUBCOMMAND.1` for each visible subcommand, as git does.
pub fn manpage(dir: Option<&Path>) -> i32 {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        return match render(&cmd) {
            Ok(page) => print_bytes(&page),
            Err(e) => cannot(&e),
        };
    };
    let mut pages = vec![("fleetop.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("fleetop-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in pages {
        let written = render(&page).and_then(|bytes| {
            std::fs::write(dir.join(&file), bytes)
                .map_err(|e| format!("{}: {e}", dir.join(&file).display()))
        });
        if let Err(e) = written {
            return cannot(&e);
        }
    }
    0
}

fn render(cmd: &clap::Command) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn cannot(why: &str) -> i32 {
    crate::text::warn(&format!("cannot write the man page: {why}"));
    EXIT_CANNOT_RUN
}

/// Generated text is ours, not a node's: printed as it is. A closed pipe ends it quietly; any other write
/// error makes the exit status 3 (see `runtime::exit_status`).
fn print_bytes(bytes: &[u8]) -> i32 {
    crate::text::print_bytes(bytes);
    0
}
