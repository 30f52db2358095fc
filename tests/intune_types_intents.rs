//! Endpoint-security intents on the Graph simulator: created from their template (`createInstance`),
//! changed settings sent through `updateSettings`, the template looked up in the target (missing or
//! deprecated = blocker, nothing written), capture → native backup → restore, drift and IntuneCD import.

mod sim_support;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, Phase, ScopeSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::plan::{ExecutionPlan, StepKind};
use restore_core::engine::scope::resolve_scope;
use restore_core::engine::{EngineOptions, RestoreTarget, assess};
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{
    GROUP_ALL, GROUP_PILOT, PortalAdmin, SAMPLE_INTENT_TEMPLATE, SimTenant, every_kind_samples,
};
use serde_json::json;
use sim_support::*;

const INTENTS: &str = "deviceManagement/intents";
const TEMPLATES: &str = "deviceManagement/templates";
/// The older Windows security baseline the simulator lists as deprecated.
const DEPRECATED_TEMPLATE: &str = "a8d6fa0e-1e66-455b-bb51-8ce0dde1559e";

/// The demo sample's intent, as a backup to seed.
fn intent_sample() -> BackupSet {
    let items: Vec<BackupItem> =
        every_kind_samples().into_iter().filter(|i| i.item_type == "endpointSecurityIntent").collect();
    assert_eq!(items.len(), 1, "the demo sample has one intent");
    BackupSet { tenant: None, captured_at: None, digest: String::new(), items }
}

/// Writes the simulator logged for `tenant` on intents and templates, as `METHOD path` with ids
/// shortened to `{id}`.
fn intent_writes(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant))
        .filter(|r| r.path.starts_with(INTENTS) || r.path.starts_with(TEMPLATES))
        .map(|r| {
            let shape: Vec<&str> = r.path.split('/').map(|s| if s.len() > 30 { "{id}" } else { s }).collect();
            format!("{} {}", r.method, shape.join("/"))
        })
        .collect()
}

/// An intent item of the backup with another template id.
fn with_template(backup: &BackupSet, template_id: &str) -> BackupSet {
    let mut changed = backup.clone();
    for item in changed.items.iter_mut().filter(|i| i.item_type == "endpointSecurityIntent") {
        item.resource["templateId"] = json!(template_id);
    }
    changed
}

#[tokio::test]
async fn an_intent_is_restored_across_tenants_from_its_template_with_its_settings_and_assignment() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let intent = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    assert_eq!(intent.sub_resources.get("settings").map(Vec::len), Some(2), "capture reads the intent's settings");
    assert_eq!(intent.assignments.as_ref().map(Vec::len), Some(1), "and its assignments");

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&backup, &target, &target_client, "intent").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Create), [intent.key()]);
    assert_eq!(
        intent_writes(&sim, "fabrikam"),
        [format!("POST {TEMPLATES}/{{id}}/createInstance"), format!("POST {INTENTS}/{{id}}/assign")],
        "created from its template with its settings in one call, then assigned"
    );

    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    let restored = now.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    assert_eq!(restored.resource["templateId"], SAMPLE_INTENT_TEMPLATE);
    assert_ne!(restored.id, intent.id);
    let all_staff = restored.references.groups.iter().find(|g| g.display_name == GROUP_ALL).map(|g| g.id.clone());
    assert_eq!(restored.assignments.as_ref().unwrap()[0]["target"]["groupId"].as_str().map(str::to_string), all_staff);
}

