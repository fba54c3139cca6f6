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
