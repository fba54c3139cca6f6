//! The audit log's records: practice kept apart, a site per record, acknowledgements by time.

use super::*;

fn ack(node: &str, reason: &str) -> Record {
    Record::Ack(Ack {
        time: now(),
        operator: "ann".into(),
        node: node.into(),
        reason: reason.into(),
        xids: vec!["GPU 5 XID 79 ×1".into()],
        seen: vec![SeenXid {
            gpu: 5,
            code: 79,
            count: 1,
            last_ms: 1_700_000_000_000,
        }],
        site: None,
        inventory: None,
        demo: false,
    })
}

fn at(site: Option<&str>, inventory: Option<&str>) -> crate::store::Scope<'static> {
    // Leaked: a test's few scopes live as long as the test binary.
    let keep = |s: Option<&str>| s.map(|s| &*Box::leak(s.to_string().into_boxed_str()));
    crate::store::Scope::new(keep(site), keep(inventory))
}

#[test]
fn practice_records_stay_apart_from_a_real_fleet_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let entry = Entry {
        operator: "ann",
        action: "drain",
        node: "c001n1",
        reason: Some("practice"),
        backend: "slurm",
        command: "scontrol update NodeName=c001n1 State=DRAIN",
    };
    let mut demo = AuditLog::open(&path).unwrap().practice(true);
    demo.write(&ack("c001n1", "practice ack")).unwrap();
    demo.write(&entry.intent("demo-1")).unwrap();
    let mut real = AuditLog::open(&path).unwrap();
    real.write(&ack("c001n2", "RMA 7")).unwrap();
    // The history store beside the log indexes the real record only.
    let store = crate::store::Store::open(&dir.path().join("fleet.sqlite")).unwrap();
    let indexed = store.history("c001n2", 0, at(None, None)).unwrap();
    assert_eq!(indexed.len(), 1, "{indexed:?}");
    assert!(indexed[0].detail.contains("RMA 7"), "{indexed:?}");
    assert!(store
        .history("c001n1", 0, at(None, None))
        .unwrap()
        .is_empty());

    let seen_by_real = scan(&path, false);
    assert_eq!(seen_by_real.acks.len(), 1, "{seen_by_real:?}");
    assert_eq!(seen_by_real.acks[0].node, "c001n2");
    assert!(seen_by_real.unfinished.is_empty(), "{seen_by_real:?}");
    let seen_by_demo = scan(&path, true);
    assert_eq!(seen_by_demo.acks.len(), 1);
    assert_eq!(seen_by_demo.acks[0].node, "c001n1");
    assert!(seen_by_demo.acks[0].demo);
    assert_eq!(seen_by_demo.unfinished.len(), 1);
}

