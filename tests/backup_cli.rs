//! `restore-operator backup` run as a user runs it: against a simulated tenant, into a folder and
//! a `.tar.gz`; the result loads back equal to the tenant, twice byte-identical; bad input fails.

use std::process::Command;

use graph_sim::{AppCredential, SimConfig, Simulator};
use restore_backup::Limits;
use restore_backup::native;
use restore_core::backup::BackupTenant;
use restore_operator::cli::demo_backup::sample_backup;

const TENANT: &str = "7a3c1f52-0000-4000-8000-00000000b0b0";
const CLIENT: &str = "backup-cli-app";
const SECRET: &str = "s3cr3t-value-for-backup";

fn tenant_manifest(base: &str, authority: &str) -> String {
    format!(
        "apiVersion: tenantatlas.io/v1alpha1\nkind: IntuneTenant\nmetadata: {{name: contoso, namespace: intune}}\n\
         spec:\n  tenantId: {TENANT}\n  displayName: Contoso Backup Test\n  environment: staging\n\
         \x20 graph: {{endpoint: {base}, authority: {authority}}}\n\
         \x20 auth: {{clientId: {CLIENT}, clientSecretRef: {{name: graph-app, key: clientSecret}}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: graph-app, namespace: intune}}\nstringData: {{clientSecret: {SECRET}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_captures_the_tenant_deterministically() {
    restore_operator::tls::install_crypto_provider();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    sim.add_tenant(TENANT);
    sim.register_app(TENANT, CLIENT, AppCredential::Secret(SECRET.into())).unwrap();
    let seeded = sample_backup(BackupTenant { id: TENANT.into(), label: "Contoso".into() }, 3);
    sim.seed(TENANT, &seeded).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tenant.yaml");
    std::fs::write(&manifest, tenant_manifest(&sim.base_url(), &sim.authority_url())).unwrap();
    let root = dir.path().to_path_buf();
    let run = move |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_restore-operator"))
            .args(["backup", "--tenant"])
            .arg(root.join("tenant.yaml"))
            .args(["--captured-at", "2026-11-27T00:00:00Z", "--output"])
            .arg(root.join(out))
            .output()
            .unwrap()
    };
    let (a, b, folder) =
        tokio::task::spawn_blocking(move || (run("a.tar.gz"), run("b.tar.gz"), run("folder"))).await.unwrap();
    for out in [&a, &b, &folder] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains(SECRET), "the secret leaked into the output");
        assert!(stderr.contains("captured"), "{stderr}");
    }
    let first = std::fs::read(dir.path().join("a.tar.gz")).unwrap();
    assert_eq!(first, std::fs::read(dir.path().join("b.tar.gz")).unwrap(), "same state, same bytes");

    let loaded = native::read_path(&dir.path().join("folder"), &Limits::default()).unwrap();
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    let mut captured: Vec<_> =
        loaded.set.items.iter().map(|i| (i.item_type.clone(), i.id.clone(), i.display_name.clone())).collect();
    let mut expected: Vec<_> =
        seeded.items.iter().map(|i| (i.item_type.clone(), i.id.clone(), i.display_name.clone())).collect();
    // The tenant also holds Intune's built-in Default scope tag, which a backup captures too.
    expected.push(("scopeTag".into(), "0".into(), "Default".into()));
    // And its tenant-wide device-management settings.
    expected.push((
        "deviceManagementSettings".into(),
        "settings".into(),
        "Device management settings (tenant-wide)".into(),
    ));
    captured.sort();
    expected.sort();
    assert_eq!(captured, expected);
    assert_eq!(loaded.set.tenant.as_ref().map(|t| t.id.as_str()), Some(TENANT));
    assert_eq!(sim.applied_write_count(), 0, "a backup never writes");
}

#[test]
fn backup_without_credentials_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tenant.yaml");
    let text = tenant_manifest("http://127.0.0.1:9", "http://127.0.0.1:9");
    std::fs::write(&manifest, text.split("---").next().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_restore-operator"))
        .args(["backup", "--tenant"])
        .arg(&manifest)
        .args(["--output"])
        .arg(dir.path().join("x.tar.gz"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("graph-app"), "names the missing Secret: {stderr}");
    assert!(!dir.path().join("x.tar.gz").exists(), "nothing half-written");
}

/// Serves `body` once per connection on loopback over plain HTTP; returns the URL.
async fn serve_bytes(body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backup.tar.gz", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
    });
    url
}

/// Issue 15: `backup` printed the content digest, and pasting it into spec.source.sha256 gave
/// "digest mismatch". It now prints the archive's SHA-256 on stdout, and the operator's own
/// download check (`sha256:` + the pasted value) accepts the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_sha256_pasted_into_spec_source_verifies() {
    restore_operator::tls::install_crypto_provider();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    sim.add_tenant(TENANT);
    sim.register_app(TENANT, CLIENT, AppCredential::Secret(SECRET.into())).unwrap();
    sim.seed(TENANT, &sample_backup(BackupTenant { id: TENANT.into(), label: "Contoso".into() }, 2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tenant.yaml"), tenant_manifest(&sim.base_url(), &sim.authority_url())).unwrap();
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_restore-operator"))
            .args(["backup", "--tenant"])
            .arg(root.join("tenant.yaml"))
            .arg("--output")
            .arg(root.join("backup.tar.gz"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The printed line is YAML for spec.source, and its value passes the CRD's pattern.
    let pasted: serde_json::Value = serde_yaml::from_str(&stdout).unwrap();
    let sha = pasted["sha256"].as_str().unwrap().to_string();
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{stdout}");
    let archive = std::fs::read(dir.path().join("backup.tar.gz")).unwrap();
    let url = serve_bytes(archive).await;
    let fetcher = restore_backup::fetch::Fetcher::with_extra_roots(None, Limits::default()).unwrap();
    let fetched = fetcher.fetch(&url, &format!("sha256:{sha}"), restore_backup::fetch::Schemes::HttpOrHttps).await;
    assert!(fetched.is_ok(), "the operator refuses the pasted digest: {:?}", fetched.err());
    // The content digest (what was printed before) is a different value and is refused.
    let content =
        native::digest(&native::read_path(&dir.path().join("backup.tar.gz"), &Limits::default()).unwrap().set).unwrap();
    let refused = fetcher.fetch(&url, &content, restore_backup::fetch::Schemes::HttpOrHttps).await;
    assert!(refused.is_err(), "the content digest is not the archive's");
}
