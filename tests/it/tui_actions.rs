//! Node actions in the TUI, without a terminal: marks, reason, confirm dialog, refusals, progress, reboots.

use crate::tui_common;

use std::time::{Duration, Instant};

use fleetop::actions::{ActionKind, NodeResult};
use fleetop::fleet::NodeState;
use fleetop::telemetry::health::Health;
use fleetop::transport::{FailureKind, NodeEvent};
use fleetop::tui::app::operate::ActionEvent;
use fleetop::tui::app::{App, Mode};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_common::*;

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn result(node: &str, ok: bool, detail: &str) -> NodeResult {
    NodeResult {
        node: node.into(),
        ok,
        exit_status: Some(if ok { 0 } else { 1 }),
        command: "cmd".into(),
        duration_ms: 5,
        detail: detail.into(),
        audit_error: None,
    }
}

#[test]
fn drain_asks_for_a_reason_then_confirms_with_cancel_focused() {
    let mut app = three_nodes(Instant::now());
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('D'));
    assert!(matches!(
        app.mode,
        Mode::Reason {
            kind: ActionKind::Drain,
            ..
        }
    ));
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.mode, Mode::Reason { .. }),
        "an empty reason is not accepted for a drain"
    );
    typed(&mut app, "GPU 2 ECC");
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert!(!c.on_confirm, "Cancel has the focus");
    assert_eq!(c.request.reason.as_deref(), Some("GPU 2 ECC"));
    assert_eq!(
        c.commands,
        ["scontrol update NodeName=c01n1 State=DRAIN 'Reason=fleetop: GPU 2 ECC'"]
    );
    assert_eq!(
        c.impact[0],
        (
            "jobs unknown (no scheduler answered); 4 GPUs busy".to_string(),
            true
        ),
        "before any scheduler answered, the dialog says so"
    );
    assert!(
        c.impact[1].0.starts_with("c01n1 hosts acme: 4 GPUs at"),
        "{:?}",
        c.impact
    );
    assert!(c.impact[1].1, "busy GPUs are flagged");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal, "enter on Cancel cancels");

    // Once squeue answered, the dialog names the job the drain hits, on the node's line too.
    let mut workload = fleetop::workload::Workload::default();
    fleetop::workload::slurm::parse(
        app.fleet.inventory(),
        "4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=8|3-02:00:00|1:00:00|RUNNING|\n",
        &mut workload,
    );
    app.on_action(fleetop::tui::app::operate::ActionEvent::Workload(Box::new(
        workload,
    )));
    key(&mut app, KeyCode::Char('D'));
    typed(&mut app, "GPU 2 ECC");
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert_eq!(
        c.impact[0].0,
        "1 job: 4242 alice (acme) 8 GPUs 3d2h; 4 GPUs busy"
    );
    assert!(c.impact[1].0.ends_with(" · jobs 4242"), "{:?}", c.impact);
    assert!(app.ops.queued.is_empty());
}

#[test]
fn several_nodes_need_the_count_typed() {
    let mut app = mixed_failures(Instant::now());
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.ops.marks.len(), 2);
    key(&mut app, KeyCode::Char('U'));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.mode, Mode::Confirm(_)),
        "not without the count"
    );
    assert!(app.status.as_deref().unwrap_or("").contains("type 2"));
    typed(&mut app, "2");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.ops.queued.len(), 1);
    assert_eq!(app.ops.queued[0].kind, ActionKind::Undrain);
    assert_eq!(app.ops.queued[0].nodes, [0, 1]);
    assert!(app.ops.marks.is_empty(), "marks are spent");
    assert_eq!(app.progress_note(0).as_deref(), Some("undrain: running…"));
}

