//! The Kubernetes adapter: the custom resources and their CRDs, and the records a run keeps in
//! ConfigMaps — shared by the controller and the kubectl plugin.

pub mod conflicts;
pub mod records;
pub mod resources;

pub use resources::{IntuneTenant, RestoreRun, crd_files, crds_yaml};

/// The field manager of every write the operator makes (status, records, finalizers).
pub const FIELD_MANAGER: &str = "restore-operator";
/// The field manager of the kubectl plugin's writes (approvals).
pub const PLUGIN_FIELD_MANAGER: &str = "kubectl-restorerun";

/// The parameters of a merge patch sent as `manager`, the name the object's managedFields record.
pub fn merge_patch_params(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams { field_manager: Some(manager.into()), ..kube::api::PatchParams::default() }
}
