//! DESIGN §2 rules 10–11 as the executor owns them: an id recorded for a created object is written to
//! only when it is that item's object, and a create adopts only what the run itself would have made.

mod support;

use restore_core::api::ItemOutcome;
use restore_core::engine::execute::{Executor, ProgressRecord, StepStatus};
use restore_core::engine::plan::StepKind;
use serde_json::json;
use support::seed::*;
use support::*;

/// The single policy of a one-policy backup restored into a tenant holding only its groups.
async fn one_policy_run() -> (restore_core::engine::scope::ResolvedScope, FakeTenant, restore_core::engine::Assessment)
{
    let (_source, _backup, scope) = seeded("source", 1).await;
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    (scope, target, assessment)
}

#[tokio::test]
async fn rule_10_a_recorded_created_id_is_written_to_only_when_it_is_that_items_object() {
    let (scope, target, assessment) = one_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let mut executor = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    // Run until the policy (the item with an Assign step) has been created.
    let policy = plan.steps().iter().find(|s| s.kind == StepKind::Assign).unwrap().item.clone();
    loop {
        let done = executor.next_step(&target).await.unwrap().unwrap();
        if done.step.item == policy && done.step.kind == StepKind::Create {
            break;
        }
    }
    let collection = plan.item(&policy).unwrap().item_type.collection;
    let decoy =
        target.insert(collection, json!({"displayName": "Unrelated production policy", "roleScopeTagIds": ["0"]}));
    // The record (as a forged ConfigMap would hand it back) names the decoy as the created object.
    let mut record = executor.progress().clone();
    for step in record.steps.iter_mut().filter(|s| s.item == policy && s.created_id.is_some()) {
        step.created_id = Some(decoy.clone());
    }
    target.reset_counters();
    let mut resumed = Executor::new(plan, record).unwrap();
    let facts = resumed.run_to_end(&target).await.unwrap();
    let writes = target.write_calls();
    assert!(writes.iter().all(|c| !format!("{c:?}").contains(&decoy)), "written to the decoy: {writes:?}");
    let result = facts.results.iter().find(|r| r.item == policy).expect("the policy's outcome");
    assert_eq!(result.outcome, ItemOutcome::Failed);
    assert!(result.message.as_deref().unwrap_or_default().contains("Unrelated production policy"), "{result:?}");
}

#[tokio::test]
async fn finding_7_a_create_does_not_adopt_an_object_someone_else_assigned() {
    let (scope, target, assessment) = one_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let policy = plan.steps().iter().find(|s| s.kind == StepKind::Assign).unwrap().item.clone();
    // After the preview someone else creates exactly the object this run would create (another
    // run of the same plan, stopped after its create) and assigns it elsewhere.
    let mut other = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    loop {
        let done = other.next_step(&target).await.unwrap().unwrap();
        if done.step.item == policy && done.step.kind == StepKind::Create {
            break;
        }
    }
    let collection = plan.item(&policy).unwrap().item_type.collection;
    let foreign = target.objects(collection)[0]["id"].as_str().unwrap().to_string();
    let finance = assignment(&target, GROUP_FINANCE, false);
    target.edit(collection, &foreign, |o| o["assignments"] = json!([finance]));
    target.reset_counters();
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let mut create = None;
    while let Some(done) = executor.next_step(&target).await.unwrap() {
        if done.step.item == policy && done.step.kind == StepKind::Create {
            create = Some(done.status);
        }
    }
    assert_eq!(create, Some(StepStatus::Drifted), "the create itself refuses to adopt it");
    let facts = executor.facts();
    let result = facts.results.iter().find(|r| r.item == policy).expect("the policy's outcome");
    assert_eq!(result.outcome, ItemOutcome::Drifted, "{result:?}");
    let writes = target.write_calls();
    assert!(writes.iter().all(|c| !format!("{c:?}").contains(&foreign)), "{writes:?}");
    assert_eq!(target.objects(collection).len(), 1, "nothing created beside it");
}

