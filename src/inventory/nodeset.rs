//! Nodeset expressions in ClusterShell syntax: `c[001-384]n[1-3]`, `gpu[01-09,12]`, `node[0-6/2]`, `a,b`.

use thiserror::Error;

/// Largest number of hosts one expression may expand to; a typo like `n[1-10000000]` must not eat memory.
pub const MAX_EXPANSION: usize = 100_000;

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

/// Expands a nodeset expression into host names, in the order written.
pub fn expand(expr: &str) -> Result<Vec<String>, NodesetError> {
    if expr.trim().is_empty() {
        return fail(0, "empty nodeset");
    }
    let mut hosts = Vec::new();
    for (start, term) in split_top_level(expr)? {
        let trimmed = term.trim();
        let lead = term.len() - term.trim_start().len();
        if trimmed.is_empty() {
            return fail(start, "empty element in nodeset (stray comma?)");
        }
        let expanded = expand_term(trimmed, start + lead)?;
        if hosts.len() + expanded.len() > MAX_EXPANSION {
            return fail(
                start,
                format!("nodeset expands past {MAX_EXPANSION} hosts (limit guards against typos)"),
            );
        }
        hosts.extend(expanded);
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

/// One dimension of a term: a literal piece of text, or a bracketed set of numbers.
enum Part<'a> {
    Text(&'a str),
    Numbers(Vec<String>),
}

fn expand_term(term: &str, base: usize) -> Result<Vec<String>, NodesetError> {
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
                parts.push(Part::Numbers(expand_ranges(body, pos + open + 1)?));
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
    let total = parts.iter().try_fold(1usize, |acc, part| match part {
        Part::Text(_) => Some(acc),
        Part::Numbers(n) => acc.checked_mul(n.len()),
    });
    if total.is_none_or(|t| t > MAX_EXPANSION) {
        return fail(
            base,
            format!("nodeset expands past {MAX_EXPANSION} hosts (limit guards against typos)"),
        );
    }
    let mut hosts = vec![String::new()];
    for part in &parts {
        hosts = match part {
            Part::Text(text) => hosts.into_iter().map(|h| h + text).collect(),
            Part::Numbers(numbers) => hosts
                .iter()
                .flat_map(|h| numbers.iter().map(move |n| format!("{h}{n}")))
                .collect(),
        };
    }
    Ok(hosts)
}

/// Expands the inside of brackets: `001-009,12,20-30/5`. Zero padding follows the lower bound's width.
fn expand_ranges(body: &str, base: usize) -> Result<Vec<String>, NodesetError> {
    if body.trim().is_empty() {
        return fail(base, "empty range '[]'");
    }
    let mut out = Vec::new();
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
        let width = if low_text.len() > 1 && low_text.starts_with('0') {
            low_text.len()
        } else {
            0
        };
        let count = (high - low) / step + 1;
        if out.len() as u64 + count > MAX_EXPANSION as u64 {
            return fail(
                offset,
                format!("range {item:?} expands past {MAX_EXPANSION} hosts (limit guards against typos)"),
            );
        }
        let mut n = low;
        while n <= high {
            out.push(format!("{n:0width$}"));
            // At u64::MAX there is no next number: stop instead of wrapping around to 0.
            let Some(next) = n.checked_add(step) else {
                break;
            };
            n = next;
        }
        offset += piece.len() + 1;
    }
    Ok(out)
}

fn parse_number(text: &str, offset: usize) -> Result<u64, NodesetError> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return fail(offset, format!("{t:?} is not a number"));
    }
    t.parse::<u64>()
        .or_else(|_| fail(offset, format!("{t:?} is too large")))
}

/// Characters a host name may hold (RFC 1123 plus `_`, which some sites use).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Most GPU indices a list may hold; no node has more GPUs than a sample may carry.
pub(crate) const MAX_GPU_INDEX: u32 = 63;

/// Expands a GPU index range such as `0-3` or `0,2,4-7` (no brackets), sorted, each index once.
pub fn expand_indices(expr: &str) -> Result<Vec<u32>, NodesetError> {
    let numbers = expand_ranges(expr, 0)?;
    let mut indices = numbers
        .iter()
        .map(|n| match n.parse::<u32>() {
            Ok(i) if i <= MAX_GPU_INDEX => Ok(i),
            _ => fail(0, format!("{n:?} is not a GPU index (0-{MAX_GPU_INDEX})")),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    indices.sort_unstable();
    indices.dedup();
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_padding_and_multiplies_dimensions() {
        assert_eq!(
            expand("c[001-002]n[1-2]").unwrap(),
            ["c001n1", "c001n2", "c002n1", "c002n2"]
        );
        assert_eq!(
            expand("gpu[01-03,12]").unwrap(),
            ["gpu01", "gpu02", "gpu03", "gpu12"]
        );
        assert_eq!(
            expand("node[0-6/2]").unwrap(),
            ["node0", "node2", "node4", "node6"]
        );
        assert_eq!(expand("a, b[1-2]").unwrap(), ["a", "b1", "b2"]);
        assert_eq!(expand("c[001-384]n[1-3]").unwrap().len(), 1152);
    }

    #[test]
    fn hostile_expressions_are_refused_not_expanded() {
        // u64::MAX has no successor: one host, no wrap-around, no endless allocation.
        assert_eq!(
            expand("n[18446744073709551615]").unwrap(),
            ["n18446744073709551615"]
        );
        assert!(expand("n[18446744073709551614-18446744073709551615/7]").is_ok());
        assert!(expand("--selector=nvidia.com/gpu.present")
            .unwrap_err()
            .message
            .contains("unexpected"));
        assert!(expand("-n1")
            .unwrap_err()
            .message
            .contains("may not start with '-'"));
        assert!(expand("n\u{1b}[2J").is_err());
        assert_eq!(expand_indices("3,0-3,3").unwrap(), [0, 1, 2, 3]);
        assert!(expand_indices("64").is_err());
    }

    #[test]
    fn rejects_bad_expressions_with_position() {
        let e = expand("c001n[5-1]").unwrap_err();
        assert!(e.message.contains("reversed range"), "{e}");
        assert_eq!(e.offset, 6, "points at the range inside the brackets");
        assert!(expand("n[]").unwrap_err().message.contains("empty range"));
        assert!(expand("n[1-2")
            .unwrap_err()
            .message
            .contains("without matching"));
        assert!(expand("n[a-b]")
            .unwrap_err()
            .message
            .contains("not a number"));
        assert!(expand("a,,b")
            .unwrap_err()
            .message
            .contains("empty element"));
        assert!(expand("").is_err());
        let big = expand("x[1-1000]y[1-1000]").unwrap_err();
        assert!(big.message.contains("100000"), "{big}");
        assert!(expand("n[1-99999999999]")
            .unwrap_err()
            .message
            .contains("100000"));
    }

    #[test]
    fn gpu_indices() {
        assert_eq!(expand_indices("0-3").unwrap(), [0, 1, 2, 3]);
        assert_eq!(expand_indices("0,4-5").unwrap(), [0, 4, 5]);
        assert!(expand_indices("3-1").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_range_expands_to_its_count(low in 0u64..500, len in 0u64..300, pad in 1usize..5) {
            let expr = format!("n[{low:0pad$}-{:0pad$}]", low + len);
            let hosts = expand(&expr).unwrap();
            proptest::prop_assert_eq!(hosts.len() as u64, len + 1);
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = expand(&s);
        }
    }
}
