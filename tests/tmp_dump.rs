mod sim_support;
use restore_core::api::ScopeSpec;
use restore_core::engine::scope::resolve_scope_taking;
#[tokio::test(flavor = "multi_thread")]
async fn dump() {
    let (_sim, tenant, client, mut backup) = sim_support::backed_up(9950).await;
    std::fs::write("/tmp/captured.json", serde_json::to_vec(&backup.items).unwrap()).unwrap();
    let scope = resolve_scope_taking(&ScopeSpec::default(), &mut backup).unwrap();
    let snap = restore_core::engine::snapshot::take_snapshot(&client, &scope, &tenant.tenant_id).await.unwrap();
    let live: Vec<&serde_json::Value> = snap.live.values().collect();
    std::fs::write("/tmp/live.json", serde_json::to_vec(&live).unwrap()).unwrap();
}
