//! The interactive TUI: one task owns the `App`, merges transport messages and input, and draws at most
//! ten times a second, only when something changed. The terminal is restored on exit, error and panic.

pub mod app;
pub mod bench;
pub mod keymap;
pub mod replay;
mod shell;
pub mod theme;
pub mod ui;

use std::io::stdout;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;

use crate::actions::audit;
use crate::actions::exec::Executor;
use crate::actions::{self, Request};
use crate::inventory::Inventory;
use crate::transport::Transport;
use app::operate::ActionEvent;
use app::App;
use keymap::Keymap;
use shell::InputPause;
use theme::Theme;
use tokio::sync::mpsc::UnboundedSender;

/// Frames are drawn at most this often (10 fps), and only when state changed; telemetry is merged then.
const FRAME: Duration = Duration::from_millis(100);

/// Restores the terminal when dropped, whatever path leaves the TUI.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// How the TUI may act on nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub read_only: bool,
    /// The demo fleet: actions are simulated.
    pub simulated: bool,
}

/// A repair started from the TUI waits this long for jobs (the command line's `--max-wait` default).
const REPAIR_MAX_WAIT: Duration = Duration::from_secs(2 * 3600);
/// How often a repair started from the TUI looks at jobs and rebooting nodes.
const REPAIR_POLL: Duration = Duration::from_secs(5);

/// How often the schedulers are asked what runs where.
const WORKLOAD_READBACK: Duration = Duration::from_secs(15);

/// How often the drain backend is asked which nodes are drained.
const DRAIN_READBACK: Duration = Duration::from_secs(30);

pub fn run(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    theme: Theme,
    keymap: Keymap,
    options: Options,
) -> i32 {
    let Some(runtime) = crate::runtime::runtime() else {
        return crate::runtime::EXIT_CANNOT_RUN;
    };
    let executor = if options.simulated {
        Executor::simulated()
    } else {
        match Executor::real(&inventory) {
            Ok(e) => e.with_sessions(transport.node_commands()),
            Err(e) => {
                crate::text::warn(&e.to_string());
                return crate::runtime::EXIT_CANNOT_RUN;
            }
        }
    };
    runtime.block_on(event_loop(
        inventory,
        transport,
        theme,
        keymap,
        options,
        Arc::new(executor),
    ))
}

