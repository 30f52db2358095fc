//! The shared scenario suite for reconcile logic: each scenario is written once against a
//! `kube::Client` and run against both the emulator and the `kube-fake-client` crate.
//! Where the two disagree, the difference is listed in `FAKE_CLIENT_DIFFERENCES` (and README.md):
//! the fake must fail exactly those scenarios, so a change on either side shows up here.

mod support;

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{RestoreRun, RestoreRunStatus, restore_run};

type Outcome = Result<(), String>;
type Scenario = fn(kube::Client) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn runs(client: &kube::Client) -> Api<RestoreRun> {
    Api::namespaced(client.clone(), "default")
}

fn code(result: Result<impl std::fmt::Debug, kube::Error>) -> Option<u16> {
    match result {
        Err(kube::Error::Api(status)) => Some(status.code),
        _ => None,
    }
}

async fn create_get_list(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    ensure!(created.metadata.uid.is_some(), "created object has no uid");
    ensure!(created.metadata.resource_version.is_some(), "created object has no resourceVersion");
    let got = api.get("a").await.map_err(|e| e.to_string())?;
    ensure!(got.spec.tenant_ref.name == "contoso", "get returned {:?}", got.spec);
    let listed = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    ensure!(listed.items.len() == 1, "list returned {} items", listed.items.len());
    Ok(())
}

async fn duplicate_create_and_missing_get(client: kube::Client) -> Outcome {
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let again = code(api.create(&PostParams::default(), &restore_run("a", "contoso")).await);
    ensure!(again == Some(409), "duplicate create answered {again:?}");
    let missing = code(api.get("nope").await);
    ensure!(missing == Some(404), "missing get answered {missing:?}");
    Ok(())
}

async fn stale_update_conflicts(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let first = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let mut newer = first.clone();
    newer.spec.max_items = Some(2);
    api.replace("a", &PostParams::default(), &newer).await.map_err(|e| e.to_string())?;
    let mut stale = first;
    stale.spec.max_items = Some(3);
    let answer = code(api.replace("a", &PostParams::default(), &stale).await);
    ensure!(answer == Some(409), "stale update answered {answer:?}");
    Ok(())
}

async fn status_writes_and_spec_writes_stay_apart(client: kube::Client) -> Outcome {
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let pp = PatchParams::default();
    let status = json!({"status": {"phase": "Previewed"}});
    let after_status = api.patch_status("a", &pp, &Patch::Merge(&status)).await.map_err(|e| e.to_string())?;
    ensure!(after_status.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Previewed"), "status not written");
    let mut via_main = after_status.clone();
    via_main.spec.max_items = Some(4);
    via_main.status = Some(RestoreRunStatus { phase: Some("Failed".into()), observed_generation: None });
    let after_main = api.replace("a", &PostParams::default(), &via_main).await.map_err(|e| e.to_string())?;
    ensure!(after_main.spec.max_items == Some(4), "spec not written");
    ensure!(
        after_main.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Previewed"),
        "a main-resource write changed status to {:?}",
        after_main.status
    );
    Ok(())
}

async fn generation_tracks_spec_not_status(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let start = created.metadata.generation.unwrap_or_default();
    let pp = PatchParams::default();
    let after_status = api
        .patch_status("a", &pp, &Patch::Merge(json!({"status": {"phase": "Scoping"}})))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(after_status.metadata.generation.unwrap_or_default() == start, "status write moved generation");
    let after_spec =
        api.patch("a", &pp, &Patch::Merge(json!({"spec": {"dryRun": false}}))).await.map_err(|e| e.to_string())?;
    ensure!(after_spec.metadata.generation.unwrap_or_default() == start + 1, "spec write did not bump generation");
    Ok(())
}

async fn metadata_changes_keep_generation(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let created = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let labelled = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}})))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        labelled.metadata.generation == created.metadata.generation,
        "a label change moved generation from {:?} to {:?}",
        created.metadata.generation,
        labelled.metadata.generation
    );
    Ok(())
}

async fn merge_and_json_patches(client: kube::Client) -> Outcome {
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let pp = PatchParams::default();
    let merged =
        api.patch("a", &pp, &Patch::Merge(json!({"spec": {"maxItems": 7}}))).await.map_err(|e| e.to_string())?;
    ensure!(merged.spec.max_items == Some(7), "merge patch gave {:?}", merged.spec.max_items);
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/maxItems", "value": 8}]))
            .map_err(|e| e.to_string())?;
    let patched = api.patch("a", &pp, &Patch::<()>::Json(ops)).await.map_err(|e| e.to_string())?;
    ensure!(patched.spec.max_items == Some(8), "json patch gave {:?}", patched.spec.max_items);
    Ok(())
}

async fn selectors_filter_lists(client: kube::Client) -> Outcome {
    let api = runs(&client);
    for (name, team) in [("a", "x"), ("b", "y")] {
        let mut run = restore_run(name, "contoso");
        run.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        api.create(&PostParams::default(), &run).await.map_err(|e| e.to_string())?;
    }
    let by_label = api.list(&ListParams::default().labels("team=y")).await.map_err(|e| e.to_string())?;
    let names: Vec<_> = by_label.items.iter().filter_map(|r| r.metadata.name.clone()).collect();
    ensure!(names == vec!["b"], "label selector gave {names:?}");
    let by_name = api.list(&ListParams::default().fields("metadata.name=a")).await.map_err(|e| e.to_string())?;
    let names: Vec<_> = by_name.items.iter().filter_map(|r| r.metadata.name.clone()).collect();
    ensure!(names == vec!["a"], "field selector gave {names:?}");
    Ok(())
}

