//! Nodeset expressions in ClusterShell syntax: `c[001-384]n[1-3]`, `gpu[01-09,12]`, `node[0-6/2]`, `a,b`.
//! Every count and size is worked out with checked arithmetic before a single name is built.

use thiserror::Error;

/// Largest number of hosts one expression may expand to; a typo like `n[1-10000000]` must not eat memory.
pub const MAX_EXPANSION: usize = 100_000;

/// Longest host name: 253 bytes in text form, and 63 bytes between dots (RFC 1035 §2.3.4, RFC 1123 §2.1).
/// A name past them is no host, and checking before expanding keeps `"x"*20000 + "[1-50000]"` from
/// turning a 20 KB file into gigabytes.
pub const MAX_NAME_BYTES: usize = 253;
/// Longest label (the text between two dots) of a host name.
pub const MAX_LABEL_BYTES: usize = 63;
/// Most bytes of names one expression (or one inventory) may expand to: 100,000 names of up to 167 bytes.
pub const MAX_EXPANSION_BYTES: u64 = 16 << 20;

/// A nodeset that could not be expanded; `offset` is the byte position inside the expression.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct NodesetError {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, NodesetError> {
    Err(NodesetError {
        offset,
        message: message.into(),
    })
}

fn too_many<T>(offset: usize, what: &str) -> Result<T, NodesetError> {
    fail(
        offset,
        format!("{what} expands past {MAX_EXPANSION} hosts (limit guards against typos)"),
    )
}

/// Expands a nodeset expression into host names, in the order written. The whole expression is checked
/// (counts, name lengths, total bytes) before any name is built.
pub fn expand(expr: &str) -> Result<Vec<String>, NodesetError> {
    if expr.trim().is_empty() {
        return fail(0, "empty nodeset");
    }
    let mut terms = Vec::new();
    let mut count = 0u64;
    let mut bytes = 0u64;
    for (start, term) in split_top_level(expr)? {
        let trimmed = term.trim();
        let lead = term.len() - term.trim_start().len();
        if trimmed.is_empty() {
            return fail(start, "empty element in nodeset (stray comma?)");
        }
        let parsed = Term::parse(trimmed, start + lead)?;
        count = match count.checked_add(parsed.count) {
            Some(c) if c <= MAX_EXPANSION as u64 => c,
            _ => return too_many(start, "nodeset"),
        };
        bytes = match parsed.bytes().and_then(|b| bytes.checked_add(b)) {
            Some(b) if b <= MAX_EXPANSION_BYTES => b,
            _ => {
                return fail(
                    start,
                    format!("nodeset expands past {MAX_EXPANSION_BYTES} bytes of host names"),
                )
            }
        };
        terms.push(parsed);
    }
    // `count` is at most MAX_EXPANSION here.
    let mut hosts = Vec::with_capacity(count as usize);
    for term in &terms {
        term.build(&mut hosts);
    }
    Ok(hosts)
}

