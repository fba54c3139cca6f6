//! The session wrapper's full-sample request on the sshd fleet: a line the jump host wrote while the agent ran,
//! read by the stdin watcher only after the agent ended, signals nothing, even with another process waiting
//! at the agent's old pid (placed there through the kernel's `ns_last_pid`, as pid reuse would).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetop::inventory::Inventory;
use fleetop::transport::ssh::SshTransport;
use fleetop::transport::{NodeEvent, Transport};

use crate::common::{self, Behaviour, Fleet, Killed, Quirks};

const HELLO: &str =
    r#"{"fleetop_agent":1,"version":"9.9.9","driver":"x","cuda":"x","gpus":1,"compact":60}"#;
const WHOLE: &str = r#"{"t":1,"gpus":[{"index":0,"uuid":"GPU-w","util_pct":5}]}"#;
/// A delta for a GPU the whole sample lacks: the stream lost its place, and the jump host asks for a sample.
const LOST: &str = r#"{"d":2,"gpus":[{"index":5,"util_pct":6}]}"#;

/// Waits (bounded) until `done` holds.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/proc/PID/stat`'s fields after the command name.
fn stat(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The session's stdin watcher: the other member of the agent's session that holds the session's stdin as fd 3.
fn watcher_of(agent: i32) -> i32 {
    let sid = stat(agent).unwrap()[3].clone();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let in_session = stat(pid).is_some_and(|s| s[3] == sid);
        let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3"))
            .is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"));
        if pid != agent && in_session && fd3 {
            found.push(pid);
        }
    }
    assert_eq!(found.len(), 1, "one watcher in session {sid}: {found:?}");
    found[0]
}

/// Bytes waiting in the pipe `pid` reads as fd 3.
fn waiting(pid: i32) -> i32 {
    use std::os::unix::fs::OpenOptionsExt;
    // Not blocking: opening a pipe's read end waits for a writer otherwise.
    let Ok(pipe) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/3"))
    else {
        return 0;
    };
    let mut n: libc::c_int = 0;
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&pipe),
            libc::FIONREAD,
            &mut n,
        )
    };
    n
}

fn id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, common::fleet::TEST_USER])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A process of the test user (so the watcher may signal it) that appends each SIGUSR1 to `log`, started at pid
/// `pid` if the kernel will give it out: `None` when it would not in 100 tries. A root shell sets the kernel's
/// last pid and forks at once (nothing of this process's threads comes between).
fn sentinel_at(pid: i32, log: &Path) -> Option<Sentinel> {
    let user = format!(
        "setpriv --reuid={} --regid={} --clear-groups",
        id("-u"),
        id("-g")
    );
    let script = format!(
        "echo {last} > /proc/sys/kernel/ns_last_pid; {user} sh -c 'trap \"echo USR1 >> $0\" USR1; echo $$; \
         while :; do sleep 0.05; done' {log} & wait",
        last = pid - 1,
        log = log.display()
    );
    for _ in 0..100 {
        let mut shell = Killed(
            Command::new("bash")
                .args(["-c", &script])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        let stdout = shell.0.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let got: i32 = line.trim().parse().unwrap();
        let sentinel = Sentinel {
            pid: got,
            _shell: shell,
        };
        if got == pid {
            return Some(sentinel);
        }
    }
    None
}

/// The sentinel, killed on drop (it is the shell's child, which killing the shell would leave running).
struct Sentinel {
    pid: i32,
    _shell: Killed,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

#[test]
fn a_request_read_after_the_agent_ended_signals_nothing() {
    // Placing a process at a chosen pid needs root; passing without it would check nothing.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test places a process at a chosen pid (ns_last_pid): run it as root"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let file = |name: &str| -> PathBuf { dir.path().join(name) };
    // The agent: its pid, a hello and a whole sample; on `lose`, a delta it cannot apply; on `exit`, the end.
    let wait_for = |name: &str| {
        format!(
            "i=0; while [ ! -e {f} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n",
            f = file(name).display()
        )
    };
    let script = format!(
        "echo $$ > {pid}\necho '{HELLO}'\necho '{WHOLE}'\n{lose}echo '{LOST}'\n{exit}exit 0\n",
        pid = file("agent.pid").display(),
        lose = wait_for("lose"),
        exit = wait_for("exit"),
    );
    let fleet = Fleet::start(vec![Behaviour::Script(script)], Quirks::default());
    let inv = Arc::new(Inventory::parse("wrapper.toml", &fleet.inventory(&[])).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let following = SshTransport::new(&inv).unwrap().follow(&inv, tx);
    until("a sample", || {
        std::iter::from_fn(|| rx.try_recv().ok()).any(|m| matches!(m.event, NodeEvent::Sample(_)))
    });
    let agent: i32 = std::fs::read_to_string(file("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The watcher stops, so the jump host's request waits in the session's stdin until the agent is gone.
    let watcher = watcher_of(agent);
    unsafe { libc::kill(watcher, libc::SIGSTOP) };
    std::fs::write(file("lose"), "").unwrap();
    until("the jump host's request in the watcher's pipe", || {
        waiting(watcher) > 0
    });
    std::fs::write(file("exit"), "").unwrap();
    until("the agent ended and reaped", || stat(agent).is_none());

    // Another process at the agent's old pid: the session's id while the watcher lives, which the kernel
    // gives to no one.
    let signals = file("signals");
    let sentinel = sentinel_at(agent, &signals);
    unsafe { libc::kill(watcher, libc::SIGCONT) };
    until("the watcher read the request and the session's end", || {
        stat(watcher).is_none_or(|s| s[0] == "Z")
    });
    if sentinel.is_some() {
        // Its trap runs between two sleeps: give it a moment to write what it got.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !signals.exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let got = std::fs::read_to_string(&signals).unwrap_or_default();
    assert_eq!(got, "", "a process at the ended agent's pid was signalled");
    assert!(
        sentinel.is_none(),
        "pid {agent} was given out while its session's watcher lived"
    );
    drop(following);
}
