//! The `kubectl restorerun` plugin end to end: kubectl finds it on PATH, `show` prints the
//! preview, `approve` refuses a mistyped label and approves as the authenticated user.

mod controller_support;

use std::path::Path;
use std::time::Duration;

use controller_support::e2e::{Cluster, kubectl_available, outcome};
use controller_support::*;
use restore_core::api::Environment;
use tokio::process::Command;

const RUN: &str = "restore-plugin";
const WAIT: Duration = Duration::from_secs(60);

/// Runs `kubectl restorerun ARGS` as `user`, with the plugin's folder first on PATH.
async fn plugin(cluster: &Cluster, user: &str, args: &[&str]) -> (bool, String, String) {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-restorerun")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", plugin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let kubeconfig = cluster.emulator.kubeconfig_for_user(user).expect("a kubeconfig for the user");
    let out = Command::new("kubectl")
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .args(["restorerun", "-n", NAMESPACE])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("kubectl runs");
    outcome(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_restorerun_shows_the_preview_and_approves_as_the_authenticated_user() {
    if !kubectl_available("kubectl_restorerun_shows_the_preview_and_approves_as_the_authenticated_user") {
        return;
    }
    let cluster = Cluster::start(&TenantSetup::default()).await;
    let _operator = cluster.operator("replica-a", 3).await;
    let data = backup_config_map_data(&sample_backup(2));
    cluster
        .apply(
            "tenant",
            &[
                secret_object(),
                tenant_object(&cluster.sim, Environment::Staging),
                backup_config_map(BACKUP_CONFIG_MAP, &data),
            ],
        )
        .await;
    cluster.apply("run", &[restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")]).await;
    cluster.wait_for(RUN, ".status.phase", "Previewed", WAIT).await;
    let digest = cluster.get(RUN, ".status.preview.digest").await;

    let (ok, shown, err) = plugin(&cluster, "alice@contoso.com", &["show", RUN]).await;
    assert!(ok, "{err}");
    assert!(shown.contains("Previewed") && shown.contains(&digest) && shown.contains(TENANT_LABEL), "{shown}");

    // A mistyped label changes nothing.
    let (ok, _, err) = plugin(&cluster, "alice@contoso.com", &["approve", RUN, "--tenant", "contoso staging"]).await;
    assert!(!ok && err.contains("not the tenant's label"), "{err}");
    assert_eq!(cluster.get(RUN, ".spec.dryRun").await, "true");
    assert_eq!(operator_writes(&cluster.sim).len(), 0);

    // The exact label approves, as the user the API server authenticated.
    let (ok, out, err) = plugin(&cluster, "alice@contoso.com", &["approve", RUN, "--tenant", TENANT_LABEL]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(cluster.get(RUN, ".spec.confirmation.approvedBy").await, "alice@contoso.com");
    assert_eq!(cluster.get(RUN, ".spec.confirmation.previewDigest").await, digest);
    cluster.wait_for(RUN, ".status.phase", "Succeeded", WAIT).await;
    assert_eq!(cluster.get(RUN, ".status.confirmation.approvedBy").await, "alice@contoso.com");
}
