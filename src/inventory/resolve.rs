//! Turns a parsed inventory file into an [`Inventory`], collecting every validation error with its position.

use std::collections::HashMap;
use std::time::Duration;

use super::error::{InventoryError, InventoryErrors, Locator};
use super::file::{DrainFile, InventoryFile, OneOrMany, RebootFile, SourceFile};
use super::model::{
    parse_ib_port, ActionSettings, Cabinet, DrainBackend, Expect, Inventory, Node, NodeId,
    PrometheusSource, RebootBackend, Redfish, Settings, SourceKind, Tenancy, Tenant, Thresholds,
    MAX_GPUS_PER_NODE,
};
use super::nodeset::{self, NodesetError};
use toml::Spanned;

const DEFAULT_INTERVAL_MS: u64 = 2000;
const MIN_INTERVAL_MS: u64 = 100;

/// Longest timeout or deadline accepted: a day. Anything longer is a typo, and a huge one would overflow
/// the clock arithmetic it feeds.
const MAX_WAIT_S: u64 = 86_400;

/// A duration setting, checked against [`MAX_WAIT_S`].
fn duration_setting(
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
    (section, key): (&str, &str),
    value: Option<u64>,
    default: u64,
    unit_ms: bool,
) -> Duration {
    let v = value.unwrap_or(default).max(1);
    let max = if unit_ms {
        MAX_WAIT_S * 1000
    } else {
        MAX_WAIT_S
    };
    if v > max {
        errors.push(loc.at(
            loc.key(section, key),
            format!("[{section}] {key} = {v} is more than one day ({max})"),
        ));
        return if unit_ms {
            Duration::from_millis(default)
        } else {
            Duration::from_secs(default)
        };
    }
    if unit_ms {
        Duration::from_millis(v)
    } else {
        Duration::from_secs(v)
    }
}

/// Longest piece of a bad value quoted in an error: a nodeset may be kilobytes long.
const MAX_VALUE_SHOWN: usize = 80;

/// Most errors listed for one file: past that, the rest are counted, not listed.
const MAX_ERRORS: usize = 100;

/// Every GPU count the file declares, with where: defaults, cabinets, nodes.
fn gpu_counts(parsed: &InventoryFile) -> Vec<(usize, u32)> {
    let mut counts = Vec::new();
    if let Some(g) = parsed.defaults.gpus_per_node {
        counts.push((0, g));
    }
    for c in &parsed.cabinet {
        if let Some(g) = c.gpus_per_node {
            counts.push((c.name.span().start, g));
        }
    }
    for n in &parsed.node {
        if let Some(g) = n.gpus {
            counts.push((n.name.span().start, g));
        }
    }
    counts
}

