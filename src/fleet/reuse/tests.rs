//! Reused judgements equal fresh ones after every kind of change, over random message sequences.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::judgement_of;
use crate::fleet::view::{Pending, Summary};
use crate::fleet::{AuditedReset, FleetState};
use crate::inventory::Inventory;
use crate::telemetry::fabric::IbPort;
use crate::telemetry::{GpuSample, NodeSample, Source, XidEvent};
use crate::transport::{FailureKind, Msg, NodeEvent};
use crate::workload::operations::{DrainState, NodeDrain, OperationEvent, Restart};

const NODES: usize = 4;

fn fleet() -> FleetState {
    let inv = Inventory::parse(
        "fixture.toml",
        "[defaults]\ninterval_ms = 1000\ngpus_per_node = 2\n[[cabinet]]\nname = \"c01\"\nnodes = \"c01n[1-4]\"\n",
    )
    .unwrap();
    FleetState::new(Arc::new(inv))
}

/// One change to fleet state, or time passing.
#[derive(Debug, Clone)]
enum Step {
    /// A sample: GPU model variant (drift), temperature, InfiniBand rate variant (usual rate), an XID.
    Sample {
        node: usize,
        model: bool,
        temp: u32,
        slow_port: bool,
        xid: bool,
    },
    /// A compact stream's delta that carries only the node's time: an idle node's second.
    Beat(usize),
    Streaming {
        node: usize,
        version: bool,
    },
    Failed {
        node: usize,
        stream_ended: bool,
    },
    BadLine(usize),
    Drain {
        node: usize,
        drained: bool,
    },
    Restarting(usize),
    Resetting {
        node: usize,
        running: bool,
    },
    Ack(usize),
    Reset(usize),
    Lemon(usize),
    /// Seconds pass (the stale limit is 3 s).
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let node = 0..NODES;
    prop_oneof![
        4 => (node.clone(), any::<bool>(), 30u32..95, any::<bool>(), proptest::bool::weighted(0.1)).prop_map(
            |(node, model, temp, slow_port, xid)| Step::Sample { node, model, temp, slow_port, xid }
        ),
        2 => node.clone().prop_map(Step::Beat),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, version)| Step::Streaming { node, version }),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, stream_ended)| Step::Failed { node, stream_ended }),
        1 => node.clone().prop_map(Step::BadLine),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, drained)| Step::Drain { node, drained }),
        1 => node.clone().prop_map(Step::Restarting),
        1 => (node.clone(), any::<bool>()).prop_map(|(node, running)| Step::Resetting { node, running }),
        1 => node.clone().prop_map(Step::Ack),
        1 => node.clone().prop_map(Step::Reset),
        1 => node.prop_map(Step::Lemon),
        3 => (0u64..3).prop_map(Step::Wait),
    ]
}

