//! A segment file on disk: a magic line, then blocks, each a fixed header (magic, compressed length, first and
//! last time it covers) and two bzip2 streams of the block's lanes (their five lengths and the first four lanes,
//! then the GPU records; see `codec.rs`). bzip2 sorts a block's bytes by what follows them, so a GPU's record is coded given the records
//! of the seconds around it; its CRC catches a flipped byte. A header or stream cut short at the end of the
//! file is a torn tail (a recorder killed mid-write) and ends the segment there.

use std::collections::VecDeque;
use std::io::Read;
use std::ops::Range;

use super::codec::{Cursor, Lanes, LANES};
use super::frame::{self, After, Frame, Head};
use super::packed::Node;

/// The first bytes of every segment: its last byte is the format (3: bzip2 blocks of GPU records; 2 was zlib
/// blocks of lanes alone, 1 JSON lines).
pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"FLTREC\x00\x03";
const BLOCK_MAGIC: &[u8; 4] = b"FLK3";
const HEADER: usize = 4 + 4 + 8 + 8;
/// The lane lengths at the start of a block's bytes.
const LENGTHS: usize = 4 * LANES;
/// Largest block, decompressed; the writer ends a block at a quarter of it.
pub(super) const MAX_BLOCK_RAW: usize = 16 << 20;
/// Largest block on disk.
const MAX_BLOCK_STORED: usize = 16 << 20;
/// Raw bytes at which the writer ends a block even without a flush.
pub(super) const BLOCK_TARGET: usize = MAX_BLOCK_RAW / 4;

/// Compresses frames' lanes into one block: two bzip2 streams, the other lanes (after their five lengths) and
/// then the GPU records, the first one's length before them. Level 9: 900 kB sorted at once, about ten seconds
/// of the demo fleet's records. Apart, bzip2 sorts them in a third of the CPU it takes joined (the frame heads
/// repeat, which sends a block-sort of both to its slow path) for 0.6 % more bytes (docs/benchmarks.md).
pub(super) fn encode(lanes: &Lanes, first_t: u64, last_t: u64) -> Result<Vec<u8>, String> {
    let lengths: Vec<u8> = lanes
        .lane
        .iter()
        .flat_map(|l| (l.len() as u32).to_le_bytes())
        .collect();
    let (records, others) = lanes.lane.split_last().ok_or("a block of no lanes")?;
    let others = squeeze(std::iter::once(&lengths).chain(others), REPEATING)?;
    let records = squeeze([records], DEFAULT_WORK)?;
    let body_len = 4 + others.len() + records.len();
    let len = u32::try_from(body_len)
        .ok()
        .filter(|&l| (l as usize) <= MAX_BLOCK_STORED)
        .ok_or("a block compressed past its size cap")?;
    let mut out = Vec::with_capacity(HEADER + body_len);
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&first_t.to_le_bytes());
    out.extend_from_slice(&last_t.to_le_bytes());
    out.extend_from_slice(&(others.len() as u32).to_le_bytes());
    out.extend_from_slice(&others);
    out.extend_from_slice(&records);
    Ok(out)
}

/// bzip2's work factor for the other lanes: their frame heads repeat, so its fast sort gives up on them and
/// starts over with its fallback sort; at 1 it gives up at once. The bytes are the same at any work factor (the
/// sort's result is), a third less CPU for this stream (docs/benchmarks.md); the records keep the default.
const REPEATING: u32 = 1;
/// libbzip2's default work factor.
const DEFAULT_WORK: u32 = 30;

/// One bzip2 stream of `parts`, joined, at level 9 and `work_factor`.
fn squeeze<'a>(
    parts: impl IntoIterator<Item = &'a Vec<u8>>,
    work_factor: u32,
) -> Result<Vec<u8>, String> {
    let fail = |e: bzip2::Error| format!("compress a block: {e}");
    let mut z = bzip2::Compress::new(bzip2::Compression::best(), work_factor);
    let mut out = Vec::new();
    for part in parts {
        let mut done = 0;
        while done < part.len() {
            out.reserve(part.len() - done + (64 << 10));
            let before = (z.total_in(), z.total_out());
            z.compress_vec(&part[done..], &mut out, bzip2::Action::Run)
                .map_err(fail)?;
            // Either input taken or output given (a full block sorted into `out`'s room): else it would spin.
            if (z.total_in(), z.total_out()) == before {
                return Err("compress a block: the compressor made no progress".into());
            }
            done += usize::try_from(z.total_in() - before.0).unwrap_or(0);
        }
    }
    loop {
        out.reserve(64 << 10);
        let before = z.total_out();
        if z.compress_vec(&[], &mut out, bzip2::Action::Finish)
            .map_err(fail)?
            == bzip2::Status::StreamEnd
        {
            return Ok(out);
        }
        if z.total_out() == before {
            return Err("compress a block: the compressor made no progress".into());
        }
    }
}

