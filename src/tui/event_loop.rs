//! The TUI's one task: it owns the `App`, merges transport messages, input and the events of the background
//! work it started (actions, repairs, read-backs, the shell), and draws at most ten times a second, only when
//! something changed. The terminal is restored on exit, error and panic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{Event, KeyEventKind};

use super::app::operate::ActionEvent;
use super::app::{App, View};
use super::keymap::Keymap;
use super::shell::{self, InputPause};
use super::theme::Theme;
use super::ui;
use crate::actions;
use crate::actions::audit;
use crate::actions::exec::Executor;
use crate::inventory::Inventory;
use crate::repair::{self, Limits};
use crate::transport::Transport;

/// Frames are drawn at most this often (10 fps), and only when state changed; telemetry is merged then.
pub(super) const FRAME: Duration = Duration::from_millis(100);

/// How the TUI may act on nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub read_only: bool,
    /// The demo fleet: actions are simulated.
    pub simulated: bool,
}

/// What a fresh TUI keeps from the one before it, after `:ctx NAME`.
#[derive(Debug, Clone)]
pub struct Resume {
    pub view: View,
    pub filter: String,
    /// Shown in the footer: why the switch did not happen, when it did not.
    pub status: Option<String>,
}

/// How the TUI ended.
#[derive(Debug)]
pub enum Ended {
    /// Quit (or failed), with this exit status.
    Exit(i32),
    /// `:ctx NAME`: follow that context instead, keeping the view and the filter.
    Switch { context: String, resume: Resume },
}

/// A repair started from the TUI waits two hours for jobs (the command line's `--max-wait` default) and looks at
/// jobs and rebooting nodes every 5 s.
const REPAIR_LIMITS: Limits = Limits {
    max_wait: Duration::from_secs(2 * 3600),
    kill_after: None,
    poll: Duration::from_secs(5),
};

/// How often the drain backend is asked which nodes are drained.
const DRAIN_READBACK: Duration = Duration::from_secs(30);

pub fn run(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    (theme, keymap): (Theme, Keymap),
    options: Options,
    resume: Option<Resume>,
) -> Ended {
    let Some(runtime) = crate::runtime::runtime() else {
        return Ended::Exit(crate::runtime::EXIT_CANNOT_RUN);
    };
    let executor = if options.simulated {
        Executor::simulated()
    } else {
        match Executor::real(&inventory) {
            Ok(e) => e.with_sessions(transport.node_commands()),
            Err(e) => {
                crate::text::warn(&e.to_string());
                return Ended::Exit(crate::runtime::EXIT_CANNOT_RUN);
            }
        }
    };
    runtime.block_on(event_loop(
        inventory,
        transport,
        (theme, keymap),
        (options, resume),
        Arc::new(executor),
    ))
}

