//! A node's sample as a binary frame, without JSON trees: a whole sample is every field that differs from an
//! empty one, a delta every field that differs from the node's previous sample. Each GPU opens with its fixed
//! record (the seven numbers that move every second, each one's change), then, as the node does, a bitmap of
//! its other fields that changed in the order of the table below and each one's value: integers as a zigzag
//! varint of their change, floats at their decimal precision, texts and lists (processes, XIDs, throttle
//! reasons, ports) whole as bounded JSON. Decoding writes into the node's previous sample in place, and counts the bytes
//! its texts hold, so a file cannot grow a node past a whole sample's cap patch after patch.

use serde::de::DeserializeOwned;

use super::codec::{Cursor, Lane, Lanes, Moving};
use crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
use crate::telemetry::{GpuSample, NodeSample};

#[path = "held.rs"]
mod held;
#[cfg(test)]
pub(super) use held::changes;
pub(super) use held::{keep_changes, Held};

/// Largest text or JSON value one field holds.
pub(super) const MAX_FIELD: usize = 256 << 10;
/// Largest sum of a node's texts and JSON values: a whole sample's cap, what a live line may hold (the writer
/// keeps to it too, see [`Held`]).
pub(super) const MAX_NODE: usize = crate::telemetry::wire::MAX_LINE_BYTES;

/// One field's value as bytes, given the value it replaces.
trait Packed: Sized + PartialEq {
    fn pack(&self, prev: &Self, out: &mut Lanes) -> Result<(), String>;
    /// The value and how many text bytes it holds.
    fn unpack(prev: &Self, c: &mut Cursor) -> Result<(Self, usize), String>;
    /// How many text bytes the value holds once written, as `unpack` counts them.
    fn text_bytes(&self) -> Result<usize, String> {
        Ok(0)
    }
}

macro_rules! packed_int {
    ($($t:ty),*) => {$(
        impl Packed for Option<$t> {
            fn pack(&self, prev: &Self, out: &mut Lanes) -> Result<(), String> {
                out.delta(self.map(|v| v as u64), prev.map_or(0, |v| v as u64));
                Ok(())
            }
            fn unpack(prev: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
                let v = c.delta(prev.map_or(0, |v| v as u64))?;
                // Signed values travel as their two's complement in 64 bits.
                let v = v
                    .map(|v| <$t>::try_from(v as i64).or_else(|_| <$t>::try_from(v)))
                    .transpose()
                    .map_err(|_| format!("a value out of range for {}", stringify!($t)))?;
                Ok((v, 0))
            }
        }
        impl Packed for $t {
            fn pack(&self, prev: &Self, out: &mut Lanes) -> Result<(), String> {
                Some(*self).pack(&Some(*prev), out)
            }
            fn unpack(prev: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
                match Option::<$t>::unpack(&Some(*prev), c)? {
                    (Some(v), _) => Ok((v, 0)),
                    (None, _) => Err("a missing value for a field that always has one".into()),
                }
            }
        }
    )*};
}
packed_int!(u32, u64, i32);

impl Packed for Option<bool> {
    fn pack(&self, prev: &Self, out: &mut Lanes) -> Result<(), String> {
        self.map(u32::from).pack(&prev.map(u32::from), out)
    }
    fn unpack(prev: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
        let (v, _) = Option::<u32>::unpack(&prev.map(u32::from), c)?;
        match v {
            None => Ok((None, 0)),
            Some(b @ 0..=1) => Ok((Some(b == 1), 0)),
            Some(n) => Err(format!("{n} for a yes-or-no field")),
        }
    }
}

impl Packed for Option<f64> {
    fn pack(&self, prev: &Self, out: &mut Lanes) -> Result<(), String> {
        out.float(*self, *prev);
        Ok(())
    }
    fn unpack(prev: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
        Ok((c.float(*prev)?, 0))
    }
}

/// Texts and JSON: 0 for none, else one more than the length, then the bytes.
fn pack_bytes(bytes: Option<&[u8]>, out: &mut Lanes) -> Result<(), String> {
    match bytes {
        None => out.uint(Lane::Text, 0),
        Some(b) if b.len() > MAX_FIELD => {
            return Err(format!(
                "a field of {} bytes, past the {MAX_FIELD} byte cap",
                b.len()
            ))
        }
        Some(b) => {
            out.uint(Lane::Text, 1);
            out.bytes(b);
        }
    }
    Ok(())
}

