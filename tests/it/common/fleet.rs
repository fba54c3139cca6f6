//! The loopback fleet: real OpenSSH `sshd` processes, each node its own 127.0.x.y address. The remote side
//! runs the real `fleetop agent` on the fake NVML library, or a fake nvidia-smi that prints captured real
//! output; what each node does is chosen by files under `nodes/<address>.*`.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::captures::{fixture, gpu_rows, noheader_row};
use super::fake_nvml::{shared, Shared, Spec};
use super::process::{fleetop_bin, free_port, run, run_bounded};

pub const TEST_USER: &str = "fleetop-test";
/// One sshd listens on at most 16 sockets (OpenSSH's MAX_LISTEN_SOCKS).
const ADDRS_PER_SSHD: usize = 16;

static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The account nodes are logged in as: a dedicated `/bin/sh` user when root (root's own shell
/// startup is slow here), else the current user.
pub fn ssh_user() -> String {
    if !is_root() {
        return std::env::var("USER").unwrap_or_else(|_| "root".into());
    }
    static CREATED: OnceLock<()> = OnceLock::new();
    CREATED.get_or_init(|| {
        let exists = Command::new("id")
            .arg("-u")
            .arg(TEST_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            let _ = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", TEST_USER])
                .status();
        }
        // With UsePAM no, a locked password field (`!`) refuses even key logins.
        run(Command::new("usermod").args(["-p", "*", TEST_USER]));
    });
    TEST_USER.into()
}

/// How a node behaves on the remote side.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// The real agent on the fake NVML library, with this spec.
    Agent(Spec),
    /// No agent installed; the fake nvidia-smi prints these rows (`legacy`: driver rejects clocks_event_reasons).
    Smi { rows: String, legacy: bool },
    /// The agent finds no NVML library.
    NoNvml,
    /// Neither the agent nor nvidia-smi is installed.
    Nothing,
    /// A shell script runs instead of the agent.
    Script(String),
}

impl Behaviour {
    /// No agent; nvidia-smi prints eight rows of a captured H100 under load.
    pub fn smi_h100() -> Behaviour {
        let row = noheader_row(
            &fixture("nvidia-smi/nvidia-h100-80gb-hbm3.load.csv"),
            &fleetop::telemetry::smi_csv::modern_fields(),
        );
        Behaviour::Smi {
            rows: gpu_rows(&row, 8),
            legacy: false,
        }
    }
}

/// One node of the loopback fleet.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub addr: String,
    pub gpus: u32,
}

/// Extra per-node setups that need sshd's cooperation or a fake server.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Nodes whose sshd accepts no key.
    pub refuse_keys: Vec<String>,
    /// Nodes whose known_hosts entry holds another key.
    pub wrong_host_key: Vec<String>,
    /// Nodes missing from known_hosts.
    pub unknown_host_key: Vec<String>,
    /// Nodes whose SFTP server stops reading after 1 MB (`fleet-bin/stalling-sftp`, run by `ForceCommand`,
    /// which lets every other command through).
    pub stalled_sftp: Vec<String>,
    /// Nodes whose sshd has no `Subsystem sftp` line (as on some hardened images): they get sshds of their
    /// own, since OpenSSH 9.2 takes `Subsystem` only globally.
    pub no_sftp: Vec<String>,
    /// Nodes whose sshd offers only CBC ciphers (`Ciphers`, which sshd takes only globally: they get sshds of
    /// their own).
    pub cbc_only: Vec<String>,
    /// Nodes whose `gzip` corrupts what it decompresses (`fleet-bin/gzip-corrupting`), as a bad disk or a
    /// bit flip would.
    pub corrupting_gzip: Vec<String>,
}

/// Which of one sshd's addresses get which quirk.
#[derive(Clone, Copy)]
struct PerNode<'a> {
    refused: &'a [String],
    no_agent: &'a [String],
    stalled: &'a [String],
    corrupting: &'a [String],
    sftp: bool,
    /// The sshd's `Ciphers` line, where it has one.
    ciphers: Option<&'static str>,
}

pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub block: u32,
    pub nodes: Vec<Node>,
    pub user: String,
    sshds: Vec<(PathBuf, Child)>,
    silent: Vec<std::thread::JoinHandle<()>>,
}

fn keygen(path: &Path) -> String {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleetop-test", "-f"])
        .arg(path));
    fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The programs each node runs (`tests/fixtures/fleet-bin/`), into the fleet's `bin/` with its paths filled in.
