//! The one rule for "went down / came back" after a reboot or GPU reset, used by the views (a restart the TUI
//! asked for) and the repair workflow's wait alike, and the watch fleet state keeps for a restart in flight.

use std::time::{Duration, Instant};

use crate::workload::operations::Restart;

/// What one look at a node that was asked to reboot (or reset) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// It gave no data after the restart was asked: its connection failed, or a probe found it not answering.
    pub down: bool,
    /// It answers: up, with a sample taken after it went down.
    pub answering: bool,
}

/// Where a restart stands, by [`judge_return`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// Not seen down yet, within the deadline.
    NotDownYet,
    /// Seen down by this look.
    WentDown,
    /// Down and not answering yet, within the deadline.
    StillDown,
    /// Went down, then answered: back.
    CameBack,
    /// The deadline passed and it was never seen down (was the command issued?).
    NeverWentDown,
    /// The deadline passed after it went down, and it does not answer.
    NeverCameBack,
}

impl Return {
    /// Still under way or overdue: the node counts as restarting.
    pub(crate) fn in_flight(self) -> bool {
        self != Return::CameBack
    }

    pub(crate) fn overdue(self) -> bool {
        matches!(self, Return::NeverWentDown | Return::NeverCameBack)
    }
}

/// The one rule for "went down / came back": a restarted node must first be seen down (an answer from before it
/// went down is not "back"), then answer again, both within `deadline` of the restart.
pub(crate) fn judge_return(
    went_down: bool,
    look: Look,
    waited: Duration,
    deadline: Duration,
) -> Return {
    match (went_down, look.down, look.answering) {
        (false, true, _) => Return::WentDown,
        (false, false, _) if waited > deadline => Return::NeverWentDown,
        (false, false, _) => Return::NotDownYet,
        (true, _, true) => Return::CameBack,
        (true, _, false) if waited > deadline => Return::NeverCameBack,
        (true, _, false) => Return::StillDown,
    }
}

/// A reboot or reset being watched.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RestartWatch {
    pub kind: Restart,
    pub by: Option<String>,
    pub since: Instant,
    /// When its connection first failed after `since`.
    pub down_at: Option<Instant>,
    /// Practice (the demo fleet, which never drops off): counted as down from this time on.
    pub practice_down: Option<Instant>,
}

impl RestartWatch {
    /// When it went down as far as is known at `now`.
    pub(crate) fn down_at(&self, now: Instant) -> Option<Instant> {
        self.down_at.or(self.practice_down.filter(|&t| now >= t))
    }
}

/// `did not come back within 900 s of the reboot`: an overdue restart's reason, crit.
pub(crate) fn overdue_reason(kind: Restart, deadline: Duration) -> String {
    format!(
        "did not come back within {} s of the {}",
        deadline.as_secs(),
        kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(900);

    fn look(down: bool, answering: bool) -> Look {
        Look { down, answering }
    }

    #[test]
    fn a_node_must_go_down_before_it_counts_as_back() {
        let soon = Duration::from_secs(5);
        assert_eq!(
            judge_return(false, look(false, true), soon, DEADLINE),
            Return::NotDownYet
        );
        assert_eq!(
            judge_return(false, look(true, false), soon, DEADLINE),
            Return::WentDown
        );
        assert_eq!(
            judge_return(true, look(false, false), soon, DEADLINE),
            Return::StillDown
        );
        assert_eq!(
            judge_return(true, look(false, true), soon, DEADLINE),
            Return::CameBack
        );
    }

    #[test]
    fn the_deadline_fails_a_node_that_never_went_down_or_never_came_back() {
        let late = DEADLINE + Duration::from_secs(1);
        assert_eq!(
            judge_return(false, look(false, true), late, DEADLINE),
            Return::NeverWentDown
        );
        assert_eq!(
            judge_return(true, look(true, false), late, DEADLINE),
            Return::NeverCameBack
        );
        // Back is back, however late: the verdict then comes from its data.
        assert_eq!(
            judge_return(true, look(false, true), late, DEADLINE),
            Return::CameBack
        );
        // Going down late is still going down; the wait for it to come back goes on to the deadline's verdict.
        assert_eq!(
            judge_return(false, look(true, false), late, DEADLINE),
            Return::WentDown
        );
    }
}
