//! The inventory file as written: serde structs mirroring `inventory.toml`, every key documented.

use serde::Deserialize;
use toml::Spanned;

/// Top level of `inventory.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InventoryFile {
    /// Settings every node inherits unless a `[[node]]` entry overrides them.
    #[serde(default)]
    pub defaults: DefaultsFile,
    /// Health thresholds; each key left out falls back to what the GPU reports, then to H100 values.
    #[serde(default)]
    pub thresholds: ThresholdsFile,
    /// Cabinets and the nodes they hold.
    #[serde(default)]
    pub cabinet: Vec<CabinetFile>,
    /// Tenants and the nodes (or GPUs) rented to them.
    #[serde(default)]
    pub tenant: Vec<TenantFile>,
    /// Per-node overrides of `[defaults]`.
    #[serde(default)]
    pub node: Vec<NodeFile>,
    /// How nodes are drained and undrained.
    #[serde(default)]
    pub drain: DrainFile,
    /// How nodes are rebooted.
    #[serde(default)]
    pub reboot: RebootFile,
    /// Safety settings shared by every action.
    #[serde(default)]
    pub actions: ActionsFile,
    /// How `fleetop repair` validates a node before it returns, and when it holds a GPU back.
    #[serde(default)]
    pub repair: super::repair::RepairFile,
    /// What every node should run; a node that differs is drift (without it, the fleet majority decides).
    #[serde(default)]
    pub expect: ExpectFile,
    /// Where telemetry comes from: the nodes over SSH (default) or a Prometheus-compatible store.
    #[serde(default)]
    pub source: SourceFile,
}

/// `[source]`: where the fleet's telemetry is read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceFile {
    /// `ssh` (default: every node over SSH) or `prometheus`.
    pub kind: Option<super::model::SourceKind>,
    /// The Prometheus (or VictoriaMetrics, Thanos) base URL, e.g. `http://prometheus:9090`.
    pub url: Option<String>,
    /// A file holding a bearer token sent as `Authorization: Bearer …`.
    pub bearer_token_file: Option<String>,
    /// A file holding `user:password` for HTTP basic auth.
    pub basic_auth_file: Option<String>,
    /// A PEM CA certificate to trust for HTTPS.
    pub ca_file: Option<String>,
    /// The label naming the node in dcgm-exporter's series (default `Hostname`); fleetop's own use `node`.
    pub node_label: Option<String>,
    /// A suffix removed from the label's value to give the inventory name (e.g. `.cluster.local`); a `:port`
    /// (as in `instance`) is always removed.
    pub node_suffix: Option<String>,
    /// A regular expression the label's value (less its `:port` and suffix) is matched against, whole; where it
    /// matches, `node_replacement` (default `$1`) gives the inventory name, e.g. `gpu-(.*)` → `$1`.
    pub node_pattern: Option<String>,
    pub node_replacement: Option<String>,
}

/// A string, or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[expect]`: the fleet's intended software and hardware, each key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectFile {
    /// NVIDIA driver version, as NVML reports it: `550.90.07`.
    pub driver: Option<String>,
    /// VBIOS version of every GPU: `96.00.99.00.01`.
    pub vbios: Option<String>,
    /// GPU model name as NVML reports it (`NVIDIA H100 80GB HBM3`), or a list for a fleet of several.
    pub gpu_model: Option<OneOrMany>,
    /// GPUs each node reports.
    pub gpus_per_node: Option<Spanned<u32>>,
    /// InfiniBand ports (link layer InfiniBand) each node has.
    pub ib_ports: Option<Spanned<u32>>,
    /// The rate every up InfiniBand port runs at, in Gb/s: `400` for NDR.
    pub ib_rate_gbps: Option<Spanned<f64>>,
    /// Firmware every InfiniBand HCA runs, as sysfs `fw_ver` writes it: `28.39.1002`.
    pub hca_firmware: Option<String>,
    /// InfiniBand ports down by design, never judged: an HCA (`"mlx5_4"`, every port) or one port
    /// (`"mlx5_4/1"`), as sysfs names them.
    pub ib_ignore: Option<Vec<Spanned<String>>>,
}

