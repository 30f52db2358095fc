//! A Kubernetes API emulator for end-to-end tests with kubectl and kube-rs (test support only).
//! It serves discovery, OpenAPI v3, CRUD/patch/apply/watch with API-server semantics over HTTP.

pub mod admission_policy;
pub mod api;
pub mod auth;
pub mod builtin;
pub mod crd;
pub mod discovery;
pub mod emulator;
pub mod error;
pub mod faults;
pub mod fields;
pub mod http;
pub mod jsonpath;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod proto;
pub mod rbac;
pub mod resource;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod vap_cel;
pub mod watch;

pub use api::EmulatorConfig;
pub use emulator::{Emulator, EmulatorHandle};
pub use error::{ApiError, EmulatorError};
