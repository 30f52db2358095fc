//! Writes and retries against the simulator: 429 with and without `Retry-After`, 503 storms,
//! lost answers to creates (never a second object), write pacing under the budget.

mod support;

use std::time::{Duration, Instant};

use graph_sim::{FaultConfig, SimConfig, Storm, ThrottleConfig};
use restore_core::tenant::{TenantErrorKind, TenantPort};
use restore_graph::{Credentials, GraphClient, GraphError, GraphOptions, RetryPolicy, SecretString};
use serde_json::json;
use support::*;

const CONFIGS: &str = "deviceManagement/deviceConfigurations";

fn storm(status: u16, requests: u32, retry_after_secs: Option<u64>) -> FaultConfig {
    FaultConfig { storm: Some(Storm { status, requests, retry_after_secs }), ..FaultConfig::default() }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_as_asked() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.set_faults(storm(429, 1, Some(1)));
    let started = Instant::now();
    let created = client.create(CONFIGS, &custom_configuration("After a 429")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(created["displayName"], "After a 429");
    let snap = client.stats().snapshot();
    assert_eq!((snap.count("POST", "429"), snap.count("POST", "201")), (1, 1));
    assert_eq!(snap.throttle_waits, 1);
    assert!((1.0..1.5).contains(&snap.throttle_wait_seconds), "{}", snap.throttle_wait_seconds);
    assert_eq!(sim.objects(TENANT, CONFIGS).unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_exponentially() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.set_faults(storm(429, 3, None));
    client.create(CONFIGS, &custom_configuration("Backed off")).await.unwrap();
    let snap = client.stats().snapshot();
    assert_eq!(snap.count("POST", "429"), 3);
    assert_eq!(snap.throttle_waits, 3);
    assert!(snap.throttle_wait_seconds < 0.2, "test backoff is 5..40 ms a step: {}", snap.throttle_wait_seconds);
    assert_eq!(sim.objects(TENANT, CONFIGS).unwrap().len(), 1);
}

#[tokio::test]
async fn throttling_beyond_the_retry_budget_is_a_typed_throttled_error() {
    let sim = simulator(SimConfig::default()).await;
    let options = GraphOptions { retry: RetryPolicy { max_attempts: 3, ..fast_options().retry }, ..fast_options() };
    let client =
        GraphClient::new(&spec(&sim, 1000, 1), Credentials::ClientSecret(SecretString::new(SECRET)), options).unwrap();
    client.verify().await.unwrap();
    sim.set_faults(storm(429, 100, None));
    let error = client.create_object(CONFIGS, &custom_configuration("Never")).await.unwrap_err();
    assert!(matches!(error, GraphError::Throttled { wait, .. } if wait > Duration::ZERO), "{error:?}");
    assert_eq!(client.stats().snapshot().count("POST", "429"), 3);
    let tenant_error = client.list(CONFIGS).await.unwrap_err();
    assert_eq!(tenant_error.kind, TenantErrorKind::Throttled);
    assert!(tenant_error.is_transient());
    assert_eq!(tenant_error.retry_after, None, "Graph sent no Retry-After: the caller picks its own delay");
}

#[tokio::test]
async fn a_storm_outlasting_the_retries_surfaces_graphs_retry_after_to_the_caller() {
    let sim = simulator(SimConfig::default()).await;
    let options = GraphOptions { retry: RetryPolicy { max_attempts: 1, ..fast_options().retry }, ..fast_options() };
    let client =
        GraphClient::new(&spec(&sim, 1000, 1), Credentials::ClientSecret(SecretString::new(SECRET)), options).unwrap();
    client.verify().await.unwrap();
    for status in [429, 503] {
        sim.set_faults(storm(status, 100, Some(7)));
        let read = client.list(CONFIGS).await.unwrap_err();
        assert_eq!(read.retry_after, Some(Duration::from_secs(7)), "{status} on a read: {read:?}");
        let batched = client.get_many(&[format!("{CONFIGS}/x")]).await;
        let wait = match batched {
            Err(e) => e.retry_after,
            Ok(results) => results.into_iter().next().and_then(|r| r.err()).and_then(|e| e.retry_after),
        };
        assert_eq!(wait, Some(Duration::from_secs(7)), "{status} on a $batch");
        let write = client.update(&format!("{CONFIGS}/x"), &json!({"displayName": "x"})).await.unwrap_err();
        assert_eq!(write.retry_after, Some(Duration::from_secs(7)), "{status} on a write: {write:?}");
    }
}

#[tokio::test]
async fn a_503_storm_on_reads_is_recovered() {
    let sim = simulator(SimConfig::default()).await;
    sim.insert_object(TENANT, "deviceConfiguration", custom_configuration("Survivor")).unwrap();
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.set_faults(storm(503, 6, None));
    let items = client.list(CONFIGS).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(client.stats().snapshot().count("GET", "503"), 6);
}

#[tokio::test]
async fn a_503_storm_longer_than_the_budget_is_a_server_error() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.set_faults(storm(503, 1000, Some(0)));
    let error = client.list_objects(CONFIGS).await.unwrap_err();
    assert!(matches!(error, GraphError::Server { status: 503, .. }), "{error:?}");
    assert_eq!(client.stats().snapshot().count("GET", "503"), 8, "max_attempts");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_posted_again() {
    // The client checks: after an ambiguous failure it looks the object up by identity first.
    for (fault, label) in [
        (FaultConfig { drop_after_write_rate: 1.0, ..FaultConfig::default() }, "connection dropped after the write"),
        (FaultConfig { rate_504: 1.0, ..FaultConfig::default() }, "504 after the write"),
    ] {
        let sim = simulator(SimConfig::default()).await;
        let client = secret_client(&sim);
        client.verify().await.unwrap();
        sim.set_faults(fault);
        let created = client.create(CONFIGS, &custom_configuration("Exactly once")).await.unwrap();
        let stored = sim.objects(TENANT, CONFIGS).unwrap();
        assert_eq!(stored.len(), 1, "{label}: one object");
        assert_eq!(created["id"], stored[0]["id"], "{label}: the found object is returned");
        let posts = sim.request_log().iter().filter(|r| r.method == "POST" && r.path == CONFIGS).count();
        assert_eq!(posts, 1, "{label}: never posted again");
        assert_eq!(sim.applied_write_count(), 1, "{label}");
        assert_eq!(client.stats().snapshot().recovered_creates, 1);
    }
}

#[tokio::test]
async fn a_create_refused_before_it_was_applied_is_posted_again_once() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    // 503 on the POST, then on the look-up GET (retried), then nothing.
    sim.set_faults(storm(503, 2, None));
    client.create(CONFIGS, &custom_configuration("Second try")).await.unwrap();
    assert_eq!(sim.objects(TENANT, CONFIGS).unwrap().len(), 1);
    let posts: Vec<u16> =
        sim.request_log().iter().filter(|r| r.method == "POST" && r.path == CONFIGS).map(|r| r.status).collect();
    assert_eq!(posts, vec![503, 201]);
}

#[tokio::test]
async fn a_create_outside_the_catalogue_is_not_retried_when_its_outcome_is_unknown() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    client.verify().await.unwrap();
    sim.set_faults(FaultConfig { drop_after_write_rate: 1.0, ..FaultConfig::default() });
    let body = json!({"displayName": "G", "mailNickname": "g", "mailEnabled": false, "securityEnabled": true});
    let error = client.create_object("groups", &body).await.unwrap_err();
    assert!(matches!(error, GraphError::Transport(_)), "{error:?}");
    assert_eq!(sim.objects(TENANT, "groups").unwrap().len(), 1, "the caller decides; the client did not post twice");
}

