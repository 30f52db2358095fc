//! The API server semantics the emulator promises, each driven through kube-rs over HTTP:
//! one test per semantic of issue 6, against the fixture RestoreRun CRD.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace};
use k8s_openapi::api::events::v1::Event as EventsV1;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::Status;
use kube::runtime::WatchStreamExt;
use kube_emulator::EmulatorConfig;
use serde_json::{Value, json};
use support::{RestoreRun, emulator, emulator_with, restore_run};

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn runs(client: &kube::Client) -> Api<RestoreRun> {
    Api::namespaced(client.clone(), "default")
}

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

async fn raw_get(client: &kube::Client, path: &str, accept: &str) -> Value {
    let request = axum::http::Request::get(path).header("Accept", accept).body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn discovery_lists_core_groups_and_registered_crds() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "32"));
    let discovery = kube::discovery::Discovery::new(client.clone()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for expected in ["", "events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io", "tenantatlas.io"] {
        assert!(groups.contains(&expected.to_string()), "group {expected:?} missing from {groups:?}");
    }
    let (resource, caps) =
        discovery.resolve_gvk(&kube::api::GroupVersionKind::gvk("tenantatlas.io", "v1alpha1", "RestoreRun")).unwrap();
    assert_eq!(resource.plural, "restoreruns");
    assert!(
        caps.subresources.iter().any(|(r, _)| r.plural == "restoreruns/status" || r.plural == "status"),
        "{:?}",
        caps.subresources
    );
    let core = raw_get(&client, "/api/v1", "application/json").await;
    let names: Vec<&str> = core["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    for expected in ["namespaces", "secrets", "configmaps", "events"] {
        assert!(names.contains(&expected), "{expected} missing from /api/v1: {names:?}");
    }
    let aggregated =
        raw_get(&client, "/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").await;
    assert_eq!(aggregated["kind"], "APIGroupDiscoveryList");
    let rr =
        aggregated["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == "tenantatlas.io").unwrap();
    assert_eq!(rr["versions"][0]["resources"][0]["shortNames"], json!(["rr"]));
}

#[tokio::test]
async fn create_sets_uid_creation_timestamp_generation_and_resource_version() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let meta = &created.metadata;
    assert!(uuid::Uuid::parse_str(meta.uid.as_deref().unwrap()).is_ok());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert!(meta.resource_version.as_deref().unwrap().parse::<u64>().unwrap() > 0);
    let again = api_error(api.create(&PostParams::default(), &restore_run("a", "contoso")).await);
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    let missing = api_error(api.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn generate_name_creates_unique_names() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "report-"}})).unwrap();
    let first = api.create(&PostParams::default(), &cm).await.unwrap();
    let second = api.create(&PostParams::default(), &cm).await.unwrap();
    let (a, b) = (first.metadata.name.unwrap(), second.metadata.name.unwrap());
    assert!(a.starts_with("report-") && a.len() == "report-".len() + 5, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn resource_versions_increase_and_stale_updates_conflict() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let first = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let mut changed = first.clone();
    changed.spec.dry_run = Some(false);
    let second = api.replace("a", &PostParams::default(), &changed).await.unwrap();
    let rv = |r: &RestoreRun| r.metadata.resource_version.clone().unwrap().parse::<u64>().unwrap();
    assert!(rv(&second) > rv(&first));
    let mut stale = first.clone();
    stale.spec.max_items = Some(3);
    let conflict = api_error(api.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(conflict.message.contains("the object has been modified"), "{}", conflict.message);
    let mut unconditional = second.clone();
    unconditional.metadata.resource_version = None;
    let refused = api_error(api.replace("a", &PostParams::default(), &unconditional).await);
    assert_eq!(refused.code, 422, "custom resources refuse updates without a resourceVersion");
}

#[tokio::test]
async fn unchanged_writes_do_not_bump_the_resource_version() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let same = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"dryRun": true}}))).await.unwrap();
    assert_eq!(same.metadata.resource_version, created.metadata.resource_version);
}

