//! Soak: kube-runtime's `watcher` and `Controller` run against the emulator under steady churn
//! (default 60 s, `KUBE_EMULATOR_SOAK_SECS` to change) without errors, relists or reconnect loops.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube_emulator::EmulatorConfig;
use serde_json::json;
use support::{RestoreRun, emulator_with, restore_run};

#[derive(Default)]
struct Counters {
    reconciles: AtomicU64,
    reconcile_errors: AtomicU64,
    watcher_errors: AtomicU64,
    watcher_restarts: AtomicU64,
    watcher_events: AtomicU64,
}

struct Context {
    api: Api<RestoreRun>,
    counters: Arc<Counters>,
}

async fn reconcile(run: Arc<RestoreRun>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    ctx.counters.reconciles.fetch_add(1, Ordering::Relaxed);
    let generation = run.metadata.generation.unwrap_or_default();
    let observed = run.status.as_ref().and_then(|s| s.observed_generation);
    if run.metadata.deletion_timestamp.is_none() && observed != Some(generation) {
        let name = run.metadata.name.clone().unwrap_or_default();
        let status = json!({"status": {"phase": "Previewed", "observedGeneration": generation}});
        match ctx.api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await {
            Ok(_) => {}
            // The churn deletes runs; a run gone between event and patch is not a controller error.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(Action::await_change())
}

fn error_policy(_run: Arc<RestoreRun>, error: &kube::Error, ctx: Arc<Context>) -> Action {
    eprintln!("reconcile error: {error}");
    ctx.counters.reconcile_errors.fetch_add(1, Ordering::Relaxed);
    Action::requeue(Duration::from_secs(1))
}

fn soak_duration() -> Duration {
    let seconds = std::env::var("KUBE_EMULATOR_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Creates, edits and deletes runs, and churns ConfigMaps far past the retained history.
async fn churn(client: kube::Client, until: Instant) -> u64 {
    let runs: Api<RestoreRun> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let noise: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "noise"}, "data": {"n": "0"}})).unwrap();
    cms.create(&PostParams::default(), &noise).await.unwrap();
    let mut step: u64 = 0;
    while Instant::now() < until {
        step += 1;
        cms.patch("noise", &PatchParams::default(), &Patch::Merge(json!({"data": {"n": step.to_string()}})))
            .await
            .unwrap();
        // Runs change rarely (every ~3 s) while ConfigMaps churn ~20 times a second: between run
        // events the retained history (40 changes) rolls over, so only bookmarks keep watches resumable.
        if step.is_multiple_of(60) {
            let operation = step / 60;
            let name = format!("run-{}", operation % 7);
            match runs.get_opt(&name).await.unwrap() {
                None => {
                    runs.create(&PostParams::default(), &restore_run(&name, "contoso")).await.unwrap();
                }
                Some(_) if operation.is_multiple_of(11) => {
                    runs.delete(&name, &DeleteParams::default()).await.unwrap();
                }
                Some(existing) => {
                    let next = existing.spec.max_items.unwrap_or(1) % 900 + 1;
                    runs.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxItems": next}})))
                        .await
                        .unwrap();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    step
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_and_controller_soak_without_errors_or_relists() {
    let soak = soak_duration();
    let watch_timeout = Duration::from_secs(5);
    let config = EmulatorConfig {
        history_limit: 40,
        bookmark_interval: Duration::from_millis(
            std::env::var("KUBE_EMULATOR_SOAK_BOOKMARK_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(250),
        ),
        max_watch_timeout: watch_timeout,
        ..EmulatorConfig::default()
    };
    let emu = emulator_with(config).await;
    let client = emu.client().unwrap();
    let api: Api<RestoreRun> = Api::namespaced(client.clone(), "default");
    let counters = Arc::new(Counters::default());

    let watch_counters = counters.clone();
    let raw_watcher = tokio::spawn(watcher(api.clone(), watcher::Config::default()).for_each(move |event| {
        let c = watch_counters.clone();
        async move {
            match event {
                Ok(watcher::Event::Init) => {
                    c.watcher_restarts.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    c.watcher_events.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    eprintln!("watcher error: {error}");
                    c.watcher_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }));
    let context = Arc::new(Context { api: api.clone(), counters: counters.clone() });
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, context)
            .for_each(|_| async {}),
    );

    let until = Instant::now() + soak;
    let steps = churn(client.clone(), until).await;

    // Let the controller catch up with the last changes, then check every run was observed.
    let settle = Instant::now() + Duration::from_secs(10);
    let lagging = loop {
        // Read in-process so the check does not add to the HTTP request counters.
        let lagging: Vec<String> = emu
            .list("tenantatlas.io/v1alpha1", "RestoreRun", Some("default"))
            .iter()
            .filter(|r| r["status"]["observedGeneration"] != r["metadata"]["generation"])
            .filter_map(|r| r["metadata"]["name"].as_str().map(String::from))
            .collect();
        if lagging.is_empty() || Instant::now() > settle {
            break lagging;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    raw_watcher.abort();
    controller.abort();

    let stats = emu.stats();
    let lists = stats.get("list restoreruns").copied().unwrap_or_default();
    let watches = stats.get("watch restoreruns").copied().unwrap_or_default();
    let expected_watches = 2 * (soak.as_secs() / watch_timeout.as_secs() + 2);
    println!(
        "soak {}s: {steps} churn steps, {} reconciles, {} watcher events, {lists} RestoreRun lists, {watches} RestoreRun watches (bound {expected_watches}), final resourceVersion {}",
        soak.as_secs(),
        counters.reconciles.load(Ordering::Relaxed),
        counters.watcher_events.load(Ordering::Relaxed),
        emu.current_resource_version(),
    );
    assert_eq!(counters.watcher_errors.load(Ordering::Relaxed), 0, "watcher errors");
    assert_eq!(counters.reconcile_errors.load(Ordering::Relaxed), 0, "reconcile errors");
    assert_eq!(
        counters.watcher_restarts.load(Ordering::Relaxed),
        1,
        "the watcher relisted: a desync or reconnect loop"
    );
    assert_eq!(lists, 2, "one initial list per watcher (the raw watcher and the controller), no relists");
    assert!(watches <= expected_watches, "{watches} watch requests in {}s: a reconnect loop", soak.as_secs());
    assert!(lagging.is_empty(), "runs the controller never observed: {lagging:?}");
    assert!(counters.reconciles.load(Ordering::Relaxed) > 0 && steps > 100, "the soak did real work");
    assert!(emu.current_resource_version() > 40 * 5, "the churn went well past the retained history");
}
