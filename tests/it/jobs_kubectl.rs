//! The Kubernetes side of "what an action hits": kubectl's own JSON from a real cluster, served by a `kubectl`
//! stand-in on PATH (no API server can run here), read by `fleetop drain --dry-run` and `fleetop repair --dry-run`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/kubectl/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A `kubectl` that logs its arguments and answers `get pods` with `pods` (a file) and `get nodes` with
/// every node schedulable.
fn standin(dir: &Path, pods: &str) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {calls}\ncase \"$1 $2\" in\n  \"get pods\") cat {pods} ;;\n  \
         \"get nodes\") printf 'gpu01|\\ngpu02|\\nminikube|\\n' ;;\nesac\n",
        calls = dir.join("kubectl.calls").display(),
    );
    let path = bin.join("kubectl");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fleetop(dir: &Path, args: &[&str]) -> Output {
    fleetop_on(dir, "gpu[01-02],minikube", args)
}

/// `fleetop ARGS` on a one-cabinet inventory of `nodes`, drained through Kubernetes.
fn fleetop_on(dir: &Path, nodes: &str, args: &[&str]) -> Output {
    let inventory = dir.join("k8s.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[cabinet]]\nname = \"c1\"\nnodes = \"{nodes}\"\n[drain]\nbackend = \"kubernetes\"\n\
             [actions]\naudit_log = \"{}/audit.jsonl\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(args)
        .arg("--inventory")
        .arg(&inventory)
        .env("PATH", path)
        .env("XDG_STATE_HOME", dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_real_clusters_pod_list_names_the_pods_a_drain_hits() {
    let dir = tempfile::tempdir().unwrap();
    standin(dir.path(), &fixture("pods-minikube.json"));
    let out = fleetop(
        dir.path(),
        &["drain", "minikube", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# drain hits 1 job: default/queue-l4dv8 default (default) 0 GPUs "),
        "{stdout}"
    );
    let calls = std::fs::read_to_string(dir.path().join("kubectl.calls")).unwrap();
    assert_eq!(
        calls, "get pods -A --field-selector status.phase=Running -o json\n",
        "one question for the whole cluster"
    );

    let nothing = fleetop(
        dir.path(),
        &["drain", "gpu02", "--reason", "x", "--dry-run"],
    );
    assert!(text(&nothing.stdout).contains("# drain hits no running jobs or pods"));
}

#[test]
fn gpu_requests_are_counted_and_a_bad_answer_is_not_taken_for_none() {
    let dir = tempfile::tempdir().unwrap();
    standin(dir.path(), &fixture("pods-gpu.json"));
    let out = fleetop(
        dir.path(),
        &["repair", "gpu[01-02]", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("repair waits for 2 jobs: acme-train/trainer-0 default (acme-train) 8 GPUs "),
        "{stderr}"
    );
    assert!(
        stderr.contains("acme-train/sidecar-0 default (acme-train) 0 GPUs"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains("kubectl drain --ignore-daemonsets --delete-emptydir-data"),
        "{}",
        text(&out.stdout)
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"items\": [oops").unwrap();
    standin(dir.path(), garbage.to_str().unwrap());
    let out = fleetop(
        dir.path(),
        &["drain", "gpu01", "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("warning: kubectl: pod list not understood"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stdout).contains("hits"),
        "unknown is never \"no jobs\""
    );
}

#[test]
fn a_pod_on_a_node_with_a_long_name_is_found() {
    let dir = tempfile::tempdir().unwrap();
    // Kubernetes node names are DNS subdomains of up to 253 characters (labels of at most 63); the inventory
    // takes them too.
    let node = format!("gpu-{}.rack7.example.internal", "a".repeat(55));
    assert!(node.len() > 64);
    let pods = std::fs::read_to_string(fixture("pods-minikube.json"))
        .unwrap()
        .replace(
            "\"nodeName\": \"minikube\"",
            &format!("\"nodeName\": \"{node}\""),
        );
    assert!(pods.contains(&node));
    let file = dir.path().join("pods-long.json");
    std::fs::write(&file, pods).unwrap();
    standin(dir.path(), file.to_str().unwrap());
    let out = fleetop_on(
        dir.path(),
        &node,
        &["drain", &node, "--reason", "x", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# drain hits 1 job: default/queue-l4dv8 default (default) 0 GPUs "),
        "{stdout}"
    );
}
