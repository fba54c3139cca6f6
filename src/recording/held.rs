//! What the writer keeps of each node's sample beside the frames: the text bytes its reader will count (so no
//! sample past a whole one's cap is written) and which fields changed, compared once for the count, the frame
//! and the kept copy.

use super::{
    apply_gpu, apply_node, changed_gpu, changed_node, held_gpu, held_node, within_node_cap,
    GPU_FIELDS, NODE_FIELDS,
};
use crate::telemetry::{GpuSample, NodeSample};

/// The text bytes of a node's sample as its reader counts them (`Node`'s), kept by the writer so that it
/// never writes a sample its reader refuses: a compact stream patches one field at a time, each patch small,
/// and the patched sample can outgrow what a whole sample may hold.
#[derive(Debug, Default, Clone)]
pub(in crate::recording) struct Held {
    held: Vec<usize>,
    total: usize,
    /// The last noted sample's changed fields: a bitmap per GPU, then the node's.
    masks: Vec<u64>,
}

impl Held {
    /// Notes `new`, written as its changes from `base` (from [`super::delta_base`]) or whole; an error, and nothing
    /// held (so the node's next sample goes whole), when the sample would hold more text than a whole one may.
    pub fn note(&mut self, base: Option<&NodeSample>, new: &NodeSample) -> Result<(), String> {
        let noted = self.note_fields(base, new);
        if noted.is_err() {
            *self = Held::default();
        }
        noted
    }

    /// The changed fields of the sample last noted, for [`super::put`] and [`keep_changes`].
    pub fn masks(&self) -> &[u64] {
        &self.masks
    }

    fn note_fields(&mut self, base: Option<&NodeSample>, new: &NodeSample) -> Result<(), String> {
        if base.is_none() {
            self.held = vec![0; new.gpus.len() * GPU_FIELDS + NODE_FIELDS];
            self.total = 0;
        }
        if self.held.len() != new.gpus.len() * GPU_FIELDS + NODE_FIELDS {
            return Err("a sample's changes from one of another size".into());
        }
        changes_into(base, new, &mut self.masks);
        let (gpu_held, node_held) = self.held.split_at_mut(new.gpus.len() * GPU_FIELDS);
        for ((now, held), mask) in new
            .gpus
            .iter()
            .zip(gpu_held.chunks_mut(GPU_FIELDS))
            .zip(&self.masks)
        {
            held_gpu(now, *mask, held, &mut self.total)?;
        }
        let node_mask = self.masks.last().copied().unwrap_or(0);
        held_node(new, node_mask, node_held, &mut self.total)?;
        within_node_cap(self.total)
    }
}

/// Which fields of `new` differ from `base` (from [`super::delta_base`]; none: from an empty sample, as a whole one is
/// written): a bitmap per GPU, then the node's.
#[cfg(test)]
pub(in crate::recording) fn changes(base: Option<&NodeSample>, new: &NodeSample) -> Vec<u64> {
    let mut masks = Vec::new();
    changes_into(base, new, &mut masks);
    masks
}

fn changes_into(base: Option<&NodeSample>, new: &NodeSample, masks: &mut Vec<u64>) {
    masks.clear();
    let (empty, no_gpu) = (NodeSample::default(), GpuSample::default());
    let old = base.unwrap_or(&empty);
    for (i, now) in new.gpus.iter().enumerate() {
        masks.push(changed_gpu(old.gpus.get(i).unwrap_or(&no_gpu), now));
    }
    masks.push(changed_node(old, new));
}

/// Makes `kept`, the sample `new` was written as the changes from, equal to `new` as its reader rebuilds it:
/// the moving numbers and the fields `masks` (from [`Held::masks`]) names, without copying the rest.
pub(in crate::recording) fn keep_changes(kept: &mut NodeSample, new: &NodeSample, masks: &[u64]) {
    for ((gpu, now), mask) in kept.gpus.iter_mut().zip(&new.gpus).zip(masks) {
        gpu.util_pct = now.util_pct;
        gpu.mem_util_pct = now.mem_util_pct;
        gpu.mem_used_mib = now.mem_used_mib;
        gpu.temp_c = now.temp_c;
        gpu.mem_temp_c = now.mem_temp_c;
        gpu.power_w = now.power_w;
        gpu.sm_clock_mhz = now.sm_clock_mhz;
        apply_gpu(gpu, now, *mask);
    }
    apply_node(kept, new, masks.last().copied().unwrap_or(0));
}
