//! How long ago something happened, in the largest whole unit, as health reasons and the node detail say it.

/// `ms` as an age: `12 s ago`, `40 min ago`, `5 h ago`, `3 d ago`.
pub fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}