pub(super) fn resolve(file: &str, text: &str) -> Result<Inventory, InventoryErrors> {
    let loc = Locator { file, text };
    let parsed: InventoryFile =
        toml::from_str(text).map_err(|e| InventoryErrors(vec![loc.toml_error(&e)]))?;
    let mut errors = Vec::new();
    let settings = settings(&parsed, &loc, &mut errors);
    let gpus_default = parsed.defaults.gpus_per_node.unwrap_or(8);

    let mut nodes: Vec<Node> = Vec::new();
    let mut by_name: HashMap<String, (NodeId, usize)> = HashMap::new();
    let mut cabinets: Vec<Cabinet> = Vec::new();
    let mut cabinet_lines: HashMap<String, usize> = HashMap::new();
    // Bytes of every node name so far: bounded like the count, for the whole inventory.
    let mut name_bytes = 0u64;

    'cabinets: for cab in &parsed.cabinet {
        let span = cab.name.span();
        let line = loc.at(span.start, "").line;
        let names = match nodeset::expand(cab.name.get_ref()) {
            Ok(n) => n,
            Err(e) => {
                errors.push(nodeset_error(&loc, &span, &e, "cabinet name"));
                continue;
            }
        };
        for cabinet_name in names {
            if let Some(first) = cabinet_lines.get(&cabinet_name) {
                errors.push(loc.at(
                    span.start,
                    format!("duplicate cabinet {cabinet_name:?} (first at line {first})"),
                ));
                continue;
            }
            cabinet_lines.insert(cabinet_name.clone(), line);
            let expr = cab.nodes.get_ref().replace("{cabinet}", &cabinet_name);
            let nodes_span = cab.nodes.span();
            let members = match nodeset::expand(&expr) {
                Ok(m) => m,
                Err(e) => {
                    let offset = if expr == *cab.nodes.get_ref() {
                        e.offset
                    } else {
                        0
                    };
                    let e = NodesetError { offset, ..e };
                    errors.push(nodeset_error(&loc, &nodes_span, &e, "nodes"));
                    continue;
                }
            };
            // The host limit holds for the whole inventory, not per expression: 384 cabinets that each
            // repeat `n[1-100000]` (a forgotten `{cabinet}`) must not allocate 38 million nodes.
            name_bytes += members.iter().map(|m| m.len() as u64).sum::<u64>();
            if nodes.len() + members.len() > nodeset::MAX_EXPANSION
                || name_bytes > nodeset::MAX_EXPANSION_BYTES
            {
                errors.push(loc.at(
                    nodes_span.start,
                    format!(
                        "the inventory holds more than {} nodes or {} bytes of node names (at cabinet {cabinet_name:?})",
                        nodeset::MAX_EXPANSION,
                        nodeset::MAX_EXPANSION_BYTES
                    ),
                ));
                break 'cabinets;
            }
            if errors.len() >= MAX_ERRORS {
                break 'cabinets;
            }
            let cabinet = cabinets.len();
            let mut ids = Vec::with_capacity(members.len());
            for name in members {
                if errors.len() >= MAX_ERRORS {
                    break;
                }
                if let Some(&(_, first_line)) = by_name.get(&name) {
                    errors.push(loc.at(
                        nodes_span.start,
                        format!("duplicate node {name:?} in cabinet {cabinet_name:?} (already listed at line {first_line})"),
                    ));
                    continue;
                }
                let id = nodes.len();
                by_name.insert(name.clone(), (id, loc.at(nodes_span.start, "").line));
                ids.push(id);
                nodes.push(Node {
                    name,
                    cabinet,
                    expected_gpus: cab.gpus_per_node.unwrap_or(gpus_default),
                    gpus_declared: cab.gpus_per_node.is_some()
                        || parsed.defaults.gpus_per_node.is_some(),
                    tenancy: Vec::new(),
                    host: None,
                    port: None,
                    user: None,
                    agent_path: None,
                    bmc: None,
                });
            }
            cabinets.push(Cabinet {
                name: cabinet_name,
                // `-0.0` is a budget of zero; kept as written it would print as `-0.0 kW`.
                power_budget_kw: cab.power_budget_kw.map(|kw| kw + 0.0),
                nodes: ids,
                drain: cab
                    .drain_backend
                    .as_ref()
                    .map(|b| drain_backend(b, &parsed.drain, &loc, &mut errors)),
                reboot: cab
                    .reboot_backend
                    .as_ref()
                    .map(|b| reboot_backend(b, &parsed.reboot, &loc, &mut errors)),
            });
        }
    }

    let tenants = tenants(&parsed, &loc, &by_name, &mut nodes, &mut errors);
    apply_node_overrides(&parsed, &loc, &by_name, &mut nodes, &mut errors);
    for (span, gpus) in gpu_counts(&parsed) {
        if gpus > MAX_GPUS_PER_NODE {
            errors.push(loc.at(
                span,
                format!("{gpus} GPUs per node is more than fleetop accepts ({MAX_GPUS_PER_NODE})"),
            ));
        }
    }
    if errors.len() >= MAX_ERRORS {
        errors.truncate(MAX_ERRORS);
        errors.push(loc.at(
            0,
            format!("stopped after {MAX_ERRORS} errors: there may be more errors; fix these and check again"),
        ));
    }

    if errors.is_empty() && nodes.is_empty() {
        errors.push(loc.at(
            0,
            "inventory defines no nodes (add a [[cabinet]] with `nodes = \"...\"`)",
        ));
    }
    if !errors.is_empty() {
        return Err(InventoryErrors(errors));
    }
    let actions = action_settings(&parsed, &loc, &mut errors);
    // A bad key on a `[[cabinet]]` naming many cabinets is one mistake, reported once.
    errors.dedup();
    if !errors.is_empty() {
        return Err(InventoryErrors(errors));
    }
    let t = &parsed.thresholds;
    for (key, value) in [
        ("gpu_temp_warn_c", t.gpu_temp_warn_c),
        ("gpu_temp_crit_c", t.gpu_temp_crit_c),
        ("mem_temp_warn_c", t.mem_temp_warn_c),
        ("mem_temp_crit_c", t.mem_temp_crit_c),
    ] {
        if let Some(v) = value.filter(|v| !(v.is_finite() && (0.0..=200.0).contains(v))) {
            errors.push(loc.at(
                loc.key("thresholds", key),
                format!("[thresholds] {key} = {v} is not a temperature between 0 and 200 °C"),
            ));
        }
    }
    for cab in &parsed.cabinet {
        if let Some(kw) = cab
            .power_budget_kw
            .filter(|kw| !(kw.is_finite() && *kw >= 0.0))
        {
            errors.push(loc.at(
                cab.name.span().start,
                format!("power_budget_kw = {kw} is not a power (a finite number of kW, 0 or more)"),
            ));
        }
    }
    let e = &parsed.expect;
    if let Some(n) = e
        .gpus_per_node
        .as_ref()
        .filter(|n| !(1..=MAX_GPUS_PER_NODE).contains(n.get_ref()))
    {
        errors.push(loc.at(
            n.span().start,
            format!(
                "[expect] gpus_per_node = {} is not between 1 and {MAX_GPUS_PER_NODE}",
                n.get_ref()
            ),
        ));
    }
    if let Some(n) = e.ib_ports.as_ref().filter(|n| *n.get_ref() > 256) {
        errors.push(loc.at(
            n.span().start,
            format!("[expect] ib_ports = {} is more than 256", n.get_ref()),
        ));
    }
    if let Some(r) = e
        .ib_rate_gbps
        .as_ref()
        .filter(|r| !(r.get_ref().is_finite() && (0.0..=3200.0).contains(r.get_ref())))
    {
        errors.push(loc.at(
            r.span().start,
            format!(
                "[expect] ib_rate_gbps = {} is not a rate between 0 and 3200 Gb/s",
                r.get_ref()
            ),
        ));
    }
    let mut ib_ignore = Vec::new();
    for name in e.ib_ignore.iter().flatten() {
        match parse_ib_port(name.get_ref()) {
            Some(port) => ib_ignore.push(port),
            None => errors.push(loc.at(
                name.span().start,
                format!(
                    "[expect] ib_ignore: {:?} is not an HCA (\"mlx5_4\") or a port (\"mlx5_4/1\")",
                    name.get_ref().chars().take(64).collect::<String>()
                ),
            )),
        }
    }
    let prometheus = prometheus_source(&parsed.source, (&loc, 0, "source"), &mut errors);
    if !errors.is_empty() {
        return Err(InventoryErrors(errors));
    }
    Ok(Inventory {
        expect: Expect {
            ib_ports: e.ib_ports.as_ref().map(|n| *n.get_ref()),
            ib_rate_gbps: e.ib_rate_gbps.as_ref().map(|r| *r.get_ref()),
            ib_ignore,
            hca_firmware: e.hca_firmware.clone(),
            driver: e.driver.clone(),
            vbios: e.vbios.clone(),
            gpu_model: match &e.gpu_model {
                None => Vec::new(),
                Some(OneOrMany::One(m)) => vec![m.clone()],
                Some(OneOrMany::Many(ms)) => ms.clone(),
            },
            gpus_per_node: e.gpus_per_node.as_ref().map(|n| *n.get_ref()),
        },
        actions,
        prometheus,
        by_name: std::sync::OnceLock::new(),
        source: file.to_string(),
        simulated: false,
        settings,
        thresholds: Thresholds {
            gpu_temp_warn_c: t.gpu_temp_warn_c,
            gpu_temp_crit_c: t.gpu_temp_crit_c,
            mem_temp_warn_c: t.mem_temp_warn_c,
            mem_temp_crit_c: t.mem_temp_crit_c,
        },
        cabinets,
        tenants,
        nodes,
        merged_sites: Vec::new(),
        site: None,
        file: None,
    })
}

