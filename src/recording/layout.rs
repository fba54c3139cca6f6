//! A recording's directory: its segment files, their names and bounds, and where recordings go by default.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A new segment (and keyframe) starts every five minutes: seeking reads at most that much. A keyframe restates
/// every GPU's identity and values, about as many bytes as thirteen seconds of changes on the demo fleet, while
/// reading a minute of frames takes about a tenth of a second (docs/benchmarks.md): five minutes keep keyframes
/// under a twentieth of the recording and a seek under the 1 s budget.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);
/// Segments a recording holds at most (173 days at the default period); the oldest go first.
pub(crate) const MAX_SEGMENTS: usize = 50_000;
/// A segment reaching this size ends early, and a new one (with its keyframe) begins.
pub const MAX_SEGMENT_BYTES: u64 = 512 << 20;

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".rec";

/// Where a recording goes by default: `$XDG_STATE_HOME/fleetop/recording`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    crate::dirs::state().map(|d| d.join("recording"))
}

pub(super) fn segment_path(dir: &Path, start_ms: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{start_ms:013}{SEGMENT_SUFFIX}"))
}

/// The start times of the segments in `dir`, oldest first; other files are not the recording's.
pub(super) fn segments(dir: &Path) -> Result<Vec<u64>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut starts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(start) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // A start no clock gives (past year 9999) would reach replay's time arithmetic and formatting.
        if start > super::time::LAST_MS {
            return Err(format!(
                "{}: a segment starting past year 9999; not a recording this fleetop wrote",
                dir.join(&name).display()
            ));
        }
        starts.push(start);
        // A directory of millions of files is not a recording this fleetop wrote; stop listing early.
        if starts.len() > 2 * MAX_SEGMENTS {
            break;
        }
    }
    starts.sort_unstable();
    Ok(starts)
}
