//! Every source yields the same backup set: a captured tenant written once and loaded back from a
//! folder, a `.tar.gz`, an HTTPS URL, a ConfigMap (binaryData and data) and a Flux artifact.

mod support;

use std::collections::BTreeMap;

use restore_backup::capture::capture;
use restore_backup::fetch::{FetchPolicy, Fetcher};
use restore_backup::source::{self, ArtifactInfo, ConfigMapData, FluxLookup, config_map_data, load_local, resolve};
use restore_backup::{Limits, Loaded, native};
use restore_core::api::{ArtifactKind, ArtifactRef, BackupFormat, ConfigMapSourceRef, SourceSpec};
use restore_core::backup::{BackupSet, BackupTenant};
use restore_core::canonical::sha256_digest;
use support::{FakeCluster, serve_files};

async fn captured() -> BackupSet {
    let info = BackupTenant { id: "tid".into(), label: "Contoso".into() };
    capture(&support::sample_tenant(false), info, "2025-06-01T12:00:00Z".parse().unwrap(), |_| {}).await.unwrap()
}

fn hex_of(bytes: &[u8]) -> String {
    sha256_digest(bytes).trim_start_matches("sha256:").to_string()
}

/// Packs the backup under `folder/` of an archive that also holds unrelated files, as a Git
/// repository artifact would.
fn repo_archive(set: &BackupSet, folder: &str) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> =
        native::render(set).unwrap().files.into_iter().map(|(p, b)| (format!("{folder}/{p}"), b)).collect();
    files.push(("README.md".into(), b"# intune config\n".to_vec()));
    native::tar_gz_of(&files).unwrap()
}

fn assert_same(loaded: &Loaded, set: &BackupSet) {
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    assert_eq!(&loaded.set, set);
}

/// The test servers listen on loopback, which only an admin-allowed CIDR lets a fetcher reach.
fn loopback_allowed() -> FetchPolicy {
    FetchPolicy { allowed_cidrs: vec!["127.0.0.0/8".parse().unwrap()], ..FetchPolicy::default() }
}

fn fetcher_trusting(ca_pem: Option<&str>) -> Fetcher {
    Fetcher::with_policy(ca_pem.map(str::as_bytes), Limits::default(), loopback_allowed()).unwrap()
}

#[tokio::test]
async fn a_local_folder_and_archive_load_as_the_captured_set() {
    let set = captured().await;
    let dir = tempfile::tempdir().unwrap();
    native::write_path(&set, &dir.path().join("backup")).unwrap();
    native::write_path(&set, &dir.path().join("backup.tar.gz")).unwrap();
    let limits = Limits::default();
    assert_same(&load_local(&dir.path().join("backup"), None, BackupFormat::Native, &limits).unwrap(), &set);
    assert_same(&load_local(&dir.path().join("backup.tar.gz"), None, BackupFormat::Native, &limits).unwrap(), &set);
}

#[tokio::test]
async fn an_https_url_with_its_sha256_loads_as_the_captured_set() {
    let set = captured().await;
    let archive = repo_archive(&set, "tenants/contoso");
    let sha = hex_of(&archive);
    let server = serve_files(BTreeMap::from([("/b.tar.gz".to_string(), archive)]), true).await;
    let spec = SourceSpec {
        url: Some(server.url("/b.tar.gz")),
        sha256: Some(sha),
        path: Some("tenants/contoso".into()),
        ..SourceSpec::default()
    };
    let fetcher = fetcher_trusting(server.ca_pem.as_deref());
    let loaded = resolve(&spec, "ns", &FakeCluster::default(), &fetcher).await.unwrap();
    assert_same(&loaded, &set);
}

#[tokio::test]
async fn an_https_url_with_the_wrong_sha256_is_refused_before_parsing() {
    let server = serve_files(BTreeMap::from([("/b.tar.gz".to_string(), b"not even gzip".to_vec())]), true).await;
    let spec = SourceSpec { url: Some(server.url("/b.tar.gz")), sha256: Some("0".repeat(64)), ..SourceSpec::default() };
    let fetcher = fetcher_trusting(server.ca_pem.as_deref());
    let err = resolve(&spec, "ns", &FakeCluster::default(), &fetcher).await.unwrap_err();
    assert_eq!(err.class(), "DigestMismatch", "{err}");
}

