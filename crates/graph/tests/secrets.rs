//! No secret ever appears in an error, a Debug print or a log line. Alone in its test binary:
//! the log capture is a thread-local subscriber, which tests running in parallel would disturb.

mod support;

use graph_sim::SimConfig;
use restore_core::tenant::{TenantErrorKind, TenantPort};
use restore_graph::{Credentials, GraphClient, GraphError, SecretString};
use support::*;

#[tokio::test]
async fn a_wrong_secret_is_refused_and_never_shown_in_errors_debug_or_logs() {
    let (logs, _guard) = capture_logs();
    let wrong = "wrong-secret-QQ7~must-not-appear";
    let sim = simulator(SimConfig::default()).await;
    let client =
        GraphClient::new(&spec(&sim, 100, 20), Credentials::ClientSecret(SecretString::new(wrong)), fast_options())
            .unwrap();
    let error = client.verify().await.unwrap_err();
    assert!(matches!(&error, GraphError::Authentication { message } if message.contains("AADSTS7000215")), "{error:?}");
    let tenant_error = client.get("deviceManagement/deviceConfigurations").await.unwrap_err();
    assert_eq!(tenant_error.kind, TenantErrorKind::Authentication);

    // The right secret, used successfully, must not leak either — nor the token it bought.
    let good = secret_client(&sim);
    good.list("deviceManagement/deviceConfigurations").await.unwrap();

    let shown = [
        format!("{error}"),
        format!("{error:?}"),
        format!("{tenant_error:?}"),
        format!("{client:?}"),
        format!("{good:?}"),
    ];
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("Graph request"), "the capture works: {logged}");
    for text in shown.iter().chain([&logged]) {
        assert!(!text.contains(wrong), "wrong secret leaked: {text}");
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains("simtok."), "access token leaked: {text}");
    }
}
