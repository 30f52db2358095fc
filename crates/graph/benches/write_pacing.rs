//! Measures write pacing against the simulator's Intune write limit: a burst of creates on one
//! tenant, the same burst on three tenants at once, and a restart in the middle of a window.
//!
//! The floor: the simulator admits at most `B` writes in any sliding window of `W` seconds
//! (per app per tenant). Writes `i` and `i + B` must therefore arrive at least `W` apart, so
//! `N` writes need at least `(ceil(N / B) - 1) * W` between the first and the last arrival.
//! Targets (issue 17, printed, never asserted): within 1.05 × the floor with zero 429s; three
//! tenants finish in about one tenant's time (their budgets are separate); after a restart no
//! window holds more than `B` writes. Run with `cargo bench -p restore-graph --bench write_pacing`;
//! override with PACING_WRITES, PACING_BUDGET, PACING_WINDOW_SECS, PACING_CONCURRENCY, PACING_TENANTS.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use graph_sim::{AppCredential, SimConfig, SimHandle, ThrottleConfig};
use restore_core::tenant::TenantPort;
use restore_graph::{Credentials, GraphClient, GraphOptions, GraphStats, SecretString, WriteBudgets};
use serde_json::json;
use support::{CLIENT_ID, SECRET, TENANT, simulator, spec};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Default options, with the loopback simulator explicitly allowed as an endpoint.
fn loopback_options() -> GraphOptions {
    GraphOptions {
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}

/// A client of `tenant` on `sim` pacing with `budgets`.
fn client(sim: &SimHandle, tenant: &str, budget: u32, window: u32, budgets: &WriteBudgets) -> GraphClient {
    let mut spec = spec(sim, budget, window);
    spec.tenant_id = tenant.to_string();
    let credentials = Credentials::ClientSecret(SecretString::new(SECRET));
    GraphClient::new_shared(&spec, credentials, loopback_options(), GraphStats::new(), budgets).expect("client builds")
}

/// `writes` creates through `client` from `concurrency` callers at once.
async fn burst(client: &GraphClient, writes: u64, concurrency: u64, label: &str) {
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let label = label.to_string();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < writes {
                let body = json!({
                    "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
                    "displayName": format!("{label} {i}"),
                    "omaSettings": [],
                });
                client.create("deviceManagement/deviceConfigurations", &body).await.expect("create succeeds");
                i += concurrency;
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker finishes");
    }
}

/// The most writes of `tenant` the simulator received in any window of `window`.
fn busiest_window(sim: &SimHandle, tenant: &str, window: Duration) -> usize {
    let arrivals: Vec<Duration> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant))
        .map(|r| r.at)
        .collect();
    (0..arrivals.len())
        .map(|i| arrivals[i..].iter().take_while(|t| **t - arrivals[i] < window).count())
        .max()
        .unwrap_or(0)
}

fn floor(writes: u64, budget: u32, window: u32) -> Duration {
    Duration::from_secs(writes.div_ceil(u64::from(budget)).saturating_sub(1) * u64::from(window))
}

fn ratio(elapsed: Duration, floor: Duration) -> f64 {
    if floor.is_zero() { 1.0 } else { elapsed.as_secs_f64() / floor.as_secs_f64() }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let writes = env_or("PACING_WRITES", 300);
    let budget = env_or("PACING_BUDGET", 100) as u32;
    let window = env_or("PACING_WINDOW_SECS", 20) as u32;
    let concurrency = env_or("PACING_CONCURRENCY", 4).max(1);
    let tenants = env_or("PACING_TENANTS", 3).max(1);
    let window_d = Duration::from_secs(u64::from(window));
    let throttle = ThrottleConfig { writes: budget, window: window_d };
    let floor = floor(writes, budget, window);
    println!("write pacing: {writes} creates, budget {budget} writes / {window} s, {concurrency} concurrent callers");
    println!("floor (ceil({writes}/{budget}) - 1) x {window} s = {:.1} s", floor.as_secs_f64());

    // 1. One tenant.
    let sim = simulator(SimConfig { throttle: Some(throttle), ..SimConfig::default() }).await;
    let one = client(&sim, TENANT, budget, window, &WriteBudgets::default());
    one.verify().await.expect("token and first read");
    let started = Instant::now();
    burst(&one, writes, concurrency, "Bench").await;
    let elapsed = started.elapsed();
    let snap = one.stats().snapshot();
    println!(
        "one tenant: {:.2} s, {:.3} x the floor (target <= 1.050); 429 answers {} (client saw {}); pacing waits {} totalling {:.1} s; busiest {window} s window {} writes",
        elapsed.as_secs_f64(),
        ratio(elapsed, floor),
        sim.throttled_count(),
        snap.count("POST", "429"),
        snap.pacing_waits,
        snap.pacing_wait_seconds,
        busiest_window(&sim, TENANT, window_d),
    );

    // 2. Several tenants at once, one shared set of budgets as in the operator.
    let sim = simulator(SimConfig { throttle: Some(throttle), ..SimConfig::default() }).await;
    let budgets = WriteBudgets::default();
    let mut clients = Vec::new();
    for t in 0..tenants {
        let tenant = format!("{t:08}-2222-3333-4444-555555555555");
        sim.add_tenant(&tenant);
        sim.register_app(&tenant, CLIENT_ID, AppCredential::Secret(SECRET.into())).expect("app registered");
        let client = client(&sim, &tenant, budget, window, &budgets);
        client.verify().await.expect("token and first read");
        clients.push(client);
    }
    let started = Instant::now();
    let runs: Vec<_> = clients
        .iter()
        .map(|c| {
            let c = c.clone();
            tokio::spawn(async move { burst(&c, writes, concurrency, "Parallel").await })
        })
        .collect();
    for run in runs {
        run.await.expect("a tenant's burst finishes");
    }
    let elapsed = started.elapsed();
    println!(
        "{tenants} tenants at once ({} writes): {:.2} s, {:.3} x one tenant's floor; 429 answers {}",
        writes * tenants,
        elapsed.as_secs_f64(),
        ratio(elapsed, floor),
        sim.throttled_count(),
    );

    // 3. A restart right after a whole budget was spent: the new process's bucket starts empty.
    for (label, budgets) in [
        ("restart, bucket starting empty", WriteBudgets::after_restart()),
        ("restart, bucket starting full (before)", WriteBudgets::default()),
    ] {
        let sim = simulator(SimConfig { throttle: Some(throttle), ..SimConfig::default() }).await;
        let first_life = client(&sim, TENANT, budget, window, &WriteBudgets::default());
        burst(&first_life, u64::from(budget), concurrency, "Before").await;
        let restarted = client(&sim, TENANT, budget, window, &budgets);
        let started = Instant::now();
        burst(&restarted, u64::from(budget), concurrency, "After").await;
        println!(
            "{label}: {budget} writes, then {budget} more after the restart in {:.2} s; 429 answers {}; busiest {window} s window {} writes (budget {budget})",
            started.elapsed().as_secs_f64(),
            sim.throttled_count(),
            busiest_window(&sim, TENANT, window_d),
        );
    }
}
