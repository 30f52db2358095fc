//! Issue 5's acceptance on the Graph simulator over real HTTP: the round trip after drift, the
//! cross-tenant restore (mapping by name; a missing group blocks), crash-resume at every write of a
//! 40-item run, and drift between preview and execution — through the Graph client, the wizard and the engine.

mod sim_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use restore_core::api::{Environment, ItemOutcome, OutcomeCounts, Phase, ScopeSpec, Severity};
use restore_core::backup::BackupSet;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::plan::{ExecutionPlan, PlanError};
use restore_core::engine::preview::PreviewReport;
use restore_core::engine::scope::{ResolvedScope, resolve_scope};
use restore_core::engine::{Assessment, EngineOptions, RestoreTarget, assess};
use restore_core::tenant::TenantPort;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{
    FILTER, GROUP_ALL, GROUP_FINANCE, GROUP_PILOT, GROUPS, PortalAdmin, SimTenant, TAG_BERLIN, TAG_PARIS, TEMPLATE,
};
use serde_json::{Value, json};
use sim_support::*;

// ---- Round trip -------------------------------------------------------------------------------

#[tokio::test]
async fn round_trip_backup_drift_preview_execute_equals_the_backup_and_a_second_preview_is_empty() {
    let (sim, tenant, client, backup) = backed_up(18).await;
    let added = drift_four_ways(&sim, &tenant, &backup).await;

    // The preview, made by the wizard, lists exactly the three changes the backup covers.
    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("round-trip", &tenant, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed);
    let report = run.report().unwrap().clone();
    let key = |type_name: &str, name: &str| item(&backup, type_name, name).key();
    assert_eq!(keys_with(&report, PlannedAction::Create), [key("compliancePolicy", "Win10 compliance 02")]);
    assert_eq!(
        keys_with(&report, PlannedAction::Update),
        [key("deviceConfiguration", "Win10 custom 00"), key("powerShellScript", "Set wallpaper 04")]
    );
    let changed = |name: &str| report.items.iter().find(|i| i.display_name == name).unwrap().changed_fields.clone();
    assert_eq!(changed("Win10 custom 00"), ["description", "omaSettings[0].value"]);
    assert_eq!(changed("Set wallpaper 04"), ["assignments[0].target.groupId"]);
    assert!(report.items.iter().all(|i| i.display_name != "Added after the backup"), "not in the backup: not listed");
    assert_eq!(report.blockers(), 0);

    // Approved with the printed digest through the wizard's gate, then executed.
    let operator_deletes_before = deletes(&sim);
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, "Contoso");
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Succeeded, "{}", run.condition_message("Ready"));
    let counts = &run.status.execution.as_ref().unwrap().counts;
    assert_eq!((counts.created, counts.updated, counts.drifted, counts.failed), (1, 2, 0, 0));

    // The tenant equals the backup for the restorable types; the addition stays (rule 7).
    let now = capture_tenant(&client, &tenant).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    assert!(now.items.iter().any(|i| i.id == added));
    assert_eq!(deletes(&sim), operator_deletes_before, "the restore sent no DELETE");

    // A second preview shows zero changes.
    let mut again = local_run("round-trip-again", &tenant, &objects, &fetcher, &client);
    assert_eq!(again.drive(|_| {}).await.unwrap(), Phase::Previewed);
    let counts = &again.report().unwrap().counts;
    assert_eq!(counts.changes(), 0, "{}", again.report().unwrap().summary_text());
}

fn deletes(sim: &graph_sim::SimHandle) -> usize {
    sim.request_log().iter().filter(|r| r.method == "DELETE").count()
}

// ---- Cross-tenant -----------------------------------------------------------------------------

/// A second tenant holding the sample's groups, scope tags and filter under other ids.
fn target_with_other_ids(sim: &graph_sim::SimHandle, groups: &[&str]) -> SimTenant {
    let target = SimTenant::create(sim, "fabrikam", "Fabrikam", Environment::Production).unwrap();
    sim.add_scope_tag("fabrikam", "Tokyo").unwrap(); // takes id 1, so Paris and Berlin get 2 and 3
    for tag in [TAG_PARIS, TAG_BERLIN] {
        sim.add_scope_tag("fabrikam", tag).unwrap();
    }
    sim.add_assignment_filter("fabrikam", FILTER, "windows10AndLater", "(device.osVersion -startsWith \"10.0.22\")")
        .unwrap();
    for group in groups {
        sim.add_group("fabrikam", group).unwrap();
    }
    target
}

