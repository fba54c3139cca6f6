//! `App` driven by key, mouse and message sequences, without a terminal.

use crate::tui_common;

use std::time::{Duration, Instant};

use fleetop::fleet::NodeState;
use fleetop::tui::app::{Mode, SortKey, View};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use tui_common::*;

fn key(app: &mut fleetop::tui::app::App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut fleetop::tui::app::App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn visible_names(app: &fleetop::tui::app::App) -> Vec<String> {
    app.order
        .iter()
        .map(|&i| app.node_name(app.rows[i].id).to_string())
        .collect()
}

#[test]
fn number_keys_switch_views_and_esc_leaves_detail() {
    let mut app = three_nodes(Instant::now());
    assert_eq!(app.view, View::Overview);
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.view, View::Nodes);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Detail);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Nodes);
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.view, View::Events);
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn filter_terms_and_free_text_narrow_the_nodes() {
    let mut app = mixed_failures(Instant::now());
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "health=crit tenant=acme");
    assert!(matches!(app.mode, Mode::Filter(_)));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(
        visible_names(&app),
        ["n3"],
        "n3 has XID 79; n5 is crit but not acme"
    );
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..30 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "refused");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        visible_names(&app),
        ["n5"],
        "free text matches the node's note"
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(visible_names(&app).len(), 8, "esc clears the filter");
}

#[test]
fn a_bad_filter_keeps_the_old_one_and_says_why() {
    let mut app = mixed_failures(Instant::now());
    app.set_filter("state=stale");
    assert_eq!(visible_names(&app), ["n4"]);
    app.set_filter("colour=red");
    assert_eq!(visible_names(&app), ["n4"]);
    assert!(
        app.status
            .as_deref()
            .unwrap_or("")
            .contains("unknown filter key"),
        "{:?}",
        app.status
    );
}

#[test]
fn sorting_cycles_columns_and_reverses() {
    let mut app = mixed_failures(Instant::now());
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.sort, SortKey::Name);
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::Health);
    key(&mut app, KeyCode::Char('S'));
    let first = app.rows[app.order[0]].health;
    assert_eq!(first.as_str(), "crit", "descending health puts crit first");
    app.command("sort temp desc");
    assert_eq!(visible_names(&app)[0], "n2", "the hot GPU's node");
}

#[test]
fn navigation_keeps_the_selection_by_identity() {
    let mut app = mixed_failures(Instant::now());
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.node_name(app.selected), "n3");
    app.command("sort health desc");
    assert_eq!(
        app.node_name(app.selected),
        "n3",
        "sorting does not move the selection to another node"
    );
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected_position(), Some(7));
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected_position(), Some(0));
}

#[test]
fn tenants_enter_filters_the_nodes_table() {
    let mut app = mixed_failures(Instant::now());
    key(&mut app, KeyCode::Char('4'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.tenants[app.tenant_cursor].name, "globex");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Nodes);
    assert_eq!(app.filter.text, "tenant=globex");
    assert_eq!(visible_names(&app), ["n5", "n6"]);
}

#[test]
fn commands_and_unknown_commands() {
    let mut app = three_nodes(Instant::now());
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "node c01n3");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        (app.view, app.node_name(app.selected)),
        (View::Detail, "c01n3")
    );
    app.command("metric power");
    assert_eq!(app.metric.name(), "power");
    app.command("frobnicate");
    assert!(app
        .status
        .as_deref()
        .unwrap_or("")
        .contains("unknown command"));
}

#[test]
fn ctx_asks_the_loop_for_another_context_unless_an_action_runs() {
    let mut app = three_nodes(Instant::now());
    app.command("ctx");
    assert!(app
        .status
        .as_deref()
        .unwrap_or("")
        .starts_with("usage: :ctx NAME"));
    assert_eq!(app.switch_to, None);
    app.ops.progress.insert(
        0,
        fleetop::tui::app::operate::Progress::Running(fleetop::actions::ActionKind::Drain),
    );
    app.command("ctx west");
    assert_eq!(app.switch_to, None);
    assert!(app
        .status
        .as_deref()
        .unwrap_or("")
        .contains("an action is running"));
    app.ops.progress.clear();
    app.command("ctx west");
    assert_eq!(app.switch_to.as_deref(), Some("west"));
}

