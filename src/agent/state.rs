//! The agent's memory between one-pass runs: the fabric counters of its previous `--once` run, kept in a small
//! file per boot (`fabric-counters.json` in `$XDG_STATE_HOME/fleetop`, else `/var/lib/fleetop`, else
//! `~/.local/state/fleetop`), so a run reports what rose since the previous one and over how long. A reboot
//! (another `/proc/sys/kernel/random/boot_id`) starts over; the file is written whole and renamed, so a
//! crash leaves the old state or the new one.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::telemetry::fabric::{saturated, IbCounters, IbPort, NvLinkErrors, NvLinks};
use crate::telemetry::fabric::{IbRise, NvLinkRise};
use crate::telemetry::NodeSample;

const FILE: &str = "fabric-counters.json";
/// Most bytes read back: 64 GPUs × 18 links and 256 ports of counters take well under this.
const MAX_STATE_BYTES: u64 = 1024 * 1024;
/// Most GPUs and ports kept, as the wire keeps them.
const MAX_GPUS: usize = crate::telemetry::wire::MAX_GPUS_PER_SAMPLE;
const MAX_PORTS: usize =
    crate::telemetry::fabric::MAX_HCAS * crate::telemetry::fabric::MAX_PORTS_PER_HCA;

/// What one run read, as kept for the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    boot_id: String,
    /// Unix milliseconds of the run.
    t: u64,
    #[serde(default)]
    gpus: Vec<SavedGpu>,
    #[serde(default)]
    ports: Vec<SavedPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SavedGpu {
    index: u32,
    uuid: Option<String>,
    links: NvLinks,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SavedPort {
    hca: String,
    port: u32,
    counters: IbCounters,
}

/// Where the state is kept, in order of preference; the first that takes the file is used.
fn candidates() -> Vec<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map(|p| p.join("fleetop"));
    let mut dirs: Vec<PathBuf> = xdg.into_iter().collect();
    if dirs.is_empty() {
        dirs.push(PathBuf::from("/var/lib/fleetop"));
    }
    dirs.extend(crate::dirs::state());
    dirs.dedup();
    dirs
}

/// This boot's id (`<proc_root>/sys/kernel/random/boot_id`); `None` when it cannot be read, and then no
/// state is kept (a rise across a reboot would be a reset counter read as a rise).
fn boot_id(proc_root: &Path) -> Option<String> {
    let text = read_bounded(&proc_root.join("sys/kernel/random/boot_id"), 64)?;
    let id = text.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then(|| id.to_string())
}

fn read_bounded(path: &Path, max: u64) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= max).then_some(text)
}

/// Fills `sample`'s rises from the previous run's counters and keeps this run's for the next. Without a
/// boot id, a writable directory or a previous run of this boot, rises stay unknown (`None`).
pub(crate) fn rises_since_last_run(sample: &mut NodeSample, proc_root: &Path) {
    let Some(boot) = boot_id(proc_root) else {
        return;
    };
    let now = saved_of(sample, boot);
    // A node without NVLink or InfiniBand counters has nothing to remember, and writes nothing.
    if now.gpus.is_empty() && now.ports.is_empty() {
        return;
    }
    let dirs = candidates();
    let previous = dirs.iter().find_map(|d| {
        let saved: Saved =
            serde_json::from_str(&read_bounded(&d.join(FILE), MAX_STATE_BYTES)?).ok()?;
        (saved.boot_id == now.boot_id).then_some(saved)
    });
    if let Some(before) = &previous {
        apply(sample, before, now.t);
    }
    if !dirs.iter().any(|d| write(d, &now).is_ok()) {
        crate::text::warn(
            "fleetop agent: no writable state directory; fabric counter rises are unknown",
        );
    }
}

/// The fabric counters of one reading, kept to judge what rose by a later one (the journal's window when
/// following; one-pass runs keep theirs in the state file).
pub(crate) struct Reading(Saved);

impl Reading {
    pub(crate) fn of(sample: &NodeSample) -> Reading {
        Reading(saved_of(sample, String::new()))
    }

    /// Unix ms of the reading.
    pub(crate) fn t(&self) -> u64 {
        self.0.t
    }

    /// Sets `sample`'s rises since this reading.
    pub(crate) fn rises_into(&self, sample: &mut NodeSample) {
        apply(sample, &self.0, sample.t);
    }
}

fn saved_of(sample: &NodeSample, boot_id: String) -> Saved {
    Saved {
        boot_id,
        t: sample.t,
        gpus: sample
            .gpus
            .iter()
            .filter_map(|g| {
                let mut links = g.nvlink.clone()?;
                links.rose = None;
                Some(SavedGpu {
                    index: g.index,
                    uuid: g.uuid.clone(),
                    links,
                })
            })
            .take(MAX_GPUS)
            .collect(),
        ports: sample
            .ib
            .iter()
            .flatten()
            .take(MAX_PORTS)
            .map(|p| SavedPort {
                hca: p.hca.clone(),
                port: p.port,
                counters: p.counters.clone(),
            })
            .collect(),
    }
}

/// Sets each GPU's and port's rise against `before`, read at `before.t`.
fn apply(sample: &mut NodeSample, before: &Saved, t: u64) {
    let Some(over_ms) = t.checked_sub(before.t).filter(|&ms| ms > 0) else {
        return;
    };
    for gpu in &mut sample.gpus {
        let Some(links) = &mut gpu.nvlink else {
            continue;
        };
        let Some(old) = before
            .gpus
            .iter()
            .find(|s| s.index == gpu.index && s.uuid == gpu.uuid)
        else {
            continue;
        };
        links.rose = Some(NvLinkRise {
            over_ms,
            links: (0..links.total.min(old.links.total))
                .filter_map(|link| link_rise(link, &old.links, links))
                .collect(),
        });
    }
    let old_ports: HashMap<(&str, u32), &IbCounters> = before
        .ports
        .iter()
        .map(|p| ((p.hca.as_str(), p.port), &p.counters))
        .collect();
    for port in sample.ib.iter_mut().flatten() {
        if let Some(old) = old_ports.get(&(port.hca.as_str(), port.port)) {
            port.rose = Some(IbRise {
                over_ms,
                counters: port_rise(old, port),
            });
        }
    }
}

