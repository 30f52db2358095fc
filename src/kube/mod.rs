//! The Kubernetes adapter: the custom resources, their CRDs, and (with the controller issue)
//! reconciliation around the core's wizard.

pub mod resources;

pub use resources::{IntuneTenant, RestoreRun, crd_files, crds_yaml};