/// `[source]` (or a config's `[context.source]`, the first such section at or after byte `from`) resolved:
/// `None` for SSH or when it is invalid (then `errors` says why).
pub(crate) fn prometheus_source(
    s: &SourceFile,
    (loc, from, section): (&Locator, usize, &str),
    errors: &mut Vec<InventoryError>,
) -> Option<PrometheusSource> {
    let key = |k: &str| loc.key_after(from, section, k);
    if s.kind.unwrap_or_default() != SourceKind::Prometheus {
        return None;
    }
    let Some(url) = s
        .url
        .as_deref()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        errors.push(loc.at(
            key("kind"),
            format!(
                "[{section}] kind = \"prometheus\" needs url = \"http(s)://…\" (got {:?})",
                s.url.as_deref().unwrap_or("")
            ),
        ));
        return None;
    };
    let mut p = PrometheusSource::at(url);
    p.bearer_token_file = s.bearer_token_file.clone();
    p.basic_auth_file = s.basic_auth_file.clone();
    p.ca_file = s.ca_file.clone();
    if let Some(label) = &s.node_label {
        // It goes into every query's `by (…)`: a label name, nothing else.
        let mut chars = label.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            errors.push(loc.at(
                key("node_label"),
                format!(
                    "node_label {:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                    crate::text::escape(label)
                ),
            ));
            return None;
        }
        p.node_label = label.clone();
    }
    p.node_suffix = s.node_suffix.clone();
    match (&s.node_pattern, &s.node_replacement) {
        (Some(pattern), replacement) => match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(re) => {
                p.node_rewrite = Some((re, replacement.clone().unwrap_or_else(|| "$1".into())));
            }
            Err(e) => {
                let first = e.to_string();
                let why = first.lines().last().unwrap_or("not a regular expression");
                errors.push(loc.at(
                    key("node_pattern"),
                    format!(
                        "node_pattern {:?} is not a regular expression: {}",
                        crate::text::escape(pattern),
                        crate::text::escape(why)
                    ),
                ));
                return None;
            }
        },
        (None, Some(_)) => {
            errors.push(loc.at(
                key("node_replacement"),
                "node_replacement needs node_pattern",
            ));
            return None;
        }
        (None, None) => {}
    }
    Some(p)
}

