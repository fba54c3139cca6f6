//! `fleetop rma NODE --gpu N`: one GPU's evidence for a return (RMA), gathered once: its identity from a look at
//! the node (serial, UUID, VBIOS, PCI bus id, driver), `nvidia-smi -q -i BUS` and the kernel-log lines naming
//! its PCI address from the node (over SSH, the way actions reach it), its history from the store and the
//! node's last audited repair validation. Each member is bounded and escaped here; one that could not be
//! collected is a verdict (`failed`, and why) in the manifest, never a silent gap. `bundle.rs` writes them.

pub mod bundle;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::actions::exec::Executor;
use crate::inventory::{Inventory, NodeId};
use crate::transport::{Completed, Ending};

/// Most bytes one member keeps.
pub const MAX_MEMBER_BYTES: usize = 256 * 1024;
/// Kernel-log lines kept: the last ones naming the GPU's PCI address, at most [`MAX_KERNEL_BYTES`].
pub const MAX_KERNEL_LINES: usize = 200;
pub const MAX_KERNEL_BYTES: usize = 64 * 1024;
/// Most history events kept, newest first.
pub const MAX_HISTORY_EVENTS: u32 = 1000;
/// How long each command on the node may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// The newest part of the audit log searched for the last validation.
const AUDIT_TAIL_BYTES: u64 = 64 * 1024 * 1024;

/// How a member came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Collected,
    /// Collected, but longer than its bound: its end is kept (or its newest part).
    Truncated,
    /// Looked for, and there is none (no kernel-log line, no validation): checked, nothing.
    None,
    /// Could not be collected; `detail` says why.
    Failed,
}

/// One file of the bundle, or why it is not there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub name: String,
    pub status: Status,
    /// Bytes in the bundle (0 for `none` and `failed`).
    pub bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip)]
    pub text: String,
}

impl Member {
    fn collected(name: &str, text: String, max: usize, detail: Option<String>) -> Member {
        let (text, cut) = tail_within(text, max);
        Member {
            name: name.into(),
            status: if cut {
                Status::Truncated
            } else {
                Status::Collected
            },
            bytes: text.len(),
            detail: if cut {
                Some(format!("cut to its last {} KiB", max / 1024))
            } else {
                detail
            },
            text,
        }
    }

    /// A member that is not there, and why; the operator's home directory (key files, the state directory)
    /// is said as `~`, so the bundle names nothing of the operator's environment.
    fn without(name: &str, status: Status, why: String) -> Member {
        let home = std::env::var("HOME").unwrap_or_default();
        let why = if home.len() > 1 {
            why.replace(home.trim_end_matches('/'), "~")
        } else {
            why
        };
        Member {
            name: name.into(),
            status,
            bytes: 0,
            detail: Some(crate::text::escape(&why).into_owned()),
            text: String::new(),
        }
    }
}

/// The GPU as the node reported it, every string already made inert where samples come in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub node: String,
    pub gpu: u32,
    pub name: Option<String>,
    pub serial: Option<String>,
    pub uuid: Option<String>,
    pub vbios: Option<String>,
    pub pci_bus_id: Option<String>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
    pub kernel: Option<String>,
}

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
            .and_then(pci_address)
            .ok_or_else(|| "the GPU reported no valid PCI bus id".to_string()),
        Err(why) => Err(format!("no identity ({why})")),
    };
    members.push(match &bus {
        Ok((full, _)) => smi_query(inv, exec, node, full),
        Err(why) => Member::without("nvidia-smi-q.txt", Status::Failed, why.clone()),
    });
    members.push(match &bus {
        Ok((_, short)) => kernel_lines(inv, exec, node, short),
        Err(why) => Member::without("kernel-log.txt", Status::Failed, why.clone()),
    });
    let board = identity
        .as_ref()
        .ok()
        .and_then(|id| id.uuid.clone().or(id.serial.clone()));
    members.push(history(audit_log, board.as_deref()));
    members.push(validation(audit_log, name));
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

/// `00000000:18:00.0` (NVML's form) as itself and as the kernel names the device, `0000:18:00` (XID lines
/// leave out the function); `None` for anything else, so nothing from the node reaches a command unchecked.
pub fn pci_address(bus_id: &str) -> Option<(String, String)> {
    let (domain, rest) = bus_id.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    let hex = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    let ok = hex(domain, 4..=8) && hex(bus, 2..=2) && hex(device, 2..=2) && hex(function, 1..=1);
    ok.then(|| {
        let short = format!("{}:{bus}:{device}", &domain[domain.len() - 4..]).to_ascii_lowercase();
        (bus_id.to_string(), short)
    })
}

