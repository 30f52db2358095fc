//! Throughput of the emulator through kube-rs over loopback HTTP: creates, paged lists and
//! watch delivery. Prints figures; no thresholds (machines are shared and noisy).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let objects: usize = std::env::var("BENCH_OBJECTS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let emu = Emulator::start(EmulatorConfig::default()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(emu.client()?, "default");

    let started = Instant::now();
    for i in 0..objects {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"n": (i % 10).to_string()}}, "data": {"k": "v"}}),
        )?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    let create = started.elapsed();
    println!("create: {objects} ConfigMaps in {:.2?} ({:.0}/s)", create, objects as f64 / create.as_secs_f64());

    let started = Instant::now();
    let mut pages = 0;
    let mut seen = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = cms.list(&params).await?;
        pages += 1;
        seen += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    println!("paged list: {seen} objects in {pages} pages of 500 in {:.2?}", started.elapsed());

    let started = Instant::now();
    let selected = cms.list(&ListParams::default().labels("n=3")).await?;
    println!("label-selected list: {} of {objects} in {:.2?}", selected.items.len(), started.elapsed());

    let rv = cms.list(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap_or_default();
    let stream = cms.watch(&WatchParams::default().timeout(30), &rv).await?;
    futures::pin_mut!(stream);
    let rounds = 200;
    let mut total = Duration::ZERO;
    for i in 0..rounds {
        let sent = Instant::now();
        cms.patch("cm-00000", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": i.to_string()}}))).await?;
        loop {
            if let Some(WatchEvent::Modified(_)) = stream.try_next().await? {
                break;
            }
        }
        total += sent.elapsed();
    }
    println!("patch + watch delivery: {rounds} rounds, mean {:.2?} per round trip", total / rounds);
    Ok(())
}