#[tokio::test]
async fn a_drifted_intent_gets_only_its_changed_setting_back_through_update_settings_in_the_same_tenant() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let intent = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    let path = format!("{INTENTS}/{}", intent.id);

    // In the portal: the password length lowered and the description edited.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let length = "deviceConfiguration--windows10GeneralConfiguration_passwordMinimumLength";
    let lowered = json!({"settings": [{"@odata.type": "#microsoft.graph.deviceManagementIntegerSettingInstance",
        "definitionId": length, "valueJson": "6", "value": 6}]});
    admin.call("POST", &format!("{path}/updateSettings"), Some(&lowered)).await.unwrap();
    admin.call("PATCH", &path, Some(&json!({"description": "changed by hand"}))).await.unwrap();

    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let target = RestoreTarget { tenant_id: source.tenant_id.clone(), environment: source.environment };
    let port = HookedWrites { inner: &client, hook: RecordActions::default() };
    let approved = assess(&port, &scope, &target, &EngineOptions::default()).await.unwrap();
    assert_eq!(keys_with(&approved.report, PlannedAction::Update), [intent.key()]);
    let plan = ExecutionPlan::build(&scope, &approved.report).unwrap();
    let kinds: Vec<(StepKind, Option<&str>)> =
        plan.steps().iter().map(|s| (s.kind, s.sub_resource.as_deref())).collect();
    assert_eq!(
        kinds,
        [(StepKind::Update, None), (StepKind::SyncSubResource, Some("settings")), (StepKind::Verify, None)],
        "each write is a planned step of the approved preview"
    );
    let facts = Executor::new(plan, ProgressRecord::new(&approved.digest)).unwrap().run_to_end(&port).await.unwrap();
    assert_eq!((facts.counts.updated, facts.counts.failed, facts.counts.drifted), (1, 0, 0));

    let actions = port.hook.0.lock().unwrap().clone();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].0, format!("{path}/updateSettings"));
    let sent: Vec<&str> =
        actions[0].1["settings"].as_array().unwrap().iter().filter_map(|s| s["definitionId"].as_str()).collect();
    assert_eq!(sent, [length], "only the changed setting is sent");
    let now = capture_tenant(&client, &source).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
}

#[tokio::test]
async fn a_template_missing_in_the_target_is_a_blocker_and_nothing_is_written() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    // A template the source tenant had (a custom or newer one) that the target does not list.
    let backup = with_template(&backup, "0b1c2d3e-0000-4000-8000-00000000abcd");
    let key = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap().key();

    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let writes_before = writes_to(&sim, "fabrikam");
    let (phase, report) = restore_on_approval(&backup, &target, &client, "intent-missing-template").await;
    assert_eq!(phase, Phase::Blocked);
    assert!(codes_for(&report, &key).contains(&FindingCode::IntentTemplateUnavailable), "{}", report.summary_text());
    let finding = report.findings.iter().find(|f| f.code == FindingCode::IntentTemplateUnavailable).unwrap();
    assert!(
        finding.message.contains("0b1c2d3e-0000-4000-8000-00000000abcd"),
        "names the template: {}",
        finding.message
    );
    assert_eq!(writes_to(&sim, "fabrikam"), writes_before, "nothing was written to the target");
}

#[tokio::test]
async fn a_template_deprecated_in_the_target_is_a_blocker_for_a_create_but_an_existing_intent_is_updated() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    // An intent made when the older baseline was current: it stays in the tenant.
    sim.seed("contoso", &with_template(&intent_sample(), DEPRECATED_TEMPLATE)).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let intent = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();

    let target = empty_target(&sim);
    let writes_before = writes_to(&sim, "fabrikam");
    let (phase, report) =
        restore_on_approval(&backup, &target, &unpaced_client(&sim, &target), "intent-deprecated").await;
    assert_eq!(phase, Phase::Blocked);
    let finding = report.findings.iter().find(|f| f.code == FindingCode::IntentTemplateUnavailable).unwrap();
    assert!(finding.message.contains("deprecated") && finding.message.contains("August 2020"), "{}", finding.message);
    assert_eq!(writes_to(&sim, "fabrikam"), writes_before, "nothing was written to the target");

    // In its own tenant the intent exists: it is updated, not created, and the template is not in the way.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("PATCH", &format!("{INTENTS}/{}", intent.id), Some(&json!({"description": "edited"}))).await.unwrap();
    let (phase, report) = restore_on_approval(&backup, &source, &client, "intent-deprecated-same-tenant").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Update), [intent.key()]);
    assert!(!codes_for(&report, &intent.key()).contains(&FindingCode::IntentTemplateUnavailable));
}

