//! The trust-boundary findings end to end: the real binary on the API emulator with the Graph
//! simulator and kubectl — forged records, withdrawn approvals, two runs on one tenant, a deposed
//! leader, a run deleted mid-execution. Skipped without kubectl, except under `CI=true`.

mod controller_support;

use std::path::Path;
use std::time::Duration;

use controller_support::e2e::{Cluster, kubectl_available, outcome};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// Applies the tenant (`writes_per_second` writes a second), its Secret and the backup, and a dry-run
/// of each run; returns the backup once every run is Previewed.
async fn previewed(cluster: &Cluster, runs: &[&str], writes_per_second: u32) -> restore_core::backup::BackupSet {
    let backup = sample_backup(8);
    let mut tenant = tenant_object(&cluster.sim, Environment::Staging);
    tenant["spec"]["writeBudget"] = json!({"writes": writes_per_second, "perSeconds": 1});
    let data = backup_config_map_data(&backup);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    let objects: Vec<Value> = runs.iter().map(|r| restore_run_object(r, BACKUP_CONFIG_MAP, true, "1h")).collect();
    cluster.apply("runs", &objects).await;
    for run in runs {
        cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    }
    backup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_1_a_progress_record_rewritten_with_kubectl_never_steers_a_write() {
    if !kubectl_available("e2e_finding_1_a_progress_record_rewritten_with_kubectl_never_steers_a_write") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let mut first = cluster.operator("replica-a", 2).await;
    let backup = previewed(&cluster, &["forged"], 3).await;
    cluster.approve("forged").await;
    cluster.wait_for_writes(4).await;
    first.kill_hard().await;
    // A namespace user rewrites the record under the operator's own field manager: every create
    // points at an unrelated policy.
    let unrelated = create_by_hand(&cluster.sim, "Unrelated production policy").await;
    let unrelated_id = unrelated["id"].as_str().unwrap().to_string();
    cluster
        .forge_record("forged-progress", |record| {
            for step in record["steps"].as_array_mut().unwrap() {
                if step.get("createdId").is_some() {
                    step["createdId"] = json!(unrelated_id);
                }
            }
        })
        .await;
    let _second = cluster.operator("replica-b", 2).await;
    cluster.wait_for("forged", ".status.phase", "Succeeded", WAIT).await;
    let touched: Vec<String> =
        operator_writes(&cluster.sim).into_iter().map(|w| w.path).filter(|p| p.contains(&unrelated_id)).collect();
    assert!(touched.is_empty(), "writes to the unrelated policy: {touched:?}");
    assert_eq!(cluster.creates(), backup.items.len(), "every object created exactly once");
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_2_an_edited_report_is_not_shown_by_the_plugin_and_not_executed() {
    if !kubectl_available("e2e_finding_2_an_edited_report_is_not_shown_by_the_plugin_and_not_executed") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    previewed(&cluster, &["edited"], 50).await;
    cluster
        .forge_record("edited-report", |report| {
            report["items"][1]["displayName"] = json!("Set wallpaper");
            report["items"][1]["diff"] = json!("+ Write-Host hello");
        })
        .await;
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-restorerun")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", plugin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = tokio::process::Command::new("kubectl")
        .env("PATH", path)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(["restorerun", "-n", NAMESPACE, "show", "edited", "--diff"])
        .output()
        .await
        .unwrap();
    let (ok, shown, err) = outcome(&out);
    assert!(!ok, "the plugin refuses: {shown}");
    assert!(!shown.contains("Set wallpaper") && !shown.contains("Write-Host"), "{shown}");
    assert!(err.contains("does not have the preview digest"), "{err}");
    cluster.approve("edited").await;
    cluster.wait_for("edited", ".status.phase", "Failed", WAIT).await;
    assert_eq!(operator_writes(&cluster.sim).len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_3_a_withdrawn_approval_stops_writes_within_one_write() {
    if !kubectl_available("e2e_finding_3_a_withdrawn_approval_stops_writes_within_one_write") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    let backup = previewed(&cluster, &["withdrawn"], 4).await;
    cluster.approve("withdrawn").await;
    cluster.wait_for_writes(2).await;
    cluster.patch("withdrawn", &json!({"spec": {"dryRun": true, "confirmation": null}})).await;
    let at_withdrawal = operator_writes(&cluster.sim).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let written = operator_writes(&cluster.sim).len();
    assert!(written <= at_withdrawal + 1, "{written} writes, {at_withdrawal} when the approval was withdrawn");
    assert!(written < expected_writes(&backup));
    let (_, reason, _) = cluster.condition("withdrawn", "Executed").await;
    assert_eq!(reason, "ExecutionPaused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_6_two_approved_runs_on_one_tenant_never_write_at_once() {
    if !kubectl_available("e2e_finding_6_two_approved_runs_on_one_tenant_never_write_at_once") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    let backup = sample_backup(8);
    let mut tenant = tenant_object(&cluster.sim, Environment::Staging);
    tenant["spec"]["writeBudget"] = json!({"writes": 4, "perSeconds": 1});
    let data = backup_config_map_data(&backup);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    // Two plans on one tenant that do not touch each other's items, so both approvals hold (the
    // scope tag they could both map to exists already: the first run creates no foundation).
    cluster.sim.add_scope_tag(TENANT_ID, "Paris").unwrap();
    let mut first = restore_run_object("first", BACKUP_CONFIG_MAP, true, "1h");
    first["spec"]["scope"] = json!({"mode": "all", "exclude": {"types": ["compliancePolicy"]}});
    let mut second = restore_run_object("second", BACKUP_CONFIG_MAP, true, "1h");
    second["spec"]["scope"] =
        json!({"mode": "selected", "include": {"types": ["compliancePolicy"]}, "foundations": "skip"});
    cluster.apply("runs", &[first, second]).await;
    for run in ["first", "second"] {
        cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    }
    cluster.approve("first").await;
    cluster.wait_for_writes(2).await;
    cluster.approve("second").await;
    cluster.wait_for("second", ".status.conditions[?(@.type==\"Reconciling\")].reason", "TenantBusy", WAIT).await;
    let message = eventually(WAIT, Duration::from_millis(20), "the TenantBusy message", || async {
        let (_, reason, message) = cluster.condition("second", "Reconciling").await;
        (reason == "TenantBusy").then_some(message)
    })
    .await;
    assert!(message.contains(&format!("{NAMESPACE}/first")), "{message}");
    for run in ["first", "second"] {
        cluster.wait_for(run, ".status.phase", "Succeeded", WAIT).await;
    }
    // Every write of the second run came after the last write of the first.
    let writes = operator_writes(&cluster.sim);
    let of_second = |path: &str| path.starts_with("deviceManagement/deviceCompliancePolicies");
    let last_of_first = writes.iter().filter(|w| !of_second(&w.path)).map(|w| w.seq).max().unwrap();
    let first_of_second = writes.iter().filter(|w| of_second(&w.path)).map(|w| w.seq).min().unwrap();
    assert!(first_of_second > last_of_first, "the two executions interleaved");
    assert_eq!(cluster.creates(), backup.items.len() - 1, "no object was created twice (the tag existed)");
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_9_a_deposed_leader_writes_nothing_after_the_standby_took_over() {
    if !kubectl_available("e2e_finding_9_a_deposed_leader_writes_nothing_after_the_standby_took_over") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let leader = cluster.operator("replica-a", 2).await;
    leader.wait_logged("leading; starting controllers", Duration::from_secs(20)).await;
    let backup = previewed(&cluster, &["deposed"], 3).await;
    cluster.approve("deposed").await;
    cluster.wait_for_writes(3).await;
    // The leader stalls; the standby takes the Lease and finishes the run.
    leader.pause().await;
    let standby = cluster.operator("replica-b", 2).await;
    standby.wait_logged("leading; starting controllers", WAIT).await;
    cluster.wait_for("deposed", ".status.phase", "Succeeded", WAIT).await;
    let finished = operator_writes(&cluster.sim).len();
    // The old leader wakes up: it must not write to the tenant or to the run.
    let version = cluster.get("deposed", ".metadata.resourceVersion").await;
    leader.resume().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(cluster.get("deposed", ".metadata.resourceVersion").await, version, "no status write");
    let late = operator_writes(&cluster.sim).len() - finished;
    if late == 0 {
        assert_eq!(cluster.creates(), backup.items.len());
        assert_tenant_equals_backup(&cluster.sim, &backup).await;
    } else {
        // Stopped between its last check and the send, the old leader may deliver that one write
        // when it resumes (Graph cannot refuse it); it must be the only one, and it is reported.
        assert_eq!(late, 1, "at most the write in flight at the stop lands after the takeover");
        leader.wait_logged("sent after the Lease was lost", Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_10_deleting_a_run_mid_execution_stops_it_and_leaves_an_audit_record() {
    if !kubectl_available("e2e_finding_10_deleting_a_run_mid_execution_stops_it_and_leaves_an_audit_record") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    let backup = previewed(&cluster, &["pruned"], 4).await;
    cluster.approve("pruned").await;
    cluster.wait_for_writes(3).await;
    cluster.kubectl_ok(&["delete", "restorerun", "pruned", "--wait=true", "--timeout=60s"]).await;
    let at_deletion = operator_writes(&cluster.sim).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(operator_writes(&cluster.sim).len() <= at_deletion + 1, "writes stopped at an item boundary");
    assert!(operator_writes(&cluster.sim).len() < expected_writes(&backup));
    let records: Value = serde_json::from_str(
        &cluster.kubectl_ok(&["get", "configmap", "-l", "tenantatlas.io/audit=true", "-o", "json"]).await,
    )
    .unwrap();
    let items = records["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one audit record outlives the run");
    let body: Value = serde_json::from_str(items[0]["data"]["audit.json"].as_str().unwrap()).unwrap();
    assert_eq!(body["ending"], "CutByDeletion");
    assert!(body["execution"]["completedSteps"].as_u64().unwrap() >= 3);
    let reasons: Vec<String> =
        cluster.events().await.iter().filter_map(|e| e["reason"].as_str().map(str::to_string)).collect();
    assert!(reasons.contains(&"ExecutionCut".to_string()), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_finding_11_a_run_applied_before_its_source_waits_and_wakes_when_it_appears() {
    if !kubectl_available("e2e_finding_11_a_run_applied_before_its_source_waits_and_wakes_when_it_appears") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    let backup = sample_backup(2);
    cluster.apply("tenant", &[secret_object(), tenant_object(&cluster.sim, Environment::Staging)]).await;
    cluster.apply("run", &[restore_run_object("early", BACKUP_CONFIG_MAP, true, "1h")]).await;
    cluster.wait_for("early", ".status.conditions[?(@.type==\"SourceResolved\")].reason", "SourceNotFound", WAIT).await;
    // Let the waits grow (5 s, 10 s, then 20 s before the next look) before the source is applied.
    cluster.wait_for("early", ".status.failedAttempts", "3", WAIT).await;
    let next_look = cluster.get("early", ".status.nextAttemptAt").await;
    cluster.apply("backup", &[backup_config_map(BACKUP_CONFIG_MAP, &backup_config_map_data(&backup))]).await;
    cluster.wait_for("early", ".status.phase", "Previewed", WAIT).await;
    // The source was resolved when the ConfigMap appeared, not at the next scheduled look.
    let resolved = cluster.get("early", ".status.preview.generatedAt").await;
    let (resolved, next_look): (jiff::Timestamp, jiff::Timestamp) =
        (resolved.parse().unwrap(), next_look.parse().unwrap());
    assert!(resolved < next_look, "previewed at {resolved}, the next look was due at {next_look}");
}