#[test]
fn guard_refusals_show_in_the_dialog_and_block_it() {
    let mut app = mixed_failures(Instant::now());
    // Without a drain read-back the reboot guard cannot verify the node is drained.
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!()
    };
    assert!(
        c.refusals
            .iter()
            .any(|r| r.contains("cannot tell whether it is drained")),
        "{:?}",
        c.refusals
    );
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert!(app.ops.queued.is_empty());
    key(&mut app, KeyCode::Esc);
    // V marks all filtered nodes: eight reboots exceed max_concurrent (4).
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!()
    };
    assert!(
        c.refusals.iter().any(|r| r.contains("8 reboots at once")),
        "{:?}",
        c.refusals
    );
}

#[test]
fn read_only_refuses_in_the_tui_too() {
    let mut app = three_nodes(Instant::now());
    app.ops.read_only = true;
    for k in ['D', 'U', 'R'] {
        key(&mut app, KeyCode::Char(k));
        assert_eq!(app.mode, Mode::Normal);
    }
    assert_eq!(app.ops.failures.len(), 3);
    assert!(app.ops.failures[0].starts_with("read-only: drain refused"));
}

#[test]
fn failures_stay_until_acknowledged() {
    let mut app = three_nodes(Instant::now());
    app.on_action(ActionEvent::Finished {
        node: 0,
        kind: ActionKind::Drain,
        result: result("c01n1", false, "scontrol: Invalid node name"),
    });
    assert_eq!(
        app.ops.failures,
        ["c01n1: drain FAILED: scontrol: Invalid node name"]
    );
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(
        app.ops.failures.len(),
        1,
        "other keys do not dismiss a failure"
    );
    key(&mut app, KeyCode::Enter);
    assert!(app.ops.failures.is_empty());
    let events: Vec<&str> = app
        .journal
        .newest_first()
        .map(|e| e.text.as_str())
        .collect();
    assert!(events[0].contains("drain FAILED"), "{events:?}");
    assert_eq!(
        app.progress_note(0).as_deref(),
        Some("drain: FAILED: scontrol: Invalid node name")
    );
}

#[test]
fn a_reboot_is_tracked_until_the_node_comes_back() {
    let now = Instant::now();
    let mut app = three_nodes(now);
    app.on_action(ActionEvent::Finished {
        node: 0,
        kind: ActionKind::Reboot,
        result: result("c01n1", true, ""),
    });
    assert_eq!(app.rows[0].state, NodeState::Rebooting);
    // An SSH reboot is reported ok only once the runner saw the node down: still rebooting until a sample
    // comes, and the first fresh sample after it means back.
    let t1 = now + Duration::from_secs(1);
    app.tick(t1);
    assert_eq!(app.rows[0].state, NodeState::Rebooting);
    let t2 = now + Duration::from_secs(5);
    app.on_msg(msg(
        0,
        t2,
        NodeEvent::Failed {
            kind: FailureKind::Unreachable,
            detail: "connection refused".into(),
        },
    ));
    app.tick(t2);
    assert_eq!(app.rows[0].state, NodeState::Rebooting);
    let t3 = now + Duration::from_secs(90);
    app.on_msg(msg(0, t3, sample(vec![gpu(0, 0, 35)])));
    app.tick(t3);
    app.refresh();
    assert_eq!(
        app.rows[0].state,
        NodeState::Up,
        "seen down by the runner, then a fresh sample: back"
    );
    assert!(app
        .journal
        .newest_first()
        .any(|e| e.text == "c01n1: back after reboot"));
}

#[test]
fn a_reboot_past_its_deadline_is_crit() {
    let now = Instant::now();
    let mut app = three_nodes(now);
    app.on_action(ActionEvent::Finished {
        node: 1,
        kind: ActionKind::Reboot,
        result: result("c01n2", true, ""),
    });
    app.tick(now + Duration::from_secs(901));
    app.refresh();
    assert_eq!(app.rows[1].state, NodeState::Rebooting);
    assert_eq!(app.rows[1].health, Health::Crit);
    assert_eq!(
        app.rows[1].note.as_deref(),
        Some("did not come back within 900 s of the reboot")
    );
}

