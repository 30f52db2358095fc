//! Shared set-up of the tests that run the engine, the wizard and the binary against the in-process
//! Graph simulator: seeded tenants, captures through Graph, portal drift, local runs, write counts.
#![allow(dead_code)]

use graph_sim::{SimConfig, SimHandle};
use restore_backup::capture::capture;
use restore_backup::fetch::Fetcher;
use restore_backup::{Limits, native};
use restore_core::api::{ConfigMapSourceRef, Confirmation, Environment, RestoreRunSpec, SourceSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::catalog::item_type;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::preview::PreviewReport;
use restore_core::tenant::{TenantError, TenantErrorKind, TenantPort};
use restore_graph::GraphClient;
use restore_operator::cli::demo_backup::{PortalAdmin, SimTenant, sample_backup, start_simulator};
use restore_operator::cli::local_objects::LocalObjects;
use restore_operator::cli::wizard_loop::{LocalRun, LocalTenant};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "intune";
pub const BACKUP_CONFIG_MAP: &str = "backup";
pub const BACKUP_KEY: &str = "backup.tar.gz";

/// A simulator with no write throttle, seeded ids and a frozen clock: two simulators given the same
/// calls end in the same state.
pub async fn quiet_simulator() -> SimHandle {
    start_simulator(SimConfig {
        throttle: None,
        id_seed: Some(42),
        frozen_time: Some("2026-02-01T00:00:00Z".into()),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A tenant of `sim` seeded with the sample of `policies` policies.
pub fn seeded_tenant(sim: &SimHandle, tenant_id: &str, label: &str, policies: usize) -> SimTenant {
    let tenant = SimTenant::create(sim, tenant_id, label, Environment::Staging).unwrap();
    let info = BackupTenant { id: tenant_id.into(), label: label.into() };
    sim.seed(tenant_id, &sample_backup(info, policies)).unwrap();
    tenant
}

/// A backup of `tenant` taken through Graph.
pub async fn capture_tenant(client: &GraphClient, tenant: &SimTenant) -> BackupSet {
    let info = BackupTenant { id: tenant.tenant_id.clone(), label: tenant.label.clone() };
    capture(client, info, "2026-02-01T12:00:00Z".parse().unwrap(), |_| {}).await.unwrap()
}

/// A quiet simulator whose tenant `contoso` (label "Contoso") holds the sample of `policies`
/// policies, a Graph client for it, and its backup.
pub async fn backed_up(policies: usize) -> (SimHandle, SimTenant, GraphClient, BackupSet) {
    let sim = quiet_simulator().await;
    let tenant = seeded_tenant(&sim, "contoso", "Contoso", policies);
    let client = tenant.client(&sim).unwrap();
    let backup = capture_tenant(&client, &tenant).await;
    (sim, tenant, client, backup)
}

/// Manifest objects holding `backup` as a `.tar.gz` ConfigMap, and the source reading it.
pub fn objects_with(backup: &BackupSet) -> LocalObjects {
    let mut objects = LocalObjects::new();
    objects.insert_archive(Some(NAMESPACE), BACKUP_CONFIG_MAP, BACKUP_KEY, native::to_tar_gz(backup).unwrap());
    objects
}

/// A dry-run spec restoring everything from the ConfigMap of [`objects_with`].
pub fn dry_run_spec() -> RestoreRunSpec {
    let source = SourceSpec {
        config_map_ref: Some(ConfigMapSourceRef { name: BACKUP_CONFIG_MAP.into(), key: Some(BACKUP_KEY.into()) }),
        ..SourceSpec::default()
    };
    restore_operator::cli::wizard_loop::dry_run_spec("tenant", source)
}

pub fn fetcher() -> Fetcher {
    Fetcher::with_extra_roots(None, Limits::default()).unwrap()
}

pub fn local_tenant(tenant: &SimTenant) -> LocalTenant {
    LocalTenant { id: tenant.tenant_id.clone(), label: tenant.label.clone(), environment: tenant.environment }
}

/// A run of [`dry_run_spec`] against `tenant`.
pub fn local_run<'a>(
    name: &str,
    tenant: &SimTenant,
    objects: &'a LocalObjects,
    fetcher: &'a Fetcher,
    client: &'a GraphClient,
) -> LocalRun<'a, LocalObjects, GraphClient> {
    LocalRun::new(name, NAMESPACE, dry_run_spec(), local_tenant(tenant), objects, fetcher, client)
}

/// Sets what a human approving the run's current preview sets.
pub fn approve(run: &mut LocalRun<'_, LocalObjects, GraphClient>, digest: &str, label: &str) {
    run.spec.dry_run = false;
    run.spec.confirmation = Some(Confirmation {
        reviewed_impact: true,
        tenant: label.into(),
        preview_digest: digest.into(),
        approved_by: "alice".into(),
    });
}

/// Previews `backup` against `tenant` in a local run; when the preview is ready, approves its
/// digest and executes. Returns the phase reached and the preview's report.
pub async fn restore_on_approval(
    backup: &BackupSet,
    tenant: &SimTenant,
    client: &GraphClient,
    name: &str,
) -> (restore_core::api::Phase, PreviewReport) {
    let (objects, fetcher) = (objects_with(backup), fetcher());
    let mut run = local_run(name, tenant, &objects, &fetcher, client);
    let previewed = run.drive(|_| {}).await.unwrap();
    let report = run.report().unwrap().clone();
    if previewed != restore_core::api::Phase::Previewed {
        return (previewed, report);
    }
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, &tenant.label);
    (run.drive(|_| {}).await.unwrap(), report)
}

/// The finding codes a preview gives the item `key`.
pub fn codes_for(
    report: &PreviewReport,
    key: &str,
) -> std::collections::BTreeSet<restore_core::engine::checks::FindingCode> {
    report.findings.iter().filter(|f| f.item_key.as_deref() == Some(key)).map(|f| f.code).collect()
}

/// The collection of a catalogue type.
pub fn col(type_name: &str) -> &'static str {
    item_type(type_name).unwrap().collection
}