async fn event_loop(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    theme: Theme,
    keymap: Keymap,
    options: Options,
    executor: Arc<Executor>,
) -> i32 {
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // Drains read back reach fleet state through the nodes' own channel, like their samples.
    actions::status::follow(&inventory, &executor, tx.clone(), DRAIN_READBACK);
    let _following = transport.follow(&inventory, tx);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            crate::text::warn(&format!("cannot open the terminal: {e}"));
            return crate::runtime::EXIT_CANNOT_RUN;
        }
    };
    let _guard = TerminalGuard;
    let panic_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableMouseCapture);
        panic_hook(info);
    }));
    let _ = execute!(stdout(), EnableMouseCapture);

    let (input_tx, mut input) = tokio::sync::mpsc::unbounded_channel();
    let input_pause = InputPause::default();
    let pause = input_pause.clone();
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            // A shell owns the terminal while paused: nothing may read its keys.
            if pause.paused.load(Ordering::SeqCst) {
                pause.idle.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            pause.idle.store(false, Ordering::SeqCst);
            match event::poll(Duration::from_millis(50)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if input_tx.send(ev).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        })
        .ok();

    let (action_tx, mut action_events) = tokio::sync::mpsc::unbounded_channel();
    spawn_workload_readback(&inventory, &executor, &action_tx);
    let mut app = App::new(Arc::clone(&inventory), keymap, Instant::now());
    app.ops.read_only = options.read_only;
    app.ops.simulated = options.simulated;
    let log_path = actions::run::audit_path(&inventory);
    let scan = audit::scan(&log_path, inventory.simulated);
    app.ops.failures.extend(scan.warnings(&log_path));
    app.restore_acks(&scan.acks);
    app.fleet
        .note_resets(&actions::resets::read(&log_path, inventory.simulated));
    if let Ok(size) = terminal.size() {
        app.viewport = (size.width, size.height);
    }
    let mut shell_open = false;
    // The history store hears what the fleet shows twice a minute, on a thread of its own (SQLite waits for
    // other writers), and answers with the repeat offenders.
    let memory_path = crate::store::beside(&log_path);
    let mut memory_ticks = tokio::time::interval(MEMORY_EVERY);
    memory_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (lemon_tx, mut lemon_rx) = tokio::sync::mpsc::channel(1);
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !app.quit {
        tokio::select! {
            Some(event) = action_events.recv() => {
                if matches!(event, ActionEvent::ShellEnded(_)) && shell_open {
                    shell_open = false;
                    shell::resume(&input_pause);
                    if let Err(e) = terminal.clear() {
                        tracing::error!("redraw after the shell failed: {e}");
                    }
                }
                app.on_action(event);
            }
            Some(ev) = input.recv() => match ev {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    app.on_key(key);
                    for request in std::mem::take(&mut app.ops.queued) {
                        spawn_action(&inventory, &executor, request, &action_tx);
                    }
                    for request in std::mem::take(&mut app.ops.repairs_queued) {
                        spawn_repair(&inventory, &executor, request, options.simulated, &action_tx);
                    }
                    // The shell runs on its own thread; telemetry is still merged meanwhile (a long
                    // shell must not queue every node's samples), only drawing waits.
                    if let Some(node) = app.ops.shell.take() {
                        if !shell_open {
                            shell_open = shell::start(&inventory, node, &input_pause, &action_tx);
                        }
                    }
                    for ack in std::mem::take(&mut app.ops.acks) {
                        let written = actions::run::open_audit(&inventory)
                            .and_then(|mut log| log.write(&audit::Record::Ack(ack)));
                        if let Err(e) = written {
                            app.ops.failures.push(format!("acknowledgement not audited: {e}"));
                        }
                    }
                }
                Event::Mouse(mouse) => app.on_mouse(mouse),
                Event::Resize(w, h) => {
                    app.viewport = (w, h);
                    app.dirty = true;
                }
                _ => {}
            },
            _ = memory_ticks.tick(), if !inventory.simulated => {
                let views = app.fleet.node_views(Instant::now(), crate::fleet::view::Pending::Connecting);
                let seen = crate::fleet::memory::sightings(&views);
                let (path, tx, repair) = (memory_path.clone(), lemon_tx.clone(), inventory.actions.repair.clone());
                tokio::task::spawn_blocking(move || {
                    let lemons = crate::fleet::memory::remember(
                        &path,
                        &seen,
                        crate::telemetry::unix_ms(),
                        repair.max_repairs,
                        repair.repair_window,
                    );
                    let _ = tx.try_send(lemons);
                });
            }
            Some(lemons) = lemon_rx.recv() => {
                app.fleet.note_lemons(&lemons);
                app.dirty = true;
            }
                        _ = frames.tick() => {
                // Telemetry is merged in batches once a frame rather than awaited message by message,
                // which would wake this task once per sample per node.
                while let Ok(msg) = messages.try_recv() {
                    app.on_msg(msg);
                }
                app.tick(Instant::now());
                if app.dirty && !shell_open {
                    if let Err(e) = terminal.draw(|frame| ui::render(&app, &theme, frame)) {
                        tracing::error!("draw failed: {e}");
                        return 1;
                    }
                    app.dirty = false;
                }
            }
        }
    }
    0
}

