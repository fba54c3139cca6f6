//! Kubernetes pods from one `kubectl get pods -A --field-selector status.phase=Running -o json`: namespace, pod,
//! node and the GPUs its containers request (`nvidia.com/gpu`).

use serde::Deserialize;

use super::jobs::{field, key, Job, Scheduler, Workload, MAX_JOBS};
use crate::inventory::Inventory;

/// The resource NVIDIA's device plugin advertises.
const GPU_RESOURCE: &str = "nvidia.com/gpu";

pub(crate) fn kubectl_args() -> Vec<String> {
    [
        "get",
        "pods",
        "-A",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pod {
    metadata: Metadata,
    spec: Spec,
    status: Status,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    name: String,
    namespace: String,
    uid: String,
    #[serde(rename = "creationTimestamp")]
    created: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    #[serde(rename = "nodeName")]
    node_name: Option<String>,
    containers: Vec<Container>,
    #[serde(rename = "serviceAccountName")]
    service_account: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Container {
    resources: Resources,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resources {
    requests: std::collections::HashMap<String, String>,
    limits: std::collections::HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    phase: String,
    #[serde(rename = "startTime")]
    start_time: Option<String>,
}

/// Reads kubectl's pod list into `workload`; `now_s` (Unix seconds) dates each pod's age.
pub fn parse(inv: &Inventory, text: &str, now_s: u64, workload: &mut Workload) {
    let list: PodList = match serde_json::from_str(text) {
        Ok(l) => l,
        Err(e) => {
            workload
                .problems
                .push(format!("kubectl: pod list not understood: {e}"));
            return;
        }
    };
    if list.items.len() > MAX_JOBS {
        workload.problems.push(format!(
            "kubectl listed more than {MAX_JOBS} pods; the rest were not read"
        ));
    }
    for pod in list.items.into_iter().take(MAX_JOBS) {
        // The node's name as Kubernetes wrote it, whole: a name cut or escaped for display would match
        // no node (names may be up to 253 characters).
        let Some(node) = pod
            .spec
            .node_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
        else {
            continue;
        };
        // Extended resources are requested whole; the limit stands in where a pod sets only that.
        let gpus: u32 = pod
            .spec
            .containers
            .iter()
            .map(|c| {
                c.resources
                    .requests
                    .get(GPU_RESOURCE)
                    .or_else(|| c.resources.limits.get(GPU_RESOURCE))
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .fold(0u32, u32::saturating_add);
        let started = pod.status.start_time.or(pod.metadata.created);
        let job = Job {
            scheduler: Scheduler::Kubernetes,
            id: format!(
                "{}/{}",
                key(&pod.metadata.namespace).unwrap_or_default(),
                key(&pod.metadata.name).unwrap_or_default()
            ),
            user: pod.spec.service_account.as_deref().and_then(field),
            tenant: field(&pod.metadata.namespace),
            partition: None,
            gpus: Some(gpus),
            elapsed_s: started
                .as_deref()
                .and_then(unix_seconds)
                .map(|t| now_s.saturating_sub(t)),
            left_s: None,
            state: field(&pod.status.phase).unwrap_or_else(|| "?".into()),
            pod_uid: key(&pod.metadata.uid),
        };
        workload.add(inv, &[node], job);
    }
    workload.checked.push(Scheduler::Kubernetes);
}

/// RFC 3339 UTC as Kubernetes writes it (`2024-05-13T16:49:48Z`) to Unix seconds.
fn unix_seconds(text: &str) -> Option<u64> {
    humantime::parse_rfc3339(text.trim())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_timestamps() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2022-12-23T09:36:45Z"), Some(1_671_788_205));
        assert_eq!(unix_seconds("2022-12-23T09:36:45"), None);
    }
}
