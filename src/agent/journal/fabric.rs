//! The journal's fabric and node entries: SXids (the node's NVSwitches), InfiniBand ports down, and NVLink and
//! InfiniBand error counters that rose, judged by `telemetry::rise`'s rules (the ones health uses; no
//! thresholds of its own). A one-pass run's sample carries its rises since the previous run (`state.rs`); when
//! following, rises are judged over a window of at least [`WINDOW_MS`] (NVLink counters are re-read only every
//! few samples, so consecutive samples would make a rate out of one re-read), the journal's own.

use super::entry::{tallies, Entry};
use crate::agent::state::Reading;
use crate::telemetry::fabric::judge_port_state;
use crate::telemetry::health::Health;
use crate::telemetry::rise::{judge_nvlink_rise, judge_port_rise};
use crate::telemetry::{GpuSample, NodeSample};

/// The shortest span a following agent's rises are judged over: DCGM's one-minute window.
pub(super) const WINDOW_MS: u64 = 60_000;

/// What `judge_*_rise` appends for a one-pass run; the journal's line says its own span.
const SINCE_PREVIOUS_RUN: &str = " (since the agent's previous run)";

/// The fabric entries of `sample`: per GPU (by position), NVLink counters that rose; for the node, its SXids,
/// the InfiniBand ports down and the port counters that rose. `window` is the start of the following agent's
/// window, moved on when a window closes.
pub(super) fn entries(
    sample: &NodeSample,
    window: &mut Option<Reading>,
) -> (Vec<Vec<Entry>>, Vec<Entry>) {
    let now = sample.t;
    let rises = rises(sample, window);
    let judged = rises.as_ref().unwrap_or(sample);
    let per_gpu = sample
        .gpus
        .iter()
        .map(|gpu| {
            let rose = judged
                .gpus
                .iter()
                .find(|g| g.index == gpu.index && g.uuid == gpu.uuid)
                .and_then(|g| g.nvlink.as_ref()?.rose.as_ref());
            let reasons: Vec<String> = rose
                .into_iter()
                .flat_map(judge_nvlink_rise)
                .filter(|(health, _)| *health >= Health::Warn)
                .map(|(_, text)| text)
                .collect();
            // An NVLink of a GPU in MIG mode is not judged (as for NVLinks down).
            event(Some(gpu), "nvlink_errors", &reasons, now)
                .filter(|_| gpu.mig_enabled != Some(true))
                .into_iter()
                .collect()
        })
        .collect();
    let mut node = tallies(None, "sxid", sample.sxid.as_deref(), now);
    let ports = sample.ib.as_deref().unwrap_or_default();
    let down: Vec<String> = ports.iter().filter_map(judge_port_state).collect();
    node.extend(event(None, "ib", &down, now).map(Entry::keyed_by_value));
    let rose: Vec<String> = judged
        .ib
        .iter()
        .flatten()
        .filter_map(judge_port_rise)
        .filter(|(health, _)| *health >= Health::Warn)
        .map(|(_, text)| text)
        .collect();
    node.extend(event(None, "ib_errors", &rose, now));
    (per_gpu, node)
}

/// One entry saying `reasons`, an occurrence at `now` (its `first_ms` too, so each counts once).
fn event(gpu: Option<&GpuSample>, kind: &str, reasons: &[String], now: u64) -> Option<Entry> {
    if reasons.is_empty() {
        return None;
    }
    let text: Vec<&str> = reasons
        .iter()
        .map(|r| r.strip_suffix(SINCE_PREVIOUS_RUN).unwrap_or(r))
        .collect();
    Some(Entry::about(gpu, now, kind, Some(text.join("; "))).with(None, 1, Some(now), now))
}

/// The sample's rises: a one-pass run's own (`None`: judge `sample`), else, when the following agent's
/// window has lasted [`WINDOW_MS`], a copy of the fabric with what rose over it (an empty sample until then).
fn rises(sample: &NodeSample, window: &mut Option<Reading>) -> Option<NodeSample> {
    let carried = sample
        .gpus
        .iter()
        .any(|g| g.nvlink.as_ref().is_some_and(|l| l.rose.is_some()))
        || sample.ib.iter().flatten().any(|p| p.rose.is_some());
    if carried {
        return None;
    }
    let due = window.as_ref().map(|start| {
        sample
            .t
            .checked_sub(start.t())
            .is_none_or(|ms| ms >= WINDOW_MS)
    });
    match (due, window.as_ref()) {
        (Some(true), Some(start)) => {
            // A clock that went back gives no span: `rises_into` leaves the copy without rises.
            let mut copy = fabric_only(sample);
            start.rises_into(&mut copy);
            *window = Some(Reading::of(sample));
            Some(copy)
        }
        (None, _) => {
            *window = Some(Reading::of(sample));
            Some(NodeSample::default())
        }
        _ => Some(NodeSample::default()),
    }
}

/// The GPUs' identities and NVLinks and the ports, without rises: what rises are judged on.
fn fabric_only(sample: &NodeSample) -> NodeSample {
    NodeSample {
        t: sample.t,
        gpus: sample
            .gpus
            .iter()
            .map(|g| GpuSample {
                index: g.index,
                uuid: g.uuid.clone(),
                nvlink: g.nvlink.clone().map(|mut l| {
                    l.rose = None;
                    l
                }),
                ..Default::default()
            })
            .collect(),
        ib: sample.ib.clone().map(|mut ports| {
            for p in &mut ports {
                p.rose = None;
            }
            ports
        }),
        ..Default::default()
    }
}
