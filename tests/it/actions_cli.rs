//! `fleetop drain|undrain|reboot` through the binary with the command backend: exact argv, guards,
//! read-only, confirmation, and the audit log (success, failure, and a fleetop killed mid-action).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A temp dir with a recording script and an inventory using it.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.sh");
        // Writes each argument NUL-terminated and each call ended by an ASCII record separator (0x1e),
        // then exits with $EXIT (default 0).
        std::fs::write(&record, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> \"$(dirname \"$0\")/calls\"\nprintf '\\036' >> \"$(dirname \"$0\")/calls\"\nsleep \"${SLEEP:-0}\"\nexit \"${EXIT:-0}\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = record.display();
        let d = dir.path().display();
        let inventory = format!(
            "[[cabinet]]\nname = \"c[1-2]\"\nnodes = \"{{cabinet}}n[1-4]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"c1n[1-4]\"\n\
             [drain]\nbackend = \"command\"\ndrain_command = \"{r} drain {{node}} {{reason}} {{operator}}\"\n\
             undrain_command = \"{r} undrain {{node}}\"\nmax_drained_fraction = 0.5\n\
             [reboot]\nbackend = \"command\"\ncommand = \"{r} reboot {{node}} {{bmc}}\"\nrequire_drained = false\nmax_concurrent = 2\n\
             [actions]\naudit_log = \"{d}/audit.jsonl\"\n{extra}"
        );
        std::fs::write(dir.path().join("inv.toml"), inventory).unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fleetop"));
        c.args(args)
            .arg("--inventory")
            .arg(self.path("inv.toml"))
            .env("USER", "oncall")
            .env_remove("SUDO_USER")
            .env("XDG_STATE_HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Each recorded call's argv.
    fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read(self.path("calls")).unwrap_or_default();
        String::from_utf8(text)
            .unwrap()
            .split('\x1e')
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split('\0')
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect()
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Starts a slow drain of `node` and kills fleetop once `intent_written` holds, mid-action.
fn kill_during_drain(s: &Setup, node: &str, intent_written: impl Fn() -> bool) {
    let mut child = s
        .cmd(&["drain", node, "--reason", "slow"])
        .env("SLEEP", "30")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !intent_written() {
        assert!(Instant::now() < deadline, "no readable intent was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const HOSTILE: &[&str] = &[
    "it's \"broken\"; rm -rf / $(reboot) `id` && echo pwned",
    "line one\nline two",
    "ünïcödé — 热 GPU 🔥",
    "--force -rf",
    "'single' \\ back\\slash ${HOME} | tee /etc/passwd",
];

#[test]
fn hostile_reasons_reach_the_backend_verbatim() {
    let s = Setup::new("");
    for reason in HOSTILE {
        // `--reason=…` keeps a reason that starts with a dash from being read as a flag.
        let out = s.run(&["drain", "c1n1", &format!("--reason={reason}")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let calls = s.calls();
    assert_eq!(calls.len(), HOSTILE.len());
    for (call, reason) in calls.iter().zip(HOSTILE) {
        assert_eq!(
            call,
            &["drain", "c1n1", reason, "oncall"],
            "one argument each, exactly as typed"
        );
    }
}

#[test]
fn dry_run_prints_exact_quoted_commands_and_changes_nothing() {
    let s = Setup::new("");
    let out = s.run(&["drain", "c1n[1-2]", "--reason", "it's $(bad)", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let argv = shlex::split(lines[0]).unwrap();
    assert_eq!(
        argv[1..],
        ["drain", "c1n1", "it's $(bad)", "oncall"],
        "{}",
        lines[0]
    );
    assert!(s.calls().is_empty(), "nothing ran");
    assert!(s.audit().is_empty(), "nothing to audit");
}

#[test]
fn read_only_refuses_every_action_from_the_flag_and_the_inventory() {
    for (setup, flag) in [
        (Setup::new(""), true),
        (Setup::new("read_only = true\n"), false),
    ] {
        for args in [
            vec!["drain", "c1n1", "--reason", "x"],
            vec!["undrain", "c1n1"],
            vec!["reboot", "c1n1"],
        ] {
            let mut all = args.clone();
            if flag {
                all.push("--read-only");
            }
            let out = setup.run(&all);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {}", stderr(&out));
            assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
        }
        assert!(setup.calls().is_empty());
        assert!(setup.audit().is_empty());
    }
}

#[test]
fn guards_refuse_before_anything_runs() {
    let s = Setup::new("");
    let out = s.run(&["drain", "c1n1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs a reason"));
    let out = s.run(&["reboot", "c1n[1-3]", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("max_concurrent = 2"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["drain", "c1n[1-2]", "--reason", "x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "several nodes without --yes and no terminal"
    );
    assert!(stderr(&out).contains("needs --yes"), "{}", stderr(&out));
    let out = s.run(&["drain", "c9n1", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("unknown node \"c9n1\""));
    assert!(s.calls().is_empty());
}

#[test]
fn audit_log_has_intent_and_outcome_for_success_and_failure() {
    let s = Setup::new("");
    let ok = s.run(&["drain", "c1n1", "--reason", "ECC", "--format", "json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let doc: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(doc["nodes"][0]["node"], "c1n1");
    assert_eq!(doc["nodes"][0]["ok"], true);
    let failed = s
        .cmd(&["undrain", "c1n[1-2]", "--yes"])
        .env("EXIT", "3")
        .output()
        .unwrap();
    assert_eq!(
        failed.status.code(),
        Some(1),
        "a failed node makes the exit status non-zero"
    );
    let records = s.audit();
    assert_eq!(records.len(), 6);
    assert_eq!(records[0]["record"], "intent");
    assert_eq!(records[0]["operator"], "oncall");
    assert_eq!(records[0]["reason"], "ECC");
    assert!(records[0]["command"]
        .as_str()
        .unwrap()
        .contains("drain c1n1 ECC oncall"));
    assert_eq!(records[1]["record"], "outcome");
    assert_eq!(records[1]["id"], records[0]["id"]);
    assert_eq!(records[1]["ok"], true);
    assert_eq!(records[3]["exit_status"], 3);
    assert_eq!(records[3]["ok"], false);
    assert_eq!(records[4]["node"], "c1n2");
}

#[test]
fn a_killed_fleetop_leaves_an_intent_that_the_next_run_reports() {
    let s = Setup::new("");
    kill_during_drain(&s, "c1n3", || {
        s.audit().iter().any(|r| r["record"] == "intent")
    });
    let records = s.audit();
    assert_eq!(
        records.len(),
        1,
        "the intent is on disk before the command runs: {records:?}"
    );
    let next = s.run(&["undrain", "c1n4", "--dry-run"]);
    let err = stderr(&next);
    assert!(err.contains("unfinished drain of c1n3 by oncall"), "{err}");
}

#[test]
fn the_fraction_guard_needs_force() {
    // The command backend cannot read drain state, so only the nodes of this request count: 3 of c1's 4
    // is more than half (2 allowed).
    let s = Setup::new("");
    let out = s.run(&["drain", "c1n[1-3]", "--reason", "x", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cabinet c1: 3 of 4 nodes would be drained"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["drain", "c1n[1-3]", "--reason", "x", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s.calls().len(), 3);
}

#[test]
fn demo_practice_mode_runs_nothing_but_audits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(["--demo", "drain", "c001n1", "--reason", "practice"])
        .env("XDG_STATE_HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("simulated"));
    let audit = std::fs::read_to_string(dir.path().join("fleetop/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"node\":\"c001n1\"")
            && audit.contains("scontrol update NodeName=c001n1 State=DRAIN"),
        "{audit}"
    );
    assert!(
        audit.lines().all(|l| l.contains("\"demo\":true")),
        "practice records are marked, so a real fleet of the same names ignores them: {audit}"
    );
}

#[test]
fn a_cabinet_can_use_another_backend() {
    let s = Setup::new("");
    let path = s.path("inv.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "[[cabinet]]\nname = \"c[1-2]\"\nnodes = \"{cabinet}n[1-4]\"\n",
        "[[cabinet]]\nname = \"c1\"\nnodes = \"{cabinet}n[1-4]\"\n[[cabinet]]\nname = \"c2\"\nnodes = \"{cabinet}n[1-4]\"\ndrain_backend = \"slurm\"\nreboot_backend = \"slurm\"\n",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let c1 = s.run(&["drain", "c1n1", "--reason", "x", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&c1.stdout).contains("record.sh drain c1n1 x"),
        "{}",
        String::from_utf8_lossy(&c1.stdout)
    );
    let c2 = s.run(&["drain", "c2n1", "--reason", "x", "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&c2.stdout),
        "scontrol update NodeName=c2n1 State=DRAIN 'Reason=fleetop: x'\n"
    );
    let reboot = s.run(&["reboot", "c2n1", "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&reboot.stdout),
        "scontrol reboot ASAP nextstate=RESUME 'reason=fleetop: reboot by oncall' c2n1\n"
    );
    let bad = std::fs::read_to_string(&path)
        .unwrap()
        .replace("drain_backend = \"slurm\"", "drain_backend = \"pbs\"");
    std::fs::write(&path, bad).unwrap();
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("unknown drain backend \"pbs\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn read_only_in_the_config_file_refuses_too() {
    let s = Setup::new("");
    std::fs::create_dir_all(s.path("config/fleetop")).unwrap();
    std::fs::write(s.path("config/fleetop/config.toml"), "read_only = true\n").unwrap();
    let out = s.run(&["drain", "c1n1", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"));
    assert!(s.calls().is_empty());
}

#[test]
fn kubernetes_and_ipmi_plans() {
    let s = Setup::new("");
    let path = s.path("inv.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "backend = \"command\"\ndrain_command",
            "backend = \"kubernetes\"\ntimeout_s = 120\ndrain_command",
        )
        .replacen(
            "[reboot]\nbackend = \"command\"",
            "[reboot]\nbackend = \"ipmi\"\nipmi_user = \"admin\"\nipmi_password_env = \"BMC_PW\"",
            1,
        );
    std::fs::write(&path, text).unwrap();
    let drain = s.run(&["drain", "c1n1", "--reason", "x", "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&drain.stdout),
        "kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=120s -- c1n1\n"
    );
    let undrain = s.run(&["undrain", "c1n1", "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&undrain.stdout),
        "kubectl uncordon -- c1n1\n"
    );
    let reboot = s
        .cmd(&["reboot", "c1n2", "--dry-run"])
        .env("BMC_PW", "hunter2")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&reboot.stdout).into_owned();
    assert_eq!(
        shown,
        "IPMI_PASSWORD=$BMC_PW ipmitool -I lanplus -H c1n2-bmc -U admin -E chassis power cycle\n"
    );
    assert!(!shown.contains("hunter2"), "the password never appears");
}

#[test]
fn an_unwritable_audit_log_refuses_the_action() {
    let s = Setup::new("");
    let path = s.path("inv.toml");
    // A directory where the log file should be: it cannot be opened for appending.
    std::fs::create_dir_all(s.path("blocked.jsonl")).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("audit.jsonl", "blocked.jsonl");
    std::fs::write(&path, text).unwrap();
    let out = s.run(&["drain", "c1n1", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write the audit log"),
        "{}",
        stderr(&out)
    );
    assert!(s.calls().is_empty(), "nothing ran without an audit record");
}

#[test]
fn a_torn_audit_record_is_reported_and_the_next_records_stay_readable() {
    let s = Setup::new("");
    // A full disk cut the last record short: no newline after it.
    std::fs::write(
        s.path("audit.jsonl"),
        "{\"record\":\"intent\",\"id\":\"1-2-3\",\"ti",
    )
    .unwrap();
    // The new intent must be readable on a line of its own, after the torn one.
    kill_during_drain(&s, "c1n3", || {
        std::fs::read_to_string(s.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|r| r["record"] == "intent"))
    });
    let next = s.run(&["undrain", "c1n4", "--dry-run"]);
    let err = stderr(&next);
    assert!(err.contains("unfinished drain of c1n3 by oncall"), "{err}");
    assert!(
        err.contains("1 line(s) are not records (torn writes?), line 1"),
        "{err}"
    );
}

#[test]
fn an_outcome_that_cannot_be_written_is_an_error_not_a_refusal() {
    use std::os::unix::process::CommandExt;
    let s = Setup::new("");
    // Measure one drain's intent, then allow the log to grow by just that much: the command runs, its
    // outcome does not fit.
    let first = s.run(&["drain", "c1n1", "--reason", "ECC"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let text = std::fs::read_to_string(s.path("audit.jsonl")).unwrap();
    let intent_len = text.lines().next().unwrap().len() as u64 + 1;
    let limit = text.len() as u64 + intent_len + 16;
    let mut cmd = s.cmd(&["drain", "c1n2", "--reason", "ECC"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Writes past the limit fail with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &rl);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the command ran: not a refusal (2)\n{err}"
    );
    assert!(
        err.contains("ran on c1n2 but its outcome is not in the audit log"),
        "{err}"
    );
    assert_eq!(s.calls().len(), 2, "the second drain did run");
}

/// Issue #25 (1): a nodeset whose count wraps u64 is refused at once, not expanded until memory runs out.
#[test]
fn a_nodeset_past_u64_is_refused_not_expanded() {
    let s = Setup::new("");
    for set in ["n[0-18446744073709551615]", "n[1-5,0-18446744073709551614]"] {
        let out = s.cmd(&["drain", set, "--dry-run"]).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{set}");
        assert!(out.status.code().is_some(), "{set}: killed by a signal");
        assert!(
            stderr(&out).contains("expands past 100000 hosts"),
            "{set}: {}",
            stderr(&out)
        );
    }
}
