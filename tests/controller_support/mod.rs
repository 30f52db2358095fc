//! Shared fixtures of the controller tests: a native backup, a Graph simulator holding the target
//! tenant, the Kubernetes objects that point at them, and checks of the tenant against the backup.
#![allow(dead_code)]

pub mod e2e;
pub mod kind_of;

use std::collections::BTreeMap;
use std::time::Duration;

use graph_sim::{AppCredential, SimConfig, SimHandle, Simulator, ThrottleConfig};
use restore_core::api::{Environment, IntuneTenantSpec, ScopeSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use restore_core::catalog::{item_type, platform_of};
use restore_core::engine::scope::resolve_scope;
use restore_core::engine::{EngineOptions, RestoreTarget, assess};
use restore_graph::{Credentials, GraphClient, GraphOptions, RetryPolicy, SecretString};
use serde_json::{Value, json};

/// The Entra tenant the backup was captured from.
pub const SOURCE_TENANT: &str = "0b1c2d3e-0000-4000-8000-00000000b4c0";
/// The Entra tenant restored into.
pub const TENANT_ID: &str = "6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b";
/// The target tenant's hard-confirm label.
pub const TENANT_LABEL: &str = "Contoso Staging";
/// The app registration the operator uses.
pub const CLIENT_ID: &str = "0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d";
/// The app's client secret: must never show up in status, events, reports or logs.
pub const CLIENT_SECRET: &str = "cl13nt-s3cr3t-Zq9v-never-in-status";
/// A second app, used by tests to change the tenant behind the operator's back.
pub const ADMIN_CLIENT_ID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const ADMIN_SECRET: &str = "admin-app-secret";
/// A Wi-Fi pre-shared key inside the backup: masked in every report.
pub const WIFI_PSK: &str = "PSK-w1f1-p4ssphr4se-not-for-reports";
/// Namespace of the test objects.
pub const NAMESPACE: &str = "intune";
/// Names of the Kubernetes objects.
pub const TENANT_NAME: &str = "contoso-staging";
pub const SECRET_NAME: &str = "contoso-graph-app";
pub const BACKUP_CONFIG_MAP: &str = "contoso-backup";
/// Groups the backup's assignments target.
pub const GROUP_ALL: &str = "All staff";
pub const GROUP_PILOT: &str = "Pilot";
const SCOPE_TAG: &str = "Paris";

/// The display name of device configuration `i` of the sample backup.
pub fn baseline_name(i: usize) -> String {
    format!("Windows baseline {i:02}")
}

fn item(
    item_type_name: &str,
    id: &str,
    resource: Value,
    assignments: Option<Vec<Value>>,
    refs: References,
) -> BackupItem {
    let ty = item_type(item_type_name).expect("catalogue type");
    let display_name = resource["displayName"].as_str().unwrap_or(id).to_string();
    BackupItem {
        item_type: item_type_name.into(),
        id: id.into(),
        display_name,
        platform: platform_of(ty, &resource),
        resource,
        assignments,
        sub_resources: BTreeMap::new(),
        references: refs,
    }
}

fn group_assignment(id: &str, group_id: &str) -> Value {
    json!({"id": id, "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id,
        "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"}})
}

