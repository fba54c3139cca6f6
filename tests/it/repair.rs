//! `fleetop repair` end to end on real parts: a real single-host Slurm whose node `tn01` is also a node of the
//! sshd test fleet, with a real job on it. The node's "reboot" (the fleet's `systemctl`) drops the session; the
//! test then takes the node's sshd down and brings it back a few seconds later, as a rebooting node does.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::slurm::Slurm;
use common::{Behaviour, Fleet, Quirks, Spec};

struct Setup {
    fleet: Fleet,
    slurm: Slurm,
    inventory: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        Setup::nodes(1)
    }

    /// `count` nodes, `tn01`… in the inventory and in Slurm (whose one slurmd answers for `tn01` alone).
    fn nodes(count: u32) -> Setup {
        let behaviours = (1..=count)
            .map(|seed| Behaviour::Agent(Spec::node(seed, 2)))
            .collect();
        let fleet = Fleet::start(behaviours, Quirks::default());
        let names: Vec<String> = (1..=count).map(|i| format!("tn{i:02}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let slurm = Slurm::with_nodes(&names);
        let dir = fleet.dir.path();
        let inventory = dir.join("repair.toml");
        let text = format!(
            "{}[drain]\nbackend = \"slurm\"\n[reboot]\nbackend = \"ssh\"\nrequire_drained = true\ndeadline_s = 60\n\
             [actions]\naudit_log = \"{}/audit.jsonl\"\n",
            fleet.inventory(&[]).replace("gpus = 8", "gpus = 2"),
            dir.display()
        );
        std::fs::write(&inventory, text).unwrap();
        Setup {
            fleet,
            slurm,
            inventory,
        }
    }

    fn dir(&self) -> &Path {
        self.fleet.dir.path()
    }

    /// `fleetop repair ARGS…` in the background, its stderr into `name`.
    fn repair(&self, args: &[&str], name: &str) -> Child {
        let stderr = std::fs::File::create(self.dir().join(name)).unwrap();
        let mut all = vec![
            "repair",
            "--inventory",
            self.inventory.to_str().unwrap(),
            "--poll",
            "1s",
        ];
        all.extend_from_slice(args);
        self.fleet
            .fleetop(&all)
            .env("SLURM_CONF", self.slurm.conf())
            .env("XDG_STATE_HOME", self.dir())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(name)).unwrap_or_default()
    }

    fn state(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir().join("fleetop/repair.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A job on tn01 running `sleep SECS`; its id once Slurm runs it.
    fn job(&self, secs: u32) -> String {
        let id = self.slurm.sleep_job("tn01", "acme", secs);
        wait_for(Duration::from_secs(30), "the job to run", || {
            let q = self.slurm.client("squeue", &["-h", "-j", &id, "-o", "%T"]);
            String::from_utf8_lossy(&q.stdout).trim() == "RUNNING"
        });
        id
    }

    /// Plays the node's reboot: once its `systemctl reboot` ran, its sshd goes away for three seconds, during
    /// which `while_down` changes what the node will be when it comes back.
    fn reboot_when_asked(&mut self, child: &mut Child, log: &str, while_down: impl FnOnce(&Path)) {
        self.reboot_node_when_asked(0, child, log, while_down)
    }

    /// [`Setup::reboot_when_asked`] for the fleet's node `node` (every node's sshd goes away meanwhile).
    fn reboot_node_when_asked(
        &mut self,
        node: usize,
        child: &mut Child,
        log: &str,
        while_down: impl FnOnce(&Path),
    ) {
        let record = self
            .dir()
            .join(format!("records/{}.systemctl", self.fleet.nodes[node].addr));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !std::fs::read_to_string(&record).is_ok_and(|r| r.contains("reboot")) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "repair ended ({status}) before rebooting:\n{}",
                    self.log(log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "no reboot asked:\n{}",
                self.log(log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.fleet.stop_sshd();
        while_down(self.dir());
        std::thread::sleep(Duration::from_secs(3));
        self.fleet.restart_sshd();
    }
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return -1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_repair_waits_for_the_job_then_reboots_and_resumes_after_a_crash() {
    let mut s = Setup::new();
    let job = s.job(300);

    // The first run drains and waits for the job; it is killed there, as a crash would end it.
    let mut first = s.repair(&["tn01", "--reason", "XID 79 on GPU 1"], "first.log");
    let waiting = |s: &Setup| {
        s.state()
            .is_some_and(|st| st["nodes"][0]["step"] == "wait_jobs")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting(&s) {
        assert!(
            Instant::now() < deadline,
            "not waiting for the job:\n{}",
            s.log("first.log")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(Duration::from_secs(10), "the wait to be shown", || {
        s.log("first.log").contains("waiting for 1 job")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let log = s.log("first.log");
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert!(
        log.contains(&format!(
            "repair waits for 1 job: {job} {} (acme) 0 GPUs",
            me.trim()
        )),
        "the job it waits for is named before it starts:\n{log}"
    );
    assert_eq!(
        s.slurm.node("tn01"),
        "draining|fleetop: repair: XID 79 on GPU 1",
        "drained with the reason, the job still running"
    );

    // A second repair of anything is refused while this one is unfinished.
    let other = s
        .fleet
        .fleetop(&[
            "repair",
            "--inventory",
            s.inventory.to_str().unwrap(),
            "tn01",
            "--reason",
            "x",
        ])
        .env("SLURM_CONF", s.slurm.conf())
        .env("XDG_STATE_HOME", s.dir())
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("--resume or --abandon it first"));

    // The job ends; the resumed repair goes on from the wait, reboots the node and puts it back in service.
    let cancelled = s.slurm.client("scancel", &[&job]);
    assert!(cancelled.status.success());
    let mut resumed = s.repair(&["--resume"], "resumed.log");
    s.reboot_when_asked(&mut resumed, "resumed.log", |_| {});
    let code = finish(&mut resumed, Duration::from_secs(120));
    let log = s.log("resumed.log");
    assert_eq!(code, 0, "{log}\n{}", s.fleet.logs());
    for step in [
        "to reboot — no job or pod runs",
        "went down",
        "back, agent answering, health ok",
        "repaired — back in service",
    ] {
        assert!(log.contains(step), "{step:?} missing:\n{log}");
    }
    assert!(
        !log.contains("drained (scontrol"),
        "no second drain on resume:\n{log}"
    );
    wait_for(Duration::from_secs(30), "tn01 to be idle", || {
        s.slurm.node("tn01").starts_with("idle|")
    });
    assert!(s.state().is_none(), "a finished repair leaves no state");

    // Every step is in the audit log, each intent with its outcome (the crashed wait closed by the resume).
    let audit = std::fs::read_to_string(s.dir().join("audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<String> = records
        .iter()
        .filter(|r| r["record"] == "outcome")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["ok"]))
        .collect();
    assert_eq!(
        actions,
        [
            "drain true",
            "repair-wait-jobs true",
            "reboot true",
            "repair-wait-back true",
            "undrain true"
        ]
    );
    let intents = records.iter().filter(|r| r["record"] == "intent").count();
    assert_eq!(intents, actions.len(), "{audit}");
    let reboot = records
        .iter()
        .find(|r| r["record"] == "intent" && r["action"] == "reboot")
        .unwrap();
    assert_eq!(reboot["command"], "ssh tn01 -- systemctl reboot");

    // `fleetop report` reads the repair back from the history store the audit writer fed: every phase but the
    // detection (no view judged the node) and the validation (none configured).
    let report = s
        .fleet
        .fleetop(&[
            "report",
            "--inventory",
            s.inventory.to_str().unwrap(),
            "--since",
            "1h",
            "--format",
            "json",
        ])
        .env("XDG_STATE_HOME", s.dir())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&report.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&report.stderr)));
    assert_eq!(
        doc["gpu_hours"],
        serde_json::Value::Null,
        "no recording: unknown"
    );
    let repairs = doc["repairs"].as_array().unwrap();
    assert_eq!(repairs.len(), 1, "{doc:#}");
    assert_eq!(
        (&repairs[0]["node"], &repairs[0]["status"]),
        (&"tn01".into(), &"done".into())
    );
    let times = &repairs[0]["times"];
    for mark in [
        "drain",
        "jobs ended",
        "reboot/reset",
        "healthy",
        "undrained",
    ] {
        assert!(times[mark].is_string(), "{mark}: {doc:#}");
    }
    assert!(
        times["detect"].is_null() && times["validated"].is_null(),
        "{doc:#}"
    );
}

#[test]
fn a_node_that_comes_back_crit_stays_drained_with_the_reason() {
    let mut s = Setup::new();
    // After the reboot the node's GPU 1 is lost: its spec changes while the node is down.
    let mut child = s.repair(&["tn01", "--reason", "ECC storm"], "crit.log");
    let spec = s
        .dir()
        .join(format!("nodes/{}.spec", s.fleet.nodes[0].addr));
    let text = std::fs::read_to_string(&spec).unwrap();
    s.reboot_when_asked(&mut child, "crit.log", |_| {
        std::fs::write(&spec, format!("{text}lost 1 0\n")).unwrap()
    });
    let code = finish(&mut child, Duration::from_secs(120));
    let log = s.log("crit.log");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("FAILED: came back crit: GPU 1"), "{log}");
    let state = s.slurm.node("tn01");
    assert!(
        state.starts_with("drained|fleetop: repair: came back crit: GPU 1"),
        "{state}"
    );
}

#[test]
fn a_repair_judges_the_return_of_its_own_node_not_the_inventory_s_first() {
    // tn01 stays healthy; tn02 is repaired and comes back with GPU 1 lost. A look made for the whole
    // inventory would file tn01's sample under tn02 and call it back healthy.
    let mut s = Setup::nodes(2);
    let mut child = s.repair(&["tn02", "--reason", "ECC storm"], "second.log");
    let spec = s
        .dir()
        .join(format!("nodes/{}.spec", s.fleet.nodes[1].addr));
    let text = std::fs::read_to_string(&spec).unwrap();
    s.reboot_node_when_asked(1, &mut child, "second.log", |_| {
        std::fs::write(&spec, format!("{text}lost 1 0\n")).unwrap()
    });
    let code = finish(&mut child, Duration::from_secs(120));
    let log = s.log("second.log");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("tn02: FAILED: came back crit: GPU 1"), "{log}");
    assert!(!log.contains("tn01"), "only tn02 is repaired: {log}");
}

#[test]
fn dry_run_read_only_and_abandon_change_nothing() {
    let s = Setup::new();
    let run = |args: &[&str]| {
        let mut all = vec!["repair", "--inventory", s.inventory.to_str().unwrap()];
        all.extend_from_slice(args);
        s.fleet
            .fleetop(&all)
            .env("SLURM_CONF", s.slurm.conf())
            .env("XDG_STATE_HOME", s.dir())
            .output()
            .unwrap()
    };
    let dry = run(&["tn01", "--reason", "check", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        "scontrol update NodeName=tn01 State=DRAIN 'Reason=fleetop: repair: check'\n\
         ssh tn01 -- systemctl reboot\n\
         scontrol update NodeName=tn01 State=RESUME\n"
    );
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("repair waits for no running jobs or pods")
    );
    let read_only = run(&["tn01", "--reason", "check", "--read-only"]);
    assert_eq!(read_only.status.code(), Some(2));
    assert_eq!(s.slurm.node("tn01"), "idle|none");
    let no_reason = run(&["tn01"]);
    assert_eq!(no_reason.status.code(), Some(3));
    let nothing = run(&["--resume"]);
    assert_eq!(nothing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no unfinished repair to resume"));
    assert!(!s.dir().join("fleetop/repair.json").exists());
}

#[test]
fn max_wait_keeps_a_busy_node_drained_and_kill_after_requeues_its_job() {
    let mut s = Setup::new();
    let job = s.job(300);
    let mut waited = s.repair(
        &["tn01", "--reason", "ECC", "--max-wait", "3s"],
        "max-wait.log",
    );
    let code = finish(&mut waited, Duration::from_secs(60));
    let log = s.log("max-wait.log");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("FAILED: still running after 3s: 1 job: {job} ")),
        "{log}"
    );
    assert!(log.contains("the node stays drained"), "{log}");
    assert!(s
        .slurm
        .node("tn01")
        .starts_with("draining|fleetop: repair: ECC"));
    assert!(
        s.state().is_none(),
        "a finished repair, even a failed one, leaves no state"
    );

    // Again with --kill-after: the job is requeued (pending, off the drained node) and the repair goes on.
    let mut killing = s.repair(
        &["tn01", "--reason", "ECC", "--kill-after", "1s"],
        "kill.log",
    );
    s.reboot_when_asked(&mut killing, "kill.log", |_| {});
    let code = finish(&mut killing, Duration::from_secs(120));
    let log = s.log("kill.log");
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!(
            "--kill-after: {job} ended (scontrol requeue {job})"
        )),
        "{log}"
    );
    let state = s.slurm.client("squeue", &["-h", "-j", &job, "-o", "%T"]);
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    assert_ne!(state, "RUNNING", "requeued, not running on tn01");
    let audit = std::fs::read_to_string(s.dir().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"repair-kill-job\""), "{audit}");
}

