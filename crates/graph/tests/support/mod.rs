//! Shared set-up of the client tests: a simulator on loopback with one tenant and app, an
//! IntuneTenant spec pointing at it, short retry windows, and test-only signing helpers.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_sim::{AppCredential, SimConfig, SimHandle, Simulator};
use restore_core::api::IntuneTenantSpec;
use restore_graph::{Credentials, GraphClient, GraphOptions, RetryPolicy, SecretString};
use serde_json::{Value, json};

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const SECRET: &str = "sim-secret-Zq8~do-not-log";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/pki/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A simulator with the test tenant and an app holding `SECRET` and the `app` certificate.
pub async fn simulator(config: SimConfig) -> SimHandle {
    let sim = Simulator::start(config).await.expect("simulator starts");
    sim.add_tenant(TENANT);
    sim.register_app(TENANT, CLIENT_ID, AppCredential::Secret(SECRET.into())).unwrap();
    sim.register_app(TENANT, CLIENT_ID, AppCredential::Certificate(fixture("app.cert.pem"))).unwrap();
    sim
}

/// The IntuneTenant spec of the test tenant on `sim`, with a write budget.
pub fn spec(sim: &SimHandle, writes: u32, per_seconds: u32) -> IntuneTenantSpec {
    serde_json::from_value(json!({
        "tenantId": TENANT,
        "displayName": "Contoso (simulated)",
        "environment": "development",
        "graph": {"endpoint": sim.base_url(), "authority": sim.authority_url()},
        "auth": {"clientId": CLIENT_ID, "clientSecretRef": {"name": "graph-app"}},
        "writeBudget": {"writes": writes, "perSeconds": per_seconds},
    }))
    .expect("a valid IntuneTenant spec")
}

/// Retry windows shrunk for tests.
pub fn fast_options() -> GraphOptions {
    GraphOptions {
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 8,
            max_total_wait: Duration::from_secs(10),
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(40),
        },
        // The simulator listens on loopback, which only an explicit allowance lets a client use.
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}

pub fn secret_client(sim: &SimHandle) -> GraphClient {
    GraphClient::new(&spec(sim, 1000, 1), Credentials::ClientSecret(SecretString::new(SECRET)), fast_options()).unwrap()
}

/// A device configuration body as Microsoft documents windows10CustomConfiguration.
pub fn custom_configuration(name: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": name,
        "description": "restore-operator test",
        "roleScopeTagIds": ["0"],
        "omaSettings": [{
            "@odata.type": "#microsoft.graph.omaSettingInteger",
            "displayName": "Allow camera",
            "omaUri": "./Vendor/MSFT/Policy/Config/Camera/AllowCamera",
            "value": 0
        }]
    })
}

/// A Settings Catalog policy with `count` settings.
pub fn settings_policy(name: &str, count: usize) -> Value {
    let settings: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationSetting",
                "settingInstance": {
                    "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                    "settingDefinitionId": format!("device_vendor_msft_policy_config_test_setting{i}"),
                    "choiceSettingValue": {
                        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingValue",
                        "value": format!("device_vendor_msft_policy_config_test_setting{i}_1"),
                        "children": []
                    }
                }
            })
        })
        .collect();
    json!({
        "name": name,
        "description": "",
        "platforms": "windows10",
        "technologies": "mdm",
        "roleScopeTagIds": ["0"],
        "settings": settings
    })
}

/// Signs `claims` as an RS256 JWT with a PEM (PKCS#8) RSA key — a stand-in token issuer.
pub fn sign_jwt(key_pem: &str, claims: &Value) -> String {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(der) => ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap(),
        _ => panic!("test keys are PKCS#8"),
    };
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "issuer-key"});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Captures every log line (all targets, TRACE) while the returned guard lives.
pub fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let buffer = Arc::clone(&buffer);
        move || LogWriter(Arc::clone(&buffer))
    };
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(writer).with_ansi(false).finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
