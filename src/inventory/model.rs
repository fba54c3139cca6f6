//! The validated inventory: cabinets, nodes, tenants, the settings of each section, and the lookups on them.

use std::time::Duration;

use super::repair::RepairSettings;

/// Most GPUs a node may be declared with; a sample carries no more either.
pub(crate) const MAX_GPUS_PER_NODE: u32 = 64;

/// Index of a node in [`Inventory::nodes`]; stable for the life of the process.
pub(crate) type NodeId = usize;

/// A validated inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where it came from: a path, or `demo`.
    pub source: String,
    /// True for `--demo`'s built-in simulated fleet only: its audit records are practice, kept apart.
    pub simulated: bool,
    /// Where telemetry is read: `None` over SSH, else this Prometheus-compatible store.
    pub prometheus: Option<PrometheusSource>,
    /// Node ids by name, built at the first lookup: a store's answer names 100,000 GPUs' nodes each refresh.
    pub(crate) by_name: std::sync::OnceLock<std::collections::HashMap<String, NodeId>>,
    pub settings: Settings,
    pub thresholds: Thresholds,
    pub cabinets: Vec<Cabinet>,
    pub tenants: Vec<Tenant>,
    pub nodes: Vec<Node>,
    pub actions: ActionSettings,
    pub expect: Expect,
    /// A merged inventory's sites (`--context all`), each with its own rules, in order; empty for one site's own
    /// inventory, whose rules are the fields above (`sites.rs`).
    pub(crate) merged_sites: Vec<MergedSite>,
    /// The site of the `[[context]]` this inventory was chosen by (`--context NAME`; its `site = NAME`, else its
    /// name), or of the contexts of one site naming its file when run without one: the site its audit records
    /// and store rows carry, and the only site whose records it reads besides those that carry none. `None`: no
    /// such context.
    pub site: Option<String>,
    /// The inventory file it was loaded from (canonical path; `None`: the demo fleet, or several sites merged):
    /// what a run without a site marks its records with, and reads its own by.
    pub file: Option<String>,
}

/// One site of a merged inventory (`sites.rs`): its name and its own inventory, whose rules judge its nodes and
/// whose backends are asked about them.
#[derive(Debug, Clone)]
pub(crate) struct MergedSite {
    pub name: String,
    pub inventory: std::sync::Arc<Inventory>,
}

impl MergedSite {
    /// The site its records (audit log, history store) carry: its `[[context]]`'s `site`, else its name.
    pub(crate) fn record_site(&self) -> &str {
        self.inventory.site.as_deref().unwrap_or(&self.name)
    }
}

/// Resolved `[expect]`: what every node should run (`None`: the fleet majority decides).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub driver: Option<String>,
    pub vbios: Option<String>,
    /// Accepted GPU models (empty: the fleet majority decides).
    pub gpu_model: Vec<String>,
    pub gpus_per_node: Option<u32>,
    /// InfiniBand ports each node should have.
    pub ib_ports: Option<u32>,
    /// The rate every up InfiniBand port should run at, Gb/s.
    pub ib_rate_gbps: Option<f64>,
    /// Firmware every InfiniBand HCA should run (`fw_ver`).
    pub hca_firmware: Option<String>,
    /// InfiniBand ports down by design, never judged: `(hca, None)` for every port of an HCA.
    pub ib_ignore: Vec<(String, Option<u32>)>,
}

impl Expect {
    /// Whether port `port` of `hca` is listed in `[expect] ib_ignore`.
    pub(crate) fn ib_ignored(&self, hca: &str, port: u32) -> bool {
        self.ib_ignore
            .iter()
            .any(|(h, p)| h == hca && p.is_none_or(|p| p == port))
    }
}

/// `mlx5_4` → (`mlx5_4`, None); `mlx5_4/1` → (`mlx5_4`, Some(1)); `None` for anything else (an HCA name is
/// letters, digits, `_`, `-` and `.`, as the kernel's drivers name them).
pub(crate) fn parse_ib_port(text: &str) -> Option<(String, Option<u32>)> {
    let (hca, port) = match text.split_once('/') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (text, None),
    };
    let valid = !hca.is_empty()
        && hca.len() <= 32
        && hca
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    valid.then(|| (hca.to_string(), port))
}

