//! An InfiniBand port's logical or physical state as sysfs writes it (`4: ACTIVE`, `5: LinkUp`), its number read
//! once where the text is decoded or made inert rather than in every rule that asks whether a port is up.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state's text, kept to be shown (escaped, as every sample's text is), and the number before its colon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortState {
    text: String,
    number: Option<u8>,
}

impl PortState {
    /// The number sysfs puts before the colon (`4` in `4: ACTIVE`), or `None` where the text has none.
    pub fn number(&self) -> Option<u8> {
        self.number
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Lets `clean` rewrite the text (escape and bound it), then reads its number again from what is kept.
    pub(crate) fn rewrite(&mut self, clean: impl FnOnce(&mut String)) {
        clean(&mut self.text);
        self.number = number_of(&self.text);
    }
}

/// `4: ACTIVE` → 4. Only the plain decimal a kernel writes counts (`04` or `+4` is no state number), as the
/// text comparison it replaces did.
fn number_of(text: &str) -> Option<u8> {
    let (number, _) = text.split_once(':')?;
    let number = number.trim();
    let canonical =
        number.bytes().all(|b| b.is_ascii_digit()) && (number == "0" || !number.starts_with('0'));
    canonical.then(|| number.parse().ok()).flatten()
}

impl From<String> for PortState {
    fn from(text: String) -> Self {
        let number = number_of(&text);
        PortState { text, number }
    }
}

impl From<&str> for PortState {
    fn from(text: &str) -> Self {
        PortState::from(text.to_string())
    }
}

impl std::ops::Deref for PortState {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for PortState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// On the wire and in every file the state stays the text sysfs wrote.
impl Serialize for PortState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for PortState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(PortState::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_number_sysfs_writes_and_nothing_else() {
        let number = |t: &str| PortState::from(t).number();
        assert_eq!(number("4: ACTIVE"), Some(4));
        assert_eq!(number(" 5 : LinkUp"), Some(5));
        assert_eq!(number("0: NOP"), Some(0));
        for not_a_state in [
            "ACTIVE",
            "04: ACTIVE",
            "+4: ACTIVE",
            "4x: ACTIVE",
            ": ACTIVE",
            "999: X",
            "",
        ] {
            assert_eq!(number(not_a_state), None, "{not_a_state:?}");
        }
    }

    #[test]
    fn rewriting_the_text_reads_the_number_again() {
        let mut state = PortState::from("4: ACTIVE");
        state.rewrite(|t| *t = "1: DOWN".into());
        assert_eq!((state.as_str(), state.number()), ("1: DOWN", Some(1)));
        state.rewrite(|t| *t = "\\u{1b}4: ACTIVE".into());
        assert_eq!(state.number(), None);
    }

    #[test]
    fn travels_as_the_text_alone() {
        let state = PortState::from("5: LinkUp");
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, r#""5: LinkUp""#);
        assert_eq!(serde_json::from_str::<PortState>(&json).unwrap(), state);
    }
}
