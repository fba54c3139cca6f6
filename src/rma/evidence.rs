//! What an RMA bundle holds and how each member is gathered and bounded: identity, `nvidia-smi -q`, kernel
//! log, history, validation.
use std::path::Path;

use crate::actions::exec::Executor;
use crate::inventory::{Inventory, NodeId};

use super::member::{
    Identity, Member, Status, AUDIT_TAIL_BYTES, MAX_HISTORY_EVENTS, MAX_MEMBER_BYTES,
};
use super::node;

/// Everything gathered for GPU `gpu` of node `node`, in bundle order (the manifest comes last, from
/// `bundle.rs`); `audit_log` is the inventory's, with the history store beside it.
pub fn collect(
    inv: &Inventory,
    exec: &Executor,
    node: NodeId,
    gpu: u32,
    audit_log: &Path,
) -> (Option<Identity>, Vec<Member>) {
    let name = inv.nodes.get(node).map_or("", |n| n.name.as_str());
    let identity = identify(inv, node, gpu);
    let mut members = vec![match &identity {
        Ok(id) => Member::collected(
            "identity.json",
            serde_json::to_string_pretty(id).unwrap_or_default() + "\n",
            MAX_MEMBER_BYTES,
            None,
        ),
        Err(why) => Member::without("identity.json", Status::Failed, why.clone()),
    }];
    let bus = match &identity {
        Ok(id) => id
            .pci_bus_id
            .as_deref()
            .and_then(node::pci_address)
            .ok_or_else(|| "the GPU reported no valid PCI bus id".to_string()),
        Err(why) => Err(format!("no identity ({why})")),
    };
    members.push(match &bus {
        Ok((full, _)) => node::smi_query(inv, exec, node, full),
        Err(why) => Member::without("nvidia-smi-q.txt", Status::Failed, why.clone()),
    });
    members.push(match &bus {
        Ok((_, short)) => node::kernel_lines(inv, exec, node, short),
        Err(why) => Member::without("kernel-log.txt", Status::Failed, why.clone()),
    });
    let board = identity
        .as_ref()
        .ok()
        .and_then(|id| id.uuid.clone().or(id.serial.clone()));
    members.push(history(audit_log, board.as_deref()));
    members.push(validation(audit_log, crate::actions::run::scope(inv), name));
    (identity.ok(), members)
}

/// The GPU's identity from one look at the node.
fn identify(inv: &Inventory, node: NodeId, gpu: u32) -> Result<Identity, String> {
    let (state, pending) = crate::snapshot::look_once(inv, &[node])?;
    let view = state.node_view(0, std::time::Instant::now(), pending);
    let sample = view.sample.ok_or_else(|| {
        format!(
            "the node gave no sample ({})",
            view.error.as_deref().unwrap_or(view.state.as_str())
        )
    })?;
    let g = sample.gpus.iter().find(|g| g.index == gpu).ok_or_else(|| {
        let listed: Vec<String> = sample.gpus.iter().map(|g| g.index.to_string()).collect();
        format!(
            "the node lists no GPU {gpu} (it lists {})",
            if listed.is_empty() {
                "none".to_string()
            } else {
                listed.join(", ")
            }
        )
    })?;
    Ok(Identity {
        node: view.name.to_string(),
        gpu,
        name: g.name.clone(),
        serial: g.serial.clone(),
        uuid: g.uuid.clone(),
        vbios: g.vbios.clone(),
        pci_bus_id: g.pci_bus_id.clone(),
        driver: view.hello.and_then(|h| h.driver.clone()),
        cuda: view.hello.and_then(|h| h.cuda.clone()),
        kernel: view.hello.and_then(|h| h.kernel.clone()),
    })
}

