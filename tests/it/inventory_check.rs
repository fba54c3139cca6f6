//! `fleetop check` on good and bad inventories: summaries, and errors naming file, line, column and value.

use std::process::Command;

fn check(text: &str) -> (i32, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(["check", "--inventory", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn the_reference_inventory_summarises_the_whole_fleet() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml")).unwrap();
    let (code, out, err, _) = check(&text);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cabinets      384"), "{out}");
    assert!(out.contains("nodes         1025 (66 spare)"), "{out}");
    assert!(out.contains("GPUs expected 8200"), "{out}");
    assert!(out.contains("tenants       20"), "{out}");
    assert!(out.contains("2 shared by two or more tenants"), "{out}");
}

const CAB: &str = "[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[1-3]\"\n";

#[test]
fn each_error_names_file_line_column_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        // (inventory, expected line:col, expected words)
        ("[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[5-1]\"\n", "3:15", "reversed range \"5-1\""),
        ("[[cabinet]]\nname = \"c01\"\nnodes = \"n[1-2]\"\n[[cabinet]]\nname = \"c02\"\nnodes = \"n[2-3]\"\n", "6:9", "duplicate node \"n2\""),
        (&format!("{CAB}[[tenant]]\nname = \"a\"\nnodes = \"c01n1\"\n[[tenant]]\nname = \"b\"\nnodes = \"c01n[1-2]\"\n"), "9:9", "node \"c01n1\" is in two tenants: \"a\" (line 5)"),
        (&format!("{CAB}[defaults]\nusr = \"ops\"\n"), "5:1", "unknown field `usr`"),
        ("[[cabinet]]\nname = \"c01\"\nnodes = \"n[1-1000000]\"\n", "3:12", "expands past 100000 hosts"),
        ("[[cabinet]]\nname = \"c01\"\nnodes = \"n[]\"\n", "3:12", "empty range"),
        (&format!("{CAB}[[tenant]]\nname = \"a\"\nnodes = \"c09n1\"\n"), "6:9", "\"c09n1\", which no [[cabinet]] holds"),
        (&format!("{CAB}[[tenant]]\nname = \"a\"\nnodes = \"c01n1\"\ngpus = \"0-9\"\n"), "7:8", "GPU 8 does not exist"),
        (&format!("{CAB}[defaults]\ninterval_ms = 5\n"), "5:15", "below the minimum"),
        ("[[cabinet]]\nname = \"c01\"\nnodes = 3\n", "3:9", "invalid type"),
        (&format!("{CAB}[defaults]\ntenant_from = \"slurm\"\n"), "5:15", "unknown variant `slurm`, expected `inventory` or `scheduler`"),
        (&format!("{CAB}[source]\nkind = \"prometheus\"\nurl = \"http://prometheus:9090\"\nnode_label = \"host) or vector(1\"\n"), "7:1", "node_label \"host) or vector(1\" is not a Prometheus label name"),
        (&format!("{CAB}[source]\nkind = \"prometheus\"\nurl = \"prometheus:9090\"\n"), "5:1", "needs url = \"http(s)://…\" (got \"prometheus:9090\")"),
        (&format!("{CAB}[source]\nkind = \"prometheus\"\nurl = \"http://p:9090\"\nnode_pattern = \"gpu-(\"\n"), "7:1", "node_pattern \"gpu-(\" is not a regular expression"),
        (&format!("{CAB}[source]\nkind = \"prometheus\"\nurl = \"http://p:9090\"\nnode_replacement = \"$1\"\n"), "7:1", "node_replacement needs node_pattern"),
        (&format!("{CAB}[expect]\nib_ignore = [\"mlx5_4/1\", \"mlx5 4\"]\n"), "5:26", "ib_ignore: \"mlx5 4\" is not an HCA (\"mlx5_4\") or a port (\"mlx5_4/1\")"),
    ];
    for (text, position, words) in cases {
        let (code, _, err, path) = check(text);
        assert_eq!(code, 3, "{text}\n{err}");
        let expected = format!("{path}:{position}: ");
        assert!(
            err.contains(&expected),
            "expected {expected:?} in {err:?} for\n{text}"
        );
        assert!(err.contains(words), "expected {words:?} in {err:?}");
    }
}