#[test]
fn a_snapshot_shows_the_nodes_a_running_repair_holds_as_in_repair_and_out_of_service() {
    let s = Setup::new();
    s.job(300);
    let mut repair = s.repair(&["tn01", "--reason", "XID 79 on GPU 1"], "held.log");
    wait_for(
        Duration::from_secs(60),
        "the repair to wait for the job",
        || {
            s.state()
                .is_some_and(|st| st["nodes"][0]["step"] == "wait_jobs")
        },
    );
    let snapshot = s
        .fleet
        .fleetop(&[
            "snapshot",
            "--inventory",
            s.inventory.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "20",
        ])
        .env("SLURM_CONF", s.slurm.conf())
        .env("XDG_STATE_HOME", s.dir())
        .output()
        .unwrap();
    let operator = s.state().map(|st| st["operator"].clone());
    let _ = repair.kill();
    let _ = repair.wait();
    let doc: serde_json::Value = serde_json::from_slice(&snapshot.stdout).unwrap();
    let node = common::node(&doc, "tn01");
    assert_eq!(node["state"], "in-repair", "{node}");
    assert_eq!(
        node["operations"],
        serde_json::json!({
            "state": "in-repair",
            "reason": "repair: waiting for jobs (XID 79 on GPU 1)",
            "by": operator,
        })
    );
    assert_eq!(doc["summary"]["out_of_service"], 1);
}
