//! The wizard run in one process (the `preview` and `demo` commands: the driver over the in-memory
//! store) while it waits for a human: drift re-checks and expired previews.

mod sim_support;

use restore_core::api::Phase;
use restore_core::engine::analysis::PlannedAction;
use sim_support::{backed_up, fetcher, keys_with, local_run, objects_with, writes_to};

#[tokio::test]
async fn a_local_run_waiting_for_confirmation_reads_the_tenant_again_on_its_next_drive() {
    let (sim, tenant, client, backup) = backed_up(6).await;
    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("waiting", &tenant, &objects, &fetcher, &client);
    run.spec.dry_run = false;
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::AwaitingConfirmation);
    let first = run.digest().unwrap().to_string();
    assert!(keys_with(run.report().unwrap(), PlannedAction::Create).is_empty(), "the tenant is its own backup");
    sim_support::drift_four_ways(&sim, &tenant, &backup).await;

    // No store here knows when the tenant was last read: every drive re-checks it.
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::AwaitingConfirmation);
    assert_ne!(run.digest(), Some(first.as_str()), "the re-check read the drifted tenant");
    let creates = keys_with(run.report().unwrap(), PlannedAction::Create);
    assert_eq!(creates.len(), 1, "the policy deleted in the portal is planned back: {creates:?}");
    assert_eq!(writes_to(&sim, &tenant.tenant_id), 4, "only the portal's four edits were written");
}

#[tokio::test]
async fn a_local_run_whose_preview_expired_is_previewed_again_at_once_not_left_resting() {
    let (_sim, tenant, client, backup) = backed_up(2).await;
    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("expiring", &tenant, &objects, &fetcher, &client);
    run.spec.dry_run = false;
    run.spec.preview_ttl = "1m".into();
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::AwaitingConfirmation);
    let first = run.status.preview.clone().unwrap();
    run.clock().advance(61);
    let phase = run.drive(|_| {}).await.unwrap();
    assert_eq!(phase, Phase::AwaitingConfirmation, "{}", run.condition_message("Ready"));
    let again = run.status.preview.clone().unwrap();
    assert!(again.expires_at > first.expires_at, "a new preview with a new expiry: {again:?}");
}
