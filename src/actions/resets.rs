//! Reads back from the audit log the last successful GPU reset and node reboot per node, so XIDs older than
//! them are judged as history (`telemetry::xid_age`). Only `outcome` records with `ok: true` count: a reset
//! that failed, or whose outcome was never written, resets nothing.

use std::path::Path;

use serde::Deserialize;

use super::run::Origin;
use crate::fleet::AuditedReset;
use crate::inventory::Inventory;

/// The fields of an outcome record this reader needs; other records and fields are ignored, so it keeps
/// reading logs written by other versions.
#[derive(Deserialize)]
struct Line {
    record: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    node: String,
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    time: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    inventory: Option<String>,
}

/// The most of the log's end that is read: the newest resets are at the end, and the TUI reads it on the UI
/// thread after each reset or reboot.
const MAX_READ: u64 = 64 * 1024 * 1024;

/// Every successful `reset` and `reboot` outcome in the last 64 MiB of the log at `path` (a missing or
/// unreadable log has none; lines that are not records are skipped, as the audit scan reports them), of the same
/// mode: practice (`--demo`) records only for the demo fleet, real ones only for a real fleet, which shares node
/// names with the demo. Each with the site (or inventory file) its record carries.
fn read_log(path: &Path, simulated: bool) -> Vec<(Origin, AuditedReset)> {
    let Some(text) = super::audit::tail(path, MAX_READ) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(parse)
        .filter(|(demo, _, _)| *demo == simulated)
        .map(|(_, origin, reset)| (origin, reset))
        .collect()
}

/// [`read_log`]'s resets that `scope` counts (`SiteLog::node_names`' rule), by the names the log gives.
pub fn read(path: &Path, scope: crate::store::Scope, simulated: bool) -> Vec<AuditedReset> {
    read_log(path, simulated)
        .into_iter()
        .filter(|((site, inventory), _)| scope.counts(site.as_deref(), inventory.as_deref()))
        .map(|(_, reset)| reset)
        .collect()
}

/// [`read_log`] from every audit log of `inv`'s nodes (each site's, under `--context all`), the resets named as
/// `inv` names their nodes, each counted for the site its record names (`SiteLog::node_names`).
pub fn read_fleet(inv: &Inventory) -> Vec<AuditedReset> {
    super::run::audit_logs(inv)
        .iter()
        .flat_map(|log| {
            read_log(&log.path, inv.simulated)
                .into_iter()
                .flat_map(|((site, inventory), reset)| {
                    log.node_names((site.as_deref(), inventory.as_deref()), &reset.node)
                        .into_iter()
                        .map(move |node| AuditedReset {
                            node,
                            ..reset.clone()
                        })
                })
        })
        .collect()
}

fn parse(line: &str) -> Option<(bool, Origin, AuditedReset)> {
    let l: Line = serde_json::from_str(line).ok()?;
    // Slurm's reboot outcome is ok once `scontrol reboot ASAP` is queued, long before the node rebooted: it
    // is no evidence that anything was reset.
    if l.action == "reboot" && l.backend == "slurm" {
        return None;
    }
    let reboot = match l.action.as_str() {
        "reboot" => true,
        "reset" => false,
        _ => return None,
    };
    if l.record != "outcome" || !l.ok || l.node.is_empty() {
        return None;
    }
    let at = humantime::parse_rfc3339_weak(&l.time).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    Some((
        l.demo,
        (l.site, l.inventory),
        AuditedReset {
            node: l.node,
            gpu: if reboot { None } else { one_gpu(&l.command) },
            reboot,
            at_ms,
        },
    ))
}

