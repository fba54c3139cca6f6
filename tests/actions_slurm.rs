//! Drain and resume through a real single-host Slurm (Debian's slurm-wlm): slurmctld and slurmd on loopback
//! with a generated config, `auth/none`, and fleetop's Slurm backend running scontrol/sinfo locally.

mod common;

use std::process::{Command, Output};

use common::slurm::Slurm;

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

#[test]
fn a_job_whose_account_holds_a_bar_is_unknown_never_none() {
    let slurm = Slurm::start();
    let inventory = slurm.dir.path().join("inv.toml");
    std::fs::write(
        &inventory,
        "[[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-02]\"\n[drain]\nbackend = \"slurm\"\n",
    )
    .unwrap();
    // Without accounting any account name is taken; squeue prints it unescaped inside its `|` fields.
    let job = slurm.sleep_job("gpu01", "ac|me", 120);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let listed = loop {
        let q = slurm.client(
            "squeue",
            &["-h", "-t", "RUNNING", "-O", "JobID:|,Account:|"],
        );
        let text = String::from_utf8_lossy(&q.stdout).into_owned();
        if text.contains(&job) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(listed.contains(&format!("{job}|ac|me|")), "{listed}");
    let out = slurm.fleetop(&inventory, &["drain", "gpu01", "--reason=x", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("no running jobs")
            && stdout.contains("# drain hits jobs unknown (squeue: 1 line not understood"),
        "{stdout}\n{}",
        err(&out)
    );
    slurm.client("scancel", &[&job]);
}