#[test]
fn messages_update_states_and_the_events_log() {
    let now = Instant::now();
    let mut app = three_nodes(now);
    assert_eq!(app.rows[1].state, NodeState::Stale);
    let before = app.journal.len();
    let later = now + Duration::from_secs(2);
    app.on_msg(msg(1, later, sample(vec![gpu(0, 10, 50)])));
    let mut fell_off = gpu(1, 0, 40);
    fell_off.xid = Some(vec![79]);
    app.on_msg(msg(0, later, sample(vec![gpu(0, 10, 50), fell_off])));
    app.tick(later);
    assert_eq!(app.rows[1].state, NodeState::Up);
    let texts: Vec<&str> = app
        .journal
        .newest_first()
        .map(|e| e.text.as_str())
        .collect();
    assert!(app.journal.len() > before);
    assert!(
        texts.iter().any(|t| t.contains("c01n1: GPU 1 XID 79")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("c01n2: stale → up")),
        "{texts:?}"
    );
    // Time alone makes data stale: no message, just the clock.
    app.tick(later + Duration::from_secs(10));
    assert_eq!(app.rows[0].state, NodeState::Stale);
}

#[test]
fn a_click_selects_the_row_under_the_pointer() {
    let mut app = mixed_failures(Instant::now());
    app.viewport = (120, 30);
    key(&mut app, KeyCode::Char('2'));
    // Header takes rows 0-1, the table header row 2: row 5 is the fourth node.
    app.on_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 3,
        row: 5,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.node_name(app.selected), "n3");
    key(&mut app, KeyCode::Char('1'));
    // Overview: the first cabinet line is row 3; cells start after the label "c01 ".
    app.on_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 4 + 6,
        row: 3,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.node_name(app.selected), "n7");
}

/// A sample of `three_nodes`' first node whose GPU 2 has had XID 79 `count` times, last at `last_ms`.
fn with_xid79(count: u64, last_ms: Option<u64>) -> fleetop::transport::NodeEvent {
    let mut g = gpu(2, 50, 50);
    g.xid = Some(vec![79]);
    g.xid_events = Some(vec![fleetop::telemetry::XidEvent {
        code: 79,
        count,
        first_ms: last_ms,
        last_ms,
        text: Some("GPU has fallen off the bus.".into()),
        ..Default::default()
    }]);
    sample(
        (0..4)
            .map(|i| if i == 2 { g.clone() } else { gpu(i, 50, 50) })
            .collect(),
    )
}

fn first_node_health(app: &fleetop::tui::app::App) -> fleetop::telemetry::health::Health {
    app.rows.iter().find(|r| r.id == 0).unwrap().health
}

fn acknowledge_first_node(app: &mut fleetop::tui::app::App, reason: &str) {
    app.selected = 0;
    key(app, KeyCode::Char('a'));
    typed(app, reason);
    key(app, KeyCode::Enter);
}

/// Unix ms of the first XID in these tests.
const XID_AT: u64 = 1_760_000_000_000;

#[test]
fn xids_reach_the_events_view_and_an_acknowledgement_holds_until_the_next_one() {
    use fleetop::telemetry::health::Health;
    let now = Instant::now();
    let mut app = three_nodes(now);
    app.on_msg(msg(0, now, with_xid79(1, Some(XID_AT))));
    app.tick(now);
    app.refresh();
    assert_eq!(first_node_health(&app), Health::Crit);
    assert!(
        app.journal
            .newest_first()
            .any(|e| e.text.starts_with("c01n1: GPU 2 XID 79 ×1")
                && e.text.ends_with(
                    ": reboot the node (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS; NVIDIA: RESTART_BM) — \"GPU has fallen off the bus.\""
                )),
        "the events view lists the XID"
    );

    app.selected = 0;
    key(&mut app, KeyCode::Char('a'));
    assert_eq!(app.mode, Mode::AckReason(String::new()));
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.mode, Mode::AckReason(_)),
        "a reason is required"
    );
    typed(&mut app, "RMA 4411 filed");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(first_node_health(&app), Health::Ok);
    assert_eq!(app.ops.acks.len(), 1, "queued for the audit log");
    assert_eq!(app.ops.acks[0].reason, "RMA 4411 filed");
    assert_eq!(app.ops.acks[0].xids, ["GPU 2 XID 79 ×1"]);
    assert_eq!(app.ops.acks[0].seen[0].last_ms, XID_AT);

    // The same XID again: the acknowledgement no longer covers it.
    app.on_msg(msg(0, now, with_xid79(2, Some(XID_AT + 60_000))));
    app.tick(now);
    app.refresh();
    assert_eq!(first_node_health(&app), Health::Crit);
}

