//! `fleetop rma NODE --gpu N`: one GPU's evidence for a return (RMA), gathered once: its identity from a look at
//! the node (serial, UUID, VBIOS, PCI bus id, driver), `nvidia-smi -q -i BUS` and the kernel-log lines naming
//! its PCI address from the node (over SSH, the way actions reach it), its history from the store and the
//! node's last audited repair validation. Each member is bounded and escaped here; one that could not be
//! collected is a verdict (`failed`, and why) in the manifest, never a silent gap. `bundle.rs` writes them.

pub mod bundle;
mod evidence;
mod member;
mod node;

pub use evidence::collect;
pub use member::{Identity, Member, Status};