/// Appends the bzip2 stream `stream` decompressed to `raw`, refusing a block past its decompressed cap.
fn inflate(stream: &[u8], raw: &mut Vec<u8>) -> Result<(), String> {
    let room = (MAX_BLOCK_RAW + 1).saturating_sub(raw.len());
    bzip2::read::BzDecoder::new(stream)
        .take(room as u64)
        .read_to_end(raw)
        .map_err(|e| format!("block does not decompress: {e}"))?;
    if raw.len() > MAX_BLOCK_RAW {
        return Err(format!(
            "block larger than {MAX_BLOCK_RAW} bytes decompressed"
        ));
    }
    Ok(())
}

/// A block's body (from [`BlockReader::next_raw`]) decompressed, its frames still to read; `name` is how
/// errors call its file.
pub(super) fn decode(name: &str, header: BlockHeader, body: &[u8]) -> Result<Block, String> {
    let at = header.offset;
    let fail = |why: String| format!("{name}: offset {at}: {why}");
    let split = body
        .get(..4)
        .map(|b| b.iter().rev().fold(0usize, |a, b| a << 8 | usize::from(*b)))
        .filter(|&split| split <= body.len() - 4)
        .ok_or_else(|| fail(format!("a block of {} bytes with no streams", body.len())))?;
    let (others, records) = body[4..].split_at(split);
    let mut raw = Vec::new();
    inflate(others, &mut raw).map_err(&fail)?;
    inflate(records, &mut raw).map_err(&fail)?;
    let mut lanes: [Range<usize>; LANES] = Default::default();
    let mut end = LENGTHS;
    for (i, lane) in lanes.iter_mut().enumerate() {
        let len = raw
            .get(4 * i..4 * i + 4)
            .map(|b| b.iter().rev().fold(0usize, |a, b| a << 8 | usize::from(*b)))
            .unwrap_or(usize::MAX);
        *lane = end..end.saturating_add(len);
        end = lane.end;
    }
    if end != raw.len() {
        return Err(fail(format!(
            "block lanes of {end} bytes in {} decompressed",
            raw.len()
        )));
    }
    Ok(Block {
        place: format!("{name}: offset {at}"),
        header,
        raw,
        lanes,
        after: After::default(),
        frames: 0,
    })
}

/// A block's header as read: where it starts, its times and where its body lies in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockHeader {
    pub offset: u64,
    pub first_t: u64,
    pub last_t: u64,
    pub len: usize,
}

/// Reads the blocks of one segment file in order, checking each; `name` is how errors call the file.
pub(super) struct BlockReader<R> {
    input: R,
    name: String,
    offset: u64,
    /// The file's tail was cut short (a recorder killed mid-write): reading ended there.
    pub torn: bool,
}

impl<R: Read> BlockReader<R> {
    /// Checks the segment's magic.
    pub fn new(mut input: R, name: String) -> Result<Self, String> {
        let mut magic = [0u8; 8];
        let got = read_full(&mut input, &mut magic).map_err(|e| format!("{name}: {e}"))?;
        if got < magic.len() {
            // A segment the recorder had just created when it was killed holds nothing yet.
            return Ok(BlockReader {
                input,
                name,
                offset: got as u64,
                torn: true,
            });
        }
        if &magic != SEGMENT_MAGIC {
            return Err(format!(
                "{name}: offset 0: not a fleetop recording segment (bad magic)"
            ));
        }
        Ok(BlockReader {
            input,
            name,
            offset: magic.len() as u64,
            torn: false,
        })
    }

    /// The next block's header and its still compressed body; `None` at the end (or a torn tail).
    pub(crate) fn next_raw(&mut self) -> Result<Option<(BlockHeader, Vec<u8>)>, String> {
        if self.torn {
            return Ok(None);
        }
        let at = self.offset;
        let Some(header) = self.header(at)? else {
            return Ok(None);
        };
        let len = header.len;
        let mut body = vec![0u8; len];
        let got =
            read_full(&mut self.input, &mut body).map_err(|e| self.fail(at, &e.to_string()))?;
        if got < len {
            self.torn = true;
            return Ok(None);
        }
        self.offset += (HEADER + len) as u64;
        Ok(Some((header, body)))
    }

    /// Reads and checks the header at `at`; `None` at the end or a torn tail.
    fn header(&mut self, at: u64) -> Result<Option<BlockHeader>, String> {
        let mut head = [0u8; HEADER];
        let got =
            read_full(&mut self.input, &mut head).map_err(|e| self.fail(at, &e.to_string()))?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER {
            self.torn = true;
            return Ok(None);
        }
        if &head[..4] != BLOCK_MAGIC {
            return Err(self.fail(at, "not a block header (bad magic)"));
        }
        let word = |r: std::ops::Range<usize>| {
            head[r]
                .iter()
                .rev()
                .fold(0u64, |a, b| a << 8 | u64::from(*b))
        };
        let len = word(4..8) as usize;
        let (first_t, last_t) = (word(8..16), word(16..24));
        if len > MAX_BLOCK_STORED {
            return Err(self.fail(
                at,
                &format!("block of {len} bytes, past the {MAX_BLOCK_STORED} byte cap"),
            ));
        }
        if last_t > super::time::LAST_MS {
            return Err(self.fail(at, &format!("block time {last_t} ms is past year 9999")));
        }
        if first_t > last_t {
            return Err(self.fail(
                at,
                &format!("block times out of order ({first_t} > {last_t})"),
            ));
        }
        Ok(Some(BlockHeader {
            offset: at,
            first_t,
            last_t,
            len,
        }))
    }

