//! The CRDs under `crds/` are exactly what the code generates, and carry the rules the API
//! server must enforce. Regenerate with `restore-operator crd` (see README) when this fails.

use std::path::Path;
use std::process::Command;

use kube::core::crd::v1::CustomResourceExt;
use restore_operator::kube::{IntuneTenant, RestoreRun, crd_files, crds_yaml};

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()))
}

#[test]
fn checked_in_crds_equal_the_generated_ones() {
    for (rel, generated) in crd_files().unwrap() {
        assert!(repo_file(rel) == generated, "{rel} drifted from the code: run scripts/regen-crds.sh");
    }
}

#[test]
fn the_chart_ships_the_same_crds() {
    for (rel, generated) in crd_files().unwrap() {
        let chart_copy = rel.replace("crds/", "charts/restore-operator/files/crds/");
        assert!(repo_file(&chart_copy) == generated, "{chart_copy} drifted: run scripts/regen-crds.sh");
    }
}

#[test]
fn crd_subcommand_prints_the_checked_in_crds() {
    let out = Command::new(env!("CARGO_BIN_EXE_restore-operator")).arg("crd").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let expected: Vec<String> = crd_files().unwrap().into_iter().map(|(rel, _)| repo_file(rel)).collect();
    assert_eq!(printed, expected.join("---\n"));
    assert_eq!(printed, crds_yaml().unwrap());
}

fn spec_schema(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> serde_json::Value {
    let schema = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
    serde_json::to_value(schema).unwrap()["properties"]["spec"].clone()
}

#[test]
fn tenant_ref_is_immutable_by_a_cel_rule() {
    let spec = spec_schema(&RestoreRun::crd());
    let rules = &spec["properties"]["tenantRef"]["x-kubernetes-validations"];
    assert_eq!(rules[0]["rule"], "self == oldSelf");
}

#[test]
fn defaults_are_declared_in_the_schema() {
    let spec = spec_schema(&RestoreRun::crd());
    let p = &spec["properties"];
    assert_eq!(p["dryRun"]["default"], true);
    assert_eq!(p["previewTTL"]["default"], "1h");
    assert_eq!(p["existingObjects"]["default"], "update");
    assert_eq!(p["scope"]["properties"]["mode"]["default"], "all");
    assert_eq!(p["scope"]["properties"]["foundations"]["default"], "include");
    assert_eq!(p["scope"]["properties"]["assignments"]["default"], "include");
}

#[test]
fn exactly_one_source_kind_and_one_auth_kind() {
    let spec = spec_schema(&RestoreRun::crd());
    let one_of = spec["properties"]["source"]["oneOf"].as_array().unwrap();
    let required: Vec<_> = one_of.iter().map(|b| b["required"].clone()).collect();
    assert_eq!(
        required,
        [serde_json::json!(["sha256", "url"]), serde_json::json!(["configMapRef"]), serde_json::json!(["artifactRef"])]
    );
    assert_eq!(spec["properties"]["source"]["properties"]["sha256"]["pattern"], "^[0-9a-f]{64}$");
    let tenant = spec_schema(&IntuneTenant::crd());
    assert_eq!(tenant["properties"]["auth"]["oneOf"].as_array().unwrap().len(), 3);
}

/// Every string has a maxLength, every array a maxItems, every map a maxProperties:
/// a hostile manifest cannot make the controller hold unbounded data.
#[test]
fn every_string_list_and_map_is_bounded() {
    fn walk(path: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
        let Some(obj) = v.as_object() else { return };
        match obj.get("type").and_then(|t| t.as_str()) {
            Some("string") if !obj.contains_key("maxLength") && !obj.contains_key("enum") => missing.push(path.into()),
            Some("array") if !obj.contains_key("maxItems") => missing.push(path.into()),
            Some("object") if obj.contains_key("additionalProperties") && !obj.contains_key("maxProperties") => {
                missing.push(path.into())
            }
            _ => {}
        }
        for (k, child) in obj {
            match k.as_str() {
                "properties" => {
                    for (name, s) in child.as_object().unwrap() {
                        walk(&format!("{path}.{name}"), s, missing);
                    }
                }
                "items" | "additionalProperties" => walk(&format!("{path}[]"), child, missing),
                _ => {}
            }
        }
    }
    for crd in [RestoreRun::crd(), IntuneTenant::crd()] {
        let schema =
            serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap())
                .unwrap();
        let mut missing = Vec::new();
        walk(&crd.spec.names.kind, &schema, &mut missing);
        assert!(missing.is_empty(), "unbounded fields: {missing:?}");
    }
}

#[test]
fn printer_columns_match_the_design() {
    let crd = RestoreRun::crd();
    let names: Vec<_> =
        crd.spec.versions[0].additional_printer_columns.as_ref().unwrap().iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["Phase", "Tenant", "Env", "Items", "Changes", "Blockers", "Progress", "DryRun", "Age"]);
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["rr".to_string()][..]));
    assert!(crd.spec.versions[0].subresources.as_ref().unwrap().status.is_some());
}
