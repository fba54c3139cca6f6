//! Which fleetop this is: the version and the build (git commit) every agent reports in its hello, so a
//! jump host can tell nodes that run other code than its own.

/// The package version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from (`unknown` outside a checkout).
pub const BUILD: &str = env!("FLEETOP_BUILD");
/// `0.1.0 (build 0123456789ab)`: what `--version` prints after the name.
pub(crate) const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (build ",
    env!("FLEETOP_BUILD"),
    ")"
);

/// How an agent's version and build differ from this binary's, for a drift reason; `None` when they match.
/// An unknown build on either side compares the versions alone.
pub fn skew(version: &str, build: Option<&str>) -> Option<String> {
    let build = build.filter(|b| !b.is_empty() && *b != "unknown");
    let ours = (BUILD != "unknown").then_some(BUILD);
    let same_build = match (build, ours) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => true,
    };
    if version == VERSION && same_build {
        return None;
    }
    let theirs = match build {
        Some(b) => format!("{version} (build {b})"),
        None => version.to_string(),
    };
    Some(format!("agent {theirs}, jump host {LONG}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_version_and_build_is_no_skew() {
        assert_eq!(skew(VERSION, Some(BUILD)), None);
        assert_eq!(skew(VERSION, None), None, "an older agent names no build");
    }

    #[test]
    fn another_version_or_build_is_named() {
        let older = skew("0.0.9", None).unwrap();
        assert!(older.starts_with("agent 0.0.9, jump host "), "{older}");
        if BUILD != "unknown" {
            let other = skew(VERSION, Some("feedfacecafe")).unwrap();
            assert!(other.contains("build feedfacecafe"), "{other}");
        }
    }
}
