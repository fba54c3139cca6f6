//! Turns a request into exact commands per node, as argv vectors: user values are whole arguments,
//! never parsed by a shell; a remote shell gets them quoted.

use super::request::{ActionKind, Request};
use crate::inventory::{DrainBackend, Inventory, NodeId, RebootBackend};

/// Where a command runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// On this machine, without a shell.
    Local,
    /// On the Slurm/Kubernetes controller over SSH.
    Controller(String),
    /// On the node itself over SSH.
    Node(NodeId),
    /// A Redfish request to the node's BMC with these settings: `argv` is `[base URL, ResetType]`.
    Redfish(Box<crate::inventory::Redfish>),
}

/// A command line with its program: an argv can never be empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Argv {
    program: String,
    args: Vec<String>,
}

impl Argv {
    pub fn new(program: &str, args: Vec<String>) -> Argv {
        Argv {
            program: program.to_string(),
            args,
        }
    }

    pub(crate) fn program(&self) -> &str {
        &self.program
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The program, then the arguments.
    pub fn to_vec(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

impl TryFrom<Vec<String>> for Argv {
    type Error = String;

    fn try_from(words: Vec<String>) -> Result<Argv, String> {
        let mut words = words.into_iter();
        let program = words.next().ok_or("empty command")?;
        Ok(Argv {
            program,
            args: words.collect(),
        })
    }
}

/// One command of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub place: Place,
    pub argv: Argv,
    /// `(name, source variable)`: environment the command gets from ours (BMC passwords), by name only.
    pub env: Vec<(String, String)>,
}

impl Invocation {
    fn at(place: Place, argv: Argv) -> Invocation {
        Invocation {
            place,
            argv,
            env: Vec::new(),
        }
    }

    /// The argv as one POSIX-shell-quoted line (what a remote shell receives).
    pub fn quoted(&self) -> String {
        self.argv
            .to_vec()
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Exactly what will run, for `--dry-run`, confirmations and the audit log.
    pub fn display(&self, inv: &Inventory) -> String {
        let env: String = self
            .env
            .iter()
            .map(|(name, from)| format!("{name}=${from} "))
            .collect();
        match &self.place {
            Place::Local => format!("{env}{}", self.quoted()),
            Place::Controller(host) => format!("ssh {host} -- {env}{}", self.quoted()),
            Place::Node(id) => format!("ssh {} -- {}", inv.nodes[*id].name, self.quoted()),
            Place::Redfish(_) => format!(
                "POST {}/redfish/v1/Systems/…/Actions/ComputerSystem.Reset {{\"ResetType\": \"{}\"}}",
                self.argv.program(),
                self.argv.args().first().map_or("", String::as_str)
            ),
        }
    }
}

/// Quotes one argument for a POSIX shell; arguments of only safe characters stay bare, for readability.
pub(crate) fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        arg.to_string()
    } else {
        // A NUL cannot be passed in an argument at all; shlex refuses it, and so do we.
        shlex::try_quote(arg)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| "''".into())
    }
}

/// The command for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub node: NodeId,
    pub backend: &'static str,
    pub invocation: Invocation,
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Reasons carry a prefix so fleetop can tell its own drains from others'.
pub(crate) const REASON_PREFIX: &str = "fleetop: ";

fn controller(inv: &Inventory) -> Place {
    inv.actions
        .controller
        .clone()
        .map_or(Place::Local, Place::Controller)
}

/// Splits a user template into argv with shell rules, then fills placeholders inside each argument,
/// so a value can never add, remove or split arguments.
pub(crate) fn template(template: &str, fill: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let words = shlex::split(template)
        .ok_or_else(|| format!("cannot split command template {template:?}"))?;
    if words.is_empty() {
        return Err("empty command template".into());
    }
    Ok(words.iter().map(|w| fill_once(w, fill)).collect())
}