fn nodeset_error(
    loc: &Locator,
    span: &std::ops::Range<usize>,
    e: &NodesetError,
    what: &str,
) -> InventoryError {
    let value = loc.text.get(span.clone()).unwrap_or("");
    let value = crate::text::cut(value, MAX_VALUE_SHOWN);
    loc.in_string(span, e.offset, format!("bad {what} {value}: {}", e.message))
}

fn settings(parsed: &InventoryFile, loc: &Locator, errors: &mut Vec<InventoryError>) -> Settings {
    let d = &parsed.defaults;
    let interval_ms = match &d.interval_ms {
        Some(v) if *v.get_ref() < MIN_INTERVAL_MS => {
            errors.push(loc.at(
                v.span().start,
                format!(
                    "interval_ms = {} is below the minimum of {MIN_INTERVAL_MS}",
                    v.get_ref()
                ),
            ));
            DEFAULT_INTERVAL_MS
        }
        Some(v) => *v.get_ref(),
        None => DEFAULT_INTERVAL_MS,
    };
    if interval_ms > MAX_WAIT_S * 1000 {
        errors.push(loc.at(
            loc.key("defaults", "interval_ms"),
            format!("[defaults] interval_ms = {interval_ms} is more than one day"),
        ));
    }
    let interval_ms = interval_ms.min(MAX_WAIT_S * 1000);
    let mut ms = |key: &str, v: Option<u64>, default: u64| {
        duration_setting(loc, errors, ("defaults", key), v, default, true)
    };
    let connect_timeout = ms("connect_timeout_ms", d.connect_timeout_ms, 5000);
    let handshake_timeout = ms("handshake_timeout_ms", d.handshake_timeout_ms, 10_000);
    let first_sample_timeout = ms("first_sample_timeout_ms", d.first_sample_timeout_ms, 10_000);
    let agent_recheck = ms("agent_recheck_ms", d.agent_recheck_ms, 300_000);
    Settings {
        user: d.user.clone(),
        port: d.port,
        interval: Duration::from_millis(interval_ms),
        known_hosts: d
            .known_hosts
            .clone()
            .unwrap_or_else(|| "~/.ssh/known_hosts".into()),
        identity_files: d.identity_files.clone().unwrap_or_default(),
        ssh_config: match d.ssh_config.as_deref() {
            Some("") => None,
            Some(p) => Some(p.to_string()),
            None => Some("~/.ssh/config".into()),
        },
        agent_path: d.agent_path.clone().unwrap_or_else(|| "fleetop".into()),
        connect_timeout,
        handshake_timeout,
        first_sample_timeout,
        agent_recheck,
        max_concurrent_handshakes: d.max_concurrent_handshakes.unwrap_or(96).max(1),
        tenant_from: d.tenant_from.unwrap_or_default(),
    }
}

