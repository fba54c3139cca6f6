//! When a failed node is tried again: exponential backoff with jitter, so a fleet that lost its network
//! does not reconnect in lockstep.

use std::time::Duration;

use crate::inventory::NodeId;

/// Backoff after a failure: from `BACKOFF_MIN`, doubling, up to `BACKOFF_MAX`, ±25 % jitter.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The jitter: up to this share of the backoff either way.
const JITTER: f64 = 0.25;

/// The longest a failed node waits before it is tried again: the cap with its jitter.
pub(super) fn longest() -> Duration {
    BACKOFF_MAX.mul_f64(1.0 + JITTER)
}

/// Exponential backoff with ±25 % jitter so a fleet that lost its network does not reconnect in lockstep.
pub(super) fn backoff(failures: u32, node: NodeId) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << failures.saturating_sub(1).min(5));
    let base = exp.min(BACKOFF_MAX);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let nanos = u64::from(clock) ^ u64::from(std::process::id());
    let noise = (node as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ nanos.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let jitter = (noise % 501) as f64 / 1000.0 - JITTER;
    base.mul_f64(1.0 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for node in 0..50 {
            let first = backoff(1, node);
            assert!(
                first >= Duration::from_millis(750) && first <= Duration::from_millis(1250),
                "{first:?}"
            );
            let late = backoff(20, node);
            assert!(
                late >= Duration::from_millis(22_500) && late <= longest(),
                "{late:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|n| backoff(3, n)).collect();
        assert!(spread.len() > 10, "jitter spreads nodes apart");
    }
}
