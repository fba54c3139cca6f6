//! dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS` holds a GPU's last XID only, so a later XID 13 replaces an XID 79
//! that still needs the node restarted. While fleetop follows the store, every last XID a refresh read stays
//! with its GPU for [`XID_WINDOW`] after the store last said it, by the store's own timestamps: a later code
//! never downgrades an earlier one. (A one-pass snapshot asks for the window's largest value instead.)

use std::collections::HashMap;

use super::families::{NodeData, XID_WINDOW};
use super::xids::MAX_XID_CODES;
use crate::inventory::NodeId;

/// The codes each GPU's last XID held within the window, with the store's latest time for each.
#[derive(Debug, Default)]
pub(crate) struct LastXids {
    seen: HashMap<(NodeId, u32), Vec<(u32, f64)>>,
}

impl LastXids {
    /// Remembers the last XIDs this refresh read, forgets those the store last said more than the window
    /// before `now_s` (Unix seconds, the time asked about), and adds what each GPU still holds to its codes.
    pub fn merge(&mut self, nodes: &mut [Option<NodeData>], now_s: f64) {
        for (id, data) in nodes.iter().enumerate() {
            for x in data.iter().flat_map(|d| &d.last_xids) {
                let codes = self.seen.entry((id, x.gpu)).or_default();
                match codes.iter_mut().find(|(code, _)| *code == x.code) {
                    Some(held) => held.1 = held.1.max(x.t),
                    None => {
                        // Full: the code the store said longest ago makes room.
                        if codes.len() >= MAX_XID_CODES {
                            if let Some(oldest) = codes
                                .iter()
                                .enumerate()
                                .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
                                .map(|(i, _)| i)
                            {
                                codes.swap_remove(oldest);
                            }
                        }
                        codes.push((x.code, x.t));
                    }
                }
            }
        }
        let since = now_s - XID_WINDOW.as_secs_f64();
        self.seen.retain(|_, codes| {
            codes.retain(|(_, t)| *t >= since);
            !codes.is_empty()
        });
        for ((id, gpu), codes) in &self.seen {
            let Some(g) = nodes
                .get_mut(*id)
                .and_then(Option::as_mut)
                .and_then(|d| d.gpus.get_mut(gpu))
            else {
                continue;
            };
            let held = g.xid.get_or_insert_with(Vec::new);
            for (code, _) in codes {
                if !held.contains(code) {
                    held.push(*code);
                }
            }
            held.sort_unstable();
        }
    }

    /// How many (GPU, code) pairs are held, for tests of the bound.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.seen.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::GpuSample;
    use crate::transport::prometheus::families::LastXid;

    /// Node 0 with GPU 0 whose last XID, read at `t`, is `code`.
    fn round(code: u32, t: f64) -> Vec<Option<NodeData>> {
        let mut data = NodeData::default();
        data.gpus.insert(
            0,
            GpuSample {
                xid: Some(vec![code]),
                ..Default::default()
            },
        );
        data.last_xids.push(LastXid { gpu: 0, code, t });
        vec![Some(data)]
    }

    fn codes(nodes: &[Option<NodeData>]) -> Option<Vec<u32>> {
        nodes[0].as_ref()?.gpus[&0].xid.clone()
    }

    #[test]
    fn a_later_last_xid_keeps_the_earlier_one_for_the_window() {
        let mut memory = LastXids::default();
        let t0 = 1_700_000_000.0;
        let mut first = round(79, t0);
        memory.merge(&mut first, t0);
        assert_eq!(codes(&first), Some(vec![79]));
        // XID 13 replaced it in dcgm-exporter's gauge: both are held.
        let mut later = round(13, t0 + 30.0);
        memory.merge(&mut later, t0 + 30.0);
        assert_eq!(codes(&later), Some(vec![13, 79]));
        // The store last said 79 more than the window ago: it is gone, 13 stays.
        let after = t0 + XID_WINDOW.as_secs_f64() + 1.0;
        let mut late = round(13, after);
        memory.merge(&mut late, after);
        assert_eq!(codes(&late), Some(vec![13]));
        assert_eq!(memory.held(), 1);
    }

    #[test]
    fn each_gpu_holds_a_bounded_number_of_codes() {
        let mut memory = LastXids::default();
        let t0 = 1_700_000_000.0;
        for code in 1..=(MAX_XID_CODES as u32 + 10) {
            let t = t0 + f64::from(code);
            memory.merge(&mut round(code, t), t);
        }
        assert_eq!(memory.held(), MAX_XID_CODES);
        // All within the window: the code said longest ago makes room for a new one.
        let t = t0 + 100.0;
        let mut last = round(1000, t);
        memory.merge(&mut last, t);
        let held = codes(&last).unwrap();
        assert_eq!(held.len(), MAX_XID_CODES);
        assert!(held.contains(&1000) && !held.contains(&11), "{held:?}");
    }
}