/// A backup of the source tenant: a scope tag, `baselines` Windows device configurations assigned
/// to "All staff", a Wi-Fi profile holding a pre-shared key, and a compliance policy assigned to
/// "Pilot".
pub fn sample_backup(baselines: usize) -> BackupSet {
    let group_all = NamedRef { id: "a0000000-0000-4000-8000-0000000000a1".into(), display_name: GROUP_ALL.into() };
    let group_pilot = NamedRef { id: "a0000000-0000-4000-8000-0000000000b2".into(), display_name: GROUP_PILOT.into() };
    let tag = NamedRef { id: "7".into(), display_name: SCOPE_TAG.into() };
    let mut items = vec![item(
        "scopeTag",
        &tag.id,
        json!({"@odata.type": "#microsoft.graph.roleScopeTag", "id": tag.id, "displayName": SCOPE_TAG,
            "description": "Paris office", "isBuiltIn": false}),
        None,
        References::default(),
    )];
    for i in 0..baselines {
        let id = format!("d0000000-0000-4000-8000-{i:012}");
        let tags = if i % 2 == 0 { json!([tag.id]) } else { json!(["0"]) };
        let refs = References {
            groups: vec![group_all.clone()],
            scope_tags: if i % 2 == 0 { vec![tag.clone()] } else { Vec::new() },
            ..References::default()
        };
        items.push(item(
            "deviceConfiguration",
            &id,
            json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "id": id,
                "displayName": baseline_name(i), "description": format!("Baseline restrictions, ring {i}"),
                "roleScopeTagIds": tags, "cameraBlocked": i % 3 == 0, "passwordRequired": true,
                "passwordMinimumLength": 8 + (i % 6), "passwordRequiredType": "alphanumeric",
                "createdDateTime": "2025-01-01T00:00:00Z", "lastModifiedDateTime": "2025-02-01T00:00:00Z",
                "version": 3, "supportsScopeTags": true}),
            Some(vec![group_assignment(&format!("{id}_a1"), &group_all.id)]),
            refs,
        ));
    }
    let wifi = "e0000000-0000-4000-8000-00000000f1f1";
    items.push(item(
        "deviceConfiguration",
        wifi,
        json!({"@odata.type": "#microsoft.graph.windowsWifiConfiguration", "id": wifi, "displayName": "Office Wi-Fi",
            "description": "Corporate WPA2", "roleScopeTagIds": ["0"], "ssid": "CONTOSO-CORP",
            "networkName": "CONTOSO-CORP", "wifiSecurityType": "wpa2Personal", "connectAutomatically": true,
            "preSharedKey": WIFI_PSK}),
        Some(vec![group_assignment(&format!("{wifi}_a1"), &group_all.id)]),
        References { groups: vec![group_all.clone()], ..References::default() },
    ));
    let compliance = "c0000000-0000-4000-8000-0000000000c1";
    let mut policy = item(
        "compliancePolicy",
        compliance,
        json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "id": compliance,
            "displayName": "Windows compliance", "description": "BitLocker and a password",
            "roleScopeTagIds": ["0"], "passwordRequired": true, "passwordMinimumLength": 10,
            "bitLockerEnabled": true, "secureBootEnabled": true}),
        Some(vec![group_assignment(&format!("{compliance}_a1"), &group_pilot.id)]),
        References { groups: vec![group_pilot.clone()], ..References::default() },
    );
    policy.sub_resources.insert(
        "scheduledActionsForRule".into(),
        vec![json!({"ruleName": "PasswordRequired", "scheduledActionConfigurations": [
            {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": "",
                "notificationMessageCCList": []}]})],
    );
    items.push(policy);
    let mut set = BackupSet {
        tenant: Some(BackupTenant { id: SOURCE_TENANT.into(), label: "Contoso (source)".into() }),
        captured_at: Some("2025-06-01T12:00:00Z".into()),
        digest: String::new(),
        items,
    };
    set.digest = restore_backup::native::digest(&set).expect("the sample backup renders");
    set
}

/// The sample backup as ConfigMap `data` (one key per file).
pub fn backup_config_map_data(set: &BackupSet) -> BTreeMap<String, String> {
    restore_backup::source::config_map_data(set).expect("the sample backup fits a ConfigMap")
}

/// How the target tenant starts.
#[derive(Clone, Debug)]
pub struct TenantSetup {
    /// Groups that exist in the target tenant.
    pub groups: Vec<&'static str>,
    /// The simulator's write limit (`None`: unlimited).
    pub throttle: Option<ThrottleConfig>,
}

impl Default for TenantSetup {
    fn default() -> Self {
        TenantSetup { groups: vec![GROUP_ALL, GROUP_PILOT], throttle: None }
    }
}

