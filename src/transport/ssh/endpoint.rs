//! Where and as whom to log in to each node: the inventory first, then `~/.ssh/config`, then defaults.

use std::path::PathBuf;

use ssh2_config::{ParseRule, SshConfig};

use crate::inventory::{expand_home, Inventory, NodeId};

/// One SSH hop: what to dial, as whom, with which keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    /// Name or address dialled and looked up in known_hosts.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    /// Jump host to tunnel through (ssh config `ProxyJump`); it may have a jump host of its own, the chain's
    /// first hop being the innermost.
    pub jump: Option<Box<Endpoint>>,
}

/// Loads the ssh client config named by the inventory; a missing file is no config, a broken one an error.
pub(crate) fn load_ssh_config(inv: &Inventory) -> anyhow::Result<Option<SshConfig>> {
    let Some(path) = inv.settings.ssh_config.as_deref() else {
        return Ok(None);
    };
    let path = expand_home(path);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: cannot read ssh config: {e}", path.display()),
    };
    let mut reader = std::io::BufReader::new(file);
    let config = SshConfig::default()
        .parse(
            &mut reader,
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| anyhow::anyhow!("{}: bad ssh config: {e}", path.display()))?;
    Ok(Some(config))
}

fn default_identity_files() -> Vec<PathBuf> {
    ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"]
        .iter()
        .map(|p| expand_home(p))
        .collect()
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

/// Resolves a host alias through the ssh config, with explicit values (from the inventory) winning.
fn hop(
    config: Option<&SshConfig>,
    alias: &str,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    keys: &[String],
) -> Endpoint {
    let params = config.map(|c| c.query(alias));
    let from_config = params.as_ref();
    let identity_files = if !keys.is_empty() {
        keys.iter().map(|k| expand_home(k)).collect()
    } else {
        from_config
            .and_then(|p| p.identity_file.clone())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(default_identity_files)
    };
    Endpoint {
        host: host
            .or_else(|| from_config.and_then(|p| p.host_name.clone()))
            .unwrap_or_else(|| alias.to_string()),
        port: port
            .or_else(|| from_config.and_then(|p| p.port))
            .unwrap_or(22),
        user: user
            .or_else(|| from_config.and_then(|p| p.user.clone()))
            .unwrap_or_else(local_user),
        identity_files,
        jump: None,
    }
}

/// Most hops in a ProxyJump chain: each is a session and a relay thread per node.
const MAX_JUMPS: usize = 4;

/// Parses one ProxyJump entry, `[user@]host[:port]`.
fn parse_jump(spec: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p
                .parse()
                .map_err(|_| format!("bad port in ProxyJump {spec:?}"))?;
            (h.to_string(), Some(port))
        }
        _ => (rest.to_string(), None),
    };
    if host.is_empty() {
        return Err(format!("empty host in ProxyJump {spec:?}"));
    }
    Ok((user, host, port))
}

/// The endpoint for a host that is not a node (a Slurm controller): defaults, then ssh config.
pub(crate) fn resolve_host(inv: &Inventory, config: Option<&SshConfig>, alias: &str) -> Endpoint {
    let s = &inv.settings;
    hop(
        config,
        alias,
        None,
        s.port,
        s.user.clone(),
        &s.identity_files,
    )
}