#[test]
fn an_acknowledgement_does_not_cover_the_same_xid_after_a_restart() {
    use fleetop::telemetry::health::Health;
    let now = Instant::now();
    let mut app = three_nodes(now);
    app.on_msg(msg(0, now, with_xid79(1, Some(XID_AT))));
    app.refresh();
    acknowledge_first_node(&mut app, "RMA 4411 filed");
    assert_eq!(first_node_health(&app), Health::Ok);

    // A restarted agent reports the old record again, its time read through its own clock a few ms apart.
    app.on_msg(msg(0, now, with_xid79(1, Some(XID_AT + 3))));
    app.refresh();
    assert_eq!(first_node_health(&app), Health::Ok, "the same XID, re-read");

    // After a reboot the count starts again at 1, an hour later: a new XID, not the acknowledged one.
    app.on_msg(msg(0, now, with_xid79(1, Some(XID_AT + 3_600_000))));
    app.refresh();
    assert_eq!(first_node_health(&app), Health::Crit);

    // The acknowledgement read back from the audit log by a restarted TUI covers no more than that.
    let acks = std::mem::take(&mut app.ops.acks);
    let mut restarted = three_nodes(now);
    restarted.restore_acks(&acks);
    restarted.on_msg(msg(0, now, with_xid79(1, Some(XID_AT))));
    restarted.refresh();
    assert_eq!(first_node_health(&restarted), Health::Ok);
    restarted.on_msg(msg(0, now, with_xid79(1, Some(XID_AT + 3_600_000))));
    restarted.refresh();
    assert_eq!(first_node_health(&restarted), Health::Crit);
}

#[test]
fn an_xid_without_a_time_cannot_be_acknowledged() {
    use fleetop::telemetry::health::Health;
    let now = Instant::now();
    let mut app = three_nodes(now);
    // The Prometheus store's XID series carry a count and no time (dcgm-exporter's gauge always reads 1).
    app.on_msg(msg(0, now, with_xid79(1, None)));
    app.refresh();
    acknowledge_first_node(&mut app, "RMA 4411 filed");
    assert_eq!(first_node_health(&app), Health::Crit);
    assert!(app.ops.acks.is_empty(), "nothing to audit");
    let status = app.status.clone().unwrap_or_default();
    assert!(status.contains("GPU 2 XID 79 not acknowledged"), "{status}");
}