#[tokio::test]
async fn finding_7_a_create_adopts_its_own_interrupted_create_and_finishes_it() {
    // What this run's create leaves before its assignments are written, as the tenant shows it:
    // no assignments (an empty list, or none at all).
    for absent in [false, true] {
        let (scope, target, assessment) = one_policy_run().await;
        let plan = plan_from_stored_report(&scope, &assessment);
        let policy = plan.steps().iter().find(|s| s.kind == StepKind::Assign).unwrap().item.clone();
        let mut executor = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
        let before_create = loop {
            let record = executor.progress().clone();
            let done = executor.next_step(&target).await.unwrap().unwrap();
            if done.step.item == policy && done.step.kind == StepKind::Create {
                break record;
            }
        };
        let collection = plan.item(&policy).unwrap().item_type.collection;
        let id = target.objects(collection)[0]["id"].as_str().unwrap().to_string();
        target.edit(collection, &id, |o| {
            if absent {
                o.as_object_mut().unwrap().remove("assignments");
            } else {
                o["assignments"] = json!([]);
            }
        });
        // The create's record was lost: the resumed run finds the object by identity.
        let mut resumed = Executor::new(plan, before_create).unwrap();
        let mut statuses = Vec::new();
        while let Some(done) = resumed.next_step(&target).await.unwrap() {
            if done.step.item == policy {
                statuses.push((done.step.kind, done.status));
            }
        }
        assert_eq!(statuses[0], (StepKind::Create, StepStatus::AlreadyDone), "absent={absent}: {statuses:?}");
        assert!(statuses.contains(&(StepKind::Assign, StepStatus::Written)), "{statuses:?}");
        assert_eq!(resumed.facts().counts.problems(), 0, "{:?}", resumed.facts().results);
        assert_eq!(target.objects(collection).len(), 1, "no duplicate");
    }
}

#[tokio::test]
async fn rule_6_an_execution_is_finished_only_when_every_step_of_the_plan_is_done() {
    let (scope, target, assessment) = one_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    assert!(plan.steps().len() > 1, "a plan of several steps");
    let mut executor = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    executor.next_step(&target).await.unwrap().unwrap();
    assert!(!executor.is_finished() && !executor.facts().finished, "one step of {}", plan.steps().len());
    executor.run_to_end(&target).await.unwrap();
    assert!(executor.is_finished() && executor.facts().finished);
}

#[test]
fn rule_6_only_a_tenant_interruption_of_an_execution_is_transient() {
    use restore_core::engine::execute::ExecError;
    use restore_core::tenant::{TenantError, TenantErrorKind};
    let interrupted =
        ExecError::Tenant { step: "s1".into(), source: TenantError::new(TenantErrorKind::Unavailable, "503") };
    assert!(interrupted.is_transient());
    let foreign = ExecError::ForeignProgress { expected: "sha256:a".into(), found: "sha256:b".into() };
    assert!(!foreign.is_transient(), "a record of another preview does not pass with time");
    assert!(!ExecError::UnknownStep("s9".into()).is_transient());
}

#[test]
fn finding_1_a_progress_records_digest_covers_every_step_it_holds() {
    let mut record = ProgressRecord::new("sha256:preview");
    let empty = record.digest();
    assert!(empty.starts_with("sha256:"), "{empty}");
    record.steps.push(restore_core::engine::execute::StepRecord {
        step: "s1".into(),
        item: "policy-1".into(),
        status: StepStatus::Written,
        created_id: Some("id-1".into()),
        message: None,
    });
    assert_ne!(record.digest(), empty, "a step more, another digest");
    assert_eq!(record.digest(), record.digest_of_first(1));
}