/// Which backend drains nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainBackend {
    Slurm,
    Kubernetes,
    Command { drain: String, undrain: String },
}

/// Which backend reboots nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum RebootBackend {
    Ssh,
    Slurm,
    Ipmi { user: String, password_env: String },
    Redfish(Redfish),
    Command { template: String },
}

/// Resolved Redfish settings; BMC addresses come from `bmc` (a URL, `https://` when no scheme is given).
#[derive(Debug, Clone, PartialEq)]
pub struct Redfish {
    pub reset_type: String,
    pub system: Option<String>,
    pub credentials_file: Option<String>,
    pub credentials_env: String,
    pub ca_file: Option<String>,
}

/// Resolved `[drain]`, `[reboot]` and `[actions]`.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    pub drain: DrainBackend,
    pub controller: Option<String>,
    pub drain_timeout: Duration,
    pub max_drained_fraction: f64,
    pub reboot: RebootBackend,
    pub require_drained: bool,
    pub max_concurrent_reboots: usize,
    pub reboot_deadline: Duration,
    pub bmc_template: String,
    pub read_only: bool,
    pub audit_log: Option<String>,
    /// `[repair]`.
    pub repair: RepairSettings,
}

/// Which transport reads the fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SourceKind {
    #[default]
    Ssh,
    Prometheus,
}

/// Resolved `[source]` for a Prometheus-compatible store.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    pub url: String,
    pub bearer_token_file: Option<String>,
    pub basic_auth_file: Option<String>,
    pub ca_file: Option<String>,
    pub node_label: String,
    pub node_suffix: Option<String>,
    /// `node_pattern` (anchored at both ends) and `node_replacement`.
    pub node_rewrite: Option<(regex::Regex, String)>,
}

impl PrometheusSource {
    pub fn at(url: &str) -> Self {
        PrometheusSource {
            url: url.trim_end_matches('/').to_string(),
            bearer_token_file: None,
            basic_auth_file: None,
            ca_file: None,
            node_label: "Hostname".into(),
            node_suffix: None,
            node_rewrite: None,
        }
    }
}

/// Where a node's tenant comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantFrom {
    /// The `[[tenant]]` tables.
    #[default]
    Inventory,
    /// The accounts (Slurm) or namespaces (Kubernetes) of the jobs on the node; the inventory's when none runs.
    Scheduler,
}

/// Resolved `[defaults]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub interval: Duration,
    pub known_hosts: String,
    pub identity_files: Vec<String>,
    pub ssh_config: Option<String>,
    pub agent_path: String,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub first_sample_timeout: Duration,
    /// How often a node followed through nvidia-smi is asked again whether it has an agent now.
    pub agent_recheck: Duration,
    pub max_concurrent_handshakes: usize,
    pub tenant_from: TenantFrom,
}

/// Temperature thresholds set in the inventory; `None` defers to the device, then to H100 values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub gpu_temp_warn_c: Option<f64>,
    pub gpu_temp_crit_c: Option<f64>,
    pub mem_temp_warn_c: Option<f64>,
    pub mem_temp_crit_c: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Cabinet {
    pub name: String,
    pub power_budget_kw: Option<f64>,
    pub nodes: Vec<NodeId>,
    /// Backends overriding `[drain]` / `[reboot]` for this cabinet.
    pub drain: Option<DrainBackend>,
    pub reboot: Option<RebootBackend>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub nodes: Vec<NodeId>,
}

/// A tenant's hold on a node: the whole node, or some GPU indices of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenancy {
    pub tenant: usize,
    pub gpus: Option<Vec<u32>>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub cabinet: usize,
    pub expected_gpus: u32,
    /// The inventory gives the count (the node's `gpus`, its cabinet's or `[defaults]` `gpus_per_node`) rather
    /// than leaving it to the default of 8: GPU-count drift compares with it.
    pub gpus_declared: bool,
    pub tenancy: Vec<Tenancy>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub agent_path: Option<String>,
    pub bmc: Option<String>,
}