/// Splits on commas that are outside brackets, keeping each piece's byte offset.
fn split_top_level(expr: &str) -> Result<Vec<(usize, &str)>, NodesetError> {
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '[' if depth > 0 => return fail(i, "nested '[' in nodeset"),
            '[' => depth = 1,
            ']' if depth == 0 => return fail(i, "']' without matching '['"),
            ']' => depth = 0,
            ',' if depth == 0 => {
                pieces.push((start, &expr[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return fail(expr.len(), "'[' without matching ']'");
    }
    pieces.push((start, &expr[start..]));
    Ok(pieces)
}

/// One piece inside brackets: the numbers `low`, `low + step`, … up to `high`, at least `width` digits wide.
#[derive(Debug, Clone, Copy)]
struct Run {
    low: u64,
    high: u64,
    step: u64,
    width: usize,
}

impl Run {
    /// How many numbers the run holds; `None` past u64 (`0-18446744073709551615` holds 2^64 of them).
    fn count(&self) -> Option<u64> {
        ((self.high - self.low) / self.step).checked_add(1)
    }

    /// The last number reached, at most `high`.
    fn last(&self) -> u64 {
        self.high - (self.high - self.low) % self.step
    }

    /// Bytes of the widest number printed.
    fn widest(&self) -> usize {
        self.width.max(self.last().to_string().len())
    }

    /// The numbers, in order; only called once the count is known to be small. `low + i * step` never
    /// passes `last`, so it cannot wrap.
    fn numbers(self) -> impl Iterator<Item = u64> {
        let count = self.count().unwrap_or(0);
        (0..count).map(move |i| self.low + i * self.step)
    }
}

/// The runs inside a pair of brackets, and how many numbers they hold in all (at most [`MAX_EXPANSION`]).
struct Runs {
    runs: Vec<Run>,
    count: u64,
}

/// One dimension of a term: a literal piece of text, or a bracketed set of numbers.
enum Part<'a> {
    Text(&'a str),
    Numbers(Runs),
}

/// One comma-separated element of an expression, parsed and measured but not yet expanded.
struct Term<'a> {
    parts: Vec<Part<'a>>,
    /// Names it expands to, at most [`MAX_EXPANSION`].
    count: u64,
    /// Bytes of its longest name, at most [`MAX_NAME_BYTES`].
    longest: usize,
}

impl<'a> Term<'a> {
    fn parse(term: &'a str, base: usize) -> Result<Self, NodesetError> {
        let mut parts = Vec::new();
        let mut rest = term;
        let mut pos = base;
        while !rest.is_empty() {
            match rest.find('[') {
                None => {
                    parts.push(Part::Text(rest));
                    rest = "";
                }
                Some(open) => {
                    if open > 0 {
                        parts.push(Part::Text(&rest[..open]));
                    }
                    let close = rest[open..]
                        .find(']')
                        .map(|c| c + open)
                        .ok_or(NodesetError {
                            offset: pos + open,
                            message: "'[' without matching ']'".into(),
                        })?;
                    let body = &rest[open + 1..close];
                    parts.push(Part::Numbers(parse_runs(body, pos + open + 1, |_| Ok(()))?));
                    pos += close + 1;
                    rest = &rest[close + 1..];
                }
            }
        }
        for part in &parts {
            if let Part::Text(text) = part {
                // Host names only: a name that is also an option (`--selector=…`) or carries terminal
                // controls must never reach a backend's command line or an operator's screen.
                if let Some(bad) = text.chars().find(|c| !is_host_char(*c)) {
                    return fail(
                        base,
                        format!(
                            "unexpected {bad:?} in host name (letters, digits, '-', '_', '.' only)"
                        ),
                    );
                }
            }
        }
        if matches!(parts.first(), Some(Part::Text(t)) if t.starts_with('-')) {
            return fail(base, "a host name may not start with '-'");
        }
        let count = parts.iter().try_fold(1u64, |acc, part| match part {
            Part::Text(_) => Some(acc),
            Part::Numbers(runs) => acc.checked_mul(runs.count),
        });
        let Some(count) = count.filter(|c| *c <= MAX_EXPANSION as u64) else {
            return too_many(base, "nodeset");
        };
        let longest = longest_name(&parts, base)?;
        Ok(Term {
            parts,
            count,
            longest,
        })
    }

    /// An upper bound on the bytes of all its names.
    fn bytes(&self) -> Option<u64> {
        self.count.checked_mul(self.longest as u64)
    }

    /// Appends its names to `hosts`, every combination in the order written.
    fn build(&self, hosts: &mut Vec<String>) {
        let mut names = vec![String::new()];
        for part in &self.parts {
            names = match part {
                Part::Text(text) => names.into_iter().map(|h| h + text).collect(),
                Part::Numbers(Runs { runs, .. }) => names
                    .iter()
                    .flat_map(|h| {
                        runs.iter().flat_map(move |run| {
                            let width = run.width;
                            run.numbers().map(move |n| format!("{h}{n:0width$}"))
                        })
                    })
                    .collect(),
            };
        }
        hosts.extend(names);
    }
}

/// The bytes of a term's longest name, refused past [`MAX_NAME_BYTES`] or with a label past
/// [`MAX_LABEL_BYTES`]. Numbers hold no dots, so the widest number of each bracket makes the longest name
/// and the longest labels at once.
fn longest_name(parts: &[Part], base: usize) -> Result<usize, NodesetError> {
    let mut total = 0usize;
    let mut label = 0usize;
    let mut longest_label = 0usize;
    for part in parts {
        match part {
            Part::Text(text) => {
                total = total.saturating_add(text.len());
                let mut pieces = text.split('.');
                label = label.saturating_add(pieces.next().map_or(0, str::len));
                for piece in pieces {
                    longest_label = longest_label.max(label);
                    label = piece.len();
                }
            }
            Part::Numbers(Runs { runs, .. }) => {
                let widest = runs.iter().map(Run::widest).max().unwrap_or(0);
                total = total.saturating_add(widest);
                label = label.saturating_add(widest);
            }
        }
    }
    longest_label = longest_label.max(label);
    if total > MAX_NAME_BYTES {
        return fail(
            base,
            format!("host names up to {total} bytes long: more than {MAX_NAME_BYTES}, the longest a host name may be"),
        );
    }
    if longest_label > MAX_LABEL_BYTES {
        return fail(
            base,
            format!("a label (text between dots) of {longest_label} bytes: more than {MAX_LABEL_BYTES}, the longest a host name's label may be"),
        );
    }
    Ok(total)
}

/// Parses the inside of brackets: `001-009,12,20-30/5`. Zero padding follows the lower bound's width.
/// `allowed` vets each run (its message is the error) before the runs are counted.
fn parse_runs(
    body: &str,
    base: usize,
    allowed: impl Fn(&Run) -> Result<(), String>,
) -> Result<Runs, NodesetError> {
    if body.trim().is_empty() {
        return fail(base, "empty range '[]'");
    }
    let mut runs = Vec::new();
    let mut count = 0u64;
    let mut offset = base;
    for piece in body.split(',') {
        let item = piece.trim();
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, parse_number(s, offset)?),
            None => (item, 1),
        };
        if step == 0 {
            return fail(offset, format!("step 0 in {item:?}"));
        }
        let (low_text, high_text) = range.split_once('-').unwrap_or((range, range));
        let low = parse_number(low_text, offset)?;
        let high = parse_number(high_text, offset)?;
        if high < low {
            return fail(
                offset,
                format!("reversed range {item:?} (high end below low end)"),
            );
        }
        let low_text = low_text.trim();
        let width = if low_text.len() > 1 && low_text.starts_with('0') {
            low_text.len()
        } else {
            0
        };
        let run = Run {
            low,
            high,
            step,
            width,
        };
        if let Err(why) = allowed(&run) {
            return fail(offset, why);
        }
        count = match run.count().and_then(|c| count.checked_add(c)) {
            Some(c) if c <= MAX_EXPANSION as u64 => c,
            _ => return too_many(offset, &format!("range {:?}", shown(item))),
        };
        runs.push(run);
        offset += piece.len() + 1;
    }
    Ok(Runs { runs, count })
}

