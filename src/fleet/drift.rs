//! Drift: nodes whose agent, driver, GPU model, VBIOS, GPU count or HCA firmware differ from the inventory's
//! `[expect]` (a GPU count from the node's own count in the inventory first), or where it is silent from what most
//! of the fleet runs (the agent from the jump host's own build).
//! Tallies are kept as nodes report, so a node's reasons cost a lookup, not a pass over the fleet.

use std::collections::HashMap;

use crate::inventory::{Expect, NodeId};
use crate::telemetry::delta::NodeDelta;
use crate::telemetry::wire::AgentHello;
use crate::telemetry::{GpuErrorKind, GpuSample, NodeSample, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    Agent,
    Driver,
    GpuModel,
    Vbios,
    GpuCount,
    IbPorts,
    IbRate,
    /// The InfiniBand HCAs' firmware (sysfs `fw_ver`): a port on other firmware than its peers is a known cause
    /// of link flaps and slow collectives, and NVIDIA's release notes pair firmware with drivers.
    HcaFirmware,
}

impl Aspect {
    pub const ALL: [Aspect; 8] = [
        Aspect::Agent,
        Aspect::Driver,
        Aspect::GpuModel,
        Aspect::Vbios,
        Aspect::GpuCount,
        Aspect::IbPorts,
        Aspect::IbRate,
        Aspect::HcaFirmware,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Aspect::Agent => "agent",
            Aspect::Driver => "driver",
            Aspect::GpuModel => "GPU model",
            Aspect::Vbios => "VBIOS",
            Aspect::GpuCount => "GPUs",
            Aspect::IbPorts => "IB ports",
            Aspect::IbRate => "IB rate",
            Aspect::HcaFirmware => "HCA firmware",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a node without the agent shows as its agent.
pub(crate) const NO_AGENT: &str = "none (nvidia-smi)";

/// What one node runs, as far as it said (`None`: not known).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity([Option<String>; Aspect::ALL.len()]);

impl Identity {
    pub fn get(&self, a: Aspect) -> Option<&str> {
        self.0[a.index()].as_deref()
    }

    /// The agent and driver, from how the node's stream started.
    pub(crate) fn streaming(&mut self, source: Source, hello: Option<&AgentHello>) {
        self.0[Aspect::Agent.index()] = match (source, hello) {
            (Source::NvidiaSmi, _) => Some(NO_AGENT.into()),
            (_, Some(h)) => Some(agent_value(&h.version, h.build.as_deref())),
            (_, None) => None,
        };
        self.0[Aspect::Driver.index()] = hello.and_then(|h| h.driver.clone());
    }

    /// This identity with a sample's GPU and InfiniBand values, or `None` when they are the same (the usual
    /// case, checked without copying the identity).
    pub(crate) fn with_sample(&self, sample: &NodeSample) -> Option<Identity> {
        if self.holds(sample) {
            return None;
        }
        let mut fresh = Identity::default();
        fresh.sampled(sample);
        let aspects = [
            Aspect::GpuModel,
            Aspect::Vbios,
            Aspect::GpuCount,
            Aspect::IbPorts,
            Aspect::IbRate,
            Aspect::HcaFirmware,
        ];
        if aspects.iter().all(|&a| self.get(a) == fresh.get(a)) {
            return None;
        }
        let mut next = self.clone();
        for a in aspects {
            next.0[a.index()] = fresh.0[a.index()].take();
        }
        Some(next)
    }

    /// Whether the sample says what this identity already holds, checked without allocating for the usual
    /// node (one GPU model, one VBIOS); a node of several falls through to the full comparison.
    fn holds(&self, sample: &NodeSample) -> bool {
        let reporting = || sample.gpus.iter().filter(|g| g.reported_values());
        let single = |a: Aspect, of: &dyn Fn(&crate::telemetry::GpuSample) -> Option<&str>| {
            let held = self.get(a);
            held.is_some_and(|h| !h.contains(" + ")) && reporting().all(|g| of(g) == held)
        };
        let count_is = |a: Aspect, n: usize| self.get(a).and_then(|v| v.parse().ok()) == Some(n);
        let installed = sample.gpus.iter().filter(|g| installed(g)).count();
        let ib = sample.ib.as_deref();
        let ib_ports = || ib.into_iter().flatten().filter(|p| p.is_infiniband());
        let slowest = ib_ports()
            .filter(|p| p.is_up())
            .filter_map(|p| p.rate_gbps)
            .min_by(f64::total_cmp);
        let rate_held = self.get(Aspect::IbRate).and_then(|v| v.parse::<f64>().ok());
        let fw_held = self.get(Aspect::HcaFirmware);
        let fw_holds = match fw_held {
            Some(held) => {
                !held.contains(" + ") && ib_ports().all(|p| p.fw_ver.as_deref() == Some(held))
            }
            None => ib_ports().all(|p| p.fw_ver.is_none()),
        };
        single(Aspect::GpuModel, &|g| g.name.as_deref())
            && single(Aspect::Vbios, &|g| g.vbios.as_deref())
            && count_is(Aspect::GpuCount, installed)
            && match ib {
                Some(_) => count_is(Aspect::IbPorts, ib_ports().count()),
                None => self.get(Aspect::IbPorts).is_none(),
            }
            && slowest == rate_held
            && fw_holds
    }

    /// GPU model and VBIOS, from a sample: the distinct values of the GPUs that reported, joined; the count
    /// of GPUs installed.
    fn sampled(&mut self, sample: &NodeSample) {
        let reporting = || sample.gpus.iter().filter(|g| g.reported_values());
        self.0[Aspect::GpuModel.index()] = distinct(reporting().filter_map(|g| g.name.as_deref()));
        self.0[Aspect::Vbios.index()] = distinct(reporting().filter_map(|g| g.vbios.as_deref()));
        let installed = sample.gpus.iter().filter(|g| installed(g)).count();
        self.0[Aspect::GpuCount.index()] = Some(installed.to_string());
        let ib = sample.ib.as_deref();
        let ib_ports = || ib.into_iter().flatten().filter(|p| p.is_infiniband());
        self.0[Aspect::IbPorts.index()] = ib.map(|_| ib_ports().count().to_string());
        self.0[Aspect::IbRate.index()] = ib_ports()
            .filter(|p| p.is_up())
            .filter_map(|p| p.rate_gbps)
            .min_by(f64::total_cmp)
            .map(crate::telemetry::fabric::gbps);
        self.0[Aspect::HcaFirmware.index()] =
            distinct(ib_ports().filter_map(|p| p.fw_ver.as_deref()));
    }
}

/// Whether a compact stream's `delta` leaves the identity of the sample it patches (`before`) as it was, told
/// without building it: it changes no port's state or rate, no GPU's errors, and gives each GPU it changes
/// values only, on a GPU that reported values already (so which GPUs report, and are installed, stays).
pub(crate) fn kept_by(delta: &NodeDelta, before: &NodeSample) -> bool {
    super::rates::kept_by(delta)
        && delta.gpus.iter().all(|d| {
            let values = [
                d.util_pct.map(|v| v.is_some()),
                d.mem_used_mib.map(|v| v.is_some()),
                d.temp_c.map(|v| v.is_some()),
                d.power_w.map(|v| v.is_some()),
                d.sm_clock_mhz.map(|v| v.is_some()),
            ];
            d.errors.is_none()
                && values.iter().all(|v| v.is_none_or(|known| known))
                && before
                    .gpus
                    .iter()
                    .find(|g| g.index == d.index)
                    .is_some_and(|g| g.reported_values())
        })
}

/// Whether a GPU is installed: it reported values, or the driver answered for it with a fault (lost, needs a
/// reset). A GPU that fell off the bus is still one of the node's GPUs: counting only those that answered
/// would make a fleet of nodes that each lost one the majority, and the healthy node the drift.
fn installed(g: &GpuSample) -> bool {
    g.reported_values() || g.errors.iter().any(|e| e.kind != GpuErrorKind::Implausible)
}

/// `0.1.0 (build 0123456789ab)`, or the bare version for agents that name no build.
pub(crate) fn agent_value(version: &str, build: Option<&str>) -> String {
    match build.filter(|b| !b.is_empty()) {
        Some(b) => format!("{version} (build {b})"),
        None => version.to_string(),
    }
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.sort_unstable();
    (!seen.is_empty()).then(|| seen.join(" + "))
}

/// How many nodes run each value of each aspect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally([HashMap<String, usize>; Aspect::ALL.len()]);

impl Tally {
    /// Moves a node from `old` to `new`.
    pub(crate) fn replace(&mut self, old: &Identity, new: &Identity) {
        for a in Aspect::ALL {
            let (before, after) = (old.get(a), new.get(a));
            if before == after {
                continue;
            }
            let counts = &mut self.0[a.index()];
            if let Some(v) = before {
                if let Some(n) = counts.get_mut(v) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(v);
                    }
                }
            }
            if let Some(v) = after {
                *counts.entry(v.to_string()).or_insert(0) += 1;
            }
        }
    }

