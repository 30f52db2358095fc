//! Preview benchmark on the Graph simulator (`cargo bench -p restore-operator --bench preview_1000`):
//! wall time, Graph requests and peak memory of previews at simulated latency, and the CPU path.
//!
//! For each size in `PREVIEW_SIZES` (items, default `1000,10000`) it seeds a simulated tenant,
//! then times the engine's preview (snapshot, checks, diff, digest) with `PREVIEW_LATENCY_MS`
//! (default 50) added to every Graph request, and prints the HTTP requests it sent, the requests
//! per item and the process's peak RSS (simulator included). With the latency off it times the
//! CPU path (normalize, diff, checks, digest of a snapshot already read) on one thread. Targets
//! (issue 17, printed, never asserted): 1,000 items <= 1.0 s and 10,000 items <= 8 s at 50 ms,
//! peak RSS <= 200 MB, CPU path >= 20,000 items/s.

use std::time::{Duration, Instant};

use graph_sim::{FaultConfig, SimConfig};
use restore_backup::capture::capture;
use restore_backup::fetch::Fetcher;
use restore_backup::{Limits, native};
use restore_core::api::{Environment, ScopeSpec};
use restore_core::backup::{BackupSet, BackupTenant};
use restore_core::catalog::item_type;
use restore_core::engine::scope::{ResolvedScope, resolve_scope};
use restore_core::engine::snapshot::take_snapshot;
use restore_core::engine::{EngineOptions, RestoreTarget, assess, report_from_snapshot};
use restore_graph::{Credentials, DEFAULT_READ_CONCURRENCY, GraphClient, GraphOptions};
use restore_operator::cli::demo_backup::{
    EVERY_KIND_SAMPLES, PortalAdmin, SimTenant, local_graph_options, sample_backup_with_every_kind, start_simulator,
};
use restore_operator::cli::local_objects::LocalObjects;
use restore_operator::cli::wizard_loop::{LocalRun, LocalTenant, dry_run_spec};
use serde_json::json;

/// Items in the sample besides the policies: the Default, Paris and Berlin scope tags, the
/// filter and the template.
const FOUNDATIONS: usize = 5;
/// Graph requests per item of the 1,000-item preview measured on the commit before the catalogue
/// widened (issue 14: 71 HTTP requests for 1,000 items of 11 types, 15 catalogue types).
const REQUESTS_PER_ITEM_BEFORE: f64 = 0.071;
/// Policies drifted before the previews (so they have updates to diff), at most.
const MAX_DRIFTED: usize = 100;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Reads of the tenant in flight at once (`PREVIEW_READ_CONCURRENCY`, default the client's).
fn read_concurrency() -> usize {
    env_or("PREVIEW_READ_CONCURRENCY", "").parse().unwrap_or(DEFAULT_READ_CONCURRENCY)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A line of `/proc/self/status` in MiB (`VmHWM`: peak RSS, `VmRSS`: current RSS).
fn proc_status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| {
        l.strip_prefix(key)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse::<f64>().ok()
    });
    kib.unwrap_or(0.0) / 1024.0
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5), so a peak is the preview's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// HTTP requests the simulator answered since `from` (a `$batch` counts once; token requests aside).
fn http_requests(sim: &graph_sim::SimHandle, from: usize) -> (usize, usize) {
    let log = sim.request_log();
    let api: Vec<_> = log[from..].iter().filter(|r| !r.in_batch && r.tenant.is_some()).collect();
    let batches = api.iter().filter(|r| r.path == "$batch").count();
    (api.len(), batches)
}

fn latency(ms: u64) -> FaultConfig {
    FaultConfig { latency_min_ms: ms, latency_max_ms: ms, ..FaultConfig::default() }
}

/// A simulated tenant seeded with `items` items, its client, and the backup as captured from it
/// (with the simulator's ids), a tenth of the policies (at most [`MAX_DRIFTED`]) drifted.
async fn seeded_tenant(items: usize) -> (graph_sim::SimHandle, GraphClient, BackupSet, usize) {
    let config = SimConfig { request_log_capacity: 1_000_000, throttle: None, ..SimConfig::default() };
    let sim = start_simulator(config).await.expect("the simulator starts");
    let tenant = SimTenant::create(&sim, "bench", "Bench", Environment::Staging).expect("a tenant");
    let info = BackupTenant { id: "bench".into(), label: "Bench".into() };
    let policies = items.saturating_sub(FOUNDATIONS + EVERY_KIND_SAMPLES);
    sim.seed("bench", &sample_backup_with_every_kind(info.clone(), policies)).expect("seeded");
    let options = GraphOptions { read_concurrency: read_concurrency(), ..local_graph_options() };
    let spec = tenant.spec(&sim, "graph-app");
    let client = GraphClient::new(&spec, Credentials::ClientSecret(tenant.secret.clone()), options).expect("a client");
    let backup = capture(&client, info, jiff::Timestamp::now(), |_| {}).await.expect("a capture");
    let admin = PortalAdmin::sign_in(&sim, &tenant).await.expect("portal sign-in");
    let mut drifted = 0;
    for (i, item) in backup.items.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        let Some(t) = item_type(&item.item_type).filter(|_| item.resource.get("description").is_some()) else {
            continue;
        };
        let body = json!({"description": format!("drift {i}")});
        admin.call("PATCH", &format!("{}/{}", t.collection, item.id), Some(&body)).await.expect("a drift");
        drifted += 1;
        if drifted == MAX_DRIFTED {
            break;
        }
    }
    (sim, client, backup, drifted)
}

