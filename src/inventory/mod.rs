//! The fleet as the operator describes it: cabinets, nodes, tenants and how to reach them.

mod error;
mod file;
mod load;
mod model;
pub mod nodeset;
mod repair;
mod resolve;
mod sites;

pub(crate) use error::Locator;
pub use error::{InventoryError, InventoryErrors};
pub(crate) use file::SourceFile;
pub(crate) use load::{default_path, expand_home, DEMO_INVENTORY};
pub use model::{
    ActionSettings, Cabinet, DrainBackend, Expect, Inventory, Node, PrometheusSource,
    RebootBackend, Redfish, Settings, Tenancy, Tenant, TenantFrom, Thresholds,
};
pub(crate) use model::{MergedSite, NodeId, MAX_GPUS_PER_NODE};
pub(crate) use repair::DCGMI_DIAG;
pub use repair::{RepairSettings, Validate};
pub(crate) use resolve::prometheus_source;
pub(crate) use sites::{name_within_site, shared_name, site_of, SITE_SEPARATOR};
