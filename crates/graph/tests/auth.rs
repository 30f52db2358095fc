//! The client obtains tokens with each IntuneTenant auth kind from the simulated Entra token
//! endpoint, refuses bad credentials with typed errors, and never shows a secret.

mod support;

use std::time::Duration;

use graph_sim::{AppCredential, FEDERATION_AUDIENCE, FederatedCredential, SimConfig};
use restore_core::tenant::TenantPort;
use restore_graph::{Credentials, GraphClient, GraphError, GraphOptions, SecretString};
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_client_secret_gets_a_token_and_reads() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.expect("verify succeeds with the right secret");
    let items = client.list("deviceManagement/roleScopeTags").await.unwrap();
    assert_eq!(items[0]["displayName"], "Default");
    assert_eq!(client.stats().snapshot().token_acquisitions, 1);
}

#[tokio::test]
async fn a_certificate_signs_an_assertion_the_endpoint_accepts_pkcs8_or_pkcs1() {
    let sim = simulator(SimConfig::default()).await;
    for key in ["app.key.pem", "app.key.pkcs1.pem"] {
        let credentials = Credentials::Certificate {
            certificate_pem: fixture("app.cert.pem"),
            private_key_pem: SecretString::new(fixture(key)),
        };
        let client = GraphClient::new(&spec(&sim, 100, 20), credentials, fast_options()).unwrap();
        client.verify().await.unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[tokio::test]
async fn a_forged_assertion_is_refused() {
    let sim = simulator(SimConfig::default()).await;
    // Claims the registered certificate's thumbprint but is signed by another key.
    let forged = Credentials::Certificate {
        certificate_pem: fixture("app.cert.pem"),
        private_key_pem: SecretString::new(fixture("forger.key.pem")),
    };
    let client = GraphClient::new(&spec(&sim, 100, 20), forged, fast_options()).unwrap();
    let error = client.verify().await.unwrap_err();
    assert!(matches!(&error, GraphError::Authentication { message } if message.contains("AADSTS700027")), "{error:?}");
    assert!(!format!("{error:?}").contains("PRIVATE KEY"));

    // A certificate that was never registered on the app.
    let unregistered = Credentials::Certificate {
        certificate_pem: fixture("forger.cert.pem"),
        private_key_pem: SecretString::new(fixture("forger.key.pem")),
    };
    let client = GraphClient::new(&spec(&sim, 100, 20), unregistered, fast_options()).unwrap();
    assert!(matches!(client.verify().await, Err(GraphError::Authentication { .. })));
}

#[tokio::test]
async fn a_key_that_is_not_rsa_pem_is_a_configuration_error_without_the_key() {
    let sim = simulator(SimConfig::default()).await;
    let credentials = Credentials::Certificate {
        certificate_pem: fixture("app.cert.pem"),
        private_key_pem: SecretString::new("-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5\n-----END PRIVATE KEY-----\n"),
    };
    let error = GraphClient::new(&spec(&sim, 100, 20), credentials, fast_options()).unwrap_err();
    assert!(matches!(&error, GraphError::Config(_)), "{error:?}");
    assert!(!error.to_string().contains("bm90LWEta2V5"));
}

#[tokio::test]
async fn workload_identity_reads_the_projected_token_file_at_every_acquisition() {
    let sim = simulator(SimConfig::default()).await;
    let issuer = "https://oidc.example.test/cluster-1";
    let subject = "system:serviceaccount:restore-operator:restore-operator";
    sim.register_app(
        TENANT,
        CLIENT_ID,
        AppCredential::Federated(FederatedCredential {
            issuer: issuer.into(),
            subject: subject.into(),
            signing_certificate_pem: fixture("issuer.cert.pem"),
        }),
    )
    .unwrap();
    let projected = |sub: &str, key: &str| {
        let now = unix_now();
        sign_jwt(
            &fixture(key),
            &json!({"iss": issuer, "sub": sub, "aud": [FEDERATION_AUDIENCE], "iat": now, "nbf": now, "exp": now + 3600}),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, projected(subject, "issuer.key.pem")).unwrap();
    // The admin's projected-token folder is the temporary folder here.
    let options = GraphOptions { federated_token_dir: dir.path().to_path_buf(), ..fast_options() };
    let client = GraphClient::new(
        &spec(&sim, 100, 20),
        Credentials::WorkloadIdentity { token_file: token_file.clone() },
        options,
    )
    .unwrap();
    client.verify().await.expect("the projected token is accepted");

    // The kubelet rotates the file; here the new content is a token for another subject, which
    // the app does not trust. A new acquisition must read it (and so fail).
    std::fs::write(&token_file, projected("system:serviceaccount:other:intruder", "issuer.key.pem")).unwrap();
    sim.revoke_tokens();
    let error = client.verify().await.unwrap_err();
    assert!(matches!(&error, GraphError::Authentication { message } if message.contains("AADSTS70021")), "{error:?}");

    // A token with the right claims but signed by another key is refused too.
    std::fs::write(&token_file, projected(subject, "forger.key.pem")).unwrap();
    assert!(matches!(client.verify().await, Err(GraphError::Authentication { .. })));

    std::fs::write(&token_file, projected(subject, "issuer.key.pem")).unwrap();
    client.verify().await.expect("a good rotated token works again");

    std::fs::remove_file(&token_file).unwrap();
    sim.revoke_tokens();
    assert!(matches!(client.verify().await, Err(GraphError::Authentication { .. })));
}

#[tokio::test]
async fn tokens_are_cached_and_renewed_before_they_expire() {
    let sim = simulator(SimConfig { token_lifetime: Duration::from_secs(2), ..SimConfig::default() }).await;
    let client = secret_client(&sim);
    for _ in 0..3 {
        client.list("deviceManagement/deviceConfigurations").await.unwrap();
    }
    assert_eq!(client.stats().snapshot().token_acquisitions, 1, "one token serves several calls");
    // Renewal happens at half the lifetime here (the margin is capped at lifetime / 2).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.list("deviceManagement/deviceConfigurations").await.unwrap();
    assert_eq!(client.stats().snapshot().token_acquisitions, 2);
}

#[tokio::test]
async fn a_token_graph_no_longer_accepts_is_replaced_once() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.revoke_tokens();
    client.verify().await.expect("401 leads to a new token and one more attempt");
    let snap = client.stats().snapshot();
    assert_eq!(snap.token_acquisitions, 2);
    assert_eq!(snap.count("GET", "401"), 1);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_retried_then_a_transport_error() {
    let sim = simulator(SimConfig::default()).await;
    let free_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut spec = spec(&sim, 100, 20);
    spec.graph.authority = format!("http://127.0.0.1:{free_port}");
    let client = GraphClient::new(&spec, Credentials::ClientSecret(SecretString::new(SECRET)), fast_options()).unwrap();
    let error = client.list_objects("groups").await.unwrap_err();
    assert!(matches!(error, GraphError::Transport(_)), "{error:?}");
    let snap = client.stats().snapshot();
    assert_eq!(snap.count("POST", "transport"), 8, "every attempt of the retry policy");
    assert_eq!(snap.count("GET", "200"), 0, "no API call without a token");
}

#[tokio::test]
async fn finding_4_a_token_file_outside_the_admins_folder_is_never_read() {
    let sim = simulator(SimConfig::default()).await;
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let stolen = elsewhere.path().join("token");
    std::fs::write(&stolen, "the operator's own service-account token").unwrap();
    let escape = allowed.path().join("link");
    std::os::unix::fs::symlink(&stolen, &escape).unwrap();
    let options = || GraphOptions { federated_token_dir: allowed.path().to_path_buf(), ..fast_options() };
    let attempts = [
        stolen.clone(),
        escape,
        allowed.path().join("../").join(elsewhere.path().file_name().unwrap()).join("token"),
        std::path::PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    ];
    for token_file in attempts {
        let result = GraphClient::new(
            &spec(&sim, 100, 20),
            Credentials::WorkloadIdentity { token_file: token_file.clone() },
            options(),
        );
        let error = result.expect_err("a token file outside the folder is refused before it is read");
        assert!(
            matches!(&error, GraphError::Config(m) if m.contains("tokenFile")),
            "{}: {error:?}",
            token_file.display()
        );
    }
    // The default folder is Azure Workload Identity's projection.
    assert_eq!(GraphOptions::default().federated_token_dir, std::path::PathBuf::from("/var/run/secrets/azure/tokens"));
}