/// A link's counters, `Some(0)` where the link is not listed among the errors (it was read, all zero).
fn link_counts(links: &NvLinks, link: u32) -> [Option<u64>; 4] {
    match links.errors.iter().find(|e| e.link == link) {
        Some(e) => e.counts.counters().map(|(_, v)| v),
        None => [Some(0); 4],
    }
}

/// What a link's counters rose by; `None` when none rose. A counter lower than before was reset (driver
/// reload): no rise.
fn link_rise(link: u32, before: &NvLinks, now: &NvLinks) -> Option<NvLinkErrors> {
    let mut rise = NvLinkErrors {
        link,
        ..Default::default()
    };
    for (i, (old, new)) in link_counts(before, link)
        .into_iter()
        .zip(link_counts(now, link))
        .enumerate()
    {
        if let Some(delta) = old
            .zip(new)
            .and_then(|(o, n)| n.checked_sub(o))
            .filter(|&d| d > 0)
        {
            rise.counts.set(i, delta);
        }
    }
    rise.counts.any().then_some(rise)
}

/// What a port's counters rose by: a counter saturated in either reading has no known rise.
fn port_rise(before: &IbCounters, now: &IbPort) -> IbCounters {
    let mut rise = IbCounters::default();
    for ((name, old), (_, new)) in before.all().into_iter().zip(now.counters.all()) {
        let (Some(old), Some(new)) = (old, new) else {
            continue;
        };
        if saturated(name, old) || saturated(name, new) {
            continue;
        }
        if let Some(delta) = new.checked_sub(old).filter(|&d| d > 0) {
            rise.set(name, delta);
        }
    }
    rise
}

/// Writes the state whole to a temporary file beside the target, synced, then renamed over it.
fn write(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(saved).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(FILE))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::fabric::NvLinkCounts;
    use crate::telemetry::GpuSample;

    fn sample(t: u64, replay: u64, symbol_error: u64) -> NodeSample {
        NodeSample {
            t,
            gpus: vec![GpuSample {
                index: 0,
                uuid: Some("GPU-a".into()),
                nvlink: Some(NvLinks::from_links(&[
                    (0, true, NvLinkErrors::default()),
                    (
                        1,
                        true,
                        NvLinkErrors {
                            link: 1,
                            counts: NvLinkCounts {
                                replay: Some(replay),
                                ..Default::default()
                            },
                        },
                    ),
                ])),
                ..Default::default()
            }],
            ib: Some(vec![IbPort {
                hca: "mlx5_0".into(),
                port: 1,
                counters: IbCounters {
                    symbol_error: Some(symbol_error),
                    link_downed: Some(255),
                    ..Default::default()
                },
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn rises_are_deltas_over_the_interval_and_saturated_or_reset_counters_are_none() {
        let before = saved_of(&sample(1_000, 2, 10), "b".into());
        let mut now = sample(61_000, 5, 14);
        apply(&mut now, &before, 61_000);
        let links = now.gpus[0].nvlink.as_ref().unwrap();
        let rise = links.rose.as_ref().unwrap();
        assert_eq!(rise.over_ms, 60_000);
        assert_eq!(rise.links.len(), 1);
        assert_eq!(
            (rise.links[0].link, rise.links[0].counts.replay),
            (1, Some(3))
        );
        let port = &now.ib.as_ref().unwrap()[0];
        let r = port.rose.as_ref().unwrap();
        assert_eq!(r.counters.symbol_error, Some(4));
        assert_eq!(r.counters.link_downed, None, "saturated: unknown, not 0");

        // A lower value is a reset (driver reload): no rise, and nothing from another GPU in that slot.
        let mut reset = sample(62_000, 1, 3);
        reset.gpus[0].uuid = Some("GPU-b".into());
        apply(&mut reset, &before, 62_000);
        assert_eq!(reset.gpus[0].nvlink.as_ref().unwrap().rose, None);
        assert_eq!(
            reset.ib.as_ref().unwrap()[0]
                .rose
                .as_ref()
                .unwrap()
                .counters,
            IbCounters::default()
        );
    }

    #[test]
    fn the_state_file_round_trips_is_bounded_and_reboots_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let saved = saved_of(&sample(1_000, 2, 10), "b".into());
        write(dir.path(), &saved).unwrap();
        let text = read_bounded(&dir.path().join(FILE), MAX_STATE_BYTES).unwrap();
        assert_eq!(serde_json::from_str::<Saved>(&text).unwrap(), saved);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::write(dir.path().join("big"), vec![b' '; 65]).unwrap();
        assert_eq!(read_bounded(&dir.path().join("big"), 64), None);

        let proc = tempfile::tempdir().unwrap();
        assert_eq!(boot_id(proc.path()), None, "no boot id, no state");
        let id = proc.path().join("sys/kernel/random");
        std::fs::create_dir_all(&id).unwrap();
        std::fs::write(id.join("boot_id"), "1f0c-ab\n").unwrap();
        assert_eq!(boot_id(proc.path()).as_deref(), Some("1f0c-ab"));
        std::fs::write(id.join("boot_id"), "../x\n").unwrap();
        assert_eq!(boot_id(proc.path()), None);
    }
}
