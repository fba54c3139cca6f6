//! Writes a recording: frames buffered into blocks, blocks appended to the current segment, a new segment (with a
//! keyframe of every node's state) each period or when the current one reaches its size cap, and old segments
//! deleted past the retention or the segment count cap.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::block::{self, BLOCK_TARGET, SEGMENT_MAGIC};
use super::codec::{Lanes, MAX_FRAME};
use super::frame::{self, After, Event, Frame, NodeSlots, Slot, MAX_ANSWERS_PER_BLOCK};
use super::layout::{segment_path, segments, MAX_SEGMENTS, MAX_SEGMENT_BYTES};
use super::packed::{delta_base, keep_changes, Held};
use crate::inventory::Inventory;
use crate::telemetry::NodeSample;
use crate::transport::{Msg, NodeEvent};
use crate::workload::{Job, Workload};

/// Beats (seconds, as the recorder beats) a block covers: bzip2 codes ten seconds of the fleet's GPU records
/// a tenth smaller than one (docs/benchmarks.md), and ten seconds of the demo fleet are about what it sorts at
/// once. A recorder stopped by a signal writes its open block; one killed outright loses at most these seconds.
pub const BEATS_PER_BLOCK: u32 = 10;

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
    /// Each node's last sample as recorded, which its next one is written as the changes from.
    current: Vec<Option<NodeSample>>,
    /// Each node's sample's text bytes as the reader counts them, so no sample past its cap is written.
    held: Vec<Held>,
    lanes: Lanes,
    /// The block's last frame, which the next one's time and node are written as changes from.
    after: After,
    times: Option<(u64, u64)>,
    /// The last scheduler answer's frame, which each keyframe restates, and how many the block holds.
    answer: Option<Frame>,
    answers: usize,
    /// The recorder's beats the open block has seen, and whether a frame came since the last one.
    beats: u32,
    heard: bool,
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
            held: vec![Held::default(); inventory.nodes.len()],
            lanes: Lanes::default(),
            after: After::default(),
            times: None,
            answer: None,
            answers: 0,
            beats: 0,
            heard: false,
            dropped: 0,
        })
    }

    /// Records `msg`, which the jump host received at `wall_ms` (ms since the epoch).
    pub fn write(&mut self, wall_ms: u64, msg: &Msg) -> Result<(), String> {
        let event = match &msg.event {
            NodeEvent::Sample(sample) => return self.write_sample(wall_ms, msg.node, sample),
            other => match Event::of(other) {
                Some(e) => e,
                None => return Ok(()),
            },
        };
        let Some(frame) = self.frame(wall_ms, msg.node, event)? else {
            return Ok(());
        };
        self.push(&frame);
        self.flush_if_full()
    }

    /// Records node `node`'s whole sample as it stood at `wall_ms` (a sample message's, or the one fleet state
    /// patched from a compact stream's delta, without copying it into a message).
    pub fn write_sample(
        &mut self,
        wall_ms: u64,
        node: usize,
        sample: &crate::telemetry::NodeSample,
    ) -> Result<(), String> {
        let Some(frame) = self.frame(wall_ms, node, Event::Sample)? else {
            return Ok(());
        };
        self.push_sample(frame, sample);
        self.flush_if_full()
    }

    /// The frame of `event` on `node` at `wall_ms`, kept as the node's latest of its kind; `None` for a node the
    /// inventory does not have.
    fn frame(&mut self, wall_ms: u64, node: usize, event: Event) -> Result<Option<Frame>, String> {
        if node >= self.slots.len() {
            return Ok(None);
        }
        // A new segment's keyframe holds the state before this message, which follows it as a frame.
        self.rotate_if_due(wall_ms)?;
        self.slots[node].keep(wall_ms, &event);
        Ok(Some(Frame {
            t: wall_ms,
            n: node,
            k: false,
            e: event,
        }))
    }

    fn flush_if_full(&mut self) -> Result<(), String> {
        if self.lanes.len() >= BLOCK_TARGET {
            self.flush()?;
        }
        Ok(())
    }

    /// Records a scheduler answer received at `wall_ms`: the jobs of each node whose jobs changed, then the
    /// answer's end (its problems and schedulers), which tells a reader to hand out the workload.
    pub fn write_workload(&mut self, wall_ms: u64, workload: &Workload) -> Result<(), String> {
        if self.slots.is_empty() {
            return Ok(());
        }
        self.rotate_if_due(wall_ms)?;
        if self.answers >= MAX_ANSWERS_PER_BLOCK {
            self.flush()?;
        }
        let mut changed = false;
        for n in 0..self.slots.len() {
            let jobs: Vec<Job> = workload.jobs(n).iter().map(|j| Job::clone(j)).collect();
            let before = match &self.slots[n].latest[Slot::Jobs.index()] {
                Some((_, Event::Jobs(kept))) => kept.as_slice(),
                _ => &[],
            };
            if before == jobs.as_slice() {
                continue;
            }
            let frame = Frame {
                t: wall_ms,
                n,
                k: false,
                e: Event::Jobs(jobs),
            };
            // A list past the frame cap stays unrecorded, and is tried again at the next answer.
            if self.push(&frame) {
                self.slots[n].keep(wall_ms, &frame.e);
                changed = true;
            }
        }
        let same = match &self.answer {
            Some(Frame {
                e: Event::Workload { problems, checked },
                ..
            }) => *problems == workload.problems && *checked == workload.checked,
            _ => false,
        };
        if changed || !same {
            let frame = Frame {
                t: wall_ms,
                n: 0,
                k: false,
                e: Event::Workload {
                    problems: workload.problems.clone(),
                    checked: workload.checked.clone(),
                },
            };
            if self.push(&frame) {
                self.answer = Some(frame);
                self.answers += 1;
            }
        }
        Ok(())
    }

    /// Writes a sample frame, whole when the node has no sample it can be the changes from (a keyframe takes
    /// the node's sample away first), and keeps the sample as the node's; a sample not written leaves the node
    /// with none, so the next goes whole.
    fn push_sample(&mut self, frame: Frame, sample: &NodeSample) {
        let kept = self.current[frame.n].take();
        let base = delta_base(kept.as_ref(), sample);
        // Past the reader's cap the sample is dropped, and the node's next goes whole (and is judged whole).
        if self.held[frame.n].note(base, sample).is_err() {
            self.dropped += 1;
            return;
        }
        let masks = self.held[frame.n].masks();
        let written = push_frame(
            &mut self.lanes,
            &mut self.after,
            &mut self.times,
            &frame,
            Some((base, sample, masks)),
        );
        self.dropped += u64::from(!written);
        self.heard |= written;
        if written {
            // Only what changed is copied into the kept sample: most of a GPU's fields stay as they were.
            self.current[frame.n] = Some(match kept {
                Some(mut kept) if base.is_some() => {
                    keep_changes(&mut kept, sample, masks);
                    kept
                }
                Some(mut kept) => {
                    kept.clone_from(sample);
                    kept
                }
                None => sample.clone(),
            });
        }
    }

    /// Writes one frame into the block being filled; false (and counted in `dropped`) when it came out past
    /// the frame cap.
    fn push(&mut self, frame: &Frame) -> bool {
        let written = push_frame(
            &mut self.lanes,
            &mut self.after,
            &mut self.times,
            frame,
            None,
        );
        self.dropped += u64::from(!written);
        self.heard |= written;
        written
    }

    /// Writes the buffered frames as one block now (a stopped recorder, a new segment; the recorder's beats
    /// flush every [`BEATS_PER_BLOCK`]).
    pub fn flush(&mut self) -> Result<(), String> {
        let (Some((first, last)), Some(seg)) = (self.times, self.segment.as_mut()) else {
            return Ok(());
        };
        let bytes = block::encode(&self.lanes, first, last)?;
        seg.file
            .write_all(&bytes)
            .map_err(|e| format!("{}: {e}", segment_path(&self.dir, seg.start).display()))?;
        seg.bytes += bytes.len() as u64;
        self.lanes.clear();
        self.after = After::default();
        self.answers = 0;
        self.beats = 0;
        self.times = None;
        Ok(())
    }

    /// The recorder's once-a-second beat at `wall_ms`: a beat frame when nothing was written since the last
    /// one, so a reader tells a silent fleet (the recorder still writing) from a stopped recorder; every
    /// [`BEATS_PER_BLOCK`] beats, the buffered frames as one block.
    pub fn beat(&mut self, wall_ms: u64) -> Result<(), String> {
        if self.segment.is_none() {
            return Ok(());
        }
        if !self.heard {
            let beat = Frame {
                t: wall_ms,
                n: 0,
                k: false,
                e: Event::Beat,
            };
            self.push(&beat);
        }
        self.heard = false;
        self.beats += 1;
        if self.beats >= BEATS_PER_BLOCK {
            self.flush()?;
        }
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
        let answer = self.answer.clone().map(|a| Frame { k: true, ..a });
        for n in 0..self.slots.len() {
            for frame in self.slots[n].keyframe(n, self.current[n].is_some()) {
                match (&frame.e, self.current[n].take()) {
                    (Event::Sample, Some(sample)) => self.push_sample(frame, &sample),
                    (_, kept) => {
                        self.current[n] = kept;
                        self.push(&frame);
                    }
                }
            }
        }
        if let Some(answer) = answer {
            self.answers += usize::from(self.push(&answer));
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

/// Writes one frame into `lanes` after the block's last frame `after`, whose times span `times`; false (and
/// nothing written) when it came out past the frame cap. Apart from the writer so a sample's changed fields,
/// which its `Held` keeps, are lent to it without copying.
fn push_frame(
    lanes: &mut Lanes,
    after: &mut After,
    times: &mut Option<(u64, u64)>,
    frame: &Frame,
    sample: Option<(Option<&NodeSample>, &NodeSample, &[u64])>,
) -> bool {
    let (mark, before) = (lanes.mark(), lanes.len());
    let written = frame::write(frame, *after, sample, lanes);
    if written.is_err() || lanes.len() - before > MAX_FRAME {
        lanes.undo(mark);
        return false;
    }
    *after = After {
        t: frame.t,
        n: frame.n,
    };
    let (first, last) = times.unwrap_or((frame.t, frame.t));
    *times = Some((first.min(frame.t), last.max(frame.t)));
    true
}

#[cfg(test)]
#[path = "bound_tests.rs"]
mod bound_tests;
