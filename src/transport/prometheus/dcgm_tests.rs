//! dcgm-exporter's families as recorded answers: the enforced power limit before the requested one, the last
//! XID never hiding a larger one within the window, and the counters file that lists every family asked.

use std::borrow::Cow;

use super::families::{
    apply, read, Dialect, NodeData, Reading, FAMILIES, REQUESTED_LIMIT_NOTE, XID_WINDOW,
};
use super::query::{Labels, Series, Text};

const LABELS: [(&str, &str); 2] = [("Hostname", "n1"), ("gpu", "0")];

/// Node n1 (inventory id 0) after the store answered `answers`: (family name, query contains, value).
fn node_after(answers: &[(&str, &str, &str)]) -> NodeData {
    let node_of = |m: &Labels| (m.get("Hostname") == Some("n1")).then_some(0);
    let mut nodes: Vec<Option<NodeData>> = vec![None];
    for (name, asked, value) in answers {
        let family = FAMILIES
            .iter()
            .find(|f| f.name == *name && f.query("Hostname").contains(asked))
            .unwrap_or_else(|| panic!("no family {name} asked with {asked}"));
        let series = Series {
            metric: Labels::of(&LABELS),
            value: (1_700_000_000.0, Text(Cow::Borrowed(value))),
        };
        let mut readings: Vec<Reading> = Vec::new();
        read(family, &series, &node_of, &mut readings);
        apply(family, &readings, &mut nodes);
    }
    let mut node = nodes.remove(0).expect("the node had series");
    node.finish();
    node
}

#[test]
fn the_power_limit_is_the_enforced_one_and_the_requested_one_only_where_it_is_absent() {
    // DCGM field 164 (enforced, what the agent reads) and 160 (requested), in either order.
    for answers in [
        [
            ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "(", "700"),
            ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "(", "500"),
        ],
        [
            ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "(", "500"),
            ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "(", "700"),
        ],
    ] {
        let node = node_after(&answers);
        assert_eq!(node.gpus[&0].power_limit_w, Some(500.0), "{answers:?}");
        assert!(node.notes.is_empty());
    }
    // An exporter without the enforced family: the requested limit, said so.
    let node = node_after(&[("DCGM_FI_DEV_POWER_MGMT_LIMIT", "(", "700")]);
    assert_eq!(node.gpus[&0].power_limit_w, Some(700.0));
    assert_eq!(node.notes, [REQUESTED_LIMIT_NOTE]);
    // Neither: unknown.
    let node = node_after(&[("DCGM_FI_DEV_GPU_TEMP", "(", "40")]);
    assert_eq!(node.gpus[&0].power_limit_w, None);
}

#[test]
fn a_later_last_xid_does_not_hide_a_larger_one_within_the_window() {
    let window = format!(
        "max_over_time(DCGM_FI_DEV_XID_ERRORS[{}s])",
        XID_WINDOW.as_secs()
    );
    // XID 79 (fell off the bus), then XID 13: the last is 13, the window's largest 79.
    for answers in [
        [
            ("DCGM_FI_DEV_XID_ERRORS", "(DCGM_FI_DEV_XID_ERRORS)", "13"),
            ("DCGM_FI_DEV_XID_ERRORS", window.as_str(), "79"),
        ],
        [
            ("DCGM_FI_DEV_XID_ERRORS", window.as_str(), "79"),
            ("DCGM_FI_DEV_XID_ERRORS", "(DCGM_FI_DEV_XID_ERRORS)", "13"),
        ],
    ] {
        let node = node_after(&answers);
        assert_eq!(node.gpus[&0].xid, Some(vec![13, 79]), "{answers:?}");
    }
    // No XID since DCGM started: checked, none.
    let node = node_after(&[
        ("DCGM_FI_DEV_XID_ERRORS", "(DCGM_FI_DEV_XID_ERRORS)", "0"),
        ("DCGM_FI_DEV_XID_ERRORS", window.as_str(), "0"),
    ]);
    assert_eq!(node.gpus[&0].xid, Some(vec![]));
    // A reboot cleared the value to 0, the window still holds the XID: it stays seen for the window.
    let node = node_after(&[
        ("DCGM_FI_DEV_XID_ERRORS", "(DCGM_FI_DEV_XID_ERRORS)", "0"),
        ("DCGM_FI_DEV_XID_ERRORS", window.as_str(), "48"),
    ]);
    assert_eq!(node.gpus[&0].xid, Some(vec![48]));
}

/// The counters file's fields: (name, type, commented out).
fn counters_file() -> Vec<(&'static str, &'static str, bool)> {
    let text = include_str!("../../../docs/dcgm-exporter-counters.csv");
    text.lines()
        .filter_map(|line| {
            let (commented, line) = match line.strip_prefix('#') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            let mut columns = line.splitn(3, ',').map(str::trim);
            let (name, kind, help) = (columns.next()?, columns.next()?, columns.next()?);
            (name.starts_with("DCGM_FI_") && !help.is_empty()).then_some((name, kind, commented))
        })
        .collect()
}

#[test]
fn the_counters_file_lists_every_dcgm_family_and_no_other() {
    let listed = counters_file();
    let asked: Vec<&str> = FAMILIES
        .iter()
        .filter(|f| f.dialect == Dialect::Dcgm)
        .map(|f| f.name)
        .collect();
    for name in &asked {
        assert!(
            listed.iter().any(|(n, ..)| n == name),
            "{name} is read from the store but not in docs/dcgm-exporter-counters.csv"
        );
    }
    for (name, kind, commented) in &listed {
        assert!(
            asked.contains(name),
            "{name} is in the counters file but fleetop does not read it"
        );
        assert!(matches!(*kind, "gauge" | "counter"), "{name}: {kind}");
        // A commented line is an older DCGM's name for a field listed live: dcgm-exporter refuses a name its
        // DCGM does not know, so only one of the two may be live.
        let live = listed.iter().filter(|(n, _, c)| n == name && !c).count();
        assert_eq!(live, usize::from(!commented), "{name} listed live once");
    }
}
