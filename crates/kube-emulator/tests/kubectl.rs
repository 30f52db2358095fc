//! The real kubectl against the emulator through a kubeconfig: apply, get (printer columns),
//! get -o yaml, patch --type merge, wait --for=jsonpath, delete, and refusals of bad manifests.

mod support;

use std::time::Duration;

use kube_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use support::{emulator, fixtures, kubectl, kubectl_available, kubectl_ok, kubectl_with_stdin};

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// Sets `status.phase` of the sample run after kubectl has had time to start watching.
fn set_phase_later(emu: &kube_emulator::EmulatorHandle, phase: &str) -> tokio::task::JoinHandle<()> {
    let client = emu.client().unwrap();
    let patch = serde_json::json!({"status": {"phase": phase}});
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let api: kube::Api<support::RestoreRun> = kube::Api::namespaced(client, "default");
        api.patch_status("sample", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch)).await.unwrap();
    })
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn kubectl_apply_creates_then_reports_unchanged_and_configured() {
    if !kubectl_available("kubectl_apply_creates_then_reports_unchanged_and_configured") {
        return;
    }
    let emu = emulator().await;
    let manifest = fixture("restorerun.yaml");
    assert!(kubectl_ok(&emu, &["apply", "-f", &manifest]).await.contains("restorerun.tenantatlas.io/sample created"));
    assert!(kubectl_ok(&emu, &["apply", "-f", &manifest]).await.contains("restorerun.tenantatlas.io/sample unchanged"));
    let changed = std::fs::read_to_string(&manifest).unwrap().replace("name: backup", "name: backup-2");
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(&changed)).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("sample configured"), "{}", stderr(&out));
    let stored = emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some("default"), "sample").unwrap();
    assert_eq!(stored["spec"]["source"]["configMapRef"]["name"], "backup-2");
    assert_eq!(stored["metadata"]["generation"], 2);
}

#[tokio::test]
async fn kubectl_get_rr_prints_the_crd_columns() {
    if !kubectl_available("kubectl_get_rr_prints_the_crd_columns") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    kubectl_ok(
        &emu,
        &[
            "patch",
            "rr",
            "sample",
            "--subresource",
            "status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Previewed","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
    )
    .await;
    let table = kubectl_ok(&emu, &["get", "rr"]).await;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], vec!["NAME", "PHASE", "TENANT", "DRY-RUN", "READY", "AGE"], "{table}");
    assert_eq!(&lines[1][..5], &["sample", "Previewed", "contoso", "true", "True"], "{table}");
    let wide = kubectl_ok(&emu, &["get", "restoreruns.tenantatlas.io", "sample", "-o", "name"]).await;
    assert_eq!(wide.trim(), "restorerun.tenantatlas.io/sample");
}

#[tokio::test]
async fn kubectl_get_o_yaml_shows_the_stored_object_with_defaults() {
    if !kubectl_available("kubectl_get_o_yaml_shows_the_stored_object_with_defaults") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    let yaml = kubectl_ok(&emu, &["get", "rr", "sample", "-o", "yaml"]).await;
    let object: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(object["apiVersion"], "tenantatlas.io/v1alpha1");
    assert_eq!(object["spec"]["dryRun"], true);
    assert_eq!(object["spec"]["existingObjects"], "update");
    assert_eq!(object["metadata"]["generation"], 1);
    assert!(object["metadata"]["uid"].is_string() && object["metadata"]["creationTimestamp"].is_string());
    assert!(object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());
}

