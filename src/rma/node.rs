//! What the node itself says for an RMA bundle, over SSH the way actions reach it (`Executor::on_node`):
//! `nvidia-smi -q -i BUS` and the kernel-log lines naming the GPU's PCI address. The bus id is checked before it
//! reaches a command; each answer is escaped and bounded; a command that fails is a member `failed`, with why.

use std::time::Duration;

use super::member::{Member, Status, MAX_KERNEL_BYTES, MAX_KERNEL_LINES, MAX_MEMBER_BYTES};
use crate::actions::exec::Executor;
use crate::inventory::{Inventory, NodeId};
use crate::transport::{Completed, Ending};

/// How long each command on the node may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// `00000000:18:00.0` (NVML's form) as itself and as the kernel names the device, `0000:18:00` (XID lines
/// leave out the function); `None` for anything else, so nothing from the node reaches a command unchecked.
pub(crate) fn pci_address(bus_id: &str) -> Option<(String, String)> {
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

pub(super) fn smi_query(inv: &Inventory, exec: &Executor, node: NodeId, bus: &str) -> Member {
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

pub(super) fn kernel_lines(
    inv: &Inventory,
    exec: &Executor,
    node: NodeId,
    address: &str,
) -> Member {
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
}
