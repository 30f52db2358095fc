//! The README's Flux and Argo CD guidance, applied to the kube emulator with the field managers
//! those tools use, and the real kubectl for every write:
//! - Flux (kustomize-controller): server-side apply with `--field-manager=kustomize-controller
//!   --force-conflicts`, preceded by Flux's clean-up that drops the managed-fields entries of
//!   managers whose name starts with `kubectl` (fluxcd/pkg/ssa, `PatchRemoveFieldsManagers`,
//!   prefix match); `kustomize.toolkit.fluxcd.io/ssa: IfNotPresent` skips objects that exist.
//! - Argo CD: client-side `kubectl apply --field-manager=argocd-controller` (its default sync);
//!   `RespectIgnoreDifferences=true` with `managedFieldsManagers: [kubectl-restorerun]` makes it
//!   apply the live values of the fields that manager owns.
//!
//! The approval is a merge patch by the plugin's field manager `kubectl-restorerun`.
//! What the tools decide (clean-up, skip, copying ignored fields) is simulated from their docs
//! and source; what the API server does with those requests is the emulator's.

use std::path::Path;

use kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};
use tokio::process::Command;

const NS: &str = "intune-restore-examples";
const RUN: &str = "example-flux-restore";

fn kubectl_present() -> bool {
    if std::process::Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "kubectl is required under CI=true");
    eprintln!("SKIPPED: kubectl not installed");
    false
}

async fn cluster() -> EmulatorHandle {
    let mut config = EmulatorConfig::default();
    config.initial_namespaces.push(NS.to_string());
    let emulator = Emulator::start(config).await.unwrap();
    emulator.load_crds_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).unwrap();
    emulator
}

async fn kubectl(emu: &EmulatorHandle, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(emu.kubeconfig_path().unwrap())
        .arg("--cache-dir")
        .arg(emu.cache_dir())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn live(emu: &EmulatorHandle) -> Value {
    emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some(NS), RUN).expect("the run exists")
}

/// The run as committed to Git (deploy/flux/restorerun.yaml), optionally with `dryRun` declared.
fn git_manifest(declare_dry_run: bool) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/flux/restorerun.yaml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).unwrap();
    if declare_dry_run {
        doc["spec"]["dryRun"] = json!(true);
    }
    serde_json::to_string(&doc).unwrap()
}

/// `kubectl restorerun approve`'s write: a merge patch by the field manager kubectl-restorerun.
async fn approve(emu: &EmulatorHandle) {
    let patch = json!({"spec": {"dryRun": false, "confirmation": {
        "reviewedImpact": true, "tenant": "Contoso Production",
        "previewDigest": format!("sha256:{}", "a".repeat(64)), "approvedBy": "alice@contoso.com"}}});
    kubectl(
        emu,
        &[
            "-n",
            NS,
            "patch",
            "restorerun",
            RUN,
            "--type",
            "merge",
            "--field-manager",
            "kubectl-restorerun",
            "-p",
            &patch.to_string(),
        ],
        None,
    )
    .await;
    assert_eq!(live(emu)["spec"]["dryRun"], false);
}

fn approval_kept(run: &Value) -> bool {
    run["spec"]["dryRun"] == false && run["spec"]["confirmation"]["approvedBy"] == "alice@contoso.com"
}

/// One kustomize-controller reconcile of the manifest (as Flux does it, see the module doc).
async fn flux_reconcile(emu: &EmulatorHandle, manifest: &str) {
    let existing = emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some(NS), RUN);
    let doc: Value = serde_json::from_str(manifest).unwrap();
    let policy = doc["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/ssa"].as_str().unwrap_or("Override");
    if let Some(existing) = existing {
        if policy == "IfNotPresent" {
            return;
        }
        // Clean-up: drop the entries of managers starting with "kubectl" (not subresources).
        let kept: Vec<Value> = existing["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                let manager = e["manager"].as_str().unwrap_or_default();
                !(manager.starts_with("kubectl") && e.get("subresource").is_none_or(|s| s.as_str() == Some("")))
            })
            .collect();
        let patch = json!([{"op": "replace", "path": "/metadata/managedFields", "value": kept}]);
        kubectl(
            emu,
            &[
                "-n",
                NS,
                "patch",
                "restorerun",
                RUN,
                "--type",
                "json",
                "--field-manager",
                "kustomize-controller",
                "-p",
                &patch.to_string(),
            ],
            None,
        )
        .await;
    }
    kubectl(
        emu,
        &["apply", "--server-side", "--force-conflicts", "--field-manager", "kustomize-controller", "-f", "-"],
        Some(manifest),
    )
    .await;
}

/// The finding of issue 15: with Flux's default policy and `dryRun` declared in Git, the next
/// reconcile reverts a kubectl approval (the execution would pause).
#[tokio::test]
async fn flux_override_reverts_an_approval_when_git_declares_dry_run() {
    if !kubectl_present() {
        return;
    }
    let emu = cluster().await;
    let mut manifest: Value = serde_json::from_str(&git_manifest(true)).unwrap();
    manifest["metadata"]["annotations"] = json!({});
    let manifest = manifest.to_string();
    flux_reconcile(&emu, &manifest).await;
    approve(&emu).await;
    flux_reconcile(&emu, &manifest).await;
    assert_eq!(live(&emu)["spec"]["dryRun"], true, "Flux forces the dryRun Git declares");
}