/// `argv` quoted for the node's shell, as actions quote theirs.
fn quoted(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| crate::actions::plan::quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a node command that did not exit 0 ended, with its last stderr line.
fn failed(done: &Completed) -> String {
    let last = done
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let how = match &done.ending {
        Ending::Exited(code) => format!("exit status {code}"),
        Ending::Signalled(s) => format!("killed by signal {s}"),
        Ending::TimedOut(limit) => format!("no answer within {} s", limit.as_secs()),
        Ending::Dropped(why) => format!("connection lost ({why})"),
    };
    if last.is_empty() {
        how
    } else {
        format!("{how}: {}", crate::text::cut(last, 200))
    }
}

/// Whether the node's stdout reached the bound of what one SSH command keeps.
fn at_ssh_bound(done: &Completed) -> bool {
    done.stdout.len() as u64 >= crate::transport::ssh::oneshot::OUTPUT_KEEP
}

fn smi_query(inv: &Inventory, exec: &Executor, node: NodeId, bus: &str) -> Member {
    const NAME: &str = "nvidia-smi-q.txt";
    let command = quoted(&["nvidia-smi", "-q", "-i", bus]);
    match exec.on_node(inv, node, &command, COMMAND_LIMIT) {
        Ok(done) if done.ending == Ending::Exited(0) => {
            let mut m = Member::collected(
                NAME,
                crate::text::escape_lines(&done.stdout).into_owned(),
                MAX_MEMBER_BYTES,
                None,
            );
            if at_ssh_bound(&done) {
                m.status = Status::Truncated;
                m.detail = Some(format!(
                    "the node printed more than {} KiB: its first {} KiB are kept",
                    crate::transport::ssh::oneshot::OUTPUT_KEEP / 1024,
                    crate::transport::ssh::oneshot::OUTPUT_KEEP / 1024
                ));
            }
            m
        }
        Ok(done) => Member::without(
            NAME,
            Status::Failed,
            format!("nvidia-smi -q: {}", failed(&done)),
        ),
        Err(e) => Member::without(NAME, Status::Failed, e),
    }
}

/// Reads the node's kernel log (`dmesg`, else `journalctl -k` for this boot, else the file the agent is told
/// to read instead, `$FLEETOP_KERNEL_LOG`) and keeps its last `$2` lines naming `$1`; exit 3 when none of them
/// can be read.
const KERNEL_SCRIPT: &str = r#"log() {
  if dmesg 2>/dev/null; then return 0; fi
  if journalctl -k -b -q --no-pager 2>/dev/null; then return 0; fi
  [ -n "$FLEETOP_KERNEL_LOG" ] && cat -- "$FLEETOP_KERNEL_LOG"
}
out=$(log) || { echo "cannot read the kernel log (dmesg, journalctl -k)" >&2; exit 3; }
printf '%s\n' "$out" | grep -i -F -e "$1" | tail -n "$2"
exit 0"#;

fn kernel_lines(inv: &Inventory, exec: &Executor, node: NodeId, address: &str) -> Member {
    const NAME: &str = "kernel-log.txt";
    let lines = MAX_KERNEL_LINES.to_string();
    let command = quoted(&["sh", "-c", KERNEL_SCRIPT, "sh", address, &lines]);
    match exec.on_node(inv, node, &command, COMMAND_LIMIT) {
        Ok(done) if done.ending == Ending::Exited(0) && done.stdout.trim().is_empty() => {
            Member::without(
                NAME,
                Status::None,
                format!("no kernel-log line names PCI {address}"),
            )
        }
        Ok(done) if done.ending == Ending::Exited(0) => Member::collected(
            NAME,
            crate::text::escape_lines(&done.stdout).into_owned(),
            MAX_KERNEL_BYTES,
            Some(format!("the last lines naming PCI {address}")),
        ),
        Ok(done) => Member::without(NAME, Status::Failed, failed(&done)),
        Err(e) => Member::without(NAME, Status::Failed, e),
    }
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
        .and_then(|s| s.history_bounded(board, 0, MAX_HISTORY_EVENTS))
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
fn validation(audit_log: &Path, node: &str) -> Member {
    use crate::actions::audit::Record;
    const NAME: &str = "validation.txt";
    let text = crate::actions::audit::tail(audit_log, AUDIT_TAIL_BYTES).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .filter(|l| l.contains("\"repair-validate\""))
        .find_map(|l| match serde_json::from_str(l) {
            Ok(Record::Outcome(o))
                if o.action == "repair-validate" && o.node == node && !o.demo =>
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

/// `text` cut to its last `max` bytes at a line start (a char boundary at worst); whether it was cut.
fn tail_within(text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if let Some(nl) = text[start..].find('\n') {
        start += nl + 1;
    }
    (text[start..].to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_bus_id_reaches_a_command() {
        assert_eq!(
            pci_address("00000000:1B:00.0"),
            Some(("00000000:1B:00.0".into(), "0000:1b:00".into()))
        );
        assert_eq!(pci_address("0000:02:00.0").unwrap().1, "0000:02:00");
        for bad in [
            "",
            "00000000:1B:00",
            "0000:1B:00.0; rm -rf /",
            "00000000:1B:0G.0",
            "x:1B:00.0",
        ] {
            assert_eq!(pci_address(bad), None, "{bad:?}");
        }
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
