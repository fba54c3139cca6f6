//! What only a series of samples shows: fabric error counters that rise, and links that were up and went
//! down. A rise or a loss is reported for [`WINDOW`] after it happened, so a counter that rose once is seen by
//! an operator looking a minute later, and then clears.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::telemetry::NodeSample;

/// How long a rise or a lost link stays in a node's reasons.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Most counters and links watched per node (bounds memory against a node that invents names).
const MAX_WATCHED: usize = 4096;

#[derive(Debug, Clone, Default)]
struct Rise {
    total: u64,
    last: Option<Instant>,
}

/// One node's watched counters and link states.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    /// (what, counter) → last value.
    values: HashMap<(String, &'static str), u64>,
    rises: HashMap<(String, &'static str), Rise>,
    /// Links seen up, and when each was last seen down after being up.
    up: HashMap<String, bool>,
    lost: HashMap<String, Instant>,
}

impl Watch {
    /// Takes a sample's InfiniBand counters and NVLink states at `at`.
    pub(crate) fn observe(&mut self, sample: &NodeSample, at: Instant) {
        for port in sample.ib.iter().flatten() {
            let what = format!("IB {}", port.name());
            for &name in &crate::telemetry::fabric::IB_COUNTERS {
                if let Some(&v) = port.counters.get(name) {
                    self.counter(&what, name, v, at);
                }
            }
        }
        for gpu in &sample.gpus {
            let Some(links) = &gpu.nvlink else { continue };
            for link in 0..links.total {
                let what = format!("GPU {} NVLink {link}", gpu.index);
                self.link(&what, !links.down.contains(&link), at);
                for (name, value) in links.counters_of(link) {
                    self.counter(&what, name, value, at);
                }
            }
        }
    }

    fn counter(&mut self, what: &str, name: &'static str, value: u64, at: Instant) {
        let key = (what.to_string(), name);
        let before = self.values.get(&key).copied();
        if before.is_none() && self.values.len() >= MAX_WATCHED {
            return;
        }
        self.values.insert(key.clone(), value);
        // A counter that went down was reset (driver reload, reboot): the new value is the new base.
        if let Some(before) = before.filter(|b| value > *b) {
            let rise = self.rises.entry(key).or_default();
            let recent = rise
                .last
                .is_some_and(|l| at.saturating_duration_since(l) <= WINDOW);
            rise.total = if recent {
                rise.total + (value - before)
            } else {
                value - before
            };
            rise.last = Some(at);
        }
    }

    fn link(&mut self, what: &str, active: bool, at: Instant) {
        if !self.up.contains_key(what) && self.up.len() >= MAX_WATCHED {
            return;
        }
        let was_up = self.up.get(what).copied().unwrap_or(false);
        if was_up && !active {
            self.lost.insert(what.to_string(), at);
        }
        if active {
            self.lost.remove(what);
        }
        // Once up, a link stays "was up" while it is down, so it keeps being reported.
        self.up.insert(what.to_string(), was_up || active);
    }

    /// Lost links and rises within [`WINDOW`] of `now`, one reason per link or port, sorted.
    pub(crate) fn reasons(&self, now: Instant) -> Vec<String> {
        let recent = |t: &Instant| now.saturating_duration_since(*t) <= WINDOW;
        let mut rose: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for ((what, name), r) in &self.rises {
            if r.last.as_ref().is_some_and(recent) {
                rose.entry(what)
                    .or_default()
                    .push(format!("{name} rose by {}", r.total));
            }
        }
        let mut out: Vec<String> = self
            .lost
            .iter()
            .filter(|(_, t)| recent(t))
            .map(|(what, _)| format!("{what} down (it was up)"))
            .chain(rose.into_iter().map(|(what, mut rises)| {
                rises.sort();
                format!("{what}: {} in the last 5 min", rises.join(", "))
            }))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::fabric::IbPort;

    fn sample(symbol_errors: u64) -> NodeSample {
        NodeSample {
            ib: Some(vec![IbPort {
                hca: "mlx5_0".into(),
                port: 1,
                counters: [("symbol_error".to_string(), symbol_errors)].into(),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn a_rising_counter_is_reported_for_the_window_then_clears() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        w.observe(&sample(3), t0);
        assert!(
            w.reasons(t0).is_empty(),
            "a first value is a base, not a rise"
        );
        w.observe(&sample(3), t0 + Duration::from_secs(1));
        assert!(w.reasons(t0 + Duration::from_secs(1)).is_empty());
        w.observe(&sample(10), t0 + Duration::from_secs(2));
        w.observe(&sample(15), t0 + Duration::from_secs(3));
        assert_eq!(
            w.reasons(t0 + Duration::from_secs(4)),
            ["IB mlx5_0 port 1: symbol_error rose by 12 in the last 5 min"]
        );
        assert!(w.reasons(t0 + Duration::from_secs(4) + WINDOW).is_empty());
        // A reset is a new base.
        w.observe(&sample(0), t0 + Duration::from_secs(5));
        assert!(w.reasons(t0 + Duration::from_secs(6) + WINDOW).is_empty());
    }
}