/// `[drain]`: the drain/undrain backend.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DrainFile {
    /// `slurm` (default), `kubernetes` or `command`.
    pub backend: Option<Spanned<String>>,
    /// Host to run `scontrol`/`sinfo` (or `kubectl`) on over SSH; left out: run them on this machine.
    pub controller: Option<String>,
    /// Seconds one drain or undrain command may take (default 60; kubectl drain gets it as `--timeout`).
    pub timeout_s: Option<u64>,
    /// `command` backend: argv template for draining; placeholders `{node}`, `{reason}`, `{operator}`.
    pub drain_command: Option<String>,
    /// `command` backend: argv template for undraining.
    pub undrain_command: Option<String>,
    /// Refuse to drain more than this fraction of a cabinet or tenant without `--force` (default 0.25).
    pub max_drained_fraction: Option<f64>,
}

/// `[reboot]`: the reboot backend.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RebootFile {
    /// `ssh` (default: `systemctl reboot` on the node), `slurm`, `ipmi` or `command`.
    pub backend: Option<Spanned<String>>,
    /// Refuse to reboot a node that is not drained (default true).
    pub require_drained: Option<bool>,
    /// Most reboots in one request (default 4).
    pub max_concurrent: Option<usize>,
    /// Seconds a node may take to come back before it is `crit` (default 900).
    pub deadline_s: Option<u64>,
    /// `command` backend: argv template; placeholders `{node}`, `{reason}`, `{operator}`, `{bmc}`.
    pub command: Option<String>,
    /// `ipmi`: BMC address template (default `{node}-bmc`); `[[node]] bmc` overrides it per node.
    pub bmc: Option<String>,
    /// `ipmi`: BMC user.
    pub ipmi_user: Option<String>,
    /// `ipmi`: environment variable holding the BMC password (passed to ipmitool as `-E`, never on argv).
    pub ipmi_password_env: Option<String>,
    /// `redfish`: the ResetType to post (default `ForceRestart`; HPE iLO has no `PowerCycle`).
    pub redfish_reset_type: Option<String>,
    /// `redfish`: the system's path (default: the first member of `/redfish/v1/Systems`).
    pub redfish_system: Option<String>,
    /// `redfish`: file holding `user:password` (never put credentials in the inventory itself).
    pub redfish_credentials_file: Option<String>,
    /// `redfish`: environment variable holding `user:password` (used when no file is given).
    pub redfish_credentials_env: Option<String>,
    /// `redfish`: CA certificate (PEM) to trust for the BMCs' HTTPS.
    pub redfish_ca_file: Option<String>,
}

/// `[actions]`: safety settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionsFile {
    /// Refuse every drain, undrain and reboot (like `--read-only`).
    pub read_only: Option<bool>,
    /// Audit log file (default `$XDG_STATE_HOME/fleetop/audit.jsonl`).
    pub audit_log: Option<String>,
}