fn tenants(
    parsed: &InventoryFile,
    loc: &Locator,
    by_name: &HashMap<String, (NodeId, usize)>,
    nodes: &mut [Node],
    errors: &mut Vec<InventoryError>,
) -> Vec<Tenant> {
    let mut tenants: Vec<Tenant> = Vec::new();
    let mut tenant_lines: Vec<usize> = Vec::new();
    for t in &parsed.tenant {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let name = t.name.get_ref().clone();
        if let Some(bad) = name.chars().find(|&c| crate::text::is_dangerous(c)) {
            errors.push(loc.at(
                t.name.span().start,
                format!("tenant name {name:?} holds the control character {bad:?}"),
            ));
            continue;
        }
        let line = loc.at(t.name.span().start, "").line;
        if let Some(i) = tenants.iter().position(|x| x.name == name) {
            errors.push(loc.at(
                t.name.span().start,
                format!(
                    "duplicate tenant {name:?} (first at line {})",
                    tenant_lines[i]
                ),
            ));
            continue;
        }
        let members = match nodeset::expand(t.nodes.get_ref()) {
            Ok(m) => m,
            Err(e) => {
                errors.push(nodeset_error(loc, &t.nodes.span(), &e, "nodes"));
                continue;
            }
        };
        let gpus = match &t.gpus {
            None => None,
            Some(g) => match nodeset::expand_indices(g.get_ref()) {
                Ok(list) => Some(list),
                Err(e) => {
                    errors.push(nodeset_error(loc, &g.span(), &e, "gpus"));
                    continue;
                }
            },
        };
        let index = tenants.len();
        let mut ids = Vec::new();
        for member in members {
            if errors.len() >= MAX_ERRORS {
                break;
            }
            let Some(&(id, _)) = by_name.get(&member) else {
                errors.push(loc.at(
                    t.nodes.span().start,
                    format!("tenant {name:?} names node {member:?}, which no [[cabinet]] holds"),
                ));
                continue;
            };
            let node = &mut nodes[id];
            if let Some(bad) = gpus
                .as_ref()
                .and_then(|g| g.iter().find(|&&i| i >= node.expected_gpus))
            {
                errors.push(
                    loc.at(
                        t.gpus
                            .as_ref()
                            .map_or(t.nodes.span().start, |g| g.span().start),
                        format!(
                            "tenant {name:?}: GPU {bad} does not exist on {member:?} ({} GPUs)",
                            node.expected_gpus
                        ),
                    ),
                );
                continue;
            }
            if let Some(clash) = node
                .tenancy
                .iter()
                .find(|held| overlaps(held.gpus.as_deref(), gpus.as_deref()))
            {
                let other = &tenants[clash.tenant];
                errors.push(loc.at(
                    t.nodes.span().start,
                    format!(
                        "node {member:?} is in two tenants: {:?} (line {}) and {name:?} hold the same GPUs",
                        other.name, tenant_lines[clash.tenant]
                    ),
                ));
                continue;
            }
            node.tenancy.push(Tenancy {
                tenant: index,
                gpus: gpus.clone(),
            });
            ids.push(id);
        }
        tenants.push(Tenant { name, nodes: ids });
        tenant_lines.push(line);
    }
    tenants
}

/// Two holds overlap unless both name GPU lists that share no index.
fn overlaps(a: Option<&[u32]>, b: Option<&[u32]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|g| b.contains(g)),
        _ => true,
    }
}

fn apply_node_overrides(
    parsed: &InventoryFile,
    loc: &Locator,
    by_name: &HashMap<String, (NodeId, usize)>,
    nodes: &mut [Node],
    errors: &mut Vec<InventoryError>,
) {
    for o in &parsed.node {
        let members = match nodeset::expand(o.name.get_ref()) {
            Ok(m) => m,
            Err(e) => {
                errors.push(nodeset_error(loc, &o.name.span(), &e, "node name"));
                continue;
            }
        };
        for member in members {
            if errors.len() >= MAX_ERRORS {
                break;
            }
            let Some(&(id, _)) = by_name.get(&member) else {
                errors.push(loc.at(
                    o.name.span().start,
                    format!("[[node]] {member:?} is not in any [[cabinet]]"),
                ));
                continue;
            };
            let node = &mut nodes[id];
            node.host = o.host.clone().or(node.host.take());
            node.port = o.port.or(node.port);
            node.user = o.user.clone().or(node.user.take());
            node.expected_gpus = o.gpus.unwrap_or(node.expected_gpus);
            node.gpus_declared |= o.gpus.is_some();
            node.agent_path = o.agent_path.clone().or(node.agent_path.take());
            node.bmc = o.bmc.clone().or(node.bmc.take());
        }
    }
}

