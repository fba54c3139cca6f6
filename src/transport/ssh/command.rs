//! What runs on a node: the agent (streaming, or `--once`), else nvidia-smi, chosen on the node in one
//! command and wrapped to end with its SSH session. Built from the plan's parts, never by editing another command's text.

use super::endpoint::Endpoint;
use crate::inventory::NodeId;
use crate::telemetry::delta::{COMPACT_ENV, DEFAULT_FULL_EVERY};
use crate::telemetry::smi_csv;
use crate::transport::decode::{StreamDecoder, SMI_FOLLOWS};

/// Everything one node's worker needs.
#[derive(Debug, Clone)]
pub(super) struct NodePlan {
    pub(super) node: NodeId,
    pub(super) endpoint: Result<Endpoint, String>,
    /// The agent path, quoted for the remote shell.
    pub(super) agent: String,
    pub(super) interval_ms: u64,
    /// The agent when the node has it, else nvidia-smi: the first command, one exec per node either way.
    pub(super) agent_or_smi_command: String,
    pub(super) smi_command: String,
    /// The same commands as the node runs them, for messages.
    pub(super) shown: Shown,
    pub(super) expected_gpus: u32,
}

/// The agent and nvidia-smi commands without fleetop's wrapper: a message names what the node ran, not the
/// `exec sh -c 'exec 3<&0; …'` around it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    agent: String,
    smi: String,
}

impl Shown {
    /// What the node was running: nvidia-smi once its output said so, else the agent (a node without one
    /// says so at once, before nvidia-smi starts).
    pub(crate) fn running(&self, decoder: &StreamDecoder) -> &str {
        if decoder.is_smi() {
            &self.smi
        } else {
            &self.agent
        }
    }
}

impl NodePlan {
    /// The remote commands: the agent (streaming, or `--once`), else nvidia-smi (looping, or one pass).
    pub(super) fn commands(&mut self, once: bool) {
        let once_flag = if once { " --once" } else { "" };
        let agent = format!(
            "{} agent{once_flag} --interval {}",
            self.agent, self.interval_ms
        );
        let smi = smi_csv::remote_command((!once).then_some(self.interval_ms));
        // The node decides in one command whether it has an agent: a second exec per node cost a 1,024-node
        // snapshot of agentless nodes more than a second. An agent that is there but cannot run (exit 127)
        // still gets nvidia-smi afterwards, from `smi_command`.
        // Following, the agent is asked for the compact stream in its environment, which an older agent
        // ignores (it would refuse an unknown flag): it sends whole samples, which the decoder reads too.
        let compact = if once {
            String::new()
        } else {
            format!("{COMPACT_ENV}={DEFAULT_FULL_EVERY} ")
        };
        let choose = format!(
            "if command -v {a} >/dev/null 2>&1; then {compact}exec {agent}; fi; echo '{SMI_FOLLOWS}'; {smi}",
            a = self.agent
        );
        self.agent_or_smi_command = ending_with_session(&format!("sh -c {}", quoted(&choose)));
        self.smi_command = ending_with_session(&format!("sh -c {}", quoted(&smi)));
        self.shown = Shown { agent, smi };
    }
}

/// `text` as one word for the remote shell. A NUL cannot be passed at all (shlex refuses it), so such a text
/// becomes the empty word rather than going out unquoted.
pub(super) fn quoted(text: &str) -> String {
    shlex::try_quote(text).map_or_else(|_| "''".into(), |q| q.into_owned())
}

/// Wraps a remote command (already quoted for the remote shell) so that it ends with the SSH session: without
/// a terminal, sshd leaves a command running when the client goes away, and a hung agent or nvidia-smi would
/// pile up on the node with every snapshot. A watcher reads the session's stdin, which ends when the session
/// does, and then signals the session's process group (sshd gives each session its own), children included;
/// the command replaces the wrapper's shell, so its exit status is the session's.
pub(crate) fn ending_with_session(command: &str) -> String {
    // A background list's stdin is /dev/null in sh, so the session's stdin goes to the watcher on fd 3; the
    // watcher's own output goes nowhere, or sshd would keep the channel open for it.
    // Each line the jump host writes becomes a SIGUSR1 to the command: a compact-stream agent's request for
    // a full sample (only such an agent is ever sent one). The watcher signals `$$`, the pid the command takes
    // over by `exec`, and never a pid of a child the shell may already have reaped: both `exec`s (the login
    // shell's and the wrapper's) keep that pid the one sshd's `setsid` made the session's, and a session's id
    // is not given to another process while a member of the session — the watcher itself — lives. So a line
    // read after the command ended signals nothing.
    const WATCH: &str = r#"exec sh -c 'exec 3<&0; { while read -r _ <&3; do kill -USR1 $$; done; kill -TERM 0; } >/dev/null 2>&1 & exec "$@" </dev/null 3<&-' fleetop"#;
    format!("{WATCH} {command}")
}
