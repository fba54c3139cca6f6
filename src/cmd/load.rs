//! What every command starts from: the inventory chosen by `--demo`, `--inventory`, `--context` or the default
//! search path (with `--source` applied), and the transport that reaches it.

use std::sync::Arc;

use crate::cli::Global;
use crate::config::{Config, ContextSource, ALL_CONTEXTS};
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
    let mut inv = match (&g.inventory, chosen_context(g)) {
        (None, Some(name)) => context_inventory(&name)?,
        _ => Inventory::load(&inventory_path(g)?).map_err(|e| e.to_string())?,
    };
    if let Some(source) = &g.source {
        inv.prometheus = source_override(source, inv.prometheus.take())?;
    }
    Ok(inv)
}

/// `--context`, else `$FLEETOP_CONTEXT` (which `--inventory` and `--demo` override, as they do
/// `$FLEETOP_INVENTORY`).
pub(crate) fn chosen_context(g: &Global) -> Option<String> {
    if g.context.is_some() {
        return g.context.clone();
    }
    if g.inventory.is_some() || g.demo {
        return None;
    }
    std::env::var("FLEETOP_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
}

/// The inventory of the context `name`, with the context's source in place of the inventory's own.
fn context_inventory(name: &str) -> Result<Inventory, String> {
    if name == ALL_CONTEXTS {
        return Err(format!(
            "--context {ALL_CONTEXTS}: following every site at once is not available yet; name one context"
        ));
    }
    let config = Config::load()?;
    let context = config.context(name)?;
    let mut inv = Inventory::load(&context.inventory).map_err(|e| e.to_string())?;
    match &context.source {
        None => {}
        Some(ContextSource::Given(source)) => inv.prometheus = source.clone(),
        Some(ContextSource::FromInventory(path)) => {
            let holder = Inventory::load(path).map_err(|e| e.to_string())?;
            inv.prometheus = Some(holder.prometheus.ok_or_else(|| {
                format!(
                    "context {name:?}: source {} has no [source] kind = \"prometheus\"",
                    path.display()
                )
            })?);
        }
    }
    Ok(inv)
}

fn inventory_path(g: &Global) -> Result<std::path::PathBuf, String> {
    g.inventory
        .clone()
        .or_else(inventory::default_path)
        .ok_or_else(|| {
            "no inventory: pass --inventory FILE, set $FLEETOP_INVENTORY, create ./inventory.toml \
         or $XDG_CONFIG_HOME/fleetop/inventory.toml — or try the simulated fleet with --demo"
                .to_string()
        })
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