/// The endpoint for one node. Precedence: `[[node]]`, then `[defaults]`, then ssh config, then built-ins.
pub(crate) fn resolve(
    inv: &Inventory,
    config: Option<&SshConfig>,
    id: NodeId,
) -> Result<Endpoint, String> {
    let node = &inv.nodes[id];
    let s = &inv.settings;
    let mut endpoint = hop(
        config,
        &node.name,
        node.host.clone(),
        node.port.or(s.port),
        node.user.clone().or_else(|| s.user.clone()),
        &s.identity_files,
    );
    let jumps = config
        .and_then(|c| c.query(&node.name).proxy_jump)
        .unwrap_or_default();
    match jumps.as_slice() {
        [] => {}
        [one] if one.eq_ignore_ascii_case("none") => {}
        hops if hops.len() > MAX_JUMPS => {
            return Err(format!(
                "ProxyJump of {} hops ({}): at most {MAX_JUMPS}",
                hops.len(),
                hops.join(",")
            ))
        }
        hops => {
            // As OpenSSH's `-J a,b`: dial a, from a reach b, from b the node. Each hop is looked up in the
            // ssh config by its own name; its own ProxyJump does not apply inside a chain.
            let mut chain: Option<Box<Endpoint>> = None;
            for spec in hops {
                let (user, alias, port) = parse_jump(spec)?;
                let mut next = hop(config, &alias, None, port, user, &s.identity_files);
                next.jump = chain.take();
                chain = Some(Box::new(next));
            }
            endpoint.jump = chain;
        }
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_fills_what_the_inventory_leaves_open() {
        let inv = Inventory::parse(
            "t.toml",
            "[defaults]\nuser = \"ops\"\n[[cabinet]]\nname = \"c1\"\nnodes = \"n[1-2]\"\n[[node]]\nname = \"n2\"\nhost = \"10.0.0.2\"\n",
        )
        .unwrap();
        let text = "Host n*\n  HostName 127.0.0.9\n  Port 2222\n  User cfguser\n  IdentityFile /keys/id\n  ProxyJump jumper@bastion:2200\n";
        let config = SshConfig::default()
            .parse(&mut text.as_bytes(), ParseRule::ALLOW_UNKNOWN_FIELDS)
            .unwrap();
        let n1 = resolve(&inv, Some(&config), 0).unwrap();
        assert_eq!(
            (n1.host.as_str(), n1.port, n1.user.as_str()),
            ("127.0.0.9", 2222, "ops")
        );
        assert_eq!(n1.identity_files, vec![PathBuf::from("/keys/id")]);
        let jump = n1.jump.unwrap();
        assert_eq!(
            (jump.host.as_str(), jump.port, jump.user.as_str()),
            ("bastion", 2200, "jumper")
        );
        let n2 = resolve(&inv, Some(&config), 1).unwrap();
        assert_eq!(n2.host, "10.0.0.2", "[[node]] host beats HostName");

        // A chain: dial `outer`, from it reach `inner`, from there the node.
        let text = "Host inner\n  HostName 10.9.0.2\n  Port 2201\n\nHost n*\n  ProxyJump outer,admin@inner\n";
        let config = SshConfig::default()
            .parse(&mut text.as_bytes(), ParseRule::ALLOW_UNKNOWN_FIELDS)
            .unwrap();
        let n1 = resolve(&inv, Some(&config), 0).unwrap();
        let last = n1.jump.unwrap();
        assert_eq!(
            (last.host.as_str(), last.port, last.user.as_str()),
            ("10.9.0.2", 2201, "admin")
        );
        let first = last.jump.unwrap();
        assert_eq!((first.host.as_str(), first.port), ("outer", 22));
        assert!(first.jump.is_none());
        let text = "Host n*\n  ProxyJump a,b,c,d,e\n";
        let config = SshConfig::default()
            .parse(&mut text.as_bytes(), ParseRule::ALLOW_UNKNOWN_FIELDS)
            .unwrap();
        let err = resolve(&inv, Some(&config), 0).unwrap_err();
        assert!(
            err.contains("ProxyJump of 5 hops (a,b,c,d,e): at most 4"),
            "{err}"
        );
    }

    #[test]
    fn jump_specs() {
        assert_eq!(
            parse_jump("a@b:1").unwrap(),
            (Some("a".into()), "b".into(), Some(1))
        );
        assert_eq!(parse_jump("b").unwrap(), (None, "b".into(), None));
        assert!(parse_jump("b:x").is_err());
    }
}