#[test]
fn the_filter_sees_drain_and_reboot_states_as_the_table_shows_them() {
    let now = Instant::now();
    let mut app = three_nodes(now);
    app.on_action(ActionEvent::Finished {
        node: 0,
        kind: ActionKind::Drain,
        result: result("c01n1", true, ""),
    });
    app.on_action(ActionEvent::Finished {
        node: 1,
        kind: ActionKind::Reboot,
        result: result("c01n2", true, ""),
    });
    let drain_state = app.rows[0].state;
    assert!(
        matches!(drain_state, NodeState::Draining | NodeState::Drained),
        "{drain_state:?}"
    );
    let shown = |app: &App| -> Vec<usize> { app.order.clone() };
    app.set_filter(&format!("state={}", drain_state.as_str()));
    assert_eq!(shown(&app), [0], "state={}", drain_state.as_str());
    app.set_filter("state=drain*");
    assert_eq!(shown(&app), [0]);
    app.set_filter("state=rebooting");
    assert_eq!(shown(&app), [1]);
    app.set_filter("state=rebooting tenant=acme");
    assert_eq!(shown(&app), [1]);
    // Past the reboot deadline the row turns crit, and so does what the filter sees.
    app.tick(now + Duration::from_secs(901));
    app.refresh();
    app.set_filter("health=crit state=rebooting");
    assert_eq!(shown(&app), [1]);
}

#[test]
fn reset_is_a_capital_key_with_a_confirm_that_opens_on_cancel_and_needs_a_drained_node() {
    use fleetop::actions::status::{DrainState, NodeDrain};
    let now = Instant::now();
    let mut app = three_nodes(now);
    key(&mut app, KeyCode::Char('x'));
    assert!(
        !matches!(app.mode, Mode::Reason { .. } | Mode::Confirm(_)),
        "lower-case x is not a reset"
    );
    key(&mut app, KeyCode::Esc);
    app.mode = Mode::Normal;
    // Not drained: the dialog shows the refusal and cannot go ahead.
    key(&mut app, KeyCode::Char('X'));
    assert!(matches!(
        app.mode,
        Mode::Reason {
            kind: ActionKind::Reset,
            ..
        }
    ));
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert!(!c.on_confirm, "Cancel has the focus");
    assert_eq!(c.commands, ["ssh c01n1 -- nvidia-smi -r"]);
    assert!(
        c.refusals
            .iter()
            .any(|r| r.contains("cannot tell whether it is drained")),
        "{:?}",
        c.refusals
    );
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert!(app.ops.queued.is_empty(), "a refused dialog runs nothing");
    key(&mut app, KeyCode::Esc);
    // Drained: Tab to Confirm, Enter queues the reset for the runner (which looks at processes first).
    let drained = NodeDrain {
        state: DrainState::Drained,
        reason: Some("fleetop: xid 79".into()),
        user: None,
    };
    app.on_msg(msg(
        0,
        now,
        NodeEvent::Operation(fleetop::workload::operations::OperationEvent::Drain(
            drained,
        )),
    ));
    key(&mut app, KeyCode::Char('X'));
    key(&mut app, KeyCode::Enter);
    let Mode::Confirm(c) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert!(c.refusals.is_empty(), "{:?}", c.refusals);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ops.queued.len(), 1);
    assert_eq!(app.ops.queued[0].kind, ActionKind::Reset);
    assert_eq!(app.ops.queued[0].gpu, None);
    // A reset whose fresh look still shows the fault stays on screen until acknowledged.
    app.on_action(ActionEvent::Finished {
        node: 0,
        kind: ActionKind::Reset,
        result: result(
            "c01n1",
            false,
            "the reset command exited 0 but GPU 3: the driver still asks for node_reboot",
        ),
    });
    assert_eq!(
        app.ops.failures,
        ["c01n1: reset FAILED: the reset command exited 0 but GPU 3: the driver still asks for node_reboot"]
    );
}
