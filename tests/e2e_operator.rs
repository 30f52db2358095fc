//! End to end: the real `restore-operator run` binary on the Kubernetes API emulator, the Graph
//! simulator as the tenant, and the real `kubectl` as the user — preview, approval, refusals,
//! blockers. Skipped (with a printed reason) without kubectl, except under `CI=true`.

mod controller_support;

use std::time::{Duration, Instant};

use controller_support::e2e::{Cluster, kubectl_available};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const RUN: &str = "restore-e2e";

/// The Secret, IntuneTenant and backup ConfigMap of the sample backup, applied with kubectl.
async fn apply_tenant_and_backup(cluster: &Cluster, tenant: Value) {
    let data = backup_config_map_data(&sample_backup(4));
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
}

async fn wait_ready(cluster: &Cluster, run: &str) {
    let (ok, stdout, stderr) =
        cluster.kubectl(&["wait", &format!("restorerun/{run}"), "--for=condition=Ready", "--timeout=60s"]).await;
    assert!(ok, "{run} did not become Ready: {stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_dry_run_previews_and_an_approval_by_kubectl_patch_executes_it() {
    if !kubectl_available("e2e_a_dry_run_previews_and_an_approval_by_kubectl_patch_executes_it") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let mut operator = cluster.operator("replica-a", 3).await;
    apply_tenant_and_backup(&cluster, tenant_object(&cluster.sim, Environment::Staging)).await;
    cluster.apply("run", &[restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")]).await;

    // (a) The dry-run reaches Previewed with Ready=True, and the tenant is Ready.
    cluster.wait_for(RUN, ".status.phase", "Previewed", WAIT).await;
    wait_ready(&cluster, RUN).await;
    let (status, reason, _) = cluster.condition(RUN, "Ready").await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PreviewReady"));
    let tenant_ready = cluster
        .kubectl_ok(&[
            "get",
            "intunetenant",
            TENANT_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .await;
    assert_eq!(tenant_ready, "True");
    let table = cluster.kubectl_ok(&["get", "rr", RUN]).await;
    assert!(table.contains("Previewed") && table.contains(TENANT_NAME) && table.contains("staging"), "{table}");
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "a dry-run writes nothing");

    // (b) Approve with the digest read from the status.
    let digest = cluster.get(RUN, ".status.preview.digest").await;
    assert!(digest.starts_with("sha256:"), "{digest}");
    let patch = approval_patch(TENANT_LABEL, &digest);
    let started = Instant::now();
    cluster.patch(RUN, &patch).await;
    let patched = Instant::now();
    let first_write = eventually(WAIT, Duration::from_millis(2), "the first Graph write", || {
        let seen = !operator_writes(&cluster.sim).is_empty();
        async move { seen.then(Instant::now) }
    })
    .await;
    println!(
        "approval to first Graph write: {} ms from the start of `kubectl patch`, {} ms after it returned",
        (first_write - started).as_millis(),
        first_write.saturating_duration_since(patched).as_millis()
    );

    cluster.wait_for(RUN, ".status.phase", "Succeeded", WAIT).await;
    wait_ready(&cluster, RUN).await;
    let backup = sample_backup(4);
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
    assert_eq!(operator_writes(&cluster.sim).len(), expected_writes(&backup), "every write once");
    assert_eq!(cluster.get(RUN, ".status.confirmation.digest").await, digest);
    assert_eq!(cluster.get(RUN, ".status.execution.counts.created").await, backup.items.len().to_string());

    // The audit trail: Events at each phase, by this replica; a report ConfigMap owned by the run.
    let events = cluster.events().await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    for phase in ["ResolvingSource", "Previewed", "AwaitingConfirmation", "Executing", "Succeeded"] {
        assert!(reasons.contains(&phase), "no {phase} Event in {reasons:?}");
    }
    let maps = cluster
        .kubectl_ok(&["get", "configmaps", "-l", &format!("tenantatlas.io/restorerun={RUN}"), "-o", "name"])
        .await;
    assert!(
        maps.contains(&format!("configmap/{RUN}-report")) && maps.contains(&format!("configmap/{RUN}-progress")),
        "{maps}"
    );

    // Metrics and probes.
    let (code, metrics) = operator.http_get("/metrics").await;
    assert_eq!(code, 200);
    let finished = format!(
        "restore_operator_restoreruns_finished_total{{namespace=\"{NAMESPACE}\",tenant=\"{TENANT_NAME}\",outcome=\"Succeeded\"}} 1"
    );
    assert!(metrics.contains(&finished), "{metrics}");
    assert!(metrics.contains("restore_operator_graph_requests_total{"), "{metrics}");
    assert_eq!(operator.http_get("/healthz").await, (200, "ok".to_string()));
    assert_eq!(operator.http_get("/readyz").await, (200, "leader".to_string()));

    // Rule 8 in the logs, and a graceful stop on SIGTERM.
    operator.assert_logs_hold_no_secret();
    let exit = operator.terminate().await;
    assert!(exit.success(), "SIGTERM stops the operator cleanly: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_wrong_label_a_stale_digest_or_an_expired_preview_writes_nothing() {
    if !kubectl_available("e2e_a_wrong_label_a_stale_digest_or_an_expired_preview_writes_nothing") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let operator = cluster.operator("replica-a", 3).await;
    apply_tenant_and_backup(&cluster, tenant_object(&cluster.sim, Environment::Staging)).await;
    let runs = [
        restore_run_object("wrong-label", BACKUP_CONFIG_MAP, true, "1h"),
        restore_run_object("stale-digest", BACKUP_CONFIG_MAP, true, "1h"),
        restore_run_object("expired", BACKUP_CONFIG_MAP, true, "1h"),
    ];
    cluster.apply("runs", &runs).await;
    for run in ["wrong-label", "stale-digest", "expired"] {
        cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    }
    let digest = cluster.get("wrong-label", ".status.preview.digest").await;
    assert_eq!(cluster.get("stale-digest", ".status.preview.digest").await, digest, "same plan, same digest");

    // A wrong tenant label.
    cluster.patch("wrong-label", &approval_patch("Contoso Production", &digest)).await;
    cluster
        .wait_for("wrong-label", ".status.conditions[?(@.type==\"Confirmed\")].reason", "TenantLabelMismatch", WAIT)
        .await;
    let (_, _, message) = cluster.condition("wrong-label", "Confirmed").await;
    assert!(message.contains("\"Contoso Production\"") && message.contains(TENANT_LABEL), "{message}");

    // The tenant changes after the previews, and one preview's time runs out (its expiry moved into
    // the past through the status subresource, as an hour passing would).
    let past = json!({"status": {"preview": {"expiresAt": "2020-01-01T00:00:00Z"}}}).to_string();
    cluster
        .kubectl_ok(&["patch", "restorerun", "expired", "--subresource=status", "--type", "merge", "-p", &past])
        .await;
    create_by_hand(&cluster.sim, &baseline_name(2)).await;

    // A stale digest: the preview it names no longer matches the tenant.
    cluster.patch("stale-digest", &approval_patch(TENANT_LABEL, &digest)).await;
    cluster
        .wait_for("stale-digest", ".status.conditions[?(@.type==\"Confirmed\")].reason", "DigestMismatch", WAIT)
        .await;
    let (_, _, message) = cluster.condition("stale-digest", "Confirmed").await;
    let fresh = cluster.get("stale-digest", ".status.preview.digest").await;
    assert_ne!(fresh, digest);
    assert!(message.contains(&digest) && message.contains(&fresh), "{message}");

    // An expired preview is regenerated before its approval counts: the status says it expired,
    // then, since the tenant changed, that the approval names an old preview.
    let watch = cluster.watch("expired").await;
    cluster.patch("expired", &approval_patch(TENANT_LABEL, &digest)).await;
    cluster.wait_for("expired", ".status.conditions[?(@.type==\"Confirmed\")].reason", "DigestMismatch", WAIT).await;
    let (_, _, message) = cluster.condition("expired", "Confirmed").await;
    assert!(message.contains(&digest), "{message}");
    let versions = watch.stop().await;
    let expiry = versions.iter().find_map(|run| {
        let conditions = run["status"]["conditions"].as_array()?;
        let confirmed = conditions.iter().find(|c| c["type"] == "Confirmed")?;
        (confirmed["reason"] == "PreviewExpired").then(|| confirmed["message"].as_str().unwrap_or_default().to_string())
    });
    let expiry = expiry.unwrap_or_else(|| panic!("no status said the preview expired: {versions:#?}"));
    assert!(expiry.contains("expired at") && expiry.contains("regenerating"), "{expiry}");

    for run in ["wrong-label", "stale-digest", "expired"] {
        assert_eq!(cluster.get(run, ".status.phase").await, "AwaitingConfirmation", "{run}");
    }
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "none of the three refusals wrote anything");
    operator.assert_logs_hold_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_missing_group_ends_in_blocked() {
    if !kubectl_available("e2e_a_missing_group_ends_in_blocked") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup { groups: vec![GROUP_ALL], ..TenantSetup::default() }).await;
    let operator = cluster.operator("replica-a", 3).await;
    apply_tenant_and_backup(&cluster, tenant_object(&cluster.sim, Environment::Staging)).await;
    cluster.apply("run", &[restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")]).await;
    cluster.wait_for(RUN, ".status.phase", "Blocked", WAIT).await;
    let (status, reason, message) = cluster.condition(RUN, "ChecksPassed").await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "BlockersFound"));
    assert!(message.contains(GROUP_PILOT), "{message}");
    assert_eq!(cluster.condition(RUN, "Stalled").await.0, "True");
    let warnings = cluster.kubectl_ok(&["get", "events", "--field-selector", "type=Warning", "-o", "json"]).await;
    assert!(warnings.contains("\"Blocked\"") && warnings.contains(GROUP_PILOT), "{warnings}");
    assert_eq!(operator_writes(&cluster.sim).len(), 0);
    operator.assert_logs_hold_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_run_waits_for_its_tenant_and_goes_on_as_soon_as_the_secret_is_fixed() {
    if !kubectl_available("e2e_a_run_waits_for_its_tenant_and_goes_on_as_soon_as_the_secret_is_fixed") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let operator = cluster.operator("replica-a", 3).await;
    let mut wrong = secret_object();
    wrong["stringData"]["clientSecret"] = json!("an-expired-secret");
    let data = backup_config_map_data(&sample_backup(4));
    let tenant = tenant_object(&cluster.sim, Environment::Staging);
    cluster.apply("tenant", &[wrong, tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    cluster.apply("run", &[restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")]).await;
    cluster.wait_for(RUN, ".status.conditions[?(@.type==\"Ready\")].reason", "TenantNotReady", WAIT).await;
    assert_eq!(cluster.get(RUN, ".status.phase").await, "Pending");
    let tenant_reason = cluster
        .kubectl_ok(&[
            "get",
            "intunetenant",
            TENANT_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
        ])
        .await;
    assert_eq!(tenant_reason, "AuthenticationFailed");

    // Fixing the Secret re-checks the tenant at once (the Secret watch), and the tenant's new
    // Ready condition wakes the run (the IntuneTenant watch): well before any periodic re-check.
    let fixed = Instant::now();
    cluster.apply("secret", &[secret_object()]).await;
    cluster.wait_for(RUN, ".status.phase", "Previewed", Duration::from_secs(20)).await;
    println!("secret fixed to run Previewed: {} ms", fixed.elapsed().as_millis());
    operator.assert_logs_hold_no_secret();
}

/// Every status the controller writes must pass the CRD schema, even for a backup item whose name
/// is longer than the status fields allow; otherwise the API server refuses each status patch and
/// the run stays in `Checking` with no message (seen: `status.checks.findings[0].item: Too long`).
/// The wizard clamps every status field to the CRD's bounds (`RestoreRunStatus::clamp_to_schema`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_an_item_with_a_very_long_name_still_reports_its_blocker() {
    if !kubectl_available("e2e_an_item_with_a_very_long_name_still_reports_its_blocker") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup { groups: vec![GROUP_ALL], ..TenantSetup::default() }).await;
    let operator = cluster.operator("replica-a", 3).await;
    let mut backup = sample_backup(1);
    let long = format!("Compliance {}", "x".repeat(700));
    for item in backup.items.iter_mut().filter(|i| i.item_type == "compliancePolicy") {
        item.display_name = long.clone();
        item.resource["displayName"] = json!(long);
    }
    backup.digest = restore_backup::native::digest(&backup).expect("the backup renders");
    let data = backup_config_map_data(&backup);
    let tenant = tenant_object(&cluster.sim, Environment::Staging);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    cluster.apply("run", &[restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")]).await;
    cluster.wait_for(RUN, ".status.phase", "Blocked", Duration::from_secs(20)).await;
    let (_, _, message) = cluster.condition(RUN, "ChecksPassed").await;
    assert!(message.contains(GROUP_PILOT), "{message}");
    let item = cluster.get(RUN, ".status.checks.findings[0].item").await;
    assert!(item.starts_with("compliancePolicy/Compliance xxx") && item.chars().count() <= 512, "{item}");
    assert!(!operator.logged("reconcile failed"), "every status write was accepted");
}