/// The GPU's events in the store beside `audit_log`, wherever it was, newest first, texts escaped.
fn history(audit_log: &Path, board: Option<&str>) -> Member {
    const NAME: &str = "history.json";
    let Some(board) = board else {
        return Member::without(
            NAME,
            Status::Failed,
            "the GPU's UUID and serial are unknown".into(),
        );
    };
    let path = crate::store::beside(audit_log);
    if !path.exists() {
        return Member::without(
            NAME,
            Status::None,
            "no history store beside the audit log yet".into(),
        );
    }
    let events = match crate::store::Store::open(&path)
        .and_then(|s| s.history_bounded(board, 0, MAX_HISTORY_EVENTS, Default::default()))
    {
        Ok(events) => events,
        Err(e) => return Member::without(NAME, Status::Failed, e),
    };
    let mut events: Vec<crate::store::Event> = events
        .into_iter()
        .map(|mut e| {
            for text in [&mut e.node, &mut e.kind, &mut e.detail] {
                *text = crate::text::escape(text).into_owned();
            }
            e
        })
        .collect();
    // The newest events are kept when the list is too long for the member's bound.
    loop {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "schema": "fleetop.rma.history/1",
            "gpu": board,
            "events": events,
        }))
        .unwrap_or_default();
        if text.len() <= MAX_MEMBER_BYTES || events.is_empty() {
            return Member::collected(NAME, text + "\n", MAX_MEMBER_BYTES, None);
        }
        events.truncate(events.len() / 2);
    }
}

/// The node's last audited repair validation (its command, how it ended and its output).
fn validation(audit_log: &Path, scope: crate::store::Scope, node: &str) -> Member {
    use crate::actions::audit::Record;
    const NAME: &str = "validation.txt";
    let text = crate::actions::audit::tail(audit_log, AUDIT_TAIL_BYTES).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .filter(|l| l.contains("\"repair-validate\""))
        .find_map(|l| match serde_json::from_str(l) {
            Ok(Record::Outcome(o))
                if o.action == "repair-validate"
                    && o.node == node
                    && !o.demo
                    && scope.counts(o.site.as_deref(), o.inventory.as_deref()) =>
            {
                Some(o)
            }
            _ => None,
        });
    match last {
        Some(o) => Member::collected(
            NAME,
            crate::text::escape_lines(&format!(
                "time: {}\ncommand: {}\nresult: {}{}\n\n{}\n",
                o.time,
                o.command,
                if o.ok { "passed" } else { "failed" },
                o.exit_status
                    .map(|s| format!(" (exit {s})"))
                    .unwrap_or_default(),
                o.detail
            ))
            .into_owned(),
            MAX_MEMBER_BYTES,
            None,
        ),
        None => Member::without(
            NAME,
            Status::None,
            format!("no repair validation of {node} in the audit log"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rma::member::tail_within;

    #[test]
    fn the_node_s_last_audited_validation_is_kept_escaped() {
        use crate::actions::audit::{AuditLog, Outcome, Record};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        assert_eq!(
            validation(&log, Default::default(), "n1").status,
            Status::None
        );
        let outcome = |node: &str, detail: &str, demo: bool| {
            Record::Outcome(Outcome {
                id: "1".into(),
                time: "2026-12-06T03:12:00Z".into(),
                operator: "ana".into(),
                action: "repair-validate".into(),
                node: node.into(),
                backend: "ssh".into(),
                command: "dcgmi diag -r 1".into(),
                ok: false,
                exit_status: Some(226),
                duration_ms: 1,
                detail: detail.into(),
                site: None,
                inventory: None,
                demo,
            })
        };
        let mut audit = AuditLog::open(&log).unwrap();
        audit
            .write(&outcome("n1", "Memory Fail\u{1b}[2J", false))
            .unwrap();
        audit.write(&outcome("n2", "other node", false)).unwrap();
        audit.write(&outcome("n1", "practice", true)).unwrap();
        let m = validation(&log, Default::default(), "n1");
        assert_eq!(m.status, Status::Collected);
        assert!(m.text.contains("result: failed (exit 226)"), "{}", m.text);
        assert!(
            m.text.contains("Memory Fail") && !m.text.contains('\u{1b}'),
            "{}",
            m.text
        );
    }

    #[test]
    fn a_long_member_keeps_its_end_from_a_line_start() {
        let text = format!("{}\nlast line\n", "é".repeat(100));
        let (kept, cut) = tail_within(text.clone(), 15);
        assert!(cut);
        assert_eq!(kept, "last line\n");
        assert_eq!(tail_within(text.clone(), 1000), (text, false));
    }
}
