//! restore-operator: the Kubernetes adapter and the command line around the domain core.
//! Modules here hold kube/HTTP types; the pure logic lives in the `restore-core` crate.

pub mod cli;
pub mod controller;
pub mod driver;
pub mod kube;
pub mod plugin;
pub mod report_html;
pub mod runner;
pub mod telemetry;
pub mod tls;