/// README, Flux: `ssa: IfNotPresent` + `prune: disabled`, dryRun and confirmation left out of
/// Git. The approval survives reconciles, and would even under the default policy.
#[tokio::test]
async fn flux_documented_shape_keeps_the_approval_across_reconciles() {
    if !kubectl_present() {
        return;
    }
    let emu = cluster().await;
    let manifest = git_manifest(false);
    flux_reconcile(&emu, &manifest).await;
    let created = live(&emu);
    assert_eq!(created["spec"]["dryRun"], true, "the CRD default makes a new run a dry-run");
    assert_eq!(created["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"], "disabled");
    let managers: Vec<&str> =
        created["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|e| e["manager"].as_str()).collect();
    assert_eq!(managers, ["kustomize-controller"], "Flux's apply is recorded under its field manager");
    approve(&emu).await;
    for _ in 0..2 {
        flux_reconcile(&emu, &manifest).await;
        assert!(approval_kept(&live(&emu)), "IfNotPresent: {}", live(&emu)["spec"]);
    }
    // Belt and braces: without the annotation Flux re-applies, and still keeps the approval,
    // because Git declares neither field.
    let mut without: Value = serde_json::from_str(&manifest).unwrap();
    without["metadata"]["annotations"].as_object_mut().unwrap().remove("kustomize.toolkit.fluxcd.io/ssa");
    flux_reconcile(&emu, &without.to_string()).await;
    assert!(approval_kept(&live(&emu)), "Override, fields not in Git: {}", live(&emu)["spec"]);
}

/// The paths (JSON pointers) of the leaf fields `manager` owns in `object`.
fn owned_paths(object: &Value, manager: &str) -> Vec<String> {
    fn walk(fields: &Value, prefix: &str, out: &mut Vec<String>) {
        let Some(map) = fields.as_object() else { return };
        let children: Vec<_> = map.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if children.is_empty() {
            out.push(prefix.to_string());
        }
        for (key, child) in children {
            walk(child, &format!("{prefix}/{}", &key[2..]), out);
        }
    }
    let mut out = Vec::new();
    for entry in object["metadata"]["managedFields"].as_array().into_iter().flatten() {
        if entry["manager"] == manager {
            walk(&entry["fieldsV1"], "", &mut out);
        }
    }
    out
}

fn set_pointer(target: &mut Value, pointer: &str, value: Value) {
    let mut node = target;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for part in &parts[..parts.len() - 1] {
        node = node.as_object_mut().unwrap().entry(part.to_string()).or_insert_with(|| json!({}));
    }
    node[parts[parts.len() - 1]] = value;
}

/// One Argo CD sync (self-heal) of the manifest: client-side apply as argocd-controller. With
/// `respect_managers`, the desired state first takes the live values of the fields those
/// managers own (ignoreDifferences.managedFieldsManagers + RespectIgnoreDifferences=true).
async fn argo_sync(emu: &EmulatorHandle, manifest: &str, respect_managers: &[&str]) {
    let mut desired: Value = serde_json::from_str(manifest).unwrap();
    if let Some(current) = emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some(NS), RUN) {
        for manager in respect_managers {
            for path in owned_paths(&current, manager) {
                if let Some(value) = current.pointer(&path) {
                    set_pointer(&mut desired, &path, value.clone());
                }
            }
        }
    }
    kubectl(emu, &["apply", "--field-manager", "argocd-controller", "-f", "-"], Some(&desired.to_string())).await;
}

/// Argo CD's default self-heal reverts a kubectl approval when Git declares `dryRun`.
#[tokio::test]
async fn argocd_self_heal_reverts_an_approval_without_ignore_differences() {
    if !kubectl_present() {
        return;
    }
    let emu = cluster().await;
    let manifest = git_manifest(true);
    argo_sync(&emu, &manifest, &[]).await;
    approve(&emu).await;
    argo_sync(&emu, &manifest, &[]).await;
    assert_eq!(live(&emu)["spec"]["dryRun"], true, "client-side apply restores the dryRun Git declares");
}

/// README, Argo CD: `ignoreDifferences` with `managedFieldsManagers: [kubectl-restorerun]` and
/// `RespectIgnoreDifferences=true` keep the approval even when Git declares `dryRun: true`.
#[tokio::test]
async fn argocd_documented_shape_keeps_the_approval_across_syncs() {
    if !kubectl_present() {
        return;
    }
    let emu = cluster().await;
    let manifest = git_manifest(true);
    argo_sync(&emu, &manifest, &["kubectl-restorerun"]).await;
    approve(&emu).await;
    let owned = owned_paths(&live(&emu), "kubectl-restorerun");
    assert!(owned.contains(&"/spec/dryRun".to_string()), "the plugin owns what it set: {owned:?}");
    for _ in 0..2 {
        argo_sync(&emu, &manifest, &["kubectl-restorerun"]).await;
        assert!(approval_kept(&live(&emu)), "{}", live(&emu)["spec"]);
    }
}