fn unpack_bytes<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, String> {
    match c.uint(Lane::Text)? {
        0 => Ok(None),
        1 => c.bytes(MAX_FIELD, "a field's length").map(Some),
        n => Err(format!("{n} for a text field's presence")),
    }
}

impl Packed for Option<String> {
    fn pack(&self, _: &Self, out: &mut Lanes) -> Result<(), String> {
        pack_bytes(self.as_deref().map(str::as_bytes), out)
    }
    fn unpack(_: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
        let Some(bytes) = unpack_bytes(c)? else {
            return Ok((None, 0));
        };
        let text = std::str::from_utf8(bytes).map_err(|e| format!("a text field: {e}"))?;
        Ok((Some(text.to_string()), bytes.len()))
    }
    fn text_bytes(&self) -> Result<usize, String> {
        Ok(self.as_ref().map_or(0, String::len))
    }
}

/// Lists and structures, as JSON (they change rarely, and whole).
macro_rules! packed_json {
    ($($t:ty),* $(,)?) => {$(
        impl Packed for $t {
            fn pack(&self, _: &Self, out: &mut Lanes) -> Result<(), String> {
                let json = serde_json::to_vec(self).map_err(|e| format!("encode a field: {e}"))?;
                pack_bytes(Some(&json), out)
            }
            fn unpack(_: &Self, c: &mut Cursor) -> Result<(Self, usize), String> {
                let bytes = unpack_bytes(c)?.ok_or("no value for a list field")?;
                Ok((json(bytes)?, bytes.len()))
            }
            fn text_bytes(&self) -> Result<usize, String> {
                serde_json::to_vec(self).map(|json| json.len()).map_err(|e| format!("encode a field: {e}"))
            }
        }
    )*};
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("a list field: {e}"))
}

use crate::telemetry::board::{ClockViolation, GpuFabric, PcieAer, RemapBanks, Rise};
use crate::telemetry::fabric::{IbPort, NvLinks};
use crate::telemetry::past::PastEvent;
use crate::telemetry::process::GpuProcess;
use crate::telemetry::{GpuError, XidEvent};

packed_json!(
    Option<Vec<String>>,
    Option<Vec<u32>>,
    Option<Vec<XidEvent>>,
    Option<NvLinks>,
    Option<Vec<GpuProcess>>,
    Option<Rise>,
    Option<PcieAer>,
    Option<GpuFabric>,
    Option<RemapBanks>,
    Option<ClockViolation>,
    Vec<GpuError>,
    Option<Vec<PastEvent>>,
    Vec<String>,
    Vec<XidEvent>,
    Option<Vec<IbPort>>,
);