/// The backup item of a type whose display name starts with `prefix`.
pub fn item<'b>(backup: &'b BackupSet, type_name: &str, prefix: &str) -> &'b BackupItem {
    backup.items.iter().find(|i| i.item_type == type_name && i.display_name.starts_with(prefix)).unwrap()
}

/// The keys of a report's items with `action`, in report order.
pub fn keys_with(report: &PreviewReport, action: PlannedAction) -> Vec<String> {
    report.items.iter().filter(|i| i.action == action).map(|i| i.key.clone()).collect()
}

/// Applied writes the simulator logged for `tenant` (portal calls included).
pub fn writes_to(sim: &SimHandle, tenant: &str) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && (200..300).contains(&r.status))
        .count()
}

/// The four drifts of the acceptance round trip, made in the portal: an edit, a deletion, an addition
/// and a reassignment. Returns the id of the added object.
pub async fn drift_four_ways(sim: &SimHandle, tenant: &SimTenant, backup: &BackupSet) -> String {
    let admin = PortalAdmin::sign_in(sim, tenant).await.unwrap();
    let edited = item(backup, "deviceConfiguration", "Win10 custom 00");
    let mut settings = edited.resource["omaSettings"].clone();
    settings[0]["value"] = json!(15);
    let patch = json!({"description": "changed by hand", "omaSettings": settings});
    admin.call("PATCH", &format!("{}/{}", col("deviceConfiguration"), edited.id), Some(&patch)).await.unwrap();
    let deleted = item(backup, "compliancePolicy", "Win10 compliance 02");
    admin.call("DELETE", &format!("{}/{}", col("compliancePolicy"), deleted.id), None).await.unwrap();
    let added = json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "Added after the backup", "roleScopeTagIds": ["0"], "omaSettings": []});
    let created = admin.call("POST", col("deviceConfiguration"), Some(&added)).await.unwrap();
    let script = item(backup, "powerShellScript", "Set wallpaper 04");
    reassign(sim, &admin, tenant, script, "Finance").await;
    created["id"].as_str().unwrap().to_string()
}

/// Replaces an item's assignments with one to `group`, in the portal.
pub async fn reassign(sim: &SimHandle, admin: &PortalAdmin, tenant: &SimTenant, item: &BackupItem, group: &str) {
    let t = item_type(&item.item_type).unwrap();
    let group_id = sim.group_ids(&tenant.tenant_id, group).unwrap().remove(0);
    let body = json!({t.assign_body_key: [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
        "groupId": group_id, "deviceAndAppManagementAssignmentFilterType": "none"}}]});
    admin.call("POST", &format!("{}/{}/assign", t.collection, item.id), Some(&body)).await.unwrap();
}

/// The object `id` of a type read whole (sub-resources and assignments expanded), through Graph.
pub async fn read_whole(client: &GraphClient, type_name: &str, id: &str) -> Option<Value> {
    let t = item_type(type_name).unwrap();
    client.get(&restore_core::engine::snapshot::object_path(t, id, true)).await.unwrap()
}

/// Serves one file over HTTPS on 127.0.0.1 with a self-signed certificate for `localhost` and
/// `127.0.0.1`; returns the file's URL and the certificate (PEM) to trust.
pub async fn serve_over_https(path: &'static str, body: Vec<u8>) -> (String, String) {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    restore_operator::tls::install_crypto_provider();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, body) = (acceptor.clone(), Arc::clone(&body));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let wanted = String::from_utf8_lossy(&request).split_whitespace().nth(1) == Some(path);
                let (status, body): (&str, &[u8]) = if wanted { ("200 OK", &body) } else { ("404 Not Found", b"") };
                let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://127.0.0.1:{port}{path}"), cert.cert.pem())
}

