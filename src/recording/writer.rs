//! Writes a recording: frames buffered into blocks, blocks appended to the current segment, a new segment (with a
//! keyframe of every node's state) each period or when the current one reaches its size cap, and old segments
//! deleted past the retention or the segment count cap.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::block::{self, BLOCK_TARGET, MAX_FRAME, SEGMENT_MAGIC};
use super::frame::{Event, Frame, NodeSlots};
use super::layout::{segment_path, segments, MAX_SEGMENTS, MAX_SEGMENT_BYTES};
use super::patch;
use crate::inventory::Inventory;
use crate::transport::{Msg, NodeEvent};

/// How a recording is cut and kept.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A new segment (and keyframe) starts this often.
    pub period: Duration,
    /// Segments that ended longer ago than this are deleted; `None` keeps them (up to the count cap).
    pub retain: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            period: super::layout::DEFAULT_PERIOD,
            retain: None,
        }
    }
}

struct Segment {
    file: File,
    start: u64,
    bytes: u64,
}

/// Appends a fleet's messages to a recording directory.
pub struct Writer {
    dir: PathBuf,
    options: Options,
    segment: Option<Segment>,
    slots: Vec<NodeSlots>,
    /// Each node's last sample as JSON, the base of its next patch.
    current: Vec<Option<Value>>,
    lines: Vec<u8>,
    times: Option<(u64, u64)>,
    /// Frames dropped for being past the frame cap.
    pub dropped: u64,
}

impl Writer {
    /// Opens `dir` for recording `inventory`, whose file text is `text`: a directory holding a recording of
    /// another inventory is refused (node numbers would mean other nodes).
    pub fn create(
        dir: &Path,
        inventory: &Inventory,
        text: &str,
        options: Options,
    ) -> Result<Writer, String> {
        if options.period < Duration::from_secs(1) {
            return Err("a segment period under a second".into());
        }
        super::header::write(dir, inventory, text)?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            options,
            segment: None,
            slots: vec![NodeSlots::default(); inventory.nodes.len()],
            current: vec![None; inventory.nodes.len()],
            lines: Vec::with_capacity(BLOCK_TARGET / 4),
            times: None,
            dropped: 0,
        })
    }

    /// Records `msg`, which the jump host received at `wall_ms` (ms since the epoch).
    pub fn write(&mut self, wall_ms: u64, msg: &Msg) -> Result<(), String> {
        if msg.node >= self.slots.len() {
            return Ok(());
        }
        // A new segment's keyframe holds the state before this message, which follows it as a frame.
        self.rotate_if_due(wall_ms)?;
        let event = match &msg.event {
            NodeEvent::Sample(sample) => {
                let whole =
                    serde_json::to_value(sample).map_err(|e| format!("encode a sample: {e}"))?;
                let current = &mut self.current[msg.node];
                let event = match current.as_ref() {
                    Some(before) => {
                        Event::Delta(patch::diff(before, &whole).unwrap_or(Value::Null))
                    }
                    None => Event::Sample(whole.clone()),
                };
                *current = Some(whole);
                event
            }
            other => match Event::of(other) {
                Some(e) => e,
                None => return Ok(()),
            },
        };
        self.slots[msg.node].keep(wall_ms, &event);
        self.push(Frame {
            t: wall_ms,
            n: msg.node,
            k: false,
            e: event,
        })?;
        if self.lines.len() >= BLOCK_TARGET {
            self.flush()?;
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame) -> Result<(), String> {
        let start = self.lines.len();
        serde_json::to_writer(&mut self.lines, &frame)
            .map_err(|e| format!("encode a frame: {e}"))?;
        if self.lines.len() - start > MAX_FRAME {
            self.lines.truncate(start);
            self.dropped += 1;
            return Ok(());
        }
        self.lines.push(b'\n');
        let (first, last) = self.times.unwrap_or((frame.t, frame.t));
        self.times = Some((first.min(frame.t), last.max(frame.t)));
        Ok(())
    }

    /// Writes the buffered frames as one block (the recorder calls it about once a second, so a killed
    /// recorder loses at most that).
    pub fn flush(&mut self) -> Result<(), String> {
        let (Some((first, last)), Some(seg)) = (self.times, self.segment.as_mut()) else {
            return Ok(());
        };
        let bytes = block::encode(&self.lines, first, last)?;
        seg.file
            .write_all(&bytes)
            .map_err(|e| format!("{}: {e}", segment_path(&self.dir, seg.start).display()))?;
        seg.bytes += bytes.len() as u64;
        self.lines.clear();
        self.times = None;
        Ok(())
    }

    /// Flushes and syncs the current segment, as at the end of a recording.
    pub fn close(&mut self) -> Result<(), String> {
        self.flush()?;
        if let Some(seg) = &self.segment {
            seg.file
                .sync_data()
                .map_err(|e| format!("sync the segment: {e}"))?;
        }
        Ok(())
    }

    /// Starts a new segment when none is open, the period has turned or the current one is full.
    fn rotate_if_due(&mut self, now: u64) -> Result<(), String> {
        let period = u64::try_from(self.options.period.as_millis()).unwrap_or(u64::MAX);
        let due = match &self.segment {
            None => true,
            Some(seg) => now / period != seg.start / period || seg.bytes >= MAX_SEGMENT_BYTES,
        };
        if !due {
            return Ok(());
        }
        self.close()?;
        let start = match &self.segment {
            // Names are start times, and must grow: a clock stepped back continues after the last one.
            Some(seg) => now.max(seg.start + 1),
            None => now,
        };
        let path = segment_path(&self.dir, start);
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(SEGMENT_MAGIC)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.segment = Some(Segment {
            file,
            start,
            bytes: SEGMENT_MAGIC.len() as u64,
        });
        for n in 0..self.slots.len() {
            for frame in self.slots[n].keyframe(n, self.current[n].as_ref()) {
                self.push(frame)?;
            }
        }
        self.flush()?;
        self.prune(start)
    }

    /// Deletes whole segments that ended before the retention, and the oldest past the count cap.
    fn prune(&self, now: u64) -> Result<(), String> {
        let all = segments(&self.dir)?;
        let keep_after = self
            .options
            .retain
            .map(|r| now.saturating_sub(u64::try_from(r.as_millis()).unwrap_or(u64::MAX)));
        let over = all.len().saturating_sub(MAX_SEGMENTS);
        for (i, start) in all.iter().enumerate() {
            // A segment ends where the next begins; the last one is being written.
            let Some(end) = all.get(i + 1) else { break };
            let expired = keep_after.is_some_and(|k| *end <= k);
            if i < over || expired {
                let path = segment_path(&self.dir, *start);
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        Ok(())
    }
}
