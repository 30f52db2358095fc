//! End to end on the emulator with the real binary: an operator killed with SIGKILL in the middle
//! of an execution resumes without duplicates, and of two replicas only the Lease holder works.
//! Skipped (with a printed reason) without kubectl, except under `CI=true`.

mod controller_support;

use std::time::Duration;

use controller_support::e2e::{Cluster, kubectl_available};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// Applies the tenant (with `write_budget` writes per second), its Secret and the backup, and a
/// dry-run of it; returns the backup once the run is Previewed.
async fn previewed_run(
    cluster: &Cluster,
    run: &str,
    baselines: usize,
    writes_per_second: u32,
) -> restore_core::backup::BackupSet {
    let backup = sample_backup(baselines);
    let mut tenant = tenant_object(&cluster.sim, Environment::Staging);
    tenant["spec"]["writeBudget"] = json!({"writes": writes_per_second, "perSeconds": 1});
    let data = backup_config_map_data(&backup);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    cluster.apply("run", &[restore_run_object(run, BACKUP_CONFIG_MAP, true, "1h")]).await;
    cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    backup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_an_operator_killed_mid_execution_resumes_after_a_restart_with_no_duplicate() {
    if !kubectl_available("e2e_an_operator_killed_mid_execution_resumes_after_a_restart_with_no_duplicate") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let mut first = cluster.operator("replica-a", 2).await;
    // Two writes a second: the execution takes about ten seconds.
    let backup = previewed_run(&cluster, "killed", 8, 2).await;
    let expected = expected_writes(&backup);
    cluster.approve("killed").await;
    cluster.wait_for_writes(expected / 3).await;
    first.kill_hard().await;
    let written = operator_writes(&cluster.sim).len();
    assert!(written < expected, "killed mid-execution ({written} of {expected} writes)");
    assert_eq!(cluster.get("killed", ".status.phase").await, "Executing");
    let restarted = std::time::Instant::now();

    // A new replica takes over once the dead one's Lease expires, and finishes the run.
    let second = cluster.operator("replica-b", 2).await;
    cluster.wait_for("killed", ".status.phase", "Succeeded", WAIT).await;
    second.wait_logged("leading; starting controllers", Duration::from_secs(5)).await;
    println!(
        "SIGKILL after {written} of {expected} writes; the restarted replica finished in {} ms (Lease 2 s)",
        restarted.elapsed().as_millis()
    );
    assert_eq!(cluster.creates(), backup.items.len(), "every object created exactly once");
    let writes = operator_writes(&cluster.sim).len();
    // A write the kill cut off before its progress record was stored is checked again: a
    // create finds its object, an assignment is sent again whole (idempotent) — at most one.
    assert!((expected..=expected + 1).contains(&writes), "{writes} writes for {expected} steps");
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
    assert_eq!(cluster.get("killed", ".status.execution.counts.failed").await, "0");
    assert_eq!(cluster.get("killed", ".status.execution.counts.created").await, backup.items.len().to_string());
    second.assert_logs_hold_no_secret();
}

fn lease_holder(lease: &Value) -> String {
    lease["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_of_two_replicas_only_the_lease_holder_executes() {
    if !kubectl_available("e2e_of_two_replicas_only_the_lease_holder_executes") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let mut a = cluster.operator("replica-a", 3).await;
    let mut b = cluster.operator("replica-b", 3).await;
    let lease: Value = eventually(WAIT, Duration::from_millis(100), "a Lease holder", || async {
        let (ok, stdout, _) = cluster.kubectl(&["get", "lease", "restore-operator-leader", "-o", "json"]).await;
        let lease: Option<Value> = ok.then(|| serde_json::from_str(&stdout).ok()).flatten();
        lease.filter(|l| !lease_holder(l).is_empty())
    })
    .await;
    let (leader, standby) = if lease_holder(&lease) == "replica-a" { (&mut a, &mut b) } else { (&mut b, &mut a) };
    assert_eq!(lease_holder(&lease), leader.identity);
    leader.wait_logged("leading; starting controllers", Duration::from_secs(20)).await;
    standby.wait_logged("waiting for leadership", Duration::from_secs(20)).await;
    assert_eq!(leader.http_get("/readyz").await, (200, "leader".to_string()));
    assert_eq!(standby.http_get("/readyz").await, (200, "standby".to_string()));

    let backup = previewed_run(&cluster, "pair", 4, 100).await;
    cluster.approve("pair").await;
    cluster.wait_for("pair", ".status.phase", "Succeeded", WAIT).await;
    assert_eq!(operator_writes(&cluster.sim).len(), expected_writes(&backup), "executed once");
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
    let events = cluster.events().await;
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(event["reportingInstance"].as_str(), Some(leader.identity.as_str()), "{event}");
    }
    assert!(!standby.logged("leading; starting controllers"), "the standby never led");
    assert!(!standby.logged("phase changed"), "the standby reconciled nothing");

    // The leader stops on SIGTERM and hands the Lease over; the standby takes the next run.
    assert!(leader.terminate().await.success());
    standby.wait_logged("leading; starting controllers", WAIT).await;
    cluster.apply("second", &[restore_run_object("after-failover", BACKUP_CONFIG_MAP, true, "1h")]).await;
    cluster.wait_for("after-failover", ".status.phase", "Previewed", WAIT).await;
    assert_eq!(operator_writes(&cluster.sim).len(), expected_writes(&backup), "a dry-run writes nothing");
    standby.assert_logs_hold_no_secret();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_leader_stopped_by_sigterm_mid_execution_hands_over_only_after_its_last_write() {
    if !kubectl_available("e2e_a_leader_stopped_by_sigterm_mid_execution_hands_over_only_after_its_last_write") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let mut a = cluster.operator("replica-a", 2).await;
    a.wait_logged("leading; starting controllers", WAIT).await;
    let b = cluster.operator("replica-b", 2).await;
    b.wait_logged("waiting for leadership", WAIT).await;
    let backup = previewed_run(&cluster, "handover", 8, 2).await;
    let expected = expected_writes(&backup);
    cluster.approve("handover").await;
    cluster.wait_for_writes(4).await;

    // SIGTERM: the leader finishes its in-flight reconcile, then stops; the standby must not
    // lead (and write) before the old leader's last write.
    let terminate = tokio::spawn(async move {
        let status = a.terminate().await;
        (status, std::time::Instant::now(), a)
    });
    let b_leads = eventually(WAIT, Duration::from_millis(5), "the standby to lead", || {
        let leading = b.logged("leading; starting controllers");
        async move { leading.then(std::time::Instant::now) }
    })
    .await;
    let (status, a_stopped, _a) = terminate.await.expect("the stop completes");
    assert!(status.success(), "{status:?}");
    println!("old leader stopped {:?} before the standby led", b_leads.saturating_duration_since(a_stopped));
    assert!(a_stopped <= b_leads, "the standby led {:?} before the old leader stopped", a_stopped - b_leads);

    cluster.wait_for("handover", ".status.phase", "Succeeded", WAIT).await;
    assert_eq!(cluster.creates(), backup.items.len(), "every object created exactly once");
    let writes = operator_writes(&cluster.sim).len();
    assert!((expected..=expected + 1).contains(&writes), "{writes} writes for {expected} steps");
    assert_tenant_equals_backup(&cluster.sim, &backup).await;
}
