//! The manifests under `examples/` are valid: each RestoreRun and IntuneTenant parses into the
//! API types and passes the same spec validation the controller applies.

use std::path::Path;

use restore_operator::kube::{IntuneTenant, RestoreRun};
use serde::Deserialize;

fn documents() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_json::Value::deserialize(doc).unwrap();
                docs.push((path.display().to_string(), value));
            }
        }
    }
    docs
}

#[test]
fn every_example_parses_and_validates() {
    let docs = documents();
    let (mut runs, mut tenants) = (0, 0);
    for (file, doc) in docs {
        match doc["kind"].as_str() {
            Some("RestoreRun") => {
                let run: RestoreRun = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
                restore_core::wizard::validate_spec(&run.spec).unwrap_or_else(|e| panic!("{file}: {e}"));
                runs += 1;
            }
            Some("IntuneTenant") => {
                let tenant: IntuneTenant = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
                let auth = &tenant.spec.auth;
                let kinds = [
                    auth.client_secret_ref.is_some(),
                    auth.certificate_ref.is_some(),
                    auth.workload_identity.is_some(),
                ];
                assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{file}: exactly one auth kind");
                tenants += 1;
            }
            _ => {}
        }
    }
    assert_eq!((runs, tenants), (2, 3), "a dry-run and an approved run, and one tenant per auth kind");
}