#[tokio::test]
async fn rule_6_a_write_graph_refuses_fails_its_item_and_the_execution_goes_on() {
    let (scope, target, assessment) = one_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let policy = plan.steps().iter().find(|s| s.kind == StepKind::Assign).unwrap().item.clone();
    target.refuse_creates_in(plan.item(&policy).unwrap().item_type.collection);
    let mut executor = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    // A refusal (400) is the item's failure, not an interruption to retry: no step returns an error.
    let mut statuses = Vec::new();
    while let Some(done) = executor.next_step(&target).await.expect("a refused write is not an interruption") {
        statuses.push((done.step.item.clone(), done.step.kind, done.status));
    }
    assert!(statuses.contains(&(policy.clone(), StepKind::Create, StepStatus::Failed)), "{statuses:?}");
    assert!(statuses.contains(&(policy.clone(), StepKind::Assign, StepStatus::NotRun)), "{statuses:?}");
    let assign = executor.progress().steps.iter().find(|s| s.item == policy && s.status == StepStatus::NotRun);
    assert_eq!(assign.unwrap().message.as_deref(), Some("not run: the item failed earlier"));
    let facts = executor.facts();
    assert!(facts.finished, "every step of the plan was taken");
    let result = facts.results.iter().find(|r| r.item == policy).expect("the policy's outcome");
    assert_eq!(result.outcome, ItemOutcome::Failed);
    assert!(result.message.as_deref().unwrap_or_default().contains("Graph refused the write"), "{result:?}");
}

#[tokio::test]
async fn rule_6_an_update_and_an_assignment_count_as_one_write_each() {
    let (scope, tenant, assessment, _collection, _id) = hand_changed_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let mut written = Vec::new();
    while let Some(done) = executor.next_step(&tenant).await.unwrap() {
        if done.status == StepStatus::Written {
            written.push((done.step.kind, done.writes));
        }
    }
    assert_eq!(written, vec![(StepKind::Update, 1), (StepKind::Assign, 1)]);
    assert_eq!(tenant.writes(), 2);
}

#[tokio::test]
async fn rule_6_a_create_counts_as_one_write_of_its_step() {
    let (scope, target, assessment) = one_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let mut creates = 0;
    while let Some(done) = executor.next_step(&target).await.unwrap() {
        if done.step.kind == StepKind::Create {
            assert_eq!(done.writes, 1, "{:?} wrote once", done.step);
            creates += 1;
        }
    }
    assert!(creates > 0);
}

#[tokio::test]
async fn execution_facts_list_failed_items_before_drifted_ones() {
    let (_source, _backup, scope) = seeded("source", 2).await;
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let policies: Vec<String> =
        plan.steps().iter().filter(|s| s.kind == StepKind::Assign).map(|s| s.item.clone()).collect();
    assert!(policies.len() >= 2, "two policies: {policies:?}");
    // The first policy in restore order drifts (someone made two objects of its name), the last fails.
    let (first, last) = (plan.item(&policies[0]).unwrap(), plan.item(policies.last().unwrap()).unwrap());
    let mut twin = first.backup.resource.clone();
    twin.as_object_mut().unwrap().remove("id");
    for _ in 0..2 {
        target.insert(first.item_type.collection, twin.clone());
    }
    target.refuse_creates_in(last.item_type.collection);
    let mut executor = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    let facts = executor.run_to_end(&target).await.unwrap();
    let outcomes: Vec<ItemOutcome> = facts.results.iter().map(|r| r.outcome).collect();
    assert!(outcomes.contains(&ItemOutcome::Drifted) && outcomes.contains(&ItemOutcome::Failed), "{facts:?}");
    let first_drifted = outcomes.iter().position(|o| *o == ItemOutcome::Drifted).unwrap();
    let last_failed = outcomes.iter().rposition(|o| *o == ItemOutcome::Failed).unwrap();
    assert!(last_failed < first_drifted, "every failed item before the drifted ones: {outcomes:?}");
}

/// A one-policy tenant to be restored onto itself, previewed after the policy's description and
/// assignments were changed by hand: (scope, tenant, assessment, the policy's collection and id).
async fn hand_changed_policy_run()
-> (restore_core::engine::scope::ResolvedScope, FakeTenant, restore_core::engine::Assessment, &'static str, String) {
    let (tenant, _backup, scope) = seeded("tenant", 1).await;
    let collection = col("deviceConfiguration");
    let id = tenant.id_named(collection, "Win10 custom 00");
    let finance = assignment(&tenant, GROUP_FINANCE, false);
    tenant.edit(collection, &id, |o| {
        o["description"] = json!("changed by hand");
        o["assignments"] = json!([finance]);
    });
    let assessment = preview(&tenant, &scope).await;
    (scope, tenant, assessment, collection, id)
}