#[tokio::test]
async fn kubectl_patch_merge_changes_spec_and_status() {
    if !kubectl_available("kubectl_patch_merge_changes_spec_and_status") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    let out =
        kubectl_ok(&emu, &["patch", "rr", "sample", "--type", "merge", "-p", r#"{"spec":{"dryRun":false}}"#]).await;
    assert!(out.contains("restorerun.tenantatlas.io/sample patched"), "{out}");
    let dry_run = kubectl_ok(&emu, &["get", "rr", "sample", "-o", "jsonpath={.spec.dryRun}"]).await;
    assert_eq!(dry_run, "false");
    let refused = kubectl(
        &emu,
        &["patch", "rr", "sample", "--type", "merge", "-p", r#"{"spec":{"tenantRef":{"name":"other"}}}"#],
    )
    .await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("tenantRef is immutable"), "{}", stderr(&refused));
}

#[tokio::test]
async fn kubectl_wait_for_jsonpath_returns_when_the_status_arrives() {
    if !kubectl_available("kubectl_wait_for_jsonpath_returns_when_the_status_arrives") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    let later = set_phase_later(&emu, "AwaitingConfirmation");
    let out = kubectl_ok(
        &emu,
        &["wait", "--for=jsonpath={.status.phase}=AwaitingConfirmation", "rr/sample", "--timeout=20s"],
    )
    .await;
    later.await.unwrap();
    assert!(out.contains("condition met"), "{out}");
}

#[tokio::test]
async fn kubectl_delete_removes_the_object() {
    if !kubectl_available("kubectl_delete_removes_the_object") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    let out = kubectl_ok(&emu, &["delete", "rr", "sample"]).await;
    assert!(out.contains("restorerun.tenantatlas.io \"sample\" deleted"), "{out}");
    let gone = kubectl(&emu, &["get", "rr", "sample"]).await;
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("NotFound") || stderr(&gone).contains("not found"), "{}", stderr(&gone));
    assert!(emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some("default"), "sample").is_none());
}

#[tokio::test]
async fn kubectl_apply_refuses_invalid_manifests() {
    if !kubectl_available("kubectl_apply_refuses_invalid_manifests") {
        return;
    }
    let emu = emulator().await;
    let base = std::fs::read_to_string(fixture("restorerun.yaml")).unwrap();
    let bad_enum = format!("{base}  existingObjects: merge\n");
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(&bad_enum)).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Unsupported value: \"merge\""), "{}", stderr(&out));
    let unknown = format!("{base}  surprise: 1\n");
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(&unknown)).await;
    assert!(!out.status.success(), "kubectl asks for strict server-side field validation");
    assert!(stderr(&out).contains("unknown field \"spec.surprise\""), "{}", stderr(&out));
    let missing = base.replace("  tenantRef:\n    name: contoso\n", "");
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(&missing)).await;
    assert!(stderr(&out).contains("spec.tenantRef: Required value"), "{}", stderr(&out));
    assert!(emu.list("tenantatlas.io/v1alpha1", "RestoreRun", Some("default")).is_empty());
}

#[tokio::test]
async fn kubectl_installs_crds_and_waits_for_established() {
    if !kubectl_available("kubectl_installs_crds_and_waits_for_established") {
        return;
    }
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun-crd.yaml")]).await;
    let out =
        kubectl_ok(&emu, &["wait", "--for=condition=Established", "crd/restoreruns.tenantatlas.io", "--timeout=10s"])
            .await;
    assert!(out.contains("condition met"), "{out}");
    assert!(kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await.contains("created"));
    let crds = kubectl_ok(&emu, &["get", "crds", "-o", "name"]).await;
    assert_eq!(crds.trim(), "customresourcedefinition.apiextensions.k8s.io/restoreruns.tenantatlas.io");
}

#[tokio::test]
async fn kubectl_server_side_apply_records_the_manager_and_reports_conflicts() {
    if !kubectl_available("kubectl_server_side_apply_records_the_manager_and_reports_conflicts") {
        return;
    }
    let emu = emulator().await;
    let manifest = fixture("restorerun.yaml");
    let out = kubectl_ok(&emu, &["apply", "--server-side", "--field-manager", "flux", "-f", &manifest]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let stored = emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some("default"), "sample").unwrap();
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "flux");
    assert_eq!(stored["metadata"]["managedFields"][0]["operation"], "Apply");
    let other = std::fs::read_to_string(&manifest).unwrap().replace("name: backup", "name: elsewhere");
    let out =
        kubectl_with_stdin(&emu, &["apply", "--server-side", "--field-manager", "argo", "-f", "-"], Some(&other)).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("conflict with \"flux\""), "{}", stderr(&out));
    let forced = kubectl_with_stdin(
        &emu,
        &["apply", "--server-side", "--force-conflicts", "--field-manager", "argo", "-f", "-"],
        Some(&other),
    )
    .await;
    assert!(forced.status.success(), "{}", stderr(&forced));
}

