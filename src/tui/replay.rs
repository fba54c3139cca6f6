//! `fleetop --replay DIR`: the TUI on a recording. A [`Player`] hands the recorded messages to the same
//! `App::on_msg` the transports feed (and the scheduler answers to `App::on_action`, as the read-back does), stamped with `Instant`s that keep the recorded spacing, and moves the
//! app's clock along the recording, so a replayed frame is the frame the live TUI drew. Actions stay off through
//! the read-only rule. Keys (when not bound in the keymap): `p` pause, `[`/`]` one minute back/forward,
//! `+`/`-` double/halve the speed, `:at 03:12` (UTC, or a full RFC 3339 time) to jump.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind};

use super::app::operate::ActionEvent;
use super::app::{App, Mode};
use super::event_loop::FRAME;
use super::keymap::Keymap;
use super::theme::Theme;
use super::ui;
use crate::recording::{self, Messages, Reader, Recorded};

/// How far `[` and `]` jump.
pub(crate) const SEEK_STEP: Duration = Duration::from_secs(60);
/// A seek fills the sparklines with this much before the time asked.
const SEEK_LEAD: Duration = Duration::from_secs(30);
/// Fastest and slowest speeds `+` and `-` reach.
const SPEEDS: (f64, f64) = (1.0 / 16.0, 1024.0);

/// Where a replay stands: the recording's time runs from `position` at `anchor` (a real instant) at `speed`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub position: u64,
    pub anchor: Instant,
    pub speed: f64,
    pub paused: bool,
}

impl Clock {
    /// The recording's time at the real instant `now`.
    pub fn at(&self, now: Instant) -> u64 {
        if self.paused {
            return self.position;
        }
        let ran = now.saturating_duration_since(self.anchor).as_secs_f64() * self.speed * 1000.0;
        self.position.saturating_add(ran as u64)
    }

    fn set(&mut self, position: u64, now: Instant) {
        self.position = position;
        self.anchor = now;
    }
}

/// Feeds a recording into an `App` up to a time.
pub struct Player<'a> {
    reader: &'a Reader,
    messages: Messages<'a>,
    next: Option<(u64, Recorded)>,
    /// The recording time the app has been fed to.
    pub fed_to: u64,
}

impl<'a> Player<'a> {
    /// A player at the recording's start; `app` should be fresh ([`fresh_app`]).
    pub fn new(reader: &'a Reader) -> Self {
        let start = reader.span().map_or(0, |s| s.0);
        Player {
            reader,
            messages: Messages::open(reader, start, u64::MAX),
            next: None,
            fed_to: start,
        }
    }

    /// Feeds every message recorded up to `to_ms` and moves the app's clock there.
    pub fn advance(&mut self, app: &mut App, to_ms: u64) -> Result<(), String> {
        loop {
            if self.next.is_none() {
                self.next = self.messages.next_recorded().transpose()?;
            }
            match self.next.take() {
                Some((t, Recorded::Msg(msg))) if t <= to_ms => app.on_msg(msg),
                // The scheduler answer reaches the app as the live read-back's does.
                Some((t, Recorded::Workload(w))) if t <= to_ms => {
                    app.on_action(ActionEvent::Workload(w));
                }
                Some((t, Recorded::Alive)) if t <= to_ms => {}
                other => {
                    self.next = other;
                    break;
                }
            }
        }
        self.fed_to = self.fed_to.max(to_ms);
        app.tick(self.reader.instant(self.fed_to));
        Ok(())
    }

    /// Jumps to `to_ms`: a fresh app (keeping the view, sort and selection) given each GPU's utilisation and
    /// temperature over the [`SEEK_LEAD`] before (as a history), then the state as of `to_ms`, so its sparklines
    /// are not empty. Replaying those 30,000 samples at fleet size cost more than the 1 s budget.
    pub fn seek(&mut self, app: &mut App, to_ms: u64) -> Result<(), String> {
        let lead = u64::try_from(SEEK_LEAD.as_millis()).unwrap_or(0);
        let start = self.reader.span().map_or(0, |s| s.0);
        let from = to_ms.saturating_sub(lead).max(start).min(to_ms);
        let mut fresh = fresh_app(self.reader, app.keymap.clone(), from);
        fresh.view = app.view;
        fresh.previous_view = app.view;
        fresh.metric = app.metric;
        fresh.sort = app.sort;
        fresh.sort_descending = app.sort_descending;
        fresh.filter = app.filter.clone();
        fresh.selected = app.selected;
        fresh.viewport = app.viewport;
        fresh.replay = app.replay.clone();
        *app = fresh;
        self.messages = Messages::open(self.reader, to_ms, u64::MAX).with_trail(from);
        self.next = None;
        self.fed_to = from;
        self.advance(app, to_ms)?;
        // The rows show the new time at once, not a refresh interval later.
        app.refresh();
        Ok(())
    }
}

/// An `App` on the recording's inventory whose clocks stand at `ms`; read-only, so no action runs from a replay.
pub fn fresh_app(reader: &Reader, keymap: Keymap, ms: u64) -> App {
    let now = reader.instant(ms);
    let mut app = App::new(Arc::new(reader.inventory().clone()), keymap, now);
    app.wall_base = (now, UNIX_EPOCH + Duration::from_millis(ms));
    app.ops.read_only = true;
    app
}

/// The header's words: `replay 2026-11-24 03:12:05 UTC ×4` (`paused` when paused).
pub fn header(clock: &Clock, now_ms: u64) -> String {
    let speed = if clock.paused {
        "paused".to_string()
    } else if clock.speed >= 1.0 {
        format!("×{}", clock.speed)
    } else {
        format!("×1/{}", (1.0 / clock.speed).round())
    };
    format!("replay {} {speed}", recording::utc(now_ms))
}

