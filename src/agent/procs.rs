//! Processes per GPU: NVML's compute and graphics lists, each pid looked up in `/proc` for its owner, command
//! and the Slurm job or Kubernetes pod its cgroup names. A process that is gone or unreadable is skipped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::Device;

use crate::telemetry::process::{merge_kinds, owner_of_cgroup, GpuProcess, MAX_PROCESSES_PER_GPU};
use crate::telemetry::GpuError;

/// Environment variable naming the directory read instead of `/proc` (tests give recorded process trees).
pub(crate) const PROC_ROOT_ENV: &str = "FLEETOP_PROC_ROOT";
/// `/proc/PID/status` and `cgroup` are a few KiB; more is not a process file.
const MAX_PROC_FILE_BYTES: u64 = 64 * 1024;
const MIB: u64 = 1024 * 1024;

/// Where processes are looked up, with the user names already resolved.
pub(crate) struct Processes {
    root: PathBuf,
    users: RefCell<HashMap<u32, Option<String>>>,
}

impl Processes {
    pub(crate) fn new(root: Option<PathBuf>) -> Self {
        Processes {
            root: root
                .or_else(|| std::env::var_os(PROC_ROOT_ENV).map(Into::into))
                .unwrap_or_else(|| "/proc".into()),
            users: RefCell::default(),
        }
    }

    /// The GPU's processes; `None` when NVML offers neither list. Errors other than "not supported" are
    /// added to `errors`, so the GPU is judged on them.
    pub(crate) fn on(
        &self,
        device: &Device,
        errors: &mut Vec<GpuError>,
    ) -> Option<Vec<GpuProcess>> {
        let mut listed = |query: &str, result: Result<Vec<ProcessInfo>, NvmlError>| match result {
            Ok(list) => Some(
                list.iter()
                    .map(|p| (p.pid, used_mib(&p.used_gpu_memory)))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => {
                errors.extend(super::read::error_of(query, &e));
                None
            }
        };
        let compute = listed("processes.compute", device.running_compute_processes());
        let graphics = listed("processes.graphics", device.running_graphics_processes());
        if compute.is_none() && graphics.is_none() {
            return None;
        }
        let merged = merge_kinds(
            compute.as_deref().unwrap_or_default(),
            graphics.as_deref().unwrap_or_default(),
        );
        Some(
            merged
                .into_iter()
                .filter_map(|(pid, kind, used_mib)| {
                    let dir = self.root.join(pid.to_string());
                    let status = read_bounded(&dir.join("status"))?;
                    let uid = uid_of_status(&status);
                    let owner = read_bounded(&dir.join("cgroup"))
                        .map(|c| owner_of_cgroup(&c))
                        .unwrap_or_default();
                    Some(GpuProcess {
                        pid,
                        kind,
                        used_mib,
                        uid,
                        user: uid.and_then(|u| self.user(u)),
                        name: read_bounded(&dir.join("comm")).map(|c| c.trim_end().to_string()),
                        slurm_job: owner.slurm_job,
                        pod_uid: owner.pod_uid,
                    })
                })
                .take(MAX_PROCESSES_PER_GPU)
                .collect(),
        )
    }

    fn user(&self, uid: u32) -> Option<String> {
        self.users
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| user_name(uid))
            .clone()
    }
}

fn used_mib(used: &UsedGpuMemory) -> Option<u64> {
    match used {
        UsedGpuMemory::Used(bytes) => Some(bytes / MIB),
        UsedGpuMemory::Unavailable => None,
    }
}

/// A process file's text; `None` when the process is gone or the file cannot be read.
fn read_bounded(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_PROC_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The real uid from `/proc/PID/status` (`Uid:\treal\teffective\tsaved\tfs`).
fn uid_of_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The node's name for `uid` through NSS (files, LDAP, SSSD alike); `None` when it has none.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain C data; all-zero is valid before getpwuid_r fills it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to memory we own for the duration of the call; buf's length is passed.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_uid_is_read_from_status() {
        let status = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1001\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(uid_of_status(status), Some(1001));
        assert_eq!(uid_of_status("Name:\tx\n"), None);
        assert_eq!(uid_of_status("Uid:\tabc\n"), None);
    }

    #[test]
    fn uid_zero_is_root_on_every_node() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
