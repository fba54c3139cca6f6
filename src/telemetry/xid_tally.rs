//! A bounded tally of XID (or SXid) codes: counts with first and last times. When it is full, a new code
//! takes the place of the least severe one kept, so junk codes can never push out a code that needs action.

use super::health::{classify_xid, judge_sxids, Health};
use super::sample::XidEvent;
use crate::text::bounded;

/// Longest XID message kept.
const MAX_TEXT_CHARS: usize = 200;
/// Most distinct codes tallied per GPU or switch; counts of codes already known keep growing.
pub(crate) const MAX_CODES: usize = 64;

/// Which catalogue judges the codes, for choosing what to drop when the tally is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Codes {
    /// GPU XIDs: NVIDIA's XID catalogue as `telemetry/health.rs` classifies it.
    #[default]
    Xid,
    /// NVSwitch SXids: fatal or not, as `telemetry/health.rs` judges them.
    SXid,
}

/// Every code seen on one GPU or switch, in order of first appearance (at most [`MAX_CODES`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tally {
    events: Vec<XidEvent>,
    codes: Codes,
    /// Occurrences that are not in `events`: codes dropped because the tally was full of codes at least as
    /// severe, and codes pushed out by more severe ones.
    dropped: u64,
}

impl Tally {
    /// An empty tally of NVSwitch SXids.
    pub fn sxids() -> Self {
        Tally {
            codes: Codes::SXid,
            ..Default::default()
        }
    }

    /// Counts one occurrence at `at_ms` (wall clock, when known).
    pub fn add(&mut self, code: u32, at_ms: Option<u64>, text: &str, fatal: Option<bool>) {
        let text = (!text.is_empty()).then(|| bounded(text, MAX_TEXT_CHARS));
        if let Some(e) = self.events.iter_mut().find(|e| e.code == code) {
            e.count = e.count.saturating_add(1);
            e.first_ms = e.first_ms.or(at_ms);
            e.last_ms = at_ms.or(e.last_ms);
            e.text = text.or(e.text.take());
            e.fatal = match (e.fatal, fatal) {
                (Some(a), Some(b)) => Some(a || b),
                (a, b) => a.or(b),
            };
            return;
        }
        let event = XidEvent {
            code,
            count: 1,
            first_ms: at_ms,
            last_ms: at_ms,
            text,
            fatal,
        };
        if self.events.len() < MAX_CODES {
            self.events.push(event);
            return;
        }
        // Full: the newcomer replaces the least severe code kept (the least counted among equals), and
        // only when it is more severe; either way the loss is counted and reported.
        let weakest = self
            .events
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| (self.severity(e), e.count))
            .map(|(i, e)| (i, self.severity(e)));
        match weakest {
            Some((i, health)) if self.severity(&event) > health => {
                let evicted = self.events.remove(i);
                self.dropped = self.dropped.saturating_add(evicted.count);
                self.events.push(event);
            }
            _ => self.dropped = self.dropped.saturating_add(1),
        }
    }

    fn severity(&self, e: &XidEvent) -> Health {
        match self.codes {
            Codes::Xid => classify_xid(e.code).0,
            Codes::SXid => judge_sxids(std::slice::from_ref(e)).health,
        }
    }

    /// The most severe code kept (`Ok` when empty).
    pub fn worst(&self) -> Health {
        self.events
            .iter()
            .map(|e| self.severity(e))
            .max()
            .unwrap_or_default()
    }

    pub fn events(&self) -> &[XidEvent] {
        &self.events
    }

    pub fn codes(&self) -> Vec<u32> {
        self.events.iter().map(|e| e.code).collect()
    }

    /// Occurrences not kept because the tally was full; 0 when it holds everything it saw.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_and_keeps_first_and_last() {
        let mut t = Tally::default();
        t.add(79, Some(10), "a", None);
        t.add(79, Some(20), "b", None);
        t.add(13, None, "", None);
        assert_eq!(t.codes(), [79, 13]);
        let e = &t.events()[0];
        assert_eq!((e.count, e.first_ms, e.last_ms), (2, Some(10), Some(20)));
        assert_eq!(e.text.as_deref(), Some("b"));
        assert_eq!(t.dropped(), 0);
    }

    #[test]
    fn junk_codes_never_push_out_a_severe_one() {
        let mut t = Tally::default();
        // 64 unclassified codes (warn) fill the tally; the real XID 79 (crit) that follows is kept.
        for code in 1000..1000 + MAX_CODES as u32 {
            t.add(code, None, "forged", None);
        }
        t.add(79, Some(5), "GPU has fallen off the bus.", None);
        assert!(t.codes().contains(&79), "{:?}", t.codes());
        assert_eq!(t.codes().len(), MAX_CODES);
        assert_eq!(t.dropped(), 1, "the evicted junk code is counted");
        assert_eq!(t.worst(), Health::Crit);
        // Application faults (information) go before warnings; a newcomer no more severe than every kept
        // code is the one dropped.
        t.add(13, None, "", None);
        assert!(!t.codes().contains(&13));
        assert_eq!(t.dropped(), 2);
        let mut crit = Tally::default();
        for code in [48, 62, 64, 74, 79, 95] {
            crit.add(code, None, "", None);
        }
        for code in 1000..1000 + MAX_CODES as u32 {
            crit.add(code, None, "", None);
        }
        for code in [48, 62, 64, 74, 79, 95] {
            assert!(crit.codes().contains(&code), "XID {code} was dropped");
        }
    }

    #[test]
    fn a_full_sxid_tally_keeps_fatal_ones() {
        let mut t = Tally::sxids();
        for code in 20000..20000 + MAX_CODES as u32 {
            t.add(code, None, "", Some(false));
        }
        t.add(12028, None, "", Some(true));
        assert!(t.codes().contains(&12028));
        t.add(22013, None, "", Some(false));
        assert!(!t.codes().contains(&22013));
        assert_eq!(t.dropped(), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 200, ..Default::default() })]

        /// Whatever the order, a code that was dropped is never more severe than one that was kept.
        #[test]
        fn a_dropped_code_is_never_more_severe_than_a_kept_one(
            codes in proptest::collection::vec(
                proptest::prop_oneof![0u32..200, 1000u32..1100, proptest::sample::select(vec![13u32, 48, 79, 94, 109])],
                0..300,
            )
        ) {
            let mut t = Tally::default();
            for &c in &codes {
                t.add(c, None, "", None);
            }
            let kept = t.codes();
            let least_kept = kept.iter().map(|&c| classify_xid(c).0).min().unwrap_or_default();
            for c in codes.iter().filter(|c| !kept.contains(c)) {
                proptest::prop_assert!(classify_xid(*c).0 <= least_kept, "XID {} dropped, kept {:?}", c, kept);
            }
            proptest::prop_assert!(kept.len() <= MAX_CODES);
            let all: std::collections::BTreeSet<u32> = codes.iter().copied().collect();
            proptest::prop_assert_eq!(t.dropped() > 0, all.len() > kept.len());
        }
    }
}
