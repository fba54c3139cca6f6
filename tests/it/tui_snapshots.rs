//! Snapshots of every view from fixture states (3 nodes, mixed failures, the 1,025-node demo) at 80×24 and
//! 200×50, plus colour checks read from the rendered buffer's styles.

use crate::tui_common;

use std::time::Instant;

use fleetop::tui::app::{Action, App, Mode, View};
use fleetop::tui::theme::Theme;
use ratatui::style::Modifier;
use tui_common::*;

fn shot(app: &mut App, view: View, width: u16, height: u16) -> String {
    app.view = view;
    draw(app, &Theme::default(), width, height).0
}

#[test]
fn three_nodes_every_view_small() {
    let mut app = three_nodes(Instant::now());
    for view in View::ALL {
        insta::assert_snapshot!(
            format!("three_{}_80x24", view.title().to_lowercase()),
            shot(&mut app, view, 80, 24)
        );
    }
}

#[test]
fn three_nodes_large() {
    let mut app = three_nodes(Instant::now());
    insta::assert_snapshot!("three_nodes_200x50", shot(&mut app, View::Nodes, 200, 50));
    insta::assert_snapshot!("three_detail_200x50", shot(&mut app, View::Detail, 200, 50));
}

#[test]
fn jobs_from_slurm_in_the_nodes_table_and_node_detail() {
    let mut app = three_nodes(Instant::now());
    let mut workload = fleetop::workload::Workload::default();
    fleetop::workload::slurm::parse(
        app.fleet.inventory(),
        "4242|alice|acme|batch|c01n[1-2]|cpu=128,node=2,gres/gpu=8|3-02:00:00|1:00:00|RUNNING|\n\
         4250|bob|acme|debug|c01n1|cpu=2,gres/gpu=1|0:40|UNLIMITED|COMPLETING|\n",
        &mut workload,
    );
    app.on_action(fleetop::tui::app::operate::ActionEvent::Workload(Box::new(
        workload,
    )));
    insta::assert_snapshot!("jobs_nodes_200x50", shot(&mut app, View::Nodes, 200, 50));
    insta::assert_snapshot!("jobs_detail_200x50", shot(&mut app, View::Detail, 200, 50));
}

#[test]
fn mixed_failures_views() {
    let mut app = mixed_failures(Instant::now());
    insta::assert_snapshot!("mixed_nodes_80x24", shot(&mut app, View::Nodes, 80, 24));
    insta::assert_snapshot!("mixed_nodes_200x50", shot(&mut app, View::Nodes, 200, 50));
    insta::assert_snapshot!(
        "mixed_overview_80x24",
        shot(&mut app, View::Overview, 80, 24)
    );
    app.selected = 2;
    insta::assert_snapshot!(
        "mixed_detail_xid_80x24",
        shot(&mut app, View::Detail, 80, 24)
    );
    app.mode = Mode::Help;
    insta::assert_snapshot!("help_80x24", shot(&mut app, View::Nodes, 80, 24));
}

#[test]
fn the_drivers_recovery_action_in_the_node_detail() {
    let now = Instant::now();
    let mut app = mixed_failures(now);
    let mut reboot = gpu(0, 0, 40);
    reboot.recovery_action = Some(2);
    let mut p2p = gpu(1, 30, 50);
    p2p.recovery_action = Some(3);
    app.on_msg(msg(
        0,
        now - std::time::Duration::from_millis(200),
        sample(vec![reboot, p2p]),
    ));
    app.tick(now);
    app.refresh();
    app.selected = 0;
    let screen = shot(&mut app, View::Detail, 80, 24);
    insta::assert_snapshot!("mixed_detail_recovery_80x24", screen);
}