#[test]
fn all_errors_are_listed_at_once() {
    let text = "[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[3-1]\"\n[[cabinet]]\nname = \"c02\"\nnodes = \"c02n[]\"\n";
    let (code, _, err, _) = check(text);
    assert_eq!(code, 3);
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn per_gpu_tenants_may_share_a_node_on_distinct_gpus() {
    let text = format!("{CAB}[[tenant]]\nname = \"a\"\nnodes = \"c01n1\"\ngpus = \"0-3\"\n[[tenant]]\nname = \"b\"\nnodes = \"c01n1\"\ngpus = \"4-7\"\n");
    let (code, out, err, _) = check(&text);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 shared by two or more tenants"), "{out}");
    let clash = text.replace("gpus = \"4-7\"", "gpus = \"3-7\"");
    let (code, _, err, _) = check(&clash);
    assert_eq!(code, 3);
    assert!(err.contains("hold the same GPUs"), "{err}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetop"))
        .args(["check", "--inventory", "/nonexistent/inv.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("/nonexistent/inv.toml: cannot read inventory"),
        "{err}"
    );
}

/// A small parent that forks, runs its arguments and writes `<exit code> <peak RSS KiB>` (from `wait4`) to the
/// file named first. fleetop is not spawned from this process because every integration test shares it: Linux
/// carries the spawning process's high-water mark into a child that shares its memory until `exec`, so a child
/// of this (large) process would report this process's peak rather than its own.
const WAIT4: &str = "import os, sys\n\
pid = os.fork()\n\
if pid == 0:\n    os.execv(sys.argv[2], sys.argv[2:])\n\
_, status, usage = os.wait4(pid, 0)\n\
open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n";

/// Runs `fleetop check` on `text`: its exit code, its stderr and its peak resident memory (KiB).
fn check_bounded(text: &str) -> (i32, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(&path, text).unwrap();
    let report = dir.path().join("rusage");
    let out = Command::new("python3")
        .args(["-c", WAIT4])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_fleetop"))
        .args(["check", "--inventory", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "the wait4 parent failed: {out:?}");
    let report = std::fs::read_to_string(&report).unwrap();
    let (code, max_rss_kib) = report.split_once(' ').unwrap();
    (
        code.parse().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        max_rss_kib.parse().unwrap(),
    )
}

#[test]
fn hostile_inventories_are_refused_in_bounded_memory() {
    let cases: &[(&str, &str)] = &[
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[18446744073709551615]\"\ngpus_per_node = 4294967295\n",
            "4294967295 GPUs per node is more than fleetop accepts (64)",
        ),
        (
            "[[cabinet]]\nname = \"c[1-1000]\"\nnodes = \"{cabinet}n[1-100000]\"\n",
            "the inventory holds more than 100000 nodes",
        ),
        (
            "[[cabinet]]\nname = \"c[1-384]\"\nnodes = \"n[1-100000]\"\n",
            "the inventory holds more than 100000 nodes",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"--selector=nvidia.com/gpu.present\"\n",
            "unexpected '='",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-8]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"n[1-8]\"\ngpus = \"0-99999\"\n",
            "is not a GPU index",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\n[[tenant]]\nname = \"ev\\u001b]52;c;AAAA\\u0007il\"\nnodes = \"n1\"\n",
            "holds the control character",
        ),
    ];
    for (text, expected) in cases {
        let (code, err, max_rss_kib) = check_bounded(text);
        assert_eq!(code, 3, "{text}\n{err}");
        assert!(err.contains(expected), "{text}\n{err}");
        assert!(
            err.lines().count() <= 102,
            "error lists are capped: {}",
            err.lines().count()
        );
        assert!(
            max_rss_kib < 512 * 1024,
            "{text}: peak RSS {max_rss_kib} KiB"
        );
    }
    // 100,000 duplicate names: the list stops at 100 errors and says how many more there were.
    let (code, err, _) = check_bounded(
        "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-50000]\"\n[[cabinet]]\nname = \"c2\"\nnodes = \"n[1-50000]\"\n",
    );
    assert_eq!(code, 3);
    assert!(err.contains("stopped after 100 errors"), "{err}");
}

