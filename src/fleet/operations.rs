//! Operations state is a fleet fact: who drained a node and why, a reboot or GPU reset in flight, the repair step
//! a node is in. Read-backs and actions send [`OperationEvent`]s through the one message channel;
//! `FleetState::apply` records them here and every view derives the same [`Operations`] from them; a restart in
//! flight is judged by the one "went down / came back" rule in `restart.rs`.

use std::time::{Duration, Instant};

use super::node::NodeState;
use super::restart::{judge_return, Look, RestartWatch, Return};
pub use crate::workload::operations::{DrainState, NodeDrain, OperationEvent, Restart};

/// What is being done to a node, as every front end names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    InService,
    Draining,
    Drained,
    Rebooting,
    Resetting,
    InRepair,
    /// The drain backend could not tell (the node is unknown to it, or it has no read-back).
    Unknown,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::InService => "in-service",
            Activity::Draining => "draining",
            Activity::Drained => "drained",
            Activity::Rebooting => "rebooting",
            Activity::Resetting => "resetting",
            Activity::InRepair => "in-repair",
            Activity::Unknown => "unknown",
        }
    }

    /// Taken out of service by someone: still shown with its verdict, but it does not decide `snapshot`'s exit
    /// status (unless `--include-drained`).
    pub fn out_of_service(self) -> bool {
        !matches!(self, Activity::InService | Activity::Unknown)
    }

    /// The node state views show: a restart or repair over anything (the node is expected to drop off), a drain
    /// over a node that gives data (a node that gives none says why instead).
    pub(crate) fn shown(self, data: NodeState) -> NodeState {
        match self {
            Activity::Rebooting => NodeState::Rebooting,
            Activity::Resetting => NodeState::Resetting,
            Activity::InRepair => NodeState::InRepair,
            Activity::Drained if !data.is_failure() => NodeState::Drained,
            Activity::Draining if !data.is_failure() => NodeState::Draining,
            _ => data,
        }
    }
}

/// A node's operations state as a renderer shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operations {
    pub activity: Activity,
    /// Why: the drain reason, the cordoned node's taints, the repair's step.
    pub reason: Option<String>,
    /// Who: the user the scheduler names, the operator who asked for a restart.
    pub by: Option<String>,
}

impl Operations {
    /// `drained by root: psu swap, ticket 4411`.
    pub fn describe(&self) -> String {
        let mut text = self.activity.as_str().to_string();
        if let Some(by) = &self.by {
            text += &format!(" by {by}");
        }
        if let Some(reason) = &self.reason {
            text += &format!(": {reason}");
        }
        text
    }
}

/// A repair's latest step on a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RepairNote {
    pub text: String,
    pub active: bool,
    pub by: Option<String>,
}

/// Per node, what fleet state holds about its operations.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeOps {
    /// The drain backend's last read-back (`None`: not asked).
    pub drain: Option<NodeDrain>,
    pub restart: Option<RestartWatch>,
    /// A GPU reset is running on it.
    pub resetting: bool,
    pub repair: Option<RepairNote>,
}

impl NodeOps {
    pub(crate) fn record(&mut self, event: OperationEvent, at: Instant) {
        match event {
            OperationEvent::Drain(drain) => self.drain = Some(drain),
            OperationEvent::Restarting {
                kind,
                by,
                practice,
                seen_down,
            } => {
                self.restart = Some(RestartWatch {
                    kind,
                    by,
                    since: at,
                    down_at: seen_down.then_some(at),
                    // A practice too long to reach is never reached.
                    practice_down: practice.and_then(|p| at.checked_add(p)),
                })
            }
            OperationEvent::Resetting(on) => self.resetting = on,
            OperationEvent::Repair { text, active, by } => {
                // A step names no one: who started the repair stays.
                let by = by.or_else(|| self.repair.take().and_then(|r| r.by));
                self.repair = Some(RepairNote { text, active, by })
            }
        }
    }

    /// The node's transport failed at `at`: a restart asked before then went down.
    pub(crate) fn failed(&mut self, at: Instant) {
        if let Some(w) = self.restart.as_mut().filter(|w| w.down_at.is_none()) {
            if at >= w.since {
                w.down_at = Some(at);
            }
        }
    }

    /// How the restart in flight stands at `now`, given the node's last sample and its state from data.
    pub(crate) fn restart_return(
        &self,
        sample_at: Option<Instant>,
        data: NodeState,
        now: Instant,
        deadline: Duration,
    ) -> Option<(Restart, Return)> {
        let w = self.restart.as_ref()?;
        let down = w.down_at(now);
        let answering =
            data == NodeState::Up && matches!((sample_at, down), (Some(s), Some(d)) if s > d);
        let look = Look {
            down: down.is_some(),
            answering,
        };
        let waited = now.saturating_duration_since(w.since);
        Some((w.kind, judge_return(down.is_some(), look, waited, deadline)))
    }

