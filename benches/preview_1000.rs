//! Preview benchmark on the Graph simulator (`cargo bench -p restore-operator --bench preview_1000`):
//! Graph requests and wall time of a 1,000-item preview over loopback HTTP, and normalize + diff throughput.

use std::time::{Duration, Instant};

use graph_sim::SimConfig;
use restore_backup::capture::capture;
use restore_backup::fetch::Fetcher;
use restore_backup::{Limits, native};
use restore_core::api::{Environment, ScopeSpec};
use restore_core::backup::BackupTenant;
use restore_core::canonical::canonical_json;
use restore_core::catalog::item_type;
use restore_core::engine::diff::{changed_paths, unified_diff};
use restore_core::engine::mapping::IdNames;
use restore_core::engine::normalize::{backup_document, normalize, project_onto};
use restore_core::engine::scope::resolve_scope;
use restore_core::engine::snapshot::object_path;
use restore_core::engine::{EngineOptions, RestoreTarget, assess};
use restore_core::tenant::TenantPort;
use restore_operator::cli::demo_backup::{
    EVERY_KIND_SAMPLES, PortalAdmin, SimTenant, sample_backup_with_every_kind, start_simulator,
};
use restore_operator::cli::local_objects::LocalObjects;
use restore_operator::cli::wizard_loop::{LocalRun, LocalTenant, dry_run_spec};
use serde_json::{Value, json};

/// Policies in the sample: with the Default, Paris and Berlin scope tags, the filter, the template
/// and the sample's one object of each further kind, 1,000 items.
const POLICIES: usize = 995 - EVERY_KIND_SAMPLES;
/// Graph requests per item of this preview measured on the commit before the catalogue widened
/// (issue 14: 71 HTTP requests for 1,000 items of 11 types, 15 catalogue types).
const REQUESTS_PER_ITEM_BEFORE: f64 = 0.071;
/// Timed repetitions of each measurement (the median is reported).
const ROUNDS: usize = 5;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// HTTP requests the simulator answered since `from` (a `$batch` counts once; token requests aside).
fn http_requests(sim: &graph_sim::SimHandle, from: usize) -> (usize, usize) {
    let log = sim.request_log();
    let api: Vec<_> = log[from..].iter().filter(|r| !r.in_batch && r.tenant.is_some()).collect();
    let batches = api.iter().filter(|r| r.path == "$batch").count();
    (api.len(), batches)
}

