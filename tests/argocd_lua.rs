//! The Argo CD health script and `approve` action, run by a real Lua 5.4 interpreter against
//! RestoreRun objects in each state. Skipped where lua5.4 is missing, except in CI.

mod lua_support;

use lua_support::{lua_available, run_lua, script};
use serde_json::{Value, json};

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message})
}

fn run_in(phase: &str, conditions: Vec<Value>) -> Value {
    json!({
        "apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": "r", "generation": 2},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}, "dryRun": true},
        "status": {
            "observedGeneration": 2, "phase": phase, "conditions": conditions,
            "tenant": {"id": "t", "label": "Contoso Production"},
            "preview": {"digest": "sha256:abc", "generatedAt": "x", "expiresAt": "y",
                        "counts": {"create": 1, "update": 0, "unchanged": 0, "skip": 0, "previewOnly": 0}, "changes": 1}
        }
    })
}

fn health(obj: &Value) -> String {
    run_lua(&script("health.lua"), obj, "print(r.status .. '|' .. (r.message or ''))").unwrap()
}

#[test]
fn health_follows_the_wizard() {
    if !lua_available() {
        return;
    }
    let cases = [
        (json!({"metadata": {"name": "r"}, "spec": {}}), "Progressing"),
        (
            run_in(
                "Checking",
                vec![
                    condition("Ready", "False", "Checking", "running the safety checks"),
                    condition("Reconciling", "True", "Checking", ""),
                ],
            ),
            "Progressing",
        ),
        (run_in("Previewed", vec![condition("Ready", "True", "PreviewReady", "dry-run preview ready")]), "Healthy"),
        (
            run_in(
                "AwaitingConfirmation",
                vec![condition("Ready", "False", "AwaitingConfirmation", "set spec.confirmation")],
            ),
            "Suspended",
        ),
        (
            run_in(
                "Executing",
                vec![
                    condition("Ready", "False", "Executing", "3/9"),
                    condition("Reconciling", "True", "Executing", ""),
                ],
            ),
            "Progressing",
        ),
        (
            run_in(
                "Blocked",
                vec![
                    condition("Ready", "False", "BlockersFound", "1 blocker"),
                    condition("Stalled", "True", "BlockersFound", "1 blocker"),
                ],
            ),
            "Degraded",
        ),
        (
            run_in(
                "Failed",
                vec![
                    condition("Ready", "False", "SourceInvalid", "digest"),
                    condition("Stalled", "True", "SourceInvalid", "digest mismatch"),
                ],
            ),
            "Degraded",
        ),
        (
            run_in(
                "PartiallySucceeded",
                vec![
                    condition("Ready", "False", "PartiallySucceeded", "1 drifted"),
                    condition("Stalled", "True", "PartiallySucceeded", "1 drifted"),
                ],
            ),
            "Degraded",
        ),
        (run_in("Succeeded", vec![condition("Ready", "True", "Succeeded", "restore finished")]), "Healthy"),
    ];
    for (obj, expected) in cases {
        let got = health(&obj);
        assert!(got.starts_with(&format!("{expected}|")), "{} -> {got}", obj["status"]["phase"]);
    }
    // A spec the controller has not observed yet is still in progress, whatever the old status said.
    let mut stale = run_in("Succeeded", vec![condition("Ready", "True", "Succeeded", "done")]);
    stale["metadata"]["generation"] = json!(3);
    assert!(health(&stale).starts_with("Progressing|"));
    // The message carries the wizard's instruction.
    let waiting = run_in(
        "AwaitingConfirmation",
        vec![condition("Ready", "False", "AwaitingConfirmation", "set spec.confirmation.previewDigest: sha256:abc")],
    );
    assert!(health(&waiting).contains("sha256:abc"));
}

#[test]
fn approve_action_is_offered_only_for_a_preview_and_copies_it_exactly() {
    if !lua_available() {
        return;
    }
    let discovery = script("actions/discovery.lua");
    let disabled = |obj: &Value| run_lua(&discovery, obj, "print(tostring(r.approve.disabled))").unwrap();
    let previewed = run_in("Previewed", vec![condition("Ready", "True", "PreviewReady", "")]);
    assert_eq!(disabled(&previewed), "false");
    assert_eq!(disabled(&run_in("Executing", vec![])), "true");
    assert_eq!(disabled(&json!({"metadata": {}, "spec": {}})), "true");

    let action = script("actions/approve/action.lua");
    let out = run_lua(
        &action,
        &previewed,
        "local c = r.spec.confirmation\nprint(tostring(r.spec.dryRun), tostring(c.reviewedImpact), c.tenant, c.previewDigest, c.approvedBy)",
    )
    .unwrap();
    assert_eq!(out, "false\ttrue\tContoso Production\tsha256:abc\tsystem:serviceaccount:argocd:argocd-server");
    let refused = run_lua(&action, &json!({"metadata": {}, "spec": {}}), "print('changed')").unwrap_err();
    assert!(refused.contains("no preview to approve"), "{refused}");
}

#[test]
fn argocd_cm_embeds_the_current_scripts() {
    let text = script("argocd-cm.yaml");
    let cm: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        cm["data"]["resource.customizations.health.tenantatlas.io_RestoreRun"],
        json!(script("health.lua")),
        "run scripts/gen-argocd-cm.py"
    );
    let actions: Value =
        serde_yaml::from_str(cm["data"]["resource.customizations.actions.tenantatlas.io_RestoreRun"].as_str().unwrap())
            .unwrap();
    assert_eq!(actions["discovery.lua"], json!(script("actions/discovery.lua")), "run scripts/gen-argocd-cm.py");
    assert_eq!(
        actions["definitions"][0]["action.lua"],
        json!(script("actions/approve/action.lua")),
        "run scripts/gen-argocd-cm.py"
    );
}