/// A Graph simulator holding the (empty but for groups) target tenant and the operator's app.
pub async fn start_simulator(setup: &TenantSetup) -> SimHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(SimConfig { throttle: setup.throttle, ..SimConfig::default() })
        .await
        .expect("the simulator starts");
    sim.add_tenant(TENANT_ID);
    sim.register_app(TENANT_ID, CLIENT_ID, AppCredential::Secret(CLIENT_SECRET.into())).expect("app registers");
    sim.register_app(TENANT_ID, ADMIN_CLIENT_ID, AppCredential::Secret(ADMIN_SECRET.into())).expect("app registers");
    for group in &setup.groups {
        sim.add_group(TENANT_ID, group).expect("group is added");
    }
    sim
}

/// The IntuneTenant spec of the target tenant on `sim`.
pub fn tenant_spec(sim: &SimHandle, environment: Environment) -> Value {
    json!({
        "tenantId": TENANT_ID,
        "displayName": TENANT_LABEL,
        "environment": environment.as_str(),
        "graph": {"endpoint": sim.base_url(), "authority": sim.authority_url()},
        "auth": {"clientId": CLIENT_ID, "clientSecretRef": {"name": SECRET_NAME, "key": "clientSecret"}},
    })
}

/// The IntuneTenant object.
pub fn tenant_object(sim: &SimHandle, environment: Environment) -> Value {
    json!({
        "apiVersion": "tenantatlas.io/v1alpha1",
        "kind": "IntuneTenant",
        "metadata": {"name": TENANT_NAME, "namespace": NAMESPACE},
        "spec": tenant_spec(sim, environment),
    })
}

/// The Secret holding the client secret.
pub fn secret_object() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": NAMESPACE, "labels": {"tenantatlas.io/credentials": "true"}},
        "type": "Opaque",
        "stringData": {"clientSecret": CLIENT_SECRET},
    })
}

/// The ConfigMap holding a native backup.
pub fn backup_config_map(name: &str, data: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data,
    })
}

/// A RestoreRun of the backup ConfigMap `source` into the target tenant.
pub fn restore_run_object(name: &str, source: &str, dry_run: bool, preview_ttl: &str) -> Value {
    json!({
        "apiVersion": "tenantatlas.io/v1alpha1",
        "kind": "RestoreRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "tenantRef": {"name": TENANT_NAME},
            "source": {"configMapRef": {"name": source}},
            "scope": {"mode": "all"},
            "existingObjects": "update",
            "dryRun": dry_run,
            "previewTTL": preview_ttl,
        },
    })
}

/// The merge patch a person applies to approve `digest`.
pub fn approval_patch(tenant_label: &str, digest: &str) -> Value {
    json!({"spec": {"dryRun": false, "confirmation": {
        "reviewedImpact": true, "tenant": tenant_label, "previewDigest": digest, "approvedBy": "alice@contoso.com"}}})
}

/// Graph client options that fail fast (tests never wait for long back-offs).
pub fn fast_graph_options() -> GraphOptions {
    GraphOptions {
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            max_total_wait: Duration::from_secs(2),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
        },
        // The simulator listens on loopback: allowed explicitly, never by default.
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}

fn parsed_spec(sim: &SimHandle) -> IntuneTenantSpec {
    serde_json::from_value(tenant_spec(sim, Environment::Staging)).expect("tenant spec parses")
}

/// A Graph client of the target tenant as the operator's app.
pub fn operator_graph(sim: &SimHandle) -> GraphClient {
    GraphClient::new(
        &parsed_spec(sim),
        Credentials::ClientSecret(SecretString::new(CLIENT_SECRET)),
        fast_graph_options(),
    )
    .expect("graph client builds")
}

