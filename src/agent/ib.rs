//! Reads the node's InfiniBand ports from sysfs (`<root>/sys/class/infiniband/<hca>/ports/<n>/`): state,
//! physical state, rate, link layer and the error counters. `--sysfs-root` points tests at a copied tree.

use std::io::Read;
use std::path::Path;

use crate::telemetry::fabric::{
    parse_rate, IbCounters, IbPort, PortState, IB_COUNTERS, IB_HW_COUNTERS, MAX_HCAS,
    MAX_PORTS_PER_HCA,
};

/// Longest sysfs value read: these files hold one short line.
const MAX_VALUE: u64 = 256;

/// Every port, sorted; `Some([])` when the node has no InfiniBand class (no HCA, no driver), `None` when
/// the directory exists but cannot be listed.
pub(crate) fn ports(root: &Path) -> Option<Vec<IbPort>> {
    let class = root.join("sys/class/infiniband");
    let hcas = match sorted_entries(&class) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        Err(_) => return None,
    };
    let mut out = Vec::new();
    for hca in hcas.into_iter().take(MAX_HCAS) {
        let dir = class.join(&hca);
        let hca_type = value(&dir.join("hca_type"));
        let fw_ver = value(&dir.join("fw_ver"));
        let Ok(ports) = sorted_entries(&dir.join("ports")) else {
            continue;
        };
        let mut numbered: Vec<(u32, String)> = ports
            .into_iter()
            .filter_map(|p| Some((p.parse().ok()?, p)))
            .collect();
        numbered.sort_unstable();
        for (number, name) in numbered.into_iter().take(MAX_PORTS_PER_HCA) {
            let p = dir.join("ports").join(name);
            let mut counters = IbCounters::default();
            for c in IB_COUNTERS {
                let group = if IB_HW_COUNTERS.contains(&c) {
                    "hw_counters"
                } else {
                    "counters"
                };
                if let Some(v) = value(&p.join(group).join(c)).and_then(|v| v.parse().ok()) {
                    counters.set(c, v);
                }
            }
            out.push(IbPort {
                hca: hca.clone(),
                port: number,
                hca_type: hca_type.clone(),
                link_layer: value(&p.join("link_layer")),
                state: value(&p.join("state")).map(PortState::from),
                phys_state: value(&p.join("phys_state")).map(PortState::from),
                rate_gbps: value(&p.join("rate")).as_deref().and_then(parse_rate),
                counters,
                fw_ver: fw_ver.clone(),
                rose: None,
            });
        }
    }
    Some(out)
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// One sysfs value, trimmed; `None` when missing, unreadable, empty, longer than a value can be, or not a
/// regular file. Opened non-blocking: an open() of a FIFO blocks until a writer appears, and one under
/// `--sysfs-root` would hang the agent before its first sample; what is not a regular file is not read.
fn value(path: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_VALUE).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sysfs")
            .join(name)
    }

    #[test]
    fn real_trees_read_as_ports() {
        let ports = ports(&fixture("node-exporter")).unwrap();
        let names: Vec<String> = ports.iter().map(IbPort::name).collect();
        assert_eq!(names, ["i40iw0 port 1", "mlx4_0 port 1", "mlx4_0 port 2"]);
        let mlx4 = &ports[1];
        assert_eq!(mlx4.hca_type.as_deref(), Some("MT4099"));
        assert_eq!(mlx4.rate_gbps, Some(40.0));
        assert!(mlx4.is_up() && mlx4.is_infiniband());
        assert_eq!(mlx4.counters.port_xmit_discards, Some(5));
        assert!(
            ports[0].counters == IbCounters::default(),
            "i40iw0 has no PMA: {:?}",
            ports[0].counters
        );

        let mlx5 = ports_of("procfs-mlx5");
        assert_eq!(mlx5.len(), 1);
        assert_eq!(mlx5[0].rate_gbps, Some(25.0));
        assert_eq!(mlx5[0].fw_ver.as_deref(), Some("14.28.2006"));
        assert_eq!(
            mlx5[0].counters.local_ack_timeout_err,
            Some(131),
            "from hw_counters/"
        );
        assert_eq!(mlx5[0].counters.port_rcv_remote_physical_errors, Some(0));
        assert!(mlx5[0].counters.all().iter().all(|(_, v)| v.is_some()));
    }

    fn ports_of(name: &str) -> Vec<IbPort> {
        ports(&fixture(name)).unwrap()
    }

    #[test]
    fn a_fifo_or_device_under_the_root_is_no_value_and_never_blocks() {
        let root = tempfile::tempdir().unwrap();
        let port = root.path().join("sys/class/infiniband/mlx5_0/ports/1");
        std::fs::create_dir_all(port.join("counters")).unwrap();
        std::fs::write(port.join("rate"), "400 Gb/sec (4X NDR)\n").unwrap();
        for fifo in ["state", "counters/symbol_error"] {
            let path =
                std::ffi::CString::new(port.join(fifo).into_os_string().into_encoded_bytes())
                    .unwrap();
            // SAFETY: mkfifo reads the NUL-terminated path we own.
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        }
        std::os::unix::fs::symlink("/dev/zero", port.join("phys_state")).unwrap();
        // Read on a thread of its own: a blocking open() of the FIFO never returns, and the test says so
        // instead of hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        let root_path = root.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(ports(&root_path));
        });
        let read = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading a FIFO under the sysfs root blocked");
        let ports = read.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].rate_gbps, Some(400.0));
        assert_eq!((&ports[0].state, &ports[0].phys_state), (&None, &None));
        assert_eq!(ports[0].counters.symbol_error, None);
    }

    #[test]
    fn a_node_without_infiniband_has_none_checked() {
        assert_eq!(ports(Path::new("/nonexistent-root")), Some(Vec::new()));
    }
}
