//! The operator's checked-in CRDs (`crds/`) and examples (`examples/`) served by the emulator:
//! kubectl applies them, prints the RestoreRun columns, and the API refuses what the schema forbids.

mod support;

use std::path::PathBuf;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};
use support::{kubectl, kubectl_available, kubectl_ok, kubectl_with_stdin};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn with_operator_crds() -> EmulatorHandle {
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let loaded = emu.load_crds_dir(&repo().join("crds")).expect("the checked-in CRDs register");
    assert_eq!(loaded.len(), 2, "RestoreRun and IntuneTenant CRDs");
    emu.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "intune"}})).unwrap();
    emu
}

fn example(name: &str) -> String {
    repo().join("examples").join(name).display().to_string()
}

fn runs(emu: &EmulatorHandle) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("tenantatlas.io", "v1alpha1", "RestoreRun");
    Api::namespaced_with(emu.client().unwrap(), "intune", &kube::api::ApiResource::from_gvk(&gvk))
}

fn run_with_source(name: &str, source: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": name, "namespace": "intune"},
        "spec": {"tenantRef": {"name": "contoso-production"}, "source": source}}))
    .unwrap()
}

async fn refusal(emu: &EmulatorHandle, name: &str, source: Value) -> String {
    match runs(emu).create(&PostParams::default(), &run_with_source(name, source)).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{}", status.message);
            status.message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_restorerun_schema_is_enforced_with_defaults_and_cel() {
    let emu = with_operator_crds().await;
    let created = runs(&emu)
        .create(&PostParams::default(), &run_with_source("ok", json!({"configMapRef": {"name": "backup"}})))
        .await
        .unwrap();
    let spec = &created.data["spec"];
    assert_eq!(spec["dryRun"], true);
    assert_eq!(spec["existingObjects"], "update");
    assert_eq!(spec["previewTTL"], "1h");
    assert_eq!(spec["scope"]["mode"], "all");
    assert!(
        refusal(&emu, "two", json!({"configMapRef": {"name": "b"}, "artifactRef": {"kind": "Bucket", "name": "b"}}))
            .await
            .contains("oneOf")
    );
    assert!(refusal(&emu, "none", json!({})).await.contains("oneOf"));
    let escaping = refusal(&emu, "escape", json!({"configMapRef": {"name": "b"}, "path": "../etc"})).await;
    assert!(escaping.contains("path must not contain '..'"), "{escaping}");
    let moved = runs(&emu)
        .patch("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"tenantRef": {"name": "fabrikam"}}})))
        .await
        .unwrap_err()
        .to_string();
    assert!(moved.contains("tenantRef is immutable"), "{moved}");
    let bad_ttl = runs(&emu)
        .patch("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"previewTTL": "one hour"}})))
        .await
        .unwrap_err()
        .to_string();
    assert!(bad_ttl.contains("spec.previewTTL"), "{bad_ttl}");
}

#[tokio::test]
async fn kubectl_applies_the_examples_and_prints_the_design_columns() {
    if !kubectl_available("kubectl_applies_the_examples_and_prints_the_design_columns") {
        return;
    }
    let emu = with_operator_crds().await;
    // The examples live in their own namespace, with example- names.
    emu.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "intune-restore-examples"}}))
        .unwrap();
    let tenant = kubectl_ok(&emu, &["apply", "-f", &example("intunetenant-client-secret.yaml")]).await;
    assert!(
        tenant.contains("secret/example-contoso-graph-app created")
            && tenant.contains("intunetenant.tenantatlas.io/example-contoso created"),
        "{tenant}"
    );
    let secret = emu.get("v1", "Secret", Some("intune-restore-examples"), "example-contoso-graph-app").unwrap();
    assert_eq!(secret["data"]["clientSecret"], "cmVwbGFjZS1tZQ==", "stringData is folded into data");
    assert!(kubectl_ok(&emu, &["apply", "-f", &example("restorerun-dry-run.yaml")]).await.contains("created"));
    let table = kubectl_ok(&emu, &["get", "rr", "-n", "intune-restore-examples"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "PHASE", "TENANT", "ENV", "ITEMS", "CHANGES", "BLOCKERS", "PROGRESS", "DRYRUN", "AGE"],
        "{table}"
    );
    assert!(table.lines().nth(1).unwrap().starts_with("example-restore"), "{table}");
    let approved = kubectl(&emu, &["apply", "-f", &example("restorerun-approved.yaml")]).await;
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    let run =
        emu.get("tenantatlas.io/v1alpha1", "RestoreRun", Some("intune-restore-examples"), "example-restore").unwrap();
    assert_eq!(run["spec"]["dryRun"], false);
    assert!(run["spec"]["source"].get("url").is_none(), "the three-way merge removed the old source");
    assert_eq!(run["spec"]["confirmation"]["tenant"], "Contoso Production");
    let bad_env = "apiVersion: tenantatlas.io/v1alpha1\nkind: IntuneTenant\nmetadata:\n  name: broken\n  namespace: intune\n\
                   spec:\n  tenantId: t\n  displayName: d\n  environment: prod\n  auth:\n    clientId: c\n    clientSecretRef:\n      name: s\n      key: k\n";
    let out = kubectl_with_stdin(&emu, &["apply", "-f", "-"], Some(bad_env)).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.environment"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
