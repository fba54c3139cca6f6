//! Drain and resume through a real single-host Slurm (Debian's slurm-wlm): slurmctld and slurmd on loopback
//! with a generated config, `auth/none`, and fleetop's Slurm backend running scontrol/sinfo locally.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Slurm {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

impl Slurm {
    /// Starts slurmctld with nodes gpu01 (a real slurmd) and gpu02 (no slurmd), waiting until gpu01 is idle.
    fn start() -> Slurm {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for sub in ["state", "spool"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let (ctld, slurmd) = (port(), port());
        let conf = format!(
            "ClusterName=fleetoptest\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={ctld}\nSlurmdPort={slurmd}\n\
             AuthType=auth/none\nCredType=cred/none\nSlurmUser={u}\nSlurmdUser={u}\nStateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/ctld.pid\nSlurmdPidFile={d}/d.pid\n\
             SlurmctldLogFile={d}/ctld.log\nSlurmdLogFile={d}/d.log\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SchedulerType=sched/builtin\nSelectType=select/linear\nMpiDefault=none\nReturnToService=2\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             NodeName=gpu01 NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\nNodeName=gpu02 NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n\
             PartitionName=batch Nodes=gpu01,gpu02 Default=YES State=UP\nPartitionName=debug Nodes=gpu01 State=UP\n",
            u = user()
        );
        let conf_path = dir.path().join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let spawn = |args: &[&str], bin: &str| {
            Command::new(bin)
                .args(args)
                .env("SLURM_CONF", &conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {bin} (scripts/test installs slurmctld and slurmd): {e}")
                })
        };
        let mut slurm = Slurm {
            dir,
            daemons: vec![spawn(&["-D", "-i"], "/usr/sbin/slurmctld")],
        };
        slurm
            .daemons
            .push(spawn(&["-D", "-N", "gpu01"], "/usr/sbin/slurmd"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !slurm.sinfo().contains("gpu01|idle|") {
            assert!(
                Instant::now() < deadline,
                "gpu01 never became idle: {}\n{}",
                slurm.sinfo(),
                slurm.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        slurm
    }

    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn sinfo(&self) -> String {
        let out = Command::new("sinfo")
            .args(["-N", "-h", "-o", "%N|%T|%E"])
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// gpu01's `state|reason`, with Slurm's "not responding" `*` dropped: it appears for a while after a resume.
    fn gpu01(&self) -> String {
        let line = self
            .sinfo()
            .lines()
            .find(|l| l.starts_with("gpu01|"))
            .unwrap_or("")
            .to_string();
        line.trim_start_matches("gpu01|").replacen("*|", "|", 1)
    }

    fn logs(&self) -> String {
        ["ctld.log", "d.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }

    fn fleetop(&self, inventory: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fleetop"))
            .args(args)
            .arg("--inventory")
            .arg(inventory)
            .env("SLURM_CONF", self.conf())
            .env("XDG_STATE_HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn drain_and_resume_through_real_slurm() {
    let slurm = Slurm::start();
    let inventory = slurm.dir.path().join("inv.toml");
    std::fs::write(
        &inventory,
        "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-02]\"\n[drain]\nbackend = \"slurm\"\n\
         [reboot]\nbackend = \"ssh\"\nrequire_drained = true\n",
    )
    .unwrap();
    let reason = "XID 79 on GPU 5; it's \"gone\" $(reboot) ünïcode";

    let refused = slurm.fleetop(&inventory, &["reboot", "gpu01"]);
    assert_eq!(refused.status.code(), Some(2), "{}", err(&refused));
    assert!(
        err(&refused).contains("gpu01: not drained (idle)"),
        "{}",
        err(&refused)
    );

    let drained = slurm.fleetop(
        &inventory,
        &["drain", "gpu01", &format!("--reason={reason}")],
    );
    assert_eq!(drained.status.code(), Some(0), "{}", err(&drained));
    assert_eq!(
        slurm.gpu01(),
        format!("drained|fleetop: {reason}"),
        "sinfo shows fleetop's reason verbatim"
    );

    // Draining the second node of a two-node cabinet needs --force (half is the most; one is always allowed).
    let second = slurm.fleetop(&inventory, &["drain", "gpu02", "--reason=also"]);
    assert_eq!(second.status.code(), Some(2), "{}", err(&second));
    assert!(
        err(&second).contains("cabinet c1: 2 of 2 nodes"),
        "{}",
        err(&second)
    );

    let resumed = slurm.fleetop(&inventory, &["undrain", "gpu01"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    assert_eq!(slurm.gpu01(), "idle|none");

    // A drain someone else set is not resumed without --force.
    let other = Command::new("scontrol")
        .args([
            "update",
            "NodeName=gpu01",
            "State=DRAIN",
            "Reason=hardware ticket 4711",
        ])
        .env("SLURM_CONF", slurm.conf())
        .output()
        .unwrap();
    assert!(other.status.success());
    let foreign = slurm.fleetop(&inventory, &["undrain", "gpu01"]);
    assert_eq!(foreign.status.code(), Some(2));
    assert!(
        err(&foreign).contains("drained by someone else for \"hardware ticket 4711\""),
        "{}",
        err(&foreign)
    );
    assert_eq!(slurm.gpu01(), "drained|hardware ticket 4711");
    let forced = slurm.fleetop(&inventory, &["undrain", "gpu01", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", err(&forced));
    assert_eq!(slurm.gpu01(), "idle|none");
}