/// The field table of `$ty`: writes the fields of `new` that differ from `old` (a bitmap, then values) and
/// reads them back into a value, noting the text bytes each field holds in `held` and their sum in `total`. Listing every field, without
/// `..`, makes a field added to the type stop this compiling until it is given a place.
macro_rules! table {
    ($changed:ident, $put:ident, $apply:ident, $get:ident, $held:ident, $count:ident, $ty:ident, { $($f:ident),* $(,)? } $(, skip $($skip:ident),*)?) => {
        const $count: usize = [$(stringify!($f)),*].len();

        /// Which fields of `new` differ from `old`, a bit each in the table's order: compared once, and the
        /// bitmap serves both the text bytes' count and the frame.
        fn $changed(old: &$ty, new: &$ty) -> u64 {
            let $ty { $($f: _,)* $($($skip: _,)*)? } = new;
            let mut mask = 0u64;
            let mut bit = 0;
            $(
                if old.$f != new.$f {
                    mask |= 1 << bit;
                }
                bit += 1;
            )*
            let _ = bit;
            mask
        }

        /// Writes the bitmap `mask` (from `$changed`) and the fields of `new` it names, as changes from `old`.
        fn $put(old: &$ty, new: &$ty, mask: u64, out: &mut Lanes) -> Result<(), String> {
            out.uint(Lane::Head, mask);
            let mut bit = 0;
            $(
                if mask & 1 << bit != 0 {
                    new.$f.pack(&old.$f, out)?;
                }
                bit += 1;
            )*
            let _ = bit;
            Ok(())
        }

        /// Copies into `into` the fields of `new` that `mask` names (the others are equal already).
        fn $apply(into: &mut $ty, new: &$ty, mask: u64) {
            let mut bit = 0;
            $(
                if mask & 1 << bit != 0 {
                    into.$f.clone_from(&new.$f);
                }
                bit += 1;
            )*
            let _ = bit;
        }

        /// Notes in `held` and `total` the text bytes of the fields of `new` that `mask` names, as `$get` will
        /// read them.
        fn $held(new: &$ty, mask: u64, held: &mut [usize], total: &mut usize) -> Result<(), String> {
            let mut bit = 0;
            $(
                if mask & 1 << bit != 0 {
                    let bytes = new.$f.text_bytes()?;
                    *total = *total - held[bit] + bytes;
                    held[bit] = bytes;
                }
                bit += 1;
            )*
            let _ = bit;
            Ok(())
        }

        fn $get(into: &mut $ty, held: &mut [usize], total: &mut usize, c: &mut Cursor) -> Result<(), String> {
            let mask = c.uint(Lane::Head)?;
            if mask >> $count != 0 {
                return Err(format!("a field bitmap {mask:#x} naming fields past the {}", $count));
            }
            let mut bit = 0;
            $(
                if mask & 1 << bit != 0 {
                    let (v, bytes) = Packed::unpack(&into.$f, c)?;
                    into.$f = v;
                    *total = *total - held[bit] + bytes;
                    held[bit] = bytes;
                }
                bit += 1;
            )*
            let _ = bit;
            Ok(())
        }
    };
}

table!(changed_gpu, put_gpu, apply_gpu, get_gpu, held_gpu, GPU_FIELDS, GpuSample, {
    index, uuid, name, mem_total_mib, power_limit_w, throttle, ecc_uncorrected, remapped_rows_pending, remapped_rows_failed, xid,
    xid_events, pcie_gen, pcie_width, temp_slowdown_c, temp_shutdown_c, mem_temp_max_c,
    remapped_rows_uncorrectable, mig_enabled, pci_bus_id, serial, vbios, tlimit_margin_c, tlimit_shutdown_c,
    tlimit_slowdown_c, tlimit_mem_max_c, tlimit_gpu_max_c, recovery_action, nvlink, processes, pcie_max_gen,
    pcie_max_width, pcie_replay, pcie_replay_rise, pcie_aer, fabric, sram_threshold_exceeded,
    memory_unrepairable, remap_banks, clock_violation, errors, past,
}, skip util_pct, mem_util_pct, mem_used_mib, temp_c, mem_temp_c, power_w, sm_clock_mhz);

/// A GPU's numbers that move every second, in a record of their own (see [`Moving`]): always all of them,
/// each one's change or none, with no bitmap.
fn moving(gpu: &GpuSample) -> Moving {
    let wide = |v: Option<u32>| v.map(u64::from);
    Moving {
        ints: [
            wide(gpu.sm_clock_mhz),
            gpu.mem_used_mib,
            wide(gpu.mem_temp_c),
            wide(gpu.temp_c),
            wide(gpu.mem_util_pct),
            wide(gpu.util_pct),
        ],
        power: gpu.power_w,
    }
}

/// Reads a GPU's record into `gpu`, which holds the values before.
fn get_record(gpu: &mut GpuSample, c: &mut Cursor) -> Result<(), String> {
    let Moving { ints, power } = c.record(&moving(gpu))?;
    let narrow = |v: Option<u64>, what: &str| {
        v.map(u32::try_from)
            .transpose()
            .map_err(|_| format!("Record lane: {what} {} out of range", v.unwrap_or(0)))
    };
    let [sm_clock, mem_used, mem_temp, temp, mem_util, util] = ints;
    gpu.util_pct = narrow(util, "utilisation")?;
    gpu.mem_util_pct = narrow(mem_util, "memory utilisation")?;
    gpu.temp_c = narrow(temp, "temperature")?;
    gpu.mem_temp_c = narrow(mem_temp, "memory temperature")?;
    gpu.mem_used_mib = mem_used;
    gpu.sm_clock_mhz = narrow(sm_clock, "SM clock")?;
    gpu.power_w = power;
    Ok(())
}

