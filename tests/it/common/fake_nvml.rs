//! The fake NVML library (`tests/fake_nvml/fake_nvml.c`) and its specs, built once per test process
//! beside a copy of fleetop that the test user can run.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::process::{fleetop_bin, run};

/// Files every fleet shares: the fleetop binary and the fake NVML library, copied where the test user can run them.
pub struct Shared {
    pub dir: PathBuf,
    pub fleetop: PathBuf,
    pub fake_nvml: PathBuf,
}

pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        remove_dead_shared_dirs();
        let dir = std::env::temp_dir().join(format!("fleetop-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let fleetop = dir.join("fleetop");
        fs::copy(fleetop_bin(), &fleetop).unwrap();
        let fake_nvml = dir.join("libfake-nvml.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
        run(Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&fake_nvml)
            .arg(&source));
        for f in [&fleetop, &fake_nvml] {
            fs::set_permissions(f, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Shared {
            dir,
            fleetop,
            fake_nvml,
        }
    })
}

/// Removes the shared directories of test processes that have ended: a static is never dropped, so each test
/// binary leaves its copy of fleetop (some 150 MB with debug info) behind, and runs would fill the disk.
fn remove_dead_shared_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fleetop-test-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A fake NVML spec: what the fake library reports.
#[derive(Debug, Clone)]
pub struct Spec {
    pub text: String,
}

impl Spec {
    /// A node of `gpus` GPUs whose values are derived from `seed`, all distinct.
    pub fn node(seed: u32, gpus: u32) -> Spec {
        let mut text = String::from("driver 550.90.07\ncuda 12040\n");
        for i in 0..gpus {
            let v = seed * 10 + i;
            let _ = writeln!(
                text,
                "gpu {i}|GPU-{seed:04}-{i:04}|NVIDIA H100 80GB HBM3|{util}|{memutil}|{used}|81559|{temp}|{memtemp}|{power}|700000|{sm}|0|0|0|0|0|5|16|89|92|95",
                util = v % 101,
                memutil = (v * 3) % 101,
                used = 1000 + v * 7,
                temp = 30 + v % 40,
                memtemp = 35 + v % 40,
                power = 100_000 + v * 1250,
                sm = 1000 + v,
            );
        }
        Spec { text }
    }

    pub fn with_line(mut self, line: &str) -> Spec {
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// GPU `gpu`'s driver reports recovery action `raw` (nvml.h `nvmlDeviceGpuRecoveryAction_t`) through field
    /// 230 and supports the recovery-action event; a spec without it is a driver before R565.
    pub fn with_recovery_action(self, gpu: u32, raw: u32) -> Spec {
        self.with_line(&format!("recovery {gpu} {raw}"))
    }

    /// Sets column `column` of GPU `gpu`'s `gpu` line, numbered as in `tests/fake_nvml/fake_nvml.c` (0 index,
    /// 2 name, 8 memory temperature, 12 throttle bits, 18 PCIe width, 21 memory maximum; `NA`: not supported).
    pub fn with_gpu_column(mut self, gpu: u32, column: usize, value: &str) -> Spec {
        let prefix = format!("gpu {gpu}|");
        self.text = self
            .text
            .lines()
            .map(|line| {
                let mut line = line.to_string();
                if line.starts_with(&prefix) {
                    let mut cells: Vec<&str> = line["gpu ".len()..].split('|').collect();
                    if let Some(cell) = cells.get_mut(column) {
                        *cell = value;
                    }
                    line = format!("gpu {}", cells.join("|"));
                }
                line + "\n"
            })
            .collect();
        self
    }

    /// Adds a line to the node's kernel log (what the agent reads as `/dev/kmsg`).
    pub fn with_kernel_log(self, line: &str) -> Spec {
        self.with_line(&format!("kmsg {line}"))
    }

    /// The node's kernel log: the spec's `kmsg ` lines (the fake NVML library ignores them).
    pub fn kernel_log(&self) -> String {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("kmsg "))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// An agent on the fake NVML library serving `/metrics` on 127.0.0.1:`port`, with one H100 (`uuid`) at
/// `util` %; its spec is written as `dir/name.spec`. Killed when dropped; callers wait for it to answer.
pub fn exporter_agent(
    dir: &Path,
    name: &str,
    uuid: &str,
    util: u32,
    port: u16,
) -> super::process::Killed {
    let spec = dir.join(format!("{name}.spec"));
    fs::write(
        &spec,
        format!(
            "driver 550.90.07\ncuda 12040\n\
             gpu 0|{uuid}|NVIDIA H100 80GB HBM3|{util}|5|1000|81559|40|45|100000|700000|1000|0|0|0|0|0|5|16|89|92|95\n"
        ),
    )
    .unwrap();
    super::process::Killed(
        Command::new(fleetop_bin())
            .args(["agent", "--interval", "200", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("FAKE_NVML_SPEC", &spec)
            .env("FLEETOP_NVML_LIB", &shared().fake_nvml)
            .env("FLEETOP_KERNEL_LOG", "/dev/null")
            .env("FLEETOP_SYSFS_ROOT", dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}