    fn count(&self, a: Aspect, value: &str) -> usize {
        self.0[a.index()].get(value).copied().unwrap_or(0)
    }

    /// The most common value; ties go to the smaller value, so the answer does not flicker.
    fn majority(&self, a: Aspect) -> Option<(&str, usize)> {
        self.0[a.index()]
            .iter()
            .filter(|(v, _)| a != Aspect::Agent || v.as_str() != NO_AGENT)
            .map(|(v, n)| (v.as_str(), *n))
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(x.0)))
    }

    fn distinct_values(&self, a: Aspect) -> usize {
        self.0[a.index()].len()
    }
}

/// What a value of an aspect is compared with, and where that comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub value: String,
    /// `inventory lists` (the node's GPU count in the inventory), `expected` (`[expect]`), `fleet runs` (the
    /// majority) or `jump host`.
    pub from: &'static str,
}

fn reference(
    a: Aspect,
    tally: &Tally,
    expect: &Expect,
    declared: Option<u32>,
) -> Option<Reference> {
    reference_of(a, tally, expect, declared).map(|(value, from)| Reference {
        value: value.into_owned(),
        from,
    })
}

/// The reference value, borrowed where it can be: judging every node on every refresh allocates nothing
/// for the usual node. A GPU count is compared with the node's count in the inventory (`declared`) first.
fn reference_of<'t>(
    a: Aspect,
    tally: &'t Tally,
    expect: &'t Expect,
    declared: Option<u32>,
) -> Option<(std::borrow::Cow<'t, str>, &'static str)> {
    use std::borrow::Cow;
    if let (Aspect::GpuCount, Some(n)) = (a, declared) {
        return Some((Cow::Owned(n.to_string()), "inventory lists"));
    }
    let expected: Option<Cow<str>> = match a {
        Aspect::Agent => return Some((Cow::Borrowed(crate::release::LONG), "jump host")),
        Aspect::Driver => expect.driver.as_deref().map(Cow::Borrowed),
        Aspect::GpuModel => {
            (!expect.gpu_model.is_empty()).then(|| Cow::Owned(expect.gpu_model.join(" or ")))
        }
        Aspect::Vbios => expect.vbios.as_deref().map(Cow::Borrowed),
        Aspect::GpuCount => expect.gpus_per_node.map(|n| Cow::Owned(n.to_string())),
        Aspect::IbPorts => expect.ib_ports.map(|n| Cow::Owned(n.to_string())),
        Aspect::IbRate => expect
            .ib_rate_gbps
            .map(|r| Cow::Owned(crate::telemetry::fabric::gbps(r))),
        Aspect::HcaFirmware => expect.hca_firmware.as_deref().map(Cow::Borrowed),
    };
    match expected {
        Some(value) => Some((value, "expected")),
        None => tally
            .majority(a)
            .map(|(value, _)| (Cow::Borrowed(value), "fleet runs")),
    }
}

