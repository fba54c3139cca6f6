//! What every command starts from: the inventory chosen by `--demo`, `--inventory`, `--context` or the default
//! search path (with `--source` applied), and the transport that reaches it.

use std::sync::Arc;

use crate::cli::Global;
use crate::config::{Config, ContextSource, ALL_CONTEXTS};
use crate::inventory::{self, Inventory};
use crate::transport::prometheus::PrometheusTransport;
use crate::transport::sim::SimTransport;
use crate::transport::sites::{Site, SitesTransport, Unanswered};
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
        (None, Some(name)) if name == ALL_CONTEXTS => {
            let sites: Vec<(String, Arc<Inventory>)> = every_context()?
                .into_iter()
                .map(|(n, i)| (n, Arc::new(i)))
                .collect();
            Inventory::merge(&sites).ok_or("--context all: config.toml has no [[context]]")?
        }
        (None, Some(name)) => context_inventory(&Config::load()?, &name)?,
        _ => {
            let path = inventory_path(g)?;
            let mut inv = Inventory::load(&path).map_err(|e| e.to_string())?;
            inv.site = adopted_site(&path);
            inv.file = canonical(&path);
            inv
        }
    };
    if let Some(source) = &g.source {
        inv.prometheus = source_override(source, inv.prometheus.take())?;
    }
    Ok(inv)
}

/// The site a run without a context writes and reads its records as: the one site of the `[[context]]`s whose
/// inventory is this same file (an engineer who runs with a site's file means that site), so its reset or ack
/// is not a record without a site that every context sharing the log would count. None where no context, or
/// contexts of several sites, name the file, or the config cannot be read (the run itself does not need it).
fn adopted_site(inventory: &std::path::Path) -> Option<String> {
    let config = Config::load().ok()?;
    let file = std::fs::canonicalize(inventory).ok()?;
    let mut sites = config
        .contexts
        .iter()
        .filter(|c| std::fs::canonicalize(&c.inventory).is_ok_and(|p| p == file))
        .map(|c| &c.site);
    let first = sites.next()?;
    sites.all(|s| s == first).then(|| first.clone())
}

/// Whether `--context all` (or `$FLEETOP_CONTEXT=all`) chose every site at once, `--inventory` not overriding it.
pub(crate) fn every_site_chosen(g: &Global) -> bool {
    g.inventory.is_none() && chosen_context(g).as_deref() == Some(ALL_CONTEXTS)
}