/// Runs the replay TUI from `at_ms` (default: the start) at `speed`.
pub fn run(reader: &Reader, theme: Theme, keymap: Keymap, at_ms: Option<u64>, speed: f64) -> i32 {
    let Some((first, last)) = reader.span() else {
        crate::text::warn("the recording holds no frame yet");
        return crate::runtime::EXIT_CANNOT_RUN;
    };
    let Some(runtime) = crate::runtime::runtime() else {
        return crate::runtime::EXIT_CANNOT_RUN;
    };
    let Some((mut terminal, _guard)) = super::terminal::open() else {
        return crate::runtime::EXIT_CANNOT_RUN;
    };
    let (mut input, _reader) = super::terminal::read_input(super::shell::InputPause::default());
    let start = at_ms.unwrap_or(first).clamp(first, last);
    let mut clock = Clock {
        position: start,
        anchor: Instant::now(),
        speed: speed.clamp(SPEEDS.0, SPEEDS.1),
        paused: false,
    };
    let mut app = fresh_app(reader, keymap, first);
    if let Ok(size) = terminal.size() {
        app.viewport = (size.width, size.height);
    }
    let mut player = Player::new(reader);
    let status = runtime.block_on(async {
        player.seek(&mut app, start)?;
        let mut frames = tokio::time::interval(FRAME);
        frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !app.quit {
            tokio::select! {
                Some(ev) = input.recv() => match ev {
                    Event::Key(key) if key.kind != KeyEventKind::Release => {
                        if let Some(to) = replay_key(&mut app, &mut clock, key, (first, last)) {
                            player.seek(&mut app, to)?;
                        }
                        drop_actions(&mut app);
                    }
                    Event::Mouse(mouse) => app.on_mouse(mouse),
                    Event::Resize(w, h) => {
                        app.viewport = (w, h);
                        app.dirty = true;
                    }
                    _ => {}
                },
                _ = frames.tick() => {
                    let now = clock.at(Instant::now()).min(last);
                    if now == last && !clock.paused {
                        clock.paused = true;
                        clock.set(last, Instant::now());
                    }
                    player.advance(&mut app, now)?;
                    let text = header(&clock, now);
                    if app.replay.as_deref() != Some(text.as_str()) {
                        app.replay = Some(text);
                        app.dirty = true;
                    }
                    if app.dirty {
                        terminal
                            .draw(|frame| ui::render(&app, &theme, frame))
                            .map_err(|e| format!("draw failed: {e}"))?;
                        app.dirty = false;
                    }
                }
            }
        }
        Ok::<(), String>(())
    });
    match status {
        Ok(()) => 0,
        Err(e) => {
            drop(_guard);
            crate::text::warn(&e);
            1
        }
    }
}

/// Handles a replay key (pause, seek, speed, `:at`); returns where to seek. Any other key goes to the app.
fn replay_key(
    app: &mut App,
    clock: &mut Clock,
    key: KeyEvent,
    (first, last): (u64, u64),
) -> Option<u64> {
    let now = Instant::now();
    let position = clock.at(now).min(last);
    if let (Mode::Command(text), KeyCode::Enter) = (&app.mode, key.code) {
        if let Some(when) = text.trim().strip_prefix("at ") {
            let asked = recording::parse_time(when, last);
            app.mode = Mode::Normal;
            app.dirty = true;
            return match asked {
                Ok(t) if (first..=last).contains(&t) => {
                    clock.set(t, now);
                    Some(t)
                }
                Ok(t) => {
                    app.status = Some(format!(
                        "{} is outside the recording ({} to {})",
                        recording::utc(t),
                        recording::utc(first),
                        recording::utc(last)
                    ));
                    None
                }
                Err(e) => {
                    app.status = Some(format!(":at: {e}"));
                    None
                }
            };
        }
    }
    let free = matches!(app.mode, Mode::Normal) && app.keymap.action(&key).is_none();
    let step = u64::try_from(SEEK_STEP.as_millis()).unwrap_or(60_000);
    match key.code {
        KeyCode::Char('p') if free => {
            clock.set(position, now);
            clock.paused = !clock.paused;
            app.dirty = true;
            None
        }
        KeyCode::Char(c @ ('+' | '-')) if free => {
            clock.set(position, now);
            let speed = if c == '+' {
                clock.speed * 2.0
            } else {
                clock.speed / 2.0
            };
            clock.speed = speed.clamp(SPEEDS.0, SPEEDS.1);
            app.dirty = true;
            None
        }
        KeyCode::Char(c @ ('[' | ']')) if free => {
            let to = if c == '[' {
                position.saturating_sub(step).max(first)
            } else {
                position.saturating_add(step).min(last)
            };
            clock.set(to, now);
            Some(to)
        }
        _ => {
            app.on_key(key);
            None
        }
    }
}

/// A replay acts on nothing: what the keys queued (actions are refused by the read-only rule before they are
/// queued; a shell or an acknowledgement would reach the live fleet) is dropped, with a word.
fn drop_actions(app: &mut App) {
    let dropped = !app.ops.queued.is_empty()
        || !app.ops.repairs_queued.is_empty()
        || app.ops.shell.is_some()
        || !app.ops.acks.is_empty();
    app.ops.queued.clear();
    app.ops.repairs_queued.clear();
    app.ops.shell = None;
    app.ops.acks.clear();
    if dropped {
        app.status = Some("a replay acts on nothing: follow the fleet to act".into());
    }
}
