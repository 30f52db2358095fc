//! The acceptance round trip: seed the Graph simulator, capture it through the Graph client, write
//! the backup, load it back through each of the four sources, and it equals the simulator's state
//! (server-managed fields aside).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use graph_sim::{AppCredential, SimConfig, SimHandle, Simulator};
use restore_backup::capture::capture;
use restore_backup::fetch::{FetchPolicy, Fetcher};
use restore_backup::source::{ArtifactInfo, ConfigMapData, FluxLookup, config_map_data, load_local, resolve};
use restore_backup::{Limits, Loaded, native};
use restore_core::api::{ArtifactKind, ArtifactRef, BackupFormat, ConfigMapSourceRef, IntuneTenantSpec, SourceSpec};
use restore_core::backup::{BackupSet, BackupTenant};
use restore_core::canonical::{canonical_json, sha256_digest};
use restore_core::catalog::item_type;
use restore_graph::{Credentials, GraphClient, GraphOptions, RetryPolicy, SecretString};
use serde_json::{Value, json};
use support::{FakeCluster, serve_files};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SECRET: &str = "round-trip-secret";

/// Fields the server sets or annotates; the comparison leaves them aside.
const SERVER_MANAGED: &[&str] =
    &["createdDateTime", "lastModifiedDateTime", "version", "@odata.context", "supportsScopeTags", "isAssigned"];

async fn seeded_simulator() -> SimHandle {
    let config = SimConfig {
        throttle: None,
        id_seed: Some(7),
        frozen_time: Some("2025-06-01T00:00:00Z".into()),
        page_size: 1,
        settings_page_size: 1,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    sim.add_tenant(TENANT);
    sim.register_app(TENANT, CLIENT_ID, AppCredential::Secret(SECRET.into())).unwrap();
    let info = BackupTenant { id: TENANT.into(), label: "seed".into() };
    let seed =
        capture(&support::sample_tenant(false), info, "2025-05-01T00:00:00Z".parse().unwrap(), |_| {}).await.unwrap();
    sim.seed(TENANT, &seed).unwrap();
    sim
}

fn client(sim: &SimHandle) -> GraphClient {
    let spec: IntuneTenantSpec = serde_json::from_value(json!({
        "tenantId": TENANT,
        "displayName": "Contoso (simulated)",
        "environment": "development",
        "graph": {"endpoint": sim.base_url(), "authority": sim.authority_url()},
        "auth": {"clientId": CLIENT_ID, "clientSecretRef": {"name": "graph-app"}},
    }))
    .unwrap();
    let options = GraphOptions {
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 4,
            max_total_wait: Duration::from_secs(5),
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(40),
        },
        // The simulator listens on loopback: allowed explicitly, never by default.
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    };
    GraphClient::new(&spec, Credentials::ClientSecret(SecretString::new(SECRET)), options).unwrap()
}

async fn capture_sim(sim: &SimHandle) -> BackupSet {
    let info = BackupTenant { id: TENANT.into(), label: "Contoso (simulated)".into() };
    capture(&client(sim), info, "2025-06-01T12:00:00Z".parse().unwrap(), |_| {}).await.unwrap()
}

fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !SERVER_MANAGED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        scalar => scalar.clone(),
    }
}

fn sorted(values: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = values.iter().map(|v| canonical_json(&strip(v))).collect();
    texts.sort();
    texts
}

/// Asserts a loaded backup holds exactly the simulator's catalogue objects, each with the same
/// resource, assignments and sub-resources, server-managed fields aside.
fn assert_equals_simulator(loaded: &Loaded, dump: &Value) {
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    let collections = dump["collections"].as_object().unwrap();
    let mut expected_keys = Vec::new();
    for ty in restore_core::catalog::ITEM_TYPES {
        for id in collections.get(ty.collection).and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
            expected_keys.push(format!("{}/{id}", ty.name));
        }
    }
    expected_keys.sort();
    let keys: Vec<String> = loaded.set.items.iter().map(|i| i.key()).collect();
    assert_eq!(keys, expected_keys);
    for item in &loaded.set.items {
        let ty = item_type(&item.item_type).unwrap();
        let stored = &collections[ty.collection][&item.id];
        assert_eq!(strip(&item.resource), strip(&stored["resource"]), "{} resource", item.key());
        let stored_assignments = stored.get("assignments").and_then(Value::as_array).cloned().unwrap_or_default();
        let assignments = item.assignments.clone().unwrap_or_default();
        assert_eq!(sorted(&assignments), sorted(&stored_assignments), "{} assignments", item.key());
        for sub in ty.sub_resources {
            let stored_sub = stored.get(sub.name).and_then(Value::as_array).cloned().unwrap_or_default();
            let captured = item.sub_resources.get(sub.name).cloned().unwrap_or_default();
            assert_eq!(sorted(&captured), sorted(&stored_sub), "{} {}", item.key(), sub.name);
        }
    }
}