#[tokio::test]
async fn the_simulator_refuses_create_instance_of_an_unknown_or_deprecated_template_as_graph_does() {
    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let admin = PortalAdmin::sign_in(&sim, &target).await.unwrap();
    let body = json!({"displayName": "X", "settingsDelta": []});
    let unknown = admin.call("POST", &format!("{TEMPLATES}/not-a-template/createInstance"), Some(&body)).await;
    let error = format!("{:?}", unknown.unwrap_err());
    assert!(error.contains("404") && error.contains("ResourceNotFound"), "{error}");
    let deprecated =
        admin.call("POST", &format!("{TEMPLATES}/{DEPRECATED_TEMPLATE}/createInstance"), Some(&body)).await;
    assert!(format!("{:?}", deprecated.unwrap_err()).contains("deprecated"));
    let odd = json!({"displayName": "X", "templateId": SAMPLE_INTENT_TEMPLATE});
    let refused = admin.call("POST", &format!("{TEMPLATES}/{SAMPLE_INTENT_TEMPLATE}/createInstance"), Some(&odd)).await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("templateId"), "not a parameter of createInstance");
}

#[tokio::test]
async fn an_intunecd_intent_imports_and_restores_from_its_template_with_its_group_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Management Intents/Security Baseline for Windows 10 and later");
    std::fs::create_dir_all(&folder).unwrap();
    // IntuneCD 2.6.0 (`backup/Intune/ManagementIntents.py`) writes one file per intent under a folder
    // named after its template: the properties `batch_intents` keeps, the settings as `settingsDelta`
    // without ids, assignments with groups by name.
    let file = json!({
        "displayName": "Windows security baseline", "description": "", "templateId": SAMPLE_INTENT_TEMPLATE,
        "roleScopeTagIds": ["Default"],
        "settingsDelta": [{"@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
            "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_firewallBlockStatefulFTP",
            "valueJson": "true", "value": true}],
        "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
            "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none",
            "groupName": GROUP_PILOT, "groupType": "StaticMembership"}}]
    });
    std::fs::write(folder.join("Windows security baseline.json"), serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let mut loaded = load_local(dir.path(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap();
    loaded.set.tenant = Some(BackupTenant { id: "intunecd-source".into(), label: "IntuneCD".into() });
    loaded.set.captured_at = Some("2026-02-01T12:00:00Z".into());
    let item = loaded.set.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    assert_eq!(item.sub_resources.get("settings").map(Vec::len), Some(1), "settingsDelta read as the settings");

    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore_on_approval(&loaded.set, &target, &client, "intent-intunecd").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    assert_eq!(keys_with(&report, PlannedAction::Create), [item.key()]);
    let now = capture_tenant(&client, &target).await;
    let restored = now.items.iter().find(|i| i.display_name == "Windows security baseline").unwrap();
    assert_eq!(restored.resource["templateId"], SAMPLE_INTENT_TEMPLATE);
    assert_eq!(restored.sub_resources["settings"][0]["valueJson"], "true");
    let pilot = restored.references.groups.iter().find(|g| g.display_name == GROUP_PILOT).map(|g| g.id.clone());
    assert_eq!(restored.assignments.as_ref().unwrap()[0]["target"]["groupId"].as_str().map(str::to_string), pilot);
}

#[tokio::test]
async fn a_setting_the_tenant_added_is_left_as_it_is_with_a_finding_and_the_rest_restored() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let intent = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    let path = format!("{INTENTS}/{}", intent.id);

    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let added = "deviceConfiguration--windows10EndpointProtectionConfiguration_firewallIPSecExemptionsAllowICMP";
    let body = json!({"settings": [{"@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
        "definitionId": added, "valueJson": "true", "value": true}]});
    admin.call("POST", &format!("{path}/updateSettings"), Some(&body)).await.unwrap();
    admin.call("PATCH", &path, Some(&json!({"description": "changed by hand"}))).await.unwrap();

    let (phase, report) = restore_on_approval(&backup, &source, &client, "intent-extra-setting").await;
    assert_eq!(phase, Phase::Succeeded, "{}", report.summary_text());
    let planned = report.items.iter().find(|i| i.key == intent.key()).unwrap();
    assert_eq!(planned.changed_fields, ["description"], "the added setting is not a difference a restore can undo");
    let finding = report.findings.iter().find(|f| f.code == FindingCode::IntentSettingNotInBackup).unwrap();
    assert!(finding.message.contains(added), "{}", finding.message);

    let now = read_whole(&client, "endpointSecurityIntent", &intent.id).await.unwrap();
    assert_eq!(now["description"], "baseline for all staff");
    let ids: Vec<&str> =
        now["settings"].as_array().unwrap().iter().filter_map(|s| s["definitionId"].as_str()).collect();
    assert!(ids.contains(&added) && ids.len() == 3, "left as the tenant has it: {ids:?}");
}

#[tokio::test]
async fn settings_changed_after_the_approval_are_drift_and_not_written() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let intent = backup.items.iter().find(|i| i.item_type == "endpointSecurityIntent").unwrap();
    let path = format!("{INTENTS}/{}", intent.id);
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let length = "deviceConfiguration--windows10GeneralConfiguration_passwordMinimumLength";
    let set_length = |n: i64| {
        json!({"settings": [{"@odata.type": "#microsoft.graph.deviceManagementIntegerSettingInstance",
            "definitionId": length, "valueJson": n.to_string(), "value": n}]})
    };
    admin.call("POST", &format!("{path}/updateSettings"), Some(&set_length(6))).await.unwrap();

    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let target = RestoreTarget { tenant_id: source.tenant_id.clone(), environment: source.environment };
    let port = HookedWrites { inner: &client, hook: RecordActions::default() };
    let approved = assess(&port, &scope, &target, &EngineOptions::default()).await.unwrap();
    // After the approval, before the write: the setting changes again.
    admin.call("POST", &format!("{path}/updateSettings"), Some(&set_length(8))).await.unwrap();

    let plan = ExecutionPlan::build(&scope, &approved.report).unwrap();
    let facts = Executor::new(plan, ProgressRecord::new(&approved.digest)).unwrap().run_to_end(&port).await.unwrap();
    assert_eq!((facts.counts.drifted, facts.counts.updated), (1, 0));
    assert!(port.hook.0.lock().unwrap().is_empty(), "updateSettings was not sent");
    let now = read_whole(&client, "endpointSecurityIntent", &intent.id).await.unwrap();
    let value =
        now["settings"].as_array().unwrap().iter().find(|s| s["definitionId"] == length).unwrap()["valueJson"].clone();
    assert_eq!(value, "8", "the admin's later change is left");
}

