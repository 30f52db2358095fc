//! A thousand RestoreRuns on one operator: the real binary against the Kubernetes emulator and the
//! Graph simulator (20 tenants). Prints operator RSS, CPU, API-server and Graph requests per minute.
//!
//! Mixed phases: half the runs await confirmation, most others are dry-runs resting at Previewed,
//! and a few have a one-minute preview that expires and rests. Sizes come from the environment:
//! `BENCH_RUNS` (1000), `BENCH_TENANTS` (20), `BENCH_STEADY_SECONDS` (330: one drift interval and
//! a half minute). Run by `scripts/bench-runs.sh`; no thresholds (the machine is shared).

#[path = "../tests/controller_support/mod.rs"]
#[allow(unused_imports)]
mod controller_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use controller_support::e2e::{Cluster, Operator};
use controller_support::*;
use graph_sim::AppCredential;
use kube::api::{Api, ListParams, PostParams};
use restore_operator::kube::{IntuneTenant, RestoreRun};
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The Entra tenant id of simulated tenant `i`.
fn tenant_id(i: u64) -> String {
    format!("6f1e2d3c-4b5a-4978-8a9b-{i:012}")
}

/// (resident KiB, peak resident KiB) of a process.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) a process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Graph HTTP requests (batched sub-requests not counted) since `from`, per tenant.
fn graph_requests_since(cluster: &Cluster, from: u64) -> BTreeMap<String, u64> {
    let mut per_tenant = BTreeMap::new();
    for r in cluster.sim.request_log().into_iter().filter(|r| r.seq >= from && !r.in_batch) {
        *per_tenant.entry(r.tenant.unwrap_or_else(|| "(token)".into())).or_insert(0) += 1;
    }
    per_tenant
}

fn last_seq(cluster: &Cluster) -> u64 {
    cluster.sim.request_log().last().map_or(0, |r| r.seq + 1)
}

async fn phases(runs: &Api<RestoreRun>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs.list(&ListParams::default()).await.expect("runs list").items {
        let phase = run.status.and_then(|s| s.phase).map_or("(none)", |p| p.as_str()).to_string();
        *counts.entry(phase).or_insert(0) += 1;
    }
    counts
}

