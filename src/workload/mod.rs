//! What runs on the fleet's nodes according to its schedulers: Slurm jobs and Kubernetes pods per node, parsed
//! from the controller's own output (`squeue`, `kubectl`), bounded and made inert like any node data.

mod jobs;
pub(crate) mod kube;
pub mod operations;
pub mod slurm;

pub use jobs::{duration, Job, Scheduler, Workload};
