//! Test doubles shared by the integration tests: an in-memory tenant, an in-memory cluster and a
//! loopback HTTP / HTTPS file server with a self-signed certificate.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use restore_backup::source::{ClusterObjects, ConfigMapData, FluxLookup};
use restore_core::api::ArtifactKind;
use restore_core::catalog::ITEM_TYPES;
use restore_core::tenant::{TenantError, TenantErrorKind, TenantPort};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A tenant held in memory: collections by path (query included) and single objects by path.
#[derive(Default)]
pub struct FakeTenant {
    pub collections: BTreeMap<String, Vec<Value>>,
    pub objects: BTreeMap<String, Value>,
    pub reads: AtomicUsize,
}

impl FakeTenant {
    fn lookup(&self, path: &str) -> Option<Value> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if let Some(values) = self.collections.get(path) {
            return Some(json!({ "value": values }));
        }
        self.objects.get(path).cloned()
    }
}

impl TenantPort for FakeTenant {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        Ok(self.lookup(path))
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.collections
            .get(path)
            .cloned()
            .ok_or_else(|| TenantError::new(TenantErrorKind::NotFound, format!("{path} not found")))
    }

    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        Ok(paths.iter().map(|p| Ok(self.lookup(p))).collect())
    }

    async fn create(&self, _collection: &str, _body: &Value) -> Result<Value, TenantError> {
        Err(TenantError::new(TenantErrorKind::Validation { code: "ReadOnly".into() }, "capture never writes"))
    }

    async fn update(&self, _path: &str, _body: &Value) -> Result<(), TenantError> {
        Err(TenantError::new(TenantErrorKind::Validation { code: "ReadOnly".into() }, "capture never writes"))
    }

    async fn replace(&self, _path: &str, _body: &Value) -> Result<(), TenantError> {
        Err(TenantError::new(TenantErrorKind::Validation { code: "ReadOnly".into() }, "capture never writes"))
    }

    async fn action(&self, _path: &str, _body: &Value) -> Result<Option<Value>, TenantError> {
        Err(TenantError::new(TenantErrorKind::Validation { code: "ReadOnly".into() }, "capture never writes"))
    }
}

/// A small tenant with one object of most restorable types, referencing two scope tags, a filter,
/// a group and a notification template. `reverse` lists every collection in reverse order, as a
/// Graph that returns objects in another order would.
pub fn sample_tenant(reverse: bool) -> FakeTenant {
    let mut t = FakeTenant::default();
    for item_type in ITEM_TYPES {
        match restore_core::engine::singleton::singleton(item_type) {
            // A tenant-wide singleton reads as one object (every tenant has its settings).
            Some(singleton) => {
                t.objects.insert(singleton.read_path.into(), json!({"deviceComplianceCheckinThresholdDays": 30}));
            }
            // Profiles under enrollment-program tokens: a tenant without tokens lists none.
            None if restore_core::engine::apple_enrollment::is_parent_scoped(item_type) => {
                t.collections.insert(restore_core::engine::apple_enrollment::TOKENS.collection.into(), Vec::new());
            }
            None => {
                t.collections.insert(list_path(item_type.name, item_type.collection), Vec::new());
            }
        }
    }
    let dm = "deviceManagement";
    let set = |t: &mut FakeTenant, path: String, values: Vec<Value>| {
        let values = if reverse { values.into_iter().rev().collect() } else { values };
        t.collections.insert(path, values);
    };
    set(
        &mut t,
        format!("{dm}/roleScopeTags"),
        vec![
            json!({"id": "0", "displayName": "Default", "isBuiltIn": true}),
            json!({"id": "1", "displayName": "Helpdesk", "isBuiltIn": false}),
        ],
    );
    set(
        &mut t,
        format!("{dm}/assignmentFilters"),
        vec![
            json!({"id": "f1", "displayName": "Corp laptops", "platform": "windows10AndLater", "rule": "(device.model -eq \"X\")"}),
        ],
    );
    set(
        &mut t,
        format!("{dm}/notificationMessageTemplates?$expand=localizedNotificationMessages"),
        vec![json!({"id": "t1", "displayName": "Non-compliant notice", "roleScopeTagIds": ["0"],
            "localizedNotificationMessages": [{"id": "t1_en-us", "locale": "en-us", "subject": "Fix it", "isDefault": true}]})],
    );
    set(
        &mut t,
        format!("{dm}/deviceConfigurations"),
        vec![
            json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "id": "dc1",
                "displayName": "Windows baseline", "roleScopeTagIds": ["0", "1"], "passwordRequired": true,
                "lastModifiedDateTime": "2025-01-01T00:00:00Z", "version": 3}),
            json!({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration", "id": "dc2",
                "displayName": "iOS baseline", "roleScopeTagIds": ["0"]}),
        ],
    );
    set(
        &mut t,
        format!("{dm}/deviceConfigurations/dc1/assignments"),
        vec![
            json!({"id": "dc1_g1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1",
                "deviceAndAppManagementAssignmentFilterId": "f1", "deviceAndAppManagementAssignmentFilterType": "include"}}),
            json!({"id": "dc1_all", "target": {"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"}}),
        ],
    );
    set(&mut t, format!("{dm}/deviceConfigurations/dc2/assignments"), vec![]);
    set(
        &mut t,
        format!("{dm}/deviceCompliancePolicies?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)"),
        vec![json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "id": "cp1",
            "displayName": "Windows compliance", "roleScopeTagIds": ["0"], "bitLockerEnabled": true,
            "scheduledActionsForRule@odata.context": "ctx",
            "scheduledActionsForRule": [{"id": "r1", "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                {"id": "a1", "actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": "00000000-0000-0000-0000-000000000000"},
                {"id": "a2", "actionType": "notification", "gracePeriodHours": 24, "notificationTemplateId": "t1"}]}]})],
    );
    set(
        &mut t,
        format!("{dm}/deviceCompliancePolicies/cp1/assignments"),
        vec![
            json!({"id": "cp1_g1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1"}}),
        ],
    );
    set(
        &mut t,
        format!("{dm}/configurationPolicies"),
        vec![json!({"id": "sc1", "name": "Edge hardening", "platforms": "windows10", "technologies": "mdm",
            "roleScopeTagIds": ["1"], "settingCount": 2})],
    );
    // Settings keep Graph's order: they are not reversed.
    t.collections.insert(
        format!("{dm}/configurationPolicies/sc1/settings"),
        vec![
            json!({"id": "0", "settingInstance": {"settingDefinitionId": "edge_a", "choiceSettingValue": {"value": "edge_a_1"}}}),
            json!({"id": "1", "settingInstance": {"settingDefinitionId": "edge_b", "simpleSettingValue": {"value": 7}}}),
        ],
    );
    set(&mut t, format!("{dm}/configurationPolicies/sc1/assignments"), vec![]);
    // As Graph does, a script's list entry has no body; reading the script alone gives it.
    let script = json!({"id": "ps1", "displayName": "Set wallpaper", "fileName": "wallpaper.ps1",
        "scriptContent": "V3JpdGUtSG9zdCAnaGkn", "runAsAccount": "system", "roleScopeTagIds": ["0"]});
    let mut listed = script.clone();
    listed["scriptContent"] = Value::Null;
    set(&mut t, format!("{dm}/deviceManagementScripts"), vec![listed]);
    t.objects.insert(format!("{dm}/deviceManagementScripts/ps1"), script);
    set(&mut t, format!("{dm}/deviceManagementScripts/ps1/assignments"), vec![]);
    set(
        &mut t,
        "deviceAppManagement/iosManagedAppProtections".into(),
        vec![json!({"@odata.type": "#microsoft.graph.iosManagedAppProtection", "id": "ap1",
            "displayName": "iOS MAM", "roleScopeTagIds": ["0"], "pinRequired": true})],
    );
    set(
        &mut t,
        "deviceAppManagement/iosManagedAppProtections/ap1/apps".into(),
        vec![
            json!({"id": "app1", "mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.office.outlook"}}),
        ],
    );
    set(
        &mut t,
        "deviceAppManagement/iosManagedAppProtections/ap1/assignments".into(),
        vec![
            json!({"id": "ap1_g1", "target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g1"}}),
        ],
    );
    t.objects.insert("groups/g1?$select=id,displayName".into(), json!({"id": "g1", "displayName": "All staff"}));
    t
}

