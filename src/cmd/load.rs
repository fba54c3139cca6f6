//! What every command starts from: the inventory chosen by `--demo`, `--inventory` or the default search path
//! (with `--source` applied), and the transport that reaches it.

use std::sync::Arc;

use crate::cli::Global;
use crate::inventory::{self, Inventory};
use crate::transport::prometheus::PrometheusTransport;
use crate::transport::sim::SimTransport;
use crate::transport::ssh::SshTransport;
use crate::transport::Transport;

/// The inventory chosen by `--demo`, `--inventory` or the default search path.
pub(crate) fn load_inventory(g: &Global) -> Result<Inventory, String> {
    // A bad `--source` is a usage error with `--demo` too, not silently ignored.
    if let Some(source) = &g.source {
        source_override(source, None)?;
    }
    if g.demo {
        return Ok(Inventory::demo());
    }
    let path = g
        .inventory
        .clone()
        .or_else(inventory::default_path)
        .ok_or_else(|| {
            "no inventory: pass --inventory FILE, set $FLEETOP_INVENTORY, create ./inventory.toml \
         or $XDG_CONFIG_HOME/fleetop/inventory.toml — or try the simulated fleet with --demo"
                .to_string()
        })?;
    let mut inv = Inventory::load(&path).map_err(|e| e.to_string())?;
    if let Some(source) = &g.source {
        inv.prometheus = source_override(source, inv.prometheus.take())?;
    }
    Ok(inv)
}

/// `--source prometheus=URL` (keeping the inventory's other `[source]` settings) or `--source ssh`.
fn source_override(
    text: &str,
    inventory: Option<inventory::PrometheusSource>,
) -> Result<Option<inventory::PrometheusSource>, String> {
    match text.split_once('=') {
        None if text == "ssh" => Ok(None),
        Some(("prometheus", url)) if url.starts_with("http://") || url.starts_with("https://") => {
            let mut source = inventory.unwrap_or_else(|| inventory::PrometheusSource::at(url));
            source.url = url.trim_end_matches('/').to_string();
            Ok(Some(source))
        }
        _ => Err(format!(
            "--source: expected prometheus=http(s)://HOST:PORT or ssh, got {:?}",
            crate::text::escape(text)
        )),
    }
}

/// The inventory and the transport that reaches it: simulated for `--demo`, SSH otherwise; `one_pass`
/// asks each node for a single sample (snapshots) instead of following it.
pub(crate) fn prepare(
    g: &Global,
    one_pass: bool,
) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let inv = Arc::new(load_inventory(g)?);
    let transport: Box<dyn Transport> = if g.demo {
        Box::new(SimTransport::default())
    } else if let Some(source) = &inv.prometheus {
        let p = PrometheusTransport::new(source.clone());
        Box::new(if one_pass { p.one_pass() } else { p })
    } else {
        let ssh = SshTransport::new(&inv).map_err(|e| e.to_string())?;
        Box::new(if one_pass { ssh.one_pass() } else { ssh })
    };
    Ok((inv, transport))
}
