//! What runs on a GPU: the processes NVML lists, with their owner and the Slurm job or Kubernetes pod that holds
//! them, read from the process's cgroup path.

use serde::{Deserialize, Serialize};

/// Most processes kept per GPU; a GPU shared by more is summarised by this many and a count.
pub(crate) const MAX_PROCESSES_PER_GPU: usize = 64;
/// A Kubernetes pod UID is a 36-character UUID; anything longer is not one.
const MAX_POD_UID_CHARS: usize = 64;

/// Which NVML list named the process (nvidia-smi's `C`, `G` and `C+G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessKind {
    Compute,
    Graphics,
    ComputeGraphics,
}

impl ProcessKind {
    pub fn short(self) -> &'static str {
        match self {
            ProcessKind::Compute => "C",
            ProcessKind::Graphics => "G",
            ProcessKind::ComputeGraphics => "C+G",
        }
    }
}

/// One process with a context on a GPU. Every field but `pid` and `kind` may be unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub kind: ProcessKind,
    /// GPU memory it holds (`None`: NVML cannot say, e.g. under some virtualisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user the uid names on the node (`None`: no such user there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The command name (`/proc/PID/comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl GpuProcess {
    /// `python3 518 alice 966 MiB job 1234` (`?` for what is unknown).
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} {} {}",
            self.name.as_deref().unwrap_or("?"),
            self.pid,
            self.user
                .clone()
                .or_else(|| self.uid.map(|u| format!("uid {u}")))
                .unwrap_or_else(|| "?".into())
        );
        if let Some(mib) = self.used_mib {
            text += &format!(" {mib} MiB");
        }
        if let Some(job) = self.slurm_job {
            text += &format!(" job {job}");
        }
        if let Some(pod) = &self.pod_uid {
            text += &format!(" pod {pod}");
        }
        text
    }
}

/// The job or pod a cgroup path belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupOwner {
    pub slurm_job: Option<u64>,
    pub pod_uid: Option<String>,
}

/// Reads `/proc/PID/cgroup` text (`ID:CONTROLLERS:PATH` per line, one line under cgroup v2).
///
/// Slurm's task/cgroup plugin puts each job under a `job_<id>` directory: `/slurm/uid_<uid>/job_<id>/step_…`
/// with cgroup v1, `/system.slice/slurmstepd.scope/job_<id>/step_…` with v2 (Slurm's cgroup v2 guide). The
/// kubelet names a pod's cgroup `pod<uid>` with the cgroupfs driver (`/kubepods/besteffort/pod74c1…-…/…`) and
/// `kubepods-<qos>-pod<uid with _ for ->.slice` with the systemd driver.
pub(crate) fn owner_of_cgroup(text: &str) -> CgroupOwner {
    let mut owner = CgroupOwner::default();
    for line in text.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        for segment in path.split('/') {
            if owner.slurm_job.is_none() {
                owner.slurm_job = segment
                    .strip_prefix("job_")
                    .and_then(|id| id.parse::<u64>().ok());
            }
            if owner.pod_uid.is_none() {
                owner.pod_uid = pod_uid_of(segment);
            }
        }
    }
    owner
}

/// `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice` (systemd, `_` standing for `-`).
fn pod_uid_of(segment: &str) -> Option<String> {
    let rest = if let Some(slice) = segment.strip_suffix(".slice") {
        if !slice.starts_with("kubepods") {
            return None;
        }
        &slice[slice.rfind("-pod")? + 4..]
    } else {
        segment.strip_prefix("pod")?
    };
    let uid = rest.replace('_', "-");
    let looks_like_uid = uid.len() >= 32
        && uid.len() <= MAX_POD_UID_CHARS
        && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    looks_like_uid.then_some(uid)
}

/// Merges NVML's compute and graphics lists into one entry per pid, compute order first.
pub(crate) fn merge_kinds(
    compute: &[(u32, Option<u64>)],
    graphics: &[(u32, Option<u64>)],
) -> Vec<(u32, ProcessKind, Option<u64>)> {
    let mut merged: Vec<(u32, ProcessKind, Option<u64>)> = Vec::new();
    for &(pid, used) in compute {
        if !merged.iter().any(|m| m.0 == pid) {
            merged.push((pid, ProcessKind::Compute, used));
        }
    }
    for &(pid, used) in graphics {
        match merged.iter_mut().find(|m| m.0 == pid) {
            Some(m) => {
                m.1 = ProcessKind::ComputeGraphics;
                m.2 = m.2.or(used);
            }
            None => merged.push((pid, ProcessKind::Graphics, used)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_jobs_are_found_under_cgroup_v1_and_v2() {
        let v1 = "12:devices:/slurm/uid_1000/job_4242/step_0/task_0\n11:memory:/slurm/uid_1000/job_4242/step_0\n";
        assert_eq!(owner_of_cgroup(v1).slurm_job, Some(4242));
        let v2 = "0::/system.slice/slurmstepd.scope/job_91/step_batch/user/task_0\n";
        assert_eq!(owner_of_cgroup(v2).slurm_job, Some(91));
        assert_eq!(owner_of_cgroup(v2).pod_uid, None);
    }

    #[test]
    fn pods_are_found_with_either_cgroup_driver() {
        let cgroupfs = "11:devices:/kubepods/besteffort/pod74c13223-5a00-11e9-b385-42010a80018d/34dc0b5e626f\n";
        assert_eq!(
            owner_of_cgroup(cgroupfs).pod_uid.as_deref(),
            Some("74c13223-5a00-11e9-b385-42010a80018d")
        );
        let systemd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-99.scope\n";
        assert_eq!(
            owner_of_cgroup(systemd).pod_uid.as_deref(),
            Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
        );
        let guaranteed =
            "0::/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/x.scope\n";
        assert!(owner_of_cgroup(guaranteed).pod_uid.is_some());
    }

    #[test]
    fn other_cgroups_name_no_owner() {
        for text in [
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/system.slice/podman.service/job_x\n",
            "0::/kubepods.slice/kubepods-podnot-a-uid.slice\n",
            "garbage without colons",
            "",
        ] {
            assert_eq!(owner_of_cgroup(text), CgroupOwner::default(), "{text}");
        }
    }

    #[test]
    fn a_pid_in_both_lists_is_one_compute_and_graphics_process() {
        let merged = merge_kinds(&[(7, Some(100)), (8, None)], &[(8, Some(5)), (9, None)]);
        assert_eq!(
            merged,
            vec![
                (7, ProcessKind::Compute, Some(100)),
                (8, ProcessKind::ComputeGraphics, Some(5)),
                (9, ProcessKind::Graphics, None),
            ]
        );
    }
}
