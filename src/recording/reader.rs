//! Reads a recording back as the messages the recorder received, in time order, from any time: the segment
//! holding that time is read from its keyframe, and the state as of then is handed out first.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::block::{Ahead, Block, BlockReader, MAX_BLOCK_RAW};
use super::frame::{Event, Frame, NodeSlots, MAX_ANSWERS_PER_BLOCK};
use super::header;
use super::layout::{segment_path, segments, MAX_SEGMENTS, MAX_SEGMENT_BYTES};
use super::packed::Node;
use super::trail::Trail;
use crate::inventory::Inventory;
use crate::transport::Msg;
use crate::workload::{Job, Scheduler, Workload};

/// A recording directory, opened.
pub struct Reader {
    dir: PathBuf,
    inventory: Inventory,
    /// Segment start times, oldest first.
    starts: Vec<u64>,
    span: Option<(u64, u64)>,
    /// The `Instant` that stands for the first frame's wall time; messages' `at` count from it.
    origin: (Instant, u64),
}

impl Reader {
    pub fn open(dir: &Path) -> Result<Reader, String> {
        let inventory = header::read(dir)?;
        let starts = segments(dir)?;
        if starts.len() > MAX_SEGMENTS {
            return Err(format!(
                "{}: more than {MAX_SEGMENTS} segments; not a recording this fleetop wrote",
                dir.display()
            ));
        }
        for &start in &starts {
            let path = segment_path(dir, start);
            let size = std::fs::metadata(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            if size > MAX_SEGMENT_BYTES + MAX_BLOCK_RAW as u64 {
                return Err(format!(
                    "{}: {size} bytes, past the {MAX_SEGMENT_BYTES} byte segment cap",
                    path.display()
                ));
            }
        }
        let mut reader = Reader {
            dir: dir.to_path_buf(),
            inventory,
            starts,
            span: None,
            origin: (Instant::now(), 0),
        };
        reader.span = reader.find_span()?;
        if let Some((first, _)) = reader.span {
            reader.origin.1 = first;
        }
        Ok(reader)
    }

    /// The inventory recorded with.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// First and last frame, ms since the epoch; `None` for a recording with no frame yet.
    pub fn span(&self) -> Option<(u64, u64)> {
        self.span
    }

    /// The `Instant` a message recorded at `ms` carries (the two clocks agree on differences).
    pub fn instant(&self, ms: u64) -> Instant {
        let (origin, origin_ms) = self.origin;
        if ms >= origin_ms {
            origin
                .checked_add(Duration::from_millis(ms - origin_ms))
                .unwrap_or(origin)
        } else {
            origin
                .checked_sub(Duration::from_millis(origin_ms - ms))
                .unwrap_or(origin)
        }
    }

    /// Messages from `from_ms` to `to_ms` (inclusive), in time order with their wall times: first the state as
    /// of `from_ms` (each node's latest hello, sample, failure and operations before it, at their own times),
    /// then every message. A damaged segment ends the iteration with an error naming file and offset.
    pub fn messages(
        &self,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = Result<(u64, Msg), String>> + '_ {
        Messages::open(self, from_ms, to_ms)
    }

    fn find_span(&self) -> Result<Option<(u64, u64)>, String> {
        let Some(&first) = self.starts.first() else {
            return Ok(None);
        };
        // The newest segment with a block says where the recording ends (a just-created one holds none).
        for &start in self.starts.iter().rev() {
            let path = segment_path(&self.dir, start);
            let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut blocks = BlockReader::new(file, path.display().to_string())?;
            let mut last = None;
            while let Some(head) = blocks.next_header()? {
                last = Some(head.last_t);
            }
            if let Some(last) = last {
                return Ok(Some((first, last.max(first))));
            }
        }
        Ok(None)
    }

    fn blocks(&self, start: u64) -> Result<BlockReader<BufReader<File>>, String> {
        let path = segment_path(&self.dir, start);
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        BlockReader::new(BufReader::new(file), path.display().to_string())
    }
}

/// What a recording hands out: a node's message, or the workload a scheduler answer left (what the TUI's
/// jobs column and pane show).
pub enum Recorded {
    Msg(Msg),
    Workload(Box<Workload>),
    /// The recorder was running at this time (a beat frame it wrote in a second with nothing else to write).
    Alive,
}

/// The iterator behind [`Reader::messages`]; [`Messages::next_recorded`] hands out the workloads too.
pub(crate) struct Messages<'a> {
    reader: &'a Reader,
    from: u64,
    to: u64,
    next_segment: usize,
    blocks: Option<Ahead<BufReader<File>>>,
    block: Option<Block>,
    out: VecDeque<(u64, Recorded)>,
    slots: Vec<NodeSlots>,
    nodes: Vec<Node>,
    /// Each node's jobs and the last scheduler answer's time, problems and schedulers, as recorded so far.
    jobs: Vec<Vec<Job>>,
    answer: Option<(u64, Vec<String>, Vec<Scheduler>)>,
    /// Answers read in the current block.
    answers: usize,
    /// Each node's utilisation and temperature before `from`, when a seek asked for them.
    trail: Option<Trail>,
    started: bool,
    done: bool,
}