fn api_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total_runs = env_or("BENCH_RUNS", 1000);
    let tenants = env_or("BENCH_TENANTS", 20).max(1);
    let steady = Duration::from_secs(env_or("BENCH_STEADY_SECONDS", 330));
    let awaiting = total_runs / 2;
    let expiring = total_runs / 20;
    let dry_runs = total_runs - awaiting - expiring;
    println!(
        "runs_1000: {total_runs} runs ({awaiting} awaiting confirmation, {dry_runs} dry-runs, {expiring} expiring), \
         {tenants} tenants"
    );

    let cluster = Cluster::start(&TenantSetup::default()).await;
    let client = cluster.emulator.client().expect("client");
    for i in 0..tenants {
        let id = tenant_id(i);
        cluster.sim.add_tenant(&id);
        cluster.sim.register_app(&id, CLIENT_ID, AppCredential::Secret(CLIENT_SECRET.into())).expect("app");
        for group in [GROUP_ALL, GROUP_PILOT] {
            cluster.sim.add_group(&id, group).expect("group");
        }
    }
    let backup = sample_backup(75);
    let data = backup_config_map_data(&backup);
    cluster.apply("shared", &[secret_object(), backup_config_map(BACKUP_CONFIG_MAP, &data)]).await;
    let tenant_api: Api<IntuneTenant> = Api::namespaced(client.clone(), NAMESPACE);
    for i in 0..tenants {
        let mut object = tenant_object(&cluster.sim, restore_core::api::Environment::Staging);
        object["metadata"]["name"] = json!(format!("tenant-{i:02}"));
        object["spec"]["tenantId"] = json!(tenant_id(i));
        object["spec"]["displayName"] = json!(format!("Tenant {i:02}"));
        let tenant: IntuneTenant = serde_json::from_value(object).expect("tenant");
        tenant_api.create(&PostParams::default(), &tenant).await.expect("tenant created");
    }

    let operator: Operator = cluster.operator("bench", 15).await;
    operator.wait_logged("leading; starting controllers", Duration::from_secs(30)).await;
    let pid = operator.pid().expect("the operator runs");
    let started = Instant::now();
    let runs: Api<RestoreRun> = Api::namespaced(client.clone(), NAMESPACE);
    for i in 0..total_runs {
        let (dry_run, ttl) = if i < awaiting {
            (false, "2h")
        } else if i < awaiting + expiring {
            (false, "1m")
        } else {
            (true, "2h")
        };
        let mut object: Value = restore_run_object(&format!("run-{i:04}"), BACKUP_CONFIG_MAP, dry_run, ttl);
        object["spec"]["tenantRef"]["name"] = json!(format!("tenant-{:02}", i % tenants));
        let run: RestoreRun = serde_json::from_value(object).expect("run");
        runs.create(&PostParams::default(), &run).await.expect("run created");
    }
    println!("created {total_runs} runs in {:.1?}", started.elapsed());

    // Every run at rest: awaiting confirmation, Previewed, or expired (Previewing, resting).
    let deadline = Instant::now() + Duration::from_secs(env_or("BENCH_SETUP_SECONDS", 3600));
    let mut peak_setup_rss = 0;
    loop {
        let counts = phases(&runs).await;
        peak_setup_rss = peak_setup_rss.max(rss_kib(pid).0);
        let settled = counts.get("AwaitingConfirmation").copied().unwrap_or(0)
            + counts.get("Previewed").copied().unwrap_or(0)
            + counts.get("Previewing").copied().unwrap_or(0);
        if settled as u64 == total_runs && counts.get("Previewed").copied().unwrap_or(0) as u64 == dry_runs {
            println!("all {total_runs} runs at rest after {:.1?}: {counts:?}", started.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {counts:?}");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let setup_graph: u64 = graph_requests_since(&cluster, 0).values().sum();
    println!("setup: {setup_graph} Graph requests in all (≈{} per preview)", setup_graph / total_runs.max(1));

    // Steady state.
    let (api_before, graph_from, cpu_before) = (cluster.emulator.stats(), last_seq(&cluster), cpu_seconds(pid));
    let window = Instant::now();
    let mut peak_rss = 0;
    while window.elapsed() < steady {
        peak_rss = peak_rss.max(rss_kib(pid).0);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let minutes = window.elapsed().as_secs_f64() / 60.0;
    let api = api_delta(&api_before, &cluster.emulator.stats());
    let graph = graph_requests_since(&cluster, graph_from);
    let (rss, hwm) = rss_kib(pid);
    let api_total: u64 = api.values().sum();
    let graph_total: u64 = graph.values().sum();
    println!("steady state over {:.1} min:", minutes);
    println!(
        "  operator RSS {:.1} MiB (peak in window {:.1} MiB, peak during setup {:.1} MiB, VmHWM {:.1} MiB)",
        rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        peak_setup_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("  operator CPU {:.2} s/min", (cpu_seconds(pid) - cpu_before) / minutes);
    println!("  API-server requests {:.1}/min: {api:?}", api_total as f64 / minutes);
    println!(
        "  Graph requests {:.1}/min; tenants read: {} of {tenants}; per tenant: {graph:?}",
        graph_total as f64 / minutes,
        graph.keys().filter(|k| k.as_str() != "(token)").count()
    );
    println!("  phases at the end: {:?}", phases(&runs).await);
    println!(
        "SUMMARY runs={total_runs} tenants={tenants} rss_mib={:.1} api_per_min={:.1} graph_per_min={:.1} \
         tenants_read={}",
        rss as f64 / 1024.0,
        api_total as f64 / minutes,
        graph_total as f64 / minutes,
        graph.keys().filter(|k| k.as_str() != "(token)").count()
    );
    drop(operator);
}
