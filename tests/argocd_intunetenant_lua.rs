//! The Argo CD health script of IntuneTenant (deploy/argocd/intunetenant-health.lua), run by a
//! real Lua 5.4 interpreter on tenants in each state, and embedded in argocd-cm.yaml.

mod lua_support;

use lua_support::{lua_available, run_lua, script};
use serde_json::{Value, json};

fn health(obj: &Value) -> String {
    run_lua(&script("intunetenant-health.lua"), obj, "print(r.status)").unwrap_or_else(|e| panic!("{e}"))
}

fn tenant(generation: i64, conditions: Value) -> Value {
    json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "IntuneTenant",
           "metadata": {"name": "t", "generation": generation},
           "status": {"observedGeneration": 2, "conditions": conditions}})
}

fn condition(type_: &str, status: &str, reason: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": "m"})
}

#[test]
fn intunetenant_health_follows_its_conditions() {
    if !lua_available() {
        return;
    }
    let cases = [
        ("no status", json!({"metadata": {"generation": 1}}), "Progressing"),
        ("verified", tenant(2, json!([condition("Ready", "True", "CredentialsVerified")])), "Healthy"),
        (
            "verified, spec since edited",
            tenant(3, json!([condition("Ready", "True", "CredentialsVerified")])),
            "Progressing",
        ),
        (
            "authentication failed",
            tenant(
                2,
                json!([
                    condition("Ready", "False", "AuthenticationFailed"),
                    condition("Stalled", "True", "AuthenticationFailed")
                ]),
            ),
            "Degraded",
        ),
        (
            "graph unreachable, retrying",
            tenant(2, json!([condition("Ready", "False", "GraphUnavailable")])),
            "Progressing",
        ),
    ];
    for (name, obj, expected) in cases {
        assert_eq!(health(&obj), expected, "{name}");
    }
}

#[test]
fn argocd_cm_embeds_the_intunetenant_health() {
    let text = script("argocd-cm.yaml");
    let cm: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        cm["data"]["resource.customizations.health.tenantatlas.io_IntuneTenant"],
        json!(script("intunetenant-health.lua")),
        "run scripts/gen-argocd-cm.py"
    );
}