/// A log opened under a `[[context]]` marks every record with it, and the store beside it keeps the site;
/// the last acknowledgement of each node is kept per site.
#[test]
fn records_written_under_a_context_carry_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut east = AuditLog::open(&path)
        .unwrap()
        .in_scope(at(Some("east"), None));
    east.write(&ack("n1", "east's RMA")).unwrap();
    let mut west = AuditLog::open(&path)
        .unwrap()
        .in_scope(at(Some("west"), None));
    west.write(&ack("n1", "west's RMA")).unwrap();
    let mut plain = AuditLog::open(&path).unwrap();
    plain.write(&ack("n2", "no context")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(r#""site":"east""#).count(), 1, "{text}");
    assert_eq!(text.matches(r#""site""#).count(), 2, "{text}");
    let scan = scan(&path, false);
    let acks: Vec<(Option<&str>, &str)> = scan
        .acks
        .iter()
        .map(|a| (a.site.as_deref(), a.reason.as_str()))
        .collect();
    assert_eq!(
        acks,
        [
            (Some("east"), "east's RMA"),
            (Some("west"), "west's RMA"),
            (None, "no context")
        ]
    );
    assert_eq!(scan.siteless, 1);
    let store = crate::store::Store::open(&dir.path().join("fleet.sqlite")).unwrap();
    let of = |site| store.history("n1", 0, at(site, None)).unwrap();
    assert_eq!(of(Some("west")).len(), 1);
    assert!(of(Some("west"))[0].detail.contains("west's RMA"));
    assert!(of(None).is_empty());
    let east = at(Some("east"), None);
    assert!(east.counts(None, None) && east.counts(Some("east"), None));
    assert!(!east.counts(Some("west"), None) && !at(None, None).counts(Some("east"), None));
}

/// A log opened with no context marks what it writes with its inventory file: a reader under a context counts
/// it only if that is its own inventory file, a reader with no context only with the same file; a record with
/// neither (written before records carried a site) counts for every reader, and is the only kind warned of.
#[test]
fn records_written_with_no_context_carry_their_inventory_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut plain = AuditLog::open(&path)
        .unwrap()
        .in_scope(at(None, Some("/etc/fleetop/west.toml")));
    plain.write(&ack("n1", "west's file")).unwrap();
    let mut sited = AuditLog::open(&path)
        .unwrap()
        .in_scope(at(Some("east"), Some("/etc/fleetop/east.toml")));
    sited.write(&ack("n2", "east")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches(r#""inventory":"/etc/fleetop/west.toml""#)
            .count(),
        1,
        "a record with a site needs no mark: {text}"
    );
    assert_eq!(text.matches(r#""inventory""#).count(), 1, "{text}");
    let scan = scan(&path, false);
    assert_eq!(scan.siteless, 0, "{scan:?}");
    assert_eq!(scan.acks.len(), 2);

    let west_file = Some("/etc/fleetop/west.toml");
    let (west, east) = (
        at(Some("west"), west_file),
        at(Some("east"), Some("/etc/fleetop/east.toml")),
    );
    assert!(west.counts(None, west_file) && at(None, west_file).counts(None, west_file));
    assert!(!east.counts(None, west_file) && !at(None, None).counts(None, west_file));
    assert!(!at(None, Some("/etc/fleetop/east.toml")).counts(None, west_file));
    // The store's rows follow the same rule.
    let store = crate::store::Store::open(&dir.path().join("fleet.sqlite")).unwrap();
    let of = |scope| store.history("n1", 0, scope).unwrap().len();
    assert_eq!((of(west), of(at(None, west_file))), (1, 1));
    assert_eq!((of(east), of(at(None, None))), (0, 0));
    assert_eq!(
        store.history("n1", 0, west).unwrap()[0]
            .inventory
            .as_deref(),
        west_file
    );
}

#[test]
fn an_acknowledgement_written_by_count_covers_nothing() {
    let old = r#"{"record":"ack","time":"t","operator":"ann","node":"c042n3","reason":"RMA open","xids":["GPU 5 XID 79 ×1"]}"#;
    let Ok(Record::Ack(a)) = serde_json::from_str::<Record>(old) else {
        panic!("an old record still reads");
    };
    assert!(a.seen.is_empty() && !a.demo, "{a:?}");
}

/// Under `--context all` an acknowledgement goes to its node's own site's log, by the site's own name for the
/// node and marked with the site, so `--context SITE` reads it back.
#[test]
fn an_acknowledgement_across_sites_goes_to_its_own_sites_log() {
    use crate::inventory::Inventory;
    let dir = tempfile::tempdir().unwrap();
    let site = |name: &str| {
        let text = format!(
            "[actions]\naudit_log = \"{}/{name}.jsonl\"\n[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n",
            dir.path().display()
        );
        let inv = Inventory::parse(&format!("{name}.toml"), &text).unwrap();
        (name.to_string(), std::sync::Arc::new(inv))
    };
    let merged = Inventory::merge(&[site("east"), site("west")]).unwrap();
    let west_n1 = merged.find_node("west/n1").unwrap();
    let (mut log, name) = crate::actions::run::open_audit_of(&merged, west_n1).unwrap();
    assert_eq!(name, "n1");
    log.write(&ack(&name, "RMA 9")).unwrap();
    let written = scan(&dir.path().join("west.jsonl"), false);
    assert_eq!(written.acks.len(), 1);
    assert_eq!(written.acks[0].site.as_deref(), Some("west"));
    assert_eq!(written.acks[0].node, "n1");
    assert!(!dir.path().join("east.jsonl").exists());
}

/// An unfinished intent's fields come from a file anyone with write access could have edited (a forged `site`
/// too): the warning the TUI's failure box shows as it is quotes them escaped and cut.
#[test]
fn an_unfinished_intent_s_forged_fields_are_escaped_and_cut_in_its_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let line = serde_json::json!({
        "record": "intent", "id": "1", "time": "2026-12-06T20:00:00.000Z", "operator": "ann\u{1b}[2J",
        "action": "reset", "node": "n1\u{7}", "backend": "ssh", "command": "nvidia-smi -r",
        "pid": 1, "site": format!("east\u{1b}]0;owned\u{7}{}", "x".repeat(100_000)),
    });
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let warnings = scan(&path, false).warnings(&path);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let shown = &warnings[0];
    assert!(!shown.chars().any(crate::text::is_dangerous), "{shown:?}");
    assert!(shown.contains("east"), "{shown}");
    assert!(shown.len() < 2_000, "{} bytes", shown.len());
}