#[tokio::test]
async fn refused_payloads_come_back_as_validation_errors_with_graphs_code() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    let mut wrong = custom_configuration("Wrong type");
    wrong["@odata.type"] = json!("#microsoft.graph.iosCompliancePolicy");
    let error = client.create(CONFIGS, &wrong).await.unwrap_err();
    assert_eq!(error.kind, TenantErrorKind::Validation { code: "ModelValidationFailure".into() });
    assert!(sim.objects(TENANT, CONFIGS).unwrap().is_empty());
}

#[tokio::test]
async fn updates_replaces_and_actions_reach_the_tenant() {
    let sim = simulator(SimConfig::default()).await;
    let group = sim.add_group(TENANT, "Pilot devices").unwrap();
    let client = secret_client(&sim);
    let created = client.create(CONFIGS, &custom_configuration("Editable")).await.unwrap();
    let id = created["id"].as_str().unwrap();
    client
        .update(
            &format!("{CONFIGS}/{id}"),
            &json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "description": "changed"}),
        )
        .await
        .unwrap();
    let assign = json!({"assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}}]});
    let answer = client.action(&format!("{CONFIGS}/{id}/assign"), &assign).await.unwrap();
    assert_eq!(answer.unwrap()["value"].as_array().unwrap().len(), 1);
    let read = client.get(&format!("{CONFIGS}/{id}?$expand=assignments")).await.unwrap().unwrap();
    assert_eq!(read["description"], "changed");
    assert_eq!(read["version"], 3, "create, patch, assign");
    assert_eq!(read["assignments"][0]["target"]["groupId"], group.as_str());

    let policy = client.create("deviceManagement/configurationPolicies", &settings_policy("SC", 3)).await.unwrap();
    let path = format!("deviceManagement/configurationPolicies/{}", policy["id"].as_str().unwrap());
    client.replace(&path, &settings_policy("SC", 30)).await.unwrap();
    assert_eq!(client.list(&format!("{path}/settings")).await.unwrap().len(), 30);
}

#[tokio::test]
async fn paced_writes_never_meet_the_simulated_limit() {
    // Budget and simulated limit are both 10 writes per second; 30 writes cannot finish in less
    // than (ceil(30 / 10) - 1) * 1 s = 2 s. The timing figure itself is measured by the
    // `write_pacing` benchmark, not here.
    let sim = simulator(SimConfig {
        throttle: Some(ThrottleConfig { writes: 10, window: Duration::from_secs(1) }),
        ..SimConfig::default()
    })
    .await;
    let paced =
        GraphClient::new(&spec(&sim, 10, 1), Credentials::ClientSecret(SecretString::new(SECRET)), fast_options())
            .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let client = paced.clone();
            tokio::spawn(async move { client.create(CONFIGS, &custom_configuration(&format!("Paced {i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(sim.throttled_count(), 0, "no 429 from the simulated limit");
    assert_eq!(paced.stats().snapshot().count("POST", "429"), 0);
    assert!(paced.stats().snapshot().pacing_waits > 0);
    assert_eq!(sim.objects(TENANT, CONFIGS).unwrap().len(), 30);

    // The same burst without pacing (a budget far above the limit) is throttled: the
    // simulated limit is real, so the assertion above can fail.
    sim.set_throttle(Some(ThrottleConfig { writes: 10, window: Duration::from_secs(1) }));
    let unpaced =
        GraphClient::new(&spec(&sim, 10_000, 1), Credentials::ClientSecret(SecretString::new(SECRET)), fast_options())
            .unwrap();
    for i in 0..15 {
        unpaced.create(CONFIGS, &custom_configuration(&format!("Unpaced {i}"))).await.unwrap();
    }
    assert!(sim.throttled_count() > 0);
    assert!(unpaced.stats().snapshot().count("POST", "429") > 0);
}