#[tokio::test]
async fn rule_2_a_drift_restore_writes_an_object_left_as_the_preview_saw_it_back_to_the_backup() {
    let (scope, tenant, assessment, collection, id) = hand_changed_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    assert!(plan.steps().iter().any(|s| s.kind == StepKind::Update), "{:?}", plan.steps());
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let facts = executor.run_to_end(&tenant).await.unwrap();
    assert!(facts.results.is_empty(), "nothing drifted or failed: {:?}", facts.results);
    let policy = tenant.objects(collection).into_iter().find(|o| o["id"] == id.as_str()).unwrap();
    assert_eq!(policy["description"], "OMA settings");
    let pilot = tenant.id_named(GROUPS, GROUP_PILOT);
    assert_eq!(policy["assignments"][0]["target"]["groupId"], pilot.as_str(), "{policy}");
}

#[tokio::test]
async fn rule_2_an_item_changed_since_the_preview_in_a_later_steps_concern_is_not_written_at_all() {
    let (scope, tenant, assessment, collection, id) = hand_changed_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let kinds: Vec<StepKind> = plan.steps().iter().map(|s| s.kind).collect();
    assert!(kinds.contains(&StepKind::Update) && kinds.contains(&StepKind::Assign), "{kinds:?}");
    // After the preview someone assigns the policy to everyone: its first step (the properties)
    // already sees that, so nothing of the item is written, not even the part that still matches.
    let everyone = assignment(&tenant, GROUP_ALL, false);
    tenant.edit(collection, &id, |o| o["assignments"] = json!([everyone]));
    tenant.reset_counters();
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let facts = executor.run_to_end(&tenant).await.unwrap();
    assert_eq!(tenant.write_calls(), Vec::new(), "no write to a half-drifted item");
    assert_eq!(facts.results.len(), 1, "{:?}", facts.results);
    assert_eq!(facts.results[0].outcome, ItemOutcome::Drifted);
    let message = facts.results[0].message.as_deref().unwrap_or_default();
    assert!(message.contains("(assignments[0].target.groupId)"), "names the changed path: {message}");
    let later: Vec<_> = executor.progress().steps.iter().filter(|s| s.status == StepStatus::NotRun).collect();
    assert!(!later.is_empty(), "the item's later steps are not run");
    assert!(later.iter().all(|s| s.message.as_deref() == Some("not run: the item drifted earlier")), "{later:?}");
    let policy = tenant.objects(collection).into_iter().find(|o| o["id"] == id.as_str()).unwrap();
    assert_eq!(policy["description"], "changed by hand");
}

#[tokio::test]
async fn rule_4_a_part_someone_already_put_back_since_the_preview_is_not_drift() {
    let (scope, tenant, assessment, collection, id) = hand_changed_policy_run().await;
    let plan = plan_from_stored_report(&scope, &assessment);
    // After the preview someone puts the assignments back as in the backup (not the description).
    let before = tenant.objects(collection).into_iter().find(|o| o["id"] == id.as_str()).unwrap();
    let backed_up = assignment(&tenant, GROUP_PILOT, true);
    assert_ne!(before["assignments"], json!([backed_up]), "previewed with other assignments");
    tenant.edit(collection, &id, |o| o["assignments"] = json!([backed_up]));
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let facts = executor.run_to_end(&tenant).await.unwrap();
    assert!(facts.results.is_empty(), "restored, not drifted: {:?}", facts.results);
    let policy = tenant.objects(collection).into_iter().find(|o| o["id"] == id.as_str()).unwrap();
    assert_eq!(policy["description"], "OMA settings");
}

