//! The domain core of restore-operator: the resource shapes, the wizard state machine, the
//! catalogue of Intune types and the backup model. No kube, no HTTP.

pub mod api;
pub mod backup;
pub mod canonical;
pub mod catalog;
pub mod conditions;
pub mod duration;
pub mod engine;
pub mod secrets;
pub mod tenant;
pub mod terminal;
pub mod wizard;
