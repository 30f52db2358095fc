//! Approval end to end with the API server's own checks: the emulator enforcing RBAC and the
//! chart's Helm-rendered ValidatingAdmissionPolicy and roles, `kubectl --as` as each person, and
//! the real `restore-operator` binary executing what was approved. Skipped (with a printed reason)
//! without kubectl or helm-python-sdk, except under `CI=true`.

mod approval_support;
mod controller_support;

use approval_support::*;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use controller_support::e2e::{Cluster, kubectl_available, outcome};
use controller_support::*;
use restore_core::api::Environment;
use serde_json::{Value, json};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(60);
const POLICY: &str = "ValidatingAdmissionPolicy 'restore-operator-approval.tenantatlas.io'";

/// Installs the rendered chart parts and the namespace bindings as the admin, then turns RBAC on.
async fn secure(cluster: &Cluster, four_eyes: bool) {
    cluster.emulator.apply_yaml(&rendered_chart(four_eyes)).expect("the chart's policy and roles install");
    cluster.emulator.apply_yaml(&namespace_bindings()).expect("the bindings install");
    cluster.emulator.enforce_rbac(true);
}

/// Re-renders the policy with four-eyes switched on or off (as `helm upgrade` would).
fn switch_four_eyes(cluster: &Cluster, on: bool) {
    cluster.emulator.apply_yaml(&rendered_chart(on)).expect("the policy is replaced");
}

/// `kubectl --as USER --as-group G… ARGS`.
async fn kubectl_as(cluster: &Cluster, who: &Who, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--as", who.user];
    for group in who.groups {
        all.extend(["--as-group", group]);
    }
    all.extend_from_slice(args);
    cluster.kubectl(&all).await
}

/// Writes objects to a file and `kubectl apply`s it as `who` with extra flags.
async fn apply_as(cluster: &Cluster, who: &Who, object: &Value, flags: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.yaml");
    std::fs::write(&path, serde_yaml::to_string(object).expect("YAML")).expect("manifest is written");
    let mut args = vec!["apply", "-f", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(flags);
    kubectl_as(cluster, who, &args).await
}

/// A dry-run RestoreRun requested by `requested_by` (no annotation when `None`).
fn run_object(name: &str, requested_by: Option<&str>) -> Value {
    let mut run = restore_run_object(name, BACKUP_CONFIG_MAP, true, "1h");
    if let Some(user) = requested_by {
        run["metadata"]["annotations"] = json!({REQUESTED_BY: user});
    }
    run
}

fn confirmation(approved_by: &str, digest: &str) -> Value {
    json!({"reviewedImpact": true, "tenant": TENANT_LABEL, "previewDigest": digest, "approvedBy": approved_by})
}

fn approval(approved_by: &str, digest: &str) -> String {
    json!({"spec": {"dryRun": false, "confirmation": confirmation(approved_by, digest)}}).to_string()
}

async fn patch_as(cluster: &Cluster, who: &Who, run: &str, patch: &str) -> (bool, String, String) {
    kubectl_as(cluster, who, &["patch", "restorerun", run, "--type", "merge", "-p", patch]).await
}

/// Asserts kubectl failed with the API server's message containing `expected`.
fn assert_refused(what: &str, (ok, stdout, stderr): (bool, String, String), expected: &str) {
    assert!(!ok, "{what} was accepted: {stdout}");
    assert!(stderr.contains(expected), "{what}: expected {expected:?} in:\n{stderr}");
}

fn assert_refused_by_policy(what: &str, result: (bool, String, String), expected: &str) {
    assert!(result.2.contains(POLICY), "{what}: not refused by the approval policy:\n{}{}", result.1, result.2);
    assert_refused(what, result, expected);
}

async fn confirmation_of(cluster: &Cluster, run: &str) -> String {
    cluster.get(run, ".spec.confirmation").await
}

/// `kubectl restorerun approve` (the plugin) as `who`.
async fn plugin_approve(cluster: &Cluster, who: &Who, run: &str) -> (bool, String, String) {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-restorerun")).parent().expect("a folder").to_path_buf();
    let path = format!("{}:{}", plugin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let kubeconfig = cluster.emulator.kubeconfig_for(who.user, who.groups).expect("a kubeconfig");
    let out = Command::new("kubectl")
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .args(["restorerun", "-n", NAMESPACE, "approve", run, "--tenant", TENANT_LABEL])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("kubectl runs");
    outcome(&out)
}

/// The patch of the Argo CD `approve` action for a run, from the shipped Lua when lua5.4 is
/// there. No operator runs here, so the preview it reads is added to the live object in memory.
async fn argo_action_patch(cluster: &Cluster, run: &str, digest: &str) -> String {
    let mut live: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "restorerun", run, "-o", "json"]).await).expect("JSON");
    live["status"] = json!({"phase": "Previewed", "preview": {"digest": digest},
        "tenant": {"id": TENANT_ID, "label": TENANT_LABEL}});
    argo_approve_patch(&live).unwrap_or_else(|| approval(ARGOCD_SERVER, digest))
}