#[tokio::test]
async fn generation_moves_only_on_spec_changes() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let pp = PatchParams::default();
    let labelled = api.patch("a", &pp, &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}))).await.unwrap();
    assert_eq!(labelled.metadata.generation, Some(1), "metadata changes keep the generation");
    let status = api.patch_status("a", &pp, &Patch::Merge(json!({"status": {"phase": "Scoping"}}))).await.unwrap();
    assert_eq!(status.metadata.generation, Some(1), "status changes keep the generation");
    let spec = api.patch("a", &pp, &Patch::Merge(json!({"spec": {"dryRun": false}}))).await.unwrap();
    assert_eq!(spec.metadata.generation, Some(2), "spec changes bump the generation");
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status_writes() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let mut with_status = restore_run("a", "contoso");
    with_status.status = Some(support::RestoreRunStatus { phase: Some("Executing".into()), observed_generation: None });
    let created = api.create(&PostParams::default(), &with_status).await.unwrap();
    assert_eq!(created.status, None, "create ignores status when the kind has a status subresource");
    let pp = PatchParams::default();
    let via_main = api
        .patch("a", &pp, &Patch::Merge(json!({"spec": {"maxItems": 5}, "status": {"phase": "Failed"}})))
        .await
        .unwrap();
    assert_eq!(via_main.spec.max_items, Some(5));
    assert_eq!(via_main.status, None, "spec writes ignore status");
    let via_status = api
        .patch_status("a", &pp, &Patch::Merge(json!({"spec": {"maxItems": 9}, "status": {"phase": "Previewed"}})))
        .await
        .unwrap();
    assert_eq!(via_status.spec.max_items, Some(5), "status writes ignore spec");
    assert_eq!(via_status.status.unwrap().phase.as_deref(), Some("Previewed"));
    let mut replaced = api.get_status("a").await.unwrap();
    replaced.status = Some(support::RestoreRunStatus { phase: Some("Blocked".into()), observed_generation: Some(2) });
    let put = api.replace_status("a", &PostParams::default(), &replaced).await.unwrap();
    assert_eq!(put.status.unwrap().observed_generation, Some(2));
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let pp = PatchParams::default();
    let merged = api.patch("a", &pp, &Patch::Merge(json!({"spec": {"maxItems": 7, "dryRun": null}}))).await.unwrap();
    assert_eq!(merged.spec.max_items, Some(7));
    assert_eq!(merged.spec.dry_run, Some(true), "a removed defaulted field is defaulted again");
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/maxItems", "value": 7}, {"op": "replace", "path": "/spec/maxItems", "value": 8}])).unwrap();
    let patched = api.patch("a", &pp, &Patch::<()>::Json(ops)).await.unwrap();
    assert_eq!(patched.spec.max_items, Some(8));
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/maxItems", "value": 1}])).unwrap();
    assert_eq!(api_error(api.patch("a", &pp, &Patch::<()>::Json(failing)).await).code, 422);
    let strategic = api_error(api.patch("a", &pp, &Patch::Strategic(json!({"spec": {"maxItems": 1}}))).await);
    assert_eq!(strategic.code, 415, "custom resources do not take strategic merge patches");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &config_map("c", json!({}))).await.unwrap();
    let cm = cms.patch("c", &pp, &Patch::Strategic(json!({"data": {"extra": "1"}}))).await.unwrap();
    assert_eq!(cm.data.unwrap().len(), 2);
}

#[tokio::test]
async fn server_side_apply_creates_merges_and_tracks_managers() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let manifest = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "metadata": {"name": "a"},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "backup"}}, "maxItems": 10}});
    let created = api.patch("a", &PatchParams::apply("gitops"), &Patch::Apply(&manifest)).await.unwrap();
    assert_eq!(created.spec.max_items, Some(10));
    let managers = |r: &RestoreRun| -> Vec<(String, String)> {
        r.metadata
            .managed_fields
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
            .collect()
    };
    assert_eq!(managers(&created), vec![("gitops".to_string(), "Apply".to_string())]);
    let human = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "metadata": {"name": "a"}, "spec": {"maxItems": 20}});
    let conflict = api_error(api.patch("a", &PatchParams::apply("human"), &Patch::Apply(&human)).await);
    assert_eq!(conflict.code, 409);
    assert!(
        conflict.message.contains("conflict with \"gitops\"") && conflict.message.contains(".spec.maxItems"),
        "{}",
        conflict.message
    );
    let forced = api.patch("a", &PatchParams::apply("human").force(), &Patch::Apply(&human)).await.unwrap();
    assert_eq!(forced.spec.max_items, Some(20));
    assert_eq!(forced.spec.tenant_ref.name, "contoso", "apply merges into the live object");
    let mut names: Vec<String> = managers(&forced).into_iter().map(|(m, _)| m).collect();
    names.sort();
    assert_eq!(names, vec!["gitops", "human"]);
    let no_manager = api_error(api.patch("a", &PatchParams::default(), &Patch::Apply(&human)).await);
    assert!(no_manager.code == 422 || no_manager.code == 400, "{no_manager:?}");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let mut run = restore_run("a", "contoso");
    run.metadata.finalizers = Some(vec!["tenantatlas.io/cleanup".into()]);
    api.create(&PostParams::default(), &run).await.unwrap();
    let pending = api.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = pending.left().expect("finalizers keep the object");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(2), "setting deletionTimestamp bumps the generation");
    let pp = PatchParams::default();
    let refused = api_error(
        api.patch("a", &pp, &Patch::Merge(json!({"metadata": {"finalizers": ["tenantatlas.io/cleanup", "other"]}})))
            .await,
    );
    assert_eq!(refused.code, 422, "no new finalizers on an object being deleted");
    let status_ok = api.patch_status("a", &pp, &Patch::Merge(json!({"status": {"phase": "Failed"}}))).await;
    assert!(status_ok.is_ok(), "a terminating object still takes status writes");
    api.patch("a", &pp, &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("a").await).code, 404, "removing the last finalizer completes the deletion");
}