/// How often the TUI tells the history store what it shows.
const MEMORY_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs one confirmed request through the action runner on its own thread, forwarding its progress.
fn spawn_action(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    request: Request,
    tx: &UnboundedSender<ActionEvent>,
) {
    let (inv, exec, tx) = (Arc::clone(inv), Arc::clone(exec), tx.clone());
    let spawned = std::thread::Builder::new()
        .name("action".into())
        .spawn(move || {
            actions::run::run(&inv, &request, &exec, |progress| {
                let _ = tx.send(ActionEvent::from_progress(request.kind, progress));
            })
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the action thread: {e}");
    }
}

/// Asks the schedulers for every node's jobs and pods now and every 15 s: one `squeue` and one `kubectl` for the
/// whole fleet, on their own thread so a slow controller never holds up drawing.
fn spawn_workload_readback(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    tx: &UnboundedSender<ActionEvent>,
) {
    if !inv.any_scheduler() && !matches!(**exec, Executor::Simulated(_)) {
        return;
    }
    let (inv, exec, tx) = (Arc::clone(inv), Arc::clone(exec), tx.clone());
    let _ = std::thread::Builder::new()
        .name("workload-readback".into())
        .spawn(move || loop {
            let workload = actions::jobs::query(&inv, &exec);
            if tx.send(ActionEvent::Workload(Box::new(workload))).is_err() {
                return;
            }
            std::thread::sleep(WORKLOAD_READBACK);
        });
}

/// Runs one confirmed repair on its own thread with its own one-pass transport for probing the nodes, saving its
/// state where `fleetop repair --resume` finds it; quitting the TUI leaves it resumable from the command line.
fn spawn_repair(
    inv: &Arc<Inventory>,
    exec: &Arc<Executor>,
    request: Request,
    simulated: bool,
    tx: &UnboundedSender<ActionEvent>,
) {
    let (inv, exec, tx) = (Arc::clone(inv), Arc::clone(exec), tx.clone());
    let spawned = std::thread::Builder::new()
        .name("repair".into())
        .spawn(move || {
            let ended = repair_thread(&inv, &exec, &request, simulated, &tx);
            let _ = tx.send(ActionEvent::RepairEnded(ended));
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the repair thread: {e}");
    }
}

fn repair_thread(
    inv: &Arc<Inventory>,
    exec: &Executor,
    request: &Request,
    simulated: bool,
    tx: &UnboundedSender<ActionEvent>,
) -> Result<String, String> {
    use crate::repair::{self, store, Context, Limits, Workflow};
    let path = store::default_path().ok_or("no state directory: set HOME or XDG_STATE_HOME")?;
    let _lock = store::lock(&path)?;
    if let Some(wf) = store::load(&path)?.filter(|w| !w.finished()) {
        return Err(format!(
            "an unfinished repair ({}) started {}: fleetop repair --resume or --abandon it first",
            wf.reason, wf.started
        ));
    }
    let transport: Box<dyn Transport> = if simulated {
        Box::new(crate::transport::sim::SimTransport::default())
    } else {
        Box::new(
            crate::transport::ssh::SshTransport::new(inv)
                .map_err(|e| e.to_string())?
                .one_pass(),
        )
    };
    let limits = Limits {
        max_wait: REPAIR_MAX_WAIT,
        kill_after: None,
        poll: REPAIR_POLL,
    };
    let reason = request.reason.clone().unwrap_or_default();
    let mut wf = Workflow::new(inv, &request.nodes, &reason, &request.operator, limits);
    let plans = repair::remedy::diagnose(inv, transport.as_ref(), &request.nodes);
    for (n, plan) in wf.nodes.iter_mut().zip(plans) {
        n.plan = Some(plan);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ctx = Context {
        inv,
        transport: transport.as_ref(),
        exec,
        read_only: request.read_only,
        stop: &stop,
    };
    let mut save = |wf: &Workflow| store::save(&path, wf);
    let mut report = |event| {
        let _ = tx.send(ActionEvent::Repair(event));
    };
    repair::run(&ctx, &mut wf, &mut save, &mut report)?;
    store::remove(&path)?;
    let failed = wf.failed();
    Ok(format!(
        "repair done: {} of {} nodes back in service",
        wf.nodes.len() - failed,
        wf.nodes.len()
    ))
}
