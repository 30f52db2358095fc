//! The Argo CD health script of IntuneTenant (deploy/argocd/intunetenant-health.lua), run by a
//! real Lua 5.4 interpreter on tenants in each state, and embedded in argocd-cm.yaml.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn lua_available() -> bool {
    if Command::new("lua5.4").arg("-v").output().is_ok() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "lua5.4 is missing in CI: scripts/install-test-deps.sh");
    eprintln!("SKIPPED: lua5.4 not installed (apt-get install lua5.4)");
    false
}

/// A JSON value as a Lua table literal (as Argo CD hands objects to its scripts).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            format!("{{{}}}", map.iter().map(|(k, v)| format!("[{k:?}] = {}", lua(v))).collect::<Vec<_>>().join(", "))
        }
    }
}

fn script() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/intunetenant-health.lua"))
        .unwrap()
}

fn health(obj: &Value) -> String {
    let program = format!("obj = {}\nlocal r = (function()\n{}\nend)()\nprint(r.status)\n", lua(obj), script());
    let out = Command::new("lua5.4").arg("-e").arg(program).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/argocd-cm.yaml")).unwrap();
    let cm: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        cm["data"]["resource.customizations.health.tenantatlas.io_IntuneTenant"],
        json!(script()),
        "run scripts/gen-argocd-cm.py"
    );
}
