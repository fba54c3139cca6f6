//! The integration tests, one binary: each file beside this one is a module, run with
//! `cargo test --test it [module::][name]`. One binary links once instead of once per file; the harness is
//! shared by every module, so it holds no state that assumes a process of its own (fleets take address
//! blocks from one counter, tmux servers and shared files are named by the process and a counter).

/// The harness, split by what it starts: the sshd fleet, the fake NVML library, Slurm, Prometheus, tmux.
mod common;
/// Fixture `App` states for the TUI modules.
mod tui_common;

mod actions_cli;
mod actions_redfish;
mod actions_reset;
mod actions_slurm;
mod agent_nvml;
mod catalogue_lines;
mod compact_stream;
mod contexts;
mod deploy;
mod exporter_http;
mod fuzz;
mod history;
mod import_map;
mod inventory_check;
mod jobs_kubectl;
mod kernel_log_lines;
mod known_hosts_openssh;
mod prometheus_dcgm;
mod prometheus_scrape;
mod prometheus_source;
mod real_gpu_captures;
mod recording;
mod repair;
mod repair_remedy;
mod repair_safety;
mod replay_jobs;
mod report;
mod report_gaps;
mod rma;
mod session_wrapper;
mod sites_history;
mod sites_jobs;
mod sites_orphans;
mod sites_past;
mod sites_recording;
mod sites_records;
mod sites_rules;
mod sites_scope;
mod smi_captures;
mod snapshot_cli;
mod ssh_live;
mod ssh_poller;
mod ssh_snapshot;
mod tui_actions;
mod tui_snapshots;
mod tui_tmux;
mod tui_update;
mod write_errors;
mod xid_history;