#[tokio::test]
async fn a_create_instance_interrupted_after_graph_applied_it_is_adopted_on_resume_never_duplicated() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: target.tenant_id.clone(), environment: target.environment };
    let approved = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    assert_eq!(approved.report.blockers(), 0, "{}", approved.report.summary_text());

    let killed = stop_after_writes(&client, 1);
    let mut first =
        Executor::new(ExecutionPlan::build(&scope, &approved.report).unwrap(), ProgressRecord::new(&approved.digest))
            .unwrap();
    assert!(first.run_to_end(&killed).await.is_err(), "killed right after createInstance was applied");
    let progress = first.progress().clone();

    let mut resumed = Executor::new(ExecutionPlan::build(&scope, &approved.report).unwrap(), progress).unwrap();
    let facts = resumed.run_to_end(&client).await.unwrap();
    assert_eq!((facts.counts.created, facts.counts.failed, facts.counts.drifted), (1, 0, 0));
    let creates = intent_writes(&sim, "fabrikam").iter().filter(|w| w.ends_with("/createInstance")).count();
    assert_eq!(creates, 1, "the retried create found the intent by name and template and adopted it");
    assert_eq!(sim.objects("fabrikam", INTENTS).unwrap().len(), 1);
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
}

#[tokio::test]
async fn rule_5_a_create_instance_whose_answer_is_lost_is_never_sent_again_blindly() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &intent_sample()).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: target.tenant_id.clone(), environment: target.environment };
    let approved = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    let plan = || ExecutionPlan::build(&scope, &approved.report).unwrap();

    // Graph applies the createInstance but the gateway answers 504: the outcome is unknown.
    sim.set_faults(graph_sim::FaultConfig { rate_504: 1.0, ..graph_sim::FaultConfig::default() });
    let mut first = Executor::new(plan(), ProgressRecord::new(&approved.digest)).unwrap();
    assert!(first.run_to_end(&client).await.is_err(), "the step is left to be retried");
    sim.set_faults(graph_sim::FaultConfig::default());
    assert_eq!(sim.objects("fabrikam", INTENTS).unwrap().len(), 1, "sent once, not resent by the client");

    let mut resumed = Executor::new(plan(), first.progress().clone()).unwrap();
    let facts = resumed.run_to_end(&client).await.unwrap();
    assert_eq!((facts.counts.created, facts.counts.failed), (1, 0));
    assert_eq!(sim.objects("fabrikam", INTENTS).unwrap().len(), 1, "the retried step adopted it");
}
