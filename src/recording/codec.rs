//! The bytes of a block before compression: five lanes (frame heads, integers, floats, texts, and each GPU's
//! fixed record of its busiest numbers), so like bytes sit together for the block coder, and the primitives
//! written into them: LEB128 varints, zigzag deltas, floats at the decimal precision they carry, and
//! length-bounded texts. Every read checks what is left and every length against its cap: a damaged block is
//! an error, never a panic or an allocation past the block's size.

/// What the lanes hold: frame kinds, times, node numbers and field bitmaps; integer values; float values;
/// texts and JSON; each GPU's record of the numbers that change every second, side by side (a block-sorting
/// coder then sees one given the others: power given utilisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Head = 0,
    Int = 1,
    Float = 2,
    Text = 3,
    Record = 4,
}

pub(super) const LANES: usize = 5;
/// Largest frame: a sample of 64 GPUs with every field is well under it.
pub(super) const MAX_FRAME: usize = 1 << 20;

/// Scales a float is tried at, finest last; the index is written with the value (3: the raw bits follow).
const SCALES: [f64; 3] = [1.0, 10.0, 1000.0];
/// Scales a record's power is tried at: tenths of a watt (what the demo's arithmetic holds) or milliwatts
/// (what NVML reads); the index is written with the change.
const RECORD_SCALES: [f64; 2] = [10.0, 1000.0];
/// A record's codes before a change: the value is unchanged, gone, or (power) in the float lane.
const SAME: u64 = 0;
const NONE: u64 = 1;
const ESCAPED: u64 = 2;
/// A float scaled past this is not exact as an integer in an f64.
const EXACT: f64 = (1u64 << 52) as f64;

/// The lanes being written.
#[derive(Debug, Default)]
pub(super) struct Lanes {
    pub lane: [Vec<u8>; LANES],
}

impl Lanes {
    pub fn len(&self) -> usize {
        self.lane.iter().map(Vec::len).sum()
    }

    pub fn clear(&mut self) {
        self.lane.iter_mut().for_each(Vec::clear);
    }

    /// Where each lane ends now, to undo a frame that came out too big.
    pub fn mark(&self) -> [usize; LANES] {
        std::array::from_fn(|i| self.lane[i].len())
    }

    pub fn undo(&mut self, mark: [usize; LANES]) {
        for (lane, at) in self.lane.iter_mut().zip(mark) {
            lane.truncate(at);
        }
    }

    pub fn varint(&mut self, lane: Lane, mut v: u128) {
        let out = &mut self.lane[lane as usize];
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn uint(&mut self, lane: Lane, v: u64) {
        self.varint(lane, u128::from(v));
    }

    pub fn int(&mut self, lane: Lane, v: i64) {
        self.uint(lane, zigzag(v));
    }

    /// `value` as a change from `prev`: 0 for none, else one more than the zigzagged difference.
    pub fn delta(&mut self, value: Option<u64>, prev: u64) {
        match value {
            None => self.uint(Lane::Int, 0),
            Some(v) => self.varint(
                Lane::Int,
                u128::from(zigzag(v.wrapping_sub(prev) as i64)) + 1,
            ),
        }
    }

    /// A float as a change of its scaled value, plus the few units in the last place that the decimal misses;
    /// its raw bits where no scale holds it.
    pub fn float(&mut self, value: Option<f64>, prev: Option<f64>) {
        let Some(v) = value else {
            return self.uint(Lane::Float, 0);
        };
        for (s, scale) in SCALES.iter().enumerate() {
            if let Some((n, miss)) = decimal(v, *scale) {
                let before = prev.and_then(|p| scaled(p, *scale)).unwrap_or(0);
                let tag = zigzag(n - before) << 2 | s as u64;
                self.varint(Lane::Float, u128::from(tag) + 1);
                return self.int(Lane::Float, miss);
            }
        }
        self.varint(Lane::Float, 1 + 3);
        self.lane[Lane::Float as usize].extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// A GPU's record: its moving numbers as changes from `old`, in the record lane in [`Moving`]'s order.
    pub fn record(&mut self, new: &Moving, old: &Moving) {
        let (power, miss) = power_code(new.power, old.power);
        self.record_code(zigzag(miss));
        for (now, was) in new.ints.iter().zip(&old.ints) {
            let code = match now {
                _ if now == was => SAME,
                None => NONE,
                Some(v) => zigzag(v.wrapping_sub(was.unwrap_or(0)) as i64) + ESCAPED + 1,
            };
            self.record_code(code);
        }
        self.record_code(power);
        if power == ESCAPED {
            self.float(new.power, old.power);
        }
    }

    /// A varint with its highest seven bits first: the byte a block-sorting coder sorts a number by is the one
    /// that says most about it.
    fn record_code(&mut self, v: u64) {
        let out = &mut self.lane[Lane::Record as usize];
        let groups = (64 - v.leading_zeros()).div_ceil(7).max(1);
        for g in (1..groups).rev() {
            out.push((v >> (7 * g)) as u8 | 0x80);
        }
        out.push(v as u8 & 0x7f);
    }

    /// Bytes with their length first; the caller bounds them.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.uint(Lane::Text, bytes.len() as u64);
        self.lane[Lane::Text as usize].extend_from_slice(bytes);
    }
}

/// `v × scale` as an integer when it is one an f64 holds exactly.
fn scaled(v: f64, scale: f64) -> Option<i64> {
    let n = (v * scale).round();
    (n.is_finite() && n.abs() < EXACT).then_some(n as i64)
}

/// `v × scale` as an integer and the units in the last place `v` is off the decimal it stands for, when that is
/// at most one either way (the arithmetic that made `v` rounded it so).
fn decimal(v: f64, scale: f64) -> Option<(i64, i64)> {
    let n = scaled(v, scale)?;
    let back = n as f64 / scale;
    let miss = (v.to_bits() as i64).wrapping_sub(back.to_bits() as i64);
    ((-1..=1).contains(&miss) && back.is_sign_negative() == v.is_sign_negative())
        .then_some((n, miss))
}

/// The numbers of a GPU that move every second, as its record holds them: SM clock, memory used, memory
/// temperature, temperature, memory utilisation and utilisation (each its change, or none), then power. The
/// record opens with the units in the last place power misses its decimal by. A block-sorting coder codes a
/// byte given the bytes after it: this order, power last and the slowest numbers first, measured smallest of
/// the orders tried (docs/benchmarks.md).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Moving {
    pub ints: [Option<u64>; 6],
    pub power: Option<f64>,
}

