//! `fleetop repair` under pressure, on the sshd fleet: two repairs started together, Ctrl-C while a drain
//! command runs, a state file that is not one. The drain backend is a `command` that takes a few seconds, so a
//! test can act while it runs.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{wait_bounded, Behaviour, Fleet, Quirks, Spec};

struct Setup {
    fleet: Fleet,
    inventory: PathBuf,
}

impl Setup {
    /// One node whose drain command marks its start, sleeps `secs` and marks its end.
    fn new(secs: u32) -> Setup {
        let fleet = Fleet::start(vec![Behaviour::Agent(Spec::node(1, 2))], Quirks::default());
        let dir = fleet.dir.path();
        let drain = dir.join("slow-drain");
        std::fs::write(
            &drain,
            format!(
                "#!/bin/sh\necho \"$$\" > {d}/drain.started\nsleep {secs}\necho done > {d}/drain.done\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&drain, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let inventory = dir.join("repair.toml");
        let text = format!(
            "{}[drain]\nbackend = \"command\"\ndrain_command = \"{} {{node}}\"\nundrain_command = \"true\"\n\
             [actions]\naudit_log = \"{}/audit.jsonl\"\n",
            fleet.inventory(&[]).replace("gpus = 8", "gpus = 2"),
            drain.display(),
            dir.display()
        );
        std::fs::write(&inventory, text).unwrap();
        Setup { fleet, inventory }
    }

    fn dir(&self) -> &Path {
        self.fleet.dir.path()
    }

    /// `fleetop repair ARGS…` in its own process group, as a shell starts a foreground job: a terminal's
    /// Ctrl-C reaches that whole group.
    fn repair(&self, args: &[&str], log: &str) -> Child {
        let mut all = vec!["repair", "--inventory", self.inventory.to_str().unwrap()];
        all.extend_from_slice(args);
        self.fleet
            .fleetop(&all)
            .env("XDG_STATE_HOME", self.dir())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir().join(log)).unwrap())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(name)).unwrap_or_default()
    }

    fn wait_drain_started(&self, log: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.dir().join("drain.started").exists() {
            assert!(
                Instant::now() < deadline,
                "the drain never started:\n{}",
                self.log(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_second_repair_started_meanwhile_is_refused_naming_the_first() {
    let s = Setup::new(4);
    let first = s.repair(&["tn01", "--reason", "XID 79"], "first.log");
    s.wait_drain_started("first.log");
    let second = wait_bounded(
        s.repair(&["tn01", "--reason", "again"], "second.log"),
        Duration::from_secs(30),
    );
    let log = s.log("second.log");
    assert_eq!(second.status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!("fleetop process {} holds", first.id())),
        "the second names the first:\n{log}"
    );
    // The first one's state is its own: the second saved nothing over it.
    let abandon = wait_bounded(
        s.repair(&["--abandon"], "abandon.log"),
        Duration::from_secs(30),
    );
    assert_eq!(abandon.status.code(), Some(2), "{}", s.log("abandon.log"));
    unsafe {
        libc::kill(-(first.id() as i32), libc::SIGINT);
    }
    let first = wait_bounded(first, Duration::from_secs(60));
    assert_eq!(first.status.code(), Some(1), "{}", s.log("first.log"));
    let state = std::fs::read_to_string(s.dir().join("fleetop/repair.json")).unwrap();
    assert!(state.contains("XID 79"), "{state}");
}

#[test]
fn ctrl_c_lets_the_drain_finish_and_keeps_the_state_for_resume() {
    let s = Setup::new(2);
    let child = s.repair(&["tn01", "--reason", "XID 79"], "ctrl-c.log");
    s.wait_drain_started("ctrl-c.log");
    // The terminal's Ctrl-C: SIGINT to the foreground process group, the drain command included.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let out = wait_bounded(child, Duration::from_secs(60));
    let log = s.log("ctrl-c.log");
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        s.dir().join("drain.done").exists(),
        "the drain command ran to its end:\n{log}"
    );
    assert!(log.contains("tn01: waiting for jobs — drained"), "{log}");
    assert!(log.contains("interrupted; the state is kept"), "{log}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir().join("fleetop/repair.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["nodes"][0]["step"], "wait_jobs", "{state}");
    let audit = std::fs::read_to_string(s.dir().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"drain\"") && audit.contains("\"ok\":true"),
        "{audit}"
    );
}

#[test]
fn a_corrupt_state_file_is_named_and_abandon_moves_it_aside() {
    let s = Setup::new(0);
    std::fs::create_dir_all(s.dir().join("fleetop")).unwrap();
    std::fs::write(s.dir().join("fleetop/repair.json"), "{\"version\": 1").unwrap();
    let resume = wait_bounded(
        s.repair(&["--resume"], "resume.log"),
        Duration::from_secs(30),
    );
    let log = s.log("resume.log");
    assert_eq!(resume.status.code(), Some(3), "{log}");
    assert!(log.contains("not a repair state"), "{log}");
    assert!(log.contains("--abandon` moves it aside"), "{log}");
    let abandon = wait_bounded(
        s.repair(&["--abandon"], "abandon.log"),
        Duration::from_secs(30),
    );
    let log = s.log("abandon.log");
    assert_eq!(abandon.status.code(), Some(0), "{log}");
    assert!(log.contains("moved it aside to"), "{log}");
    assert!(!s.dir().join("fleetop/repair.json").exists());
    let kept = std::fs::read_dir(s.dir().join("fleetop"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("repair.json.corrupt-")
        })
        .expect("the corrupt file is kept beside");
    assert_eq!(
        std::fs::read_to_string(kept.path()).unwrap(),
        "{\"version\": 1"
    );
}
