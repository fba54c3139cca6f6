//! Compact per-GPU history rings (utilisation and temperature, one byte each) for sparklines.

/// One GPU's recent samples, oldest first when read.
#[derive(Debug, Clone, Default)]
pub struct GpuHistory {
    /// Utilisation %, `u8::MAX` where the GPU did not report it.
    util: Vec<u8>,
    temp: Vec<u8>,
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
        if self.util.len() < cap {
            if self.util.capacity() == 0 {
                // Every ring fills to `cap` within the span: sized once, exactly, rather than doubling to
                // up to twice that (1,025 nodes × 8 GPUs × 2 rings of 600).
                self.util.reserve_exact(cap);
                self.temp.reserve_exact(cap);
            }
            self.util.push(byte(util));
            self.temp.push(byte(temp));
        } else if cap > 0 {
            self.util[self.head] = byte(util);
            self.temp[self.head] = byte(temp);
            self.head = (self.head + 1) % cap;
        }
    }

    fn ordered(&self, ring: &[u8]) -> Vec<u8> {
        let (newer, older) = ring.split_at(self.head.min(ring.len()));
        older.iter().chain(newer).copied().collect()
    }

    /// Utilisation samples, oldest first ([`MISSING`] where absent).
    pub fn util(&self) -> Vec<u8> {
        self.ordered(&self.util)
    }

    pub fn temp(&self) -> Vec<u8> {
        self.ordered(&self.temp)
    }

    pub fn len(&self) -> usize {
        self.util.len()
    }

    pub fn is_empty(&self) -> bool {
        self.util.is_empty()
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
        assert_eq!(h.temp().last(), Some(&254));
    }
}