fn id_named(sim: &graph_sim::SimHandle, tenant: &str, collection: &str, name: &str) -> String {
    let found: Vec<String> = sim
        .objects(tenant, collection)
        .unwrap()
        .into_iter()
        .filter(|o| o.get("displayName").or_else(|| o.get("name")).and_then(Value::as_str) == Some(name))
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(found.len(), 1, "one {collection} named {name}: {found:?}");
    found[0].clone()
}

#[tokio::test]
async fn cross_tenant_restore_maps_groups_scope_tags_and_filters_by_name() {
    let (sim, _source, _, backup) = backed_up(9).await;
    let target = target_with_other_ids(&sim, &GROUPS);
    for (collection, name) in [("groups", GROUP_PILOT), (col("scopeTag"), TAG_PARIS), (col("assignmentFilter"), FILTER)]
    {
        assert_ne!(id_named(&sim, "contoso", collection, name), id_named(&sim, "fabrikam", collection, name));
    }

    let client = target.client(&sim).unwrap();
    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("cross-tenant", &target, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed);
    let report = run.report().unwrap().clone();
    assert!(report.cross_tenant);
    let codes: Vec<(FindingCode, Severity)> = report.findings.iter().map(|f| (f.code, f.severity)).collect();
    assert!(codes.contains(&(FindingCode::CrossTenantRestore, Severity::Info)), "{codes:?}");
    assert!(codes.contains(&(FindingCode::ProductionTarget, Severity::Warning)), "{codes:?}");
    assert_eq!(report.blockers(), 0, "{}", report.summary_text());
    assert_eq!(report.counts.create, 1 + 9, "the template and the 9 restorable policies");

    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, "Fabrikam");
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Succeeded, "{}", run.condition_message("Ready"));

    // Every reference points at the target's object of the same name.
    let tid = |collection: &str, name: &str| id_named(&sim, "fabrikam", collection, name);
    let custom_id = tid(col("deviceConfiguration"), "Win10 custom 00");
    let custom = read_whole(&client, "deviceConfiguration", &custom_id).await.unwrap();
    assert_eq!(custom["roleScopeTagIds"], json!([tid(col("scopeTag"), TAG_PARIS)]));
    let target_of_assignment = &custom["assignments"][0]["target"];
    assert_eq!(target_of_assignment["groupId"], json!(tid("groups", GROUP_PILOT)));
    assert_eq!(
        target_of_assignment["deviceAndAppManagementAssignmentFilterId"],
        json!(tid(col("assignmentFilter"), FILTER))
    );
    let ios_id = tid(col("deviceConfiguration"), "iOS restrictions 01");
    let ios = read_whole(&client, "deviceConfiguration", &ios_id).await.unwrap();
    let groups: BTreeSet<String> = ios["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"]["groupId"].as_str().unwrap().into())
        .collect();
    assert_eq!(groups, BTreeSet::from([tid("groups", GROUP_ALL), tid("groups", GROUP_FINANCE)]));
    let compliance_id = tid(col("compliancePolicy"), "Win10 compliance 02");
    let compliance = read_whole(&client, "compliancePolicy", &compliance_id).await.unwrap();
    let actions = &compliance["scheduledActionsForRule"][0]["scheduledActionConfigurations"];
    assert_eq!(actions[1]["notificationTemplateId"], json!(tid(col("notificationTemplate"), TEMPLATE)));
    assert_eq!(
        sim.objects("fabrikam", col("administrativeTemplate")).unwrap().len(),
        1,
        "restored like the other policies"
    );
    let template_id = tid(col("notificationTemplate"), TEMPLATE);
    let messages_path = format!("{}/{template_id}/localizedNotificationMessages", col("notificationTemplate"));
    let messages = client.list(&messages_path).await.unwrap();
    assert_eq!((messages.len(), messages[0]["locale"].as_str()), (1, Some("en-us")));
    let posted =
        sim.request_log().iter().any(|r| r.method == "POST" && r.path.ends_with("/localizedNotificationMessages"));
    assert!(posted, "the template's message is added through its sub-collection");

    // The target now previews as unchanged.
    let mut again = local_run("cross-tenant-again", &target, &objects, &fetcher, &client);
    again.drive(|_| {}).await.unwrap();
    assert_eq!(again.report().unwrap().counts.changes(), 0, "{}", again.report().unwrap().summary_text());
}

