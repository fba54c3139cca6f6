//! A GPU's XID codes as fleetop's exporter sends them to the store, one series per code: at most
//! [`MAX_XID_CODES`] per GPU, each series costing a bounded scan, and a full tally never leaves out a code
//! more severe than one it keeps (NVIDIA's XID catalogue through `classify_xid`); it says that it is truncated.

use std::collections::HashMap;

use crate::telemetry::health::{classify_xid, Health};
use crate::telemetry::{GpuSample, XidEvent};

/// Distinct XID codes kept per GPU: the most any per-GPU list of a sample holds (`sanitize`'s bound).
pub(crate) const MAX_XID_CODES: usize = 64;

/// What one refresh left out of each GPU's full tally, by GPU index.
#[derive(Debug, Default)]
pub(crate) struct XidTally {
    full: HashMap<u32, Full>,
}

/// A full tally: the least severe health among the codes it keeps (`None` once it must be found again), and
/// how many series it left out.
#[derive(Debug, Default)]
struct Full {
    floor: Option<Health>,
    left_out: u64,
}

impl XidTally {
    /// Files code `code`, seen `count` times, under `gpu`. A repeated series keeps the larger count; once
    /// [`MAX_XID_CODES`] codes are kept, a new code replaces the least severe kept one only when it is more
    /// severe, and is left out (counted) otherwise.
    pub fn add(&mut self, gpu: &mut GpuSample, code: u32, count: u64) {
        let events = gpu.xid_events.get_or_insert_with(Vec::new);
        let codes = gpu.xid.get_or_insert_with(Vec::new);
        if let Some(e) = events.iter_mut().find(|e| e.code == code) {
            e.count = e.count.max(count);
            return;
        }
        let event = XidEvent {
            code,
            count,
            ..XidEvent::default()
        };
        if events.len() < MAX_XID_CODES {
            events.push(event);
            if !codes.contains(&code) {
                codes.push(code);
            }
            return;
        }
        let full = self.full.entry(gpu.index).or_default();
        full.left_out = full.left_out.saturating_add(1);
        let floor = *full.floor.get_or_insert_with(|| {
            events
                .iter()
                .map(|e| classify_xid(e.code).0)
                .min()
                .unwrap_or(Health::Crit)
        });
        if classify_xid(code).0 <= floor {
            return;
        }
        // Each replacement raises one kept code's severity, so a GPU sees at most two per kept code.
        if let Some(weakest) = events.iter().position(|e| classify_xid(e.code).0 == floor) {
            let dropped = std::mem::replace(&mut events[weakest], event).code;
            codes.retain(|&c| c != dropped);
            codes.push(code);
            full.floor = None;
        }
    }

    /// A node-level warning for each GPU whose tally was full, in GPU order.
    pub fn warnings(&self) -> Vec<String> {
        let mut full: Vec<(&u32, &Full)> = self.full.iter().collect();
        full.sort_unstable_by_key(|(gpu, _)| **gpu);
        full.into_iter()
            .map(|(gpu, f)| {
                format!(
                    "GPU {gpu}: the store holds {} more XID codes than the {MAX_XID_CODES} kept; the least \
                     severe were left out",
                    f.left_out
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_with_very_many_xid_series_stays_bounded_and_keeps_the_severe_ones() {
        use super::super::families::{apply, read, NodeData, FAMILIES};
        use super::super::query::{Labels, Series, Text};
        // Series of fleetop's XID family for GPU 3 of node n1, as the store sends them, filed as a refresh does.
        let family = FAMILIES
            .iter()
            .find(|f| f.name == "fleetop_gpu_xid_errors")
            .unwrap();
        let mut nodes: Vec<Option<NodeData>> = vec![None];
        let mut feed = |code: u32, count: &str| {
            let code = code.to_string();
            let series = Series {
                metric: Labels::of(&[("node", "n1"), ("gpu", "3"), ("xid", &code)]),
                value: (1_700_000_000.0, Text(std::borrow::Cow::Borrowed(count))),
            };
            let mut readings = Vec::new();
            read(family, &series, &|_: &Labels| Some(0), &mut readings);
            apply(family, &readings, &mut nodes);
        };
        // 64 codes no catalogue names (warn), then the real XID 79 (crit), then 20,000 more junk codes and
        // an application fault (information).
        for code in 1000..1064 {
            feed(code, "1");
        }
        feed(79, "2");
        for code in 2000..22_000 {
            feed(code, "1");
        }
        feed(13, "1");
        feed(79, "1");
        let node = nodes[0].as_mut().unwrap();
        node.finish();
        let gpu = &node.gpus[&3];
        let codes = gpu.xid.as_ref().unwrap();
        let events = gpu.xid_events.as_ref().unwrap();
        assert_eq!((codes.len(), events.len()), (MAX_XID_CODES, MAX_XID_CODES));
        assert!(codes.contains(&79) && !codes.contains(&13), "{codes:?}");
        assert_eq!(
            gpu.xid_counts().iter().find(|(c, _)| *c == 79),
            Some(&(79, 2))
        );
        assert_eq!(
            node.warnings,
            ["GPU 3: the store holds 20002 more XID codes than the 64 kept; the least severe were left out"]
        );
    }

    #[test]
    fn a_tally_within_bounds_keeps_every_code_and_says_nothing() {
        let mut gpu = GpuSample::default();
        let mut tally = XidTally::default();
        for code in [13, 48, 13] {
            tally.add(&mut gpu, code, 1);
        }
        assert_eq!(gpu.xid, Some(vec![13, 48]));
        assert!(tally.warnings().is_empty());
    }
}