/// Why `value` of aspect `a` is drift, or `None`. Against the majority, a value is drift only when the
/// majority value is strictly more common (a fleet split evenly has no majority to drift from).
fn judge(
    a: Aspect,
    value: &str,
    tally: &Tally,
    expect: &Expect,
    declared: Option<u32>,
) -> Option<String> {
    if a == Aspect::Agent {
        if value == NO_AGENT {
            return None;
        }
        let (version, build) = match value.split_once(" (build ") {
            Some((v, b)) => (v, Some(b.trim_end_matches(')'))),
            None => (value, None),
        };
        return crate::release::skew(version, build);
    }
    let (reference, from) = reference_of(a, tally, expect, declared)?;
    if reference == value {
        return None;
    }
    let r = Reference {
        value: reference.into_owned(),
        from,
    };
    // A node's models are joined with " + "; each must be one the fleet expects.
    if a == Aspect::GpuModel
        && r.from == "expected"
        && value
            .split(" + ")
            .all(|m| expect.gpu_model.iter().any(|e| e == m))
    {
        return None;
    }
    if r.from == "fleet runs" && tally.count(a, &r.value) <= tally.count(a, value) {
        return None;
    }
    Some(match a {
        Aspect::GpuCount => format!("{value} GPUs, {} {}", r.from, r.value),
        Aspect::IbPorts => format!("{value} InfiniBand ports, {} {}", r.from, r.value),
        // A slower port is named by its own reason; a faster one is no fault.
        Aspect::IbRate => {
            let (ours, theirs) = (value.parse::<f64>().ok()?, r.value.parse::<f64>().ok()?);
            return (ours < theirs)
                .then(|| format!("IB rate {value} Gb/s, {} {} Gb/s", r.from, r.value));
        }
        _ => format!("{} {value}, {} {}", a.label(), r.from, r.value),
    })
}

