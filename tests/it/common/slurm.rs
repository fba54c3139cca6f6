//! A real single-host Slurm (Debian's slurm-wlm): slurmctld and one slurmd on loopback with a generated config,
//! `auth/none`, for tests that drain, resume and run jobs through fleetop's Slurm backend.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Slurm {
    pub dir: tempfile::TempDir,
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
    pub fn start() -> Slurm {
        Slurm::with_nodes(&["gpu01", "gpu02"])
    }

    /// Starts slurmctld with `nodes` in partition `batch`, the first one with a real slurmd (and alone in
    /// partition `debug`), waiting until it is idle.
    pub fn with_nodes(nodes: &[&str]) -> Slurm {
        let first = nodes[0];
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
             {node_lines}PartitionName=batch Nodes={all} Default=YES State=UP\nPartitionName=debug Nodes={first} State=UP\n",
            u = user(),
            node_lines = nodes
                .iter()
                .map(|n| format!("NodeName={n} NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n"))
                .collect::<String>(),
            all = nodes.join(","),
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
            .push(spawn(&["-D", "-N", first], "/usr/sbin/slurmd"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !slurm.sinfo().contains(&format!("{first}|idle|")) {
            assert!(
                Instant::now() < deadline,
                "{first} never became idle: {}\n{}",
                slurm.sinfo(),
                slurm.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        slurm
    }

    pub fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("slurm.conf")
    }

    pub fn sinfo(&self) -> String {
        let out = Command::new("sinfo")
            .args(["-N", "-h", "-o", "%N|%T|%E"])
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// gpu01's `state|reason`, with Slurm's "not responding" `*` dropped: it appears for a while after a resume.
    pub fn gpu01(&self) -> String {
        self.node("gpu01")
    }

    /// `node`'s `state|reason` as sinfo prints it, without the "not responding" `*`.
    pub fn node(&self, node: &str) -> String {
        let prefix = format!("{node}|");
        let line = self
            .sinfo()
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or("")
            .to_string();
        line.trim_start_matches(&prefix).replacen("*|", "|", 1)
    }

    /// Submits `sleep SECS` to `node`, billed to `account`; the job id.
    pub fn sleep_job(&self, node: &str, account: &str, secs: u32) -> String {
        let out = self.client(
            "sbatch",
            &[
                "--parsable",
                // Without -o the job writes slurm-N.out into the submitting test's directory (the repository).
                "-o",
                "/dev/null",
                "-w",
                node,
                "-A",
                account,
                "--wrap",
                &format!("sleep {secs}"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a Slurm client command (sbatch, squeue, scancel, scontrol) against this cluster.
    pub fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    pub fn logs(&self) -> String {
        ["ctld.log", "d.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }

    pub fn fleetop(&self, inventory: &Path, args: &[&str]) -> Output {
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