#[tokio::test]
async fn garbage_collector_removes_dependents_of_a_deleted_owner() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let api = runs(&client);
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner = api.create(&PostParams::default(), &restore_run("owner", "contoso")).await.unwrap();
    let reference = json!([{"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "name": "owner",
        "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);
    for name in ["report-1", "report-2"] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": reference}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    cms.create(&PostParams::default(), &config_map("unrelated", json!({}))).await.unwrap();
    api.delete("owner", &DeleteParams::background()).await.unwrap();
    let left: Vec<String> =
        cms.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(left, vec!["unrelated"]);
    let dangling: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dangling", "ownerReferences": [
        {"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "name": "gone", "uid": "00000000-0000-0000-0000-000000000000"}]}})).unwrap();
    cms.create(&PostParams::default(), &dangling).await.unwrap();
    assert_eq!(api_error(cms.get("dangling").await).code, 404, "an object whose owner does not exist is collected");
}

#[tokio::test]
async fn orphan_and_foreground_propagation() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let api = runs(&client);
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (owner_name, policy) in [("orphaning", DeleteParams::orphan()), ("foreground", DeleteParams::foreground())] {
        let owner = api.create(&PostParams::default(), &restore_run(owner_name, "contoso")).await.unwrap();
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("{owner_name}-child"), "ownerReferences": [
            {"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "name": owner_name, "uid": owner.metadata.uid}]}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
        api.delete(owner_name, &policy).await.unwrap();
        assert_eq!(api_error(api.get(owner_name).await).code, 404, "{owner_name} owner is gone");
    }
    let orphan = cms.get("orphaning-child").await.unwrap();
    assert!(
        orphan.metadata.owner_references.unwrap_or_default().is_empty(),
        "orphan policy keeps the dependent, unowned"
    );
    assert_eq!(api_error(cms.get("foreground-child").await).code, 404, "foreground deletes the dependent");
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [("a", json!({"app": "x", "tier": "web"})), ("b", json!({"app": "y"})), ("c", json!({}))] {
        cms.create(&PostParams::default(), &config_map(name, labels)).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    let select = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(cms.list(&select("app=x")).await.unwrap()), vec!["a"]);
    assert_eq!(names(cms.list(&select("app!=x")).await.unwrap()), vec!["b", "c"]);
    assert_eq!(names(cms.list(&select("app in (x,y)")).await.unwrap()), vec!["a", "b"]);
    assert_eq!(names(cms.list(&select("app notin (x)")).await.unwrap()), vec!["b", "c"]);
    assert_eq!(names(cms.list(&select("!app")).await.unwrap()), vec!["c"]);
    assert_eq!(names(cms.list(&select("app,tier=web")).await.unwrap()), vec!["a"]);
    assert_eq!(names(cms.list(&ListParams::default().fields("metadata.name=b")).await.unwrap()), vec!["b"]);
    assert_eq!(names(cms.list(&ListParams::default().fields("metadata.name!=b")).await.unwrap()), vec!["a", "c"]);
    let unsupported = api_error(cms.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(unsupported.code, 400);
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("r1", "contoso")).await.unwrap();
    api.create(&PostParams::default(), &restore_run("r2", "fabrikam")).await.unwrap();
    let by_tenant: Vec<String> = api
        .list(&ListParams::default().fields("spec.tenantRef.name=fabrikam"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    assert_eq!(by_tenant, vec!["r2"], "CRD selectableFields work as field selectors");
}

#[tokio::test]
async fn paged_lists_are_consistent_and_expire() {
    let emu = emulator_with(EmulatorConfig { history_limit: 50, ..EmulatorConfig::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    for i in 0..5 {
        cms.create(&PostParams::default(), &config_map(&format!("cm-{i}"), json!({}))).await.unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();
    cms.delete("cm-4", &DeleteParams::default()).await.unwrap();
    cms.create(&PostParams::default(), &config_map("cm-9", json!({}))).await.unwrap();
    let rest = cms.list(&ListParams::default().limit(10).continue_token(&token)).await.unwrap();
    let names: Vec<String> = rest.items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(names, vec!["cm-2", "cm-3", "cm-4"], "later pages come from the first page's snapshot");
    for i in 0..60 {
        cms.patch("cm-0", &PatchParams::default(), &Patch::Merge(json!({"data": {"n": i.to_string()}}))).await.unwrap();
    }
    let expired = api_error(cms.list(&ListParams::default().limit(10).continue_token(&token)).await);
    assert_eq!((expired.code, expired.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version_with_selectors() {
    let emu = emulator().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    cms.create(&PostParams::default(), &config_map("before", json!({"app": "x"}))).await.unwrap();
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let stream = cms.watch(&WatchParams::default().labels("app=x").timeout(5), &rv).await.unwrap();
    futures::pin_mut!(stream);
    cms.create(&PostParams::default(), &config_map("other", json!({"app": "y"}))).await.unwrap();
    cms.create(&PostParams::default(), &config_map("mine", json!({"app": "x"}))).await.unwrap();
    cms.patch("mine", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    cms.patch("mine", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.try_next().await.unwrap().expect("watch delivers the events") {
            WatchEvent::Added(cm) => seen.push(format!("ADDED {}", cm.metadata.name.unwrap())),
            WatchEvent::Modified(cm) => seen.push(format!("MODIFIED {}", cm.metadata.name.unwrap())),
            WatchEvent::Deleted(cm) => seen.push(format!("DELETED {}", cm.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED mine", "MODIFIED mine", "DELETED mine"], "leaving the selector reads as DELETED");
}

#[tokio::test]
async fn watch_sends_bookmarks_when_asked() {
    let emu =
        emulator_with(EmulatorConfig { bookmark_interval: Duration::from_millis(100), ..EmulatorConfig::default() })
            .await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let leases: Api<Lease> = Api::namespaced(emu.client().unwrap(), "default");
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}})).unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let stream = cms.watch(&WatchParams::default().timeout(5), &rv).await.unwrap();
    futures::pin_mut!(stream);
    let event = tokio::time::timeout(Duration::from_secs(3), stream.try_next()).await.unwrap().unwrap().unwrap();
    match event {
        WatchEvent::Bookmark(b) => {
            assert!(
                b.metadata.resource_version.parse::<u64>().unwrap() > rv.parse::<u64>().unwrap(),
                "bookmarks advance past other kinds' changes"
            )
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_is_gone() {
    let emu = emulator_with(EmulatorConfig { history_limit: 10, ..EmulatorConfig::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    cms.create(&PostParams::default(), &config_map("c", json!({}))).await.unwrap();
    let old_rv = cms.get("c").await.unwrap().metadata.resource_version.unwrap();
    for i in 0..20 {
        cms.patch("c", &PatchParams::default(), &Patch::Merge(json!({"data": {"n": i.to_string()}}))).await.unwrap();
    }
    let stream = cms.watch(&WatchParams::default().timeout(5), &old_rv).await.unwrap();
    futures::pin_mut!(stream);
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410 Expired, got {other:?}"),
    }
    let exact = api_error(cms.list(&ListParams::default().at(&old_rv).matching(kube::api::VersionMatch::Exact)).await);
    assert_eq!(exact.code, 410);
}

#[tokio::test]
async fn custom_resources_are_validated_against_the_schema() {
    let emu = emulator().await;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        emu.client().unwrap(),
        "default",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "tenantatlas.io",
            "v1alpha1",
            "RestoreRun",
        )),
    );
    let create = |spec: Value| {
        let api = api.clone();
        async move {
            let obj: kube::api::DynamicObject = serde_json::from_value(
                json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "metadata": {"name": "v"}, "spec": spec}),
            )
            .unwrap();
            api.create(&PostParams::default(), &obj).await
        }
    };
    let base = || json!({"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}, "dryRun": "yes"}),
            "spec.dryRun in body must be of type boolean",
        ),
        (
            json!({"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}, "existingObjects": "merge"}),
            "Unsupported value: \"merge\"",
        ),
        (json!({"source": {"configMapRef": {"name": "b"}}}), "spec.tenantRef: Required value"),
        (
            json!({"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}, "maxItems": 0}),
            "should be greater than or equal to 1",
        ),
        (
            json!({"tenantRef": {"name": ""}, "source": {"configMapRef": {"name": "b"}}}),
            "should be at least 1 chars long",
        ),
        (json!({"tenantRef": {"name": "contoso"}, "source": {"url": "http://insecure"}}), "should match '^https://'"),
        (
            json!({"tenantRef": {"name": "contoso"}, "source": {"url": "https://x", "configMapRef": {"name": "b"}}}),
            "oneOf",
        ),
    ];
    for (spec, expected) in cases {
        let error = api_error(create(spec.clone()).await);
        assert_eq!((error.code, error.reason.as_str()), (422, "Invalid"), "{spec}");
        assert!(error.message.contains(expected), "{spec}: expected {expected:?} in {:?}", error.message);
    }
    let mut with_unknown = base();
    with_unknown["surprise"] = json!(1);
    with_unknown["extra"] = json!({"kept": true});
    let created = create(with_unknown).await.unwrap();
    assert_eq!(created.data["spec"]["dryRun"], json!(true), "defaults are applied");
    assert_eq!(created.data["spec"]["existingObjects"], json!("update"));
    assert!(created.data["spec"].get("surprise").is_none(), "unknown fields are pruned");
    assert_eq!(
        created.data["spec"]["extra"],
        json!({"kept": true}),
        "x-kubernetes-preserve-unknown-fields keeps fields"
    );
    let moved = api_error(
        api.patch("v", &PatchParams::default(), &Patch::Merge(json!({"spec": {"tenantRef": {"name": "other"}}}))).await,
    );
    assert_eq!(moved.code, 422);
    assert!(moved.message.contains("tenantRef is immutable"), "CEL transition rule: {}", moved.message);
    let strict = api
        .patch(
            "v",
            &PatchParams { field_validation: Some(kube::api::ValidationDirective::Strict), ..Default::default() },
            &Patch::Merge(json!({"spec": {"nope": 1}})),
        )
        .await;
    assert_eq!(api_error(strict).code, 400, "fieldValidation=Strict refuses unknown fields");
}

#[tokio::test]
async fn core_and_events_v1_share_event_storage() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let v1: Api<EventsV1> = Api::namespaced(client.clone(), "default");
    let event: EventsV1 = serde_json::from_value(json!({
        "metadata": {"name": "run.1"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Previewed", "note": "preview ready",
        "type": "Normal", "action": "Preview", "reportingController": "restore-operator", "reportingInstance": "pod-1",
        "regarding": {"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "name": "a", "namespace": "default"}})).unwrap();
    v1.create(&PostParams::default(), &event).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let seen = core.get("run.1").await.unwrap();
    assert_eq!(seen.message.as_deref(), Some("preview ready"));
    assert_eq!(seen.involved_object.name.as_deref(), Some("a"));
    let by_object = core.list(&ListParams::default().fields("involvedObject.name=a")).await.unwrap();
    assert_eq!(by_object.items.len(), 1);
}

#[tokio::test]
async fn namespaces_gate_creation_and_cascade_on_deletion() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    assert_eq!(api_error(missing.create(&PostParams::default(), &config_map("c", json!({}))).await).code, 404);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let created = namespaces.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &config_map("c", json!({}))).await.unwrap();
    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(namespaces.get("team").await).code, 404, "an emptied namespace goes away");
    assert_eq!(api_error(cms.get("c").await).code, 404, "its objects were deleted");
}

#[tokio::test]
async fn leases_support_leader_election_updates() {
    let emu = emulator().await;
    let leases: Api<Lease> = Api::namespaced(emu.client().unwrap(), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "restore-operator"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2026-01-01T00:00:00.000000Z"}}))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut stolen = created.clone();
    stolen.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases.replace("restore-operator", &PostParams::default(), &stolen).await.unwrap();
    let mut late = created;
    late.spec.as_mut().unwrap().holder_identity = Some("c".into());
    assert_eq!(api_error(leases.replace("restore-operator", &PostParams::default(), &late).await).code, 409);
}

#[tokio::test]
async fn dry_run_validates_without_storing() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let answer =
        api.create(&PostParams { dry_run: true, ..Default::default() }, &restore_run("dry", "contoso")).await.unwrap();
    assert_eq!(answer.spec.dry_run, Some(true));
    assert_eq!(api_error(api.get("dry").await).code, 404);
}

#[tokio::test]
async fn tables_use_the_crd_printer_columns() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    runs(&client).create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let table = raw_get(
        &client,
        "/apis/tenantatlas.io/v1alpha1/namespaces/default/restoreruns",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(table["kind"], "Table");
    let headers: Vec<&str> =
        table["columnDefinitions"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(headers, vec!["Name", "Phase", "Tenant", "Dry-run", "Ready", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!((cells[0].clone(), cells[2].clone(), cells[3].clone()), (json!("a"), json!("contoso"), json!(true)));
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_its_kind() {
    let emu = emulator().await;
    let client = emu.client().unwrap();
    runs(&client).create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("restoreruns.tenantatlas.io").await.unwrap();
    let established = crd.status.unwrap().conditions.unwrap_or_default();
    assert!(established.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    crds.delete("restoreruns.tenantatlas.io", &DeleteParams::default()).await.unwrap();
    assert!(!emu.serves("tenantatlas.io/v1alpha1", "restoreruns"));
    assert_eq!(api_error(runs(&client).list(&ListParams::default()).await).code, 404);
    emu.register_crd_yaml(&support::fixture_crd()).unwrap();
    assert!(runs(&client).list(&ListParams::default()).await.unwrap().items.is_empty(), "objects went with the CRD");
}

#[tokio::test]
async fn watcher_stream_sees_initial_state_and_changes() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let stream = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default().streaming_lists())
        .applied_objects()
        .boxed();
    futures::pin_mut!(stream);
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    api.create(&PostParams::default(), &restore_run("b", "contoso")).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("b"), "streaming lists (sendInitialEvents) work too");
}

/// The API server's patch handler checks the applied object's name against the URL (apiserver
/// `handlers/patch.go`, `applyPatch` → `checkName`); a live object keeps its name through a merge.
#[tokio::test]
async fn server_side_apply_that_creates_an_object_needs_its_name_in_the_body() {
    let emu = emulator().await;
    let api: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    let unnamed = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}});
    let refused = api_error(api.patch("a", &PatchParams::apply("writer"), &Patch::Apply(&unnamed)).await);
    assert_eq!(refused.code, 400, "{refused:?}");
    assert!(refused.message.contains("does not match the name on the URL (a)"), "{}", refused.message);
    assert!(api.get_opt("a").await.unwrap().is_none(), "nothing is created");

    let named = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    api.patch("a", &PatchParams::apply("writer"), &Patch::Apply(&named)).await.unwrap();
    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "w"}});
    let merged = api.patch("a", &PatchParams::apply("writer"), &Patch::Apply(&changed)).await.unwrap();
    assert_eq!(merged.metadata.name.as_deref(), Some("a"));
    assert_eq!(merged.data.unwrap()["k"], "w");
}

#[tokio::test]
async fn server_side_apply_of_status_touches_only_status() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let status = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "spec": {"maxItems": 99}, "status": {"phase": "Checking", "observedGeneration": 1}});
    let applied =
        api.patch_status("a", &PatchParams::apply("restore-operator").force(), &Patch::Apply(&status)).await.unwrap();
    assert_eq!(applied.status.as_ref().unwrap().phase.as_deref(), Some("Checking"));
    assert_eq!(applied.spec.max_items, None, "a status apply ignores spec");
    let entry = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("restore-operator"))
        .unwrap();
    assert_eq!((entry.operation.as_deref(), entry.subresource.as_deref()), (Some("Apply"), Some("status")));
}

#[tokio::test]
async fn kube_event_recorder_creates_then_patches_a_series() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let emu = emulator().await;
    let client = emu.client().unwrap();
    let run = runs(&client).create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let reporter = Reporter { controller: "restore-operator".into(), instance: Some("pod-1".into()) };
    let recorder = Recorder::new(client.clone(), reporter);
    let event = Event {
        type_: EventType::Normal,
        reason: "PreviewReady".into(),
        note: Some("preview ready".into()),
        action: "Preview".into(),
        secondary: None,
    };
    let reference = kube::Resource::object_ref(&run, &());
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let listed = core.list(&ListParams::default().fields("involvedObject.name=a")).await.unwrap();
    assert_eq!(listed.items.len(), 1, "the second publish patched the same event");
    assert_eq!(listed.items[0].reason.as_deref(), Some("PreviewReady"));
    assert_eq!(listed.items[0].series.as_ref().and_then(|s| s.count), Some(2));
}

#[tokio::test]
async fn delete_collection_removes_what_the_selector_picks() {
    let emu = emulator().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(&PostParams::default(), &config_map(name, json!({"app": app}))).await.unwrap();
    }
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=x")).await.unwrap();
    let left: Vec<String> =
        cms.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(left, vec!["c"]);
}

#[tokio::test]
async fn crd_versions_share_storage_and_crd_updates_take_effect() {
    let emu = emulator().await;
    let two_versions = support::fixture_crd().replace(
        "  versions:\n    - name: v1alpha1\n      served: true\n      storage: true\n",
        "  versions:\n    - name: v1beta1\n      served: true\n      storage: false\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n    - name: v1alpha1\n      served: true\n      storage: true\n",
    );
    assert_ne!(two_versions, support::fixture_crd(), "the fixture changed shape; update this test");
    emu.register_crd_yaml(&two_versions).unwrap();
    assert!(emu.serves("tenantatlas.io/v1beta1", "restoreruns"));
    let client = emu.client().unwrap();
    let beta =
        kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("tenantatlas.io", "v1beta1", "RestoreRun"));
    let betas: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &beta);
    let obj: kube::api::DynamicObject =
        serde_json::from_value(json!({"apiVersion": "tenantatlas.io/v1beta1", "kind": "RestoreRun",
        "metadata": {"name": "b"}, "spec": {"anything": "goes"}}))
        .unwrap();
    betas.create(&PostParams::default(), &obj).await.unwrap();
    let raw =
        raw_get(&client, "/apis/tenantatlas.io/v1alpha1/namespaces/default/restoreruns/b", "application/json").await;
    assert_eq!(raw["apiVersion"], "tenantatlas.io/v1alpha1", "one object, served in every version");
    let table = raw_get(
        &client,
        "/apis/tenantatlas.io/v1beta1/namespaces/default/restoreruns",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    .await;
    let headers: Vec<&str> =
        table["columnDefinitions"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(headers, vec!["Name", "Age"], "a version without printer columns gets Name and Age");
}

#[tokio::test]
async fn metadata_only_lists_and_watches_serve_partial_objects() {
    let emu = emulator().await;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().unwrap(), "default");
    cms.create(&PostParams::default(), &config_map("a", json!({"app": "x"}))).await.unwrap();
    let raw = raw_get(
        &emu.client().unwrap(),
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    )
    .await;
    assert_eq!(raw["kind"], "PartialObjectMetadataList");
    assert!(raw["items"][0].get("data").is_none(), "metadata only");
    let listed = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items[0].metadata.labels.as_ref().unwrap()["app"], "x");
    let partial: Api<kube::core::PartialObjectMeta<ConfigMap>> = Api::namespaced(emu.client().unwrap(), "default");
    let stream = kube::runtime::watcher(partial, kube::runtime::watcher::Config::default()).applied_objects().boxed();
    futures::pin_mut!(stream);
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    cms.create(&PostParams::default(), &config_map("b", json!({}))).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("b"));
}

#[tokio::test]
async fn delete_preconditions_guard_against_a_changed_object() {
    let emu = emulator().await;
    let api = runs(&emu.client().unwrap());
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.unwrap();
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: Some("other".into()), resource_version: None }),
        ..Default::default()
    };
    assert_eq!(api_error(api.delete("a", &wrong_uid).await).code, 409);
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxItems": 3}}))).await.unwrap();
    let stale = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    let refused = api_error(api.delete("a", &stale).await);
    assert!(refused.message.contains("Precondition failed: ResourceVersion"), "{}", refused.message);
    let exact = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: created.metadata.uid, resource_version: None }),
        ..Default::default()
    };
    assert!(api.delete("a", &exact).await.unwrap().is_right(), "deleted at once: a Status answer");
}