/// A client whose write budget does not pace a run of a few hundred writes (the simulator has no
/// throttle here; pacing is covered elsewhere).
pub fn unpaced_client(sim: &SimHandle, tenant: &SimTenant) -> GraphClient {
    let mut spec = tenant.spec(sim, "graph-app");
    spec.write_budget = restore_core::api::WriteBudget { writes: 10_000, per_seconds: 1 };
    tenant.client_for(&spec).unwrap()
}

/// An empty tenant of another Entra tenant holding only the sample's groups, under other ids than
/// the source's (and one group of its own).
pub fn empty_target(sim: &SimHandle) -> SimTenant {
    let target = SimTenant::create(sim, "fabrikam", "Fabrikam", Environment::Staging).unwrap();
    sim.add_group("fabrikam", "Unrelated").unwrap();
    for group in restore_operator::cli::demo_backup::GROUPS {
        sim.add_group("fabrikam", group).unwrap();
    }
    // The tenant's own Apple enrollment-program token, of the sample's token name.
    sim.add_dep_token("fabrikam", restore_operator::cli::demo_backup::SAMPLE_DEP_TOKEN_NAME).unwrap();
    target
}

/// The kind of a write a [`HookedWrites`] port forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
    Replace,
    /// An action, including one never resent blindly (`action_once`).
    Action,
}

/// What a test injects around the writes a [`HookedWrites`] port forwards (reads pass unchanged).
pub trait WriteHook: Send + Sync {
    /// Called before a write is sent to `path`.
    fn before(&self, _kind: WriteKind, _path: &str, _body: &Value) {}
    /// Called once the write was answered (`applied`: Graph accepted it); an error returned here
    /// replaces the answer.
    fn after(&self, _path: &str, _applied: bool) -> Option<TenantError> {
        None
    }
}

/// A tenant port forwarding to the Graph client, with a test's [`WriteHook`] around every write.
pub struct HookedWrites<'a, H> {
    pub inner: &'a GraphClient,
    pub hook: H,
}

impl<H: WriteHook> HookedWrites<'_, H> {
    async fn write<R>(
        &self,
        kind: WriteKind,
        path: &str,
        body: &Value,
        send: impl std::future::Future<Output = Result<R, TenantError>>,
    ) -> Result<R, TenantError> {
        self.hook.before(kind, path, body);
        let answer = send.await;
        match self.hook.after(path, answer.is_ok()) {
            Some(error) => Err(error),
            None => answer,
        }
    }
}

impl<H: WriteHook> TenantPort for HookedWrites<'_, H> {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        self.inner.get(path).await
    }
    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        self.inner.list(path).await
    }
    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        self.inner.get_many(paths).await
    }
    async fn create(&self, collection: &str, body: &Value) -> Result<Value, TenantError> {
        self.write(WriteKind::Create, collection, body, self.inner.create(collection, body)).await
    }
    async fn update(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.write(WriteKind::Update, path, body, self.inner.update(path, body)).await
    }
    async fn replace(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.write(WriteKind::Replace, path, body, self.inner.replace(path, body)).await
    }
    async fn action(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        self.write(WriteKind::Action, path, body, self.inner.action(path, body)).await
    }
    async fn action_once(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        self.write(WriteKind::Action, path, body, self.inner.action_once(path, body)).await
    }
}

/// Stops answering right after the `limit`-th write was applied, as a controller killed while
/// Graph accepted the write would see it.
pub struct StopAfter {
    limit: usize,
    applied: std::sync::atomic::AtomicUsize,
}

impl WriteHook for StopAfter {
    fn after(&self, _path: &str, applied: bool) -> Option<TenantError> {
        let applied = applied && self.applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.limit;
        applied.then(|| TenantError::new(TenantErrorKind::Unavailable, "the controller was killed after this write"))
    }
}

/// A tenant port that stops answering right after its `limit`-th write was applied.
pub fn stop_after_writes(inner: &GraphClient, limit: usize) -> HookedWrites<'_, StopAfter> {
    HookedWrites { inner, hook: StopAfter { limit, applied: std::sync::atomic::AtomicUsize::new(0) } }
}

/// Records every action sent (path and body).
#[derive(Default)]
pub struct RecordActions(pub std::sync::Mutex<Vec<(String, Value)>>);

impl WriteHook for RecordActions {
    fn before(&self, kind: WriteKind, path: &str, body: &Value) {
        if kind == WriteKind::Action {
            self.0.lock().unwrap().push((path.to_string(), body.clone()));
        }
    }
}
