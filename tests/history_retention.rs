//! `--history-limit` on the kube emulator: finished RestoreRuns past the limit are deleted and
//! their report ConfigMaps follow by owner reference; recent, unfinished and GitOps-managed
//! runs stay, and so does an audit ConfigMap that no run owns.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_emulator::{Emulator, EmulatorConfig};
use restore_core::api::ExecutionStatus;
use restore_operator::controller::retention::sweep;
use restore_operator::kube::RestoreRun;
use serde_json::{Value, json};

const NS: &str = "intune";
const DAY: i64 = 86_400;

fn ago(now: jiff::Timestamp, seconds: i64) -> String {
    (now - jiff::SignedDuration::from_secs(seconds)).to_string()
}

async fn run(client: &kube::Client, name: &str, labels: Value, status: Value) -> String {
    let runs: Api<RestoreRun> = Api::namespaced(client.clone(), NS);
    let object: RestoreRun = serde_json::from_value(json!({
        "apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "backup"}}}
    }))
    .unwrap();
    let created = runs.create(&PostParams::default(), &object).await.unwrap();
    runs.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await.unwrap();
    created.metadata.uid.unwrap()
}

async fn config_map(client: &kube::Client, name: &str, owner: Option<(&str, &str)>) {
    let mut meta = json!({"name": name, "namespace": NS});
    if let Some((run, uid)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
                                          "name": run, "uid": uid, "controller": true}]);
    }
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": meta, "data": {"k": "v"}})).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), NS).create(&PostParams::default(), &cm).await.unwrap();
}

fn finished(phase: &str, at: &str) -> Value {
    let execution = ExecutionStatus { started_at: at.into(), finished_at: Some(at.into()), ..Default::default() };
    json!({"phase": phase, "execution": execution,
           "conditions": [{"type": "Ready", "status": if phase == "Succeeded" {"True"} else {"False"},
                           "reason": phase, "message": "done", "lastTransitionTime": at}]})
}

#[tokio::test]
async fn finished_runs_past_the_history_limit_are_deleted_with_their_reports_only() {
    let mut config = EmulatorConfig::default();
    config.initial_namespaces.push(NS.to_string());
    let emulator = Emulator::start(config).await.unwrap();
    emulator.load_crds_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).unwrap();
    let client = emulator.client().unwrap();
    let now = jiff::Timestamp::now();

    let old = run(&client, "old-succeeded", json!({}), finished("Succeeded", &ago(now, 40 * DAY))).await;
    config_map(&client, "old-succeeded-report", Some(("old-succeeded", &old))).await;
    let failed = run(&client, "old-failed", json!({}), finished("Failed", &ago(now, 31 * DAY))).await;
    config_map(&client, "old-failed-report", Some(("old-failed", &failed))).await;
    let recent = run(&client, "recent-succeeded", json!({}), finished("Succeeded", &ago(now, DAY))).await;
    config_map(&client, "recent-succeeded-report", Some(("recent-succeeded", &recent))).await;
    let previewed = json!({"phase": "Previewed", "conditions": [{"type": "Ready", "status": "True",
        "reason": "PreviewReady", "message": "ok", "lastTransitionTime": ago(now, 90 * DAY)}]});
    run(&client, "old-previewed", json!({}), previewed).await;
    run(
        &client,
        "old-from-flux",
        json!({"kustomize.toolkit.fluxcd.io/name": "restores"}),
        finished("Succeeded", &ago(now, 60 * DAY)),
    )
    .await;
    // The audit record of a run (not owned by it) must outlive the run.
    config_map(&client, "old-succeeded-audit", None).await;

    let runs: Api<RestoreRun> = Api::all(client.clone());
    let deleted = sweep(&runs, Duration::from_secs(30 * DAY as u64), now).await.unwrap();
    assert_eq!(deleted, ["intune/old-failed", "intune/old-succeeded"]);

    let names = |v: Vec<Value>| -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(emulator.list("tenantatlas.io/v1alpha1", "RestoreRun", Some(NS))),
        ["old-from-flux", "old-previewed", "recent-succeeded"]
    );
    // Reports go by owner-reference garbage collection; the audit record stays.
    let mut config_maps = names(emulator.list("v1", "ConfigMap", Some(NS)));
    config_maps.retain(|n| n != "kube-root-ca.crt");
    assert_eq!(config_maps, ["old-succeeded-audit", "recent-succeeded-report"]);

    // A second sweep finds nothing more.
    assert!(sweep(&runs, Duration::from_secs(30 * DAY as u64), now).await.unwrap().is_empty());
}
