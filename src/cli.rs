//! Command-line interface (clap): the contract in docs/architecture.md and README.md.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::snapshot::Format;

#[derive(Debug, Parser)]
#[command(
    name = "fleetop",
    version = crate::release::LONG,
    propagate_version = true,
    about = "Live GPU fleet monitor for on-call engineers"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Render N frames of each view of the demo fleet off-screen, print frame times, and exit
    #[cfg(feature = "bench")]
    #[arg(long, value_name = "N")]
    pub bench_render: Option<usize>,
    /// Hold the demo fleet with SECS seconds of 1 Hz history, print peak RSS, and exit
    #[cfg(feature = "bench")]
    #[arg(long, value_name = "SECS")]
    pub bench_memory: Option<u64>,
    /// With --replay: start at TIME (RFC 3339, a UTC time of day such as 03:12, or an age such as 2h)
    /// [default: the recording's start]
    #[arg(long, value_name = "TIME", requires = "replay")]
    pub at: Option<String>,
    /// With --replay: how many times faster than real time it plays
    #[arg(long, value_name = "N", default_value_t = 1.0, requires = "replay")]
    pub speed: f64,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Inventory file [default: $FLEETOP_INVENTORY, ./inventory.toml, $XDG_CONFIG_HOME/fleetop/inventory.toml]
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "demo")]
    pub inventory: Option<PathBuf>,
    /// The site to follow: a [[context]] of config.toml (its inventory and source) [default: $FLEETOP_CONTEXT
    /// unless --inventory or --demo is given]
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["inventory", "demo"])]
    pub context: Option<String>,
    /// Use the built-in simulated reference fleet (384 cabinets, 1,025 nodes, 8,200 H100s)
    #[arg(long, global = true)]
    pub demo: bool,
    /// Colour theme, by name or path
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// Refuse every drain, undrain, reboot and deploy
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Read telemetry from a Prometheus-compatible store instead of the nodes: prometheus=URL
    /// (overrides the inventory's [source])
    #[arg(long, global = true, value_name = "KIND=URL")]
    pub source: Option<String>,
    /// Read a recording (`fleetop record`) instead of the fleet: the TUI replays it, `snapshot --at` reads it
    #[arg(long, global = true, value_name = "DIR", conflicts_with_all = ["demo", "inventory", "source"])]
    pub replay: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass over the fleet, printed, then exit (0 ok, 1 warn, 2 crit or unreachable, 3 could not run)
    Snapshot(SnapshotArgs),
    /// Node side: read GPUs through NVML and stream NDJSON samples on stdout
    Agent(AgentArgs),
    /// Validate the inventory and print a summary (exit 3 on errors)
    Check,
    /// Take nodes out of service (Slurm DRAIN, kubectl drain, or a command); a reason is required
    Drain(ActionArgs),
    /// Put drained nodes back into service
    Undrain(ActionArgs),
    /// Reboot nodes (ssh systemctl reboot, Slurm, IPMI or a command); they must be drained first
    Reboot(ActionArgs),
    /// Reset GPUs with nvidia-smi -r on drained, idle nodes; ok only when a fresh sample shows them answering
    /// without error
    Reset(ResetArgs),
    /// Install this binary (or --binary) as the agent on nodes, over SSH; nodes already on it are skipped
    Deploy(DeployArgs),
    /// Drain, wait for jobs to end, reboot, wait until back and healthy, undrain; resumable after Ctrl-C or a crash
    Repair(RepairArgs),
    /// What happened to a node or a GPU (by serial or UUID), newest first, across node moves, from the history
    /// store beside the audit log
    History(HistoryArgs),
    /// One GPU's evidence for a return (RMA) as a tar.gz: identity, `nvidia-smi -q`, the kernel-log lines naming
    /// its PCI address, its history and the last repair validation, with a manifest of what failed and why
    Rma(RmaArgs),
    /// Follow the fleet like the TUI and write what it sends into a recording, for --replay and snapshot --at
    Record(RecordArgs),
    /// GPU-hours in inventory, healthy, in use and lost by cause, and how long each repair phase took, from a
    /// recording and the history store
    Report(ReportArgs),
    /// Print a shell completion script: fleetop completions bash > /etc/bash_completion.d/fleetop
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per command into DIR
    #[command(hide = true)]
    Manpage {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Nodes, as a nodeset: c012n2, c0[01-12]n[1-3]
    #[arg(value_name = "NODESET", required_unless_present_any = ["resume", "abandon"])]
    pub nodes: Option<String>,
    /// Why (required; recorded with the drain, the reboot and in the audit log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Longest to wait for the nodes' jobs and pods to end; then the node stays drained and the repair says so
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = humantime::parse_duration)]
    pub max_wait: std::time::Duration,
    /// Requeue (else cancel) Slurm jobs and delete pods still running after this long [default: never]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub kill_after: Option<std::time::Duration>,
    /// How often to look at the jobs and at rebooting nodes
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub poll: std::time::Duration,
    /// Go on with the repair that Ctrl-C or a crash interrupted
    #[arg(long, conflicts_with_all = ["nodes", "reason", "abandon"])]
    pub resume: bool,
    /// Forget an unfinished repair; its nodes stay as they are
    #[arg(long, conflicts_with_all = ["nodes", "reason"])]
    pub abandon: bool,
    /// Print the commands each step would run and the jobs it would wait for, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before repairing several nodes
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Nodes, as a nodeset: c012n2, c0[01-12]n[1-3]
    #[arg(value_name = "NODESET")]
    pub nodes: String,
    /// The agent binary to install [default: this fleetop binary]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Say for each node whether it would be updated, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before installing on several nodes
    #[arg(long)]
    pub yes: bool,
    /// Nodes installing at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallel: usize,
    /// Why (recorded in the audit log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Also install the fleetop-agent.service unit (agent --listen), enable and restart it
    #[arg(long)]
    pub systemd: bool,
    /// Where the agent's exporter listens, with --systemd
    #[arg(long, value_name = "ADDR:PORT", default_value = crate::actions::deploy::DEFAULT_LISTEN, requires = "systemd")]
    pub listen: String,
    /// Where the unit goes on the nodes, with --systemd
    #[arg(long, value_name = "DIR", default_value = crate::actions::deploy::DEFAULT_UNIT_DIR, requires = "systemd")]
    pub unit_dir: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ActionFormat,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Nodes, as a nodeset: c012n2, c0[01-12]n[1-3]
    #[arg(value_name = "NODESET")]
    pub nodes: String,
    /// Why (required for drain; recorded in the backend and the audit log)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Print the exact commands and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before acting on several nodes
    #[arg(long)]
    pub yes: bool,
    /// Override the drained-fraction guard, resume nodes drained by others, reboot without a drain read-back,
    /// reset GPUs of a node that is not drained (always asks for the node count) or whose processes are unknown
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ActionFormat,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Reset only this GPU (nvidia-smi -r -i N); without it, every GPU of the node (nvidia-smi -r)
    #[arg(long, value_name = "N")]
    pub gpu: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActionFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RmaArgs {
    /// The node the GPU is in
    #[arg(value_name = "NODE")]
    pub node: String,
    /// The GPU's index on the node, as the TUI, `snapshot` and `nvidia-smi` number it
    #[arg(long, value_name = "N")]
    pub gpu: u32,
    /// Where to write the bundle (a .tar.gz); an existing file is kept unless --force
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Where the recording goes [default: $XDG_STATE_HOME/fleetop/recording]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Delete segments older than this (7d, 12h) [default: keep them, up to 50,000 segments]
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub retain: Option<std::time::Duration>,
    /// How long each segment covers; each opens with every node's state, so seeking reads at most one
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub segment: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A node name, a GPU serial number or a GPU UUID
    #[arg(value_name = "NODE|SERIAL|UUID")]
    pub key: String,
    /// How far back: an age (30d, 12h)
    #[arg(long, value_name = "AGE", default_value = "30d")]
    pub since: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ActionFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    Tenant,
    Cabinet,
    Cause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where the window starts: an age before now (7d, 12h) or a time (2026-11-27T00:00:00Z)
    #[arg(long, value_name = "AGE|TIME", default_value = "7d")]
    pub since: String,
    /// Where it ends, the same way (default: now)
    #[arg(long, value_name = "AGE|TIME")]
    pub until: Option<String>,
    /// How the GPU-hours are grouped: by tenant, by cabinet, or the fleet by cause and reason
    #[arg(long, value_enum, default_value = "cause")]
    pub by: ReportBy,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// The recording `fleetop record` wrote (default: --replay DIR, else the recorder's own directory when it
    /// holds one): the GPU-hours come from it; without one they are unknown, and the repair phases, from the
    /// history store, are still reported
    #[arg(long, value_name = "DIR")]
    pub recording: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Longest the whole pass may take; nodes that have not answered by then are reported unreachable
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Space-separated key=value terms, all must match: node= cabinet= tenant= state= health= (globs allowed)
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// The fleet as it was at TIME (RFC 3339, e.g. 2026-11-27T03:12:00Z, or an age such as 2h): needs a
    /// Prometheus source, or a recording (--replay DIR, where a UTC time of day such as 03:12 works too)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print where the time went to stderr: each phase's wall and CPU time, and each store query's
    #[arg(long)]
    pub timings: bool,
    /// Let nodes out of service (drained, draining, rebooting, resetting, in repair) decide the exit status too;
    /// by default only nodes in service do
    #[arg(long)]
    pub include_drained: bool,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Milliseconds between samples
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub interval: u64,
    /// Print one sample and exit; NVLink and InfiniBand counters are kept per boot in
    /// $XDG_STATE_HOME/fleetop, else /var/lib/fleetop, and the sample says what rose since the previous run
    #[arg(long)]
    pub once: bool,
    /// NVML library to load [default: $FLEETOP_NVML_LIB, then the system's libnvidia-ml.so.1]
    #[arg(long, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Kernel log to read XIDs from: /dev/kmsg records or a dmesg/journalctl -k file
    /// [default: $FLEETOP_KERNEL_LOG, then /dev/kmsg]
    #[arg(long, value_name = "PATH")]
    pub kernel_log: Option<PathBuf>,
    /// Root under which sys/class/infiniband is read [default: $FLEETOP_SYSFS_ROOT, then /]
    #[arg(long, value_name = "PATH")]
    pub sysfs_root: Option<PathBuf>,
    /// Directory read for each GPU process's owner and cgroup [default: $FLEETOP_PROC_ROOT, then /proc]
    #[arg(long, value_name = "PATH")]
    pub proc_root: Option<PathBuf>,
    /// Journal each GPU event (XID, recovery action, ECC, row remap, NVLink, lost) in DIR, so samples carry the
    /// last 30 days across reboots (the service uses /var/lib/fleetop) [default: $FLEETOP_JOURNAL, else none]
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR:PORT (/metrics) instead of writing samples to stdout
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "once")]
    pub listen: Option<String>,
}