/// The names of the sites `--context all` reads, in the config's order.
pub(crate) fn site_names() -> Result<Vec<String>, String> {
    let config = Config::load()?;
    if config.contexts.is_empty() {
        return Err("--context all: config.toml has no [[context]]".into());
    }
    Ok(config.contexts.iter().map(|c| c.name.clone()).collect())
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

/// An action's nodeset under `--context all` must name its one site, `SITE/NODESET`: the action then runs as
/// with `--context SITE NODESET`, through that site's own backends. Elsewhere both are returned unchanged.
pub(crate) fn site_scoped(g: &Global, nodes: &str) -> Result<(Global, String), String> {
    if !every_site_chosen(g) {
        return Ok((g.clone(), nodes.to_string()));
    }
    let refusal = || {
        format!(
            "--context {ALL_CONTEXTS}: an action names its site, as SITE{sep}NODESET (one site per action), \
             got {:?}",
            crate::text::escape(nodes),
            sep = inventory::SITE_SEPARATOR
        )
    };
    let (site, rest) = nodes
        .split_once(inventory::SITE_SEPARATOR)
        .ok_or_else(refusal)?;
    if site.is_empty() || rest.is_empty() || rest.contains(inventory::SITE_SEPARATOR) {
        return Err(refusal());
    }
    let mut scoped = g.clone();
    scoped.context = Some(site.to_string());
    Ok((scoped, rest.to_string()))
}

/// Every context's inventory, by name, in the config's order.
fn every_context() -> Result<Vec<(String, Inventory)>, String> {
    let config = Config::load()?;
    config
        .contexts
        .iter()
        .map(|c| Ok((c.name.clone(), context_inventory(&config, &c.name)?)))
        .collect()
}

/// The warnings of the audit logs the `[[context]]`s write (no `[actions] audit_log` of their own means the
/// default one), each log read once:
/// - one that contexts of several sites resolve to and that holds records without a site (written with no context, or
///   before records carried their site): each of those contexts counts them, so one site's reset or ack there
///   counts for another site's node of the same name. Records written under a context carry its site and count
///   for it alone.
/// - one that holds records of a site no context has (a context renamed or removed): no reader counts them, so
///   that site's resets, acknowledgements and repairs are lost to every context.
///
/// Contexts whose inventory does not load are left to the load's own error.
pub(crate) fn shared_audit_logs(contexts: &[crate::config::Context]) -> Vec<String> {
    let mut logs: Vec<(std::path::PathBuf, Vec<&crate::config::Context>)> = Vec::new();
    for c in contexts {
        let Ok(inv) = Inventory::load(&c.inventory) else {
            continue;
        };
        let path = crate::actions::run::audit_path(&inv);
        match logs.iter_mut().find(|(p, _)| *p == path) {
            Some((_, sharing)) => sharing.push(c),
            None => logs.push((path, vec![c])),
        }
    }
    let known: Vec<&str> = contexts.iter().map(|c| c.site.as_str()).collect();
    let mut warnings = Vec::new();
    for (path, sharing) in logs {
        let scan = crate::actions::audit::scan(&path, false);
        let orphans: Vec<String> = scan
            .sites
            .iter()
            .filter(|(site, _)| !known.contains(&site.as_str()))
            .map(|(site, count)| format!("{} ({count})", crate::text::escape(site)))
            .collect();
        if !orphans.is_empty() {
            warnings.push(format!(
                "the audit log {} holds records of sites no [[context]] has: {}{}; no context counts them \
                 (a renamed context's resets and acks): name it again, or give a context `site = NAME`",
                crate::text::escape(&path.display().to_string()),
                orphans.join(", "),
                if scan.sites.len() >= crate::actions::audit::MAX_SITES {
                    ", and maybe more"
                } else {
                    ""
                }
            ));
        }
        let siteless = scan.siteless;
        let several_sites = sharing.iter().any(|c| c.site != sharing[0].site);
        if several_sites && siteless > 0 {
            let names: Vec<&str> = sharing.iter().map(|c| c.name.as_str()).collect();
            warnings.push(format!(
                    "contexts {} share the audit log {}, whose {siteless} record(s) without a site (written with \
                     no context, or before records carried their site) count for each of them: a reset or ack \
                     there of one site's node counts for another's of the same name; give each site its own \
                     [actions] audit_log",
                    crate::text::escape(&names.join(", ")),
                    crate::text::escape(&path.display().to_string())
            ));
        }
    }
    warnings
}

/// The inventory of the context `name`, with the context's source in place of the inventory's own.
fn context_inventory(config: &Config, name: &str) -> Result<Inventory, String> {
    let context = config.context(name)?;
    let mut inv = Inventory::load(&context.inventory).map_err(|e| e.to_string())?;
    inv.site = Some(context.site.clone());
    inv.file = canonical(&context.inventory);
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

/// `path` as a mark on records (`store::Scope`): canonical, so one file named two ways is one mark.
fn canonical(path: &std::path::Path) -> Option<String> {
    std::fs::canonicalize(path)
        .ok()
        .map(|p| p.display().to_string())
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
    if every_site_chosen(g) {
        return prepare_sites(g, |inv| transport_for(g, inv, one_pass));
    }
    let inv = Arc::new(load_inventory(g)?);
    let transport = transport_for(g, &inv, one_pass)?;
    Ok((inv, transport))
}

/// Why `snapshot --at` cannot answer for a fleet read over SSH.
const NO_PAST: &str =
    "--at needs a Prometheus source ([source] kind = \"prometheus\" or --source prometheus=URL) \
                       or a recording (--replay DIR): the nodes themselves keep no history";

/// `snapshot --at`: the inventory and a one-pass transport that answers as of `at` from the fleet's Prometheus
/// store; under `--context all` each site from its own store, a site without one answering no data (and no
/// store at all is refused, as for one site).
pub(crate) fn prepare_at(
    g: &Global,
    at: std::time::SystemTime,
) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let past = |inv: &Inventory| -> Box<dyn Transport> {
        match &inv.prometheus {
            Some(source) => Box::new(PrometheusTransport::new(source.clone()).one_pass().at(at)),
            None => Box::new(Unanswered(NO_PAST.to_string())),
        }
    };
    let (inv, transport) = if every_site_chosen(g) {
        prepare_sites(g, |inv| Ok(past(inv)))?
    } else {
        let inv = Arc::new(load_inventory(g)?);
        let transport = past(&inv);
        (inv, transport)
    };
    let any_store = match inv.merged_sites() {
        [] => inv.prometheus.is_some(),
        sites => sites.iter().any(|s| s.inventory.prometheus.is_some()),
    };
    if !any_store {
        return Err(NO_PAST.to_string());
    }
    Ok((inv, transport))
}

/// `--context all`: the merged inventory, followed through each site's own transport (`transport_of` it).
fn prepare_sites(
    g: &Global,
    transport_of: impl Fn(&Inventory) -> Result<Box<dyn Transport>, String>,
) -> Result<(Arc<Inventory>, Box<dyn Transport>), String> {
    let mut sites = Vec::new();
    let mut first_node = 0;
    for (name, mut inv) in every_context()? {
        if let Some(source) = &g.source {
            inv.prometheus = source_override(source, inv.prometheus.take())?;
        }
        let inventory = Arc::new(inv);
        let transport = transport_of(&inventory)?;
        let nodes = inventory.nodes.len();
        sites.push((
            name,
            Site {
                inventory,
                transport,
                first_node,
            },
        ));
        first_node += nodes;
    }
    let named: Vec<(String, Arc<Inventory>)> = sites
        .iter()
        .map(|(n, s)| (n.clone(), Arc::clone(&s.inventory)))
        .collect();
    let merged = Inventory::merge(&named).ok_or("--context all: config.toml has no [[context]]")?;
    let transport = SitesTransport::new(sites.into_iter().map(|(_, s)| s).collect());
    Ok((Arc::new(merged), Box::new(transport)))
}

/// The transport that reaches `inv`: simulated for `--demo`, its Prometheus store, or SSH.
fn transport_for(
    g: &Global,
    inv: &Inventory,
    one_pass: bool,
) -> Result<Box<dyn Transport>, String> {
    Ok(if g.demo {
        Box::new(SimTransport::default())
    } else if let Some(source) = &inv.prometheus {
        let p = PrometheusTransport::new(source.clone());
        Box::new(if one_pass { p.one_pass() } else { p })
    } else {
        let ssh = SshTransport::new(inv).map_err(|e| e.to_string())?;
        Box::new(if one_pass { ssh.one_pass() } else { ssh })
    })
}
