//! The node-level GPU identity rule: each GPU the node reports must be a distinct board at an index the node
//! can have. A repeated index is dropped where samples are taken in (`sanitize.rs`, which says so); this rule
//! judges what remains against the inventory.

use super::health::{Health, Verdict};
use super::sample::GpuSample;

/// Most names quoted in one reason; the rest are counted.
const MAX_NAMED: usize = 8;

/// `crit` when GPUs sit at indices outside `0..expected`, or when two GPUs report the same UUID or serial
/// number: NVML numbers a node's GPUs from 0 (nvml.h, `nvmlDeviceGetHandleByIndex`: "valid indices are
/// derived from the count returned by nvmlDeviceGetCount") and every board has its own UUID and serial, so
/// either is a node that does not know its GPUs (or lies), and its `8/8` cannot be trusted.
pub(crate) fn judge_gpu_identity(gpus: &[GpuSample], expected: u32) -> Option<Verdict> {
    let mut v = Verdict::default();
    let outside: Vec<String> = gpus
        .iter()
        .filter(|g| g.index >= expected)
        .map(|g| g.index.to_string())
        .collect();
    if !outside.is_empty() {
        let range = match expected {
            0 => "none expected".to_string(),
            n => format!("0–{}", n - 1),
        };
        v.add(
            Health::Crit,
            format!(
                "GPU index {} outside {range} ({expected} GPUs per node): the node misreports its GPUs",
                named(&outside)
            ),
        );
    }
    for (what, key) in [
        (
            "UUID",
            (|g: &GpuSample| g.uuid.as_deref()) as fn(&GpuSample) -> Option<&str>,
        ),
        ("serial", |g: &GpuSample| {
            g.serial.as_deref().filter(|s| !is_placeholder_serial(s))
        }),
    ] {
        for (value, indices) in repeated(gpus, key) {
            v.add(
                Health::Crit,
                format!(
                    "{what} {value} reported by GPUs {}: one board cannot be several GPUs",
                    named(&indices)
                ),
            );
        }
    }
    (v.health != Health::Ok).then_some(v)
}

/// Boards without a readable serial report blanks or zeros (nvidia-smi shows `N/A`); those repeat honestly.
fn is_placeholder_serial(serial: &str) -> bool {
    let s = serial.trim();
    s.is_empty() || s.eq_ignore_ascii_case("n/a") || s.bytes().all(|b| b == b'0')
}

/// Each value reported by more than one GPU, with those GPUs' indices, in order of first appearance.
/// Samples hold at most 64 GPUs, so the quadratic scan is bounded.
fn repeated<'g>(
    gpus: &'g [GpuSample],
    key: impl Fn(&'g GpuSample) -> Option<&'g str>,
) -> Vec<(&'g str, Vec<String>)> {
    let mut out: Vec<(&str, Vec<String>)> = Vec::new();
    for (i, g) in gpus.iter().enumerate() {
        let Some(value) = key(g) else { continue };
        if out.iter().any(|(v, _)| *v == value) {
            continue;
        }
        // Counted before anything is allocated: every node is judged on each of its samples, and a repeat
        // is rare.
        let sharing = || gpus[i..].iter().filter(|o| key(o) == Some(value));
        if sharing().count() > 1 {
            out.push((value, sharing().map(|o| o.index.to_string()).collect()));
        }
    }
    out
}

/// `0, 1, 2 and 5 more`.
fn named(items: &[String]) -> String {
    let shown = items[..items.len().min(MAX_NAMED)].join(", ");
    match items.len().saturating_sub(MAX_NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, uuid: &str, serial: &str) -> GpuSample {
        GpuSample {
            index,
            uuid: Some(uuid.into()),
            serial: Some(serial.into()),
            ..Default::default()
        }
    }

    #[test]
    fn distinct_gpus_at_their_indices_pass() {
        let gpus: Vec<GpuSample> = (0..8)
            .map(|i| gpu(i, &format!("GPU-{i}"), &format!("16520{i}")))
            .collect();
        assert_eq!(judge_gpu_identity(&gpus, 8), None);
        // Boards without a readable serial do not repeat one.
        let blank: Vec<GpuSample> = (0..8)
            .map(|i| gpu(i, &format!("GPU-{i}"), if i % 2 == 0 { "0" } else { "N/A" }))
            .collect();
        assert_eq!(judge_gpu_identity(&blank, 8), None);
    }

    #[test]
    fn repeated_identities_and_impossible_indices_are_crit_and_named() {
        let same: Vec<GpuSample> = (0..8)
            .map(|i| gpu(i, "GPU-same", &format!("{i}")))
            .collect();
        let v = judge_gpu_identity(&same, 8).unwrap();
        assert_eq!(v.health, Health::Crit);
        assert_eq!(
            v.reasons,
            ["UUID GPU-same reported by GPUs 0, 1, 2, 3, 4, 5, 6, 7: one board cannot be several GPUs"]
        );
        let mut beyond: Vec<GpuSample> = (0..7)
            .map(|i| gpu(i, &format!("GPU-{i}"), &format!("{i}")))
            .collect();
        beyond.push(gpu(u32::MAX, "GPU-x", "x"));
        let v = judge_gpu_identity(&beyond, 8).unwrap();
        assert_eq!(
            v.reasons,
            ["GPU index 4294967295 outside 0–7 (8 GPUs per node): the node misreports its GPUs"]
        );
        let spread: Vec<GpuSample> = (0..8)
            .map(|i| gpu(i * 9, &format!("GPU-{i}"), "1652"))
            .collect();
        let v = judge_gpu_identity(&spread, 8).unwrap();
        assert_eq!(v.reasons.len(), 2, "{v:?}");
        assert!(v.reasons[0].starts_with("GPU index 9, 18, 27, 36, 45, 54, 63 outside"));
        assert!(v.reasons[1].starts_with("serial 1652 reported by GPUs 0, 9, 18"));
    }
}
