//! Preview benchmark on the Graph simulator (`cargo bench --workspace --bench preview_1000`):
//! wall time, Graph requests and peak memory of previews at simulated latency, and the CPU path.
//!
//! For each size in `PREVIEW_SIZES` (items, default `1000,10000`) it seeds a simulated tenant in a
//! child process (this bench run again as the simulator, so the bench's own peak RSS is the
//! operator side's alone), then times the engine's preview (snapshot, checks, diff, digest) with
//! `PREVIEW_LATENCY_MS` (default 50) added to every Graph request, and prints the HTTP requests it
//! sent, the requests per item and the peak RSS of the preview's process and of the simulator's.
//! With the latency off it times the CPU path (normalize, diff, checks, digest of a snapshot
//! already read) on one thread. `PREVIEW_STEPS=1` runs each preview step by step (snapshot, report,
//! digest) and prints the RSS after each and its peak during it. Two drift re-checks through
//! the operator's shared tenant snapshot print what that snapshot keeps for its interval.
//! Targets (issue 17, printed, never
//! asserted): 1,000 items <= 1.0 s
//! and 10,000 items <= 8 s at 50 ms, peak RSS <= 200 MB, CPU path >= 20,000 items/s.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use graph_sim::{FaultConfig, SimConfig};
use restore_backup::capture::capture;
use restore_backup::fetch::Fetcher;
use restore_backup::{Limits, native};
use restore_core::api::{Environment, GraphEndpoints, IntuneTenantSpec, ScopeSpec, TenantAuth, WriteBudget};
use restore_core::backup::{BackupSet, BackupTenant};
use restore_core::catalog::item_type;
use restore_core::engine::scope::{ResolvedScope, resolve_scope_taking};
use restore_core::engine::snapshot::take_snapshot;
use restore_core::engine::{Assessment, EngineOptions, RestoreTarget, assess, report_from_owned_snapshot};
use restore_core::tenant::{TenantError, TenantPort};
use restore_graph::{Credentials, DEFAULT_READ_CONCURRENCY, GraphClient, GraphOptions, SecretString};
use restore_operator::cli::demo_backup::{
    EVERY_KIND_SAMPLES, PortalAdmin, SimTenant, local_graph_options, sample_backup_with_every_kind, start_simulator,
};
use restore_operator::cli::local_objects::LocalObjects;
use restore_operator::cli::wizard_loop::{LocalRun, LocalTenant, dry_run_spec};
use restore_operator::controller::snapshot::{Snapshot, TenantSnapshots, write_refused};
use serde_json::{Value, json};

/// The operator binary's allocator (`src/main.rs`), so the figures are the binary's.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    status_mib(&status, key)
}

