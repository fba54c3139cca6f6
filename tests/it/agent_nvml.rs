//! The real `fleetop agent` loading a fake libnvidia-ml.so built by the test suite.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{shared, wait_bounded};
use serde_json::{json, Value};

fn spec_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// The agent on the fake NVML library, reading `kernel_log` (a path that may not exist) as its kernel log.
fn agent_with_log(spec: &std::path::Path, kernel_log: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::fleetop_bin());
    cmd.arg("agent")
        .args(args)
        .env("FAKE_NVML_SPEC", spec)
        .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
        .env("FLEETOP_KERNEL_LOG", kernel_log)
        // `--once` keeps fabric counters between runs: each spec its own state, never the machine's.
        .env("XDG_STATE_HOME", spec.with_extension("state"));
    cmd
}

/// The agent with an empty kernel log: XIDs checked, none.
fn agent(spec: &std::path::Path, args: &[&str]) -> Command {
    let empty = spec.with_extension("kmsg");
    std::fs::write(&empty, "").unwrap();
    agent_with_log(spec, &empty, args)
}

/// `agent --once` output: the hello line and the sample line.
fn once(mut cmd: Command) -> (Value, Value) {
    let out = wait_bounded(
        cmd.arg("--once").stdout(Stdio::piped()).spawn().unwrap(),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    (lines.next().unwrap(), lines.next().unwrap())
}

const SPEC: &str = "driver 550.90.07\ncuda 12040\n\
gpu 0|GPU-aaa|NVIDIA H100 80GB HBM3|97|41|70000|81559|71|NA|650500|700000|1980|8|0|0|0|0|5|16|89|92|95\n\
gpu 1|GPU-bbb|NVIDIA H100 80GB HBM3|NA|0|0|81559|35|40|70000|700000|345|129|2|1|1|79|NA|NA|89|92|95\n";

#[test]
fn once_prints_hello_and_one_exact_sample() {
    let spec = spec_file(SPEC);
    let out = wait_bounded(
        agent(spec.path(), &["--once"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let mut hello = lines[0].clone();
    let kernel = hello
        .as_object_mut()
        .unwrap()
        .remove("kernel")
        .expect("the hello names the kernel");
    assert_eq!(
        hello,
        json!({"fleetop_agent": 1, "version": env!("CARGO_PKG_VERSION"), "driver": "550.90.07", "cuda": "12.4", "gpus": 2, "build": fleetop::release::BUILD})
    );
    let uname =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(kernel, uname.trim());
    let g0 = &lines[1]["gpus"][0];
    assert_eq!(g0["uuid"], "GPU-aaa");
    assert_eq!(g0["serial"], "1652-aaa");
    assert_eq!(g0["vbios"], "96.00.99.00.01");
    assert_eq!(g0["pci_bus_id"], "00000000:01:00.0");
    assert_eq!(g0["util_pct"], 97);
    assert_eq!(g0["mem_util_pct"], 41);
    assert_eq!(g0["mem_used_mib"], 70000);
    assert_eq!(g0["mem_total_mib"], 81559);
    assert_eq!(g0["temp_c"], 71);
    assert_eq!(
        g0["mem_temp_c"],
        Value::Null,
        "unsupported memory temperature is null, not 0"
    );
    assert_eq!(g0["power_w"], 650.5);
    assert_eq!(g0["power_limit_w"], 700.0);
    assert_eq!(g0["sm_clock_mhz"], 1980);
    assert_eq!(g0["throttle"], json!(["hw_slowdown"]));
    assert_eq!(g0["pcie_gen"], 5);
    assert_eq!(g0["pcie_width"], 16);
    assert_eq!(g0["temp_slowdown_c"], 89);
    assert_eq!(g0["mem_temp_max_c"], 95);
    let g1 = &lines[1]["gpus"][1];
    assert_eq!(g1["util_pct"], Value::Null);
    assert_eq!(
        g1["throttle"],
        json!(["gpu_idle", "hw_power_brake_slowdown"])
    );
    assert_eq!(g1["ecc_uncorrected"], 2);
    assert_eq!(g1["remapped_rows_pending"], true);
    assert_eq!(g1["remapped_rows_failed"], true);
    assert_eq!(g1["pcie_gen"], Value::Null);
    assert!(lines[1]["t"].as_u64().unwrap() > 1_700_000_000_000);
}

#[test]
fn streaming_reports_xid_events_from_the_event_set() {
    // GPU 1 supports XID events but not double-bit-ECC events: it must still be registered for XIDs.
    let spec = spec_file(&format!("{SPEC}no_ecc_events 1\n"));
    // No kernel log: the event set is the only source, and the node says XIDs before it are unknown.
    let mut child = agent_with_log(
        spec.path(),
        std::path::Path::new("/nonexistent/kmsg"),
        &["--interval", "100"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen_xid = None;
    for line in BufReader::new(stdout).lines().skip(1).take(40) {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert!(v["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("kernel log not readable")));
        if let Some(xid) = v["gpus"][1]["xid"].as_array().filter(|x| !x.is_empty()) {
            seen_xid = Some(xid.clone());
            break;
        }
        assert_eq!(
            v["gpus"][1]["xid"],
            Value::Null,
            "unknown until an event arrives"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        seen_xid,
        Some(vec![json!(79)]),
        "XID 79 on GPU 1 arrives through the event set"
    );
}

#[test]
fn missing_nvml_is_one_clear_line_and_exit_69() {
    let out = Command::new(common::fleetop_bin())
        .args([
            "agent",
            "--once",
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("fleetop agent: cannot use NVML (/nonexistent/libnvidia-ml.so.1)"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn a_closed_stdout_ends_the_agent_quietly() {
    let spec = spec_file(SPEC);
    let mut child = agent(spec.path(), &["--interval", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let out = wait_bounded(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lost_reset_and_unopenable_gpus_are_errors_not_blanks() {
    let spec = spec_file(&format!(
        "{SPEC}gpu 2|GPU-ccc|NVIDIA H100 80GB HBM3|1|1|1|81559|40|40|70000|700000|345|0|0|0|0|0|5|16|89|92|95\n\
         gpu 3|GPU-ddd|NVIDIA H100 80GB HBM3|1|1|1|81559|40|40|70000|700000|345|0|0|0|0|0|5|16|89|92|95\n\
         lost 1 0\nreset 2\nnohandle 3 15\n"
    ));
    let (hello, sample) = once(agent(spec.path(), &[]));
    assert_eq!(hello["gpus"], 4);
    let gpus = sample["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 4, "no GPU is dropped: {sample:#}");
    assert_eq!(
        gpus[0]["errors"],
        Value::Null,
        "a healthy GPU has no errors"
    );
    assert_eq!(gpus[1]["errors"][0]["kind"], "lost");
    assert_eq!(gpus[1]["util_pct"], Value::Null);
    assert_eq!(gpus[1]["temp_c"], Value::Null);
    assert_eq!(gpus[2]["errors"][0]["kind"], "reset_required");
    assert_eq!(gpus[3]["index"], 3);
    assert_eq!(gpus[3]["errors"][0]["kind"], "lost");
    assert_eq!(gpus[3]["errors"][0]["query"], "handle");
    assert_eq!(gpus[3]["uuid"], Value::Null);
}

#[test]
fn a_gpu_lost_after_some_samples_keeps_the_others_streaming() {
    let spec = spec_file(&format!("{SPEC}lost 0 2\n"));
    let mut child = agent(spec.path(), &["--interval", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let samples: Vec<Value> = BufReader::new(stdout)
        .lines()
        .skip(1)
        .take(5)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(samples[0]["gpus"][0]["util_pct"], 97);
    assert_eq!(samples[1]["gpus"][0]["util_pct"], 97);
    assert_eq!(samples[4]["gpus"][0]["errors"][0]["kind"], "lost");
    assert_eq!(samples[4]["gpus"][0]["util_pct"], Value::Null);
    assert_eq!(
        samples[4]["gpus"][1]["temp_c"], 35,
        "the other GPU still answers"
    );
}

/// Real XID lines, each from a public report:
/// - XID 79 on a node whose driver prints `pid='<unknown>'`: leptonai/gpud PR #46 shows the form;
///   the message is NVIDIA's, as in NVIDIA/NVSentinel issue #155.
/// - XID 13 (Graphics SM Warp Exception): leptonai/gpud PR #46 (`dmesg --ctime` output).
/// - XID 48 on an address no GPU has: the DBE message of NVIDIA's dynamic page retirement docs.
const KERNEL_LOG: &str = "6,1001,4000000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.90.07\n\
6,1002,5000000,-;NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n \
SUBSYSTEM=pci\n\
[    6.500000] NVRM: Xid (PCI:0000:02:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter\n\
[    7.500000] NVRM: Xid (PCI:0000:02:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter\n\
[    8.000000] NVRM: Xid (PCI:0000:44:00): 48, pid=1234, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU\n\
[    9.000000] nvidia-nvswitch1: SXid (PCI:0000:02:00.0): 22013, Non-fatal, Link 00 Minion Link DLREQ interrupt\n\
[    9.000100] nvidia-nvswitch1: SXid (PCI:0000:02:00.0): 22013, Severity 0 Engine instance 00 Sub-engine instance 00\n";

#[test]
fn once_mode_reports_xids_since_boot_from_the_kernel_log() {
    let spec = spec_file(&format!("{SPEC}pci 0 18\n"));
    let log = spec.path().with_extension("kmsg");
    std::fs::write(&log, KERNEL_LOG).unwrap();
    let (_, sample) = once(agent_with_log(spec.path(), &log, &[]));
    let g0 = &sample["gpus"][0];
    assert_eq!(g0["xid"], json!([79]), "{sample:#}");
    assert_eq!(g0["xid_events"][0]["count"], 1);
    assert_eq!(g0["xid_events"][0]["text"], "GPU has fallen off the bus.");
    assert!(g0["xid_events"][0]["first_ms"].as_u64().unwrap() > 1_000_000_000_000);
    let g1 = &sample["gpus"][1];
    assert_eq!(g1["xid"], json!([13]));
    let e = &g1["xid_events"][0];
    assert_eq!(e["count"], 2);
    assert_eq!(
        e["last_ms"].as_u64().unwrap() - e["first_ms"].as_u64().unwrap(),
        1000
    );
    assert_eq!(sample["unmatched_xid"][0]["code"], 48);
    assert_eq!(sample["sxid"][0]["code"], 22013);
    assert_eq!(sample["sxid"][0]["count"], 1, "detail lines are not events");
    assert_eq!(sample["sxid"][0]["fatal"], false);
    assert_eq!(sample["warnings"], Value::Null);

    let (_, blind) = once(agent_with_log(
        spec.path(),
        std::path::Path::new("/nonexistent/kmsg"),
        &[],
    ));
    assert_eq!(blind["gpus"][0]["xid"], Value::Null, "unknown, not none");
    assert!(blind["warnings"][0]
        .as_str()
        .unwrap()
        .ends_with("run the agent as root or set kernel.dmesg_restrict=0"));
}

#[test]
fn field_values_of_every_type_and_t_limit() {
    let spec = spec_file(&format!(
        "{SPEC}memtemp_double\ntlimit 1 -8 -2 0 0 25\nmig 1\nremap_unc 1 3\n"
    ));
    let (_, sample) = once(agent(spec.path(), &[]));
    let g1 = &sample["gpus"][1];
    assert_eq!(
        g1["mem_temp_c"], 40,
        "a memory temperature typed double reads right"
    );
    assert_eq!(g1["tlimit_margin_c"], 25);
    assert_eq!(g1["tlimit_shutdown_c"], -8);
    assert_eq!(g1["tlimit_slowdown_c"], -2);
    assert_eq!(g1["tlimit_gpu_max_c"], 0);
    assert_eq!(
        g1["temp_slowdown_c"],
        Value::Null,
        "the older API is not asked when T.Limit exists"
    );
    assert_eq!(g1["mig_enabled"], true);
    assert_eq!(g1["remapped_rows_uncorrectable"], 3);
    assert_eq!(g1["pci_bus_id"], "00000000:02:00.0");
    let g0 = &sample["gpus"][0];
    assert_eq!(
        g0["temp_slowdown_c"], 89,
        "without T.Limit the older thresholds are read"
    );
    assert_eq!(g0["mig_enabled"], false);
}

#[test]
fn an_implausible_memory_temperature_is_null_with_a_reason() {
    let spec = spec_file(
        "driver 550.90.07\ncuda 12040\nmemtemp_double\n\
         gpu 0|GPU-aaa|NVIDIA H100 80GB HBM3|97|41|70000|81559|71|100000|650500|700000|1980|0|0|0|0|0|5|16|89|92|95\n",
    );
    let (_, sample) = once(agent(spec.path(), &[]));
    let g0 = &sample["gpus"][0];
    assert_eq!(g0["mem_temp_c"], Value::Null);
    assert_eq!(g0["errors"][0]["kind"], "implausible");
    assert_eq!(g0["errors"][0]["query"], "temperature.memory");
}

#[test]
fn listen_serves_the_last_sample_as_prometheus_text() {
    let spec = spec_file(SPEC);
    let addr = format!("127.0.0.1:{}", common::free_port());
    let log = spec.path().with_extension("kmsg");
    std::fs::write(
        &log,
        "[    6.500000] NVRM: Xid (PCI:0000:02:00): 79, pid=1, name=python3, GPU has fallen off the bus.\n",
    )
    .unwrap();
    let _agent = common::Killed(
        agent_with_log(spec.path(), &log, &["--listen", &addr, "--interval", "200"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Ready means answering HTTP 200 with a sample, not just accepting connections.
    let url = format!("http://{addr}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(r) = ureq::get(&url).timeout(Duration::from_secs(2)).call() {
            let body = r.into_string().unwrap();
            if body.contains("fleetop_gpu_utilization_ratio{") {
                break body;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no metrics at {url}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.contains("fleetop_node_up{"), "{text}");
    assert!(
        text.contains("gpu=\"0\",uuid=\"GPU-aaa\"} 0.97\n"),
        "{text}"
    );
    assert!(text.contains("fleetop_gpu_temperature_celsius{"), "{text}");
    // GPU 1 logged XID 79: counted and crit, in the same families the snapshot exports.
    assert!(
        text.contains("fleetop_gpu_health{node=")
            && text.contains(",gpu=\"1\",uuid=\"GPU-bbb\"} 2\n"),
        "{text}"
    );
    let xid = text
        .lines()
        .find(|l| l.starts_with("fleetop_gpu_xid_errors{"))
        .unwrap_or_else(|| panic!("no XID series: {text}"));
    assert!(
        xid.contains("gpu=\"1\"") && xid.contains("xid=\"79\"") && xid.ends_with(" 1"),
        "{xid}"
    );
    common::promtool_check(&text);
    let missing = ureq::get(&format!("http://{addr}/nothing")).call();
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
}

#[test]
fn infiniband_ports_come_from_the_sysfs_root_and_nvlinks_from_nvml() {
    let spec = spec_file(&format!(
        "{SPEC}nvlink 0 18\nnvlink_down 0 5 0\nnvlink_errors 0 2 0 0 7 0 3\n"
    ));
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/node-exporter");
    let (_, sample) = once(agent(
        spec.path(),
        &["--sysfs-root", root.to_str().unwrap()],
    ));
    let ib = sample["ib"].as_array().expect("ports read");
    let names: Vec<String> = ib
        .iter()
        .map(|p| format!("{} {}", p["hca"].as_str().unwrap(), p["port"]))
        .collect();
    assert_eq!(names, ["i40iw0 1", "mlx4_0 1", "mlx4_0 2"]);
    assert_eq!(ib[1]["state"], "4: ACTIVE");
    assert_eq!(ib[1]["phys_state"], "5: LinkUp");
    assert_eq!(ib[1]["rate_gbps"], 40.0);
    assert_eq!(ib[1]["link_layer"], "InfiniBand");
    assert_eq!(ib[1]["counters"]["port_xmit_discards"], 5);
    assert_eq!(ib[0]["counters"], json!({}), "N/A (no PMA) is no value");

    // GPU 0 has 18 links, link 5 down, link 2 with CRC flit errors; GPU 1 has no NVLink.
    let links = &sample["gpus"][0]["nvlink"];
    assert_eq!(links["total"], 18);
    assert_eq!(links["down"], json!([5]));
    assert_eq!(links["errors"][0]["link"], 2);
    assert!(links["errors"][0]["crc_flit"].as_u64().unwrap() >= 7);
    assert_eq!(
        links["errors"].as_array().unwrap().len(),
        1,
        "healthy links cost nothing"
    );
    assert_eq!(sample["gpus"][1].get("nvlink"), None);

    // Without the class directory: checked, none.
    let (_, bare) = once(agent(spec.path(), &["--sysfs-root", "/nonexistent"]));
    assert_eq!(bare["ib"], json!([]));
}

#[test]
fn processes_per_gpu_name_their_user_command_and_job() {
    // A real process, so /proc has it: its owner and command come from the running system.
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id();
    let gone = 4_194_999; // above Linux's largest pid_max: never a live process
    let spec = spec_file(&format!(
        "{SPEC}proc 0 {pid} 1234 c\nproc 0 {pid} 1234 g\nproc 0 {gone} 10 c\nproc 1 {pid} -1 g\n"
    ));
    let (_, sample) = once(agent(spec.path(), &[]));
    let _ = child.kill();
    let _ = child.wait();
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let uid: u32 = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        sample["gpus"][0]["processes"],
        json!([{"pid": pid, "kind": "compute_graphics", "used_mib": 1234, "uid": uid, "user": me.trim(), "name": "sleep"}]),
        "one entry per pid; the gone process is skipped"
    );
    assert_eq!(
        sample["gpus"][1]["processes"],
        json!([{"pid": pid, "kind": "graphics", "uid": uid, "user": me.trim(), "name": "sleep"}]),
        "memory NVML cannot report is absent, not 0"
    );

    // Recorded process trees: the Slurm job and the pod come from the cgroup path.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    let spec = spec_file(&format!(
        "{SPEC}proc 0 4242 70000 c\nproc 0 4444 10 c\nproc 1 4343 512 c\n"
    ));
    let (_, sample) = once(agent(spec.path(), &["--proc-root", root.to_str().unwrap()]));
    assert_eq!(
        sample["gpus"][0]["processes"],
        json!([{"pid": 4242, "kind": "compute", "used_mib": 70000, "uid": 0, "user": "root", "name": "python3", "slurm_job": 1234}]),
        "4444 has no readable status and is skipped"
    );
    assert_eq!(
        sample["gpus"][1]["processes"][0]["pod_uid"],
        "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    );
}

#[test]
fn process_lists_are_empty_unsupported_or_an_error() {
    let spec = spec_file(&format!("{SPEC}proc_error 1 3\n"));
    let (_, sample) = once(agent(spec.path(), &[]));
    assert_eq!(sample["gpus"][0]["processes"], json!([]), "checked, none");
    assert_eq!(
        sample["gpus"][1].get("processes"),
        None,
        "not supported: unknown"
    );
    assert_eq!(sample["gpus"][1].get("errors"), None);

    let spec = spec_file(&format!("{SPEC}proc_error 1 999\n"));
    let (_, sample) = once(agent(spec.path(), &[]));
    assert_eq!(sample["gpus"][1].get("processes"), None);
    let errors = sample["gpus"][1]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["query"] == "processes.compute" && e["kind"] == "unknown"),
        "{errors:?}"
    );
}

#[test]
fn field_230_is_the_recovery_action_and_a_driver_without_it_reads_null() {
    let spec = spec_file(&format!("{SPEC}recovery 0 2\n"));
    let (_, sample) = once(agent(spec.path(), &[]));
    assert_eq!(sample["gpus"][0]["recovery_action"], 2, "{sample:#}");
    assert_eq!(
        sample["gpus"][1].get("recovery_action"),
        None,
        "NOT_SUPPORTED is not reported, not 0"
    );
    assert_eq!(sample["gpus"][0].get("errors"), None);

    // A driver before R565 (no field 230): the last XID 154 line of the kernel log says the action, and a later
    // 154 back to none clears it. Lines as NVIDIA/NVSentinel's syslog monitor tests them
    // (health-monitors/syslog-health-monitor/pkg/xid/parser/csv_test.go).
    let log = spec.path().with_extension("kmsg");
    std::fs::write(
        &log,
        "6,3001,5000000,-;NVRM: Xid (PCI:0000:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)\n\
         6,3002,6000000,-;NVRM: Xid (PCI:0000:02:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)\n\
         6,3003,7000000,-;NVRM: Xid (PCI:0000:02:00): 154, GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)\n",
    )
    .unwrap();
    let old = spec_file(SPEC);
    let (_, sample) = once(agent_with_log(old.path(), &log, &[]));
    assert_eq!(sample["gpus"][0]["recovery_action"], 1, "{sample:#}");
    assert_eq!(
        sample["gpus"][1]["recovery_action"], 0,
        "cleared by the later 154"
    );
    // Where NVML reports field 230, it is the driver's word, whatever the log said before.
    let (_, sample) = once(agent_with_log(spec.path(), &log, &[]));
    assert_eq!(sample["gpus"][0]["recovery_action"], 2);
}

/// Reads the agent's lines on a thread, so each can be waited for with a bound.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn a_recovery_action_change_is_sent_at_once_through_the_event() {
    // GPU 0 supports the recovery-action event; after four event waits its action turns to GPU_RESET. GPU 1 does
    // not support the event: registering it there would be refused. The interval is ten minutes, so only the
    // event can bring the second sample within the bound.
    let spec = spec_file(&format!("{SPEC}recovery 0 0\nrecovery_change 0 1 4\n"));
    let mut child = agent(spec.path(), &["--interval", "600000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let bound = Duration::from_secs(30);
    let hello = rx.recv_timeout(bound).expect("hello");
    assert_eq!(hello["fleetop_agent"], 1);
    let first = rx.recv_timeout(bound).expect("first sample");
    let second = rx.recv_timeout(bound);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first["gpus"][0]["recovery_action"], 0, "{first:#}");
    let second = second.expect("the change arrives at once, not after the interval");
    assert_eq!(second["gpus"][0]["recovery_action"], 1, "{second:#}");
    assert_eq!(
        second.get("warnings"),
        None,
        "the event watch registered every GPU: {second:#}"
    );
}

#[test]
fn a_driver_asking_for_a_reboot_or_reset_makes_the_node_crit_with_the_remedy() {
    use common::{node, Behaviour, Fleet, Quirks, Spec};
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(
                Spec::node(1, 8)
                    .with_recovery_action(3, 2)
                    .with_recovery_action(5, 1)
                    .with_recovery_action(6, 0),
            ),
            // A driver before R565: field 230 not supported, no XID 154.
            Behaviour::Agent(Spec::node(2, 8)),
            // Before R565 with XID 154 lines: GPU 2 (bus 03) asked for a reset, then went back to none.
            Behaviour::Agent(Spec::node(3, 8).with_kernel_log(
                "6,2001,5000000,-;NVRM: Xid (PCI:0000:03:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
            ).with_kernel_log(
                "6,2002,6000000,-;NVRM: Xid (PCI:0000:03:00): 154, GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)",
            )),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let out = fleet.snapshot(&inventory, "json", "20");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            fleet.logs()
        )
    });
    assert_eq!(out.status.code(), Some(2), "{doc:#}");

    let n = node(&doc, "tn01");
    assert_eq!(n["health"], "crit", "{n:#}");
    let reasons: Vec<&str> = n["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("GPU 3: driver asks for a node reboot")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("GPU 5: driver asks for a GPU reset")),
        "{reasons:?}"
    );
    assert_eq!(n["gpus"][3]["recovery_action"], "node_reboot");
    assert_eq!(n["gpus"][5]["recovery_action"], "gpu_reset");
    assert_eq!(n["gpus"][6]["recovery_action"], "none");
    assert_eq!(n["gpus"][6]["health"], "ok");
    assert_eq!(n["gpus"][0]["recovery_action"], Value::Null);

    let old = node(&doc, "tn02");
    assert_eq!(old["health"], "ok", "{old:#}");
    assert_eq!(
        old["gpus"][3]["recovery_action"],
        Value::Null,
        "not reported"
    );

    let cleared = node(&doc, "tn03");
    assert_eq!(
        cleared["health"], "ok",
        "an XID 154 back to none is not crit: {cleared:#}"
    );
    assert_eq!(cleared["gpus"][2]["recovery_action"], "none");
    assert_eq!(cleared["gpus"][2]["xid"], json!([154]));

    // CSV and Prometheus text carry it too.
    let csv = String::from_utf8(fleet.snapshot(&inventory, "csv", "20").stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "recovery_action").unwrap();
    let gpu_column = header.iter().position(|h| *h == "gpu").unwrap();
    let row = csv
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[0] == "tn01" && r[gpu_column] == "3")
        .unwrap();
    assert_eq!(row.len(), header.len(), "{row:?}");
    assert_eq!(row[column], "node_reboot");
    let prom = String::from_utf8(fleet.snapshot(&inventory, "prom", "20").stdout).unwrap();
    assert!(
        prom.contains(
            "fleetop_gpu_recovery_action{node=\"tn01\",gpu=\"3\",uuid=\"GPU-0001-0003\"} 2\n"
        ),
        "{prom}"
    );
    assert!(
        !prom.contains("fleetop_gpu_recovery_action{node=\"tn02\""),
        "not reported: no series"
    );
    common::promtool_check(&prom);
}

#[test]
fn a_kernel_log_over_64_mib_is_read_to_its_end_or_said_unknown() {
    // The newest XID sits past the first 64 MiB of a text log.
    let spec = spec_file(&format!("{SPEC}pci 0 18\n"));
    let log = spec.path().with_extension("kern.log");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        let chunk = "[    1.000000] usb 1-1: new high-speed USB device number 2 using xhci_hcd\n"
            .repeat(14_000);
        let mut written = 0;
        while written <= 65 * 1024 * 1024 {
            out.write_all(chunk.as_bytes()).unwrap();
            written += chunk.len();
        }
        out.write_all(b"[    9.000000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, name=x, GPU has fallen off the bus.\n")
            .unwrap();
    }
    let (_, sample) = once(agent_with_log(spec.path(), &log, &[]));
    std::fs::remove_file(&log).unwrap();
    let xid = &sample["gpus"][0]["xid"];
    assert_ne!(
        xid,
        &json!([]),
        "checked and none, with an XID 79 in the log: {sample:#}"
    );
    if xid.is_null() {
        // A machine too slow to read it all within the agent's budget says so instead.
        let warnings = sample["warnings"].to_string();
        assert!(warnings.contains("not read to its end"), "{warnings}");
    } else {
        assert_eq!(xid, &json!([79]));
    }
}

/// Copies `tests/fixtures/sysfs/<tree>` under a new root; returns the root and its first port's directory.
fn sysfs_copy(tree: &str, port: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(tree)
        .join("sys");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&from)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let port = root.path().join("sys/class/infiniband").join(port);
    (root, port)
}

#[test]
fn once_twice_reports_what_rose_since_the_previous_run_and_saturated_counters_do_not_rise() {
    let state = tempfile::tempdir().unwrap();
    let (root, port) = sysfs_copy("procfs-mlx5", "mlx5_0/ports/1");
    let set =
        |file: &str, value: u64| std::fs::write(port.join(file), format!("{value}\n")).unwrap();
    set("counters/symbol_error", 10);
    // link_downed is 8 bits wide in the kernel's sysfs: at 255 it counts no more.
    set("counters/link_downed", 255);
    let run = |nvlink_errors: &str| {
        let spec = spec_file(&format!("{SPEC}nvlink 0 18\n{nvlink_errors}\n"));
        let mut cmd = agent(
            spec.path(),
            &["--sysfs-root", root.path().to_str().unwrap()],
        );
        cmd.env("XDG_STATE_HOME", state.path());
        once(cmd).1
    };
    let first = run("nvlink_errors 0 2 1 0 7 0 0");
    assert_eq!(
        first["gpus"][0]["nvlink"].get("rose"),
        None,
        "a first run knows no rise"
    );
    assert_eq!(first["ib"][0].get("rose"), None);
    assert!(state.path().join("fleetop/fabric-counters.json").is_file());

    set("counters/symbol_error", 25);
    set("hw_counters/rnr_nak_retry_err", 2);
    let second = run("nvlink_errors 0 2 4 0 9 0 0");
    let rose = &second["gpus"][0]["nvlink"]["rose"];
    assert!(rose["over_ms"].as_u64().unwrap() > 0, "{rose}");
    assert_eq!(
        rose["links"],
        json!([{"link": 2, "replay": 3, "crc_flit": 2}])
    );
    let ib = &second["ib"][0];
    assert_eq!(ib["counters"]["link_downed"], 255);
    assert_eq!(ib["fw_ver"], "14.28.2006");
    assert_eq!(
        ib["rose"]["counters"],
        json!({"symbol_error": 15, "rnr_nak_retry_err": 2}),
        "a saturated counter has no known rise"
    );

    // Nothing rose since: checked, none.
    let third = run("nvlink_errors 0 2 4 0 9 0 0");
    assert_eq!(third["gpus"][0]["nvlink"]["rose"]["links"], json!([]));
    assert_eq!(third["ib"][0]["rose"]["counters"], json!({}));

    // Another boot (another boot_id) starts over: no rise from the previous boot's counters.
    let proc = tempfile::tempdir().unwrap();
    let random = proc.path().join("sys/kernel/random");
    std::fs::create_dir_all(&random).unwrap();
    std::fs::write(
        random.join("boot_id"),
        "0d9e6c5b-7f0e-4a8e-9a51-2b1f3c4d5e6f\n",
    )
    .unwrap();
    set("counters/symbol_error", 40);
    let spec = spec_file(&format!("{SPEC}nvlink 0 18\n"));
    let mut cmd = agent(
        spec.path(),
        &[
            "--sysfs-root",
            root.path().to_str().unwrap(),
            "--proc-root",
            proc.path().to_str().unwrap(),
        ],
    );
    cmd.env("XDG_STATE_HOME", state.path());
    let rebooted = once(cmd).1;
    assert_eq!(rebooted["ib"][0].get("rose"), None, "{}", rebooted["ib"][0]);
}

/// AER lines as kernels 5.x/6.x print them (drivers/pci/pcie/aer.c `aer_print_error`) for the GPU at bus 01.
const AER_LOG: &str = "\
6,3001,7000000,-;pcieport 0000:00:01.0: AER: Corrected error received: 0000:01:00.0\n\
4,3002,7000100,-;nvidia 0000:01:00.0: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)\n\
4,3003,7000200,-;nvidia 0000:01:00.0:   device [10de:2330] error status/mask=00000001/0000e000\n\
3,3004,8000000,-;nvidia 0000:01:00.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, (Receiver ID)\n\
4,3005,9000000,-;mlx5_core 0000:41:00.0: AER: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)\n";

#[test]
fn board_values_pcie_fabric_and_memory_health_come_from_nvml_and_the_kernel_log() {
    let spec = spec_file(&format!(
        "{SPEC}tlimit 1 -8 -2 0 0 25\n\
         pcie_max 0 5 16\npcie_replay 0 7 3\nfabric 0 3 0 0\nfabric 1 1 0 0\n\
         sram 0 1\nsram 1 0\nunrepairable 1 1\nremap_hist 0 3070 0 0 1 1\n"
    ));
    let log = spec.path().with_extension("kmsg");
    std::fs::write(&log, AER_LOG).unwrap();
    let (_, sample) = once(agent_with_log(spec.path(), &log, &[]));
    let g0 = &sample["gpus"][0];
    assert_eq!(g0["pcie_max_gen"], 5, "{sample:#}");
    assert_eq!(g0["pcie_max_width"], 16);
    assert_eq!(g0["pcie_replay"], 10, "start 7, one sample of 3");
    assert_eq!(
        g0.get("pcie_replay_rise"),
        None,
        "one reading has no rise: {g0:#}"
    );
    assert_eq!(
        g0["fabric"],
        json!({"state": "completed", "status": 0, "health_mask": 0, "clique_id": 1})
    );
    assert_eq!(g0["sram_threshold_exceeded"], true);
    assert_eq!(
        g0["remap_banks"],
        json!({"max": 3070, "high": 0, "partial": 0, "low": 1, "none": 1})
    );
    assert_eq!(
        g0["pcie_aer"]["corrected"], 1,
        "the root port's summary is not counted twice"
    );
    assert_eq!(g0["pcie_aer"]["fatal"], 1);
    assert!(g0["pcie_aer"]["last_text"]
        .as_str()
        .unwrap()
        .contains("severity=Uncorrected (Fatal)"));
    let g1 = &sample["gpus"][1];
    assert_eq!(
        g1["fabric"],
        json!({"state": "not_started", "health_mask": 0, "clique_id": 1})
    );
    assert_eq!(g1["sram_threshold_exceeded"], false);
    assert_eq!(g1["memory_unrepairable"], true);
    assert_eq!(
        g1["pcie_aer"],
        json!({"corrected": 0, "nonfatal": 0, "fatal": 0}),
        "checked, none"
    );
    assert_eq!(g1.get("pcie_max_gen"), None, "not supported: absent");
    assert_eq!(g1.get("remap_banks"), None);
    assert_eq!(
        g1["mem_temp_max_c"], 95,
        "the memory maximum is read even where T.Limit is offered"
    );
    assert_eq!(g1["temp_slowdown_c"], Value::Null);
    assert_eq!(g0.get("memory_unrepairable"), None);

    let (_, blind) = once(agent_with_log(
        spec.path(),
        std::path::Path::new("/nonexistent/kmsg"),
        &[],
    ));
    assert_eq!(
        blind["gpus"][0].get("pcie_aer"),
        None,
        "an unreadable log is unknown, not none"
    );
}

#[test]
fn a_streaming_agent_reports_replay_and_violation_rises_over_its_window() {
    let spec = spec_file(&format!(
        "{SPEC}pcie_max 0 5 16\npcie_replay 0 0 50\nviolation 0 100 40\n"
    ));
    let mut child = agent(spec.path(), &["--interval", "200"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let bound = Duration::from_secs(30);
    let _hello = rx.recv_timeout(bound).expect("hello");
    let first = rx.recv_timeout(bound).expect("first sample");
    let third = rx.recv_timeout(bound).and_then(|_| rx.recv_timeout(bound));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first["gpus"][0].get("pcie_replay_rise"), None, "{first:#}");
    let third = third.expect("third sample");
    let g0 = &third["gpus"][0];
    let rise = &g0["pcie_replay_rise"];
    assert_eq!(rise["by"], 100, "two samples of 50 since the first: {g0:#}");
    assert!(rise["over_ms"].as_u64().unwrap() >= 300, "{g0:#}");
    let violation = &g0["clock_violation"];
    assert!(violation["thermal_ms"].as_u64().unwrap() > 0, "{g0:#}");
    assert!(
        violation["thermal_ms"].as_u64() <= violation["over_ms"].as_u64(),
        "{g0:#}"
    );
    assert_eq!(third["gpus"][1].get("clock_violation"), None);
}

#[test]
fn board_health_makes_nodes_warn_or_crit_with_one_power_brake_reason() {
    use common::{node, Behaviour, Fleet, Quirks, Spec};
    // An H200 that offers T.Limit fields: HBM at 99 °C against its 95 °C maximum.
    let h200 = Spec::node(1, 2)
        .with_gpu_column(0, 2, "NVIDIA H200")
        .with_gpu_column(1, 2, "NVIDIA H200")
        .with_gpu_column(0, 8, "99")
        .with_line("tlimit 0 -8 -2 0 0 30")
        .with_line("tlimit 1 -8 -2 0 0 30");
    // An HGX H100: GPU 1 trained at x8, GPU 2 not registered with the fabric, GPUs 3 and 4 under a power brake
    // (clock event reason 0x80), GPU 5 with memory it cannot repair.
    let hgx = Spec::node(2, 8)
        .with_line("pcie_max 1 5 16")
        .with_gpu_column(1, 18, "8")
        .with_line("fabric 2 1 0 0")
        .with_line("fabric 0 3 0 0")
        .with_gpu_column(3, 12, "128")
        .with_gpu_column(4, 12, "128")
        .with_line("unrepairable 5 1");
    // One GPU under a power brake stays a GPU reason.
    let single = Spec::node(3, 2).with_gpu_column(0, 12, "128");
    let fleet = Fleet::start(
        vec![
            Behaviour::Agent(h200),
            Behaviour::Agent(hgx),
            Behaviour::Agent(single),
        ],
        Quirks::default(),
    );
    let inventory = fleet.write_inventory(&[]);
    let out = fleet.snapshot(&inventory, "json", "20");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            fleet.logs()
        )
    });
    let reasons = |n: &Value| -> Vec<String> {
        n["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect()
    };

    let n1 = node(&doc, "tn01");
    assert_eq!(n1["health"], "crit", "{n1:#}");
    assert_eq!(n1["gpus"][0]["mem_temp_max_c"], 95);
    assert!(
        reasons(n1)
            .iter()
            .any(|r| r == "GPU 0: memory temperature 99 °C above its maximum 95 °C"),
        "{:?}",
        reasons(n1)
    );
    assert_eq!(n1["gpus"][1]["health"], "ok");
    assert_eq!(
        n1["gpus"][0]["fabric"],
        Value::Null,
        "no fabric (NOT_SUPPORTED) is null"
    );

    let n2 = node(&doc, "tn02");
    assert_eq!(n2["health"], "crit", "{n2:#}");
    let r2 = reasons(n2);
    assert!(
        r2.iter()
            .any(|r| r.starts_with("GPU 1: PCIe link x8 of x16")),
        "{r2:?}"
    );
    assert!(
        r2.iter()
            .any(|r| r.starts_with("GPU 2: fabric registration not started")),
        "{r2:?}"
    );
    assert_eq!(n2["gpus"][2]["health"], "crit");
    assert_eq!(n2["gpus"][0]["fabric"]["state"], "completed");
    assert_eq!(n2["gpus"][0]["health"], "ok");
    assert!(
        r2.iter()
            .any(|r| r.starts_with("GPU 5: memory unrepairable")),
        "{r2:?}"
    );
    let brakes: Vec<&String> = r2.iter().filter(|r| r.contains("power brake")).collect();
    assert_eq!(
        brakes,
        ["hardware power brake on GPUs 3, 4: check power supply / BMC"],
        "one node reason for one cause"
    );
    assert_eq!(n2["gpus"][3]["health"], "warn", "each GPU still says it");

    let n3 = node(&doc, "tn03");
    assert_eq!(n3["health"], "warn", "{n3:#}");
    assert!(
        reasons(n3)
            .iter()
            .any(|r| r == "GPU 0: throttling: hw_power_brake_slowdown"),
        "{:?}",
        reasons(n3)
    );
}