/// A node's drift reasons, one per aspect that differs (a slow InfiniBand port is named by its own reason
/// instead, see `telemetry::fabric::judge_port_rate`). `declared`: the node's GPU count in the inventory.
pub(crate) fn reasons(
    id: &Identity,
    tally: &Tally,
    expect: &Expect,
    declared: Option<u32>,
) -> Vec<String> {
    Aspect::ALL
        .iter()
        .filter(|&&a| a != Aspect::IbRate)
        .filter_map(|&a| judge(a, id.get(a)?, tally, expect, declared))
        .collect()
}

/// One value of an aspect and the nodes on it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueNodes {
    pub value: String,
    pub nodes: Vec<NodeId>,
    /// Why these nodes drift, when they do.
    pub drift: Option<String>,
    /// The value is the reference (or one of the expected GPU models).
    pub is_reference: bool,
}

/// An aspect on which nodes differ: what it is compared with and every value seen, most common first.
#[derive(Debug, Clone, PartialEq)]
pub struct AspectDrift {
    /// The site whose nodes these are, under `--context all` (each site's drift is counted within it).
    pub site: Option<String>,
    pub aspect: Aspect,
    pub reference: Option<Reference>,
    pub values: Vec<ValueNodes>,
}

/// Every aspect on which some node drifts or nodes differ, grouping nodes by value (GPU counts also by the
/// count the inventory gives each node, `declared`, indexed like `identities`).
pub(crate) fn groups(
    identities: &[Identity],
    tally: &Tally,
    expect: &Expect,
    declared: &[Option<u32>],
) -> Vec<AspectDrift> {
    let mut out = Vec::new();
    for a in Aspect::ALL {
        let declared_of = |node: NodeId| {
            declared
                .get(node)
                .copied()
                .flatten()
                .filter(|_| a == Aspect::GpuCount)
        };
        let mut by_value: HashMap<(&str, Option<u32>), Vec<NodeId>> = HashMap::new();
        for (node, id) in identities.iter().enumerate() {
            if let Some(v) = id.get(a) {
                by_value
                    .entry((v, declared_of(node)))
                    .or_default()
                    .push(node);
            }
        }
        // The aspect's reference: the inventory's count where it gives every node the same one.
        let first = declared_of(0);
        let common = (0..identities.len())
            .all(|n| declared_of(n) == first)
            .then_some(first)
            .flatten();
        let r = reference(a, tally, expect, common);
        let mut values: Vec<ValueNodes> = by_value
            .into_iter()
            .map(|((value, declared), nodes)| ValueNodes {
                drift: judge(a, value, tally, expect, declared),
                is_reference: match declared {
                    Some(n) => value == n.to_string(),
                    None => r.as_ref().is_some_and(|r| r.value == value),
                } || (a == Aspect::GpuModel
                    && !expect.gpu_model.is_empty()
                    && value
                        .split(" + ")
                        .all(|m| expect.gpu_model.iter().any(|e| e == m))),
                value: value.to_string(),
                nodes,
            })
            .collect();
        if values.iter().all(|v| v.drift.is_none()) && tally.distinct_values(a) < 2 {
            continue;
        }
        values.sort_by(|x, y| {
            y.nodes
                .len()
                .cmp(&x.nodes.len())
                .then(x.value.cmp(&y.value))
        });
        out.push(AspectDrift {
            site: None,
            aspect: a,
            reference: r,
            values,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(driver: &str, gpus: &str) -> Identity {
        let mut id = Identity::default();
        id.0[Aspect::Driver.index()] = Some(driver.into());
        id.0[Aspect::GpuCount.index()] = Some(gpus.into());
        id
    }

    fn tally(ids: &[Identity]) -> Tally {
        let mut t = Tally::default();
        for id in ids {
            t.replace(&Identity::default(), id);
        }
        t
    }

    #[test]
    fn hca_firmware_is_an_aspect_read_from_the_ports() {
        let sample = |fw: &str| NodeSample {
            ib: Some(vec![crate::telemetry::fabric::IbPort {
                hca: "mlx5_0".into(),
                port: 1,
                link_layer: Some("InfiniBand".into()),
                fw_ver: Some(fw.into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let ids: Vec<Identity> = ["28.39.1002", "28.39.1002", "28.36.1010"]
            .iter()
            .map(|fw| Identity::default().with_sample(&sample(fw)).unwrap())
            .collect();
        let t = tally(&ids);
        assert_eq!(
            reasons(&ids[2], &t, &Expect::default(), None),
            ["HCA firmware 28.36.1010, fleet runs 28.39.1002"]
        );
        assert!(reasons(&ids[0], &t, &Expect::default(), None).is_empty());
        assert_eq!(ids[0].with_sample(&sample("28.39.1002")), None, "unchanged");
        assert!(
            ids[0].with_sample(&sample("28.40.1000")).is_some(),
            "a flash is seen"
        );
    }

    #[test]
    fn the_minority_drifts_from_the_majority() {
        let ids = [
            node("550.90.07", "8"),
            node("550.90.07", "8"),
            node("550.90.07", "8"),
            node("550.54.15", "7"),
        ];
        let t = tally(&ids);
        let none = Expect::default();
        assert!(reasons(&ids[0], &t, &none, None).is_empty());
        assert_eq!(
            reasons(&ids[3], &t, &none, None),
            [
                "driver 550.54.15, fleet runs 550.90.07",
                "7 GPUs, fleet runs 8"
            ]
        );
        let g = groups(&ids, &t, &none, &[]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].aspect, Aspect::Driver);
        assert_eq!(g[0].values[0].nodes, [0, 1, 2]);
        assert_eq!(g[0].values[1].nodes, [3]);
        assert!(g[0].values[1].drift.is_some());
    }

    #[test]
    fn an_even_split_has_no_majority_but_expect_decides() {
        let ids = [node("550.90.07", "8"), node("550.54.15", "8")];
        let t = tally(&ids);
        assert!(reasons(&ids[1], &t, &Expect::default(), None).is_empty());
        let expect = Expect {
            driver: Some("550.90.07".into()),
            gpus_per_node: Some(8),
            ..Expect::default()
        };
        assert_eq!(
            reasons(&ids[1], &t, &expect, None),
            ["driver 550.54.15, expected 550.90.07"]
        );
        assert!(reasons(&ids[0], &t, &expect, None).is_empty());
    }

    #[test]
    fn a_fleet_of_several_models_lists_them() {
        let model = |m: &str| {
            let mut id = Identity::default();
            id.0[Aspect::GpuModel.index()] = Some(m.into());
            id
        };
        let ids = [model("H100"), model("H100"), model("H200"), model("A100")];
        let t = tally(&ids);
        assert_eq!(
            reasons(&ids[2], &t, &Expect::default(), None),
            ["GPU model H200, fleet runs H100"]
        );
        let expect = Expect {
            gpu_model: vec!["H100".into(), "H200".into()],
            ..Expect::default()
        };
        assert!(reasons(&ids[2], &t, &expect, None).is_empty());
        assert!(reasons(&model("H100 + H200"), &t, &expect, None).is_empty());
        assert_eq!(
            reasons(&ids[3], &t, &expect, None),
            ["GPU model A100, expected H100 or H200"]
        );
    }

    #[test]
    fn tallies_follow_a_node_that_changes() {
        let mut t = tally(&[node("1", "8"), node("1", "8"), node("2", "8")]);
        t.replace(&node("2", "8"), &node("1", "8"));
        assert_eq!(t.distinct_values(Aspect::Driver), 1);
        assert_eq!(t.majority(Aspect::Driver), Some(("1", 3)));
    }

    #[test]
    fn the_quick_check_agrees_with_recomputing() {
        use crate::telemetry::{GpuSample, NodeSample};
        let gpu = |name: &str, vbios: &str| GpuSample {
            name: Some(name.into()),
            vbios: Some(vbios.into()),
            util_pct: Some(1),
            ..Default::default()
        };
        let sample = |gpus: Vec<GpuSample>| NodeSample {
            gpus,
            ib: Some(vec![]),
            ..Default::default()
        };
        let base = sample(vec![gpu("H100", "96.1"), gpu("H100", "96.1")]);
        let id = Identity::default().with_sample(&base).unwrap();
        assert_eq!(
            id.with_sample(&base),
            None,
            "the same sample changes nothing"
        );
        for changed in [
            sample(vec![gpu("H100", "96.1"), gpu("H200", "96.1")]),
            sample(vec![gpu("H100", "96.1"), gpu("H100", "96.2")]),
            sample(vec![gpu("H100", "96.1")]),
            sample(vec![]),
            NodeSample {
                ib: None,
                ..base.clone()
            },
        ] {
            let next = id.with_sample(&changed).expect("a change is seen");
            let mut fresh = Identity::default();
            fresh.sampled(&changed);
            for a in [
                Aspect::GpuModel,
                Aspect::Vbios,
                Aspect::GpuCount,
                Aspect::IbPorts,
            ] {
                assert_eq!(next.get(a), fresh.get(a), "{a:?}");
            }
        }
    }

    #[test]
    fn an_agent_of_another_build_drifts_and_no_agent_does_not() {
        let t = Tally::default();
        let e = Expect::default();
        assert_eq!(judge(Aspect::Agent, NO_AGENT, &t, &e, None), None);
        let ours = agent_value(crate::release::VERSION, Some(crate::release::BUILD));
        assert_eq!(judge(Aspect::Agent, &ours, &t, &e, None), None);
        let old = judge(Aspect::Agent, "0.0.9", &t, &e, None).unwrap();
        assert!(old.starts_with("agent 0.0.9, jump host"), "{old}");
    }
}

#[cfg(test)]
mod inventory_count_tests {
    use super::*;
    use crate::telemetry::{GpuError, GpuSample, NodeSample};

    /// A node whose GPUs `0..answering` report values and whose GPUs `answering..installed` are lost.
    fn node(answering: u32, installed: u32) -> NodeSample {
        let gpus = (0..installed)
            .map(|index| {
                if index < answering {
                    GpuSample {
                        index,
                        util_pct: Some(10),
                        ..Default::default()
                    }
                } else {
                    GpuSample::failed(
                        index,
                        GpuError {
                            kind: GpuErrorKind::Lost,
                            query: "utilization".into(),
                            detail: "NVML: GPU is lost".into(),
                        },
                    )
                }
            })
            .collect();
        NodeSample {
            gpus,
            ..Default::default()
        }
    }

    fn identities(samples: &[NodeSample]) -> (Vec<Identity>, Tally) {
        let ids: Vec<Identity> = samples
            .iter()
            .map(|s| Identity::default().with_sample(s).unwrap_or_default())
            .collect();
        let mut tally = Tally::default();
        for id in &ids {
            tally.replace(&Identity::default(), id);
        }
        (ids, tally)
    }

    #[test]
    fn two_nodes_that_each_lost_a_gpu_do_not_make_the_healthy_one_drift() {
        // Issue 21: a 3-node inventory with gpus_per_node = 2, two nodes each lost a GPU.
        let (ids, tally) = identities(&[node(2, 2), node(1, 2), node(1, 2)]);
        let none = Expect::default();
        for declared in [Some(2), None] {
            for (n, id) in ids.iter().enumerate() {
                assert_eq!(
                    id.get(Aspect::GpuCount),
                    Some("2"),
                    "lost GPUs are installed"
                );
                assert!(
                    reasons(id, &tally, &none, declared).is_empty(),
                    "node {n} with {declared:?} declared: {:?}",
                    reasons(id, &tally, &none, declared)
                );
            }
            let declared = [declared; 3];
            assert!(groups(&ids, &tally, &none, &declared).is_empty());
        }
    }

    #[test]
    fn the_inventory_count_comes_before_the_majority() {
        // Two nodes show one GPU (the other gone from the bus entirely), one shows both: the inventory says 2.
        let (ids, tally) = identities(&[node(2, 2), node(1, 1), node(1, 1)]);
        let none = Expect::default();
        assert!(reasons(&ids[0], &tally, &none, Some(2)).is_empty());
        assert_eq!(
            reasons(&ids[1], &tally, &none, Some(2)),
            ["1 GPUs, inventory lists 2"]
        );
        // Without a count in the inventory the majority decides, as before.
        assert_eq!(
            reasons(&ids[0], &tally, &none, None),
            ["2 GPUs, fleet runs 1"]
        );
        // The node's own count comes before [expect].
        let expect = Expect {
            gpus_per_node: Some(8),
            ..Expect::default()
        };
        assert!(reasons(&ids[0], &tally, &expect, Some(2)).is_empty());
        let g = groups(&ids, &tally, &none, &[Some(2); 3]);
        assert_eq!(g.len(), 1);
        assert_eq!(
            g[0].reference,
            Some(Reference {
                value: "2".into(),
                from: "inventory lists"
            })
        );
        let one = g[0].values.iter().find(|v| v.value == "1").unwrap();
        assert_eq!(
            (one.nodes.clone(), one.drift.as_deref()),
            (vec![1, 2], Some("1 GPUs, inventory lists 2"))
        );
        assert!(g[0].values.iter().any(|v| v.value == "2" && v.is_reference));
    }
}