#[tokio::test]
async fn rule_6_each_localized_message_put_back_counts_as_one_write() {
    let (tenant, _backup, scope) = seeded("tenant", 1).await;
    let collection = col("notificationTemplate");
    let id = tenant.id_named(collection, TEMPLATE);
    tenant.edit(collection, &id, |o| {
        o["localizedNotificationMessages"][0]["subject"] = json!("changed by hand");
        let mut german = o["localizedNotificationMessages"][0].clone();
        german["locale"] = json!("de-de");
        o["localizedNotificationMessages"].as_array_mut().unwrap().push(german);
    });
    let assessment = preview(&tenant, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let mut written = Vec::new();
    while let Some(done) = executor.next_step(&tenant).await.unwrap() {
        if done.status == StepStatus::Written {
            written.push((done.step.kind, done.writes));
        }
    }
    // One message differs (en-us); the extra one (de-de) is left, never deleted.
    assert_eq!(written, vec![(StepKind::SyncSubResource, 1)]);
    let template = tenant.objects(collection).into_iter().find(|o| o["id"] == id.as_str()).unwrap();
    assert_eq!(template["localizedNotificationMessages"][0]["subject"], "Your device is not compliant");
}

#[tokio::test]
async fn the_preview_summary_lists_each_item_that_changes_with_its_changed_fields() {
    let (_scope, _tenant, assessment, _collection, _id) = hand_changed_policy_run().await;
    let report = &assessment.report;
    let summary = report.summary_text();
    assert!(summary.starts_with(&format!("Preview {} for tenant tenant\n", report.digest())), "{summary}");
    let changing: Vec<&str> = summary.lines().filter(|l| l.starts_with("  ") && !l.contains(": ")).collect();
    assert_eq!(changing.len(), 1, "only the changed policy, not the unchanged foundations: {summary}");
    assert!(changing[0].contains("deviceConfiguration/Win10 custom 00 — "), "{summary}");
    assert!(changing[0].contains("description"), "with its changed fields: {summary}");
}

#[tokio::test]
async fn autopilot_assignments_are_added_one_at_a_time_never_replaced_through_assign() {
    let source = groups_only("source");
    let collection = restore_core::catalog::item_type("autopilotProfile").unwrap().collection;
    source.insert(
        collection,
        json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
            "displayName": "Kiosk Autopilot", "description": "", "roleScopeTagIds": ["0"],
            "assignments": [assignment(&source, GROUP_PILOT, false), assignment(&source, GROUP_ALL, false)]}),
    );
    let scope = scope_all(&capture(&source).await);
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    let executor = execute(&target, &scope, &assessment).await;
    let writes: Vec<String> = target.write_calls().iter().map(|c| format!("{c:?}")).collect();
    let added = writes.iter().filter(|w| w.starts_with("Create") && w.ends_with("/assignments\")")).count();
    assert_eq!(added, 2, "one POST per assignment: {writes:?}");
    assert!(writes.iter().all(|w| !w.ends_with("/assign\")")), "the assign action replaces the set: {writes:?}");
    let profile = target.objects(collection).remove(0);
    assert_eq!(profile["assignments"].as_array().map(Vec::len), Some(2));
    assert_eq!(executor.facts().counts.created, 1);
}

// ---- enrollment-configuration priorities: setPriority steps ------------------------------------

const STATUS_PAGE: &str = "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration";

/// A tenant holding only groups and status pages named `names`, prioritised in that order.
fn tenant_with_status_pages(tenant_id: &str, names: &[&str]) -> FakeTenant {
    let tenant = groups_only(tenant_id);
    for (n, name) in names.iter().enumerate() {
        tenant.insert(
            col("enrollmentConfiguration"),
            json!({"@odata.type": STATUS_PAGE, "displayName": name, "description": "", "roleScopeTagIds": ["0"],
                   "priority": n + 1, "showInstallationProgress": true}),
        );
    }
    tenant
}

/// The status pages' names in priority order.
fn status_page_order(tenant: &FakeTenant) -> Vec<String> {
    let mut pages: Vec<(i64, String)> = tenant
        .objects(col("enrollmentConfiguration"))
        .iter()
        .map(|o| (o["priority"].as_i64().unwrap(), o["displayName"].as_str().unwrap().to_string()))
        .collect();
    pages.sort();
    pages.into_iter().map(|(_, name)| name).collect()
}

fn set_priority_calls(tenant: &FakeTenant) -> usize {
    tenant.write_calls().iter().filter(|c| format!("{c:?}").contains("/setPriority")).count()
}