#[tokio::test]
async fn cross_tenant_missing_group_is_a_blocker_and_nothing_is_written_even_when_approved() {
    let (sim, _source, _, backup) = backed_up(9).await;
    let target = target_with_other_ids(&sim, &[GROUP_ALL, GROUP_FINANCE]); // no "Pilot"
    let client = target.client(&sim).unwrap();
    let writes_before = writes_to(&sim, "fabrikam");

    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("missing-group", &target, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Blocked);
    let report = run.report().unwrap().clone();
    let missing: Vec<_> = report.findings.iter().filter(|f| f.code == FindingCode::MissingGroup).collect();
    assert!(!missing.is_empty());
    assert!(missing.iter().all(|f| f.severity == Severity::Blocker && f.message.contains(GROUP_PILOT)), "{missing:?}");
    assert_eq!(run.status.checks.as_ref().unwrap().findings[0].code, "MissingGroup", "most severe first");

    // Even a confirmation naming the report's digest is refused: the run stays blocked.
    approve(&mut run, &report.digest(), "Fabrikam");
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Blocked);
    assert!(run.status.confirmation.is_none());
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    assert!(matches!(ExecutionPlan::build(&scope, &report), Err(PlanError::Blocked(n)) if n as usize == missing.len()));
    assert_eq!(writes_to(&sim, "fabrikam"), writes_before, "nothing was written to the target");
}

// ---- Crash-resume -----------------------------------------------------------------------------

/// The 40-item backup (35 policies, the Default, Paris and Berlin scope tags, the filter and the
/// template) and a target simulator holding a drifted copy: Berlin and every third policy missing,
/// every third edited (properties, rules, apps, settings, a template message), every third unassigned.
async fn forty_item_target(backup: &BackupSet) -> (graph_sim::SimHandle, SimTenant) {
    let sim = quiet_simulator().await;
    let target = SimTenant::create(&sim, "target", "Target", Environment::Staging).unwrap();
    let mut drifted = backup.clone();
    drifted.items.retain(|i| !(i.item_type == "scopeTag" && i.display_name == TAG_BERLIN));
    let template = drifted.items.iter_mut().find(|i| i.item_type == "notificationTemplate").unwrap();
    template.sub_resources.get_mut("localizedNotificationMessages").unwrap()[0]["subject"] = json!("old subject");
    let policies: Vec<String> = drifted
        .items
        .iter()
        .filter(|i| i.display_name.chars().last().is_some_and(|c| c.is_ascii_digit()))
        .map(|i| i.key())
        .collect();
    let mut removed = BTreeSet::new();
    for (n, key) in policies.iter().enumerate() {
        let policy = drifted.items.iter_mut().find(|i| &i.key() == key).unwrap();
        match n % 3 {
            0 => {
                removed.insert(key.clone());
            }
            1 => {
                policy.resource["description"] = json!("edited");
                if let Some(rules) = policy.sub_resources.get_mut("scheduledActionsForRule") {
                    rules[0]["scheduledActionConfigurations"][1]["gracePeriodHours"] = json!(72);
                }
                if let Some(apps) = policy.sub_resources.get_mut("apps") {
                    if apps.len() > 1 {
                        apps.pop();
                    }
                    let app = &mut apps[0]["mobileAppIdentifier"];
                    for key in ["bundleId", "packageId"] {
                        if app.get(key).is_some() {
                            app[key] = json!("com.example.other");
                        }
                    }
                }
                if let Some(settings) = policy.sub_resources.get_mut("settings") {
                    settings[1]["settingInstance"]["simpleSettingValue"]["value"] = json!("https://old.example");
                }
            }
            _ => policy.assignments = Some(Vec::new()),
        }
    }
    drifted.items.retain(|i| !removed.contains(&i.key()));
    sim.seed("target", &drifted).unwrap();
    (sim, target)
}

fn target_of(tenant: &SimTenant) -> RestoreTarget {
    RestoreTarget { tenant_id: tenant.tenant_id.clone(), environment: tenant.environment }
}