    /// The next block's header, its body skipped unread (for finding where a recording ends).
    pub(crate) fn next_header(&mut self) -> Result<Option<BlockHeader>, String>
    where
        R: std::io::Seek,
    {
        if self.torn {
            return Ok(None);
        }
        let at = self.offset;
        let Some(header) = self.header(at)? else {
            return Ok(None);
        };
        let end = self
            .input
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| self.fail(at, &e.to_string()))?;
        let next = at + (HEADER + header.len) as u64;
        if next > end {
            self.torn = true;
            return Ok(None);
        }
        self.input
            .seek(std::io::SeekFrom::Start(next))
            .map_err(|e| self.fail(at, &e.to_string()))?;
        self.offset = next;
        Ok(Some(header))
    }

    /// The next block, decompressed, its frames still to read (a reader decompresses ahead, [`Ahead`]).
    #[cfg(test)]
    pub(crate) fn next_block(&mut self) -> Result<Option<Block>, String> {
        let Some((header, body)) = self.next_raw()? else {
            return Ok(None);
        };
        decode(&self.name, header, &body).map(Some)
    }

    fn fail(&self, offset: u64, why: &str) -> String {
        format!("{}: offset {offset}: {why}", self.name)
    }
}

/// A segment's blocks, the next ones decompressed on threads of their own while the reader reads one's frames:
/// bzip2's decoding is more than half of a seek's CPU, and a jump host has cores to spare.
pub(super) struct Ahead<R> {
    blocks: BlockReader<R>,
    decoding: VecDeque<std::thread::JoinHandle<Result<Block, String>>>,
}

/// Blocks decompressed at once ahead of the one being read (each at most 16 MiB decompressed).
const AHEAD: usize = 2;

impl<R: Read> Ahead<R> {
    pub fn new(blocks: BlockReader<R>) -> Self {
        Ahead {
            blocks,
            decoding: VecDeque::with_capacity(AHEAD),
        }
    }

    /// The next block, decompressed; `None` at the segment's end (or a torn tail).
    pub fn next_block(&mut self) -> Result<Option<Block>, String> {
        while self.decoding.len() < AHEAD {
            let Some((header, body)) = self.blocks.next_raw()? else {
                break;
            };
            let name = self.blocks.name.clone();
            let thread = std::thread::Builder::new()
                .spawn(move || decode(&name, header, &body))
                .map_err(|e| format!("{}: start a thread to read it: {e}", self.blocks.name))?;
            self.decoding.push_back(thread);
        }
        match self.decoding.pop_front() {
            None => Ok(None),
            Some(thread) => thread
                .join()
                .map_err(|_| format!("{}: a block's decoding failed", self.blocks.name))?
                .map(Some),
        }
    }
}

/// Reads until `buf` is full or the input ends; how many bytes it got.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A block decompressed: its frames are read one at a time, each sample into its node as it comes, so a
/// frame's sample is the node's as of that frame.
pub(super) struct Block {
    /// The file and offset, for errors about its frames.
    pub place: String,
    header: BlockHeader,
    raw: Vec<u8>,
    /// What is left of each lane.
    lanes: [Range<usize>; LANES],
    /// The frame before, which the next one's time and node are written as changes from.
    after: After,
    frames: usize,
}

impl Block {
    /// The next frame's head; `None` at the block's end. Its body must be read next ([`Block::body`]).
    pub fn next_head(&mut self) -> Result<Option<Head>, String> {
        if self.lanes[0].is_empty() {
            return Ok(None);
        }
        self.frames += 1;
        let head = self.read(frame::read_head)?;
        if head.t < self.header.first_t || head.t > self.header.last_t {
            return Err(format!(
                "{}: frame {} at {} ms, outside its block's times",
                self.place, self.frames, head.t
            ));
        }
        self.after = After {
            t: head.t,
            n: head.n,
        };
        Ok(Some(head))
    }

    /// The frame `head` begins, its sample (if it carries one) read into `nodes`.
    pub fn body(&mut self, head: Head, nodes: &mut [Node]) -> Result<Frame, String> {
        self.read(|c, _| frame::read_body(c, head, nodes))
    }

    fn read<T>(
        &mut self,
        f: impl FnOnce(&mut Cursor, After) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut c = Cursor::new(self.lanes.clone().map(|r| &self.raw[r]));
        let read = f(&mut c, self.after)
            .map_err(|e| format!("{}: frame {}: {e}", self.place, self.frames))?;
        for (range, left) in self.lanes.iter_mut().zip(c.left()) {
            range.start = range.end - left;
        }
        Ok(read)
    }
}
