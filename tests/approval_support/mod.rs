//! The approval fixtures shared by the end-to-end and second-opinion tests: the people and their
//! groups, the chart's policy and roles rendered by the Helm engine, the namespace's bindings.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;

use serde_json::json;

/// The annotation the policy records the requester in.
pub const REQUESTED_BY: &str = "tenantatlas.io/requested-by";
/// The trusted GitOps applier (Flux's kustomize-controller).
pub const FLUX: &str = "system:serviceaccount:flux-system:kustomize-controller";
/// Argo CD's API server, which runs the `approve` resource action (a delegated approver).
pub const ARGOCD_SERVER: &str = "system:serviceaccount:argocd:argocd-server";
/// The namespace of the runs (the e2e harness's).
pub const RUNS_NAMESPACE: &str = "intune";

/// Whether helm-python-sdk is importable; missing it skips a test, except under `CI=true`.
pub fn helm_available(test: &str) -> bool {
    python_modules_available(test, "helm_python")
}

/// Whether these Python modules import; missing them skips a test, except under `CI=true`.
pub fn python_modules_available(test: &str, modules: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "{test}: python modules {modules} are required under CI=true (scripts/install-test-deps.sh)"
    );
    if !found {
        eprintln!("SKIPPED {test}: python modules {modules} are not installed (scripts/install-test-deps.sh)");
    }
    found
}

/// The chart's approval policy and user roles, rendered by the Helm engine with these values.
pub fn rendered_chart(four_eyes: bool) -> String {
    render(four_eyes, "restore-operator", &["approval-policy.yaml", "user-roles.yaml"])
}

/// The operator's manifests from the chart (ServiceAccount, RBAC, Deployment, Service), released
/// into `namespace`.
pub fn rendered_operator(namespace: &str) -> String {
    render(false, namespace, &["serviceaccount.yaml", "rbac.yaml", "deployment.yaml", "service.yaml"])
}

fn render(four_eyes: bool, namespace: &str, templates: &[&str]) -> String {
    let values = json!({"approval": {
        "fourEyes": four_eyes,
        "trustedAppliers": [FLUX],
        "approverGroups": ["intune-approvers"],
        "gitopsApproverGroups": ["intune-gitops-approvers"],
        "delegatedApprovers": [ARGOCD_SERVER],
    }});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/render-chart.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("--namespace={namespace}"))
        .arg(values.to_string())
        .args(templates)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "the chart renders: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
/// A person (or service account) and the groups kubectl asserts with `--as-group`.
pub struct Who {
    pub user: &'static str,
    pub groups: &'static [&'static str],
}

/// Requests runs, and may approve other people's.
pub const ALICE: Who = Who { user: "alice@contoso.com", groups: &["intune-editors", "intune-approvers"] };
/// Approves.
pub const BOB: Who = Who { user: "bob@contoso.com", groups: &["intune-approvers"] };
/// Edits runs, may not approve.
pub const MALLORY: Who = Who { user: "mallory@contoso.com", groups: &["intune-editors"] };
/// Approves, also runs that GitOps applied.
pub const DAVE: Who = Who { user: "dave@contoso.com", groups: &["intune-approvers", "intune-gitops-approvers"] };
/// The trusted GitOps applier.
pub const FLUX_APPLIER: Who = Who { user: FLUX, groups: &[] };
/// Argo CD's API server, which runs the `approve` resource action.
pub const ARGO_ACTION: Who = Who { user: ARGOCD_SERVER, groups: &[] };

/// Who may do what in the test namespace besides the chart's bindings: editors and the GitOps
/// applier edit runs, everyone authenticated reads them.
pub fn namespace_bindings() -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: run-editors, namespace: {RUNS_NAMESPACE}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: restore-operator-editor}}\n\
         subjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: intune-editors}}\n\
         - {{kind: ServiceAccount, name: kustomize-controller, namespace: flux-system}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: run-viewers, namespace: {RUNS_NAMESPACE}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: restore-operator-viewer}}\n\
         subjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}}\n"
    )
}

/// A JSON value as a Lua table literal (as Argo CD hands objects to its scripts).
fn lua_literal(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("[{k:?}] = {}", lua_literal(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Runs the shipped Argo CD `approve` action (`deploy/argocd/actions/approve/action.lua`) on a
/// run with lua5.4 and returns the merge patch Argo CD would send (`None`: lua5.4 is missing,
/// outside CI).
pub fn argo_approve_patch(run: &serde_json::Value) -> Option<String> {
    let found = std::process::Command::new("lua5.4").arg("-v").output().is_ok_and(|o| o.status.success());
    assert!(found || std::env::var("CI").as_deref() != Ok("true"), "lua5.4 is required under CI=true");
    if !found {
        eprintln!("SKIPPED the Argo CD action script: lua5.4 is not installed");
        return None;
    }
    let action =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/actions/approve/action.lua"))
            .expect("the action script");
    let program = format!(
        "obj = {}\nlocal r = (function()\n{action}\nend)()\nlocal c = r.spec.confirmation\n\
         print(tostring(r.spec.dryRun)) print(tostring(c.reviewedImpact)) print(c.tenant) print(c.previewDigest) print(c.approvedBy)\n",
        lua_literal(run)
    );
    let out = std::process::Command::new("lua5.4").arg("-e").arg(program).output().expect("lua5.4 runs");
    assert!(out.status.success(), "the action fails: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let patch = json!({"spec": {"dryRun": lines[0] == "true", "confirmation": {
        "reviewedImpact": lines[1] == "true", "tenant": lines[2], "previewDigest": lines[3], "approvedBy": lines[4]}}});
    Some(patch.to_string())
}
