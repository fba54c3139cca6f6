//! The last successful GPU reset and node reboot per node, as fleetop's audit log records them: an XID older
//! than them is history (`telemetry::xid_age`).

/// One node's last audited reboot, and last reset of every GPU at once or of single GPUs (Unix ms).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NodeResets {
    pub(super) reboot_ms: Option<u64>,
    all_gpus_ms: Option<u64>,
    gpu_ms: Vec<(u32, u64)>,
}

impl NodeResets {
    pub(super) fn note(&mut self, gpu: Option<u32>, reboot: bool, at_ms: u64) {
        let later = |slot: &mut Option<u64>| *slot = Some(slot.map_or(at_ms, |t| t.max(at_ms)));
        match (reboot, gpu) {
            (true, _) => later(&mut self.reboot_ms),
            (false, None) => later(&mut self.all_gpus_ms),
            (false, Some(g)) => match self.gpu_ms.iter_mut().find(|(i, _)| *i == g) {
                Some((_, t)) => *t = (*t).max(at_ms),
                None => self.gpu_ms.push((g, at_ms)),
            },
        }
    }

    /// The latest of the node's reboot, its all-GPU reset and this GPU's own reset.
    pub(super) fn last_for(&self, gpu: u32) -> Option<u64> {
        let own = self.gpu_ms.iter().find(|(i, _)| *i == gpu).map(|(_, t)| *t);
        [self.reboot_ms, self.all_gpus_ms, own]
            .into_iter()
            .flatten()
            .max()
    }
}

/// A successful reset or reboot read back from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedReset {
    pub node: String,
    /// The one GPU reset (`nvidia-smi -r -i N`); `None`: every GPU, or a reboot.
    pub gpu: Option<u32>,
    pub reboot: bool,
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_counts_its_own_reset_the_whole_node_and_the_latest() {
        let mut r = NodeResets::default();
        r.note(Some(3), false, 100);
        r.note(None, true, 50);
        assert_eq!(r.last_for(3), Some(100));
        assert_eq!(r.last_for(2), Some(50), "a reboot resets every GPU");
        r.note(None, false, 200);
        assert_eq!(r.last_for(2), Some(200), "a reset of every GPU");
        r.note(Some(3), false, 90);
        assert_eq!(r.last_for(3), Some(200), "the latest wins");
    }
}