/// The plan as a restarted controller rebuilds it: from the stored report's JSON.
fn plan_from_json(scope: &ResolvedScope, stored_report: &str) -> ExecutionPlan {
    let report: PreviewReport = serde_json::from_str(stored_report).unwrap();
    ExecutionPlan::build(scope, &report).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_resume_at_every_write_of_a_40_item_run_ends_as_the_uninterrupted_run_with_no_duplicate() {
    let source_sim = quiet_simulator().await;
    let source = seeded_tenant(&source_sim, "source", "Source", 35);
    let backup = capture_tenant(&source.client(&source_sim).unwrap(), &source).await;
    // 40 items and the tenant-wide device-management settings every tenant has.
    assert_eq!(backup.items.len(), 41);
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();

    // The uninterrupted run: the reference.
    let (sim, target) = forty_item_target(&backup).await;
    let client = target.client(&sim).unwrap();
    let approved: Assessment = assess(&client, &scope, &target_of(&target), &EngineOptions::default()).await.unwrap();
    assert_eq!(approved.report.blockers(), 0, "{}", approved.report.summary_text());
    let stored_report = serde_json::to_string(&approved.report).unwrap();
    let plan = plan_from_json(&scope, &stored_report);
    let kinds: BTreeSet<_> = plan.steps().iter().map(|s| s.kind).collect();
    assert_eq!(kinds.len(), 6, "every kind of step is exercised: {kinds:?}");
    let before = sim.applied_write_count();
    let mut executor = Executor::new(plan, ProgressRecord::new(&approved.digest)).unwrap();
    let reference_facts = executor.run_to_end(&client).await.unwrap();
    let total_writes = sim.applied_write_count() - before;
    assert_eq!(reference_facts.counts.problems(), 0, "{:?}", reference_facts.results);
    assert!(total_writes >= 40, "{total_writes} writes");
    eprintln!("the 40-item run makes {total_writes} writes in {} steps", executor.facts().total_steps);
    let reference_state = sim.dump("target").unwrap();
    // The writes Graph needs for every sub-resource kind reached the simulator, which applied them.
    let sent: Vec<String> =
        sim.request_log().iter().filter(|r| r.write).map(|r| format!("{} {}", r.method, r.path)).collect();
    for (method, needle) in [
        ("POST", "/scheduleActionsForRules"),
        ("POST", "/targetApps"),
        ("POST", "/assign"),
        ("PATCH", "/localizedNotificationMessages/"),
        ("PUT", "deviceManagement/configurationPolicies/"),
    ] {
        let found = sent.iter().any(|s| s.starts_with(method) && s.contains(needle));
        assert!(found, "the run sends {method} …{needle}: {sent:?}");
    }

    // Stopped after write k and resumed from the persisted record, for every k; two lanes at a time.
    let shared = Arc::new(Reference {
        backup,
        scope,
        stored_report,
        digest: approved.digest.clone(),
        state: reference_state,
        counts: reference_facts.counts,
        total_writes,
    });
    let lanes: Vec<_> = (0..2)
        .map(|lane| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                for k in (1..=shared.total_writes).filter(|k| k % 2 == lane) {
                    stop_and_resume(&shared, k).await;
                }
            })
        })
        .collect();
    for lane in lanes {
        lane.await.unwrap();
    }
}

/// What every interrupted run is compared with.
struct Reference {
    backup: BackupSet,
    scope: ResolvedScope,
    stored_report: String,
    digest: String,
    state: Value,
    counts: OutcomeCounts,
    total_writes: usize,
}

/// One interrupted run: a fresh copy of the target, killed after write `k`, resumed by a new controller.
async fn stop_and_resume(reference: &Reference, k: usize) {
    let (sim, target) = forty_item_target(&reference.backup).await;
    let first = target.client(&sim).unwrap();
    let assessment = assess(&first, &reference.scope, &target_of(&target), &EngineOptions::default()).await.unwrap();
    assert_eq!(assessment.digest, reference.digest, "the same tenant previews the same");

    // First controller: persists the record after every step, killed after write k.
    let before = sim.applied_write_count();
    let port = stop_after_writes(&first, k);
    let plan = plan_from_json(&reference.scope, &reference.stored_report);
    let mut executor = Executor::new(plan, ProgressRecord::new(&reference.digest)).unwrap();
    let mut persisted = serde_json::to_string(executor.progress()).unwrap();
    loop {
        match executor.next_step(&port).await {
            Ok(Some(_)) => persisted = serde_json::to_string(executor.progress()).unwrap(),
            Ok(None) => panic!("the stop after write {k} did not happen"),
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                break;
            }
        }
    }
    drop(executor);
    assert_eq!(sim.applied_write_count() - before, k);

    // Second controller: a new client, the plan from the stored report, the record from JSON.
    let second = target.client(&sim).unwrap();
    let progress: ProgressRecord = serde_json::from_str(&persisted).unwrap();
    let plan = plan_from_json(&reference.scope, &reference.stored_report);
    let facts = Executor::new(plan, progress).unwrap().run_to_end(&second).await.unwrap();

    assert_eq!(facts.counts, reference.counts, "outcomes after a stop at write {k}");
    assert_eq!(sim.applied_write_count() - before, reference.total_writes, "no write repeated or lost (stop at {k})");
    assert_eq!(sim.dump("target").unwrap(), reference.state, "final state after a stop at write {k}");
    assert_no_duplicate_names(&sim, k);
}