impl<'a> Messages<'a> {
    /// The same as [`Reader::messages`], as a named type a player can keep.
    pub fn open(reader: &'a Reader, from: u64, to: u64) -> Self {
        let nodes = reader.inventory.nodes.len();
        let first = reader
            .starts
            .partition_point(|&s| s <= from)
            .saturating_sub(1);
        Messages {
            reader,
            from,
            to,
            next_segment: first,
            blocks: None,
            block: None,
            out: VecDeque::new(),
            slots: vec![NodeSlots::default(); nodes],
            nodes: (0..nodes).map(|_| Node::default()).collect(),
            jobs: vec![Vec::new(); nodes],
            answer: None,
            answers: 0,
            trail: None,
            started: false,
            done: from > to,
        }
    }

    /// Hands out, before the state as of `from`, each node's utilisation and temperature since `since` as one
    /// `NodeEvent::History` each: what a seek needs for the sparklines, without handing out every sample.
    pub fn with_trail(mut self, since: u64) -> Self {
        let since = since.min(self.from);
        // Read from the segment that holds `since`, so the trail is whole across a segment's start.
        self.next_segment = self
            .reader
            .starts
            .partition_point(|&s| s <= since)
            .saturating_sub(1);
        self.trail = Some(Trail::new(since, self.nodes.len()));
        self
    }

