//! End to end (DESIGN rule 12): while the real operator processes a hostile run — a YAML alias
//! bomb in a ConfigMap — it stays live: /healthz answers, its Lease is renewed, another run
//! completes, and the hostile run fails with a clear reason and no write.

mod controller_support;

use std::time::{Duration, Instant};

use controller_support::e2e::{Cluster, kubectl_available};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A ConfigMap whose binaryData holds an IntuneCD backup: one anchor of 20 000 values and 20 000
/// aliases to it in each of four files (4·10⁸ values apiece once expanded).
fn alias_bomb_config_map(name: &str) -> Value {
    let values = vec!["1"; 20_000].join(",");
    let aliases = vec!["*a"; 20_000].join(",");
    let bomb = format!("displayName: bomb\na: &a [{values}]\nb: [{aliases}]\n").into_bytes();
    let files: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("Filters/bomb{i}.yaml"), bomb.clone())).collect();
    let archive = restore_backup::native::tar_gz_of(&files).unwrap();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "binaryData": {"backup.tar.gz": k8s_openapi::ByteString(archive)},
    })
}

async fn lease_renew_time(cluster: &Cluster) -> String {
    let args = ["get", "lease", "restore-operator-leader", "-n", NAMESPACE, "-o", "jsonpath={.spec.renewTime}"];
    cluster.kubectl_ok(&args).await
}

fn hostile_run(name: &str, config_map: &str) -> Value {
    let mut run = restore_run_object(name, config_map, true, "1h");
    run["spec"]["source"] = json!({"configMapRef": {"name": config_map, "key": "backup.tar.gz"}, "format": "intunecd"});
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_the_operator_stays_live_while_a_hostile_run_is_processed() {
    if !kubectl_available("e2e_the_operator_stays_live_while_a_hostile_run_is_processed") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let operator = cluster.operator("replica-a", 3).await;
    let data = backup_config_map_data(&sample_backup(4));
    let tenant = tenant_object(&cluster.sim, Environment::Staging);
    cluster.apply("tenant", &[secret_object(), tenant, backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    operator.wait_logged("serving /metrics", WAIT).await;

    cluster.apply("hostile", &[alias_bomb_config_map("bomb"), hostile_run("hostile", "bomb")]).await;
    cluster.apply("normal", &[restore_run_object("normal", BACKUP_CONFIG_MAP, true, "1h")]).await;

    // While both are processed: health answers every time, the Lease keeps being renewed.
    let started = Instant::now();
    let mut renewals = std::collections::BTreeSet::new();
    let mut health_checks = 0;
    loop {
        let (status, _) = operator.http_get("/healthz").await;
        assert_eq!(status, 200, "/healthz answers while the hostile run is processed");
        health_checks += 1;
        renewals.insert(lease_renew_time(&cluster).await);
        let hostile = cluster.get("hostile", ".status.phase").await;
        let normal = cluster.get("normal", ".status.phase").await;
        if hostile == "Failed" && normal == "Previewed" && renewals.len() >= 3 {
            break;
        }
        assert!(started.elapsed() < WAIT, "hostile={hostile} normal={normal} renewals={renewals:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{health_checks} health checks, {} distinct Lease renewals", renewals.len());

    // The hostile run failed for good, naming the budget it ran out of; nothing was written.
    let (status, reason, message) = cluster.condition("hostile", "Ready").await;
    assert_eq!(status, "False");
    assert!(
        format!("{reason} {message}").contains("TooManyValues") || message.contains("values"),
        "{reason}: {message}"
    );
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "dry-runs and a refused backup write nothing");
    operator.assert_logs_hold_no_secret();
}