#[tokio::test]
async fn enrollment_configurations_created_into_an_empty_tenant_are_put_in_the_backups_order_after_every_other_write() {
    let source = tenant_with_status_pages("source", &["Zeta kiosks", "Alpha labs", "Mid office"]);
    let scope = scope_all(&capture(&source).await);
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    let executor = execute(&target, &scope, &assessment).await;
    assert_eq!(status_page_order(&target), ["Zeta kiosks", "Alpha labs", "Mid office"]);
    assert_eq!(executor.facts().counts.created, 3, "{:?}", executor.facts().results);
    let calls: Vec<String> = target.write_calls().iter().map(|c| format!("{c:?}")).collect();
    let first_priority = calls.iter().position(|c| c.contains("/setPriority")).expect("a setPriority was sent");
    assert!(calls[first_priority..].iter().all(|c| c.contains("/setPriority")), "after every other write: {calls:?}");
}

#[tokio::test]
async fn a_same_tenant_restore_puts_the_backups_order_back_though_its_own_set_priority_calls_renumber_the_list() {
    let tenant = tenant_with_status_pages("tenant", &["A", "B", "C", "D"]);
    let scope = scope_all(&capture(&tenant).await);
    // Reversed by hand: placing D last moves C to a number neither the preview saw nor planned.
    for (name, priority) in [("D", 1), ("C", 2), ("B", 3), ("A", 4)] {
        let id = tenant.id_named(col("enrollmentConfiguration"), name);
        tenant.edit(col("enrollmentConfiguration"), &id, |o| o["priority"] = json!(priority));
    }
    let assessment = preview(&tenant, &scope).await;
    tenant.reset_counters();
    let executor = execute(&tenant, &scope, &assessment).await;
    assert!(executor.facts().results.is_empty(), "nothing drifted or failed: {:?}", executor.facts().results);
    assert_eq!(status_page_order(&tenant), ["A", "B", "C", "D"]);
    assert!(set_priority_calls(&tenant) >= 2, "{:?}", tenant.write_calls());
}

#[tokio::test]
async fn rule_4_an_order_someone_else_changes_after_the_preview_is_drift_and_no_set_priority_is_sent() {
    let tenant = tenant_with_status_pages("tenant", &["X", "Y", "Z"]);
    let scope = scope_all(&capture(&tenant).await);
    let renumber = |order: [&str; 3]| {
        for (n, name) in order.iter().enumerate() {
            let id = tenant.id_named(col("enrollmentConfiguration"), name);
            tenant.edit(col("enrollmentConfiguration"), &id, |o| o["priority"] = json!(n + 1));
        }
    };
    renumber(["Z", "X", "Y"]);
    let assessment = preview(&tenant, &scope).await;
    renumber(["Y", "Z", "X"]);
    tenant.reset_counters();
    let executor = execute(&tenant, &scope, &assessment).await;
    assert_eq!(set_priority_calls(&tenant), 0, "{:?}", tenant.write_calls());
    assert!(executor.facts().counts.drifted >= 1, "{:?}", executor.facts().results);
    assert_eq!(status_page_order(&tenant), ["Y", "Z", "X"], "the other admin's order is left");
}

