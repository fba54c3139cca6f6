//! The OpenSSH command that opens an interactive shell on one node, for drilling in from the TUI (also where
//! the fleet is read from a store): the same endpoint, user, keys, ssh config and known_hosts as monitoring,
//! host keys checked strictly by OpenSSH itself.

use super::endpoint::{load_ssh_config, resolve};
use crate::inventory::{expand_home, Inventory, NodeId};

/// `ssh` with its arguments for node `id`. The node's name is what ssh dials, so the ssh config's `Host`
/// blocks for it (ProxyJump among them) apply as they do for fleetop; `HostName`, port and user are the ones
/// fleetop resolved, given on the command line so they win.
pub(crate) fn shell_command(inv: &Inventory, id: NodeId) -> Result<Vec<String>, String> {
    let config = load_ssh_config(inv).map_err(|e| e.to_string())?;
    let endpoint = resolve(inv, config.as_ref(), id)?;
    let s = &inv.settings;
    let config_file = s
        .ssh_config
        .as_deref()
        .map(expand_home)
        .filter(|p| p.exists())
        .map_or_else(|| "none".to_string(), |p| p.display().to_string());
    let mut argv: Vec<String> = vec![
        "ssh".into(),
        "-t".into(),
        "-F".into(),
        config_file,
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!(
            "UserKnownHostsFile={}",
            expand_home(&s.known_hosts).display()
        ),
        "-o".into(),
        format!("HostName={}", endpoint.host),
        "-p".into(),
        endpoint.port.to_string(),
        "-l".into(),
        endpoint.user.clone(),
    ];
    for key in endpoint.identity_files.iter().filter(|k| k.exists()) {
        argv.push("-i".into());
        argv.push(key.display().to_string());
    }
    argv.push("--".into());
    argv.push(inv.nodes[id].name.clone());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_dials_the_node_as_monitoring_does() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let text = format!(
            "[defaults]\nuser = \"ops\"\nport = 2222\nssh_config = \"\"\nknown_hosts = \"{kh}\"\nidentity_files = [\"{key}\", \"{missing}\"]\n\n\
             [[cabinet]]\nname = \"c1\"\nnodes = \"gpu[01-02]\"\n\n[[node]]\nname = \"gpu02\"\nhost = \"10.0.0.2\"\nport = 22\nuser = \"root\"\n",
            kh = dir.path().join("known_hosts").display(),
            key = key.display(),
            missing = dir.path().join("id_rsa").display(),
        );
        let inv = Inventory::parse("t.toml", &text).unwrap();
        let argv = shell_command(&inv, inv.find_node("gpu02").unwrap()).unwrap();
        let expected: Vec<String> = [
            "ssh",
            "-t",
            "-F",
            "none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!(
                "UserKnownHostsFile={}",
                dir.path().join("known_hosts").display()
            ),
            "-o",
            "HostName=10.0.0.2",
            "-p",
            "22",
            "-l",
            "root",
            "-i",
            &key.display().to_string(),
            "--",
            "gpu02",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            argv, expected,
            "a key file that does not exist is not passed"
        );
        let gpu01 = shell_command(&inv, inv.find_node("gpu01").unwrap()).unwrap();
        assert_eq!(
            gpu01[8..14],
            ["-o", "HostName=gpu01", "-p", "2222", "-l", "ops"].map(String::from)
        );
    }
}