/// `[defaults]`: how to reach nodes and how often to sample them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsFile {
    /// SSH user (default: `User` from `~/.ssh/config`, then `$USER`).
    pub user: Option<String>,
    /// SSH port (default: `Port` from `~/.ssh/config`, then 22).
    pub port: Option<u16>,
    /// Sampling interval in milliseconds (default 2000, at least 100).
    pub interval_ms: Option<Spanned<u64>>,
    /// GPUs each node should have (default 8); fewer seen is `crit`.
    pub gpus_per_node: Option<u32>,
    /// `known_hosts` file used for strict host key checking (default `~/.ssh/known_hosts`).
    pub known_hosts: Option<String>,
    /// Private key files to try after ssh-agent (default: `IdentityFile` from ssh config, then
    /// `~/.ssh/id_ed25519`, `~/.ssh/id_ecdsa`, `~/.ssh/id_rsa`).
    pub identity_files: Option<Vec<String>>,
    /// ssh client config to honour for HostName, User, Port, IdentityFile, ProxyJump
    /// (default `~/.ssh/config`; `""` turns it off).
    pub ssh_config: Option<String>,
    /// Path of the `fleetop` binary on the nodes (default `fleetop`, looked up on the remote PATH).
    pub agent_path: Option<String>,
    /// TCP connect timeout in milliseconds (default 5000).
    pub connect_timeout_ms: Option<u64>,
    /// SSH handshake plus authentication timeout in milliseconds (default 10000).
    pub handshake_timeout_ms: Option<u64>,
    /// Time allowed for the first sample after the remote command starts, in milliseconds (default 10000).
    pub first_sample_timeout_ms: Option<u64>,
    pub agent_recheck_ms: Option<u64>,
    /// Most SSH handshakes in flight at once (default 96).
    pub max_concurrent_handshakes: Option<usize>,
    /// Where a node's tenant comes from: `inventory` (default: the `[[tenant]]` tables) or `scheduler` (the
    /// Slurm accounts or Kubernetes namespaces of the jobs on it, else the inventory's).
    pub tenant_from: Option<super::model::TenantFrom>,
}

/// `[thresholds]`: overrides of the device's own temperature limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdsFile {
    /// GPU temperature (°C) at which a GPU is `warn` (default: slowdown threshold − 5, H100: 84).
    pub gpu_temp_warn_c: Option<f64>,
    /// GPU temperature (°C) at which a GPU is `crit` (default: the device's slowdown threshold, H100: 89).
    pub gpu_temp_crit_c: Option<f64>,
    /// HBM temperature (°C) at which a GPU is `warn` (default: memory max − 5, H100: 90).
    pub mem_temp_warn_c: Option<f64>,
    /// HBM temperature (°C) at which a GPU is `crit` (default: the device's memory max, H100: 95).
    pub mem_temp_crit_c: Option<f64>,
}

/// `[[cabinet]]`: one cabinet, or many at once when `name` is a nodeset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CabinetFile {
    /// Cabinet name, or a nodeset of names (`c[001-257]`) sharing the other keys.
    pub name: Spanned<String>,
    /// Nodeset of the cabinet's nodes; `{cabinet}` stands for the cabinet's name (`{cabinet}n[1-3]`).
    pub nodes: Spanned<String>,
    /// The cabinet's power budget in kW, compared with the power its GPUs draw.
    pub power_budget_kw: Option<f64>,
    /// GPUs each node of this cabinet should have (overrides `defaults.gpus_per_node`).
    pub gpus_per_node: Option<u32>,
    /// This cabinet's drain backend, overriding `[drain] backend` (its settings still come from `[drain]`).
    pub drain_backend: Option<Spanned<String>>,
    /// This cabinet's reboot backend, overriding `[reboot] backend` (its settings still come from `[reboot]`).
    pub reboot_backend: Option<Spanned<String>>,
}

/// `[[tenant]]`: a customer holding nodes, or some GPUs of nodes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantFile {
    /// Tenant name, shown in every view and matched by `--filter tenant=`.
    pub name: Spanned<String>,
    /// Nodeset of the nodes the tenant holds.
    pub nodes: Spanned<String>,
    /// GPU indices held on each of those nodes (`"0-3"`); left out: the whole node.
    pub gpus: Option<Spanned<String>>,
}

/// `[[node]]`: overrides for nodes named by a nodeset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeFile {
    /// Nodeset of the nodes these overrides apply to; each must belong to a cabinet.
    pub name: Spanned<String>,
    /// Address or DNS name to connect to (default: the node's name, then ssh config `HostName`).
    pub host: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH user.
    pub user: Option<String>,
    /// GPUs this node should have.
    pub gpus: Option<u32>,
    /// Path of the `fleetop` binary on this node.
    pub agent_path: Option<String>,
    /// BMC address of this node (ipmi reboots).
    pub bmc: Option<String>,
}