/// Nodes without an agent find the same tools but `fleetop` in `bin-noagent/`, so a shell's `command -v`
/// answers for them as on a real node.
fn install_tools(root: &Path, shared: &Shared) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet-bin");
    for tool in [
        "fleetop",
        "nvidia-smi",
        "systemctl",
        "scontrol",
        "sinfo",
        "stalling-sftp",
        "dmesg",
    ] {
        let text = fs::read_to_string(source.join(tool))
            .unwrap()
            .replace("@ROOT@", &root.display().to_string())
            .replace("@FLEETOP@", &shared.fleetop.display().to_string())
            .replace("@FAKE_NVML@", &shared.fake_nvml.display().to_string());
        write_exec(&root.join("bin").join(tool), &text);
        if tool != "fleetop" {
            write_exec(&root.join("bin-noagent").join(tool), &text);
        }
    }
    fs::create_dir(root.join("bin-corrupt")).unwrap();
    write_exec(
        &root.join("bin-corrupt").join("gzip"),
        &fs::read_to_string(source.join("gzip-corrupting")).unwrap(),
    );
    fs::write(root.join("empty.kmsg"), "").unwrap();
}

impl Fleet {
    /// `n` healthy agent nodes of 8 GPUs each, every value distinct (seeded by the node's position).
    pub fn agents(n: u32) -> Fleet {
        Fleet::start(
            (0..n).map(|i| Behaviour::Agent(Spec::node(i, 8))).collect(),
            Quirks::default(),
        )
    }