#[test]
fn demo_fleet_fits_and_pages() {
    let now = Instant::now();
    let mut app = fleetop::tui::app::demo_app(5, now);
    app.wall_base = (now, wall());
    let big = shot(&mut app, View::Overview, 200, 50);
    for cabinet in ["c001", "c049", "c337"] {
        assert!(big.contains(cabinet), "all 384 cabinets fit 200×50:\n{big}");
    }
    insta::assert_snapshot!("demo_overview_200x50", big);
    // The demo's drift: old driver, old agent, a swapped GPU's VBIOS, a node short a GPU.
    // The build (git commit) changes with every commit: the snapshot keeps its length, not its digits.
    let build = fleetop::release::BUILD;
    let drift = shot(&mut app, View::Drift, 200, 50).replace(build, &"b".repeat(build.len()));
    for expected in [
        "c088n1 c088n2",
        "c301n1 c301n2 c302n1",
        "c210n1",
        "c150n2",
        "(jump host ",
    ] {
        assert!(drift.contains(expected), "{expected:?}:\n{drift}");
    }
    insta::assert_snapshot!("demo_drift_200x50", drift);
    let small = shot(&mut app, View::Overview, 80, 24);
    assert!(
        small.contains("lines 1-19 of 22 · 384 cabinets"),
        "80×24 pages (18 cabinets a line):\n{small}"
    );
    insta::assert_snapshot!("demo_overview_80x24", small);
    // Moving far down scrolls the overview to keep the selection in view.
    app.selected = app.fleet.inventory().find_node("c380n1").unwrap();
    let paged = shot(&mut app, View::Overview, 80, 24);
    assert!(paged.contains("c3"), "{paged}");
    assert!(
        !paged.contains("\nc001 "),
        "the first cabinets scrolled away:\n{paged}"
    );
    insta::assert_snapshot!("demo_nodes_200x50", shot(&mut app, View::Nodes, 200, 50));
    insta::assert_snapshot!("demo_tenants_80x24", shot(&mut app, View::Tenants, 80, 24));
}

#[test]
fn colours_follow_the_theme_roles() {
    let theme = Theme::default();
    let mut app = mixed_failures(Instant::now());
    app.view = View::Nodes;
    let (text, terminal) = draw(&mut app, &theme, 120, 24);
    let buffer = terminal.backend().buffer();
    let find = |needle: &str| -> (u16, u16) {
        for (y, line) in text.lines().enumerate() {
            if let Some(byte) = line.find(needle) {
                return (line[..byte].chars().count() as u16, y as u16);
            }
        }
        panic!("{needle} not on screen:\n{text}");
    };
    let (x, y) = find("auth-failed");
    assert_eq!(
        buffer[(x, y)].fg,
        theme.unreachable,
        "failure states use the unreachable role"
    );
    let (x, y) = find("crit");
    assert_eq!(buffer[(x, y)].fg, theme.crit);
    let (x, y) = find("stale");
    assert!(
        buffer[(x, y)].modifier.contains(Modifier::DIM),
        "stale data is dimmed"
    );
    let (x, y) = find("n1 ");
    assert_eq!(
        buffer[(x, y)].bg,
        theme.selected_bg,
        "the selected row is highlighted"
    );
}

#[test]
fn no_color_still_tells_states_apart() {
    let theme = Theme::default().without_color();
    let mut app = mixed_failures(Instant::now());
    app.view = View::Overview;
    let (text, terminal) = draw(&mut app, &theme, 80, 24);
    let line = text.lines().nth(3).unwrap();
    // ok, ok-with-warn, crit, stale, three without data, one short of GPUs (crit).
    assert!(line.starts_with("c01 ■▲✖~×××✖"), "{line}");
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content()
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset),
        "no colour at all"
    );
}

#[test]
fn help_is_generated_from_the_live_keymap() {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert("help".to_string(), vec!["h".to_string()]);
    overrides.insert("left".to_string(), vec!["left".to_string()]);
    let mut app = three_nodes(Instant::now());
    app.keymap = app.keymap.clone().with_overrides(&overrides).unwrap();
    app.act(Action::Help);
    let (text, _) = draw(&mut app, &Theme::default(), 100, 40);
    assert!(text.contains("  h  show or hide this help"), "{text}");
    assert!(!text.contains("  ?  show or hide"), "{text}");
    assert!(
        text.contains(" h  help "),
        "the footer hint follows the keymap too:\n{text}"
    );
}

#[test]
fn confirm_dialog_lists_nodes_impact_and_commands() {
    let mut app = three_nodes(Instant::now());
    app.view = View::Nodes;
    app.ops.marks.extend([0, 1]);
    app.confirm(fleetop::actions::ActionKind::Undrain, "repaired".into());
    let (text, _) = draw(&mut app, &Theme::default(), 100, 30);
    assert!(text.contains("type 2 to confirm"), "{text}");
    insta::assert_snapshot!("confirm_undrain_100x30", text);
    // Draining two of a three-node cabinet is refused by the fraction guard: no count prompt, the reason shown.
    app.confirm(fleetop::actions::ActionKind::Drain, "GPU 2 ECC".into());
    let (text, _) = draw(&mut app, &Theme::default(), 100, 30);
    assert!(
        text.contains("refused: cabinet c01: 2 of 3 nodes"),
        "{text}"
    );
    insta::assert_snapshot!("confirm_drain_refused_100x30", text);
}