/// A line of a `/proc/<pid>/status` text in MiB.
fn status_mib(status: &str, key: &str) -> f64 {
    let kib = status.lines().find_map(|l| {
        l.strip_prefix(key)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse::<f64>().ok()
    });
    kib.unwrap_or(0.0) / 1024.0
}

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`: on a shared machine
/// the wall time also counts the time other processes held the cores).
fn thread_cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).unwrap_or(0.0) / 1e9
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5), so a peak is the preview's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// HTTP requests in the simulator's log from `from` on: (all, `$batch`) — token requests and
/// the sub-requests of a `$batch` aside.
fn http_requests(log: &[graph_sim::RequestRecord]) -> (usize, usize) {
    let api: Vec<_> = log.iter().filter(|r| !r.in_batch && r.tenant.is_some()).collect();
    (api.len(), api.iter().filter(|r| r.path == "$batch").count())
}

fn latency(ms: u64) -> FaultConfig {
    FaultConfig { latency_min_ms: ms, latency_max_ms: ms, ..FaultConfig::default() }
}

/// Set in the environment of the child process that runs the simulator: the items to seed.
const CHILD_ENV: &str = "PREVIEW_SIMULATOR_ITEMS";

/// The simulator's process, driven by one-line commands on its stdin (`latency MS`, `drift`,
/// `count FROM`, `rss`, each answered with one line).
struct SimProcess {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    /// The tenant's IntuneTenant spec pointing at the simulator.
    spec: IntuneTenantSpec,
    secret: SecretString,
}

impl SimProcess {
    /// Runs this bench again as a simulator seeded with `items` items and waits until it listens.
    fn start(items: usize) -> SimProcess {
        let mut child = Command::new(std::env::current_exe().expect("the bench's path"))
            .env(CHILD_ENV, items.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the simulator process starts");
        let commands = child.stdin.take().expect("stdin is piped");
        let mut answers = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        answers.read_line(&mut line).expect("the simulator says where it listens");
        let hello: Value = serde_json::from_str(&line).expect("a JSON greeting");
        let text = |k: &str| hello[k].as_str().expect("a greeting field").to_string();
        let spec = IntuneTenantSpec {
            tenant_id: "bench".into(),
            display_name: "Bench".into(),
            environment: Environment::Staging,
            graph: GraphEndpoints { endpoint: text("endpoint"), authority: text("authority") },
            auth: TenantAuth {
                client_id: text("clientId"),
                client_secret_ref: Some(restore_core::api::SecretKeyRef {
                    name: "graph-app".into(),
                    key: "clientSecret".into(),
                }),
                certificate_ref: None,
                workload_identity: None,
            },
            write_budget: WriteBudget::default(),
        };
        SimProcess { child, commands, answers, spec, secret: SecretString::new(text("secret")) }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.commands, "{command}").expect("the simulator reads");
        let mut line = String::new();
        self.answers.read_line(&mut line).expect("the simulator answers");
        line.trim().to_string()
    }

    fn set_latency(&mut self, ms: u64) {
        self.ask(&format!("latency {ms}"));
    }

    /// Length of the request log, to count from.
    fn mark(&mut self) -> usize {
        self.ask("count 0").split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    /// (HTTP requests, `$batch`es) since `from`.
    fn requests_since(&mut self, from: usize) -> (usize, usize) {
        let answer = self.ask(&format!("count {from}"));
        let numbers: Vec<usize> = answer.split(' ').filter_map(|n| n.parse().ok()).collect();
        (numbers.get(1).copied().unwrap_or(0), numbers.get(2).copied().unwrap_or(0))
    }

    /// The simulator's (peak, current) RSS in MiB.
    fn rss(&mut self) -> (f64, f64) {
        let answer = self.ask("rss");
        let mut numbers = answer.split(' ').filter_map(|n| n.parse().ok());
        (numbers.next().unwrap_or(0.0), numbers.next().unwrap_or(0.0))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child process: a simulated tenant seeded with `items` items, served until stdin closes.
async fn serve_simulator(items: usize) {
    let config = SimConfig { request_log_capacity: 1_000_000, throttle: None, ..SimConfig::default() };
    let sim = start_simulator(config).await.expect("the simulator starts");
    let tenant = SimTenant::create(&sim, "bench", "Bench", Environment::Staging).expect("a tenant");
    let info = BackupTenant { id: "bench".into(), label: "Bench".into() };
    let policies = items.saturating_sub(FOUNDATIONS + EVERY_KIND_SAMPLES);
    let seeded = sample_backup_with_every_kind(info, policies);
    sim.seed("bench", &seeded).expect("seeded");
    let hello = json!({
        "endpoint": sim.base_url(), "authority": sim.authority_url(),
        "clientId": tenant.client_id, "secret": tenant.secret.expose_secret(),
    });
    println!("{hello}");
    let admin = PortalAdmin::sign_in(&sim, &tenant).await.expect("portal sign-in");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        let answer = match (words.next(), words.next().and_then(|n| n.parse::<usize>().ok())) {
            (Some("latency"), Some(ms)) => {
                sim.set_faults(latency(ms as u64));
                "ok".to_string()
            }
            (Some("drift"), _) => format!("{}", drift(&admin, &seeded).await),
            (Some("count"), Some(from)) => {
                let log = sim.request_log();
                let (http, batches) = http_requests(log.get(from..).unwrap_or_default());
                format!("{} {http} {batches}", log.len())
            }
            (Some("rss"), _) => format!("{:.1} {:.1}", proc_status_mib("VmHWM"), proc_status_mib("VmRSS")),
            _ => "?".to_string(),
        };
        println!("{answer}");
    }
}

/// Drifts a tenth of the policies (at most [`MAX_DRIFTED`]) as an admin in the portal would.
async fn drift(admin: &PortalAdmin, backup: &BackupSet) -> usize {
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
    drifted
}

/// A simulated tenant seeded with `items` items (in its own process), its client, and the backup
/// as captured from it (with the simulator's ids), a tenth of the policies drifted since.
async fn seeded_tenant(items: usize) -> (SimProcess, GraphClient, BackupSet, usize) {
    let mut sim = SimProcess::start(items);
    let options = GraphOptions { read_concurrency: read_concurrency(), ..local_graph_options() };
    let client = GraphClient::new(&sim.spec, Credentials::ClientSecret(sim.secret.clone()), options).expect("a client");
    let info = BackupTenant { id: "bench".into(), label: "Bench".into() };
    let backup = capture(&client, info, jiff::Timestamp::now(), |_| {}).await.expect("a capture");
    let drifted = sim.ask("drift").parse().unwrap_or(0);
    (sim, client, backup, drifted)
}

/// The engine's preview of the whole backup at `latency_ms` per request, `rounds` times.
async fn network_preview(size: usize, latency_ms: u64, rounds: usize, wizard: bool) {
    let (mut sim, client, mut backup, drifted) = seeded_tenant(size).await;
    // The wizard's run works from its own archive of the backup; the engine's preview from the
    // scope, which takes the backup's items (as a run's scope does).
    let archive = wizard.then(|| native::to_tar_gz(&backup).expect("an archive"));
    let scope = resolve_scope_taking(&ScopeSpec::default(), &mut backup).expect("a scope");
    drop(backup);
    let target = RestoreTarget { tenant_id: "bench".into(), environment: Environment::Staging };
    sim.set_latency(latency_ms);
    let steps = std::env::var("PREVIEW_STEPS").is_ok_and(|v| v == "1");
    let mut steps_peak: f64 = 0.0;
    let rss_before = proc_status_mib("VmRSS");
    reset_peak_rss();
    let mut times = Vec::new();
    let mut requests = (0, 0);
    let mut last = None;
    for _ in 0..rounds {
        // One preview held at a time, as a run holds one.
        drop(last.take());
        let from = sim.mark();
        let start = Instant::now();
        let assessment = if steps {
            let (assessment, peak) = assess_by_steps(&client, &scope, &target).await;
            steps_peak = steps_peak.max(peak);
            assessment
        } else {
            assess(&client, &scope, &target, &EngineOptions::default()).await.expect("a preview")
        };
        times.push(start.elapsed());
        requests = sim.requests_since(from);
        last = Some(assessment);
    }
    let peak = proc_status_mib("VmHWM").max(steps_peak);
    let (sim_peak, _) = sim.rss();
    let assessment = last.expect("at least one round");
    let items = assessment.report.items.len();
    println!(
        "preview of {items} items at {latency_ms} ms per request ({drifted} drifted; {} to update, {} unchanged, {} to create, {} skipped, {} preview-only): median {:.0} ms over {rounds} rounds (min {:.0} ms, max {:.0} ms)",
        assessment.report.counts.update,
        assessment.report.counts.unchanged,
        assessment.report.counts.create,
        assessment.report.counts.skip,
        assessment.report.counts.preview_only,
        ms(median(times.clone())),
        ms(times.iter().min().copied().unwrap_or_default()),
        ms(times.iter().max().copied().unwrap_or_default()),
    );
    println!(
        "  Graph requests: {} HTTP ({} of them $batch), {:.3} per item; peak RSS of the preview's process {peak:.1} MiB ({rss_before:.1} MiB before the previews, the backup loaded); the simulator's process apart: {sim_peak:.1} MiB",
        requests.0,
        requests.1,
        requests.0 as f64 / items as f64,
    );
    println!(
        "  requests per item: {:.3} with {} catalogue types ({REQUESTS_PER_ITEM_BEFORE:.3} at 1,000 items before the catalogue widened)",
        requests.0 as f64 / items.max(1) as f64,
        restore_core::catalog::ITEM_TYPES.len(),
    );
    drop(assessment);
    if let Some(archive) = archive {
        wizard_preview(&mut sim, &client, archive, latency_ms, rounds).await;
    }
    drift_rechecks(&mut sim, &client, &scope, &target).await;
    sim.set_latency(0);
    cpu_path(&client, &scope, &target, rounds).await;
}

/// [`assess`] step by step (snapshot, report, digest), printing the process's RSS after each step
/// and its peak during it (`PREVIEW_STEPS=1`): where a preview's memory goes. Also returns the
/// highest of those peaks (each step resets the peak).
async fn assess_by_steps(client: &GraphClient, scope: &ResolvedScope, target: &RestoreTarget) -> (Assessment, f64) {
    let mut line = String::from("  memory by step (RSS after, peak during):");
    let mut highest: f64 = 0.0;
    let mut step = |name: &str| {
        let peak = proc_status_mib("VmHWM");
        highest = highest.max(peak);
        line.push_str(&format!(" {name} {:.1} MiB ({peak:.1} MiB)", proc_status_mib("VmRSS")));
        reset_peak_rss();
    };
    step("before");
    let snapshot = take_snapshot(client, scope, &target.tenant_id).await.expect("a snapshot");
    step("| snapshot read");
    let report = report_from_owned_snapshot(scope, snapshot, target, &EngineOptions::default());
    step("| report");
    let digest = report.digest();
    step("| digest");
    println!("{line}");
    (Assessment { report, digest }, highest)
}

/// The whole wizard up to the preview, as `restore-operator preview` runs it (backup from a ConfigMap).
async fn wizard_preview(sim: &mut SimProcess, client: &GraphClient, archive: Vec<u8>, latency_ms: u64, rounds: usize) {
    let mut objects = LocalObjects::new();
    let source = objects.insert_archive(None, "backup", "b.tar.gz", archive);
    let spec = dry_run_spec("bench", source);
    let fetcher = Fetcher::with_extra_roots(None, Limits::default()).expect("a fetcher");
    let local = LocalTenant { id: "bench".into(), label: "Bench".into(), environment: Environment::Staging };
    let mut times = Vec::new();
    let mut requests = (0, 0);
    let rss_before = proc_status_mib("VmRSS");
    reset_peak_rss();
    for _ in 0..rounds {
        let from = sim.mark();
        let start = Instant::now();
        let mut run = LocalRun::new("bench", "default", spec.clone(), local.clone(), &objects, &fetcher, client)
            .with_large_change_threshold(Some(100_000));
        run.drive(|_| {}).await.expect("a preview run");
        times.push(start.elapsed());
        requests = sim.requests_since(from);
    }
    println!(
        "  wizard source → scope → checks → preview at {latency_ms} ms (as the CLI and the controller run it): median {:.0} ms, {} HTTP requests; peak RSS {:.1} MiB ({rss_before:.1} MiB before, the engine preview's scope still held)",
        ms(median(times)),
        requests.0,
        proc_status_mib("VmHWM"),
    );
}

/// A read-only port answering from the operator's shared snapshot of the tenant, asking `client`
/// what it does not hold yet: the port a controller's drift re-check reads through.
struct ThroughSnapshot<'a> {
    client: &'a GraphClient,
    snapshot: &'a Snapshot,
}

impl TenantPort for ThroughSnapshot<'_> {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        self.snapshot.get(path, || self.client.get(path)).await
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        self.snapshot.list(path, || self.client.list(path)).await
    }

    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        self.snapshot.get_many(paths, || self.client.get_many(paths)).await
    }

    async fn create(&self, _: &str, _: &Value) -> Result<Value, TenantError> {
        Err(write_refused())
    }

    async fn update(&self, _: &str, _: &Value) -> Result<(), TenantError> {
        Err(write_refused())
    }

    async fn replace(&self, _: &str, _: &Value) -> Result<(), TenantError> {
        Err(write_refused())
    }

    async fn action(&self, _: &str, _: &Value) -> Result<Option<Value>, TenantError> {
        Err(write_refused())
    }
}

/// Two drift re-checks of the whole scope as the controller makes them: through the tenant's
/// shared snapshot, which the operator keeps for one drift interval. Prints the first re-check's
/// peak RSS, what the kept snapshot holds once its report is let go, and the second re-check's
/// time (answered from the snapshot: no Graph request).
async fn drift_rechecks(sim: &mut SimProcess, client: &GraphClient, scope: &ResolvedScope, target: &RestoreTarget) {
    let snapshots = TenantSnapshots::new(restore_core::wizard::DRIFT_RECHECK);
    let rss_before = proc_status_mib("VmRSS");
    reset_peak_rss();
    let snapshot = snapshots.current("bench", jiff::Timestamp::now());
    let port = ThroughSnapshot { client, snapshot: &snapshot };
    let first = assess(&port, scope, target, &EngineOptions::default()).await.expect("a re-check");
    let peak = proc_status_mib("VmHWM");
    let first_digest = first.digest;
    drop(first.report);
    let held = proc_status_mib("VmRSS");
    let from = sim.mark();
    let start = Instant::now();
    let second = assess(&port, scope, target, &EngineOptions::default()).await.expect("a re-check");
    let took = start.elapsed();
    let (requests, _) = sim.requests_since(from);
    println!(
        "  drift re-check through the operator's tenant snapshot: peak RSS {peak:.1} MiB ({rss_before:.1} MiB before); {held:.1} MiB held with the snapshot kept for the interval; a second run's re-check from it: {:.0} ms, {requests} HTTP requests, {} digest as the first ({})",
        ms(took),
        if second.digest == first_digest { "the same" } else { "NOT THE SAME" },
        second.digest,
    );
}

/// Normalize, diff, checks and digest of a snapshot already read, on this one thread (as
/// [`assess`] runs them: the snapshot given up to the report; each round's copy of it is made
/// outside the time measured).
async fn cpu_path(client: &GraphClient, scope: &ResolvedScope, target: &RestoreTarget, rounds: usize) {
    let snapshot = take_snapshot(client, scope, &target.tenant_id).await.expect("a snapshot");
    let options = EngineOptions::default();
    let mut digests = Vec::new();
    let mut elapsed = 0.0;
    let mut cpu = 0.0;
    let mut best_round = f64::INFINITY;
    for _ in 0..rounds {
        let copy = snapshot.clone();
        let start = Instant::now();
        let cpu_start = thread_cpu_seconds();
        digests.push(report_from_owned_snapshot(scope, copy, target, &options).digest());
        let round = thread_cpu_seconds() - cpu_start;
        best_round = best_round.min(round);
        cpu += round;
        elapsed += start.elapsed().as_secs_f64();
    }
    digests.dedup();
    let done = (scope.items.len() * rounds) as f64;
    // The thread's clock moves at scheduler ticks: a round shorter than a few of them reads 0.
    let best = if best_round >= 0.004 {
        format!("{:.0}", scope.items.len() as f64 / best_round)
    } else {
        "- (rounds too short for the thread's clock)".to_string()
    };
    println!(
        "  CPU path (normalize, diff, checks, digest) on one thread, no network: {:.0} items/s of wall time, {:.0} items per CPU-second of the thread, {best} in its best round (the least disturbed by the machine's other load) ({} items x {rounds} rounds, {} distinct digest {})",
        done / elapsed,
        done / cpu.max(1e-9),
        scope.items.len(),
        digests.len(),
        digests.first().map(String::as_str).unwrap_or_default(),
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(items) = std::env::var(CHILD_ENV).ok().and_then(|n| n.parse().ok()) {
        serve_simulator(items).await;
        return;
    }
    let sizes: Vec<usize> =
        env_or("PREVIEW_SIZES", "1000,10000").split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let latency_ms: u64 = env_or("PREVIEW_LATENCY_MS", "50").parse().unwrap_or(50);
    let rounds: usize = env_or("PREVIEW_ROUNDS", "3").parse().unwrap_or(3).max(1);
    println!(
        "restore-operator preview benchmark on the Graph simulator over loopback HTTP ({} CPUs, {} reads in flight per tenant, {} allocator)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        read_concurrency(),
        if cfg!(feature = "system-allocator") { "the system's" } else { "mimalloc" },
    );
    for (i, size) in sizes.into_iter().enumerate() {
        network_preview(size, latency_ms, rounds, i == 0).await;
    }
}