    /// Starts sshd for `behaviours.len()` nodes named `tn01…`, each on its own address.
    pub fn start(behaviours: Vec<Behaviour>, quirks: Quirks) -> Fleet {
        let block = NEXT_BLOCK.fetch_add(1, Ordering::SeqCst);
        assert!(block < 200 && behaviours.len() <= 250 * 250);
        let user = ssh_user();
        let shared = shared();
        let dir = tempfile::Builder::new()
            .prefix("fleetop-fleet-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["bin", "bin-noagent", "nodes", "records", "drained"] {
            fs::create_dir(root.join(sub)).unwrap();
            fs::set_permissions(root.join(sub), fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The remote side runs as the test user: what it records goes where that user may write.
        fs::set_permissions(root.join("records"), fs::Permissions::from_mode(0o1777)).unwrap();
        let host_pub = keygen(&root.join("host_key"));
        let other_pub = keygen(&root.join("other_host_key"));
        let client_pub = keygen(&root.join("client_key"));
        fs::write(root.join("authorized_keys"), format!("{client_pub}\n")).unwrap();
        fs::set_permissions(
            root.join("authorized_keys"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fs::write(root.join("no_keys"), "").unwrap();

        let nodes: Vec<Node> = behaviours
            .iter()
            .enumerate()
            .map(|(i, b)| Node {
                name: format!("tn{:02}", i + 1),
                // 250 nodes per /24, so benchmarks can build fleets of thousands.
                addr: format!("127.{}.{}.{}", 10 + block, i / 250, i % 250 + 1),
                gpus: match b {
                    Behaviour::Agent(spec) => {
                        spec.text.lines().filter(|l| l.starts_with("gpu ")).count() as u32
                    }
                    Behaviour::Smi { rows, .. } => rows.lines().count() as u32,
                    _ => 8,
                },
            })
            .collect();
        for (node, behaviour) in nodes.iter().zip(&behaviours) {
            let base = root.join("nodes").join(&node.addr);
            let mode = match behaviour {
                Behaviour::Agent(spec) => {
                    fs::write(base.with_extension_str("spec"), &spec.text).unwrap();
                    fs::write(base.with_extension_str("kmsg"), spec.kernel_log()).unwrap();
                    "agent"
                }
                Behaviour::Smi { rows, legacy } => {
                    fs::write(base.with_extension_str("csv"), rows).unwrap();
                    if *legacy {
                        fs::write(base.with_extension_str("legacy"), "").unwrap();
                    }
                    "noagent"
                }
                Behaviour::NoNvml => "nonvml",
                Behaviour::Nothing => "nothing",
                Behaviour::Script(text) => {
                    write_exec(&base.with_extension_str("sh"), text);
                    "script"
                }
            };
            fs::write(base.with_extension_str("mode"), mode).unwrap();
        }
        install_tools(&root, shared);
        let mut known_hosts = String::new();
        let port = free_port();
        for node in nodes
            .iter()
            .filter(|n| !quirks.unknown_host_key.contains(&n.name))
        {
            let key = if quirks.wrong_host_key.contains(&node.name) {
                &other_pub
            } else {
                &host_pub
            };
            let _ = writeln!(known_hosts, "[{}]:{port} {key}", node.addr);
        }
        fs::write(root.join("known_hosts"), known_hosts).unwrap();
        let mut fleet = Fleet {
            dir,
            port,
            block,
            nodes,
            user,
            sshds: Vec::new(),
            silent: Vec::new(),
        };
        let refused: Vec<String> = fleet
            .nodes
            .iter()
            .filter(|n| quirks.refuse_keys.contains(&n.name))
            .map(|n| n.addr.clone())
            .collect();
        let no_agent: Vec<String> = fleet
            .nodes
            .iter()
            .zip(&behaviours)
            .filter(|(_, b)| matches!(b, Behaviour::Smi { .. } | Behaviour::Nothing))
            .map(|(n, _)| n.addr.clone())
            .collect();
        let stalled: Vec<String> = fleet
            .nodes
            .iter()
            .filter(|n| quirks.stalled_sftp.contains(&n.name))
            .map(|n| n.addr.clone())
            .collect();
        let corrupting: Vec<String> = fleet
            .nodes
            .iter()
            .filter(|n| quirks.corrupting_gzip.contains(&n.name))
            .map(|n| n.addr.clone())
            .collect();
        let addrs_where = |keep: &dyn Fn(&Node) -> bool| -> Vec<String> {
            fleet
                .nodes
                .iter()
                .filter(|n| keep(n))
                .map(|n| n.addr.clone())
                .collect()
        };
        let own_sshd =
            |n: &Node| quirks.no_sftp.contains(&n.name) || quirks.cbc_only.contains(&n.name);
        let groups: Vec<(Vec<String>, bool, Option<&'static str>)> = [
            (addrs_where(&|n| !own_sshd(n)), true, None),
            (
                addrs_where(&|n| quirks.no_sftp.contains(&n.name)),
                false,
                None,
            ),
            (
                addrs_where(&|n| quirks.cbc_only.contains(&n.name)),
                true,
                Some("aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc"),
            ),
        ]
        .into_iter()
        .flat_map(|(all, sftp, ciphers)| {
            all.chunks(ADDRS_PER_SSHD)
                .map(|g| (g.to_vec(), sftp, ciphers))
                .collect::<Vec<_>>()
        })
        .collect();
        for (i, (group, sftp, ciphers)) in groups.iter().enumerate() {
            let per_node = PerNode {
                refused: &refused,
                no_agent: &no_agent,
                stalled: &stalled,
                corrupting: &corrupting,
                sftp: *sftp,
                ciphers: *ciphers,
            };
            let config = fleet.sshd_config(i, group, &per_node);
            fleet.sshds.push((
                config.clone(),
                spawn_sshd(&config, &root.join(format!("sshd-{i}.log"))),
            ));
        }
        fleet.wait_listening();
        fleet
    }

    fn sshd_config(&self, i: usize, addrs: &[String], per_node: &PerNode) -> PathBuf {
        let PerNode {
            refused,
            no_agent,
            stalled,
            corrupting,
            sftp,
            ciphers,
        } = *per_node;
        let root = self.dir.path();
        let mut cfg = String::new();
        for a in addrs {
            let _ = writeln!(cfg, "ListenAddress {a}:{}", self.port);
        }
        let _ = write!(
            cfg,
            "HostKey {r}/host_key\nPidFile {r}/sshd-{i}.pid\nAuthorizedKeysFile {r}/authorized_keys\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nMaxStartups 1024:100:1024\nMaxSessions 64\nLogLevel VERBOSE\n\
             KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\nAllowTcpForwarding yes\n",
            r = root.display()
        );
        if sftp {
            cfg.push_str("Subsystem sftp internal-sftp\n");
        }
        if let Some(ciphers) = ciphers {
            let _ = writeln!(cfg, "Ciphers {ciphers}");
        }
        // sshd keeps the first SetEnv that applies: the per-node blocks come before the catch-all. An agent
        // run directly (not through bin/fleetop, as after `fleetop deploy`) finds the fake NVML library and
        // its node's spec (nodes/<address>.spec) through these.
        let env = |bin: &str| {
            format!(
                "SetEnv PATH={r}/{bin}:/usr/bin:/bin FLEETOP_NVML_LIB={nvml} FAKE_NVML_SPEC_DIR={r}/nodes \
                 FLEETOP_KERNEL_LOG={r}/empty.kmsg FLEETOP_SYSFS_ROOT={r}/nosysfs\n",
                r = root.display(),
                nvml = shared().fake_nvml.display()
            )
        };
        for a in corrupting.iter().filter(|a| addrs.contains(a)) {
            let corrupt_first = format!("bin-corrupt:{}/bin", root.display());
            let _ = write!(cfg, "Match LocalAddress {a}\n  {}", env(&corrupt_first));
        }
        for a in no_agent.iter().filter(|a| addrs.contains(a)) {
            let _ = write!(cfg, "Match LocalAddress {a}\n  {}", env("bin-noagent"));
        }
        for a in refused.iter().filter(|a| addrs.contains(a)) {
            let _ = write!(
                cfg,
                "Match LocalAddress {a}\n  AuthorizedKeysFile {}/no_keys\n",
                root.display()
            );
        }
        for a in stalled.iter().filter(|a| addrs.contains(a)) {
            let _ = write!(
                cfg,
                "Match LocalAddress {a}\n  ForceCommand {}/bin/stalling-sftp\n",
                root.display()
            );
        }
        let _ = write!(cfg, "Match all\n  {}", env("bin"));
        let path = root.join(format!("sshd-{i}.conf"));
        fs::write(&path, cfg).unwrap();
        path
    }

    /// Waits until every node's sshd sends its SSH banner: a TCP connect alone can succeed before sshd is
    /// ready to talk.
    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for node in &self.nodes {
            while !ssh_banner(&node.addr, self.port) {
                assert!(
                    Instant::now() < deadline,
                    "sshd did not greet on {}:{}: {}",
                    node.addr,
                    self.port,
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn logs(&self) -> String {
        let mut all = String::new();
        for i in 0..self.sshds.len() {
            all += &fs::read_to_string(self.dir.path().join(format!("sshd-{i}.log")))
                .unwrap_or_default();
        }
        all
    }

    /// How many commands the fleet's sshds were asked to run, all nodes together ("Starting session:
    /// command" in sshd's VERBOSE log). The log names a connection by its client port, which the kernel may
    /// reuse for another node at the same time, so per-node counts cannot be read from it; a total equal to
    /// the number of nodes that answered means one each.
    pub fn execs(&self) -> usize {
        self.logs()
            .matches("Starting session: command for ")
            .count()
    }

    /// Kills every sshd of this fleet with its sessions and their commands, so streams really break.
    pub fn stop_sshd(&mut self) {
        for (_, child) in &mut self.sshds {
            // Sessions are forked children that outlive the listener: kill the whole tree, leaves first.
            for pid in descendants(child.id()).into_iter().rev() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts every sshd again on the same addresses and port.
    pub fn restart_sshd(&mut self) {
        let root = self.dir.path().to_path_buf();
        for (i, (config, child)) in self.sshds.iter_mut().enumerate() {
            *child = spawn_sshd(config, &root.join(format!("sshd-{i}-restart.log")));
        }
        self.wait_listening();
    }

    /// An address in this fleet's block with nothing listening (connections are refused).
    pub fn refusing_addr(&self) -> String {
        format!("127.{}.255.251", 10 + self.block)
    }

    /// An address that accepts TCP connections and never says a word.
    pub fn silent_addr(&mut self) -> String {
        let addr = format!("127.{}.255.250", 10 + self.block);
        let listener = TcpListener::bind((addr.as_str(), self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.silent.push(std::thread::spawn(move || {
            let mut held = Vec::new();
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
                if held.len() > 50 {
                    break;
                }
            }
        }));
        addr
    }

    /// An inventory for this fleet plus `extra` nodes given as (name, address) pairs.
    pub fn inventory(&self, extra: &[(String, String)]) -> String {
        let r = self.dir.path().display();
        let mut text = format!(
            "[defaults]\nuser = \"{user}\"\ninterval_ms = 200\nknown_hosts = \"{r}/known_hosts\"\n\
             identity_files = [\"{r}/client_key\"]\nssh_config = \"\"\nagent_path = \"fleetop\"\n\
             connect_timeout_ms = 2000\nhandshake_timeout_ms = 3000\nfirst_sample_timeout_ms = 5000\n\n",
            user = self.user
        );
        let all: Vec<(String, String, u32)> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr.clone(), n.gpus))
            .chain(extra.iter().map(|(n, a)| (n.clone(), a.clone(), 8)))
            .collect();
        let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
        let _ = write!(
            text,
            "[[cabinet]]\nname = \"t1\"\nnodes = \"{}\"\n\n",
            names.join(",")
        );
        for (name, addr, gpus) in &all {
            let _ = write!(
                text,
                "[[node]]\nname = \"{name}\"\nhost = \"{addr}\"\nport = {}\ngpus = {gpus}\n\n",
                self.port
            );
        }
        text
    }

    /// Node `i`'s own directory for its agent (`fleetop deploy` tests), writable by the nodes' user.
    pub fn agent_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("deploy").join(&self.nodes[i].addr)
    }

    pub fn agent_path(&self, i: usize) -> PathBuf {
        self.agent_dir(i).join("fleetop")
    }

    /// The fleet's inventory with each node's `agent_path` in its own [`Fleet::agent_dir`] (nothing there
    /// yet) and an audit log in the fleet's directory.
    pub fn write_inventory_with_agent_dirs(&self) -> PathBuf {
        let mut text = self.inventory(&[]);
        for (i, n) in self.nodes.iter().enumerate() {
            let dir = self.agent_dir(i);
            fs::create_dir_all(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
            text = text.replace(
                &format!("host = \"{}\"\n", n.addr),
                &format!(
                    "host = \"{}\"\nagent_path = \"{}\"\n",
                    n.addr,
                    self.agent_path(i).display()
                ),
            );
        }
        text += &format!(
            "[actions]\naudit_log = \"{}/audit.jsonl\"\n",
            self.dir.path().display()
        );
        let path = self.dir.path().join("deploy.toml");
        fs::write(&path, text).unwrap();
        path
    }

    /// Gives node `i` a copy of the sysfs tree `tests/fixtures/sysfs/<tree>` as its InfiniBand (the agent
    /// reads it through `FLEETOP_SYSFS_ROOT`); returns the copy's `sys/class/infiniband`, for edits.
    pub fn give_sysfs(&self, i: usize, tree: &str) -> PathBuf {
        let to = self
            .dir
            .path()
            .join("nodes")
            .join(format!("{}.sysfs", self.nodes[i].addr));
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sysfs")
            .join(tree);
        run(Command::new("cp").arg("-r").arg(&from).arg(&to));
        run(Command::new("chmod").args(["-R", "a+rX"]).arg(&to));
        to.join("sys/class/infiniband")
    }

    /// The fake NVML spec an agent started directly (not through `bin/fleetop`) finds for node `i`.
    pub fn write_spec(&self, i: usize, spec: &Spec) {
        let path = self
            .dir
            .path()
            .join("nodes")
            .join(format!("{}.spec", self.nodes[i].addr));
        fs::write(path, &spec.text).unwrap();
    }

    pub fn write_inventory(&self, extra: &[(String, String)]) -> PathBuf {
        let path = self.dir.path().join("inventory.toml");
        fs::write(&path, self.inventory(extra)).unwrap();
        path
    }

    /// Runs fleetop with `args` against this fleet and collects its output, within a generous bound.
    pub fn run(&self, args: &[&str]) -> Output {
        run_bounded(&mut self.fleetop(args), Duration::from_secs(60))
    }

    /// `fleetop snapshot` of `inventory` in `format`, with `--timeout SECS`.
    pub fn snapshot(&self, inventory: &Path, format: &str, timeout: &str) -> Output {
        self.run(&[
            "snapshot",
            "--inventory",
            inventory.to_str().unwrap_or_default(),
            "--format",
            format,
            "--timeout",
            timeout,
        ])
    }

    /// `fleetop deploy --inventory INVENTORY ARGS…` against this fleet, within a bound generous enough for
    /// uploading the debug binary.
    pub fn deploy(&self, inventory: &Path, args: &[&str]) -> Output {
        let mut all = vec![
            "deploy",
            "--inventory",
            inventory.to_str().unwrap_or_default(),
        ];
        all.extend_from_slice(args);
        run_bounded(&mut self.fleetop(&all), Duration::from_secs(120))
    }

    /// Runs the fleetop binary as a client, isolated from the caller's ssh config, keys and agent.
    pub fn fleetop(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(fleetop_bin());
        cmd.args(args)
            .env("HOME", self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FLEETOP_INVENTORY")
            .env_remove("FLEETOP_CONTEXT")
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_sshd();
    }
}

/// Every process below `root`, parents before children, read from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name sits in parentheses and may hold spaces: the ppid follows the last ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// True when an SSH server on `addr:port` sends its identification line (`SSH-2.0-…`).
fn ssh_banner(addr: &str, port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((addr, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

fn spawn_sshd(config: &Path, log: &Path) -> Child {
    let _ = fs::create_dir_all("/run/sshd");
    Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(config)
        .arg("-E")
        .arg(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start /usr/sbin/sshd (install openssh-server): {e}"))
}

trait WithExtensionStr {
    fn with_extension_str(&self, ext: &str) -> PathBuf;
}

impl WithExtensionStr for PathBuf {
    /// Appends `.ext` (the base name is an IP address, so `with_extension` would replace its last octet).
    fn with_extension_str(&self, ext: &str) -> PathBuf {
        let mut s = self.clone().into_os_string();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    }
}