fn assert_no_duplicate_names(sim: &graph_sim::SimHandle, k: usize) {
    let dump = sim.dump("target").unwrap();
    for (collection, objects) in dump["collections"].as_object().unwrap() {
        let names: Vec<String> = objects
            .as_object()
            .unwrap()
            .values()
            .map(|o| {
                let r = &o["resource"];
                r.get("displayName").or_else(|| r.get("name")).map(Value::to_string).unwrap_or_default()
            })
            .collect();
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicate in {collection} after a stop at write {k}");
    }
}

// ---- Drift between preview and execution --------------------------------------------------------

/// A real property of `iosGeneralDeviceConfiguration` (graph-sim refuses made-up ones) that the
/// test's backup is made to lack.
const NEWER_PROPERTY: &str = "kioskModeAppStoreUrl";

#[tokio::test]
async fn drift_after_the_approval_is_reported_per_item_and_never_overwritten() {
    let (sim, tenant, client, mut backup) = backed_up(9).await;
    // A backup taken before Graph added a property: the iOS profile's backup lacks one.
    let ios_index = backup
        .items
        .iter()
        .position(|i| i.item_type == "deviceConfiguration" && i.display_name.starts_with("iOS"))
        .unwrap();
    backup.items[ios_index].resource.as_object_mut().unwrap().remove(NEWER_PROPERTY);
    let admin = PortalAdmin::sign_in(&sim, &tenant).await.unwrap();
    let (custom, ios) = (item(&backup, "deviceConfiguration", "Win10"), item(&backup, "deviceConfiguration", "iOS"));
    let (compliance, script) = (item(&backup, "compliancePolicy", "Win10"), item(&backup, "powerShellScript", "Set"));
    let path = |i: &restore_core::backup::BackupItem| format!("{}/{}", col(&i.item_type), i.id);

    // Before the preview: four items need restoring.
    admin.call("PATCH", &path(custom), Some(&json!({"description": "local"}))).await.unwrap();
    admin.call("PATCH", &path(ios), Some(&json!({"cameraBlocked": true}))).await.unwrap();
    admin.call("DELETE", &path(compliance), None).await.unwrap();
    reassign(&sim, &admin, &tenant, script, GROUP_FINANCE).await;
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let approved = assess(&client, &scope, &target_of(&tenant), &EngineOptions::default()).await.unwrap();
    assert_eq!(approved.report.counts.changes(), 4);

    // After the approval, before the writes: three change again; one only in a property the
    // backup does not hold, which is not drift.
    let mut settings = custom.resource["omaSettings"].clone();
    settings[0]["value"] = json!(99);
    admin.call("PATCH", &path(custom), Some(&json!({"omaSettings": settings}))).await.unwrap();
    let hand_made = json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy",
        "displayName": compliance.display_name, "description": "made by hand", "roleScopeTagIds": ["0"],
        "scheduledActionsForRule": [{"ruleName": "PasswordRequired", "scheduledActionConfigurations": [
            {"actionType": "block", "gracePeriodHours": 0}]}]});
    admin.call("POST", col("compliancePolicy"), Some(&hand_made)).await.unwrap();
    admin.call("DELETE", &path(script), None).await.unwrap();
    let newer = Value::Object([(NEWER_PROPERTY.to_string(), json!("https://apps.example/x"))].into_iter().collect());
    admin.call("PATCH", &path(ios), Some(&newer)).await.unwrap();

    let writes_before = writes_to(&sim, "contoso");
    let plan = ExecutionPlan::build(&scope, &approved.report).unwrap();
    let mut executor = Executor::new(plan, ProgressRecord::new(&approved.digest)).unwrap();
    let facts = executor.run_to_end(&client).await.unwrap();
    assert_eq!((facts.counts.drifted, facts.counts.updated, facts.counts.created), (3, 1, 0));
    let message = |key: String| {
        let result = facts.results.iter().find(|r| r.item == key).unwrap();
        assert_eq!(result.outcome, ItemOutcome::Drifted);
        result.message.clone().unwrap()
    };
    assert!(message(custom.key()).contains("omaSettings[0].value"), "{}", message(custom.key()));
    assert!(message(compliance.key()).contains("created in the tenant after the preview"));
    assert!(message(script.key()).contains("deleted"));

    // Only the item whose change lies outside the backup was written; the drifted ones are as left.
    assert_eq!(writes_to(&sim, "contoso") - writes_before, 1);
    let live = read_whole(&client, "deviceConfiguration", &custom.id).await.unwrap();
    assert_eq!((live["description"].as_str(), live["omaSettings"][0]["value"].as_i64()), (Some("local"), Some(99)));
    let made: Vec<_> = sim
        .objects("contoso", col("compliancePolicy"))
        .unwrap()
        .into_iter()
        .filter(|o| o["displayName"] == json!(compliance.display_name))
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["description"], "made by hand");
    assert!(read_whole(&client, "powerShellScript", &script.id).await.is_none(), "not re-created");
}

