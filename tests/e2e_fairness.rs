//! End to end on the emulator with the real binary: reconcile fairness between tenants. One
//! tenant's slow runs hold only that tenant's slots, so another tenant's runs still reach
//! Previewed. Skipped (with a printed reason) without kubectl, except under `CI=true`.

mod controller_support;

use std::time::Duration;

use controller_support::e2e::{Cluster, kubectl_available};
use controller_support::*;
use graph_sim::{AppCredential, FaultConfig, SimHandle};
use restore_core::api::Environment;
use serde_json::{Value, json};

/// The Entra tenant behind the slow IntuneTenant (its own simulator).
const SLOW_TENANT_ID: &str = "5d4c3b2a-0000-4000-8000-00000000510e";
const SLOW_TENANT_NAME: &str = "slow-staging";
/// What the slow tenant's Graph takes to answer each request once its runs are waiting on it:
/// longer than the whole test waits for the other tenant's runs.
const SLOW_LATENCY_MS: u64 = 40_000;
/// How long the other tenant's runs may take to reach Previewed (seconds when it is fair).
const FAST_WAIT: Duration = Duration::from_secs(25);
const SLOW_RUNS: [&str; 3] = ["slow-1", "slow-2", "slow-3"];
const FAST_RUNS: [&str; 2] = ["fast-1", "fast-2"];

/// A second Graph simulator holding the slow Entra tenant, with the operator's app.
async fn slow_simulator() -> SimHandle {
    let sim = start_simulator(&TenantSetup::default()).await;
    sim.add_tenant(SLOW_TENANT_ID);
    sim.register_app(SLOW_TENANT_ID, CLIENT_ID, AppCredential::Secret(CLIENT_SECRET.into())).expect("app registers");
    sim
}

/// The IntuneTenant of the slow Entra tenant (same Secret as the other tenant).
fn slow_tenant_object(sim: &SimHandle) -> Value {
    let mut tenant = tenant_object(sim, Environment::Staging);
    tenant["metadata"]["name"] = json!(SLOW_TENANT_NAME);
    tenant["spec"]["tenantId"] = json!(SLOW_TENANT_ID);
    tenant["spec"]["displayName"] = json!("Slow Staging");
    tenant
}

/// A dry-run of the backup into the IntuneTenant `tenant`.
fn dry_run(name: &str, tenant: &str) -> Value {
    let mut run = restore_run_object(name, BACKUP_CONFIG_MAP, true, "1h");
    run["spec"]["tenantRef"]["name"] = json!(tenant);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_fairness_a_slow_tenant_never_holds_every_slot_and_another_tenants_runs_reach_previewed() {
    if !kubectl_available("e2e_fairness_a_slow_tenant_never_holds_every_slot_and_another_tenants_runs_reach_previewed")
    {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let slow_sim = slow_simulator().await;
    // Two reconciles at once in all, one per IntuneTenant: three runs of the slow tenant could
    // take both global slots if tenants were not limited.
    let args = ["--concurrency", "2", "--per-tenant-concurrency", "1"];
    let operator = cluster.operator_with("fair", 2, &args).await;
    operator.wait_logged("leading; starting controllers", Duration::from_secs(20)).await;

    let data = backup_config_map_data(&sample_backup(2));
    let fast_tenant = tenant_object(&cluster.sim, Environment::Staging);
    let objects =
        [secret_object(), fast_tenant, slow_tenant_object(&slow_sim), backup_config_map(BACKUP_CONFIG_MAP, &data)];
    cluster.apply("tenants", &objects).await;
    for tenant in [TENANT_NAME, SLOW_TENANT_NAME] {
        let target = format!("intunetenant/{tenant}");
        cluster.kubectl_ok(&["wait", &target, "--for=condition=Ready", "--timeout=60s"]).await;
    }

    // The slow tenant's Graph now takes 40 s a request; its runs are picked up and start reading it.
    let latency =
        FaultConfig { latency_min_ms: SLOW_LATENCY_MS, latency_max_ms: SLOW_LATENCY_MS, ..FaultConfig::default() };
    slow_sim.set_faults(latency);
    let slow_runs: Vec<Value> = SLOW_RUNS.iter().map(|name| dry_run(name, SLOW_TENANT_NAME)).collect();
    cluster.apply("slow-runs", &slow_runs).await;
    eventually(Duration::from_secs(30), Duration::from_millis(50), "the first slow run is picked up", || async {
        (!cluster.get(SLOW_RUNS[0], ".status.phase").await.is_empty()).then_some(())
    })
    .await;

    // The other tenant's runs go all the way while the slow tenant's runs are stuck.
    let fast_runs: Vec<Value> = FAST_RUNS.iter().map(|name| dry_run(name, TENANT_NAME)).collect();
    cluster.apply("fast-runs", &fast_runs).await;
    for name in FAST_RUNS {
        cluster.wait_for(name, ".status.phase", "Previewed", FAST_WAIT).await;
    }
    let mut slow_phases = Vec::new();
    for name in SLOW_RUNS {
        slow_phases.push(cluster.get(name, ".status.phase").await);
    }
    assert!(!slow_phases.iter().any(|p| p == "Previewed"), "the slow runs were not slowed down: {slow_phases:?}");
    // One slot for the slow tenant: its other runs waited their turn, untouched.
    assert_eq!(slow_phases.iter().filter(|p| !p.is_empty()).count(), 1, "slow runs picked up: {slow_phases:?}");
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "dry-runs write nothing");
}
