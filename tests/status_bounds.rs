//! Whatever a backup or Graph puts into a status (huge names, long messages, many findings), the
//! status the controller writes stays within the CRD's bounds, so the API server never refuses it.

use kube::core::crd::v1::CustomResourceExt;
use restore_core::api::{IntuneTenantStatus, RestoreRunStatus};
use restore_operator::kube::{IntuneTenant, RestoreRun};
use serde_json::{Value, json};

/// Every bound of `schema` that `value` breaks, as paths.
fn violations(path: &str, schema: &Value, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(max) = schema["maxLength"].as_u64()
                && s.chars().count() as u64 > max
            {
                out.push(format!("{path}: {} > maxLength {max}", s.chars().count()));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                out.push(format!("{path}: {} > maxItems {max}", items.len()));
            }
            for (i, item) in items.iter().enumerate() {
                violations(&format!("{path}[{i}]"), &schema["items"], item, out);
            }
        }
        Value::Object(map) => {
            if let Some(max) = schema["maxProperties"].as_u64()
                && map.len() as u64 > max
            {
                out.push(format!("{path}: {} > maxProperties {max}", map.len()));
            }
            for (k, v) in map {
                let child = if schema["properties"].get(k).is_some() {
                    &schema["properties"][k]
                } else {
                    &schema["additionalProperties"]
                };
                violations(&format!("{path}.{k}"), child, v, out);
            }
        }
        _ => {}
    }
}

fn status_schema(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let schema = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
    serde_json::to_value(schema).unwrap()["properties"]["status"].clone()
}

fn long(n: usize) -> String {
    "é".repeat(n)
}

#[test]
fn an_oversized_restorerun_status_is_clamped_to_the_crd_bounds() {
    let condition = json!({"type": long(100), "status": "False", "reason": long(100), "message": long(10_000), "lastTransitionTime": "2026-11-27T00:00:00Z"});
    let finding = json!({"code": long(100), "severity": "blocker", "item": long(5_000), "message": long(5_000)});
    let result = json!({"item": long(5_000), "outcome": "Drifted", "message": long(5_000)});
    let by_type: serde_json::Map<String, Value> = (0..200).map(|i| (format!("{}{i}", long(300)), json!(1))).collect();
    let raw = json!({
        "observedGeneration": 1, "phase": "Blocked",
        "conditions": vec![condition; 30],
        "tenant": {"id": long(100), "label": long(1000)},
        "source": {"digest": long(100), "itemCount": 3, "capturedAt": long(100), "tenantId": long(100)},
        "scope": {"byType": by_type, "foundations": 0, "policies": 0, "previewOnly": 0, "total": 0},
        "checks": {"blockers": 100, "warnings": 0, "infos": 0, "findings": vec![finding; 100]},
        "execution": {"startedAt": "x", "completedSteps": 0, "totalSteps": 0,
                      "counts": {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "drifted": 0, "failed": 0},
                      "results": vec![result; 200]},
    });
    let schema = status_schema(&RestoreRun::crd());
    let mut before = Vec::new();
    violations("status", &schema, &raw, &mut before);
    assert!(before.len() > 10, "the fixture really is oversized: {before:?}");

    let mut status: RestoreRunStatus = serde_json::from_value(raw).unwrap();
    status.clamp_to_schema();
    let mut after = Vec::new();
    violations("status", &schema, &serde_json::to_value(&status).unwrap(), &mut after);
    assert!(after.is_empty(), "{after:?}");
    assert!(status.checks.unwrap().findings[0].item.as_ref().unwrap().ends_with('…'), "a cut is marked");
}

#[test]
fn an_oversized_tenant_status_is_clamped_to_the_crd_bounds() {
    let condition = json!({"type": "Ready", "status": "False", "reason": "AuthenticationFailed", "message": long(50_000), "lastTransitionTime": "x"});
    let mut status: IntuneTenantStatus = serde_json::from_value(json!({"conditions": vec![condition; 20]})).unwrap();
    status.clamp_to_schema();
    let mut after = Vec::new();
    violations("status", &status_schema(&IntuneTenant::crd()), &serde_json::to_value(&status).unwrap(), &mut after);
    assert!(after.is_empty(), "{after:?}");
}
