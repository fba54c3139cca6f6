//! What the recorder writes reads back: its heartbeats while the fleet is silent, and every sample and event
//! within the bounds its reader holds them to.

use crate::inventory::Inventory;
use crate::recording::{Messages, Reader, Recorded, Writer};
use crate::telemetry::{GpuSample, NodeSample};
use crate::transport::{Msg, NodeEvent};

const INVENTORY: &str = "[defaults]\ninterval_ms = 1000\ngpus_per_node = 8\n[[cabinet]]\nname = \"c01\"\n\
nodes = \"c01n[1-4]\"\n";
const T0: u64 = 1_795_489_200_000;

fn writer(dir: &std::path::Path) -> Writer {
    let inv = Inventory::parse("bound.toml", INVENTORY).unwrap();
    Writer::create(dir, &inv, INVENTORY, Default::default()).unwrap()
}

fn sample_msg(t: u64) -> Msg {
    let sample = NodeSample {
        t,
        gpus: vec![GpuSample {
            util_pct: Some(1),
            ..Default::default()
        }],
        ..Default::default()
    };
    Msg {
        node: 0,
        at: std::time::Instant::now(),
        event: NodeEvent::Sample(sample),
    }
}

/// Every flush with nothing to write is an empty block, read back as the recorder alive at its time: a silent
/// fleet is told from a stopped recorder. Beats outside the window asked for are not handed out.
#[test]
fn the_recorder_s_beats_while_the_fleet_is_silent_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    w.write(T0, &sample_msg(T0)).unwrap();
    w.beat(T0).unwrap();
    for s in 1..=5 {
        w.beat(T0 + s * 1000).unwrap();
    }
    w.write(T0 + 6000, &sample_msg(T0 + 6000)).unwrap();
    w.close().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.span(), Some((T0, T0 + 6000)));
    let mut items = Messages::open(&reader, T0, T0 + 4000);
    let mut seen = Vec::new();
    while let Some(item) = items.next_recorded() {
        seen.push(match item.unwrap() {
            (t, Recorded::Msg(_)) => (t, "msg"),
            (t, Recorded::Alive) => (t, "alive"),
            (t, Recorded::Workload(_)) => (t, "workload"),
        });
    }
    let mut want = vec![(T0, "msg")];
    want.extend((1..=4).map(|s| (T0 + s * 1000, "alive")));
    assert_eq!(seen, want);
    // The messages-only iterator skips them.
    assert_eq!(reader.messages(T0, u64::MAX).count(), 2);
}