table!(changed_node, put_node, apply_node, get_node, held_node, NODE_FIELDS, NodeSample, {
    t, warnings, sxid, unmatched_xid, ib, past,
}, skip gpus);

/// A node's sample as the reader rebuilds it, with the text bytes each field holds.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub sample: NodeSample,
    /// A whole sample was read: changes apply to it.
    pub whole: bool,
    held: Vec<usize>,
    /// The sum of `held`.
    total: usize,
}

fn within_node_cap(total: usize) -> Result<(), String> {
    if total > MAX_NODE {
        return Err(format!(
            "a sample holding {total} bytes of text, more than a whole sample may ({MAX_NODE})"
        ));
    }
    Ok(())
}

/// The sample `new` can be written as the changes from: `old`, unless it has another number of GPUs.
pub(super) fn delta_base<'a>(
    old: Option<&'a NodeSample>,
    new: &NodeSample,
) -> Option<&'a NodeSample> {
    old.filter(|o| o.gpus.len() == new.gpus.len())
}

/// Writes `new` as its changes from `base` (from [`delta_base`]), or whole where there is none; `masks` are its
/// changed fields (from [`Held::masks`]).
pub(super) fn put(
    base: Option<&NodeSample>,
    new: &NodeSample,
    masks: &[u64],
    out: &mut Lanes,
) -> Result<(), String> {
    let Some((&node_mask, masks)) = masks
        .split_last()
        .filter(|(_, gpus)| gpus.len() == new.gpus.len())
    else {
        return Err("a sample's changed fields counted for another sample".into());
    };
    match base {
        Some(old) => {
            for ((was, now), mask) in old.gpus.iter().zip(&new.gpus).zip(masks) {
                out.record(&moving(now), &moving(was));
                put_gpu(was, now, *mask, out)?;
            }
            put_node(old, new, node_mask, out)
        }
        None => {
            let empty = GpuSample::default();
            out.uint(Lane::Head, new.gpus.len() as u64);
            for (gpu, mask) in new.gpus.iter().zip(masks) {
                out.record(&moving(gpu), &moving(&empty));
                put_gpu(&empty, gpu, *mask, out)?;
            }
            put_node(&NodeSample::default(), new, node_mask, out)
        }
    }
}

/// Reads a whole sample into `node`.
pub(super) fn get_whole(node: &mut Node, c: &mut Cursor) -> Result<(), String> {
    let gpus = c.count(Lane::Head, MAX_GPUS_PER_SAMPLE + 1, "GPUs in a sample")?;
    node.sample = NodeSample {
        gpus: vec![GpuSample::default(); gpus],
        ..Default::default()
    };
    node.held = vec![0; gpus * GPU_FIELDS + NODE_FIELDS];
    node.total = 0;
    // Until it is read in full, the node has no sample changes could apply to.
    node.whole = false;
    get_fields(node, c)?;
    node.whole = true;
    Ok(())
}

/// Reads the changes of a sample into `node`, which holds the one before.
pub(super) fn get_delta(node: &mut Node, c: &mut Cursor) -> Result<(), String> {
    if !node.whole {
        return Err("a sample's changes before any whole sample of its node".into());
    }
    get_fields(node, c)
}

fn get_fields(node: &mut Node, c: &mut Cursor) -> Result<(), String> {
    let (gpu_held, node_held) = node.held.split_at_mut(node.sample.gpus.len() * GPU_FIELDS);
    let total = &mut node.total;
    for (gpu, held) in node
        .sample
        .gpus
        .iter_mut()
        .zip(gpu_held.chunks_mut(GPU_FIELDS))
    {
        get_record(gpu, c)?;
        get_gpu(gpu, held, total, c)?;
    }
    get_node(&mut node.sample, node_held, total, c)?;
    within_node_cap(*total)
}
