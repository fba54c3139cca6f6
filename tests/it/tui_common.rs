//! Fixture `App` states for TUI tests: fixed inventories, messages at fixed offsets from one clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fleetop::inventory::Inventory;
use fleetop::telemetry::{GpuSample, NodeSample, Source};
use fleetop::transport::{FailureKind, Msg, NodeEvent};
use fleetop::tui::app::App;
use fleetop::tui::keymap::Keymap;
use fleetop::tui::theme::Theme;
use fleetop::tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// 2026-11-24T03:00:00Z: the fixtures' wall clock.
pub fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_489_200)
}

pub fn gpu(index: u32, util: u32, temp: u32) -> GpuSample {
    GpuSample {
        index,
        uuid: Some(format!("GPU-{index:04}")),
        name: Some("NVIDIA H100 80GB HBM3".into()),
        util_pct: Some(util),
        mem_util_pct: Some(util / 2),
        mem_used_mib: Some(40_000),
        mem_total_mib: Some(81_559),
        temp_c: Some(temp),
        mem_temp_c: Some(temp + 5),
        power_w: Some(300.0 + f64::from(util) * 3.5),
        power_limit_w: Some(700.0),
        sm_clock_mhz: Some(1980),
        throttle: Some(vec![]),
        ecc_uncorrected: Some(0),
        remapped_rows_pending: Some(false),
        remapped_rows_failed: Some(false),
        xid: Some(vec![]),
        pcie_gen: Some(5),
        pcie_width: Some(16),
        ..Default::default()
    }
}

pub fn sample(gpus: Vec<GpuSample>) -> NodeEvent {
    NodeEvent::Sample(NodeSample {
        t: 0,
        gpus,
        ..Default::default()
    })
}

pub fn msg(node: usize, at: Instant, event: NodeEvent) -> Msg {
    Msg { node, at, event }
}

pub fn app_for(inventory: &str, now: Instant) -> App {
    let inv = Arc::new(Inventory::parse("fixture.toml", inventory).unwrap());
    let mut app = App::new(inv, Keymap::default(), now);
    app.wall_base = (now, wall());
    app
}

/// GPU 0 runs two ranks of Slurm job 4242 and a graphics process; GPU 1 a pod; the others nothing.
fn running(mut g: GpuSample) -> GpuSample {
    use fleetop::telemetry::process::{GpuProcess, ProcessKind};
    let process = |pid, user: &str, job, pod: Option<&str>| GpuProcess {
        pid,
        kind: ProcessKind::Compute,
        used_mib: Some(30_000),
        uid: Some(1000),
        user: Some(user.into()),
        name: Some("python3".into()),
        slurm_job: job,
        pod_uid: pod.map(Into::into),
    };
    g.processes = Some(match g.index {
        0 => vec![
            process(4100, "alice", Some(4242), None),
            process(4101, "alice", Some(4242), None),
            GpuProcess {
                kind: ProcessKind::Graphics,
                used_mib: None,
                user: None,
                name: Some("Xorg".into()),
                ..process(900, "root", None, None)
            },
            process(4102, "alice", Some(4242), None),
        ],
        1 => vec![process(
            5200,
            "bob",
            None,
            Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789"),
        )],
        _ => vec![],
    });
    g
}

/// Three nodes: one healthy with history, one stale, one unreachable.
pub fn three_nodes(now: Instant) -> App {
    let mut app = app_for(
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 4\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[1-3]\"\n\
         power_budget_kw = 10\n[[tenant]]\nname = \"acme\"\nnodes = \"c01n[1-2]\"\n",
        now,
    );
    let streaming = || NodeEvent::Streaming {
        source: Source::Agent,
        detail: "fleetop agent 0.1.0 · driver 550.90.07 · CUDA 12.4 · 4 GPUs".into(),
        hello: None,
    };
    app.on_msg(msg(0, now - Duration::from_secs(30), streaming()));
    for s in 0..30u32 {
        let at = now - Duration::from_secs(u64::from(29 - s)) - Duration::from_millis(400);
        app.on_msg(msg(
            0,
            at,
            sample(
                (0..4)
                    .map(|i| running(gpu(i, 40 + (s * 7 + i * 13) % 60, 55 + i)))
                    .collect(),
            ),
        ));
    }
    app.on_msg(msg(1, now - Duration::from_secs(40), streaming()));
    app.on_msg(msg(
        1,
        now - Duration::from_secs(12),
        sample((0..4).map(|i| gpu(i, 90, 60)).collect()),
    ));
    app.on_msg(msg(
        2,
        now - Duration::from_secs(5),
        NodeEvent::Failed {
            kind: FailureKind::Unreachable,
            detail: "connect to c01n3:22: Connection refused (os error 111)".into(),
        },
    ));
    app.tick(now);
    app.refresh();
    app
}

/// One node in every state and health that matters at 3 a.m.
pub fn mixed_failures(now: Instant) -> App {
    let mut app = app_for(
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\n[[cabinet]]\nname = \"c01\"\nnodes = \"n[1-8]\"\n\
         [[tenant]]\nname = \"acme\"\nnodes = \"n[1-4]\"\n[[tenant]]\nname = \"globex\"\nnodes = \"n[5-6]\"\n",
        now,
    );
    let recent = now - Duration::from_millis(300);
    app.on_msg(msg(0, recent, sample(vec![gpu(0, 97, 60), gpu(1, 95, 61)])));
    let mut hot = gpu(1, 99, 86);
    hot.throttle = Some(vec!["hw_thermal_slowdown".into()]);
    app.on_msg(msg(1, recent, sample(vec![gpu(0, 97, 70), hot])));
    let mut fell_off = GpuSample {
        index: 1,
        xid: Some(vec![79]),
        ..Default::default()
    };
    fell_off.uuid = Some("GPU-0001".into());
    app.on_msg(msg(2, recent, sample(vec![gpu(0, 0, 40), fell_off])));
    app.on_msg(msg(
        3,
        now - Duration::from_secs(20),
        sample(vec![gpu(0, 50, 50), gpu(1, 50, 50)]),
    ));
    let fail = |kind, detail: &str| NodeEvent::Failed {
        kind,
        detail: detail.into(),
    };
    app.on_msg(msg(
        4,
        recent,
        fail(
            FailureKind::AuthFailed,
            "ops@n5:22 refused authentication (tried ssh-agent)",
        ),
    ));
    app.on_msg(msg(
        5,
        recent,
        fail(
            FailureKind::HostKeyMismatch,
            "HOST KEY CHANGED for n6: server offers SHA256:abc",
        ),
    ));
    app.on_msg(msg(
        6,
        recent,
        fail(
            FailureKind::NoGpuDriver,
            "fleetop agent exited with status 69: cannot use NVML",
        ),
    ));
    app.on_msg(msg(7, recent, sample(vec![gpu(0, 10, 40)])));
    app.tick(now);
    app.refresh();
    app
}

/// The screen as text, one line per row, trailing spaces trimmed.
pub fn draw(
    app: &mut App,
    theme: &Theme,
    width: u16,
    height: u16,
) -> (String, Terminal<TestBackend>) {
    app.viewport = (width, height);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::render(app, theme, f)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..height {
        let line: String = (0..width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    (text, terminal)
}
