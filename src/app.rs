//! Entry point behind `main.rs`: loads the inventory, picks the transport and runs the chosen command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Cli, Command, Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::inventory::{self, Inventory};
use crate::snapshot::{self, Report};
use crate::transport::sim::SimTransport;
use crate::transport::ssh::SshTransport;
use crate::transport::Transport;
use crate::{agent, check, live};

/// Exit status when fleetop could not run at all (bad inventory, bad flags).
pub const EXIT_CANNOT_RUN: i32 = 3;

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    init_tracing();
    match cli.command {
        Some(Command::Agent(a)) => agent::run(&agent::AgentOptions {
            interval: Duration::from_millis(a.interval.max(1)),
            once: a.once,
            nvml_lib: a.nvml_lib.map(|p| p.into_os_string()),
        }),
        Some(Command::Check) => match load_inventory(&cli.global) {
            Ok(inv) => {
                print!("{}", check::summary(&inv));
                0
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_CANNOT_RUN
            }
        },
        Some(Command::Snapshot(args)) => run_snapshot(&cli.global, &args),
        None => match prepare(&cli.global) {
            Ok((inv, transport)) => live::run(inv, transport.as_ref()),
            Err(e) => {
                eprintln!("{e}");
                EXIT_CANNOT_RUN
            }
        },
    }
}

/// Logs go to stderr (level from `FLEETOP_LOG`, default warn), never onto the data on stdout.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The inventory chosen by `--demo`, `--inventory` or the default search path.
pub fn load_inventory(g: &Global) -> Result<Inventory, String> {
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
    Inventory::load(&path).map_err(|e| e.to_string())
}

/// The inventory and the transport that reaches it: simulated for `--demo`, SSH otherwise.
pub fn prepare(g: &Global) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let inv = Arc::new(load_inventory(g)?);
    let transport: Box<dyn Transport> = if g.demo {
        Box::new(SimTransport::default())
    } else {
        Box::new(SshTransport::new(&inv).map_err(|e| e.to_string())?)
    };
    Ok((inv, transport))
}

fn run_snapshot(g: &Global, args: &SnapshotArgs) -> i32 {
    let filter = match Filter::parse(args.filter.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("--filter: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        eprintln!(
            "--timeout: {} is not a positive number of seconds",
            args.timeout
        );
        return EXIT_CANNOT_RUN;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let (inv, transport) = match prepare(g) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return EXIT_CANNOT_RUN;
        }
    };
    let state = runtime.block_on(snapshot::collect(inv, transport.as_ref(), timeout));
    let report = Report::new(&state, &filter, Instant::now(), timeout);
    print!("{}", report.render(args.format));
    report.summary.exit_code()
}
