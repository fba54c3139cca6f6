//! Reads the node's InfiniBand ports from sysfs (`<root>/sys/class/infiniband/<hca>/ports/<n>/`): state,
//! physical state, rate, link layer and the error counters. `--sysfs-root` points tests at a copied tree.

use std::io::Read;
use std::path::Path;

use crate::telemetry::fabric::{
    parse_rate, IbCounters, IbPort, IB_COUNTERS, MAX_HCAS, MAX_PORTS_PER_HCA,
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
                if let Some(v) = value(&p.join("counters").join(c)).and_then(|v| v.parse().ok()) {
                    counters.set(c, v);
                }
            }
            out.push(IbPort {
                hca: hca.clone(),
                port: number,
                hca_type: hca_type.clone(),
                link_layer: value(&p.join("link_layer")),
                state: value(&p.join("state")),
                phys_state: value(&p.join("phys_state")),
                rate_gbps: value(&p.join("rate")).as_deref().and_then(parse_rate),
                counters,
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

/// One sysfs value, trimmed; `None` when missing, unreadable, empty or longer than a value can be.
fn value(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_VALUE)
        .read_to_string(&mut text)
        .ok()?;
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
        assert!(mlx5[0].counters.all().iter().all(|(_, v)| v.is_some()));
    }

    fn ports_of(name: &str) -> Vec<IbPort> {
        ports(&fixture(name)).unwrap()
    }

    #[test]
    fn a_node_without_infiniband_has_none_checked() {
        assert_eq!(ports(Path::new("/nonexistent-root")), Some(Vec::new()));
    }
}