#[test]
fn tenants_come_from_the_schedulers_when_the_inventory_says_so() {
    let now = Instant::now();
    let inventory = |from: &str| {
        format!(
            "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\ntenant_from = \"{from}\"\n[[cabinet]]\nname = \"c01\"\n\
             nodes = \"c01n[1-3]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"c01n[1-2]\"\n"
        )
    };
    let squeue = "7|ana|initech|batch|c01n[1-3]|cpu=2,gres/gpu=6|1:00:00|UNLIMITED|RUNNING|\n\
                  8|bo|initech|batch|c01n3|cpu=1,gres/gpu=1|0:10|UNLIMITED|RUNNING|\n\
                  9|cy|globex|batch|c01n1|cpu=1,gres/gpu=1|0:10|UNLIMITED|RUNNING|\n";
    let tenants = |app: &fleetop::tui::app::App| -> Vec<(String, usize, u64, Option<usize>)> {
        app.tenants
            .iter()
            .map(|t| (t.name.clone(), t.nodes, t.gpus, t.jobs))
            .collect()
    };
    for from in ["inventory", "scheduler"] {
        let mut app = app_for(&inventory(from), now);
        for node in 0..3 {
            app.on_msg(msg(node, now, sample(vec![gpu(0, 50, 50), gpu(1, 50, 50)])));
        }
        let mut workload = fleetop::workload::Workload::default();
        fleetop::workload::slurm::parse(app.fleet.inventory(), squeue, &mut workload);
        app.on_action(fleetop::tui::app::operate::ActionEvent::Workload(Box::new(
            workload,
        )));
        let labels: Vec<Option<String>> = app.rows.iter().map(|r| r.tenant.clone()).collect();
        if from == "inventory" {
            assert_eq!(labels, [Some("acme".into()), Some("acme".into()), None]);
            assert_eq!(
                tenants(&app),
                [("acme".into(), 2, 4, Some(2))],
                "jobs 7 and 9 run on acme's nodes"
            );
        } else {
            assert_eq!(
                labels,
                [
                    Some("globex+initech".into()),
                    Some("initech".into()),
                    Some("initech".into())
                ],
                "each node's accounts, the spare one too"
            );
            assert_eq!(
                tenants(&app),
                [
                    ("globex".into(), 1, 2, Some(1)),
                    ("initech".into(), 3, 6, Some(2))
                ]
            );
        }
    }
}

#[test]
fn an_xid_time_no_calendar_can_write_does_not_panic_the_tui() {
    // A kernel-log line with a huge boot-relative stamp, straight into the loop (no sanitizer on the way).
    let now = Instant::now();
    let mut app = three_nodes(now);
    let mut g = gpu(1, 50, 50);
    g.xid = Some(vec![79]);
    g.xid_events = Some(vec![fleetop::telemetry::XidEvent {
        code: 79,
        count: 1,
        first_ms: Some(u64::MAX),
        last_ms: Some(253_402_300_800_000),
        ..Default::default()
    }]);
    app.on_msg(msg(
        0,
        now,
        sample(
            (0..4)
                .map(|i| if i == 1 { g.clone() } else { gpu(i, 50, 50) })
                .collect(),
        ),
    ));
    app.tick(now);
    app.refresh();
    assert!(
        app.journal
            .newest_first()
            .any(|e| e.text.contains("XID 79") && e.text.contains("(not a date)")),
        "the events view lists the XID with its time as it came"
    );
}

#[test]
fn the_detail_asks_for_its_node_s_history_once_then_every_30_s_and_keeps_it_bounded() {
    let now = Instant::now();
    let mut app = three_nodes(now);
    assert_eq!(
        app.history_wanted(),
        None,
        "only the detail view shows history"
    );
    app.selected = 0;
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.view, View::Detail);
    assert_eq!(app.history_wanted(), Some(0));
    assert_eq!(app.history_wanted(), None, "asked already");
    let event = |t: u64| fleetop::store::Event {
        time_ms: t,
        node: "c01n1".into(),
        gpu: None,
        serial: None,
        uuid: None,
        kind: "health".into(),
        detail: "crit".into(),
        site: None,
        inventory: None,
    };
    app.on_history(0, Ok((0..500).map(event).collect()));
    let shown = app.history.events.as_ref().unwrap();
    assert_eq!(shown.len(), fleetop::tui::app::history::MAX_EVENTS);
    // Another node: asked at once; the same node again after 30 s.
    app.selected = 1;
    assert_eq!(app.history_wanted(), Some(1));
    app.tick(now + Duration::from_secs(31));
    assert_eq!(app.history_wanted(), Some(1));
    // An unreadable store is a verdict the pane shows, not an empty history.
    app.on_history(1, Err("store fleet.sqlite: database is locked".into()));
    let screen = draw(&mut app, &fleetop::tui::theme::Theme::default(), 200, 50).0;
    assert!(
        screen.contains("cannot read the history: store fleet.sqlite: database is locked"),
        "{screen}"
    );
}
