//! Engine benchmark (`cargo bench -p restore-core --bench engine`): normalize + diff throughput, and
//! the request count and wall time of a 1,000-item preview (and its execution) against the in-memory tenant.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use restore_core::canonical::canonical_json;
use restore_core::catalog::item_type;
use restore_core::engine::diff::{changed_paths, unified_diff};
use restore_core::engine::mapping::IdNames;
use restore_core::engine::normalize::{backup_document, normalize, project_onto};
use restore_core::engine::snapshot::object_path;
use restore_core::tenant::TenantPort;
use serde_json::{Value, json};
use support::seed::*;
use support::*;

const ITEMS: usize = 1000;

fn rate(count: f64, elapsed: Duration) -> f64 {
    count / elapsed.as_secs_f64()
}

async fn normalize_and_diff(tenant: &FakeTenant) {
    let backup = capture(tenant).await;
    let names = IdNames::from_backup(&backup.items);
    // The live side: each object re-read whole, with a drifted description on every other one.
    let mut pairs: Vec<(Option<&'static restore_core::catalog::ItemType>, Value, Value)> = Vec::new();
    for (i, item) in backup.items.iter().enumerate() {
        let t = item_type(&item.item_type);
        let mut live = match t {
            Some(t) => tenant.get(&object_path(t, &item.id, true)).await.unwrap().unwrap_or(Value::Null),
            None => Value::Null,
        };
        if i % 2 == 0 && live.is_object() {
            live["description"] = json!(format!("drifted {i}"));
        }
        pairs.push((t, backup_document(item, true), live));
    }
    let bytes: usize = pairs.iter().map(|(_, d, l)| canonical_json(d).len() + canonical_json(l).len()).sum();
    let rounds = 5;
    let mut changed = 0usize;
    let start = Instant::now();
    for _ in 0..rounds {
        for (t, desired_doc, live) in &pairs {
            let desired = normalize(*t, desired_doc, &names);
            let current = project_onto(&normalize(*t, live, &names), &desired);
            let paths = changed_paths(&current, &desired);
            let diff = unified_diff(Some(&current), &desired);
            changed += paths.len() + usize::from(!diff.is_empty());
        }
    }
    let elapsed = start.elapsed();
    let items = (pairs.len() * rounds) as f64;
    println!("normalize + diff: {} item pairs x {rounds} rounds in {:.1} ms", pairs.len(), elapsed.as_secs_f64() * 1e3);
    println!(
        "  throughput: {:.0} items/s, {:.1} MB/s of canonical JSON (both sides, {:.2} MB per round); {} changes seen",
        rate(items, elapsed),
        rate((bytes * rounds) as f64, elapsed) / 1e6,
        bytes as f64 / 1e6,
        changed / rounds
    );
}

async fn preview_and_execute(source: &FakeTenant) {
    let backup = capture(source).await;
    let scope = scope_all(&backup);

    // Same-tenant preview of a drifted tenant.
    for (i, item) in backup.items.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        if let (Some(t), true) = (item_type(&item.item_type), item.resource.get("description").is_some()) {
            source.edit(t.collection, &item.id, |o| o["description"] = json!(format!("drift {i}")));
        }
    }
    source.reset_counters();
    let start = Instant::now();
    let assessment = preview(source, &scope).await;
    let elapsed = start.elapsed();
    let r = assessment.report.requests;
    println!(
        "preview of {} items (same tenant, {} to update): {:.1} ms",
        backup.items.len(),
        assessment.report.counts.update,
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "  Graph requests: {} ({} collection listings, {} get_many calls carrying {} paths = {} $batch requests of 20); \
         the fake counted {} (listings paged by 100)",
        r.graph_requests(),
        r.lists,
        r.get_many_calls,
        r.batched_paths,
        r.batch_requests,
        source.requests()
    );

    // Cross-tenant preview and execution into an empty tenant.
    let target = FakeTenant::new("bench-target");
    seed_groups(&target);
    let start = Instant::now();
    let assessment = preview(&target, &scope).await;
    let preview_time = start.elapsed();
    target.reset_counters();
    let start = Instant::now();
    let executor = execute(&target, &scope, &assessment).await;
    let exec_time = start.elapsed();
    let facts = executor.facts();
    let progress_bytes = serde_json::to_string(executor.progress()).map(|s| s.len()).unwrap_or(0);
    let report_bytes = serde_json::to_string(&assessment.report).map(|s| s.len()).unwrap_or(0);
    println!(
        "  sizes: preview report {:.0} KiB of JSON, progress record {:.0} KiB after the run",
        report_bytes as f64 / 1024.0,
        progress_bytes as f64 / 1024.0
    );
    println!(
        "cross-tenant: preview {:.1} ms ({} Graph requests); execution of {} steps {:.1} ms, {} writes, {} requests in all, \
         {} created",
        preview_time.as_secs_f64() * 1e3,
        assessment.report.requests.graph_requests(),
        facts.total_steps,
        exec_time.as_secs_f64() * 1e3,
        target.writes(),
        target.requests(),
        facts.counts.created
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    runtime.block_on(async {
        let tenant = FakeTenant::new("bench-source");
        let seeded = seed_tenant(&tenant, ITEMS);
        println!("restore-core engine benchmark: {} policies + 4 foundations", seeded.len());
        normalize_and_diff(&tenant).await;
        preview_and_execute(&tenant).await;
    });
}
