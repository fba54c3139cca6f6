//! The command layer behind `main.rs`: one module per subcommand; this one dispatches, loads the inventory
//! and picks the transport. Nothing below `cmd/` imports it.

mod actions;
mod agent;
mod check;
mod deploy;
mod docs;
mod history;
mod live;
mod record;
mod repair;
mod report;
mod snapshot;

use std::io::IsTerminal;
use std::sync::Arc;

use crate::actions::ActionKind;
use crate::cli::{Cli, Command, Global};
use crate::inventory::{self, Inventory};
use crate::runtime::{init_tracing, raise_fd_limit};
use crate::transport::prometheus::PrometheusTransport;
use crate::transport::sim::SimTransport;
use crate::transport::ssh::SshTransport;
use crate::transport::Transport;

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
        Some(Command::Record(args)) => record::run(&cli.global, &args),
        Some(Command::Report(args)) => report::run(&cli.global, &args),
        Some(Command::Completions { shell }) => docs::completions(shell),
        Some(Command::Manpage { dir }) => docs::manpage(dir.as_deref()),
        None => live::run(&cli.global, interactive, cli.at.as_deref(), cli.speed),
    }
}

/// The inventory chosen by `--demo`, `--inventory` or the default search path.
pub(crate) fn load_inventory(g: &Global) -> Result<Inventory, String> {
    // A bad `--source` is a usage error with `--demo` too, not silently ignored.
    if let Some(source) = &g.source {
        source_override(source, None)?;
    }
    if g.demo {
        return Ok(Inventory::demo());
    }
    let path = g
        .inventory
        .clone()
        .or_else(inventory::default_path)
        .ok_or_else(|| {
            "no inventory: pass --inventory FILE, set $FLEETOP_INVENTORY, create ./inventory.toml \
         or $XDG_CONFIG_HOME/fleetop/inventory.toml — or try the simulated fleet with --demo"
                .to_string()
        })?;
    let mut inv = Inventory::load(&path).map_err(|e| e.to_string())?;
    if let Some(source) = &g.source {
        inv.prometheus = source_override(source, inv.prometheus.take())?;
    }
    Ok(inv)
}

/// `--source prometheus=URL` (keeping the inventory's other `[source]` settings) or `--source ssh`.
fn source_override(
    text: &str,
    inventory: Option<inventory::PrometheusSource>,
) -> Result<Option<inventory::PrometheusSource>, String> {
    match text.split_once('=') {
        None if text == "ssh" => Ok(None),
        Some(("prometheus", url)) if url.starts_with("http://") || url.starts_with("https://") => {
            let mut source = inventory.unwrap_or_else(|| inventory::PrometheusSource::at(url));
            source.url = url.trim_end_matches('/').to_string();
            Ok(Some(source))
        }
        _ => Err(format!(
            "--source: expected prometheus=http(s)://HOST:PORT or ssh, got {:?}",
            crate::text::escape(text)
        )),
    }
}

/// The inventory and the transport that reaches it: simulated for `--demo`, SSH otherwise; `one_pass`
/// asks each node for a single sample (snapshots) instead of following it.
pub(crate) fn prepare(
    g: &Global,
    one_pass: bool,
) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let inv = Arc::new(load_inventory(g)?);
    let transport: Box<dyn Transport> = if g.demo {
        Box::new(SimTransport::default())
    } else if let Some(source) = &inv.prometheus {
        let p = PrometheusTransport::new(source.clone());
        Box::new(if one_pass { p.one_pass() } else { p })
    } else {
        let ssh = SshTransport::new(&inv).map_err(|e| e.to_string())?;
        Box::new(if one_pass { ssh.one_pass() } else { ssh })
    };
    Ok((inv, transport))
}