fn sample(model: bool, temp: u32, slow_port: bool, xid: bool) -> NodeSample {
    let gpu = |index: u32| GpuSample {
        index,
        name: Some(
            if model {
                "NVIDIA H100 80GB HBM3"
            } else {
                "NVIDIA A100-SXM4-80GB"
            }
            .into(),
        ),
        util_pct: Some(50),
        temp_c: Some(temp),
        power_w: Some(300.0),
        xid: xid.then(|| vec![79]),
        xid_events: xid.then(|| {
            vec![XidEvent {
                code: 79,
                count: 1,
                first_ms: Some(1_796_576_400_000),
                last_ms: Some(1_796_576_400_000),
                text: Some("GPU has fallen off the bus.".into()),
                fatal: None,
            }]
        }),
        ..Default::default()
    };
    NodeSample {
        t: 1_796_580_000_000,
        gpus: vec![gpu(0), gpu(1)],
        ib: Some(vec![IbPort {
            hca: "mlx5_0".into(),
            port: 1,
            link_layer: Some("InfiniBand".into()),
            state: Some("4: ACTIVE".into()),
            phys_state: Some("5: LinkUp".into()),
            rate_gbps: Some(if slow_port { 200.0 } else { 400.0 }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A delta that says only that the node's time moved on.
fn beat() -> crate::telemetry::delta::NodeDelta {
    crate::telemetry::delta::NodeDelta {
        d: 1_796_580_001_000,
        ..Default::default()
    }
}

fn apply(fleet: &mut FleetState, step: Step, now: &mut Instant) {
    let at = *now;
    let msg = |node: usize, event: NodeEvent| Msg { node, at, event };
    let name = |node: usize| fleet.inventory().nodes[node].name.clone();
    match step {
        Step::Sample {
            node,
            model,
            temp,
            slow_port,
            xid,
        } => fleet.apply(msg(
            node,
            NodeEvent::Sample(sample(model, temp, slow_port, xid)),
        )),
        Step::Beat(node) => fleet.apply(msg(node, NodeEvent::Delta(Box::new(beat())))),
        Step::Streaming { node, version } => fleet.apply(msg(
            node,
            NodeEvent::Streaming {
                source: Source::Agent,
                detail: "agent".into(),
                hello: Some(Box::new(crate::telemetry::wire::AgentHello {
                    fleetop_agent: 1,
                    version: if version { "1.0.0" } else { "0.9.0" }.into(),
                    driver: Some("550.54.15".into()),
                    cuda: None,
                    gpus: 2,
                    kernel: None,
                    build: None,
                    compact: None,
                })),
            },
        )),
        Step::Failed { node, stream_ended } => {
            let kind = if stream_ended {
                FailureKind::StreamEnded
            } else {
                FailureKind::Unreachable
            };
            fleet.apply(msg(
                node,
                NodeEvent::Failed {
                    kind,
                    detail: "gone".into(),
                },
            ))
        }
        Step::BadLine(node) => fleet.apply(msg(node, NodeEvent::BadLine("garbage".into()))),
        Step::Drain { node, drained } => {
            let state = if drained {
                DrainState::Drained
            } else {
                DrainState::Active("idle".into())
            };
            let drain = NodeDrain {
                state,
                reason: Some("psu".into()),
                user: Some("root".into()),
            };
            fleet.apply(msg(
                node,
                NodeEvent::Operation(OperationEvent::Drain(drain)),
            ))
        }
        Step::Restarting(node) => fleet.apply(msg(
            node,
            NodeEvent::Operation(OperationEvent::Restarting {
                kind: Restart::Reboot,
                by: None,
                practice: None,
                seen_down: false,
            }),
        )),
        Step::Resetting { node, running } => fleet.apply(msg(
            node,
            NodeEvent::Operation(OperationEvent::Resetting(running)),
        )),
        Step::Ack(node) => {
            fleet.acknowledge_xids(node, "known");
        }
        Step::Reset(node) => fleet.note_resets(&[AuditedReset {
            node: name(node),
            gpu: None,
            reboot: true,
            at_ms: 1_796_578_000_000,
        }]),
        Step::Lemon(node) => {
            fleet.note_lemons(&HashMap::from([(name(node), "3 crits in 30 days".into())]))
        }
        Step::Wait(secs) => *now += Duration::from_secs(secs),
    }
}

/// Every node's view as live views get it, beside a fresh judgement.
fn check(fleet: &FleetState, now: Instant) -> Result<(), TestCaseError> {
    // The line mode's totals, read from kept judgements where they are reused, are those of fresh views.
    let fresh: Vec<_> = (0..NODES)
        .map(|id| fleet.judge_node(id, now, Pending::Connecting))
        .collect();
    prop_assert_eq!(fleet.summary(now), Summary::of(&fresh));
    for id in 0..NODES {
        let reused = judgement_of(&fleet.node_view(id, now, Pending::Connecting));
        let fresh = judgement_of(&fleet.judge_node(id, now, Pending::Connecting));
        prop_assert_eq!(reused, fresh, "node {}", id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..Default::default() })]

    #[test]
    fn reused_judgements_equal_fresh_ones(steps in proptest::collection::vec(step(), 1..60)) {
        let mut fleet = fleet();
        let mut now = Instant::now();
        check(&fleet, now)?;
        for step in steps {
            apply(&mut fleet, step, &mut now);
            check(&fleet, now)?;
        }
    }
}

#[test]
fn a_quiet_node_is_judged_once_until_its_state_crosses_the_stale_limit() {
    let mut fleet = fleet();
    let start = Instant::now();
    let mut now = start;
    apply(
        &mut fleet,
        Step::Sample {
            node: 0,
            model: true,
            temp: 40,
            slow_port: false,
            xid: false,
        },
        &mut now,
    );
    let key = |fleet: &FleetState, at| fleet.judgement_key(0, at).unwrap();
    let first = fleet.node_view(0, start, Pending::Connecting);
    assert_eq!(first.data_state, crate::fleet::NodeState::Up);
    let later = start + Duration::from_secs(2);
    assert_eq!(
        key(&fleet, start),
        key(&fleet, later),
        "nothing changed: the judgement is reused"
    );
    assert!(fleet.judged.get(0, key(&fleet, later)).is_some());
    // Past the stale limit the node's state changes and its age shows: judged afresh every time.
    let stale = start + Duration::from_secs(4);
    assert_eq!(fleet.judgement_key(0, stale), None);
    assert_eq!(
        fleet.node_view(0, stale, Pending::Connecting).data_state,
        crate::fleet::NodeState::Stale
    );
    // A new sample bumps the node's generation.
    let before = key(&fleet, later);
    apply(
        &mut fleet,
        Step::Sample {
            node: 0,
            model: true,
            temp: 41,
            slow_port: false,
            xid: false,
        },
        &mut now,
    );
    assert_ne!(before, key(&fleet, later));
}

#[test]
fn a_delta_of_the_time_alone_keeps_the_node_fresh_and_its_judgement() {
    let mut fleet = fleet();
    let start = Instant::now();
    let mut now = start;
    let quiet = Step::Sample {
        node: 0,
        model: true,
        temp: 40,
        slow_port: false,
        xid: false,
    };
    apply(&mut fleet, quiet, &mut now);
    let key = |fleet: &FleetState, at| fleet.judgement_key(0, at).unwrap();
    let judged = key(&fleet, now);
    fleet.node_view(0, now, Pending::Connecting);
    // Ten idle seconds, each an empty delta: past the stale limit (3 s) the node is still up, by the same key.
    for _ in 0..10 {
        apply(&mut fleet, Step::Wait(1), &mut now);
        apply(&mut fleet, Step::Beat(0), &mut now);
        assert_eq!(key(&fleet, now), judged, "nothing it reads changed");
        assert!(fleet.judged.get(0, key(&fleet, now)).is_some(), "reused");
        let view = fleet.node_view(0, now, Pending::Connecting);
        assert_eq!(view.data_state, crate::fleet::NodeState::Up);
        assert_eq!(view.sample_age, Some(Duration::ZERO));
    }
    assert_eq!(fleet.nodes()[0].samples, 11);
    // The whole sample a compact stream sends every minute, the same but for its time, keeps it too.
    let mut again = sample(true, 40, false, false);
    again.t += 60_000;
    let at = now;
    fleet.apply(Msg {
        node: 0,
        at,
        event: NodeEvent::Sample(again),
    });
    assert_eq!(key(&fleet, now), judged);
    // An empty delta that ends a failure changes the judgement.
    apply(
        &mut fleet,
        Step::Failed {
            node: 0,
            stream_ended: false,
        },
        &mut now,
    );
    let failed = key(&fleet, now);
    apply(&mut fleet, Step::Beat(0), &mut now);
    assert_ne!(key(&fleet, now), failed);
    assert_eq!(
        fleet.node_view(0, now, Pending::Connecting).data_state,
        crate::fleet::NodeState::Up
    );
}