/// A piece of an expression quoted in a message: cut, as the expression may be long.
fn shown(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn parse_number(text: &str, offset: usize) -> Result<u64, NodesetError> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return fail(offset, format!("{:?} is not a number", shown(t)));
    }
    t.parse::<u64>()
        .or_else(|_| fail(offset, format!("{:?} is too large", shown(t))))
}

/// Characters a host name may hold (RFC 1123 plus `_`, which some sites use).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Most GPU indices a list may hold; no node has more GPUs than a sample may carry.
pub(crate) const MAX_GPU_INDEX: u32 = 63;

/// Expands a GPU index range such as `0-3` or `0,2,4-7` (no brackets), sorted, each index once. Every
/// run is checked against [`MAX_GPU_INDEX`] before it is expanded.
pub fn expand_indices(expr: &str) -> Result<Vec<u32>, NodesetError> {
    let Runs { runs, .. } = parse_runs(expr, 0, |run| {
        if run.last() > u64::from(MAX_GPU_INDEX) {
            Err(format!(
                "{} is not a GPU index (0-{MAX_GPU_INDEX})",
                run.last()
            ))
        } else {
            Ok(())
        }
    })?;
    let mut indices = Vec::new();
    for run in runs {
        indices.extend(run.numbers().filter_map(|n| u32::try_from(n).ok()));
    }
    indices.sort_unstable();
    indices.dedup();
    Ok(indices)
}

#[cfg(test)]
mod tests;
