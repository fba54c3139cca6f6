//! Inventory errors that point at the file, line and column of the bad value.

use std::fmt;
use std::ops::Range;

/// One problem found in an inventory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for InventoryError {}

/// Every problem found in one inventory, so a single `fleetop check` lists them all.
#[derive(Debug, Clone)]
pub struct InventoryErrors(pub Vec<InventoryError>);

impl fmt::Display for InventoryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InventoryErrors {}

/// Turns byte offsets of one file's text into line/column positions.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    /// An error at byte `offset` (1-based line and column, columns counted in characters).
    /// Where `key = …` is first set inside `[section]` (or anywhere, when the section is not found), for
    /// errors about values the parser keeps without a position.
    pub fn key(&self, section: &str, key: &str) -> usize {
        self.key_after(0, section, key)
    }

    /// As [`Locator::key`], looking only at or after byte `start` (one entry of an array of tables).
    pub(crate) fn key_after(&self, start: usize, section: &str, key: &str) -> usize {
        let header = format!("[{section}]");
        let start = start.min(self.text.len());
        let from = self
            .text
            .get(start..)
            .and_then(|rest| rest.find(&header))
            .map_or(start, |i| start + i);
        let mut offset = from;
        for line in self.text[from..].split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
                return offset + (line.len() - t.len());
            }
            offset += line.len();
        }
        from
    }

    pub fn at(&self, offset: usize, message: impl Into<String>) -> InventoryError {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        InventoryError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error inside a quoted string value whose span (quotes included) is `span`.
    pub(crate) fn in_string(
        &self,
        span: &Range<usize>,
        inner_offset: usize,
        message: impl Into<String>,
    ) -> InventoryError {
        self.at(span.start + 1 + inner_offset, message)
    }

    /// Converts a TOML syntax or schema error.
    pub(crate) fn toml_error(&self, err: &toml::de::Error) -> InventoryError {
        let message = err.message().trim().to_string();
        match err.span() {
            Some(span) => {
                let value = self.text.get(span.clone()).unwrap_or("").trim();
                let shown = if value.is_empty() || value.len() > 60 || message.contains(value) {
                    message
                } else {
                    format!("{message} (at `{value}`)")
                };
                self.at(span.start, shown)
            }
            None => InventoryError {
                file: self.file.to_string(),
                line: 0,
                column: 0,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let loc = Locator {
            file: "f.toml",
            text: "a = 1\nbb = \"x\"\n",
        };
        let e = loc.at(11, "bad");
        assert_eq!((e.line, e.column), (2, 6));
        assert_eq!(e.to_string(), "f.toml:2:6: bad");
    }
}
