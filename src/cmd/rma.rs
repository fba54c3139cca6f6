//! `fleetop rma NODE --gpu N --out FILE`: writes one GPU's RMA evidence bundle (`rma/`) and prints its members,
//! one line each, on stdout. Exit status: 0 every member collected (or found empty), 1 the bundle was written
//! but a member failed (the manifest says why), 3 nothing was written (bad input, FILE exists, cannot write).

use crate::actions::exec::Executor;
use crate::cli::{Global, RmaArgs};
use crate::rma::{bundle, Status};
use crate::runtime::{EXIT_CANNOT_RUN, EXIT_FAILED};

pub fn run(g: &Global, args: &RmaArgs) -> i32 {
    match rma(g, args) {
        Ok(code) => code,
        Err(e) => {
            crate::text::warn(&e);
            EXIT_CANNOT_RUN
        }
    }
}

fn rma(g: &Global, args: &RmaArgs) -> Result<i32, String> {
    // Refused before anything is asked of the node; `bundle::write` checks again when it places the file.
    if args.out.exists() && !args.force {
        return Err(format!(
            "{} exists: give another --out, or --force to replace it",
            args.out.display()
        ));
    }
    // Under `--context all` the node is named with its site and read through that site's own settings.
    let (g, node_name) = super::load::site_scoped(g, &args.node)?;
    let g = &g;
    let inv = super::load::load_inventory(g)?;
    let node = inv
        .find_node(&node_name)
        .ok_or_else(|| format!("unknown node {:?}: not in {}", node_name, inv.source))?;
    let exec = if g.demo {
        Executor::simulated()
    } else {
        Executor::real(&inv)?
    };
    let audit_log = crate::actions::run::audit_path(&inv);
    let name = inv.nodes[node].name.clone();
    let (identity, mut members) = crate::rma::collect(&inv, &exec, node, args.gpu, &audit_log);
    bundle::bound_total(&mut members);
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    bundle::write(
        &args.out,
        args.force,
        &name,
        args.gpu,
        identity.as_ref(),
        &members,
        now_s,
    )?;
    let mut text = format!("{}\n", args.out.display());
    for m in &members {
        let status = match m.status {
            Status::Collected => "collected",
            Status::Truncated => "truncated",
            Status::None => "none",
            Status::Failed => "FAILED",
        };
        text.push_str(&format!(
            "  {:<18} {:<9} {:>7} B  {}\n",
            m.name,
            status,
            m.bytes,
            m.detail.as_deref().unwrap_or("")
        ));
    }
    crate::text::print(&text);
    Ok(if bundle::complete(&members) {
        0
    } else {
        EXIT_FAILED
    })
}