    /// The next frame of the recording, across segments; `None` at its end.
    fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some(mut block) = self.block.take() {
                if let Some(head) = block.next_head()? {
                    // The state handed out at `from` is the one before the first frame from then on.
                    if !self.started && !head.k && head.t >= self.from {
                        self.start().map_err(|e| format!("{}: {e}", block.place))?;
                    }
                    let f = block.body(head, &mut self.nodes)?;
                    self.block = Some(block);
                    return Ok(Some(f));
                }
            }
            if let Some(blocks) = self.blocks.as_mut() {
                if let Some(block) = blocks.next_block()? {
                    self.block = Some(block);
                    self.answers = 0;
                    continue;
                }
                self.blocks = None;
            }
            let Some(&start) = self.reader.starts.get(self.next_segment) else {
                return Ok(None);
            };
            self.next_segment += 1;
            self.blocks = Some(Ahead::new(self.reader.blocks(start)?));
        }
    }

    /// A heartbeat at `t`: handed out within the window (the state as of `from` first, as a frame would).
    fn heard(&mut self, t: u64) -> Result<(), String> {
        if t < self.from || t > self.to {
            return Ok(());
        }
        if !self.started {
            self.start()?;
        }
        self.out.push_back((t, Recorded::Alive));
        Ok(())
    }

    /// Hands out the state as of `from`: each node's kept events, in time order.
    fn start(&mut self) -> Result<(), String> {
        self.started = true;
        let mut frames: Vec<Frame> = (0..self.slots.len())
            .flat_map(|n| self.slots[n].keyframe(n, self.nodes[n].whole))
            .filter(|f| !matches!(f.e, Event::Jobs(_)))
            .collect();
        frames.sort_by_key(|f| f.t);
        if let Some(trail) = self.trail.take() {
            let t = frames.first().map_or(trail.since, |f| f.t.min(trail.since));
            let at = self.reader.instant(trail.since);
            for (node, gpus) in trail.into_history() {
                let event = crate::transport::NodeEvent::History(gpus);
                self.out
                    .push_back((t, Recorded::Msg(Msg { node, at, event })));
            }
        }
        for f in frames {
            self.emit(f)?;
        }
        if let Some((t, ..)) = self.answer {
            let at = self.out.partition_point(|(m, _)| *m <= t);
            self.out
                .insert(at, (t, Recorded::Workload(Box::new(self.workload()))));
        }
        Ok(())
    }

    /// The workload as of the last scheduler answer read.
    fn workload(&self) -> Workload {
        let mut workload = Workload::default();
        if let Some((_, problems, checked)) = &self.answer {
            workload.problems.clone_from(problems);
            workload.checked.clone_from(checked);
        }
        for (n, jobs) in self.jobs.iter().enumerate() {
            if !jobs.is_empty() {
                let jobs = jobs.iter().cloned().map(std::sync::Arc::new).collect();
                workload.by_node.insert(n, jobs);
            }
        }
        workload
    }

    fn emit(&mut self, f: Frame) -> Result<(), String> {
        let node = &self.nodes[f.n];
        let event = f.e.into_node_event(node.whole.then_some(&node.sample))?;
        let at = self.reader.instant(f.t);
        self.out.push_back((
            f.t,
            Recorded::Msg(Msg {
                node: f.n,
                at,
                event,
            }),
        ));
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        let Some(f) = self.next_frame()? else {
            if !self.started {
                self.start().map_err(|e| self.placed(&e))?;
            }
            self.done = true;
            return Ok(());
        };
        self.take(f).map_err(|e| self.placed(&e))
    }

    /// What a frame says is placed at its block: the file and offset an operator can look at.
    fn placed(&self, e: &str) -> String {
        match &self.block {
            Some(block) => format!("{}: {e}", block.place),
            None => e.to_string(),
        }
    }

    /// Handles a frame whose sample, if any, is already its node's.
    fn take(&mut self, f: Frame) -> Result<(), String> {
        match &f.e {
            Event::Beat => return self.heard(f.t),
            Event::Jobs(jobs) => self.jobs[f.n].clone_from(jobs),
            Event::Workload { problems, checked } => {
                self.answers += 1;
                if self.answers > MAX_ANSWERS_PER_BLOCK {
                    return Err(format!(
                        "more than {MAX_ANSWERS_PER_BLOCK} scheduler answers in one block"
                    ));
                }
                self.answer = Some((f.t, problems.clone(), checked.clone()));
            }
            _ => {}
        }
        if !self.started {
            // A keyframe restates a sample the trail has already noted.
            if let (Some(trail), Event::Sample, false) = (self.trail.as_mut(), &f.e, f.k) {
                trail.note(f.n, f.t, &self.nodes[f.n].sample);
            }
            self.slots[f.n].keep(f.t, &f.e);
            return Ok(());
        }
        // A later segment's keyframe restates what was already handed out.
        if f.k {
            return Ok(());
        }
        if f.t > self.to {
            self.done = true;
            return Ok(());
        }
        match f.e {
            Event::Jobs(_) => Ok(()),
            Event::Workload { .. } => {
                let workload = Recorded::Workload(Box::new(self.workload()));
                self.out.push_back((f.t, workload));
                Ok(())
            }
            _ => self.emit(f),
        }
    }

    /// The next message or workload, in recorded order.
    pub fn next_recorded(&mut self) -> Option<Result<(u64, Recorded), String>> {
        loop {
            if let Some(m) = self.out.pop_front() {
                return Some(Ok(m));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

impl Iterator for Messages<'_> {
    type Item = Result<(u64, Msg), String>;

    /// Messages only: a report or a snapshot has no use for the workloads.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_recorded()? {
                Ok((t, Recorded::Msg(m))) => return Some(Ok((t, m))),
                Ok((_, Recorded::Workload(_) | Recorded::Alive)) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