#[tokio::test]
async fn drift_after_the_preview_supersedes_it_and_the_old_approval_writes_nothing() {
    let (sim, tenant, client, backup) = backed_up(9).await;
    let admin = PortalAdmin::sign_in(&sim, &tenant).await.unwrap();
    let custom = item(&backup, "deviceConfiguration", "Win10");
    let path = format!("{}/{}", col("deviceConfiguration"), custom.id);
    admin.call("PATCH", &path, Some(&json!({"description": "local"}))).await.unwrap();

    let (objects, fetcher) = (objects_with(&backup), fetcher());
    let mut run = local_run("superseded", &tenant, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed);
    let reviewed = run.digest().unwrap().to_string();

    // The tenant changes after the human reviewed the preview, before the approval lands.
    admin.call("PATCH", &path, Some(&json!({"description": "changed again"}))).await.unwrap();
    let writes_before = writes_to(&sim, "contoso");
    approve(&mut run, &reviewed, "Contoso");
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::AwaitingConfirmation);
    let now = run.digest().unwrap().to_string();
    assert_ne!(now, reviewed, "the re-read made a new preview");
    assert!(run.condition_message("Confirmed").contains(&now), "{}", run.condition_message("Confirmed"));
    assert!(run.status.confirmation.is_none());
    assert_eq!(writes_to(&sim, "contoso"), writes_before, "nothing was written");
    let live = read_whole(&client, "deviceConfiguration", &custom.id).await.unwrap();
    assert_eq!(live["description"], "changed again");
}

// ---- Honest request count (issue 13) ------------------------------------------------------------

#[tokio::test]
async fn honest_preview_request_count_matches_the_requests_the_simulator_saw() {
    // Two objects a page: every listing takes several pages, which an estimate of one page per
    // listing would undercount.
    let sim = restore_operator::cli::demo_backup::start_simulator(graph_sim::SimConfig {
        throttle: None,
        page_size: 2,
        ..graph_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let tenant = seeded_tenant(&sim, "contoso", "Contoso", 12);
    let client = tenant.client(&sim).unwrap();
    let backup = capture_tenant(&client, &tenant).await;
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    sim.clear_request_log();
    let snapshot = restore_core::engine::snapshot::take_snapshot(&client, &scope, "contoso").await.unwrap();
    let seen = sim.request_log().iter().filter(|r| !r.in_batch && !r.path.ends_with("oauth2/v2.0/token")).count();
    let estimate = snapshot.stats.lists + snapshot.stats.gets + snapshot.stats.batch_requests;
    assert!(estimate < u32::try_from(seen).unwrap(), "the old estimate undercounts: {estimate} < {seen}");
    assert_eq!(snapshot.stats.graph_requests(), u32::try_from(seen).unwrap(), "{:?}", snapshot.stats);
}