async fn cluster_with_tenant() -> Cluster {
    let cluster = Cluster::start(&TenantSetup::default()).await;
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
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_every_bypass_of_a_previewed_run_is_refused_and_an_approver_executes_it() {
    let test = "four_eyes_every_bypass_of_a_previewed_run_is_refused_and_an_approver_executes_it";
    if !kubectl_available(test) || !helm_available(test) {
        return;
    }
    let cluster = cluster_with_tenant().await;
    let _operator = cluster.operator("replica-a", 3).await;
    secure(&cluster, true).await;
    let run = "requested-by-alice";
    let (ok, _, err) = apply_as(&cluster, &ALICE, &run_object(run, Some(ALICE.user)), &[]).await;
    assert!(ok, "alice (an editor) requests a run: {err}");
    cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    let digest = cluster.get(run, ".status.preview.digest").await;

    // Without the `approve` verb: RBAC lets mallory patch, the policy refuses the confirmation.
    let refused = patch_as(&cluster, &MALLORY, run, &approval(MALLORY.user, &digest)).await;
    assert_refused_by_policy("an editor's approval", refused, "needs the 'approve' verb on restoreruns");
    // approvedBy must be the requesting user.
    let refused = patch_as(&cluster, &BOB, run, &approval(DAVE.user, &digest)).await;
    assert_refused_by_policy(
        "approvedBy naming someone else",
        refused,
        "approvedBy must be your own username: bob@contoso.com",
    );
    // Four-eyes: the requester cannot approve, although she holds the verb.
    let refused = patch_as(&cluster, &ALICE, run, &approval(ALICE.user, &digest)).await;
    assert_refused_by_policy(
        "the requester's approval",
        refused,
        "the user who requested this RestoreRun cannot approve it",
    );
    // Server-side apply by another field manager is an UPDATE like any other.
    let mut applied = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": run, "namespace": NAMESPACE},
        "spec": {"dryRun": false, "confirmation": confirmation(MALLORY.user, &digest)}});
    let ssa = ["--server-side", "--field-manager=gitops-tool", "--force-conflicts"];
    assert_refused_by_policy(
        "an editor's server-side apply",
        apply_as(&cluster, &MALLORY, &applied, &ssa).await,
        "needs the 'approve' verb",
    );
    applied["spec"]["confirmation"]["approvedBy"] = json!(ALICE.user);
    assert_refused_by_policy(
        "the requester's server-side apply",
        apply_as(&cluster, &ALICE, &applied, &ssa).await,
        "cannot approve it",
    );
    // The record of who requested the run cannot be rewritten or dropped.
    let rewrite = json!({"metadata": {"annotations": {REQUESTED_BY: BOB.user}}}).to_string();
    assert_refused_by_policy("rewriting requested-by", patch_as(&cluster, &BOB, run, &rewrite).await, "is immutable");
    let drop = json!([{"op": "remove", "path": "/metadata/annotations/tenantatlas.io~1requested-by"}]).to_string();
    let dropped = kubectl_as(&cluster, &MALLORY, &["patch", "restorerun", run, "--type", "json", "-p", &drop]).await;
    assert_refused_by_policy("dropping requested-by", dropped, "is immutable");
    // The status subresource: approvers may not write it, and even the admin cannot set spec through it.
    let through_status = approval(BOB.user, &digest);
    let status_patch = ["patch", "restorerun", run, "--subresource=status", "--type", "merge", "-p", &through_status];
    assert_refused(
        "an approver's status patch",
        kubectl_as(&cluster, &BOB, &status_patch).await,
        "cannot patch resource \"restoreruns/status\"",
    );
    cluster.kubectl_ok(&status_patch).await;
    assert_eq!(confirmation_of(&cluster, run).await, "", "a status patch changes no spec");
    assert_eq!(cluster.get(run, ".spec.dryRun").await, "true");
    assert_eq!(operator_writes(&cluster.sim).len(), 0, "nothing was written to the tenant");

    // The plugin is refused the same way: it patches as the authenticated user.
    let refused = plugin_approve(&cluster, &MALLORY, run).await;
    assert_refused_by_policy("the plugin as an editor", refused, "needs the 'approve' verb");
    let refused = plugin_approve(&cluster, &ALICE, run).await;
    assert_refused_by_policy("the plugin as the requester", refused, "cannot approve it");

    // Bob holds the verb and did not request the run: the plugin approves as bob, and it executes.
    let (ok, out, err) = plugin_approve(&cluster, &BOB, run).await;
    assert!(ok, "bob approves with kubectl restorerun approve: {out}{err}");
    cluster.wait_for(run, ".status.phase", "Succeeded", WAIT).await;
    assert_eq!(cluster.get(run, ".status.confirmation.approvedBy").await, BOB.user);
    assert_eq!(operator_writes(&cluster.sim).len(), expected_writes(&sample_backup(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_run_that_carries_a_confirmation_needs_an_approver_and_four_eyes_still_holds() {
    let test = "creating_a_run_that_carries_a_confirmation_needs_an_approver_and_four_eyes_still_holds";
    if !kubectl_available(test) || !helm_available(test) {
        return;
    }
    let cluster = cluster_with_tenant().await;
    secure(&cluster, false).await;
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let confirmed = |name: &str, who: &Who| {
        let mut run = run_object(name, Some(who.user));
        run["spec"]["dryRun"] = json!(false);
        run["spec"]["confirmation"] = confirmation(who.user, digest);
        run
    };
    // Four-eyes off: an editor without the verb is refused, an editor who may approve is not.
    let refused = apply_as(&cluster, &MALLORY, &confirmed("by-mallory", &MALLORY), &[]).await;
    assert_refused_by_policy("a confirmed run by an editor", refused, "needs the 'approve' verb");
    let (ok, _, err) = apply_as(&cluster, &ALICE, &confirmed("by-alice", &ALICE), &[]).await;
    assert!(ok, "without four-eyes an approver may create a confirmed run: {err}");
    // requested-by must name the requester.
    let lie = run_object("lie", Some(BOB.user));
    assert_refused_by_policy(
        "requested-by naming someone else",
        apply_as(&cluster, &MALLORY, &lie, &[]).await,
        "requested-by must be your own username: mallory@contoso.com",
    );

    // Four-eyes on: even an approver cannot create a run she approves herself.
    switch_four_eyes(&cluster, true);
    let refused = apply_as(&cluster, &ALICE, &confirmed("by-alice-2", &ALICE), &[]).await;
    assert_refused_by_policy("a confirmed run by its requester", refused, "cannot approve it");
    let unannotated = apply_as(&cluster, &MALLORY, &run_object("anonymous", None), &[]).await;
    assert_refused_by_policy(
        "a run without requested-by",
        unannotated,
        "four-eyes: annotate the run with tenantatlas.io/requested-by: mallory@contoso.com",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_gaps_legacy_runs_gitops_runs_and_the_argo_action_are_closed() {
    let test = "four_eyes_gaps_legacy_runs_gitops_runs_and_the_argo_action_are_closed";
    if !kubectl_available(test) || !helm_available(test) {
        return;
    }
    let cluster = cluster_with_tenant().await;
    secure(&cluster, false).await;
    let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    // Created while four-eyes was off, without the annotation.
    let (ok, _, err) = apply_as(&cluster, &ALICE, &run_object("legacy", None), &[]).await;
    assert!(ok, "{err}");
    // Four-eyes off: the Argo CD action (the shipped Lua, run on the live object, patched as
    // Argo CD's server account) is a delegated approver and is accepted, recorded as itself.
    assert!(apply_as(&cluster, &ALICE, &run_object("argo-off", Some(ALICE.user)), &[]).await.0);
    let argo_patch = argo_action_patch(&cluster, "argo-off", digest).await;
    let (ok, _, err) = patch_as(&cluster, &ARGO_ACTION, "argo-off", &argo_patch).await;
    assert!(ok, "without four-eyes the Argo CD action approves as argocd-server: {err}");
    assert_eq!(cluster.get("argo-off", ".spec.confirmation.approvedBy").await, ARGOCD_SERVER);

    switch_four_eyes(&cluster, true);
    // Gap 2: a run created before four-eyes cannot be approved, not even by its creator.
    let refused = patch_as(&cluster, &ALICE, "legacy", &approval(ALICE.user, digest)).await;
    assert_refused_by_policy("approving a pre-four-eyes run", refused, "created before four-eyes was switched on");
    let refused = patch_as(&cluster, &BOB, "legacy", &approval(BOB.user, digest)).await;
    assert_refused_by_policy("approving a pre-four-eyes run", refused, "recreate it");
    let annotate = json!({"metadata": {"annotations": {REQUESTED_BY: BOB.user}}}).to_string();
    assert_refused_by_policy(
        "back-filling requested-by",
        patch_as(&cluster, &ALICE, "legacy", &annotate).await,
        "is immutable",
    );

    // Gap 3: with four-eyes the Argo CD action does not identify the person and is refused.
    assert!(apply_as(&cluster, &ALICE, &run_object("argo-on", Some(ALICE.user)), &[]).await.0);
    let argo_patch = argo_action_patch(&cluster, "argo-on", digest).await;
    let refused = patch_as(&cluster, &ARGO_ACTION, "argo-on", &argo_patch).await;
    assert_refused_by_policy("the Argo CD action under four-eyes", refused, "delegated approver");

    // Gap 1: a run the GitOps applier created names the applier, not the committer; only the
    // GitOps approver group may approve it.
    let (ok, _, err) = apply_as(
        &cluster,
        &FLUX_APPLIER,
        &run_object("from-git", Some(FLUX)),
        &["--server-side", "--field-manager=kustomize-controller"],
    )
    .await;
    assert!(ok, "the applier creates the committed run: {err}");
    let refused = patch_as(&cluster, &BOB, "from-git", &approval(BOB.user, digest)).await;
    assert_refused_by_policy("an approver outside gitopsApproverGroups", refused, "approval.gitopsApproverGroups");
    let (ok, _, err) = patch_as(&cluster, &DAVE, "from-git", &approval(DAVE.user, digest)).await;
    assert!(ok, "a GitOps approver approves the committed run: {err}");
    // The trusted applier may carry a confirmation committed to Git (the Git review is the
    // approval; the API server cannot check it: documented in the README).
    let mut committed = run_object("committed", Some(FLUX));
    committed["spec"]["confirmation"] = confirmation("reviewer@contoso.com", digest);
    let (ok, _, err) =
        apply_as(&cluster, &FLUX_APPLIER, &committed, &["--server-side", "--field-manager=kustomize-controller"]).await;
    assert!(ok, "a committed confirmation is applied: {err}");
    // Nobody else may claim to be the applier: requested-by is checked on create.
    let forged = run_object("forged", Some(FLUX));
    assert_refused_by_policy(
        "requested-by naming the applier",
        apply_as(&cluster, &MALLORY, &forged, &[]).await,
        "must be your own username",
    );
}

/// Starts the operator with a kubeconfig that acts as the chart's service account
/// `system:serviceaccount:intune:restore-operator`: the harness's kubeconfig is swapped for the
/// start (the binary reads it once, before it serves /metrics), then restored for kubectl.
async fn operator_as_chart_service_account(cluster: &Cluster) -> controller_support::e2e::Operator {
    let admin = std::fs::read_to_string(&cluster.kubeconfig).expect("the admin kubeconfig");
    let service_account = format!("system:serviceaccount:{NAMESPACE}:restore-operator");
    let as_operator = cluster.emulator.kubeconfig_for(&service_account, &[]).expect("a kubeconfig");
    std::fs::copy(&as_operator, &cluster.kubeconfig).expect("the kubeconfig is swapped");
    let operator = cluster.operator("replica-a", 3).await;
    operator.http_address().await;
    std::fs::write(&cluster.kubeconfig, admin).expect("the admin kubeconfig is restored");
    operator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_previews_and_executes_with_only_the_charts_rbac() {
    let test = "the_operator_previews_and_executes_with_only_the_charts_rbac";
    if !kubectl_available(test) || !helm_available(test) {
        return;
    }
    let cluster = cluster_with_tenant().await;
    // Installed with kubectl, whole: the emulator stores the Deployment and Service (nothing runs them).
    let manifest = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(manifest.path(), rendered_operator(NAMESPACE)).expect("the manifest is written");
    cluster.kubectl_ok(&["apply", "-f", manifest.path().to_str().expect("utf-8 path")]).await;
    secure(&cluster, true).await;
    let operator = operator_as_chart_service_account(&cluster).await;
    let run = "operator-as-service-account";
    let (ok, _, err) = apply_as(&cluster, &ALICE, &run_object(run, Some(ALICE.user)), &[]).await;
    assert!(ok, "{err}");
    cluster.wait_for(run, ".status.phase", "Previewed", WAIT).await;
    let digest = cluster.get(run, ".status.preview.digest").await;
    let (ok, _, err) = patch_as(&cluster, &BOB, run, &approval(BOB.user, &digest)).await;
    assert!(ok, "{err}");
    cluster.wait_for(run, ".status.phase", "Succeeded", WAIT).await;
    let forbidden: Vec<String> = operator.logs().into_iter().filter(|l| l.contains("forbidden")).collect();
    assert!(forbidden.is_empty(), "the operator needed permissions the chart does not grant: {forbidden:#?}");
}
