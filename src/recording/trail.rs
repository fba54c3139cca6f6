//! What a seek hands the TUI instead of replaying the half minute before the time asked: each GPU's utilisation
//! and temperature over that time, as the `NodeEvent::History` a store with history sends, which fills the
//! sparklines as the samples themselves would have (at a thirtieth of the cost: no sample copied, checked or
//! merged into fleet state).

use std::collections::VecDeque;

use crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
use crate::telemetry::NodeSample;
use crate::transport::GpuPast;

/// Samples kept per node: half a minute at the fastest interval an inventory accepts (100 ms) is 300; a file
/// with more in the window keeps its latest, so a hostile one costs at most this many a node.
const MAX_SAMPLES: usize = 300;

/// One sample's points: GPU index, utilisation, temperature.
type Points = Vec<(u32, Option<u32>, Option<u32>)>;

/// The points of each node's samples from `since` on.
#[derive(Debug)]
pub(super) struct Trail {
    pub since: u64,
    nodes: Vec<VecDeque<Points>>,
}

impl Trail {
    pub fn new(since: u64, nodes: usize) -> Self {
        Trail {
            since,
            nodes: vec![VecDeque::new(); nodes],
        }
    }

    /// Notes node `n`'s sample, read at `t`: only its GPUs indexed below the sample bound, so a file moving the
    /// indices each sample cannot make one node's history hold thousands (a recorded History frame is cut to the
    /// same bound).
    pub fn note(&mut self, n: usize, t: u64, sample: &NodeSample) {
        let Some(samples) = self.nodes.get_mut(n).filter(|_| t >= self.since) else {
            return;
        };
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(
            sample
                .gpus
                .iter()
                .filter(|g| (g.index as usize) < MAX_GPUS_PER_SAMPLE)
                .map(|g| (g.index, g.util_pct, g.temp_c))
                .collect(),
        );
    }

    /// Each node's history, oldest first, without its last sample (the state handed out restates it).
    pub fn into_history(self) -> Vec<(usize, Vec<GpuPast>)> {
        let mut out = Vec::new();
        for (n, mut samples) in self.nodes.into_iter().enumerate() {
            samples.pop_back();
            let mut gpus: Vec<GpuPast> = Vec::new();
            for points in samples {
                for (index, util, temp) in points {
                    match gpus.iter_mut().find(|g| g.0 == index) {
                        Some(g) => g.1.push((util, temp)),
                        None => gpus.push((index, vec![(util, temp)])),
                    }
                }
            }
            if !gpus.is_empty() {
                out.push((n, gpus));
            }
        }
        out
    }
}
