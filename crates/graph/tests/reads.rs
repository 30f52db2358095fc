//! Reads against the simulator over loopback: next links followed to the end (Settings Catalog
//! settings 25 to a page), `$batch` in chunks of 20, group look-ups, typed errors.

mod support;

use graph_sim::SimConfig;
use restore_core::tenant::{TenantErrorKind, TenantPort};
use restore_graph::GraphError;
use support::*;

#[tokio::test]
async fn settings_catalog_settings_are_read_across_three_pages_of_25() {
    let sim = simulator(SimConfig::default()).await;
    let id = sim.insert_object(TENANT, "settingsCatalogPolicy", settings_policy("Baseline", 60)).unwrap();
    let client = secret_client(&sim);
    sim.clear_request_log();
    let settings = client.list(&format!("deviceManagement/configurationPolicies/{id}/settings")).await.unwrap();
    assert_eq!(settings.len(), 60);
    let ids: Vec<&str> = settings.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.first(), Some(&"0"));
    assert_eq!(ids.last(), Some(&"59"));
    let pages = sim.request_log().iter().filter(|r| r.path.ends_with("/settings")).count();
    assert_eq!(pages, 3, "25 + 25 + 10");
}

#[tokio::test]
async fn collections_are_read_to_the_end_whatever_the_page_size() {
    let sim = simulator(SimConfig { page_size: 2, ..SimConfig::default() }).await;
    for i in 0..7 {
        sim.insert_object(TENANT, "deviceConfiguration", custom_configuration(&format!("Config {i}"))).unwrap();
    }
    let client = secret_client(&sim);
    sim.clear_request_log();
    let all = client.list("deviceManagement/deviceConfigurations").await.unwrap();
    let names: Vec<&str> = all.iter().map(|c| c["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, (0..7).map(|i| format!("Config {i}")).collect::<Vec<_>>());
    let api_calls = sim.request_log().iter().filter(|r| !r.path.contains("oauth2")).count();
    assert_eq!(api_calls, 4, "pages of 2, 2, 2, 1");
    let filtered =
        client.list("deviceManagement/deviceConfigurations?$filter=displayName eq 'Config 3'").await.unwrap();
    assert_eq!(filtered.len(), 1);
}

#[tokio::test]
async fn get_many_batches_20_requests_at_a_time_and_keeps_the_order() {
    let sim = simulator(SimConfig::default()).await;
    let mut paths = Vec::new();
    for i in 0..45 {
        let id = sim.insert_object(TENANT, "deviceConfiguration", custom_configuration(&format!("C{i}"))).unwrap();
        paths.push(format!("deviceManagement/deviceConfigurations/{id}"));
    }
    paths[7] = "deviceManagement/deviceConfigurations/00000000-0000-0000-0000-00000000dead".into();
    let client = secret_client(&sim);
    sim.clear_request_log();
    let results = client.get_many(&paths).await.unwrap();
    assert_eq!(results.len(), 45);
    assert_eq!(results[7], Ok(None), "a missing object is None, not an error");
    for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != 7) {
        assert_eq!(result.as_ref().unwrap().as_ref().unwrap()["displayName"], format!("C{i}"));
    }
    let log = sim.request_log();
    let envelopes: Vec<_> = log.iter().filter(|r| !r.in_batch && !r.path.contains("oauth2")).collect();
    assert_eq!(envelopes.len(), 3, "45 reads in batches of 20, 20 and 5");
    assert!(envelopes.iter().all(|r| r.method == "POST" && r.path == "$batch"));
    assert_eq!(log.iter().filter(|r| r.in_batch).count(), 45);
}

#[tokio::test]
async fn get_returns_none_on_404_and_typed_errors_otherwise() {
    let sim = simulator(SimConfig::default()).await;
    let client = secret_client(&sim);
    assert_eq!(
        client.get("deviceManagement/deviceConfigurations/00000000-0000-0000-0000-000000000001").await,
        Ok(None)
    );
    let error =
        client.list_objects("deviceManagement/deviceConfigurations?$filter=displayName ne 'x'").await.unwrap_err();
    assert!(matches!(error, GraphError::Validation { ref code, .. } if code == "BadRequest"), "{error:?}");
    let tenant_error = client.list("deviceManagement/notAThing").await.unwrap_err();
    assert_eq!(tenant_error.kind, TenantErrorKind::Validation { code: "BadRequest".into() });
}

#[tokio::test]
async fn groups_are_found_by_display_name_with_quotes_escaped() {
    let sim = simulator(SimConfig::default()).await;
    let id = sim.add_group(TENANT, "O'Brien & Sons devices").unwrap();
    sim.add_group(TENANT, "Other").unwrap();
    let client = secret_client(&sim);
    let found = client.find_groups_by_display_name("O'Brien & Sons devices").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert!(client.find_groups_by_display_name("Nobody").await.unwrap().is_empty());
    sim.add_group(TENANT, "Other").unwrap();
    assert_eq!(client.find_groups_by_display_name("Other").await.unwrap().len(), 2, "duplicates are all returned");
}

#[tokio::test]
async fn each_request_has_a_timeout_and_a_slow_answer_is_retried_then_reported() {
    use restore_graph::{Credentials, GraphClient, GraphOptions, SecretString};
    use std::time::Duration;
    let sim = simulator(SimConfig::default()).await;
    let options = GraphOptions { request_timeout: Duration::from_millis(100), ..fast_options() };
    let client =
        GraphClient::new(&spec(&sim, 100, 20), Credentials::ClientSecret(SecretString::new(SECRET)), options).unwrap();
    client.verify().await.unwrap();
    sim.set_faults(graph_sim::FaultConfig { latency_min_ms: 300, latency_max_ms: 300, ..Default::default() });
    let error = client.list_objects("groups").await.unwrap_err();
    assert!(matches!(&error, GraphError::Transport(message) if message.contains("timed out")), "{error:?}");
    assert_eq!(client.stats().snapshot().count("GET", "transport"), 8, "every attempt timed out");
    sim.set_faults(graph_sim::FaultConfig::default());
    assert!(client.list_objects("groups").await.is_ok());
}

#[tokio::test]
async fn a_read_throttled_with_retry_after_holds_back_every_read_of_the_tenant_until_then() {
    let sim = simulator(SimConfig::default()).await;
    let mut paths = Vec::new();
    for i in 0..300 {
        let id = sim.insert_object(TENANT, "deviceConfiguration", custom_configuration(&format!("C{i}"))).unwrap();
        paths.push(format!("deviceManagement/deviceConfigurations/{id}"));
    }
    let options = restore_graph::GraphOptions { read_concurrency: 2, ..fast_options() };
    let client = restore_graph::GraphClient::new(
        &spec(&sim, 1000, 1),
        restore_graph::Credentials::ClientSecret(restore_graph::SecretString::new(SECRET)),
        options,
    )
    .unwrap();
    client.verify().await.unwrap();
    sim.clear_request_log();
    let storm = graph_sim::Storm { status: 429, requests: 1, retry_after_secs: Some(1) };
    // 100 ms a request: without the shared pause, the other batches would go out one after
    // another while the throttled one waits.
    let faults =
        graph_sim::FaultConfig { storm: Some(storm), latency_min_ms: 100, latency_max_ms: 100, ..Default::default() };
    sim.set_faults(faults);
    let results = client.get_many(&paths).await.unwrap();
    assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))), "every object read in the end");
    let batches: Vec<_> = sim.request_log().into_iter().filter(|r| !r.in_batch && r.path == "$batch").collect();
    assert_eq!(batches.len(), 16, "15 batches of 20, one of them sent again");
    let throttled = batches.iter().find(|r| r.status == 429).expect("the storm's 429").at;
    let during_the_wait: Vec<_> = batches
        .iter()
        .filter(|r| r.at > throttled + std::time::Duration::from_millis(300))
        .filter(|r| r.at < throttled + std::time::Duration::from_millis(900))
        .collect();
    assert!(during_the_wait.is_empty(), "{} batches went out during the 1 s Retry-After", during_the_wait.len());
}