async fn event_loop(
    inventory: Arc<Inventory>,
    transport: &dyn Transport,
    (theme, keymap): (Theme, Keymap),
    (options, resume): (Options, Option<Resume>),
    executor: Arc<Executor>,
) -> Ended {
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // Drains read back reach fleet state through the nodes' own channel, like their samples; under `--context
    // all`, from each site's own backends.
    actions::status::follow(&inventory, &executor, tx.clone(), DRAIN_READBACK);
    let _following = transport.follow(&inventory, tx);
    let Some((mut terminal, _guard)) = super::terminal::open() else {
        return Ended::Exit(crate::runtime::EXIT_CANNOT_RUN);
    };
    let input_pause = InputPause::default();
    let (mut input, _reader) = super::terminal::read_input(input_pause.clone());

    let (action_tx, mut action_events) = tokio::sync::mpsc::unbounded_channel();
    let workload_tx = action_tx.clone();
    // Under `--context all`, each site's schedulers through its own settings and controller.
    actions::jobs::follow(
        &inventory,
        &executor,
        actions::jobs::READBACK_EVERY,
        move |workload| {
            workload_tx
                .send(ActionEvent::Workload(Box::new(workload)))
                .is_ok()
        },
    );
    let mut app = App::new(Arc::clone(&inventory), keymap, Instant::now());
    app.ops.read_only = options.read_only;
    app.ops.simulated = options.simulated;
    if let Some(resume) = resume {
        app.set_filter(&resume.filter);
        app.view = resume.view;
        app.status = resume.status;
    }
    // Each site's own log under `--context all`, its records named as the merged inventory names its nodes.
    for log in actions::run::audit_logs(&inventory) {
        let scan = audit::scan(&log.path, inventory.simulated);
        app.ops.failures.extend(scan.warnings(&log.path));
        let acks: Vec<audit::Ack> = scan
            .acks
            .into_iter()
            .flat_map(|ack| {
                log.node_names((ack.site.as_deref(), ack.inventory.as_deref()), &ack.node)
                    .into_iter()
                    .map(move |node| audit::Ack {
                        node,
                        ..ack.clone()
                    })
            })
            .collect();
        app.restore_acks(&acks);
    }
    app.fleet
        .note_resets(&actions::resets::read_fleet(&inventory));
    if let Ok(size) = terminal.size() {
        app.viewport = (size.width, size.height);
    }
    let mut shell_open = false;
    // The history store hears what the fleet shows twice a minute, on a thread of its own (SQLite waits for
    // other writers), and answers with the repeat offenders.
    let stores = actions::run::stores(&inventory);
    let mut memory_ticks = tokio::time::interval(MEMORY_EVERY);
    memory_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (lemon_tx, mut lemon_rx) = tokio::sync::mpsc::channel(1);
    let (history_tx, mut history_rx) = tokio::sync::mpsc::channel(1);
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !app.quit && app.switch_to.is_none() {
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
                        let (tx, kind) = (action_tx.clone(), request.kind);
                        actions::run::spawn(&inventory, &executor, request, move |progress| {
                            let _ = tx.send(ActionEvent::from_progress(kind, progress));
                        });
                    }
                    for request in std::mem::take(&mut app.ops.repairs_queued) {
                        let (steps, ended) = (action_tx.clone(), action_tx.clone());
                        repair::start::spawn(
                            &inventory,
                            &executor,
                            request,
                            REPAIR_LIMITS,
                            move |event| {
                                let _ = steps.send(ActionEvent::Repair(event));
                            },
                            move |result| {
                                let _ = ended.send(ActionEvent::RepairEnded(result));
                            },
                        );
                    }
                    // The shell runs on its own thread; telemetry is still merged meanwhile (a long
                    // shell must not queue every node's samples), only drawing waits.
                    if let Some(node) = app.ops.shell.take() {
                        if !shell_open {
                            shell_open = shell::start(&inventory, node, &input_pause, &action_tx);
                        }
                    }
                    // Each to its node's own site's log, by the site's own name for it.
                    for ack in std::mem::take(&mut app.ops.acks) {
                        let written = match inventory.find_node(&ack.node) {
                            Some(id) => actions::run::open_audit_of(&inventory, id).and_then(
                                |(mut log, node)| {
                                    log.write(&audit::Record::Ack(audit::Ack { node, ..ack }))
                                },
                            ),
                            None => Err(format!("{} is not in the inventory", ack.node)),
                        };
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
            // Each site's nodes go into their own site's store (`--context all`).
            _ = memory_ticks.tick(), if !inventory.simulated => {
                let views = app.fleet.node_views(Instant::now(), crate::fleet::view::Pending::Connecting);
                let tx = lemon_tx.clone();
                crate::fleet::memory::remember_in_background(
                    stores.clone(),
                    crate::fleet::memory::sightings(&views),
                    move |lemons| {
                        let _ = tx.try_send(lemons);
                    },
                );
            }
            Some(lemons) = lemon_rx.recv() => {
                app.fleet.note_lemons(&lemons);
                app.dirty = true;
            }
            Some((node, events)) = history_rx.recv() => app.on_history(node, events),
            _ = frames.tick() => {
                // Telemetry is merged in batches once a frame rather than awaited message by message,
                // which would wake this task once per sample per node.
                while let Ok(msg) = messages.try_recv() {
                    app.on_msg(msg);
                }
                app.tick(Instant::now());
                if let Some(node) = app.history_wanted() {
                    if let Some((path, name, site)) = actions::run::history_of(&inventory, node) {
                        super::history::read(path, node, (name, site), history_tx.clone());
                    }
                }
                if app.dirty && !shell_open {
                    if let Err(e) = terminal.draw(|frame| ui::render(&app, &theme, frame)) {
                        tracing::error!("draw failed: {e}");
                        return Ended::Exit(1);
                    }
                    app.dirty = false;
                }
            }
        }
    }
    match app.switch_to.take() {
        Some(context) => Ended::Switch {
            context,
            resume: Resume {
                view: app.view,
                filter: app.filter.text.clone(),
                status: None,
            },
        },
        None => Ended::Exit(0),
    }
}

/// How often the TUI tells the history store what it shows.
const MEMORY_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