#[test]
fn a_repeat_offender_is_flagged_and_the_detail_shows_its_history_escaped() {
    use fleetop::store::Event;
    let mut app = three_nodes(Instant::now());
    let lemons = std::collections::HashMap::from([(
        "c01n1".to_string(),
        "repeat offender: GPU 2 (SN 1652000002) 3 incidents in 30 days".to_string(),
    )]);
    app.fleet.note_lemons(&lemons);
    app.refresh();
    let nodes = shot(&mut app, View::Nodes, 80, 24);
    let row = nodes.lines().find(|l| l.contains("c01n1")).unwrap();
    assert!(row.contains('L'), "{row}");
    insta::assert_snapshot!("lemon_nodes_80x24", nodes);

    let event = |time_ms: u64, node: &str, kind: &str, detail: &str| Event {
        time_ms,
        node: node.into(),
        gpu: Some(2),
        serial: Some("1652000002".into()),
        uuid: Some("GPU-2".into()),
        kind: kind.into(),
        detail: detail.into(),
        site: None,
        inventory: None,
    };
    app.selected = 0;
    app.view = View::Detail;
    app.on_history(
        0,
        Ok(vec![
            event(
                1_765_000_000_000,
                "c01n1",
                "health",
                "crit: XID 79\u{1b}[2J\u{202e}",
            ),
            event(
                1_764_000_000_000,
                "c07n4",
                "repair",
                "reboot for XID 79 by ana",
            ),
        ]),
    );
    let detail = shot(&mut app, View::Detail, 200, 50);
    assert!(!detail.contains('\u{1b}') && !detail.contains('\u{202e}'));
    assert!(detail.contains("on c07n4 GPU 2 SN 1652000002"), "{detail}");
    insta::assert_snapshot!("lemon_detail_history_200x50", detail);
    // The pane belongs to the node it was read for.
    app.selected = 1;
    assert!(!shot(&mut app, View::Detail, 200, 50).contains("history (fleet.sqlite"));
}

#[test]
fn two_sites_have_a_header_line_each_and_a_site_column() {
    let now = Instant::now();
    let text = "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[1-2]\"\n";
    let east = fleetop::inventory::Inventory::parse("east.toml", text).unwrap();
    let west = fleetop::inventory::Inventory::parse("west.toml", text).unwrap();
    let merged = fleetop::inventory::Inventory::merge(&[
        ("east".into(), east.into()),
        ("west".into(), west.into()),
    ])
    .unwrap();
    let mut app = App::new(
        std::sync::Arc::new(merged),
        fleetop::tui::keymap::Keymap::default(),
        now,
    );
    app.wall_base = (now, wall());
    for node in [0, 1, 2] {
        app.on_msg(msg(
            node,
            now - std::time::Duration::from_secs(1),
            sample((0..2).map(|i| gpu(i, 50, 60)).collect()),
        ));
    }
    app.on_msg(msg(
        3,
        now - std::time::Duration::from_secs(1),
        fleetop::transport::NodeEvent::Failed {
            kind: fleetop::transport::FailureKind::Unreachable,
            detail: "connect to c01n2:22: Connection refused (os error 111)".into(),
        },
    ));
    app.tick(now);
    app.refresh();
    let screen = shot(&mut app, View::Nodes, 100, 12);
    assert!(screen.contains("east     2 up of 2"), "{screen}");
    assert!(screen.contains("west     1 up of 2"), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("west") && l.contains("c01n2") && l.contains("unreach")),
        "{screen}"
    );
    insta::assert_snapshot!("two_sites_nodes_100x12", screen);
    // Nothing reaches a node through the first site's settings: no shell, no action across sites.
    app.act(Action::Shell);
    assert_eq!(app.ops.shell, None);
    assert!(
        app.ops
            .failures
            .iter()
            .any(|f| f.contains("not across sites")),
        "{:?}",
        app.ops.failures
    );
    app.command("node west/c01n1");
    app.act(Action::AckXids);
    for c in "psu".chars() {
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char(c),
        ));
    }
    app.on_key(ratatui::crossterm::event::KeyEvent::from(
        ratatui::crossterm::event::KeyCode::Enter,
    ));
    assert!(app.ops.acks.is_empty());
    assert_eq!(
        app.status.as_deref(),
        Some("acknowledge: not across sites; :ctx SITE first")
    );
}