/// The list path capture reads for a type.
pub fn list_path(type_name: &str, collection: &str) -> String {
    match type_name {
        "compliancePolicy" => {
            format!("{collection}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)")
        }
        "notificationTemplate" => format!("{collection}?$expand=localizedNotificationMessages"),
        _ => collection.to_string(),
    }
}

/// A cluster held in memory.
#[derive(Default)]
pub struct FakeCluster {
    pub config_maps: BTreeMap<(String, String), ConfigMapData>,
    pub flux: BTreeMap<(String, String, String), FluxLookup>,
}

impl ClusterObjects for FakeCluster {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, String> {
        Ok(self.config_maps.get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn flux_artifact(&self, kind: ArtifactKind, namespace: &str, name: &str) -> Result<FluxLookup, String> {
        let kind = format!("{kind:?}");
        Ok(self.flux.get(&(kind, namespace.to_string(), name.to_string())).cloned().unwrap_or(FluxLookup::NotFound))
    }
}

/// A file body that makes the server read the request and never answer.
pub const HANG: &[u8] = b"@hang";
/// A file body prefix that makes the server answer `302 Found` to the URL that follows it.
pub const REDIRECT: &[u8] = b"@redirect:";

/// A loopback file server. `files` maps a request path to its body; other paths answer 404.
pub struct FileServer {
    pub port: u16,
    /// PEM of the self-signed certificate when serving HTTPS.
    pub ca_pem: Option<String>,
}

impl FileServer {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://localhost:{}{path}", self.port)
    }
}

/// Starts a file server on 127.0.0.1, over TLS when `tls` is set.
pub async fn serve_files(files: BTreeMap<String, Vec<u8>>, tls: bool) -> FileServer {
    restore_backup::fetch::install_crypto_provider();
    let files = Arc::new(files);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (acceptor, ca_pem) = if tls {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        (Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))), Some(cert.cert.pem()))
    } else {
        (None, None)
    };
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let files = files.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            answer(stream, &files).await;
                        }
                    }
                    None => answer(tcp, &files).await,
                }
            });
        }
    });
    FileServer { port, ca_pem }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    files: &BTreeMap<String, Vec<u8>>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, body) = match files.get(&path) {
        Some(body) if body.as_slice() == HANG => {
            // Read the request, never answer: a server that holds the connection open.
            std::future::pending::<()>().await;
            return;
        }
        Some(body) if body.starts_with(REDIRECT) => {
            let location = String::from_utf8_lossy(&body[REDIRECT.len()..]).into_owned();
            let head =
                format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.shutdown().await;
            return;
        }
        Some(body) => ("200 OK", body.clone()),
        None => ("404 Not Found", Vec::new()),
    };
    let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
