//! Shared test support: a typed RestoreRun like the operator's, an emulator with the fixture CRD,
//! and a kubectl runner that skips (or fails under CI=true) when kubectl is missing.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use kube::CustomResource;
use kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The RestoreRun spec shape of the fixture CRD.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(group = "tenantatlas.io", version = "v1alpha1", kind = "RestoreRun", namespaced)]
#[kube(status = "RestoreRunStatus", shortname = "rr")]
#[serde(rename_all = "camelCase")]
pub struct RestoreRunSpec {
    pub tenant_ref: TenantRef,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_objects: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "previewTTL")]
    pub preview_ttl: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TenantRef {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<TenantRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Default for RestoreRun {
    fn default() -> Self {
        RestoreRun::new("", RestoreRunSpec::default())
    }
}

/// A RestoreRun named `name` for tenant `tenant` reading the ConfigMap `backup`.
pub fn restore_run(name: &str, tenant: &str) -> RestoreRun {
    let mut run = RestoreRun::new(
        name,
        RestoreRunSpec {
            tenant_ref: TenantRef { name: tenant.into() },
            source: Source { url: None, config_map_ref: Some(TenantRef { name: "backup".into() }) },
            ..Default::default()
        },
    );
    run.metadata.namespace = Some("default".into());
    run
}

/// The fixture directory of this crate's tests.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture RestoreRun CRD text.
pub fn fixture_crd() -> String {
    std::fs::read_to_string(fixtures().join("restorerun-crd.yaml")).expect("fixture CRD is readable")
}

/// An emulator with the fixture CRD registered.
pub async fn emulator() -> EmulatorHandle {
    emulator_with(EmulatorConfig::default()).await
}

/// An emulator with a custom configuration and the fixture CRD registered.
pub async fn emulator_with(config: EmulatorConfig) -> EmulatorHandle {
    let handle = Emulator::start(config).await.expect("emulator starts");
    handle.register_crd_yaml(&fixture_crd()).expect("fixture CRD registers");
    handle
}

/// Whether kubectl can run here. Missing kubectl skips a test with a printed reason,
/// except under `CI=true`, where it fails the test.
pub fn kubectl_available(test: &str) -> bool {
    let found =
        std::process::Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: kubectl is required under CI=true but was not found on PATH");
    }
    // Written to the process's stderr directly, past the test harness's capture, so it shows.
    let reason = format!(
        "SKIPPED {test}: kubectl is not installed (install kubectl 1.32 to run the kubectl end-to-end tests)\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), reason.as_bytes());
    false
}

/// Runs kubectl against the emulator (its own kubeconfig and discovery cache).
pub async fn kubectl(handle: &EmulatorHandle, args: &[&str]) -> Output {
    kubectl_with_stdin(handle, args, None).await
}

/// Runs kubectl with some standard input.
pub async fn kubectl_with_stdin(handle: &EmulatorHandle, args: &[&str], stdin: Option<&str>) -> Output {
    let kubeconfig = handle.kubeconfig_path().expect("kubeconfig is written");
    run_kubectl(handle, &kubeconfig, args, stdin).await
}

/// Runs kubectl authenticated as `user` (see `EmulatorHandle::kubeconfig_for_user`).
pub async fn kubectl_as(handle: &EmulatorHandle, user: &str, args: &[&str]) -> Output {
    let kubeconfig = handle.kubeconfig_for_user(user).expect("kubeconfig is written");
    run_kubectl(handle, &kubeconfig, args, None).await
}

async fn run_kubectl(
    handle: &EmulatorHandle,
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(handle.cache_dir())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("kubectl starts");
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).await.expect("kubectl reads stdin");
        }
        drop(pipe);
    }
    child.wait_with_output().await.expect("kubectl finishes")
}

/// Stdout of a kubectl run that must succeed.
pub async fn kubectl_ok(handle: &EmulatorHandle, args: &[&str]) -> String {
    let out = kubectl(handle, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