/// A Graph client of the target tenant as another admin app (its writes are not the operator's).
pub fn admin_graph(sim: &SimHandle) -> GraphClient {
    let mut spec = parsed_spec(sim);
    spec.auth.client_id = ADMIN_CLIENT_ID.into();
    GraphClient::new(&spec, Credentials::ClientSecret(SecretString::new(ADMIN_SECRET)), fast_graph_options())
        .expect("graph client builds")
}

/// The writes a restore of `backup` into an empty tenant takes: one create per item and one
/// `/assign` per item with assignments.
pub fn expected_writes(backup: &BackupSet) -> usize {
    backup.items.len() + backup.items.iter().filter(|i| i.assignments.as_ref().is_some_and(|a| !a.is_empty())).count()
}

/// Another admin creates a Windows device configuration named `name` by hand (it differs from
/// the backup's item of that name); returns the created object.
pub async fn create_by_hand(sim: &SimHandle, name: &str) -> Value {
    use restore_core::tenant::TenantPort;
    let body = json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "displayName": name,
        "roleScopeTagIds": ["0"], "passwordMinimumLength": 4});
    admin_graph(sim).create("deviceManagement/deviceConfigurations", &body).await.expect("an admin edits the tenant")
}

/// Writes the operator's app sent to Graph (the request log of `sim`), by method.
pub fn operator_writes(sim: &SimHandle) -> Vec<graph_sim::RequestRecord> {
    sim.request_log().into_iter().filter(|r| r.write && r.client_id.as_deref() == Some(CLIENT_ID)).collect()
}

/// The object of a collection with this display name, once; panics on duplicates.
pub fn only_object_named(sim: &SimHandle, collection: &str, name: &str) -> Option<serde_json::Map<String, Value>> {
    let mut found: Vec<_> = sim
        .objects(TENANT_ID, collection)
        .expect("tenant exists")
        .into_iter()
        .filter(|o| o.get("displayName").and_then(Value::as_str) == Some(name))
        .collect();
    assert!(found.len() <= 1, "{} objects named {name:?} in {collection}: a duplicate", found.len());
    found.pop()
}

/// Asserts the target tenant holds every item of the backup exactly once (no duplicate, none
/// lost) and that a fresh preview of the backup against it plans no change: its state equals the
/// backup, as the engine compares them (normalized, ids mapped by name, secrets masked).
pub async fn assert_tenant_equals_backup(sim: &SimHandle, backup: &BackupSet) {
    for item in &backup.items {
        let ty = item_type(&item.item_type).expect("catalogue type");
        let object = only_object_named(sim, ty.collection, &item.display_name);
        assert!(object.is_some(), "{} {:?} is missing from the tenant", item.item_type, item.display_name);
    }
    for item in backup.items.iter().filter(|i| i.item_type == "deviceConfiguration") {
        let object = only_object_named(sim, "deviceManagement/deviceConfigurations", &item.display_name).unwrap();
        for field in ["description", "passwordMinimumLength", "cameraBlocked", "ssid"] {
            assert_eq!(object.get(field), item.resource.get(field), "{} {field}", item.display_name);
        }
    }
    let scope = resolve_scope(&ScopeSpec::default(), backup).expect("scope resolves");
    let target = RestoreTarget { tenant_id: TENANT_ID.into(), environment: Environment::Staging };
    let assessment =
        assess(&operator_graph(sim), &scope, &target, &EngineOptions::default()).await.expect("assessment runs");
    assert_eq!(
        assessment.report.counts.changes(),
        0,
        "the tenant differs from the backup: {}",
        assessment.report.summary_text()
    );
}

/// Every string a secret could leak through: the client secret and the Wi-Fi key.
pub const SECRETS: [&str; 2] = [CLIENT_SECRET, WIFI_PSK];

/// Asserts no secret appears in `text`; `what` names where it came from.
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "a secret leaked into {what}");
    }
}

/// Decompresses a report or progress ConfigMap's gzip payload.
pub fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).expect("stored documents are gzip JSON");
    out
}

/// Polls `check` every `every` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, every: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(every).await;
    }
}