    /// What views show: a restart in flight first, then an active repair, then the drain read-back.
    pub(crate) fn view(&self, restart: Option<(Restart, Return)>) -> Option<Operations> {
        if let Some((kind, _)) = restart.filter(|(_, r)| r.in_flight()) {
            let activity = match kind {
                Restart::Reboot => Activity::Rebooting,
                Restart::Reset => Activity::Resetting,
            };
            return Some(Operations {
                activity,
                reason: None,
                by: self.restart.as_ref().and_then(|w| w.by.clone()),
            });
        }
        if self.resetting {
            return Some(Operations {
                activity: Activity::Resetting,
                reason: None,
                by: None,
            });
        }
        if let Some(r) = self.repair.as_ref().filter(|r| r.active) {
            return Some(Operations {
                activity: Activity::InRepair,
                reason: Some(r.text.clone()),
                by: r.by.clone(),
            });
        }
        let drain = self.drain.as_ref()?;
        let (activity, reason) = match &drain.state {
            DrainState::Active(_) => (Activity::InService, None),
            DrainState::Draining => (Activity::Draining, drain.reason.clone()),
            DrainState::Drained => (Activity::Drained, drain.reason.clone()),
            DrainState::Unknown(why) => (Activity::Unknown, Some(why.clone())),
        };
        Some(Operations {
            activity,
            reason,
            by: drain.user.clone().filter(|_| activity.out_of_service()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(900);

    #[test]
    fn a_sample_from_before_the_failure_is_not_back() {
        let t0 = Instant::now();
        let mut ops = NodeOps::default();
        ops.record(
            OperationEvent::Restarting {
                kind: Restart::Reboot,
                by: Some("alice".into()),
                practice: None,
                seen_down: false,
            },
            t0,
        );
        let at = |s| t0 + Duration::from_secs(s);
        let ret = |ops: &NodeOps, sample: u64, now: u64| {
            ops.restart_return(Some(at(sample)), NodeState::Up, at(now), DEADLINE)
                .map(|(_, r)| r)
        };
        assert_eq!(
            ret(&ops, 1, 2),
            Some(Return::NotDownYet),
            "a sample after the ask, before going down"
        );
        ops.failed(at(5));
        assert_eq!(ret(&ops, 1, 6), Some(Return::StillDown));
        assert_eq!(ret(&ops, 90, 90), Some(Return::CameBack));
        let shown = ops
            .view(Some((Restart::Reboot, Return::StillDown)))
            .unwrap();
        assert_eq!(shown.activity, Activity::Rebooting);
        assert_eq!(shown.by.as_deref(), Some("alice"));
    }

    #[test]
    fn a_practice_restart_counts_as_down_after_its_time() {
        let t0 = Instant::now();
        let mut ops = NodeOps::default();
        ops.record(
            OperationEvent::Restarting {
                kind: Restart::Reset,
                by: None,
                practice: Some(Duration::from_secs(10)),
                seen_down: false,
            },
            t0,
        );
        let at = |s| t0 + Duration::from_secs(s);
        let ret = |sample: u64, now: u64| {
            ops.restart_return(Some(at(sample)), NodeState::Up, at(now), DEADLINE)
                .map(|(_, r)| r)
        };
        assert_eq!(ret(9, 9), Some(Return::NotDownYet));
        assert_eq!(ret(10, 11), Some(Return::StillDown));
        assert_eq!(ret(11, 11), Some(Return::CameBack));
    }

    #[test]
    fn a_practice_restart_too_long_to_reach_never_counts_as_down() {
        let t0 = Instant::now();
        let mut ops = NodeOps::default();
        ops.record(
            OperationEvent::Restarting {
                kind: Restart::Reboot,
                by: None,
                practice: Some(Duration::new(u64::MAX, 0)),
                seen_down: false,
            },
            t0,
        );
        let later = t0 + Duration::from_secs(5);
        let ret = ops
            .restart_return(Some(later), NodeState::Up, later, DEADLINE)
            .map(|(_, r)| r);
        assert_eq!(ret, Some(Return::NotDownYet));
    }

    #[test]
    fn a_reset_in_flight_shows_resetting_until_it_ends() {
        let mut ops = NodeOps::default();
        let t0 = Instant::now();
        ops.record(OperationEvent::Resetting(true), t0);
        assert_eq!(
            ops.view(None).map(|o| o.activity),
            Some(Activity::Resetting)
        );
        ops.record(OperationEvent::Resetting(false), t0);
        assert_eq!(
            ops.view(None),
            None,
            "ended: nothing to show, never overdue"
        );
    }

    #[test]
    fn a_drain_shows_who_and_why_and_a_restart_or_repair_comes_first() {
        let mut ops = NodeOps::default();
        assert_eq!(ops.view(None), None, "never asked: not checked");
        ops.record(
            OperationEvent::Drain(NodeDrain {
                state: DrainState::Drained,
                reason: Some("psu swap, ticket 4411".into()),
                user: Some("root".into()),
            }),
            Instant::now(),
        );
        let drained = ops.view(None).unwrap();
        assert_eq!(drained.describe(), "drained by root: psu swap, ticket 4411");
        assert!(drained.activity.out_of_service());
        ops.record(
            OperationEvent::Repair {
                text: "repair: waiting for jobs".into(),
                active: true,
                by: None,
            },
            Instant::now(),
        );
        assert_eq!(ops.view(None).unwrap().activity, Activity::InRepair);
        assert_eq!(
            ops.view(Some((Restart::Reboot, Return::NeverCameBack)))
                .unwrap()
                .activity,
            Activity::Rebooting
        );
        assert_eq!(
            ops.view(Some((Restart::Reboot, Return::CameBack)))
                .unwrap()
                .activity,
            Activity::InRepair
        );
        ops.record(
            OperationEvent::Drain(NodeDrain {
                state: DrainState::Active("idle".into()),
                reason: None,
                user: Some("root".into()),
            }),
            Instant::now(),
        );
        ops.repair = None;
        let back = ops.view(None).unwrap();
        assert_eq!((back.activity, back.by), (Activity::InService, None));
        assert!(!back.activity.out_of_service());
        assert_eq!(Activity::Drained.shown(NodeState::Up), NodeState::Drained);
        assert_eq!(
            Activity::Drained.shown(NodeState::Unreachable),
            NodeState::Unreachable,
            "a drained node that gives no data says why"
        );
        assert_eq!(
            Activity::Rebooting.shown(NodeState::Unreachable),
            NodeState::Rebooting
        );
    }
}