/// The engine's preview of the whole backup at `latency_ms` per request, `rounds` times.
async fn network_preview(size: usize, latency_ms: u64, rounds: usize, wizard: bool) {
    let (sim, client, backup, drifted) = seeded_tenant(size).await;
    let scope = resolve_scope(&ScopeSpec::default(), &backup).expect("a scope");
    let target = RestoreTarget { tenant_id: "bench".into(), environment: Environment::Staging };
    sim.set_faults(latency(latency_ms));
    let rss_before = proc_status_mib("VmRSS");
    reset_peak_rss();
    let mut times = Vec::new();
    let mut requests = (0, 0);
    let mut last = None;
    for _ in 0..rounds {
        let from = sim.request_log().len();
        let start = Instant::now();
        let assessment = assess(&client, &scope, &target, &EngineOptions::default()).await.expect("a preview");
        times.push(start.elapsed());
        requests = http_requests(&sim, from);
        last = Some(assessment);
    }
    let peak = proc_status_mib("VmHWM");
    let assessment = last.expect("at least one round");
    let items = assessment.report.items.len();
    println!(
        "preview of {items} items at {latency_ms} ms per request ({drifted} drifted, {} to update): median {:.0} ms over {rounds} rounds (min {:.0} ms, max {:.0} ms)",
        assessment.report.counts.update,
        ms(median(times.clone())),
        ms(times.iter().min().copied().unwrap_or_default()),
        ms(times.iter().max().copied().unwrap_or_default()),
    );
    println!(
        "  Graph requests: {} HTTP ({} of them $batch), {:.3} per item; peak RSS {peak:.1} MiB (simulator with {items} objects included; {rss_before:.1} MiB before the previews)",
        requests.0,
        requests.1,
        requests.0 as f64 / items as f64,
    );
    println!(
        "  requests per item: {:.3} with {} catalogue types ({REQUESTS_PER_ITEM_BEFORE:.3} at 1,000 items before the catalogue widened)",
        requests.0 as f64 / items.max(1) as f64,
        restore_core::catalog::ITEM_TYPES.len(),
    );
    if wizard {
        wizard_preview(&sim, &client, &backup, latency_ms, rounds).await;
    }
    sim.set_faults(FaultConfig::default());
    cpu_path(&client, &scope, &target, rounds).await;
}

/// The whole wizard up to the preview, as `restore-operator preview` runs it (backup from a ConfigMap).
async fn wizard_preview(
    sim: &graph_sim::SimHandle,
    client: &GraphClient,
    backup: &BackupSet,
    latency_ms: u64,
    rounds: usize,
) {
    let mut objects = LocalObjects::new();
    let source = objects.insert_archive(None, "backup", "b.tar.gz", native::to_tar_gz(backup).expect("an archive"));
    let spec = dry_run_spec("bench", source);
    let fetcher = Fetcher::with_extra_roots(None, Limits::default()).expect("a fetcher");
    let local = LocalTenant { id: "bench".into(), label: "Bench".into(), environment: Environment::Staging };
    let mut times = Vec::new();
    let mut requests = (0, 0);
    for _ in 0..rounds {
        let from = sim.request_log().len();
        let start = Instant::now();
        let mut run = LocalRun::new("bench", "default", spec.clone(), local.clone(), &objects, &fetcher, client)
            .with_large_change_threshold(Some(100_000));
        run.drive(|_| {}).await.expect("a preview run");
        times.push(start.elapsed());
        requests = http_requests(sim, from);
    }
    println!(
        "  wizard source → scope → checks → preview at {latency_ms} ms (as the CLI and the controller run it): median {:.0} ms, {} HTTP requests",
        ms(median(times)),
        requests.0
    );
}

/// Normalize, diff, checks and digest of a snapshot already read, on this one thread.
async fn cpu_path(client: &GraphClient, scope: &ResolvedScope, target: &RestoreTarget, rounds: usize) {
    let snapshot = take_snapshot(client, scope, &target.tenant_id).await.expect("a snapshot");
    let options = EngineOptions::default();
    let mut digests = Vec::new();
    let start = Instant::now();
    for _ in 0..rounds {
        digests.push(report_from_snapshot(scope, &snapshot, target, &options).digest());
    }
    let elapsed = start.elapsed().as_secs_f64();
    digests.dedup();
    println!(
        "  CPU path (normalize, diff, checks, digest) on one thread, no network: {:.0} items/s ({} items x {rounds} rounds, {} distinct digest)",
        (scope.items.len() * rounds) as f64 / elapsed,
        scope.items.len(),
        digests.len()
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> =
        env_or("PREVIEW_SIZES", "1000,10000").split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let latency_ms: u64 = env_or("PREVIEW_LATENCY_MS", "50").parse().unwrap_or(50);
    let rounds: usize = env_or("PREVIEW_ROUNDS", "3").parse().unwrap_or(3).max(1);
    println!(
        "restore-operator preview benchmark on the Graph simulator over loopback HTTP ({} CPUs, {} reads in flight per tenant)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        read_concurrency(),
    );
    for (i, size) in sizes.into_iter().enumerate() {
        network_preview(size, latency_ms, rounds, i == 0).await;
    }
}
