//! Drain and resume through a real single-host Slurm (Debian's slurm-wlm): slurmctld and slurmd on loopback
//! with a generated config, `auth/none`, and fleetop's Slurm backend running scontrol/sinfo locally.

use crate::common;

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

/// A fleet of two sshd nodes, tn01 with a lost GPU (crit) and held drained in Slurm by someone else, tn02
/// healthy and unknown to Slurm; the inventory drains through that Slurm.
fn drained_by_someone_else() -> (common::Fleet, Slurm, std::path::PathBuf) {
    use common::{Behaviour, Fleet, Quirks, Spec};
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(Spec::node(1, 2).with_line("lost 1 0")),
            Behaviour::Agent(Spec::node(2, 2)),
        ],
        Quirks::default(),
    );
    let slurm = Slurm::with_nodes(&["tn01"]);
    let drain = slurm.client(
        "scontrol",
        &[
            "update",
            "nodename=tn01",
            "state=drain",
            "reason=psu swap, ticket 4411",
        ],
    );
    assert!(drain.status.success(), "{}", err(&drain));
    let inventory = fleet.dir.path().join("drained.toml");
    std::fs::write(
        &inventory,
        format!(
            "{}[drain]\nbackend = \"slurm\"\n",
            fleet.inventory(&[]).replace("gpus = 8", "gpus = 2")
        ),
    )
    .unwrap();
    (fleet, slurm, inventory)
}

fn snapshot(
    fleet: &common::Fleet,
    slurm: &Slurm,
    inventory: &std::path::Path,
    args: &[&str],
) -> Output {
    let mut all = vec![
        "snapshot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--timeout",
        "20",
    ];
    all.extend_from_slice(args);
    common::run_bounded(
        fleet.fleetop(&all).env("SLURM_CONF", slurm.conf()),
        std::time::Duration::from_secs(60),
    )
}

#[test]
fn a_node_drained_in_slurm_shows_the_drain_and_does_not_decide_the_exit_status() {
    let (fleet, slurm, inventory) = drained_by_someone_else();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let user = user.trim();

    let table = snapshot(&fleet, &slurm, &inventory, &[]);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    let row = text.lines().find(|l| l.starts_with("tn01")).unwrap_or("");
    assert!(
        row.split_whitespace().nth(3) == Some("drained") && row.contains(" crit "),
        "the drained node keeps its verdict: {text}\n{}",
        err(&table)
    );
    assert!(
        row.contains(&format!(
            "drained by {user}: psu swap, ticket 4411; GPU 1: GPU lost"
        )),
        "{row}"
    );
    assert!(
        text.contains("1 out of service (health in service ok)"),
        "{text}"
    );
    assert_eq!(
        table.status.code(),
        Some(0),
        "only nodes in service decide: {text}\n{}",
        err(&table)
    );

    let json = snapshot(&fleet, &slurm, &inventory, &["--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", err(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let drained = common::node(&doc, "tn01");
    assert_eq!(drained["state"], "drained");
    assert_eq!(drained["health"], "crit");
    assert_eq!(
        drained["operations"],
        serde_json::json!({"state": "drained", "reason": "psu swap, ticket 4411", "by": user})
    );
    let unknown = common::node(&doc, "tn02");
    assert_eq!(unknown["state"], "up");
    assert_eq!(
        unknown["operations"],
        serde_json::json!({"state": "unknown", "reason": "not known to Slurm", "by": null})
    );
    assert_eq!(doc["summary"]["out_of_service"], 1);
    assert_eq!(doc["summary"]["health"], "crit");
    assert_eq!(doc["summary"]["health_in_service"], "ok");
    assert_eq!(
        doc["summary"]["nodes_up"], 2,
        "a drained node that answers is up"
    );

    let csv = snapshot(&fleet, &slurm, &inventory, &["--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(
        csv.lines().any(|l| l.starts_with("tn01,")
            && l.contains(&format!(",drained,\"psu swap, ticket 4411\",{user},"))),
        "{csv}"
    );
    let prom = snapshot(&fleet, &slurm, &inventory, &["--format", "prom"]);
    let prom = String::from_utf8_lossy(&prom.stdout).into_owned();
    assert!(
        prom.contains(&format!(
            "fleetop_node_operations{{node=\"tn01\",cabinet=\"t1\",tenant=\"\",state=\"drained\",reason=\"psu swap, ticket 4411\",by=\"{user}\"}} 1"
        )),
        "{prom}"
    );
    assert!(
        prom.contains("fleetop_fleet_nodes_out_of_service 1\n"),
        "{prom}"
    );

    let all = snapshot(&fleet, &slurm, &inventory, &["--include-drained"]);
    assert_eq!(
        all.status.code(),
        Some(2),
        "--include-drained counts every node: {}",
        String::from_utf8_lossy(&all.stdout)
    );

    // Back in service, the same crit node decides the exit status again.
    let resume = slurm.client("scontrol", &["update", "nodename=tn01", "state=resume"]);
    assert!(resume.status.success(), "{}", err(&resume));
    let back = snapshot(&fleet, &slurm, &inventory, &[]);
    let text = String::from_utf8_lossy(&back.stdout).into_owned();
    assert_eq!(back.status.code(), Some(2), "{text}");
    let row = text.lines().find(|l| l.starts_with("tn01")).unwrap_or("");
    assert_eq!(row.split_whitespace().nth(3), Some("up"), "{text}");
}

#[test]
fn the_live_lines_name_a_node_drained_in_slurm() {
    let (fleet, slurm, inventory) = drained_by_someone_else();
    let mut child = fleet
        .fleetop(&["--inventory", inventory.to_str().unwrap()])
        .env("SLURM_CONF", slurm.conf())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).take(500) {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("out of service") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no line named the drain: {seen:?}"));
    assert!(
        line.contains(", 1 out of service: tn01 drained by ")
            && line.ends_with(": psu swap, ticket 4411"),
        "{line}"
    );
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