#[test]
fn huge_timeouts_are_errors_at_their_line() {
    let text = "[defaults]\ninterval_ms = 1000\n[drain]\nbackend = \"slurm\"\ntimeout_s = 9223372036854775807\n\
                [[cabinet]]\nname = \"c1\"\nnodes = \"n1\"\n";
    let (code, _, err, path) = check(text);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "{path}:5:1: [drain] timeout_s = 9223372036854775807 is more than one day"
        )),
        "{err}"
    );
    let (code, _, err, _) = check(&format!("{CAB}[thresholds]\ngpu_temp_crit_c = nan\n"));
    assert_eq!(code, 3);
    assert!(
        err.contains("gpu_temp_crit_c = NaN is not a temperature"),
        "{err}"
    );
}

/// Issue #25 (1, 2): counts at the edges of u64 and names that amplify are refused while parsing, in
/// bounded memory, at the value's line with the value cut for display.
#[test]
fn wrapping_counts_and_amplifying_names_are_refused_in_bounded_memory() {
    let long_name = format!("{}[1-50000]", "x".repeat(20_000));
    // 100 cabinets of 1,000 nodes whose names are ~200 bytes: each expression fits, the inventory does not.
    let labels = (0..4).map(|_| "a".repeat(50)).collect::<Vec<_>>().join(".");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[0-18446744073709551615]\"\n".into(),
            "3:12",
            "expands past 100000 hosts",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-5,0-18446744073709551614]\"\n".into(),
            "3:16",
            "expands past 100000 hosts",
        ),
        (
            "[[cabinet]]\nname = \"c[0-18446744073709551615]\"\nnodes = \"{cabinet}n1\"\n".into(),
            "2:11",
            "expands past 100000 hosts",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-8]\"\n[[tenant]]\nname = \"acme\"\nnodes = \"n[1-8]\"\ngpus = \"0-18446744073709551615\"\n".into(),
            "7:9",
            "18446744073709551615 is not a GPU index (0-63)",
        ),
        (
            "[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-8]\"\n[[node]]\nname = \"n[0-18446744073709551615]\"\ngpus = 4\n".into(),
            "5:11",
            "expands past 100000 hosts",
        ),
        (
            format!("[[cabinet]]\nname = \"c1\"\nnodes = \"{long_name}\"\n"),
            "3:10",
            "host names up to 20005 bytes long: more than 253",
        ),
        (
            format!("[[cabinet]]\nname = \"c[100-199]\"\nnodes = \"{{cabinet}}{labels}.n[1000-1999]\"\n"),
            "3:9",
            "bytes of node names",
        ),
    ];
    for (text, position, words) in &cases {
        let (code, err, max_rss_kib) = check_bounded(text);
        assert_eq!(code, 3, "{text:.200}\n{err}");
        assert!(err.contains(&format!(":{position}: ")), "{position}: {err}");
        assert!(err.contains(words), "{words}: {err}");
        assert!(err.len() < 1000, "the value is cut for display: {err}");
        assert!(
            max_rss_kib < 256 * 1024,
            "{text:.200}: peak RSS {max_rss_kib} KiB"
        );
    }
}

/// Issue #25 (6): no budgets, or a budget written `-0.0`, is a budget of 0.0 kW, not `-0.0 kW`.
#[test]
fn an_empty_power_budget_is_zero_not_minus_zero() {
    for text in [
        CAB.to_string(),
        CAB.replace("nodes =", "power_budget_kw = -0.0\nnodes ="),
    ] {
        let (code, out, err, _) = check(&text);
        assert_eq!(code, 0, "{text}\n{err}");
        assert!(out.contains("power budget  0.0 kW"), "{out}");
        assert!(!out.contains("-0"), "{out}");
    }
}