/// Fills `{key}` placeholders in one pass over the template word: text a value brings in (a reason that
/// says `{operator}`) is never filled again.
fn fill_once(word: &str, fill: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match fill
            .iter()
            .find(|(key, _)| after.starts_with(&format!("{{{key}}}")))
        {
            Some((key, value)) => {
                out.push_str(value);
                rest = &after[key.len() + 2..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A GPU reset: `nvidia-smi -r -i N`, or `nvidia-smi -r` for every GPU of the node (why, in `reset.rs`).
pub(crate) fn reset_argv(gpu: Option<u32>) -> Argv {
    let mut args = vec![s("-r")];
    if let Some(g) = gpu {
        args.extend([s("-i"), g.to_string()]);
    }
    Argv::new("nvidia-smi", args)
}

pub fn bmc(inv: &Inventory, node: NodeId) -> String {
    let n = &inv.nodes[node];
    n.bmc
        .clone()
        .unwrap_or_else(|| inv.actions.bmc_template.replace("{node}", &n.name))
}

pub fn plan(inv: &Inventory, req: &Request) -> Result<Vec<Step>, String> {
    let reason = req.reason.clone().unwrap_or_default();
    // Slurm records a reason with every drain and reboot; say who asked when the operator gave none.
    let prefixed = if reason.trim().is_empty() {
        format!("{REASON_PREFIX}{} by {}", req.kind.as_str(), req.operator)
    } else {
        format!("{REASON_PREFIX}{reason}")
    };
    let a = &inv.actions;
    req.nodes
        .iter()
        .map(|&node| {
            let name = inv.nodes[node].name.as_str();
            let fill = [
                ("node", name),
                ("reason", reason.as_str()),
                ("operator", req.operator.as_str()),
            ];
            let (backend, invocation) =
                match (req.kind, inv.drain_backend(node), inv.reboot_backend(node)) {
                    (ActionKind::Drain, DrainBackend::Slurm, _) => (
                        "slurm",
                        Invocation::at(
                            controller(inv),
                            Argv::new(
                                "scontrol",
                                vec![
                                    s("update"),
                                    format!("NodeName={name}"),
                                    s("State=DRAIN"),
                                    format!("Reason={prefixed}"),
                                ],
                            ),
                        ),
                    ),
                    (ActionKind::Undrain, DrainBackend::Slurm, _) => (
                        "slurm",
                        Invocation::at(
                            controller(inv),
                            Argv::new(
                                "scontrol",
                                vec![s("update"), format!("NodeName={name}"), s("State=RESUME")],
                            ),
                        ),
                    ),
                    (ActionKind::Drain, DrainBackend::Kubernetes, _) => (
                        "kubernetes",
                        Invocation::at(
                            controller(inv),
                            // Options first and `--` before the name: a name can never be read as an
                            // option (such as `--selector`, which would drain many nodes).
                            Argv::new(
                                "kubectl",
                                vec![
                                    s("drain"),
                                    s("--ignore-daemonsets"),
                                    s("--delete-emptydir-data"),
                                    format!("--timeout={}s", a.drain_timeout.as_secs()),
                                    s("--"),
                                    s(name),
                                ],
                            ),
                        ),
                    ),
                    (ActionKind::Undrain, DrainBackend::Kubernetes, _) => (
                        "kubernetes",
                        Invocation::at(
                            controller(inv),
                            Argv::new("kubectl", vec![s("uncordon"), s("--"), s(name)]),
                        ),
                    ),
                    (ActionKind::Drain, DrainBackend::Command { drain, .. }, _) => (
                        "command",
                        Invocation::at(Place::Local, Argv::try_from(template(drain, &fill)?)?),
                    ),
                    (ActionKind::Undrain, DrainBackend::Command { undrain, .. }, _) => (
                        "command",
                        Invocation::at(Place::Local, Argv::try_from(template(undrain, &fill)?)?),
                    ),
                    // Always on the node itself, whatever the reboot backend: only its driver can reset a GPU.
                    (ActionKind::Reset, _, _) => (
                        "ssh",
                        Invocation::at(Place::Node(node), reset_argv(req.gpu)),
                    ),
                    (ActionKind::Reboot, _, RebootBackend::Ssh) => (
                        "ssh",
                        Invocation::at(
                            Place::Node(node),
                            Argv::new("systemctl", vec![s("reboot")]),
                        ),
                    ),
                    (ActionKind::Reboot, _, RebootBackend::Slurm) => (
                        "slurm",
                        Invocation::at(
                            controller(inv),
                            Argv::new(
                                "scontrol",
                                // A repair's reboot leaves Slurm's drain in place (no nextstate): the
                                // repair resumes the node itself once it validated it.
                                [s("reboot"), s("ASAP")]
                                    .into_iter()
                                    .chain((!req.keep_drained).then(|| s("nextstate=RESUME")))
                                    .chain([format!("reason={prefixed}"), s(name)])
                                    .collect(),
                            ),
                        ),
                    ),
                    (ActionKind::Reboot, _, RebootBackend::Ipmi { user, password_env }) => {
                        let argv = Argv::new(
                            "ipmitool",
                            vec![
                                s("-I"),
                                s("lanplus"),
                                s("-H"),
                                bmc(inv, node),
                                s("-U"),
                                user.clone(),
                                s("-E"),
                                s("chassis"),
                                s("power"),
                                s("cycle"),
                            ],
                        );
                        let mut inv = Invocation::at(Place::Local, argv);
                        // ipmitool -E reads IPMI_PASSWORD; the secret never appears on a command line.
                        inv.env.push((s("IPMI_PASSWORD"), password_env.clone()));
                        ("ipmi", inv)
                    }
                    (ActionKind::Reboot, _, RebootBackend::Redfish(r)) => {
                        let base = bmc(inv, node);
                        let base = if base.contains("://") {
                            base
                        } else {
                            format!("https://{base}")
                        };
                        (
                            "redfish",
                            Invocation::at(
                                Place::Redfish(Box::new(r.clone())),
                                Argv::new(base.trim_end_matches('/'), vec![r.reset_type.clone()]),
                            ),
                        )
                    }
                    (ActionKind::Reboot, _, RebootBackend::Command { template: t }) => {
                        let bmc = bmc(inv, node);
                        let mut fill = fill.to_vec();
                        fill.push(("bmc", bmc.as_str()));
                        (
                            "command",
                            Invocation::at(Place::Local, Argv::try_from(template(t, &fill)?)?),
                        )
                    }
                };
            Ok(Step {
                node,
                backend,
                invocation,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn quoting_round_trips_through_a_shell_parser(args in proptest::collection::vec("[^\\x00]{0,20}", 1..5)) {
            let inv = Invocation { place: Place::Local, argv: Argv::try_from(args.clone()).unwrap(), env: Vec::new() };
            let parsed = shlex::split(&inv.quoted()).unwrap();
            proptest::prop_assert_eq!(parsed, args);
        }
    }

    proptest::proptest! {
        #[test]
        fn template_values_never_add_or_split_arguments(reason in "\\PC{0,40}", node in "[a-z0-9;$()' \\x22-]{1,12}") {
            let argv = template("tool --node {node} --why {reason}", &[("node", &node), ("reason", &reason)]).unwrap();
            proptest::prop_assert_eq!(argv, vec!["tool".to_string(), "--node".into(), node, "--why".into(), reason]);
        }
    }

    #[test]
    fn templates_keep_values_inside_their_argument() {
        let argv = template(
            "drainer --node {node} --why '{reason} (by {operator})'",
            &[
                ("node", "n1"),
                ("reason", "x; rm -rf / $(id) 'q'"),
                ("operator", "ana"),
            ],
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "drainer",
                "--node",
                "n1",
                "--why",
                "x; rm -rf / $(id) 'q' (by ana)"
            ]
        );
        assert!(template("unbalanced 'quote", &[]).is_err());
        // A value that itself holds a placeholder stays as written.
        let argv = template(
            "drainer {reason} {operator}",
            &[
                ("reason", "see {operator} and {node}"),
                ("operator", "ana"),
                ("node", "n1"),
            ],
        )
        .unwrap();
        assert_eq!(argv, ["drainer", "see {operator} and {node}", "ana"]);
    }
}