async fn finalizers_delay_deletion(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let mut run = restore_run("a", "contoso");
    run.metadata.finalizers = Some(vec!["tenantatlas.io/cleanup".into()]);
    api.create(&PostParams::default(), &run).await.map_err(|e| e.to_string())?;
    api.delete("a", &DeleteParams::default()).await.map_err(|e| e.to_string())?;
    let held = api.get("a").await.map_err(|e| e.to_string())?;
    ensure!(held.metadata.deletion_timestamp.is_some(), "no deletionTimestamp on a finalized object");
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .map_err(|e| e.to_string())?;
    let gone = code(api.get("a").await);
    ensure!(gone == Some(404), "object still there after its last finalizer went: {gone:?}");
    Ok(())
}

async fn delete_then_not_found(client: kube::Client) -> Outcome {
    let api = runs(&client);
    api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    api.delete("a", &DeleteParams::default()).await.map_err(|e| e.to_string())?;
    let gone = code(api.get("a").await);
    ensure!(gone == Some(404), "deleted object answered {gone:?}");
    Ok(())
}

async fn server_side_apply_creates_then_merges(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let manifest = json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "metadata": {"name": "a", "namespace": "default"},
        "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "b"}}, "maxItems": 1}});
    let pp = PatchParams::apply("restore-operator");
    let created = api.patch("a", &pp, &Patch::Apply(&manifest)).await.map_err(|e| e.to_string())?;
    ensure!(created.spec.max_items == Some(1), "apply did not create");
    let mut second = manifest.clone();
    second["spec"]["maxItems"] = json!(2);
    let merged = api.patch("a", &pp, &Patch::Apply(&second)).await.map_err(|e| e.to_string())?;
    ensure!(
        merged.spec.max_items == Some(2) && merged.spec.tenant_ref.name == "contoso",
        "apply did not merge: {:?}",
        merged.spec
    );
    Ok(())
}

async fn owned_objects_follow_their_owner(client: kube::Client) -> Outcome {
    let api = runs(&client);
    let owner = api.create(&PostParams::default(), &restore_run("a", "contoso")).await.map_err(|e| e.to_string())?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let report: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a-report", "namespace": "default", "ownerReferences": [
        {"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun", "name": "a", "uid": owner.metadata.uid, "controller": true}]}}))
    .map_err(|e| e.to_string())?;
    cms.create(&PostParams::default(), &report).await.map_err(|e| e.to_string())?;
    api.delete("a", &DeleteParams::background()).await.map_err(|e| e.to_string())?;
    let report_gone = code(cms.get("a-report").await);
    ensure!(report_gone == Some(404), "owned ConfigMap survived its owner: {report_gone:?}");
    Ok(())
}

const SCENARIOS: &[(&str, Scenario)] = &[
    ("create_get_list", |c| Box::pin(create_get_list(c))),
    ("duplicate_create_and_missing_get", |c| Box::pin(duplicate_create_and_missing_get(c))),
    ("stale_update_conflicts", |c| Box::pin(stale_update_conflicts(c))),
    ("status_writes_and_spec_writes_stay_apart", |c| Box::pin(status_writes_and_spec_writes_stay_apart(c))),
    ("generation_tracks_spec_not_status", |c| Box::pin(generation_tracks_spec_not_status(c))),
    ("metadata_changes_keep_generation", |c| Box::pin(metadata_changes_keep_generation(c))),
    ("merge_and_json_patches", |c| Box::pin(merge_and_json_patches(c))),
    ("selectors_filter_lists", |c| Box::pin(selectors_filter_lists(c))),
    ("finalizers_delay_deletion", |c| Box::pin(finalizers_delay_deletion(c))),
    ("delete_then_not_found", |c| Box::pin(delete_then_not_found(c))),
    ("server_side_apply_creates_then_merges", |c| Box::pin(server_side_apply_creates_then_merges(c))),
    ("owned_objects_follow_their_owner", |c| Box::pin(owned_objects_follow_their_owner(c))),
];

/// Scenarios where kube-fake-client 0.3 differs from a real API server (see README.md).
const FAKE_CLIENT_DIFFERENCES: &[&str] = &["metadata_changes_keep_generation", "finalizers_delay_deletion"];

async fn fake_client() -> kube::Client {
    kube_fake_client::ClientBuilder::new()
        .with_resource::<RestoreRun>()
        .with_status_subresource::<RestoreRun>()
        .build()
        .await
        .expect("fake client builds")
}

#[tokio::test]
async fn every_scenario_passes_against_the_emulator() {
    let mut failures = Vec::new();
    for (name, scenario) in SCENARIOS {
        let emu = support::emulator().await;
        if let Err(why) = scenario(emu.client().unwrap()).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "emulator failed scenarios:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn kube_fake_client_agrees_except_for_documented_differences() {
    let mut unexpected = Vec::new();
    for (name, scenario) in SCENARIOS {
        let outcome = scenario(fake_client().await).await;
        let documented = FAKE_CLIENT_DIFFERENCES.contains(name);
        match (outcome, documented) {
            (Ok(()), false) | (Err(_), true) => {}
            (Err(why), false) => unexpected.push(format!("{name} fails on kube-fake-client: {why}")),
            (Ok(()), true) => unexpected
                .push(format!("{name} now passes on kube-fake-client: update FAKE_CLIENT_DIFFERENCES and README.md")),
        }
    }
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