/// Power's code in a record: unchanged, gone, in the float lane, or its change at the first of
/// [`RECORD_SCALES`] that holds it; and the units in the last place it misses by (0 but for that last).
fn power_code(value: Option<f64>, prev: Option<f64>) -> (u64, i64) {
    let Some(v) = value else {
        return (if prev.is_none() { SAME } else { NONE }, 0);
    };
    if prev.map(f64::to_bits) == Some(v.to_bits()) {
        return (SAME, 0);
    }
    for (s, scale) in RECORD_SCALES.iter().enumerate() {
        if let Some((n, miss)) = decimal(v, *scale) {
            let before = prev.and_then(|p| scaled(p, *scale)).unwrap_or(0);
            return (
                (zigzag(n.wrapping_sub(before)) << 1 | s as u64) + ESCAPED + 1,
                miss,
            );
        }
    }
    (ESCAPED, 0)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// The value `n / scale` stands for, `miss` units in the last place off it; refused where not a finite number.
fn off_the_decimal(n: i64, scale: f64, miss: i64) -> Result<f64, String> {
    let back = (n as f64 / scale).to_bits() as i64;
    let v = f64::from_bits(back.wrapping_add(miss) as u64);
    if !v.is_finite() {
        return Err(format!("Float lane: {v} is not a number a sample holds"));
    }
    Ok(v)
}

/// The lanes being read.
pub(super) struct Cursor<'a> {
    lane: [&'a [u8]; LANES],
}

impl<'a> Cursor<'a> {
    pub fn new(lane: [&'a [u8]; LANES]) -> Self {
        Cursor { lane }
    }

    /// How many bytes each lane has left.
    pub fn left(&self) -> [usize; LANES] {
        self.lane.map(<[u8]>::len)
    }

    fn byte(&mut self, lane: Lane) -> Result<u8, String> {
        let l = &mut self.lane[lane as usize];
        let (&b, rest) = l
            .split_first()
            .ok_or_else(|| format!("{lane:?} lane ends early"))?;
        *l = rest;
        Ok(b)
    }

    pub fn varint(&mut self, lane: Lane) -> Result<u128, String> {
        // Most values are one byte: a seek reads some ten million of them.
        let l = &mut self.lane[lane as usize];
        if let Some((&b, rest)) = l.split_first() {
            if b < 0x80 {
                *l = rest;
                return Ok(u128::from(b));
            }
        }
        let mut v = 0u128;
        for shift in (0..).step_by(7).take(19) {
            let b = self.byte(lane)?;
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{lane:?} lane: a number longer than 19 bytes"))
    }

    pub fn uint(&mut self, lane: Lane) -> Result<u64, String> {
        let v = self.varint(lane)?;
        u64::try_from(v).map_err(|_| format!("{lane:?} lane: {v} does not fit 64 bits"))
    }

    pub fn int(&mut self, lane: Lane) -> Result<i64, String> {
        self.uint(lane).map(unzigzag)
    }

    /// A count or length, at most `max`.
    pub fn count(&mut self, lane: Lane, max: usize, what: &str) -> Result<usize, String> {
        let n = self.uint(lane)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("{what}: {n}, more than the {max} allowed"))
    }

    /// The inverse of [`Lanes::delta`].
    pub fn delta(&mut self, prev: u64) -> Result<Option<u64>, String> {
        let v = self.varint(Lane::Int)?;
        if v == 0 {
            return Ok(None);
        }
        let d = u64::try_from(v - 1).map_err(|_| format!("Int lane: {v} does not fit 64 bits"))?;
        Ok(Some(prev.wrapping_add(unzigzag(d) as u64)))
    }

    /// The inverse of [`Lanes::float`]; a value that is not a finite number is refused.
    pub fn float(&mut self, prev: Option<f64>) -> Result<Option<f64>, String> {
        let tag = self.uint(Lane::Float)?;
        if tag == 0 {
            return Ok(None);
        }
        let (delta, s) = ((tag - 1) >> 2, ((tag - 1) & 3) as usize);
        let v = match SCALES.get(s) {
            None => {
                let mut raw = [0u8; 8];
                for b in &mut raw {
                    *b = self.byte(Lane::Float)?;
                }
                f64::from_bits(u64::from_le_bytes(raw))
            }
            Some(scale) => {
                let before = prev.and_then(|p| scaled(p, *scale)).unwrap_or(0);
                let n = before
                    .checked_add(unzigzag(delta))
                    .filter(|n| (n.unsigned_abs() as f64) < EXACT)
                    .ok_or("Float lane: a value past what an f64 holds exactly")?;
                let miss = self.int(Lane::Float)?;
                if !(-1..=1).contains(&miss) {
                    return Err(format!("Float lane: a correction of {miss} units"));
                }
                off_the_decimal(n, *scale, miss)?
            }
        };
        if !v.is_finite() {
            return Err(format!("Float lane: {v} is not a number a sample holds"));
        }
        Ok(Some(v))
    }

    /// The inverse of [`Lanes::record`]; a power that is not a finite number is refused.
    pub fn record(&mut self, old: &Moving) -> Result<Moving, String> {
        let miss = match self.record_code()? {
            m @ 0..=2 => unzigzag(m),
            m => return Err(format!("Record lane: a correction code of {m}")),
        };
        let mut new = Moving::default();
        for (now, was) in new.ints.iter_mut().zip(&old.ints) {
            *now = match self.record_code()? {
                SAME => *was,
                NONE => None,
                ESCAPED => return Err("Record lane: an integer in the float lane".into()),
                code => Some(
                    was.unwrap_or(0)
                        .wrapping_add(unzigzag(code - ESCAPED - 1) as u64),
                ),
            };
        }
        let code = self.record_code()?;
        if miss != 0 && code <= ESCAPED {
            return Err(format!(
                "Record lane: a correction of {miss} units for no power change"
            ));
        }
        new.power = match code {
            SAME => old.power,
            NONE => None,
            ESCAPED => Some(
                self.float(old.power)?
                    .ok_or("Float lane: no value where the record says one is")?,
            ),
            code => {
                let code = code - ESCAPED - 1;
                let scale = RECORD_SCALES[(code & 1) as usize];
                let before = old.power.and_then(|p| scaled(p, scale)).unwrap_or(0);
                let n = before
                    .checked_add(unzigzag(code >> 1))
                    .filter(|n| (n.unsigned_abs() as f64) < EXACT)
                    .ok_or("Record lane: a power past what an f64 holds exactly")?;
                Some(off_the_decimal(n, scale, miss)?)
            }
        };
        Ok(new)
    }

    /// A varint written by [`Lanes::record_code`].
    fn record_code(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        loop {
            let b = self.byte(Lane::Record)?;
            if v.leading_zeros() < 7 {
                return Err("Record lane: a number past 64 bits".into());
            }
            v = v << 7 | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
    }

    /// Bytes written by [`Lanes::bytes`], at most `max` of them.
    pub fn bytes(&mut self, max: usize, what: &str) -> Result<&'a [u8], String> {
        let n = self.count(Lane::Text, max, what)?;
        let l = &mut self.lane[Lane::Text as usize];
        if l.len() < n {
            return Err(format!("{what}: {n} bytes, past the end of the block"));
        }
        let (bytes, rest) = l.split_at(n);
        *l = rest;
        Ok(bytes)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