#[tokio::test]
async fn a_seeded_simulator_captured_and_loaded_through_every_source_equals_its_state() {
    let sim = seeded_simulator().await;
    let set = capture_sim(&sim).await;
    let dump = sim.dump(TENANT).unwrap();
    let log = sim.request_log();
    assert!(log.iter().any(|r| r.in_batch), "sub-resources and assignments are read in batches");
    assert!(
        log.iter().any(|r| r.path.ends_with("/assignments") && r.query.contains("skiptoken")),
        "a batched collection that pages is re-read to its end"
    );
    assert!(log.iter().all(|r| !r.write), "capture never writes");
    let dc1 = set.items.iter().find(|i| i.key() == "deviceConfiguration/dc1").unwrap();
    assert_eq!(dc1.references.groups[0].display_name, "All staff", "groups are resolved through Graph");

    let limits = Limits::default();
    let dir = tempfile::tempdir().unwrap();
    native::write_path(&set, &dir.path().join("backup")).unwrap();
    native::write_path(&set, &dir.path().join("backup.tar.gz")).unwrap();
    let archive = std::fs::read(dir.path().join("backup.tar.gz")).unwrap();

    // 1. Local folder and archive.
    let from_dir = load_local(&dir.path().join("backup"), None, BackupFormat::Native, &limits).unwrap();
    assert_equals_simulator(&from_dir, &dump);
    let from_file = load_local(&dir.path().join("backup.tar.gz"), None, BackupFormat::Native, &limits).unwrap();
    assert_eq!(from_file, from_dir);

    // 2. URL + sha256 over HTTPS.
    let https = serve_files(BTreeMap::from([("/backup.tar.gz".to_string(), archive.clone())]), true).await;
    // The server listens on loopback, which only an admin-allowed CIDR lets a fetcher reach; the
    // Flux source below lives in flux-system, which the admin allows here too.
    let policy = FetchPolicy {
        allowed_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        allow_cross_namespace_refs: true,
        ..FetchPolicy::default()
    };
    let fetcher = Fetcher::with_policy(https.ca_pem.as_deref().map(str::as_bytes), limits.clone(), policy).unwrap();
    let url_spec = SourceSpec {
        url: Some(https.url("/backup.tar.gz")),
        sha256: Some(sha256_digest(&archive).trim_start_matches("sha256:").to_string()),
        ..SourceSpec::default()
    };
    let mut cluster = FakeCluster::default();
    let from_url = resolve(&url_spec, "ns", &cluster, &fetcher).await.unwrap();
    assert_equals_simulator(&from_url, &dump);

    // 3. ConfigMap: a tar.gz in binaryData, and the item files in data.
    cluster.config_maps.insert(
        ("ns".into(), "packed".into()),
        ConfigMapData {
            binary_data: BTreeMap::from([("backup.tar.gz".to_string(), archive.clone())]),
            ..Default::default()
        },
    );
    cluster.config_maps.insert(
        ("ns".into(), "files".into()),
        ConfigMapData { data: config_map_data(&set).unwrap(), ..Default::default() },
    );
    for (name, key) in [("packed", Some("backup.tar.gz".to_string())), ("files", None)] {
        let spec =
            SourceSpec { config_map_ref: Some(ConfigMapSourceRef { name: name.into(), key }), ..SourceSpec::default() };
        let loaded = resolve(&spec, "ns", &cluster, &fetcher).await.unwrap();
        assert_equals_simulator(&loaded, &dump);
    }

    // 4. Flux artifact: the backup in a folder of a repository tarball, served over plain HTTP.
    let repo: Vec<(String, Vec<u8>)> =
        native::render(&set).unwrap().files.into_iter().map(|(p, b)| (format!("tenants/contoso/{p}"), b)).collect();
    let artifact = native::tar_gz_of(&repo).unwrap();
    let http = serve_files(
        BTreeMap::from([("/gitrepository/flux-system/intune/1.tar.gz".to_string(), artifact.clone())]),
        false,
    )
    .await;
    cluster.flux.insert(
        ("GitRepository".into(), "flux-system".into(), "intune".into()),
        FluxLookup::Artifact(ArtifactInfo {
            url: http.url("/gitrepository/flux-system/intune/1.tar.gz"),
            digest: sha256_digest(&artifact),
            revision: Some("main@sha1:1".into()),
        }),
    );
    let flux_spec = SourceSpec {
        artifact_ref: Some(ArtifactRef {
            kind: ArtifactKind::GitRepository,
            name: "intune".into(),
            namespace: Some("flux-system".into()),
        }),
        path: Some("tenants/contoso".into()),
        ..SourceSpec::default()
    };
    let from_flux = resolve(&flux_spec, "ns", &cluster, &fetcher).await.unwrap();
    assert_equals_simulator(&from_flux, &dump);

    // Every source yields the very same set, digest included.
    for loaded in [&from_url, &from_flux, &from_file] {
        assert_eq!(loaded.set, from_dir.set);
    }
    assert_eq!(from_dir.set, set);
}

#[tokio::test]
async fn capturing_the_same_simulator_state_twice_gives_a_byte_identical_archive() {
    let sim = seeded_simulator().await;
    let first = native::to_tar_gz(&capture_sim(&sim).await).unwrap();
    let second = native::to_tar_gz(&capture_sim(&sim).await).unwrap();
    assert_eq!(first, second);
}
