//! The manifests under `examples/` are valid: each RestoreRun and IntuneTenant parses into the
//! API types and passes the same spec validation the controller applies; their names cannot
//! collide with a user's own; the sample backup is the generated one; and every example run
//! previews offline against a Graph simulator seeded from it (examples/offline/preview-all.sh).

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

#[test]
fn example_names_cannot_collide_with_a_users_own() {
    for (file, doc) in documents() {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with("example-"), "{file}: {name} is not prefixed example-");
        assert_eq!(doc["metadata"]["namespace"], "intune-restore-examples", "{file}");
        for reference in [&doc["spec"]["tenantRef"]["name"], &doc["spec"]["auth"]["clientSecretRef"]["name"]] {
            if let Some(r) = reference.as_str() {
                assert!(r.starts_with("example-"), "{file}: reference {r}");
            }
        }
    }
}

const EXAMPLE_TENANT: &str = "6f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
const EXAMPLE_CLIENT: &str = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

fn sample() -> restore_core::backup::BackupSet {
    let tenant = restore_core::backup::BackupTenant { id: EXAMPLE_TENANT.into(), label: "Contoso Production".into() };
    restore_operator::cli::demo_backup::sample_backup(tenant, 9)
}

/// The sample backup, laid out as in a Git repository of backups (`tenants/contoso`).
const SAMPLE_PATH: &str = "examples/backup/tenants/contoso";

/// examples/backup/tenants/contoso is `sample_backup` in the native format (REGEN_EXAMPLES=1
/// rewrites it).
#[test]
fn the_sample_backup_is_the_generated_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_PATH);
    if std::env::var("REGEN_EXAMPLES").as_deref() == Ok("1") {
        let _ = std::fs::remove_dir_all(&root);
        restore_backup::native::write_path(&sample(), &root).unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    restore_backup::native::write_path(&sample(), &fresh.path().join("backup")).unwrap();
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    assert!(
        files(&root) == files(&fresh.path().join("backup")),
        "examples/backup drifted: REGEN_EXAMPLES=1 cargo test --test examples"
    );
}

/// Every example RestoreRun (and the Flux one) previews offline, as preview-all.sh does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_previews_offline_against_a_seeded_simulator() {
    use graph_sim::{AppCredential, SimConfig, Simulator};
    restore_operator::tls::install_crypto_provider();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded =
        restore_backup::native::read_path(&root.join(SAMPLE_PATH), &restore_backup::Limits::default()).unwrap();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    sim.add_tenant(EXAMPLE_TENANT);
    sim.register_app(EXAMPLE_TENANT, EXAMPLE_CLIENT, AppCredential::Secret("offline-example-secret".into())).unwrap();
    sim.seed(EXAMPLE_TENANT, &loaded.set).unwrap();
    let tenant = std::fs::read_to_string(root.join("examples/offline/intunetenant-graph-sim.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:18080", &sim.base_url());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tenant.yaml"), tenant).unwrap();
    let mut runs: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("restorerun-"))
        .collect();
    runs.push(root.join("deploy/flux/restorerun.yaml"));
    assert_eq!(runs.len(), 3);
    for run in runs {
        // --backup replaces spec.source; a source `path` still applies inside it.
        let has_path = std::fs::read_to_string(&run).unwrap().contains("\n    path: ");
        let backup = root.join(if has_path { "examples/backup" } else { SAMPLE_PATH });
        let (run_path, tenant_path, backup_path) = (run.clone(), dir.path().join("tenant.yaml"), backup);
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_restore-operator"))
                .args(["preview", "-f"])
                .arg(&run_path)
                .arg("--tenant")
                .arg(&tenant_path)
                .args(["--client-secret-env", "OFFLINE_SECRET", "--backup"])
                .arg(&backup_path)
                .env("OFFLINE_SECRET", "offline-example-secret")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {stdout}{}", run.display(), String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("sha256:"), "{}: prints the preview digest: {stdout}", run.display());
    }
    assert_eq!(sim.applied_write_count(), 0, "a preview never writes");
}
