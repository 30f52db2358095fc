//! The `kubectl restorerun` plugin end to end: kubectl finds it on PATH; `list`, `show`, `diff`
//! and `results` print verified records; errors are one line with documented exit codes; `approve`
//! refuses a mistyped label and approves as the authenticated user; the run's progress column,
//! status writes and Events during execution.

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
    assert!(shown.find("Tenant:") < shown.find("Create ("), "the summary comes first:\n{shown}");
    println!("$ kubectl restorerun show {RUN} -n {NAMESPACE}\n{shown}");

    let (ok, listed, err) = plugin(&cluster, "alice@contoso.com", &["list"]).await;
    assert!(ok && listed.starts_with("NAME") && listed.contains(RUN) && listed.contains("Previewed"), "{listed}{err}");
    assert_context_flag_picks_the_cluster(&cluster).await;
    let (ok, json, err) = plugin(&cluster, "alice@contoso.com", &["show", RUN, "-o", "json"]).await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("show -o json is JSON");
    assert_eq!(json["status"]["preview"]["digest"], digest.as_str());
    assert_eq!(json["report"]["items"].as_array().map(Vec::len), Some(sample_backup(2).items.len()), "{json}");
    let (ok, diff, err) = plugin(&cluster, "alice@contoso.com", &["diff", RUN]).await;
    assert!(ok && diff.contains("--- tenant") && !diff.contains('\u{1b}'), "no colour off a terminal: {diff}{err}");
    println!("$ kubectl restorerun diff {RUN} -n {NAMESPACE}\n{diff}");

    // A missing run: one line on stderr, exit 3, no debug dump.
    let out = plugin_raw(&cluster, "alice@contoso.com", &["show", "no-such-run"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("not found") && !err.contains("Status {") && !err.contains("ApiError"), "{err}");

    // The reader went away (`| head`): no broken-pipe error, exit 0.
    assert_quiet_when_the_reader_leaves(&cluster, &["show", RUN, "-o", "yaml"]).await;

    // A mistyped label changes nothing.
    let (ok, _, err) = plugin(&cluster, "alice@contoso.com", &["approve", RUN, "--tenant", "contoso staging"]).await;
    assert!(!ok && err.contains("not the tenant's label"), "{err}");
    assert_eq!(cluster.get(RUN, ".spec.dryRun").await, "true");
    assert_eq!(operator_writes(&cluster.sim).len(), 0);

    // The exact label approves, as the user the API server authenticated, after showing what it approves.
    let watch = cluster.watch(RUN).await;
    let (ok, out, err) = plugin(&cluster, "alice@contoso.com", &["approve", RUN, "--tenant", TENANT_LABEL]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains(&digest) && out.contains("You are approving exactly this preview"), "{out}");
    assert_eq!(cluster.get(RUN, ".spec.confirmation.approvedBy").await, "alice@contoso.com");
    assert_eq!(cluster.get(RUN, ".spec.confirmation.previewDigest").await, digest);
    let (ok, waited, err) =
        plugin(&cluster, "alice@contoso.com", &["wait", RUN, "--for", "Succeeded", "--timeout", "60"]).await;
    assert!(ok && waited.lines().last().is_some_and(|l| l.starts_with("Succeeded")), "{waited}{err}");
    assert!(!waited.contains('\r') && !waited.contains('['), "plain lines off a terminal: {waited}");
    assert_eq!(cluster.get(RUN, ".status.confirmation.approvedBy").await, "alice@contoso.com");

    // Status moved item by item, never step by step: one write per item at most, plus the acceptance
    // and the finalizer added before the first write (15 events for these 5 items when every step wrote).
    let objects = watch.stop().await;
    let executing: Vec<&serde_json::Value> = objects.iter().filter(|o| o["status"]["phase"] == "Executing").collect();
    let items = sample_backup(2).items.len();
    println!("watch events while Executing: {} for {items} item(s)", executing.len());
    assert!(!executing.is_empty() && executing.len() <= items + 2, "{} watch events", executing.len());

    // The Progress column, through kubectl's own printer.
    let table = cluster.kubectl_ok(&["get", "rr", RUN]).await;
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    let column = header.iter().position(|h| *h == "PROGRESS").expect("a PROGRESS column");
    assert_eq!(row.get(column), Some(&format!("{items}/{items}").as_str()), "{table}");

    // Events: who approved which preview, the real step count, the outcome counts.
    let events = cluster.events().await;
    let note = |reason: &str| {
        events
            .iter()
            .find(|e| e["reason"] == reason)
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let accepted = note("ConfirmationAccepted");
    assert!(accepted.contains("alice@contoso.com") && accepted.contains(&digest), "{accepted}");
    let executing = note("Executing");
    assert!(!executing.is_empty() && !executing.contains(" 0/0 "), "the Executing Event: {executing}");
    assert!(note("ExecutionFinished").contains(&format!("{items} created")), "{}", note("ExecutionFinished"));

    // After execution: per-item results, and approve refuses at once without asking for the label.
    let (ok, results, err) = plugin(&cluster, "alice@contoso.com", &["results", RUN]).await;
    println!("$ kubectl restorerun results {RUN} -n {NAMESPACE}\n{results}\n$ kubectl get rr {RUN}\n{table}");
    assert!(ok && results.contains(&format!("Created ({items}):")), "{results}{err}");
    let out = plugin_raw(&cluster, "alice@contoso.com", &["approve", RUN]).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(stderr.contains("the run is Succeeded") && !stdout.contains("Type the tenant"), "{stdout}{stderr}");
}

/// `--context` picks a context of the kubeconfig other than its current one (here: a cluster that
/// does not answer), as kubectl's does.
async fn assert_context_flag_picks_the_cluster(cluster: &Cluster) {
    let text = cluster
        .emulator
        .kubeconfig()
        .replace("clusters:\n", "clusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:9\n")
        .replace(
            "contexts:\n",
            "contexts:\n- name: elsewhere\n  context:\n    cluster: nowhere\n    user: kube-emulator\n",
        )
        .replace("current-context: kube-emulator", "current-context: elsewhere");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, text).expect("the kubeconfig is written");
    let list = |context: Option<&'static str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-restorerun"));
        command.arg("--kubeconfig").arg(&path).args(["-n", NAMESPACE, "list"]);
        if let Some(context) = context {
            command.args(["--context", context]);
        }
        command.stdin(std::process::Stdio::null()).output()
    };
    let chosen = list(Some("kube-emulator")).await.expect("the plugin runs");
    let listed = String::from_utf8_lossy(&chosen.stdout);
    assert!(chosen.status.success() && listed.contains(RUN), "--context kube-emulator: {listed}");
    let current = list(None).await.expect("the plugin runs");
    let err = String::from_utf8_lossy(&current.stderr);
    assert_eq!(current.status.code(), Some(1), "the current context's cluster does not answer: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Runs the plugin and returns its whole output and exit status.
async fn plugin_raw(cluster: &Cluster, user: &str, args: &[&str]) -> std::process::Output {
    let kubeconfig = cluster.emulator.kubeconfig_for_user(user).expect("a kubeconfig for the user");
    Command::new(env!("CARGO_BIN_EXE_kubectl-restorerun"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", NAMESPACE])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("the plugin runs")
}

/// The plugin's stdout is closed before it writes (as `| head` does): it must exit 0 and say nothing.
async fn assert_quiet_when_the_reader_leaves(cluster: &Cluster, args: &[&str]) {
    let kubeconfig = cluster.emulator.kubeconfig_for_user("alice@contoso.com").expect("a kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-restorerun"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", NAMESPACE])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().await.expect("the plugin ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "exit {:?}: {err}", out.status.code());
}