fn action_settings(
    parsed: &InventoryFile,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> ActionSettings {
    let d = &parsed.drain;
    let r = &parsed.reboot;
    let drain = d
        .backend
        .as_ref()
        .map_or(DrainBackend::Slurm, |b| drain_backend(b, d, loc, errors));
    let reboot = r
        .backend
        .as_ref()
        .map_or(RebootBackend::Ssh, |b| reboot_backend(b, r, loc, errors));
    let fraction = d.max_drained_fraction.unwrap_or(0.25);
    if !(0.0..=1.0).contains(&fraction) {
        errors.push(loc.at(
            0,
            format!("[drain] max_drained_fraction = {fraction} is not between 0 and 1"),
        ));
    }
    let drain_timeout =
        duration_setting(loc, errors, ("drain", "timeout_s"), d.timeout_s, 60, false);
    let reboot_deadline = duration_setting(
        loc,
        errors,
        ("reboot", "deadline_s"),
        r.deadline_s,
        900,
        false,
    );
    ActionSettings {
        drain,
        controller: d.controller.clone().filter(|c| !c.is_empty()),
        drain_timeout,
        max_drained_fraction: fraction,
        reboot,
        require_drained: r.require_drained.unwrap_or(true),
        max_concurrent_reboots: r.max_concurrent.unwrap_or(4).max(1),
        reboot_deadline,
        bmc_template: r.bmc.clone().unwrap_or_else(|| "{node}-bmc".into()),
        read_only: parsed.actions.read_only.unwrap_or(false),
        audit_log: parsed.actions.audit_log.clone(),
        repair: super::repair::resolve(&parsed.repair, loc, errors),
    }
}

/// A setting a backend cannot work without.
fn need(
    errors: &mut Vec<InventoryError>,
    loc: &Locator,
    what: &str,
    value: &Option<String>,
    at: usize,
) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.clone(),
        _ => {
            errors.push(loc.at(at, format!("this backend needs `{what}`")));
            String::new()
        }
    }
}

pub(super) fn drain_backend(
    b: &Spanned<String>,
    d: &DrainFile,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> DrainBackend {
    {
        match b.get_ref().as_str() {
            "slurm" => DrainBackend::Slurm,
            "kubernetes" => DrainBackend::Kubernetes,
            "command" => DrainBackend::Command {
                drain: need(
                    errors,
                    loc,
                    "drain_command",
                    &d.drain_command,
                    b.span().start,
                ),
                undrain: need(
                    errors,
                    loc,
                    "undrain_command",
                    &d.undrain_command,
                    b.span().start,
                ),
            },
            other => {
                errors.push(loc.at(
                    b.span().start,
                    format!("unknown drain backend {other:?} (slurm, kubernetes, command)"),
                ));
                DrainBackend::Slurm
            }
        }
    }
}

pub(super) fn reboot_backend(
    b: &Spanned<String>,
    r: &RebootFile,
    loc: &Locator,
    errors: &mut Vec<InventoryError>,
) -> RebootBackend {
    {
        match b.get_ref().as_str() {
            "ssh" => RebootBackend::Ssh,
            "slurm" => RebootBackend::Slurm,
            "ipmi" => RebootBackend::Ipmi {
                user: need(errors, loc, "ipmi_user", &r.ipmi_user, b.span().start),
                password_env: r
                    .ipmi_password_env
                    .clone()
                    .unwrap_or_else(|| "IPMI_PASSWORD".into()),
            },
            "command" => RebootBackend::Command {
                template: need(errors, loc, "command", &r.command, b.span().start),
            },
            "redfish" => RebootBackend::Redfish(Redfish {
                reset_type: r
                    .redfish_reset_type
                    .clone()
                    .unwrap_or_else(|| "ForceRestart".into()),
                system: r.redfish_system.clone(),
                credentials_file: r.redfish_credentials_file.clone(),
                credentials_env: r
                    .redfish_credentials_env
                    .clone()
                    .unwrap_or_else(|| "FLEETOP_REDFISH_CREDENTIALS".into()),
                ca_file: r.redfish_ca_file.clone(),
            }),
            other => {
                errors.push(loc.at(
                    b.span().start,
                    format!(
                        "unknown reboot backend {other:?} (ssh, slurm, ipmi, redfish, command)"
                    ),
                ));
                RebootBackend::Ssh
            }
        }
    }
}