impl Inventory {
    /// Tenant names holding GPUs on `node`, joined with `+` for nodes split between tenants.
    pub(crate) fn tenant_label(&self, node: NodeId) -> Option<String> {
        let names: Vec<&str> = self.nodes[node]
            .tenancy
            .iter()
            .map(|t| self.tenants[t.tenant].name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join("+"))
    }

    /// The same inventory holding only `keep` (renumbered in that order), for asking a few nodes without
    /// following the fleet: cabinets and tenants stay, with just those nodes in them.
    pub fn only(&self, keep: &[NodeId]) -> Inventory {
        let new_id = |old: NodeId| keep.iter().position(|&k| k == old);
        let mut inv = self.clone();
        inv.nodes = keep.iter().map(|&k| self.nodes[k].clone()).collect();
        inv.by_name = std::sync::OnceLock::new();
        for c in &mut inv.cabinets {
            c.nodes = c.nodes.iter().filter_map(|&n| new_id(n)).collect();
        }
        for t in &mut inv.tenants {
            t.nodes = t.nodes.iter().filter_map(|&n| new_id(n)).collect();
        }
        inv
    }

    pub fn gpus_expected(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.expected_gpus)).sum()
    }

    /// The drain backend for `node`: its cabinet's override, else its site's `[drain]`.
    pub fn drain_backend(&self, node: NodeId) -> &DrainBackend {
        self.cabinets[self.nodes[node].cabinet]
            .drain
            .as_ref()
            .unwrap_or(&self.rules(node).actions.drain)
    }

    /// The reboot backend for `node`: its cabinet's override, else its site's `[reboot]`.
    pub(crate) fn reboot_backend(&self, node: NodeId) -> &RebootBackend {
        self.cabinets[self.nodes[node].cabinet]
            .reboot
            .as_ref()
            .unwrap_or(&self.rules(node).actions.reboot)
    }

    /// True when some node is drained through `backend` (so that scheduler can be asked about the fleet).
    pub(crate) fn any_drained_by(&self, backend: &DrainBackend) -> bool {
        (0..self.nodes.len()).any(|n| self.drain_backend(n) == backend)
    }

    /// True when some node is drained through Slurm or Kubernetes, the backends that can say what they hold.
    pub(crate) fn any_scheduler(&self) -> bool {
        self.any_drained_by(&DrainBackend::Slurm) || self.any_drained_by(&DrainBackend::Kubernetes)
    }

    pub fn find_node(&self, name: &str) -> Option<NodeId> {
        self.by_name
            .get_or_init(|| {
                // The first of a repeated name wins, as a scan would find it (validation rejects repeats).
                let mut index = std::collections::HashMap::with_capacity(self.nodes.len());
                for (id, n) in self.nodes.iter().enumerate() {
                    index.entry(n.name.clone()).or_insert(id);
                }
                index
            })
            .get(name)
            .copied()
    }
}

#[cfg(test)]
mod ib_ignore_tests {
    use super::*;

    #[test]
    fn an_hca_covers_its_ports_and_a_port_only_itself() {
        assert_eq!(parse_ib_port("mlx5_4"), Some(("mlx5_4".into(), None)));
        assert_eq!(parse_ib_port("mlx5_4/1"), Some(("mlx5_4".into(), Some(1))));
        for bad in ["", "mlx5 4", "mlx5_4/", "mlx5_4/x", "../x", "/1"] {
            assert_eq!(parse_ib_port(bad), None, "{bad:?}");
        }
        let expect = Expect {
            ib_ignore: vec![("mlx5_4".into(), None), ("mlx5_1".into(), Some(2))],
            ..Expect::default()
        };
        assert!(expect.ib_ignored("mlx5_4", 1) && expect.ib_ignored("mlx5_4", 2));
        assert!(expect.ib_ignored("mlx5_1", 2));
        assert!(!expect.ib_ignored("mlx5_1", 1) && !expect.ib_ignored("mlx5_0", 1));
    }
}
