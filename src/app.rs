//! Entry point behind `main.rs`: loads the inventory, picks the transport and runs the chosen command.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::actions::ActionKind;
use crate::cli::{Cli, Command, Global, SnapshotArgs};
use crate::fleet::filter::Filter;
use crate::inventory::{self, Inventory};
use crate::snapshot::{self, Report};
use crate::transport::sim::SimTransport;
use crate::transport::ssh::SshTransport;
use crate::transport::Transport;
use crate::tui::config::Config;
use crate::tui::keymap::Keymap;
use crate::tui::theme;
use crate::{agent, check, live, tui};

/// Exit status when fleetop could not run at all (bad inventory, bad flags).
pub const EXIT_CANNOT_RUN: i32 = 3;

/// Runs the command line; returns the process exit status.
/// The single-threaded runtime the commands run on; `None` (after saying why on stderr) if it cannot start.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            crate::text::warn(&format!("cannot start the runtime: {e}"));
            None
        }
    }
}

/// Raises the open-file limit to its hard maximum: one socket per node (two through a jump host) passes
/// the common default of 1,024 on the reference fleet.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("could not raise the open-file limit to {}", limit.rlim_max);
            }
        }
    }
}

pub fn run(cli: Cli) -> i32 {
    let interactive = cli.command.is_none()
        && cli.bench_render.is_none()
        && cli.bench_memory.is_none()
        && std::io::stdout().is_terminal();
    init_tracing(interactive);
    raise_fd_limit();
    if let Some(frames) = cli.bench_render {
        crate::text::print(&crate::tui::bench::run(frames));
        return 0;
    }
    if let Some(secs) = cli.bench_memory {
        crate::text::print(&crate::tui::bench::memory(secs));
        return 0;
    }
    match cli.command {
        Some(Command::Agent(a)) => agent::run(&agent::AgentOptions {
            interval: Duration::from_millis(a.interval.max(1)),
            once: a.once,
            nvml_lib: a.nvml_lib.map(|p| p.into_os_string()),
            kernel_log: a.kernel_log,
        }),
        Some(Command::Check) => match load_inventory(&cli.global) {
            Ok(inv) => {
                crate::text::print(&check::summary(&inv));
                0
            }
            Err(e) => {
                crate::text::warn(&e.to_string());
                EXIT_CANNOT_RUN
            }
        },
        Some(Command::Snapshot(args)) => run_snapshot(&cli.global, &args),
        Some(Command::Drain(args)) => {
            crate::actions_cli::run(&cli.global, ActionKind::Drain, &args)
        }
        Some(Command::Undrain(args)) => {
            crate::actions_cli::run(&cli.global, ActionKind::Undrain, &args)
        }
        Some(Command::Reboot(args)) => {
            crate::actions_cli::run(&cli.global, ActionKind::Reboot, &args)
        }
        None => run_live(&cli.global, interactive),
    }
}

/// The TUI on a terminal; one summary line per interval when stdout is a pipe.
fn run_live(g: &Global, interactive: bool) -> i32 {
    // Everything that can fail on bad input fails here, before the terminal is touched.
    let setup = prepare(g, false).and_then(|(inv, transport)| {
        if !interactive {
            return Ok((inv, transport, None));
        }
        let config = Config::load()?;
        let theme = theme::choose(g.theme.as_deref(), config.theme.as_deref())?;
        let keymap = Keymap::default().with_overrides(&config.key_overrides())?;
        Ok((inv, transport, Some((theme, keymap, config.read_only))))
    });
    match setup {
        Ok((inv, transport, Some((theme, keymap, config_read_only)))) => {
            let options = tui::Options {
                read_only: g.read_only || config_read_only,
                simulated: g.demo,
            };
            tui::run(inv, transport.as_ref(), theme, keymap, options)
        }
        Ok((inv, transport, None)) => live::run(inv, transport.as_ref()),
        Err(e) => {
            crate::text::warn(&e.to_string());
            EXIT_CANNOT_RUN
        }
    }
}

/// Logs go to stderr (level from `FLEETOP_LOG`, default warn), never onto the data on stdout; while the
/// TUI owns the terminal they go to `$XDG_STATE_HOME/fleetop/fleetop.log` instead.
fn init_tracing(to_file: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if !to_file {
        let _ = builder.with_writer(std::io::stderr).try_init();
        return;
    }
    let file = crate::dirs::state().and_then(|d| {
        std::fs::create_dir_all(&d).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("fleetop.log"))
            .ok()
    });
    if let Some(file) = file {
        let _ = builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    }
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

/// The inventory and the transport that reaches it: simulated for `--demo`, SSH otherwise; `one_pass`
/// asks each node for a single sample (snapshots) instead of following it.
pub fn prepare(g: &Global, one_pass: bool) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let inv = Arc::new(load_inventory(g)?);
    let transport: Box<dyn Transport> = if g.demo {
        Box::new(SimTransport::default())
    } else {
        let ssh = SshTransport::new(&inv).map_err(|e| e.to_string())?;
        Box::new(if one_pass { ssh.one_pass() } else { ssh })
    };
    Ok((inv, transport))
}

fn run_snapshot(g: &Global, args: &SnapshotArgs) -> i32 {
    let filter = match Filter::parse(args.filter.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            crate::text::warn(&format!("--filter: {e}"));
            return EXIT_CANNOT_RUN;
        }
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        crate::text::warn(&format!(
            "--timeout: {} is not a number of seconds between 0 and 86400 (one day)",
            args.timeout
        ));
        return EXIT_CANNOT_RUN;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let (inv, transport) = match prepare(g, true) {
        Ok(p) => p,
        Err(e) => {
            crate::text::warn(&e.to_string());
            return EXIT_CANNOT_RUN;
        }
    };
    let Some(runtime) = crate::app::runtime() else {
        return EXIT_CANNOT_RUN;
    };
    let started = Instant::now();
    let state = runtime.block_on(snapshot::collect(inv, transport.as_ref(), timeout));
    let report = Report::new(&state, &filter, started, Instant::now(), timeout);
    // A reader that went away (`| head`) ends the output quietly; the verdict stands.
    crate::text::print(&report.render(args.format));
    report.summary.exit_code()
}