#[tokio::test]
async fn an_untrusted_certificate_a_plain_http_url_and_a_404_are_refused() {
    let server = serve_files(BTreeMap::new(), true).await;
    let spec = SourceSpec { url: Some(server.url("/x.tar.gz")), sha256: Some("0".repeat(64)), ..SourceSpec::default() };
    let untrusting = fetcher_trusting(None);
    let err = resolve(&spec, "ns", &FakeCluster::default(), &untrusting).await.unwrap_err();
    assert_eq!(err.class(), "UntrustedCertificate", "{err}");
    assert!(!err.is_transient(), "an untrusted certificate stays untrusted: {err}");

    let trusting = fetcher_trusting(server.ca_pem.as_deref());
    let err = resolve(&spec, "ns", &FakeCluster::default(), &trusting).await.unwrap_err();
    assert_eq!(err.class(), "HttpStatus", "{err}");

    let plain = SourceSpec { url: Some("http://localhost:1/x.tar.gz".into()), ..spec.clone() };
    let err = resolve(&plain, "ns", &FakeCluster::default(), &trusting).await.unwrap_err();
    assert_eq!(err.class(), "UrlRefused", "{err}");
}

#[tokio::test]
async fn a_download_over_the_archive_limit_stops_early() {
    let server = serve_files(BTreeMap::from([("/big".to_string(), vec![0u8; 64 * 1024])]), true).await;
    let spec = SourceSpec { url: Some(server.url("/big")), sha256: Some("0".repeat(64)), ..SourceSpec::default() };
    let limits = Limits { max_archive_bytes: 1024, ..Limits::default() };
    let fetcher =
        Fetcher::with_policy(server.ca_pem.as_deref().map(str::as_bytes), limits, loopback_allowed()).unwrap();
    let err = resolve(&spec, "ns", &FakeCluster::default(), &fetcher).await.unwrap_err();
    assert_eq!(err.class(), "ArchiveTooLarge", "{err}");
}

#[tokio::test]
async fn a_config_map_with_a_binary_archive_or_item_files_loads_as_the_captured_set() {
    let set = captured().await;
    let mut cluster = FakeCluster::default();
    let archive = native::to_tar_gz(&set).unwrap();
    cluster.config_maps.insert(
        ("ns".into(), "packed".into()),
        ConfigMapData { binary_data: BTreeMap::from([("backup.tar.gz".to_string(), archive)]), ..Default::default() },
    );
    cluster.config_maps.insert(
        ("ns".into(), "files".into()),
        ConfigMapData { data: config_map_data(&set).unwrap(), ..Default::default() },
    );
    let fetcher = fetcher_trusting(None);

    let packed = SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: "packed".into(), key: Some("backup.tar.gz".into()) }),
        ..SourceSpec::default()
    };
    assert_same(&resolve(&packed, "ns", &cluster, &fetcher).await.unwrap(), &set);

    let files = SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: "files".into(), key: None }),
        ..SourceSpec::default()
    };
    assert_same(&resolve(&files, "ns", &cluster, &fetcher).await.unwrap(), &set);

    let missing_key = SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: "packed".into(), key: Some("other".into()) }),
        ..SourceSpec::default()
    };
    assert_eq!(resolve(&missing_key, "ns", &cluster, &fetcher).await.unwrap_err().class(), "ConfigMapKeyMissing");
    let elsewhere = resolve(&files, "other-ns", &cluster, &fetcher).await.unwrap_err();
    assert_eq!(elsewhere.class(), "ConfigMapNotFound");
}