#[tokio::test]
async fn the_default_status_page_is_updated_in_place_and_never_given_a_priority() {
    let tenant = tenant_with_status_pages("tenant", &["Kiosks"]);
    let collection = col("enrollmentConfiguration");
    tenant.insert(
        collection,
        json!({"@odata.type": STATUS_PAGE, "displayName": "All users and all devices", "description": "",
               "roleScopeTagIds": ["0"], "priority": 0, "showInstallationProgress": true,
               "deviceEnrollmentConfigurationType": "windows10EnrollmentCompletionPageConfiguration"}),
    );
    let scope = scope_all(&capture(&tenant).await);
    let default = tenant.id_named(collection, "All users and all devices");
    tenant.edit(collection, &default, |o| o["showInstallationProgress"] = json!(false));
    let assessment = preview(&tenant, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let kinds: Vec<StepKind> = plan.steps().iter().map(|s| s.kind).collect();
    assert!(kinds.contains(&StepKind::Update), "{kinds:?}");
    assert!(!kinds.contains(&StepKind::SetPriority), "a default is never reordered: {kinds:?}");
    tenant.reset_counters();
    let executor = execute(&tenant, &scope, &assessment).await;
    assert!(executor.facts().results.is_empty(), "{:?}", executor.facts().results);
    let now = tenant.objects(collection).into_iter().find(|o| o["id"] == default.as_str()).unwrap();
    assert_eq!((now["showInstallationProgress"].clone(), now["priority"].clone()), (json!(true), json!(0)));
    assert_eq!(set_priority_calls(&tenant), 0);
}

/// Renumbers the status pages of `tenant` to `order` (1..n), as an admin dragging them would.
fn reorder_status_pages(tenant: &FakeTenant, order: &[&str]) {
    for (n, name) in order.iter().enumerate() {
        let id = tenant.id_named(col("enrollmentConfiguration"), name);
        tenant.edit(col("enrollmentConfiguration"), &id, |o| o["priority"] = json!(n + 1));
    }
}

#[tokio::test]
async fn a_configuration_the_restore_leaves_out_keeps_its_place_ahead_of_the_restored_ones() {
    // The descending pass places the last one first: an ascending pass alone leaves W behind A.
    let tenant = tenant_with_status_pages("tenant", &["W", "A", "B", "C"]);
    let backup = capture(&tenant).await;
    let spec: restore_core::api::ScopeSpec = serde_json::from_value(json!({"exclude": {"items": ["W"]}})).unwrap();
    let scope = restore_core::engine::scope::resolve_scope(&spec, &backup).unwrap();
    reorder_status_pages(&tenant, &["A", "B", "C", "W"]);
    let assessment = preview(&tenant, &scope).await;
    let executor = execute(&tenant, &scope, &assessment).await;
    assert!(executor.facts().results.is_empty(), "{:?}", executor.facts().results);
    assert_eq!(status_page_order(&tenant), ["W", "A", "B", "C"]);
}

#[tokio::test]
async fn a_configuration_made_after_the_backup_keeps_its_place_behind_the_restored_ones() {
    // The ascending pass after the descending one, in priority order (not the plan's name order):
    // descending twice leaves X between Mike and Alpha.
    let tenant = tenant_with_status_pages("tenant", &["Zeta", "Mike", "Alpha"]);
    let scope = scope_all(&capture(&tenant).await);
    tenant.insert(
        col("enrollmentConfiguration"),
        json!({"@odata.type": STATUS_PAGE, "displayName": "X", "description": "", "roleScopeTagIds": ["0"],
               "priority": 4, "showInstallationProgress": true}),
    );
    reorder_status_pages(&tenant, &["Mike", "Alpha", "X", "Zeta"]);
    let assessment = preview(&tenant, &scope).await;
    let executor = execute(&tenant, &scope, &assessment).await;
    assert!(executor.facts().results.is_empty(), "{:?}", executor.facts().results);
    assert_eq!(status_page_order(&tenant), ["Zeta", "Mike", "Alpha", "X"]);
}

#[tokio::test]
async fn finding_7_a_create_does_not_adopt_an_object_missing_what_its_create_body_carries() {
    let (_source, _backup, scope) = seeded("source", 4).await;
    let target = groups_only("target");
    let assessment = preview(&target, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let collection = col("settingsCatalogPolicy");
    let is_policy_create = |s: &&restore_core::engine::plan::PlanStep| {
        s.kind == StepKind::Create && plan.item(&s.item).is_some_and(|i| i.item_type.collection == collection)
    };
    let policy = plan.steps().iter().find(is_policy_create).unwrap().item.clone();
    // Another run of the same plan creates the policy; then someone empties its settings.
    let mut other = Executor::new(plan.clone(), ProgressRecord::new(&assessment.digest)).unwrap();
    loop {
        let done = other.next_step(&target).await.unwrap().unwrap();
        if done.step.item == policy && done.step.kind == StepKind::Create {
            break;
        }
    }
    let foreign = target.objects(collection)[0]["id"].as_str().unwrap().to_string();
    target.edit(collection, &foreign, |o| o["settings"] = json!([]));
    target.reset_counters();
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    let facts = executor.run_to_end(&target).await.unwrap();
    let result = facts.results.iter().find(|r| r.item == policy).expect("the policy's outcome");
    assert_eq!(result.outcome, ItemOutcome::Drifted, "{result:?}");
    assert!(target.write_calls().iter().all(|c| !format!("{c:?}").contains(&foreign)), "{:?}", target.write_calls());
    assert_eq!(target.objects(collection)[0]["settings"], json!([]));
}

#[tokio::test]
async fn a_drift_restore_plans_writes_only_for_the_parts_that_differ() {
    let (tenant, _backup, scope) = seeded("tenant", 1).await;
    let collection = col("deviceConfiguration");
    let id = tenant.id_named(collection, "Win10 custom 00");
    tenant.edit(collection, &id, |o| o["description"] = json!("changed by hand"));
    let assessment = preview(&tenant, &scope).await;
    let plan = plan_from_stored_report(&scope, &assessment);
    let kinds: Vec<StepKind> = plan.steps().iter().filter(|s| s.kind != StepKind::Verify).map(|s| s.kind).collect();
    assert_eq!(kinds, [StepKind::Update], "the assignments are as backed up: no assign step");
}

/// The kinds of the planned writes of the item named `name` (no verify step).
fn planned_writes(plan: &restore_core::engine::plan::ExecutionPlan, name: &str) -> Vec<(StepKind, Option<String>)> {
    plan.steps()
        .iter()
        .filter(|s| s.kind != StepKind::Verify)
        .filter(|s| plan.item(&s.item).is_some_and(|i| i.backup.display_name == name))
        .map(|s| (s.kind, s.sub_resource.clone()))
        .collect()
}

#[tokio::test]
async fn a_create_writes_each_part_once_and_plans_no_assignment_it_does_not_have() {
    let source = FakeTenant::new("source");
    seed::seed_tenant(&source, 4);
    let unassigned = source.id_named(col("deviceConfiguration"), "Win10 custom 00");
    source.edit(col("deviceConfiguration"), &unassigned, |o| o["assignments"] = json!([]));
    let scope = scope_all(&capture(&source).await);
    let target = groups_only("target");
    let plan = plan_from_stored_report(&scope, &preview(&target, &scope).await);
    assert_eq!(planned_writes(&plan, "Win10 custom 00"), [(StepKind::Create, None)], "no assign of an empty list");
    assert_eq!(
        planned_writes(&plan, "Edge baseline 03"),
        [(StepKind::Create, None), (StepKind::Assign, None)],
        "the settings go in the create body, never again as a sub-resource write"
    );
}

#[tokio::test]
async fn a_drift_restore_writes_the_part_that_changed_in_the_way_its_type_is_written() {
    let (tenant, _backup, scope) = seeded("tenant", 4).await;
    let catalog = tenant.id_named(col("settingsCatalogPolicy"), "Edge baseline 03");
    tenant.edit(col("settingsCatalogPolicy"), &catalog, |o| o["description"] = json!("changed by hand"));
    let compliance = tenant.id_named(col("compliancePolicy"), "Win10 compliance 02");
    tenant.edit(col("compliancePolicy"), &compliance, |o| {
        o["scheduledActionsForRule"][0]["scheduledActionConfigurations"][0]["gracePeriodHours"] = json!(99);
    });
    let plan = plan_from_stored_report(&scope, &preview(&tenant, &scope).await);
    assert_eq!(planned_writes(&plan, "Edge baseline 03"), [(StepKind::Replace, None)], "a settings policy is replaced");
    assert_eq!(
        planned_writes(&plan, "Win10 compliance 02"),
        [(StepKind::SyncSubResource, Some("scheduledActionsForRule".to_string()))],
        "only the changed sub-resource, not the properties"
    );

    let (tenant, _backup, scope) = seeded("tenant", 4).await;
    let compliance = tenant.id_named(col("compliancePolicy"), "Win10 compliance 02");
    tenant.edit(col("compliancePolicy"), &compliance, |o| o["description"] = json!("changed by hand"));
    let plan = plan_from_stored_report(&scope, &preview(&tenant, &scope).await);
    assert_eq!(planned_writes(&plan, "Win10 compliance 02"), [(StepKind::Update, None)], "not its unchanged rules");
}
