//! The members of an RMA bundle, their bounds and statuses, and the one cut every member goes through.

use serde::Serialize;

/// Most bytes one member keeps.
pub(crate) const MAX_MEMBER_BYTES: usize = 256 * 1024;
/// Kernel-log lines kept: the last ones naming the GPU's PCI address, at most [`MAX_KERNEL_BYTES`].
pub(crate) const MAX_KERNEL_LINES: usize = 200;
pub(crate) const MAX_KERNEL_BYTES: usize = 64 * 1024;
/// Most history events kept, newest first.
pub(crate) const MAX_HISTORY_EVENTS: u32 = 1000;
/// The newest part of the audit log searched for the last validation.
pub(super) const AUDIT_TAIL_BYTES: u64 = 64 * 1024 * 1024;

/// How a member came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Collected,
    /// Collected, but longer than its bound: its end is kept (or its newest part).
    Truncated,
    /// Looked for, and there is none (no kernel-log line, no validation): checked, nothing.
    None,
    /// Could not be collected; `detail` says why.
    Failed,
}

/// One file of the bundle, or why it is not there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub name: String,
    pub status: Status,
    /// Bytes in the bundle (0 for `none` and `failed`).
    pub bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip)]
    pub text: String,
}

impl Member {
    pub(super) fn collected(
        name: &str,
        text: String,
        max: usize,
        detail: Option<String>,
    ) -> Member {
        let (text, cut) = tail_within(text, max);
        Member {
            name: name.into(),
            status: if cut {
                Status::Truncated
            } else {
                Status::Collected
            },
            bytes: text.len(),
            detail: if cut {
                Some(format!("cut to its last {} KiB", max / 1024))
            } else {
                detail
            },
            text,
        }
    }

    /// A member that is not there, and why; the operator's home directory (key files, the state directory)
    /// is said as `~`, so the bundle names nothing of the operator's environment.
    pub(super) fn without(name: &str, status: Status, why: String) -> Member {
        let home = std::env::var("HOME").unwrap_or_default();
        let why = home_as_tilde(&why, &home);
        Member {
            name: name.into(),
            status,
            bytes: 0,
            detail: Some(crate::text::escape(&why).into_owned()),
            text: String::new(),
        }
    }
}

/// The GPU as the node reported it, every string already made inert where samples come in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub node: String,
    pub gpu: u32,
    pub name: Option<String>,
    pub serial: Option<String>,
    pub uuid: Option<String>,
    pub vbios: Option<String>,
    pub pci_bus_id: Option<String>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub kernel: Option<String>,
}

/// `text` cut to its last `max` bytes at a line start (a char boundary at worst); whether it was cut.
pub(super) fn tail_within(text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if let Some(nl) = text[start..].find('\n') {
        start += nl + 1;
    }
    (text[start..].to_string(), true)
}

/// `text` with the operator's home directory said as `~` wherever it stands as a whole path component
/// (`/home/ana/.ssh` → `~/.ssh`, but `/home/anabel` stays: it is another user's).
fn home_as_tilde(text: &str, home: &str) -> String {
    let home = home.trim_end_matches('/');
    if home.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(home) {
        let after = &rest[at + home.len()..];
        let whole = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')));
        out.push_str(&rest[..at]);
        out.push_str(if whole { "~" } else { home });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::home_as_tilde;

    #[test]
    fn only_the_operator_s_own_home_becomes_a_tilde() {
        let home = "/home/ana";
        assert_eq!(
            home_as_tilde("no key /home/ana/.ssh/id_ed25519", home),
            "no key ~/.ssh/id_ed25519"
        );
        assert_eq!(home_as_tilde("in /home/ana: denied", home), "in ~: denied");
        assert_eq!(home_as_tilde("/home/anabel/x", home), "/home/anabel/x");
        assert_eq!(home_as_tilde("/home/ana.bak/x", home), "/home/ana.bak/x");
        assert_eq!(home_as_tilde("anything", "/"), "anything");
    }
}
