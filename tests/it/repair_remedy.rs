//! `fleetop repair`'s remedy, validation and lemon rule end to end on real parts: a real single-host Slurm
//! whose node `tn01` is a node of the sshd test fleet. Its `systemctl reboot` drops the session; the test takes
//! the node's sshd down and back as a rebooting node does. A stand-in `dcgmi` on the node passes, fails or
//! hangs as the test says (nodes/<address>.dcgmi) and records its calls.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::slurm::Slurm;
use common::{wait_bounded, Behaviour, Fleet, Quirks, Spec};

/// GPU 1 (bus 02) fell off the bus: XID 79, whose catalogue resolution is a reboot.
const XID_79: &str =
    "6,2001,5000000,-;NVRM: Xid (PCI:0000:02:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n";

/// XID 79 as a record logged now (its time in µs since boot from `/proc/uptime`): a new fault after the last
/// audited reboot, where [`XID_79`]'s time, 5 s after boot, lies before it and is history.
fn xid_79_now() -> String {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
    let secs: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    XID_79.replacen(",5000000,", &format!(",{},", (secs * 1e6) as u64), 1)
}

struct Setup {
    fleet: Fleet,
    slurm: Slurm,
    inventory: PathBuf,
}

impl Setup {
    fn new(spec: Spec, repair: &str) -> Setup {
        let fleet = Fleet::start(vec![Behaviour::Agent(spec)], Quirks::default());
        let slurm = Slurm::with_nodes(&["tn01"]);
        let dir = fleet.dir.path();
        let inventory = dir.join("repair.toml");
        let text = format!(
            "{}[drain]\nbackend = \"slurm\"\n[reboot]\nbackend = \"ssh\"\nrequire_drained = true\ndeadline_s = 60\n\
             [actions]\naudit_log = \"{}/audit.jsonl\"\n[repair]\n{repair}\n",
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

    fn node_file(&self, ext: &str) -> PathBuf {
        self.dir()
            .join(format!("nodes/{}.{ext}", self.fleet.nodes[0].addr))
    }

    fn record(&self, tool: &str) -> String {
        let path = self
            .dir()
            .join(format!("records/{}.{tool}", self.fleet.nodes[0].addr));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// A `dcgmi` on the node that does what nodes/<address>.dcgmi says: `pass`, `fail` or `hang`.
    fn install_dcgmi(&self) {
        let tool = self.dir().join("bin/dcgmi");
        std::fs::write(
            &tool,
            format!(
                "#!/bin/sh\nip=${{SSH_CONNECTION#* * }}; ip=${{ip%% *}}\n\
                 echo \"$*\" >> {r}/records/$ip.dcgmi\n\
                 case \"$(cat {r}/nodes/$ip.dcgmi)\" in\n\
                 pass) echo 'Deployment: Pass'; echo 'Memory: Pass'; exit 0 ;;\n\
                 fail) printf '\\n  Memory: \\033[31mFail\\033[0m - GPU 1 ECC\\nDeployment: Pass\\n'; exit 226 ;;\n\
                 *) exec sleep 20 ;;\nesac\n",
                r = self.dir().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    /// `fleetop repair tn01 --reason REASON --dry-run`, its stdout and stderr kept, within a minute.
    fn dry_run(&self, reason: &str) -> std::process::Output {
        wait_bounded(
            self.command(&["tn01", "--reason", reason, "--dry-run"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            Duration::from_secs(60),
        )
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut all = vec![
            "repair",
            "--inventory",
            self.inventory.to_str().unwrap(),
            "--poll",
            "1s",
        ];
        all.extend_from_slice(args);
        let mut cmd = self.fleet.fleetop(&all);
        cmd.env("SLURM_CONF", self.slurm.conf())
            .env("XDG_STATE_HOME", self.dir());
        cmd
    }

    fn repair(&self, args: &[&str], log: &str) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir().join(log)).unwrap())
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(name)).unwrap_or_default()
    }

    fn reboots(&self) -> usize {
        self.record("systemctl")
            .lines()
            .filter(|l| l.starts_with("reboot"))
            .count()
    }

    /// Runs one repair to its end, playing the node's reboot (its kernel log cleared, as a boot clears it) when
    /// it is asked for: the exit status.
    fn repair_through_reboot(&mut self, reason: &str, log: &str) -> i32 {
        let before = self.reboots();
        let mut child = self.repair(&["tn01", "--reason", reason], log);
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.reboots() == before {
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
        std::fs::write(self.node_file("kmsg"), "").unwrap();
        std::thread::sleep(Duration::from_secs(3));
        self.fleet.restart_sshd();
        let out = wait_bounded(child, Duration::from_secs(120));
        out.status.code().unwrap_or(-1)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn validation_passes_fails_and_times_out_before_the_node_returns() {
    let mut s = Setup::new(Spec::node(1, 2), "validate_timeout = \"3s\"");
    // No dcgmi on the node: the dry run says so.
    let dry = s.dry_run("check");
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(err.contains("tn01: no validation configured"), "{err}");
    assert!(
        err.contains("tn01: reboot — no GPU fault that a reset clears"),
        "{err}"
    );
    s.install_dcgmi();
    std::fs::write(s.node_file("dcgmi"), "fail").unwrap();
    let dry = s.dry_run("check");
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        out.contains("ssh tn01 -- dcgmi diag -r 1\nscontrol update NodeName=tn01 State=RESUME"),
        "validation before the undrain:\n{out}"
    );

    // Fails: the node stays drained, the first line of what dcgmi said (escaped) as the reason.
    let code = s.repair_through_reboot("ECC", "fail.log");
    let log = s.log("fail.log");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("FAILED: validation failed: Memory: \\x1b[31mFail"),
        "{log}"
    );
    let state = s.slurm.node("tn01");
    assert!(
        state.starts_with("drained|fleetop: repair: validation failed: Memory:"),
        "{state}"
    );
    assert_eq!(s.record("dcgmi").lines().collect::<Vec<_>>(), ["diag -r 1"]);
    let validated = s
        .audit()
        .into_iter()
        .filter(|r| r["record"] == "outcome" && r["action"] == "repair-validate")
        .collect::<Vec<_>>();
    assert_eq!(validated.len(), 1);
    assert_eq!(validated[0]["ok"], false);
    assert_eq!(validated[0]["exit_status"], 226);
    let detail = validated[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("Deployment: Pass") && !detail.contains('\x1b'),
        "{detail}"
    );

    // Hangs: past validate_timeout it failed, never passed.
    std::fs::write(s.node_file("dcgmi"), "hang").unwrap();
    let code = s.repair_through_reboot("ECC", "hang.log");
    let log = s.log("hang.log");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("FAILED: validation failed: no result within 3s"),
        "{log}"
    );
    assert!(s
        .slurm
        .node("tn01")
        .starts_with("drained|fleetop: repair: validation failed: no result"));

    // Passes: back in service.
    std::fs::write(s.node_file("dcgmi"), "pass").unwrap();
    let code = s.repair_through_reboot("ECC", "pass.log");
    let log = s.log("pass.log");
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("to undrain — validation passed (dcgmi diag -r 1)"),
        "{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.slurm.node("tn01").starts_with("idle|") {
        assert!(Instant::now() < deadline, "{}", s.slurm.node("tn01"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let passed = s
        .audit()
        .into_iter()
        .filter(|r| r["record"] == "outcome" && r["action"] == "repair-validate" && r["ok"] == true)
        .count();
    assert_eq!(passed, 1);
}

#[test]
fn a_gpu_repaired_twice_is_held_back_the_third_time() {
    let spec = Spec::node(1, 2).with_kernel_log(XID_79.trim_end());
    let mut s = Setup::new(
        spec,
        "validate = \"\"\nmax_repairs = 2\nrepair_window = \"30d\"",
    );
    for round in 1..=2 {
        std::fs::write(s.node_file("kmsg"), xid_79_now()).unwrap();
        let log = format!("round{round}.log");
        let code = s.repair_through_reboot("XID 79", &log);
        let text = s.log(&log);
        assert_eq!(code, 0, "round {round}:\n{text}");
        assert!(
            text.contains("tn01: reboot — GPU 1: XID 79 calls for a node reboot"),
            "{text}"
        );
        assert!(text.contains("no validation configured"), "{text}");
    }
    let repaired: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|r| r["record"] == "repaired")
        .collect();
    assert_eq!(repaired.len(), 2, "{repaired:?}");
    assert_eq!(repaired[0]["gpu_id"], "SN 16520001");
    assert_eq!(repaired[0]["cause"], "XID 79");

    // The XID the last reboot dealt with, still in the log as it was, is history: it asks for no remedy.
    std::fs::write(s.node_file("kmsg"), XID_79).unwrap();
    let dry = s.dry_run("old XID");
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(
        err.contains("tn01: reboot — no GPU fault that a reset clears"),
        "{err}"
    );

    // The third time (a new fleetop process: the history is the store's, fed by the audit log's writer) it stops
    // after the drain.
    std::fs::write(s.node_file("kmsg"), xid_79_now()).unwrap();
    let reboots = s.reboots();
    let out = wait_bounded(
        s.repair(&["tn01", "--reason", "XID 79 again"], "held.log"),
        Duration::from_secs(120),
    );
    let log = s.log("held.log");
    assert_eq!(out.status.code(), Some(1), "{log}");
    let held =
        "held for hardware inspection: repeat offender: GPU 1 (SN 16520001) 2 incidents in 30 days";
    assert!(log.contains(&format!("FAILED: {held}")), "{log}");
    assert_eq!(s.reboots(), reboots, "not rebooted again");
    let state = s.slurm.node("tn01");
    assert!(
        state.starts_with(&format!("drained|fleetop: repair: {held}")),
        "{state}"
    );
}

/// GPU 1 (bus 02) had a double-bit ECC error: XID 48, whose catalogue resolution is a GPU reset.
const XID_48: &str =
    "6,2002,5000000,-;NVRM: Xid (PCI:0000:02:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.";

#[test]
fn a_gpu_that_needs_a_reset_is_reset_not_rebooted() {
    let s = Setup::new(Spec::node(1, 2).with_kernel_log(XID_48), "validate = \"\"");
    let dry = s.dry_run("DBE");
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(
        err.contains("tn01: GPU reset — GPU 1: XID 48 calls for a GPU reset (RESET_GPU)"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(out.contains("ssh tn01 -- nvidia-smi -r -i 1"), "{out}");

    let out = wait_bounded(
        s.repair(&["tn01", "--reason", "DBE"], "reset.log"),
        Duration::from_secs(120),
    );
    let log = s.log("reset.log");
    assert_eq!(out.status.code(), Some(0), "{log}");
    // After the reset the whole node is looked at (the rule a reboot's return passes) before validation.
    assert!(
        log.contains("tn01: coming back — GPU reset (ssh tn01 -- nvidia-smi -r -i 1); looking at the whole node")
            && log.contains("tn01: to validate — back, agent answering, health ok"),
        "{log}"
    );
    assert_eq!(s.record("nvidia-smi-reset").trim(), "-r -i 1");
    assert_eq!(s.reboots(), 0, "no reboot:\n{log}");
    let audit = s.audit();
    let outcomes: Vec<String> = audit
        .iter()
        .filter(|r| r["record"] == "outcome")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["ok"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            "drain true",
            "repair-wait-jobs true",
            "reset true",
            "undrain true"
        ]
    );
    let repaired: Vec<_> = audit.iter().filter(|r| r["record"] == "repaired").collect();
    assert_eq!(repaired.len(), 1);
    assert_eq!(repaired[0]["remedy"], "reset");
    assert_eq!(repaired[0]["cause"], "XID 48");
}

#[test]
fn a_reset_that_fails_escalates_to_a_reboot() {
    let mut s = Setup::new(Spec::node(1, 2).with_kernel_log(XID_48), "validate = \"\"");
    std::fs::write(
        s.node_file("reset.sh"),
        "echo 'Unable to reset GPU 00000000:02:00.0 because it is being used by some other process.'\nexit 255\n",
    )
    .unwrap();
    let code = s.repair_through_reboot("DBE", "escalate.log");
    let log = s.log("escalate.log");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("escalating to a reboot"), "{log}");
    assert!(
        log.contains("Unable to reset GPU"),
        "the node's words:\n{log}"
    );
    assert_eq!(s.record("nvidia-smi-reset").trim(), "-r -i 1");
    assert_eq!(s.reboots(), 1);
    let outcomes: Vec<String> = s
        .audit()
        .iter()
        .filter(|r| r["record"] == "outcome")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["ok"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            "drain true",
            "repair-wait-jobs true",
            "reset false",
            "repair-escalate true",
            "reboot true",
            "repair-wait-back true",
            "undrain true"
        ]
    );
    let remedies: Vec<String> = s
        .audit()
        .iter()
        .filter(|r| r["record"] == "repaired")
        .map(|r| r["remedy"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(remedies, ["reboot"], "the failed reset is not a repair");
}
