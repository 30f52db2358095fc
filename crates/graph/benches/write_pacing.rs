//! Measures write pacing: a burst of creates through a `GraphClient` against the simulator's
//! Intune write limit, printing elapsed time, 429s and the ratio to the shortest possible time.
//!
//! The floor: the simulator admits at most `B` writes in any sliding window of `W` seconds
//! (per app per tenant). Writes `i` and `i + B` must therefore arrive at least `W` apart, so
//! `N` writes need at least `(ceil(N / B) - 1) * W` between the first and the last arrival.
//! For N = 300, B = 100, W = 20 s that is 40 s; the target is at most 1.1 × 40 s = 44 s with
//! zero 429s. Run with `cargo bench -p restore-graph --bench write_pacing`; override with the
//! environment variables PACING_WRITES, PACING_BUDGET, PACING_WINDOW_SECS, PACING_CONCURRENCY.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use graph_sim::{SimConfig, ThrottleConfig};
use restore_core::tenant::TenantPort;
use restore_graph::{Credentials, GraphClient, GraphOptions, SecretString};
use serde_json::json;
use support::{SECRET, TENANT, simulator, spec};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

    let sim = simulator(SimConfig {
        throttle: Some(ThrottleConfig { writes: budget, window: Duration::from_secs(u64::from(window)) }),
        ..SimConfig::default()
    })
    .await;
    let credentials = Credentials::ClientSecret(SecretString::new(SECRET));
    let client = GraphClient::new(&spec(&sim, budget, window), credentials, loopback_options()).expect("client builds");
    client.verify().await.expect("token and first read");

    let floor = Duration::from_secs(writes.div_ceil(u64::from(budget)).saturating_sub(1) * u64::from(window));
    println!("write pacing: {writes} creates, budget {budget} writes / {window} s, {concurrency} concurrent callers");
    println!("floor (ceil({writes}/{budget}) - 1) x {window} s = {:.1} s", floor.as_secs_f64());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while i < writes {
                let body = json!({
                    "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
                    "displayName": format!("Bench {i}"),
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
    let elapsed = started.elapsed();
    let snap = client.stats().snapshot();
    let throttled = sim.throttled_count();
    let ratio = if floor.is_zero() { 1.0 } else { elapsed.as_secs_f64() / floor.as_secs_f64() };
    println!("elapsed {:.2} s; ratio to floor {ratio:.3} (target <= 1.100)", elapsed.as_secs_f64());
    println!(
        "429 answers: {throttled} (client saw {}); pacing waits {} totalling {:.1} s; retries {}",
        snap.count("POST", "429"),
        snap.pacing_waits,
        snap.pacing_wait_seconds,
        snap.retries
    );
    let created = sim.objects(TENANT, "deviceManagement/deviceConfigurations").expect("tenant exists").len();
    println!("objects created: {created}");
    let ok = throttled == 0 && ratio <= 1.1 && created as u64 == writes;
    println!("result: {}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}

/// Default options, with the loopback simulator explicitly allowed as an endpoint.
fn loopback_options() -> GraphOptions {
    GraphOptions {
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}