#[tokio::test]
async fn a_flux_artifact_over_plain_http_loads_as_the_captured_set() {
    let set = captured().await;
    let archive = repo_archive(&set, "backups/prod");
    let digest = sha256_digest(&archive);
    let server =
        serve_files(BTreeMap::from([("/gitrepository/flux-system/intune/abc.tar.gz".to_string(), archive)]), false)
            .await;
    let mut cluster = FakeCluster::default();
    cluster.flux.insert(
        ("GitRepository".into(), "flux-system".into(), "intune".into()),
        FluxLookup::Artifact(ArtifactInfo {
            url: server.url("/gitrepository/flux-system/intune/abc.tar.gz"),
            digest,
            revision: Some("main@sha1:abc".into()),
        }),
    );
    cluster.flux.insert(
        ("Bucket".into(), "ns".into(), "pending".into()),
        FluxLookup::NoArtifact { message: "waiting for the first reconciliation".into() },
    );
    // The artifact lives in flux-system, the run in apps: the admin has allowed that here.
    let policy = FetchPolicy { allow_cross_namespace_refs: true, ..loopback_allowed() };
    let fetcher = Fetcher::with_policy(None, Limits::default(), policy).unwrap();
    let spec = SourceSpec {
        artifact_ref: Some(ArtifactRef {
            kind: ArtifactKind::GitRepository,
            name: "intune".into(),
            namespace: Some("flux-system".into()),
        }),
        path: Some("backups/prod".into()),
        ..SourceSpec::default()
    };
    assert_same(&resolve(&spec, "apps", &cluster, &fetcher).await.unwrap(), &set);

    let wrong_path = SourceSpec { path: Some("backups/staging".into()), ..spec.clone() };
    assert_eq!(resolve(&wrong_path, "apps", &cluster, &fetcher).await.unwrap_err().class(), "PathNotFound");
    let pending = SourceSpec {
        artifact_ref: Some(ArtifactRef { kind: ArtifactKind::Bucket, name: "pending".into(), namespace: None }),
        ..SourceSpec::default()
    };
    let err = resolve(&pending, "ns", &cluster, &fetcher).await.unwrap_err();
    assert_eq!(err.class(), "FluxArtifactNotReady");
    assert!(err.to_string().contains("waiting for the first reconciliation"), "{err}");
    let absent = SourceSpec {
        artifact_ref: Some(ArtifactRef { kind: ArtifactKind::OciRepository, name: "none".into(), namespace: None }),
        ..SourceSpec::default()
    };
    assert_eq!(resolve(&absent, "ns", &cluster, &fetcher).await.unwrap_err().class(), "FluxSourceNotFound");
}

#[tokio::test]
async fn a_flux_artifact_whose_bytes_do_not_match_its_digest_is_refused() {
    let server = serve_files(BTreeMap::from([("/a.tar.gz".to_string(), b"tampered".to_vec())]), false).await;
    let mut cluster = FakeCluster::default();
    cluster.flux.insert(
        ("OciRepository".into(), "ns".into(), "oci".into()),
        FluxLookup::Artifact(ArtifactInfo {
            url: server.url("/a.tar.gz"),
            digest: sha256_digest(b"original"),
            revision: None,
        }),
    );
    let spec = SourceSpec {
        artifact_ref: Some(ArtifactRef { kind: ArtifactKind::OciRepository, name: "oci".into(), namespace: None }),
        ..SourceSpec::default()
    };
    let err = resolve(&spec, "ns", &cluster, &fetcher_trusting(None)).await.unwrap_err();
    assert_eq!(err.class(), "DigestMismatch");
}

#[tokio::test]
async fn a_spec_with_no_source_or_two_sources_is_invalid() {
    let fetcher = fetcher_trusting(None);
    let cluster = FakeCluster::default();
    let none = SourceSpec::default();
    assert_eq!(resolve(&none, "ns", &cluster, &fetcher).await.unwrap_err().class(), "InvalidSource");
    let two = SourceSpec {
        url: Some("https://localhost/x".into()),
        sha256: Some("0".repeat(64)),
        config_map_ref: Some(ConfigMapSourceRef { name: "x".into(), key: None }),
        ..SourceSpec::default()
    };
    assert_eq!(resolve(&two, "ns", &cluster, &fetcher).await.unwrap_err().class(), "InvalidSource");
    let no_sha = SourceSpec { url: Some("https://localhost/x".into()), ..SourceSpec::default() };
    assert_eq!(resolve(&no_sha, "ns", &cluster, &fetcher).await.unwrap_err().class(), "InvalidSource");
}

#[test]
fn config_map_data_keys_are_valid_kubernetes_keys() {
    let set = BackupSet {
        tenant: Some(BackupTenant { id: "t".into(), label: "l".into() }),
        captured_at: Some("2025-01-01T00:00:00Z".into()),
        digest: String::new(),
        items: vec![],
    };
    let data = config_map_data(&set).unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), vec![&source::config_map_key("manifest.json")]);
}
