//! Issue #25 (3): output that cannot be written is an error, not a success. Every command that writes to
//! stdout runs through the real binary with `/dev/full` as stdout (every write fails with ENOSPC, as on a
//! full disk) and must exit 3 with the reason on stderr; a closed pipe (`| head`) stays a quiet end.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const INVENTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml");

fn fleetop(args: &[&str], state: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetop"));
    c.args(args)
        .env_remove("FLEETOP_INVENTORY")
        .env("XDG_STATE_HOME", state)
        .env("XDG_CONFIG_HOME", state.join("config"))
        .stdin(Stdio::null());
    c
}

/// Every stdout writer: snapshot in each format, check, the generated docs, help, action and deploy
/// progress, the repair plan.
const WRITERS: &[&[&str]] = &[
    &["snapshot", "--demo", "--format", "json"],
    &["snapshot", "--demo", "--format", "csv"],
    &["snapshot", "--demo", "--format", "table"],
    &["snapshot", "--demo", "--format", "prom"],
    &["check", "--inventory", INVENTORY],
    &["check", "--demo"],
    &["completions", "bash"],
    &["manpage"],
    &["--help"],
    &["drain", "c001n1", "--demo", "--dry-run"],
    &["drain", "c001n1", "--demo", "--dry-run", "--format", "json"],
    &["deploy", "c001n1", "--demo", "--dry-run"],
    &[
        "repair",
        "c001n1",
        "--demo",
        "--dry-run",
        "--reason",
        "disk test",
    ],
];

#[test]
fn a_full_stdout_is_an_error_with_exit_3() {
    let state = tempfile::tempdir().unwrap();
    for args in WRITERS {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = fleetop(args, state.path())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("cannot write the output (stdout): No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Runs fleetop with stdout a pipe whose reader takes one byte and then closes it.
fn with_closed_stdout(args: &[&str], state: &std::path::Path) -> Output {
    let mut child = fleetop(args, state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut byte).unwrap();
    drop(stdout);
    let limit = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < limit, "{args:?} kept running");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_stays_a_quiet_end() {
    let state = tempfile::tempdir().unwrap();
    // The snapshots outlast a pipe buffer, so their writes really meet the closed pipe.
    for (args, status) in [
        (&["snapshot", "--demo", "--format", "json"][..], 2),
        (&["snapshot", "--demo", "--format", "csv"], 2),
        (&["manpage"], 0),
        (&["completions", "bash"], 0),
    ] {
        let out = with_closed_stdout(args, state.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {err}");
        assert!(!err.contains("cannot write"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
