//! Compact per-GPU history rings (utilisation and temperature, one byte each) for sparklines.

/// One GPU's recent samples, oldest first when read.
#[derive(Debug, Clone, Default)]
pub struct GpuHistory {
    /// Utilisation % and temperature °C of each sample, [`MISSING`] where the GPU did not report it: side by
    /// side, so a second's push is one two-byte store.
    points: Vec<[u8; 2]>,
    /// Where the next point goes once the ring is full: the oldest one.
    head: usize,
}

/// GPU `index`'s ring among a node's rings, made on first use; `None` past the most GPUs a sample may hold.
pub(super) fn ring(rings: &mut Vec<GpuHistory>, index: u32) -> Option<&mut GpuHistory> {
    let i = index as usize;
    if i >= crate::telemetry::wire::MAX_GPUS_PER_SAMPLE {
        return None;
    }
    if rings.len() <= i {
        rings.resize_with(i + 1, Default::default);
    }
    rings.get_mut(i)
}

/// Marks a sample without a value.
pub(crate) const MISSING: u8 = u8::MAX;

fn byte(v: Option<u32>) -> u8 {
    v.map_or(MISSING, |x| x.min(254) as u8)
}

impl GpuHistory {
    pub fn push(&mut self, cap: usize, util: Option<u32>, temp: Option<u32>) {
        let point = [byte(util), byte(temp)];
        if self.points.len() < cap {
            if self.points.capacity() == 0 {
                // Every ring fills to `cap` within the span: sized once, exactly, rather than doubling to
                // up to twice that (1,025 nodes × 8 GPUs × 600 points).
                self.points.reserve_exact(cap);
            }
            self.points.push(point);
        } else if let Some(oldest) = self.points.get_mut(self.head) {
            *oldest = point;
            // A compare, not a division: this runs per GPU per node every second.
            self.head += 1;
            if self.head == self.points.len() {
                self.head = 0;
            }
        }
    }

    /// One value of each point, oldest first.
    fn ordered(&self, value: usize) -> Vec<u8> {
        let (newer, older) = self.points.split_at(self.head.min(self.points.len()));
        older.iter().chain(newer).map(|p| p[value]).collect()
    }

    /// Utilisation samples, oldest first ([`MISSING`] where absent).
    pub fn util(&self) -> Vec<u8> {
        self.ordered(0)
    }

    pub fn temp(&self) -> Vec<u8> {
        self.ordered(1)
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_in_order() {
        let mut h = GpuHistory::default();
        for v in 0..5 {
            h.push(3, Some(v), None);
        }
        assert_eq!(h.util(), vec![2, 3, 4]);
        assert_eq!(h.temp(), vec![MISSING; 3]);
        h.push(3, None, Some(300));
        assert_eq!(h.util(), vec![3, 4, MISSING]);
        assert_eq!(h.temp(), vec![MISSING, MISSING, 254]);
        // Round the ring more than once: the head wraps.
        for v in 10..17 {
            h.push(3, Some(v), Some(v + 30));
        }
        assert_eq!(h.util(), vec![14, 15, 16]);
        assert_eq!(h.temp(), vec![44, 45, 46]);
        assert_eq!(h.len(), 3);
    }
}