#[tokio::test]
async fn kubectl_handles_builtin_kinds() {
    if !kubectl_available("kubectl_handles_builtin_kinds") {
        return;
    }
    let emu = emulator().await;
    let namespaces = kubectl_ok(&emu, &["get", "namespaces", "-o", "name"]).await;
    assert!(namespaces.contains("namespace/default") && namespaces.contains("namespace/kube-system"), "{namespaces}");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backup\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(cm)).await;
    let changed = cm.replace("b: \"2\"", "b: \"3\"");
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(&changed)).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/backup configured"), "{}", stderr(&out));
    let table = kubectl_ok(&emu, &["get", "cm", "backup"]).await;
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], &["backup", "2"], "{table}");
    assert_eq!(kubectl_ok(&emu, &["get", "cm", "backup", "-o", "jsonpath={.data.b}"]).await, "3");
}

#[tokio::test]
async fn kubectl_create_sends_protobuf_for_builtins_and_it_is_understood() {
    if !kubectl_available("kubectl_create_sends_protobuf_for_builtins_and_it_is_understood") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["create", "namespace", "team"]).await;
    kubectl_ok(&emu, &["create", "configmap", "settings", "-n", "team", "--from-literal=a=1", "--from-literal=b=2"])
        .await;
    kubectl_ok(&emu, &["create", "secret", "generic", "creds", "-n", "team", "--from-literal=clientSecret=s3cr3t"])
        .await;
    let cm = emu.get("v1", "ConfigMap", Some("team"), "settings").unwrap();
    assert_eq!(cm["data"], serde_json::json!({"a": "1", "b": "2"}));
    assert!(cm["metadata"].get("generateName").is_none(), "empty protobuf strings are not fields");
    let secret = emu.get("v1", "Secret", Some("team"), "creds").unwrap();
    assert_eq!(secret["data"]["clientSecret"], "czNjcjN0");
    assert_eq!(secret["type"], "Opaque");
    let ns = emu.get("v1", "Namespace", None, "team").unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
}

#[tokio::test]
async fn kubectl_get_watch_streams_table_rows() {
    if !kubectl_available("kubectl_get_watch_streams_table_rows") {
        return;
    }
    let emu = emulator().await;
    kubectl_ok(&emu, &["apply", "-f", &fixture("restorerun.yaml")]).await;
    let later = set_phase_later(&emu, "Scoping");
    let out = kubectl(&emu, &["get", "rr", "--watch", "--request-timeout=3s"]).await;
    later.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("sample")).collect();
    assert!(rows.len() >= 2, "the initial row and the update: {text}\n{}", stderr(&out));
    assert!(rows.last().unwrap().contains("Scoping"), "{text}");
}

#[tokio::test]
async fn kubectl_auth_whoami_names_the_kubeconfig_user() {
    if !kubectl_available("kubectl_auth_whoami_names_the_kubeconfig_user") {
        return;
    }
    let emu = emulator().await;
    let admin = kubectl_ok(&emu, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]).await;
    assert_eq!(admin, "kubernetes-admin");
    let alice = support::kubectl_as(
        &emu,
        "alice@contoso.com",
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&alice.stdout), "alice@contoso.com", "{}", stderr(&alice));
    assert_eq!(kubectl_ok(&emu, &["auth", "can-i", "patch", "restoreruns"]).await.trim(), "yes");
}
