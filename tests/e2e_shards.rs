//! End to end on the emulator with the real binary: shards as Flux shards its controllers. Each
//! run is handled by exactly one shard (its label selector), and inside a shard a standby takes over
//! when the leader dies. Skipped (with a printed reason) without kubectl, except under `CI=true`.

mod controller_support;

use std::time::Duration;

use controller_support::e2e::{Cluster, Operator, kubectl_available};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const SHARD_KEY: &str = "sharding.tenantatlas.io/key";

/// A dry-run, labelled for `shard` (none: the default shard).
fn run_in_shard(name: &str, shard: Option<&str>) -> Value {
    let mut run = restore_run_object(name, BACKUP_CONFIG_MAP, true, "1h");
    if let Some(shard) = shard {
        run["metadata"]["labels"] = json!({ SHARD_KEY: shard });
    }
    run
}

/// Whether the operator logged a phase change of the run `name`.
fn handled(operator: &Operator, name: &str) -> bool {
    let run = format!("\"run\":\"{name}\"");
    operator.logs().iter().any(|l| l.contains("phase changed") && l.contains(&run))
}

async fn lease_holder(cluster: &Cluster, lease: &str) -> String {
    let json: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "lease", lease, "-o", "json"]).await).expect("JSON");
    json["spec"]["holderIdentity"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_two_shards_each_handle_only_their_runs_and_a_standby_takes_over_inside_a_shard() {
    if !kubectl_available("e2e_two_shards_each_handle_only_their_runs_and_a_standby_takes_over_inside_a_shard") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let default_selector = format!("!{SHARD_KEY}");
    let shard1_selector = format!("{SHARD_KEY} in (shard1)");
    let default_args = ["--lease-name", "ro-leader", "--watch-label-selector", default_selector.as_str()];
    let shard1_args = ["--lease-name", "ro-leader-shard1", "--watch-label-selector", shard1_selector.as_str()];
    let default_shard = cluster.operator_with("default-a", 2, &default_args).await;
    let mut shard1_leader = cluster.operator_with("shard1-a", 2, &shard1_args).await;
    shard1_leader.wait_logged("leading; starting controllers", Duration::from_secs(20)).await;
    let shard1_standby = cluster.operator_with("shard1-b", 2, &shard1_args).await;
    default_shard.wait_logged("leading; starting controllers", Duration::from_secs(20)).await;

    // The tenant carries no shard label: the default shard checks it; runs of every shard use it.
    let data = backup_config_map_data(&sample_backup(2));
    let tenant = tenant_object(&cluster.sim, Environment::Staging);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    cluster.apply("runs", &[run_in_shard("plain", None), run_in_shard("sharded", Some("shard1"))]).await;
    cluster.wait_for("plain", ".status.phase", "Previewed", WAIT).await;
    cluster.wait_for("sharded", ".status.phase", "Previewed", WAIT).await;

    assert!(handled(&default_shard, "plain") && !handled(&default_shard, "sharded"), "the default shard");
    assert!(handled(&shard1_leader, "sharded") && !handled(&shard1_leader, "plain"), "shard1's leader");
    assert!(!handled(&shard1_standby, "sharded") && !handled(&shard1_standby, "plain"), "a standby works");
    assert_eq!(lease_holder(&cluster, "ro-leader").await, "default-a");
    assert_eq!(lease_holder(&cluster, "ro-leader-shard1").await, "shard1-a");

    // Failover inside shard1: its standby takes its Lease; the default shard is not involved.
    shard1_leader.kill_hard().await;
    cluster.apply("after-failover", &[run_in_shard("sharded-2", Some("shard1"))]).await;
    cluster.wait_for("sharded-2", ".status.phase", "Previewed", WAIT).await;
    shard1_standby.wait_logged("leading; starting controllers", Duration::from_secs(5)).await;
    assert!(handled(&shard1_standby, "sharded-2"), "the standby of shard1 took over");
    assert!(!handled(&default_shard, "sharded-2"), "the default shard never handles a shard1 run");
    assert_eq!(lease_holder(&cluster, "ro-leader-shard1").await, "shard1-b");
    assert_eq!(lease_holder(&cluster, "ro-leader").await, "default-a");
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "dry-runs write nothing");
}
