//! Fabric counters that rose between two readings, and how a rise is judged: NVLink at DCGM's rates, InfiniBand
//! as the kernel counts it (a counter at its width's maximum can no longer rise). One place for both the live
//! watch (rises between samples) and a one-pass snapshot (rises the agent saw since its previous run).

use std::time::Duration;

pub use super::fabric::NvLinkRise;
use super::fabric::{saturated, IbPort};
use super::health::Health;

/// DCGM's limit for NVLink replay and recovery errors (`DCGM_LIMIT_MAX_NVLINK_ERROR`, DcgmGPUHardwareLimits.h):
/// DcgmHealthWatch.cpp (MonitorNVLink) fails a rise of that many within its window, which is the last minute
/// unless the caller names one (`startTime = now - oneMinuteInUsec`). fleetop's windows run from seconds (live)
/// to a day (snapshots), so the limit is applied as that rate.
pub(crate) const NVLINK_ERRORS_PER_MIN: f64 = 1.0;
/// DCGM's limit for NVLink CRC errors (`DCGM_LIMIT_MAX_NVLINK_CRC_ERROR`: "CRC errors only matter at rates of
/// 100+ per second"); below it DcgmHealthWatch.cpp warns.
pub(crate) const NVLINK_CRC_PER_SEC: f64 = 100.0;

/// How a rise of NVLink counter `name` by `delta` over `over` is judged (DcgmHealthWatch.cpp, MonitorNVLink):
/// replay and recovery fail at [`NVLINK_ERRORS_PER_MIN`] and warn below it; CRC flit and data warn, and fail
/// at [`NVLINK_CRC_PER_SEC`].
pub(crate) fn nvlink_rise_health(name: &str, delta: u64, over: Duration) -> Health {
    if delta == 0 {
        return Health::Ok;
    }
    // Without an interval (two readings in the same millisecond, or a rise whose start is unknown) no rate is
    // known: a replay or recovery error is within the minute all the same; CRC errors keep their warning.
    let secs = over.as_secs_f64();
    let per_sec = delta as f64 / secs.max(0.001);
    let crit = match name {
        "crc_flit" | "crc_data" => secs > 0.0 && per_sec >= NVLINK_CRC_PER_SEC,
        _ => per_sec * 60.0 >= NVLINK_ERRORS_PER_MIN,
    };
    if crit {
        Health::Crit
    } else {
        Health::Warn
    }
}

/// How a rise of InfiniBand counter `name` is judged: `port_xmit_discards` is congestion (packets dropped
/// because the port could not send them: the fabric was busy, not broken) and informs; every other counter
/// is an error on the link or a queue pair that gave up, and warns.
pub(crate) fn ib_rise_health(name: &str) -> Health {
    if name == "port_xmit_discards" {
        Health::Ok
    } else {
        Health::Warn
    }
}

/// `42 s`, `3 min 20 s`, `5 h 2 min`, `2 d 3 h`.
pub fn span(over: Duration) -> String {
    let s = over.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// The parts of one reason: `replay rose by 4, crc_flit rose by 2`, each counter with its own health.
fn rose_parts<'a>(
    counters: impl Iterator<Item = (&'static str, u64)> + 'a,
    health_of: impl Fn(&str, u64) -> Health + 'a,
) -> Option<(Health, String)> {
    let mut health = Health::Ok;
    let mut parts = Vec::new();
    for (name, delta) in counters.filter(|(_, d)| *d > 0) {
        health = health.max(health_of(name, delta));
        let note = if name == "port_xmit_discards" {
            " (congestion)"
        } else {
            ""
        };
        parts.push(format!("{name} rose by {delta}{note}"));
    }
    (!parts.is_empty()).then(|| (health, parts.join(", ")))
}

/// A GPU's NVLink rises since the agent's previous run, one reason per link.
pub(crate) fn judge_nvlink_rise(rise: &NvLinkRise) -> Vec<(Health, String)> {
    let over = Duration::from_millis(rise.over_ms);
    rise.links
        .iter()
        .filter_map(|l| {
            let (health, text) = rose_parts(
                l.counts
                    .counters()
                    .into_iter()
                    .filter_map(|(n, v)| Some((n, v?))),
                |name, delta| nvlink_rise_health(name, delta, over),
            )?;
            Some((
                health,
                format!(
                    "NVLink {}: {text} in {} (since the agent's previous run)",
                    l.link,
                    span(over)
                ),
            ))
        })
        .collect()
}

/// A port's rises since the agent's previous run, as one reason.
pub(crate) fn judge_port_rise(port: &IbPort) -> Option<(Health, String)> {
    let rise = port.rose.as_ref()?;
    let over = Duration::from_millis(rise.over_ms);
    let counters = rise
        .counters
        .all()
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)));
    let (health, text) = rose_parts(counters, |name, _| ib_rise_health(name))?;
    Some((
        health,
        format!(
            "IB {}: {text} in {} (since the agent's previous run)",
            port.name(),
            span(over)
        ),
    ))
}

/// Counters of a port at their width's maximum, as one reason: they count no more, so their rises are
/// unknown, not zero. Informs where only `port_xmit_discards` (congestion) is saturated, else warns.
pub(crate) fn judge_port_saturation(port: &IbPort) -> Option<(Health, String)> {
    let full: Vec<(&str, u64)> = port
        .counters
        .all()
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)))
        .filter(|&(n, v)| saturated(n, v))
        .collect();
    if full.is_empty() {
        return None;
    }
    let health = full
        .iter()
        .map(|(n, _)| ib_rise_health(n))
        .max()
        .unwrap_or(Health::Warn);
    let names: Vec<String> = full.iter().map(|(n, v)| format!("{n} at {v}")).collect();
    Some((
        health,
        format!(
            "IB {}: {} saturated — rises unknown; clear with `perfquery -R`",
            port.name(),
            names.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests;