#[tokio::main]
async fn main() {
    let sim = start_simulator(SimConfig { request_log_capacity: 1_000_000, ..SimConfig::default() })
        .await
        .expect("the simulator starts");
    let tenant = SimTenant::create(&sim, "bench", "Bench", Environment::Staging).expect("a tenant");
    let info = BackupTenant { id: "bench".into(), label: "Bench".into() };
    sim.seed("bench", &sample_backup_with_every_kind(info.clone(), POLICIES)).expect("seeded");
    let client = tenant.client(&sim).expect("a Graph client");

    let start = Instant::now();
    let backup = capture(&client, info, jiff::Timestamp::now(), |_| {}).await.expect("a capture");
    println!(
        "restore-operator preview benchmark: {} items on the Graph simulator over loopback HTTP (captured in {:.0} ms)",
        backup.items.len(),
        ms(start.elapsed())
    );

    // Drift every tenth policy so the preview has updates to diff.
    let admin = PortalAdmin::sign_in(&sim, &tenant).await.expect("portal sign-in");
    let mut drifted = 0;
    for (i, item) in backup.items.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        let Some(t) = item_type(&item.item_type).filter(|_| item.resource.get("description").is_some()) else {
            continue;
        };
        let body = json!({"description": format!("drift {i}")});
        admin.call("PATCH", &format!("{}/{}", t.collection, item.id), Some(&body)).await.expect("a drift");
        drifted += 1;
    }

    // 1. The engine's preview (snapshot, checks, diff, digest) of the whole backup.
    let scope = resolve_scope(&ScopeSpec::default(), &backup).expect("a scope");
    let target = RestoreTarget { tenant_id: "bench".into(), environment: Environment::Staging };
    let mut times = Vec::new();
    let mut last = None;
    let mut requests = (0, 0);
    for _ in 0..ROUNDS {
        let from = sim.request_log().len();
        let start = Instant::now();
        let assessment = assess(&client, &scope, &target, &EngineOptions::default()).await.expect("a preview");
        times.push(start.elapsed());
        requests = http_requests(&sim, from);
        last = Some(assessment);
    }
    let assessment = last.expect("at least one round");
    let stats = assessment.report.requests;
    println!(
        "preview of {} items ({} drifted, {} to update): median {:.0} ms over {ROUNDS} rounds (min {:.0} ms)",
        assessment.report.items.len(),
        drifted,
        assessment.report.counts.update,
        ms(median(times.clone())),
        ms(times.iter().min().copied().unwrap_or_default())
    );
    println!(
        "  Graph requests: {} HTTP ({} of them $batch); the engine asked for {} listings and {} paths in {} get_many calls",
        requests.0, requests.1, stats.lists, stats.batched_paths, stats.get_many_calls
    );
    println!(
        "  requests per item: {:.3} with {} catalogue types ({:.3} before the catalogue widened)",
        requests.0 as f64 / assessment.report.items.len().max(1) as f64,
        restore_core::catalog::ITEM_TYPES.len(),
        REQUESTS_PER_ITEM_BEFORE
    );

    // 2. The whole wizard up to the preview, as `restore-operator preview` runs it (backup from a ConfigMap).
    let mut objects = LocalObjects::new();
    let source = objects.insert_archive(None, "backup", "b.tar.gz", native::to_tar_gz(&backup).expect("an archive"));
    let spec = dry_run_spec("bench", source);
    let fetcher = Fetcher::with_extra_roots(None, Limits::default()).expect("a fetcher");
    let local = LocalTenant { id: "bench".into(), label: "Bench".into(), environment: Environment::Staging };
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let from = sim.request_log().len();
        let start = Instant::now();
        let mut run = LocalRun::new("bench", "default", spec.clone(), local.clone(), &objects, &fetcher, &client)
            .with_large_change_threshold(Some(10_000));
        run.drive(|_| {}).await.expect("a preview run");
        times.push(start.elapsed());
        requests = http_requests(&sim, from);
    }
    println!(
        "wizard source → scope → checks → preview (as the CLI and the controller run it): median {:.0} ms, \
         {} HTTP requests (the check and preview steps each read the tenant)",
        ms(median(times)),
        requests.0
    );

    // 3. Normalize + diff throughput on the same 1,000 pairs (the core benchmark's approach).
    let names = IdNames::from_backup(&backup.items);
    let paths: Vec<String> = backup
        .items
        .iter()
        .map(|i| item_type(&i.item_type).map(|t| object_path(t, &i.id, true)).unwrap_or_default())
        .collect();
    let live = client.get_many(&paths).await.expect("the live objects");
    let pairs: Vec<_> = backup
        .items
        .iter()
        .zip(live)
        .map(|(item, live)| {
            let live = live.ok().flatten().unwrap_or(Value::Null);
            (item_type(&item.item_type), backup_document(item, true), live)
        })
        .collect();
    let bytes: usize = pairs.iter().map(|(_, d, l)| canonical_json(d).len() + canonical_json(l).len()).sum();
    let mut changes = 0usize;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for (t, desired_doc, live) in &pairs {
            let desired = normalize(*t, desired_doc, &names);
            let current = project_onto(&normalize(*t, live, &names), &desired);
            changes += changed_paths(&current, &desired).len()
                + usize::from(!unified_diff(Some(&current), &desired).is_empty());
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "normalize + diff: {:.0} items/s, {:.1} MB/s of canonical JSON ({} pairs x {ROUNDS} rounds, {:.2} MB per round, {} changes per round)",
        (pairs.len() * ROUNDS) as f64 / elapsed,
        (bytes * ROUNDS) as f64 / elapsed / 1e6,
        pairs.len(),
        bytes as f64 / 1e6,
        changes / ROUNDS
    );
}