/// The GPU of `nvidia-smi -r -i N` (the reset action's command); `None` for `nvidia-smi -r`, every GPU.
fn one_gpu(command: &str) -> Option<u32> {
    let words: Vec<&str> = command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
        .collect();
    let smi = words.iter().position(|w| w.ends_with("nvidia-smi"))?;
    let rest = &words[smi..];
    let i = rest.iter().position(|w| *w == "-i" || *w == "--id")?;
    rest.get(i + 1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successful_resets_and_reboots_only() {
        let log = [
            r#"{"record":"intent","id":"1","time":"2026-12-06T18:00:00.000Z","operator":"ann","action":"reset","node":"c01n1","reason":null,"backend":"ssh","command":"ssh c01n1 -- nvidia-smi -r -i 3","pid":1}"#,
            r#"{"record":"outcome","id":"1","time":"2026-12-06T18:00:05.000Z","operator":"ann","action":"reset","node":"c01n1","backend":"ssh","command":"ssh c01n1 -- nvidia-smi -r -i 3","ok":true,"exit_status":0,"duration_ms":5000,"detail":""}"#,
            r#"{"record":"outcome","id":"2","time":"2026-12-06T19:00:00.000Z","operator":"ann","action":"reset","node":"c01n2","backend":"ssh","command":"nvidia-smi -r","ok":false,"exit_status":1,"duration_ms":5000,"detail":"busy"}"#,
            r#"{"record":"outcome","id":"3","time":"2026-12-06T20:00:00.000Z","operator":"ann","action":"reboot","node":"c01n3","backend":"ssh","command":"systemctl reboot","ok":true,"exit_status":0,"duration_ms":5000,"detail":""}"#,
            r#"{"record":"outcome","id":"4","time":"2026-12-06T20:00:00.000Z","operator":"ann","action":"drain","node":"c01n3","backend":"slurm","command":"scontrol","ok":true,"exit_status":0,"duration_ms":5,"detail":""}"#,
            // A practice reboot (`--demo`) of a node whose name the real fleet shares, and a Slurm reboot that was
            // only queued: neither is evidence for a real node.
            r#"{"record":"outcome","id":"5","time":"2026-12-06T21:00:00.000Z","operator":"ann","action":"reboot","node":"c01n1","backend":"ssh","command":"systemctl reboot","ok":true,"exit_status":0,"duration_ms":5000,"detail":"","demo":true}"#,
            r#"{"record":"outcome","id":"6","time":"2026-12-06T21:00:00.000Z","operator":"ann","action":"reboot","node":"c01n2","backend":"slurm","command":"scontrol reboot ASAP","ok":true,"exit_status":0,"duration_ms":5,"detail":""}"#,
            "torn {",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, log.join("\n")).unwrap();
        let found = read(&path, crate::store::Scope::default(), false);
        assert_eq!(
            read(&path, crate::store::Scope::default(), true),
            [AuditedReset {
                node: "c01n1".into(),
                gpu: None,
                reboot: true,
                at_ms: 1_796_590_800_000,
            }],
            "the demo fleet sees only its practice reboot"
        );
        assert_eq!(
            found,
            [
                AuditedReset {
                    node: "c01n1".into(),
                    gpu: Some(3),
                    reboot: false,
                    at_ms: 1_796_580_005_000,
                },
                AuditedReset {
                    node: "c01n3".into(),
                    gpu: None,
                    reboot: true,
                    at_ms: 1_796_587_200_000,
                },
            ]
        );
        assert_eq!(one_gpu("nvidia-smi -r"), None);
        assert_eq!(one_gpu("'nvidia-smi' '-r' '-i' '7'"), Some(7));
    }
}

#[cfg(test)]
mod site_tests {
    use super::*;

    fn reboot(node: &str, site: Option<&str>) -> String {
        let site = site
            .map(|s| format!(r#","site":"{s}""#))
            .unwrap_or_default();
        format!(
            r#"{{"record":"outcome","id":"1","time":"2026-12-06T20:00:00.000Z","operator":"ann","action":"reboot","node":"{node}","backend":"ssh","command":"systemctl reboot","ok":true,"exit_status":0,"duration_ms":5000,"detail":""{site}}}"#
        )
    }

    /// Under `--context all` each site's own log is read, its nodes named with their site. In a log two sites
    /// share, a record that names its site counts for that site's node only; one without a site (written
    /// before records carried it) for each site's node of that name, as each site read alone counts it.
    #[test]
    fn a_record_counts_for_its_own_site_and_one_without_a_site_for_every_site() {
        let dir = tempfile::tempdir().unwrap();
        let site = |name: &str, nodes: &str, log: &str| {
            let text = format!(
                "[actions]\naudit_log = \"{}/{log}\"\n[[cabinet]]\nname = \"c1\"\nnodes = \"{nodes}\"\n",
                dir.path().display()
            );
            let mut inv = Inventory::parse(&format!("{name}.toml"), &text).unwrap();
            inv.site = Some(name.to_string());
            (name.to_string(), std::sync::Arc::new(inv))
        };
        // east and west share one log; north has its own.
        let sites = [
            site("east", "n[1-2]", "shared.jsonl"),
            site("west", "n[2-4]", "shared.jsonl"),
            site("north", "n1", "north.jsonl"),
        ];
        let merged = Inventory::merge(&sites).unwrap();
        let shared = [
            reboot("n1", None),
            reboot("n3", None),
            reboot("n2", Some("east")),
            reboot("n4", Some("east")),
            reboot("n1", Some("north")),
        ]
        .join("\n");
        std::fs::write(dir.path().join("shared.jsonl"), shared).unwrap();
        std::fs::write(dir.path().join("north.jsonl"), reboot("n1", None)).unwrap();
        let mut nodes: Vec<String> = read_fleet(&merged).into_iter().map(|r| r.node).collect();
        nodes.sort();
        // east's n2 alone was rebooted (not west's); west has no n1 and east no n4; north's record in the
        // shared log is north's, but north's nodes are in its own log.
        assert_eq!(nodes, ["east/n1", "east/n2", "north/n1", "west/n3"]);
        // Each site read alone counts the same records for its own nodes.
        let alone = |i: usize| -> Vec<String> {
            let (_, inv) = &sites[i];
            read_fleet(inv).into_iter().map(|r| r.node).collect()
        };
        assert_eq!(alone(0), ["n1", "n3", "n2", "n4"]);
        assert_eq!(alone(1), ["n1", "n3"]);
        // With no context, only the records that carry no site.
        let (_, east) = &sites[0];
        let mut plain = Inventory::clone(east);
        plain.site = None;
        let own: Vec<String> = read_fleet(&plain).into_iter().map(|r| r.node).collect();
        assert_eq!(own, ["n1", "n3"]);
    }
}
