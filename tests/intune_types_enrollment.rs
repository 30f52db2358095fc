//! Enrollment kinds on the Graph simulator: Autopilot deployment profiles (assignments added one at
//! a time under `/assignments`, never deleted) and enrollment configurations (defaults update-only,
//! priorities set by `setPriority`) through capture → native backup → restore, drift and IntuneCD import.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, ItemOutcome, Phase, ScopeSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::plan::{ExecutionPlan, StepKind};
use restore_core::engine::preview::PreviewReport;
use restore_core::engine::scope::resolve_scope;
use restore_core::engine::{EngineOptions, RestoreTarget, assess};
use restore_graph::GraphClient;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{GROUP_ALL, GROUP_PILOT, PortalAdmin, SimTenant, every_kind_samples};
use serde_json::json;
use sim_support::*;

const AUTOPILOT: &str = "deviceManagement/windowsAutopilotDeploymentProfiles";

/// The demo sample's objects of `type_name`, as a backup to seed.
fn samples_of(type_name: &str) -> BackupSet {
    let items: Vec<BackupItem> = every_kind_samples().into_iter().filter(|i| i.item_type == type_name).collect();
    assert!(!items.is_empty(), "the demo sample has a {type_name}");
    BackupSet { tenant: None, captured_at: None, digest: String::new(), items }
}

/// Previews `backup` against `tenant`; when the preview is ready, approves its digest and executes.
async fn restore(backup: &BackupSet, tenant: &SimTenant, client: &GraphClient, name: &str) -> (Phase, PreviewReport) {
    let (objects, fetcher) = (objects_with(backup), fetcher());
    let mut run = local_run(name, tenant, &objects, &fetcher, client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed, "{}", run.condition_message("Ready"));
    let report = run.report().unwrap().clone();
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, &tenant.label);
    (run.drive(|_| {}).await.unwrap(), report)
}

/// Writes the simulator logged for `tenant` on Autopilot profiles, as `METHOD path-after-the-collection`.
fn autopilot_writes(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && r.path.starts_with(AUTOPILOT))
        .map(|r| {
            let rest = r.path.trim_start_matches(AUTOPILOT);
            let shape: Vec<&str> = rest.split('/').map(|s| if s.len() > 30 { "{id}" } else { s }).collect();
            format!("{} {}", r.method, shape.join("/"))
        })
        .collect()
}

// ---- Autopilot deployment profiles ----------------------------------------------------------------

#[tokio::test]
async fn an_autopilot_profile_is_restored_across_tenants_with_its_assignments_added_one_by_one() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &samples_of("autopilotProfile")).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let profile = backup.items.iter().find(|i| i.item_type == "autopilotProfile").unwrap();
    assert_eq!(profile.assignments.as_ref().map(Vec::len), Some(1), "capture reads the profile's assignments");

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &target_client, "autopilot").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create), [profile.key()]);
    assert_eq!(
        autopilot_writes(&sim, "fabrikam"),
        ["POST ", "POST /{id}/assignments"],
        "created, then its group assignment posted on its own: the profile's assign action takes device ids"
    );

    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
    let restored = now.items.iter().find(|i| i.item_type == "autopilotProfile").unwrap();
    let group = &restored.assignments.as_ref().unwrap()[0]["target"]["groupId"];
    let all_staff = restored.references.groups.iter().find(|g| g.display_name == GROUP_ALL).map(|g| g.id.clone());
    let source_id = profile.references.groups.iter().find(|g| g.display_name == GROUP_ALL).map(|g| g.id.clone());
    assert_ne!(all_staff, source_id, "the target's group has another id than the source's");
    assert_eq!(group.as_str().map(str::to_string), all_staff, "the group is mapped by name into the target");
}

#[tokio::test]
async fn a_drifted_autopilot_profile_gets_its_properties_and_lost_assignment_back_in_the_same_tenant() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &samples_of("autopilotProfile")).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let profile = backup.items.iter().find(|i| i.item_type == "autopilotProfile").unwrap();
    let path = format!("{AUTOPILOT}/{}", profile.id);
    let assignment_id = profile.assignments.as_ref().unwrap()[0]["id"].as_str().unwrap().to_string();

    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("PATCH", &path, Some(&json!({"deviceNameTemplate": "HAND-%RAND:4%"}))).await.unwrap();
    admin.call("DELETE", &format!("{path}/assignments/{assignment_id}"), None).await.unwrap();

    let (phase, report) = restore(&backup, &source, &client, "autopilot-drift").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Update), [profile.key()]);
    let now = capture_tenant(&client, &source).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());
}

#[tokio::test]
async fn an_assignment_added_in_the_tenant_is_never_deleted_the_profile_is_skipped_with_a_finding() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &samples_of("autopilotProfile")).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let profile = backup.items.iter().find(|i| i.item_type == "autopilotProfile").unwrap();
    let path = format!("{AUTOPILOT}/{}", profile.id);

    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let pilot = sim.add_group("contoso", GROUP_PILOT).unwrap();
    admin
        .call(
            "POST",
            &format!("{path}/assignments"),
            Some(&json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": pilot}})),
        )
        .await
        .unwrap();
    admin.call("PATCH", &path, Some(&json!({"description": "changed by hand"}))).await.unwrap();
    let writes_before = autopilot_writes(&sim, "contoso").len();

    let (phase, report) = restore(&backup, &source, &client, "autopilot-extra").await;
    assert_eq!(phase, Phase::Succeeded);
    let planned = report.items.iter().find(|i| i.key == profile.key()).unwrap();
    assert_eq!(planned.action, PlannedAction::Skip, "{:?}", planned.reason);
    assert!(codes_for(&report, &profile.key()).contains(&FindingCode::AssignmentNotRemovable));
    assert_eq!(autopilot_writes(&sim, "contoso").len(), writes_before, "nothing is written to the profile");
    let now = capture_tenant(&client, &source).await;
    let live = now.items.iter().find(|i| i.id == profile.id).unwrap();
    assert_eq!(live.assignments.as_ref().map(Vec::len), Some(2), "the tenant's extra assignment is left");
}

#[tokio::test]
async fn an_intunecd_autopilot_profile_imports_and_restores_with_its_group_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Enrollment Profiles/Windows");
    std::fs::create_dir_all(&folder).unwrap();
    // IntuneCD 2.6.0 (`backup/Intune/WindowsEnrollmentProfile.py`) lists the profiles, reads each
    // one's `/assignments`, and writes one file per profile without ids, groups by name.
    let file = json!({
        "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
        "displayName": "Autopilot kiosk", "description": "", "language": "os-default",
        "deviceNameTemplate": "KIOSK-%SERIAL%", "deviceType": "windowsPc", "enableWhiteGlove": false,
        "extractHardwareHash": true, "roleScopeTagIds": ["Default"],
        "outOfBoxExperienceSettings": {"hidePrivacySettings": true, "hideEULA": true, "userType": "standard",
            "deviceUsageType": "shared", "skipKeyboardSelectionPage": true, "hideEscapeLink": true},
        "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
            "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none",
            "groupName": GROUP_PILOT, "groupType": "StaticMembership"}}]
    });
    std::fs::write(
        folder.join("Autopilot kiosk_azureADWindowsAutopilotDeploymentProfile.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
    let mut loaded = load_local(dir.path(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap();
    // IntuneCD records no tenant nor time; the run reads the set from a native archive, which needs both.
    loaded.set.tenant = Some(BackupTenant { id: "intunecd-source".into(), label: "IntuneCD".into() });
    loaded.set.captured_at = Some("2026-02-01T12:00:00Z".into());
    let item = loaded.set.items.iter().find(|i| i.item_type == "autopilotProfile").unwrap();
    assert_eq!((item.display_name.as_str(), item.platform.as_str()), ("Autopilot kiosk", "windows"));

    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&loaded.set, &target, &client, "autopilot-intunecd").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create), [item.key()]);
    let now = capture_tenant(&client, &target).await;
    let restored = now.items.iter().find(|i| i.display_name == "Autopilot kiosk").unwrap();
    assert_eq!(restored.resource["deviceNameTemplate"], "KIOSK-%SERIAL%");
    let pilot = restored.references.groups.iter().find(|g| g.display_name == GROUP_PILOT).map(|g| g.id.clone());
    assert_eq!(restored.assignments.as_ref().unwrap()[0]["target"]["groupId"].as_str().map(str::to_string), pilot);
}

// ---- Enrollment configurations --------------------------------------------------------------------

const ENROLLMENT: &str = "deviceManagement/deviceEnrollmentConfigurations";
const DEFAULT_NAME: &str = "All users and all devices";

fn enrollment_item(id: &str, resource: serde_json::Value) -> BackupItem {
    let mut resource = resource;
    resource["id"] = json!(id);
    let t = restore_core::catalog::item_type("enrollmentConfiguration").unwrap();
    BackupItem {
        item_type: t.name.into(),
        id: id.into(),
        display_name: resource["displayName"].as_str().unwrap().into(),
        platform: restore_core::catalog::platform_of(t, &resource),
        resource,
        assignments: Some(Vec::new()),
        sub_resources: Default::default(),
        references: Default::default(),
    }
}

/// The built-in defaults a tenant has: the device limit and the iOS and Android restrictions, all
/// called the same, priority 0, ids after the tenant as Intune names them (`{tenant}_DefaultLimit`).
fn defaults(tenant: &str, limit: u32) -> Vec<BackupItem> {
    let restriction = |platform: &str| {
        enrollment_item(
            &format!("{tenant}_DefaultPlatformRestrictions{platform}"),
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration",
                "displayName": DEFAULT_NAME, "description": "", "priority": 0, "platformType": platform,
                "deviceEnrollmentConfigurationType": "defaultPlatformRestrictions", "roleScopeTagIds": ["0"]}),
        )
    };
    vec![
        enrollment_item(
            &format!("{tenant}_DefaultLimit"),
            json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": DEFAULT_NAME,
                "description": "", "priority": 0, "limit": limit, "deviceEnrollmentConfigurationType": "defaultLimit",
                "roleScopeTagIds": ["0"]}),
        ),
        restriction("ios"),
        restriction("android"),
    ]
}

/// One configuration of each published subtype of the collection, priority 1 (the first of its
/// type), as the tenant's own.
fn one_of_each_enrollment_subtype() -> Vec<BackupItem> {
    let t = restore_core::catalog::item_type("enrollmentConfiguration").unwrap();
    t.odata_types
        .iter()
        .map(|odata| {
            let id = restore_operator::cli::demo_backup::sample_guid(&format!("enrollment/{odata}"));
            let mut resource = json!({"@odata.type": format!("#microsoft.graph.{odata}"),
                "displayName": format!("Custom {odata}"), "description": "", "priority": 1, "roleScopeTagIds": ["0"]});
            if *odata == "deviceEnrollmentPlatformRestrictionConfiguration" {
                resource["platformType"] = json!("ios");
            }
            enrollment_item(&id, resource)
        })
        .collect()
}

/// [`differences_from_backup`] per enrollment configuration, matched by type, name and platform
/// (the defaults all have the same name).
fn enrollment_differences(backup: &BackupSet, now: &BackupSet) -> Vec<String> {
    let identity = |i: &BackupItem| {
        (i.resource["@odata.type"].clone(), i.display_name.clone(), i.resource.get("platformType").cloned())
    };
    backup
        .items
        .iter()
        .filter(|i| i.item_type == "enrollmentConfiguration")
        .flat_map(|item| {
            let found = now.items.iter().filter(|n| identity(n) == identity(item)).cloned().collect();
            let one = BackupSet { items: vec![item.clone()], ..backup.clone() };
            differences_from_backup(&one, &BackupSet { items: found, ..now.clone() })
                .into_iter()
                .map(|d| format!("{d} ({:?})", item.resource.get("platformType")))
        })
        .collect()
}

fn set_of(items: Vec<BackupItem>) -> BackupSet {
    BackupSet { tenant: None, captured_at: None, digest: String::new(), items }
}

#[tokio::test]
async fn every_enrollment_configuration_subtype_restores_across_tenants_and_defaults_are_updated_in_place() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let mut items = defaults("contoso", 5);
    items.extend(one_of_each_enrollment_subtype());
    sim.seed("contoso", &set_of(items)).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let captured = backup.items.iter().filter(|i| i.item_type == "enrollmentConfiguration").count();
    assert_eq!(captured, 3 + 8, "the defaults and every published subtype are captured");

    let target = empty_target(&sim);
    sim.seed("fabrikam", &set_of(defaults("fabrikam", 15))).unwrap();
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &client, "enrollment").await;
    assert_eq!(phase, Phase::Succeeded);
    let default_keys: BTreeSet<String> =
        backup.items.iter().filter(|i| i.display_name == DEFAULT_NAME).map(|i| i.key()).collect();
    assert_eq!(keys_with(&report, PlannedAction::Update), ["enrollmentConfiguration/contoso_DefaultLimit"]);
    for key in &default_keys {
        assert!(codes_for(&report, key).contains(&FindingCode::DefaultEnrollmentConfiguration), "{key}");
    }
    assert_eq!(keys_with(&report, PlannedAction::Create).len(), 8, "every custom configuration is created");
    let enrollment_writes: Vec<_> = sim
        .request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some("fabrikam") && r.path.starts_with(ENROLLMENT))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert!(
        enrollment_writes.iter().all(|(m, p)| m != "DELETE" && !p.ends_with("/setPriority")),
        "each new configuration is the first of its list, as Graph numbers it: no setPriority is needed: {enrollment_writes:?}"
    );
    let now = capture_tenant(&client, &target).await;
    assert_eq!(enrollment_differences(&backup, &now), Vec::<String>::new());
    let limit = now.items.iter().find(|i| i.id == "fabrikam_DefaultLimit").unwrap();
    assert_eq!(limit.resource["limit"], 5, "the target's own default is updated in place");
}

#[tokio::test]
async fn a_default_configuration_the_target_lacks_is_never_created() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &set_of(defaults("contoso", 5))).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &client, "no-defaults").await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with(&report, PlannedAction::Create).is_empty(), "a default is never created");
    for item in backup.items.iter().filter(|i| i.item_type == "enrollmentConfiguration") {
        assert!(codes_for(&report, &item.key()).contains(&FindingCode::DefaultEnrollmentConfiguration));
    }
    assert!(sim.objects("fabrikam", ENROLLMENT).unwrap().is_empty());
}

// ---- Enrollment configuration priorities ----------------------------------------------------------

fn limit_configuration(name: &str, priority: i64, limit: u32) -> BackupItem {
    let id = restore_operator::cli::demo_backup::sample_guid(&format!("enrollment-limit/{name}"));
    enrollment_item(
        &id,
        json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": name,
            "description": "", "priority": priority, "limit": limit, "roleScopeTagIds": ["0"]}),
    )
}

/// The custom limit configurations' names in `tenant`, in priority order, with their priority.
fn limit_order(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<(String, i64)> {
    let mut order: Vec<(String, i64)> = sim
        .objects(tenant, ENROLLMENT)
        .unwrap()
        .iter()
        .filter(|o| o["@odata.type"] == "#microsoft.graph.deviceEnrollmentLimitConfiguration" && o["priority"] != 0)
        .map(|o| (o["displayName"].as_str().unwrap().to_string(), o["priority"].as_i64().unwrap()))
        .collect();
    order.sort_by_key(|(name, p)| (*p, name.clone()));
    order
}

fn named(order: &[(&str, i64)]) -> Vec<(String, i64)> {
    order.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

/// `setPriority` calls the simulator logged for `tenant`, as the configuration's id.
fn set_priority_calls(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && r.path.ends_with("/setPriority"))
        .map(|r| r.path.trim_start_matches(ENROLLMENT).trim_matches('/').trim_end_matches("/setPriority").to_string())
        .collect()
}

/// Three custom device limits whose names do not follow their priority (the restore creates them in
/// name order, Graph numbers each new one last) and the tenant's defaults.
fn three_limits(tenant: &str) -> BackupSet {
    let mut items = defaults(tenant, 5);
    items.extend([
        limit_configuration("A kiosk", 3, 1),
        limit_configuration("B staff", 1, 3),
        limit_configuration("C pilot", 2, 2),
    ]);
    set_of(items)
}

#[tokio::test]
async fn three_configurations_of_one_type_restore_into_an_empty_tenant_in_the_backup_order() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &three_limits("contoso")).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    sim.seed("fabrikam", &set_of(defaults("fabrikam", 15))).unwrap();
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &client, "priorities").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(limit_order(&sim, "fabrikam"), named(&[("B staff", 1), ("C pilot", 2), ("A kiosk", 3)]));
    let now = capture_tenant(&client, &target).await;
    assert_eq!(enrollment_differences(&backup, &now), Vec::<String>::new(), "states equal, priorities included");
    let kiosk = report.items.iter().find(|i| i.display_name == "A kiosk").unwrap();
    assert_eq!(kiosk.desired["priority"], 3, "the preview shows the planned priority");
    assert!(!set_priority_calls(&sim, "fabrikam").is_empty(), "the order is set with setPriority");
    assert!(report.findings.iter().all(|f| f.code != FindingCode::EnrollmentPriorityAdjusted), "{report:#?}");
}

#[tokio::test]
async fn same_tenant_two_swapped_priorities_are_restored_and_the_plan_shows_it() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &three_limits("contoso")).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let pilot = backup.items.iter().find(|i| i.display_name == "C pilot").unwrap();
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("POST", &format!("{ENROLLMENT}/{}/setPriority", pilot.id), Some(&json!({"priority": 1}))).await.unwrap();
    assert_eq!(limit_order(&sim, "contoso"), named(&[("C pilot", 1), ("B staff", 2), ("A kiosk", 3)]));

    let (phase, report) = restore(&backup, &source, &client, "priorities-swapped").await;
    assert_eq!(phase, Phase::Succeeded);
    let changed: Vec<(&str, &[String])> = report
        .items
        .iter()
        .filter(|i| i.action == PlannedAction::Update && !i.changed_fields.is_empty())
        .map(|i| (i.display_name.as_str(), i.changed_fields.as_slice()))
        .collect();
    assert_eq!(
        changed,
        [("B staff", &["priority".to_string()][..]), ("C pilot", &["priority".to_string()][..])],
        "the two swapped configurations are updates of their priority alone"
    );
    let kiosk = report.items.iter().find(|i| i.display_name == "A kiosk").unwrap();
    assert_eq!(kiosk.action, PlannedAction::Update, "placed again while its list is reordered");
    assert!(kiosk.reason.as_deref().is_some_and(|r| r.contains("kept at priority 3")), "{:?}", kiosk.reason);
    let staff = report.items.iter().find(|i| i.display_name == "B staff").unwrap();
    assert!(staff.diff.contains("priority"), "the diff the approver reads shows it: {}", staff.diff);
    assert_eq!(limit_order(&sim, "contoso"), named(&[("B staff", 1), ("C pilot", 2), ("A kiosk", 3)]));
    let now = capture_tenant(&client, &source).await;
    assert_eq!(enrollment_differences(&backup, &now), Vec::<String>::new());
}

#[tokio::test]
async fn across_tenants_the_targets_other_configurations_keep_their_relative_order_with_a_finding() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let mut items = defaults("contoso", 5);
    items.extend([limit_configuration("Staff", 1, 3), limit_configuration("Kiosk", 2, 1)]);
    sim.seed("contoso", &set_of(items)).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    let mut theirs = defaults("fabrikam", 15);
    theirs.extend([limit_configuration("Lab", 1, 9), limit_configuration("Contractors", 2, 2)]);
    sim.seed("fabrikam", &set_of(theirs)).unwrap();
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &client, "priorities-cross").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(
        limit_order(&sim, "fabrikam"),
        named(&[("Staff", 1), ("Kiosk", 2), ("Lab", 3), ("Contractors", 4)]),
        "restored at their backup positions, the target's own after them in their order"
    );
    for name in ["Staff", "Kiosk"] {
        let key = backup.items.iter().find(|i| i.display_name == name).unwrap().key();
        let finding = report.findings.iter().find(|f| f.item_key.as_deref() == Some(key.as_str()));
        let finding = finding.filter(|f| f.code == FindingCode::EnrollmentPriorityAdjusted);
        assert_eq!(finding.map(|f| f.severity), Some(restore_core::api::Severity::Warning), "{name}: {report:#?}");
    }
    assert!(set_priority_calls(&sim, "fabrikam").iter().all(|id| !id.contains("Default")));
}

#[tokio::test]
async fn the_default_is_never_reordered_and_the_runs_own_renumbering_of_the_list_is_not_drift() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &three_limits("contoso")).unwrap();
    let client = unpaced_client(&sim, &source);
    let mut backup = capture_tenant(&client, &source).await;
    // The backup's default limit differs (an update) and its custom ones are in another order.
    for item in backup.items.iter_mut().filter(|i| i.item_type == "enrollmentConfiguration") {
        match item.display_name.as_str() {
            DEFAULT_NAME if item.id.ends_with("DefaultLimit") => item.resource["limit"] = json!(7),
            "A kiosk" => item.resource["priority"] = json!(1),
            "B staff" => item.resource["priority"] = json!(3),
            _ => {}
        }
    }
    let (phase, report) = restore(&backup, &source, &client, "priorities-default").await;
    assert_eq!(phase, Phase::Succeeded);
    let default = report.items.iter().find(|i| i.key == "enrollmentConfiguration/contoso_DefaultLimit").unwrap();
    assert_eq!(default.action, PlannedAction::Update);
    assert!(default.desired.get("priority").is_none(), "a default has no planned priority");
    assert!(set_priority_calls(&sim, "contoso").iter().all(|id| !id.contains("Default")));
    let limit = sim.objects("contoso", ENROLLMENT).unwrap();
    let limit = limit.iter().find(|o| o["id"] == "contoso_DefaultLimit").unwrap();
    assert_eq!((limit["priority"].clone(), limit["limit"].clone()), (json!(0), json!(7)));
    assert_eq!(limit_order(&sim, "contoso"), named(&[("A kiosk", 1), ("C pilot", 2), ("B staff", 3)]));

    // Graph's refusals as the simulator keeps them: a default, a position outside the list.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let refused = admin
        .call("POST", &format!("{ENROLLMENT}/contoso_DefaultLimit/setPriority"), Some(&json!({"priority": 1})))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let kiosk = backup.items.iter().find(|i| i.display_name == "A kiosk").unwrap();
    for out_of_range in [0, 4] {
        let path = format!("{ENROLLMENT}/{}/setPriority", kiosk.id);
        assert!(admin.call("POST", &path, Some(&json!({"priority": out_of_range}))).await.is_err());
    }
    assert_eq!(limit_order(&sim, "contoso"), named(&[("A kiosk", 1), ("C pilot", 2), ("B staff", 3)]));
}

#[tokio::test]
async fn rule_5_a_set_priority_whose_answer_is_lost_is_retried_and_converges_without_a_duplicate_effect() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &three_limits("contoso")).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let pilot = backup.items.iter().find(|i| i.display_name == "C pilot").unwrap();
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("POST", &format!("{ENROLLMENT}/{}/setPriority", pilot.id), Some(&json!({"priority": 1}))).await.unwrap();

    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: source.tenant_id.clone(), environment: source.environment };
    let approved = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    let plan = || ExecutionPlan::build(&scope, &approved.report).unwrap();
    let steps: Vec<(StepKind, Option<String>)> =
        plan().steps().iter().map(|s| (s.kind, s.sub_resource.clone())).collect();
    let pass = |p: &str| (StepKind::SetPriority, Some(p.to_string()));
    let verify = (StepKind::Verify, None);
    assert_eq!(
        steps,
        [
            pass("descending"),
            pass("descending"),
            pass("descending"),
            pass("ascending"),
            pass("ascending"),
            pass("ascending"),
            verify.clone(),
            verify.clone(),
            verify
        ],
        "every configuration of the reordered list is placed, in two passes, after its writes"
    );

    // Graph applies the first setPriority but the gateway answers 504 (every attempt): unknown outcome.
    sim.set_faults(graph_sim::FaultConfig { rate_504: 1.0, ..graph_sim::FaultConfig::default() });
    let mut first = Executor::new(plan(), ProgressRecord::new(&approved.digest)).unwrap();
    assert!(first.run_to_end(&client).await.is_err(), "the step is left to be retried");
    sim.set_faults(graph_sim::FaultConfig::default());
    assert_eq!(limit_order(&sim, "contoso"), named(&[("B staff", 1), ("C pilot", 2), ("A kiosk", 3)]));

    let mut resumed = Executor::new(plan(), first.progress().clone()).unwrap();
    let facts = resumed.run_to_end(&client).await.unwrap();
    assert_eq!((facts.counts.updated, facts.counts.failed, facts.counts.drifted), (3, 0, 0), "{facts:?}");
    assert_eq!(limit_order(&sim, "contoso"), named(&[("B staff", 1), ("C pilot", 2), ("A kiosk", 3)]));
    assert_eq!(sim.objects("contoso", ENROLLMENT).unwrap().len(), 6, "no configuration more or less");
}

#[tokio::test]
async fn rule_4_a_priority_changed_by_someone_else_after_the_preview_is_drift_and_not_overwritten() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &three_limits("contoso")).unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let (pilot, kiosk) =
        (item(&backup, "enrollmentConfiguration", "C pilot"), item(&backup, "enrollmentConfiguration", "A kiosk"));
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    admin.call("POST", &format!("{ENROLLMENT}/{}/setPriority", pilot.id), Some(&json!({"priority": 1}))).await.unwrap();

    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: source.tenant_id.clone(), environment: source.environment };
    let approved = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    // After the approval, someone moves the kiosk limit to the top.
    admin.call("POST", &format!("{ENROLLMENT}/{}/setPriority", kiosk.id), Some(&json!({"priority": 1}))).await.unwrap();
    let before = set_priority_calls(&sim, "contoso").len();

    let mut executor =
        Executor::new(ExecutionPlan::build(&scope, &approved.report).unwrap(), ProgressRecord::new(&approved.digest))
            .unwrap();
    let facts = executor.run_to_end(&client).await.unwrap();
    let staff = item(&backup, "enrollmentConfiguration", "B staff").key();
    let drifted: BTreeSet<&str> =
        facts.results.iter().filter(|r| r.outcome == ItemOutcome::Drifted).map(|r| r.item.as_str()).collect();
    assert_eq!(
        drifted,
        BTreeSet::from([kiosk.key().as_str(), staff.as_str()]),
        "the kiosk limit (moved to 1) and the staff limit (shifted from 2 to 3) changed since the preview: not moved back; {facts:?}"
    );
    assert_eq!(set_priority_calls(&sim, "contoso").len(), before, "nothing reordered blindly");
    assert_eq!(limit_order(&sim, "contoso"), named(&[("A kiosk", 1), ("C pilot", 2), ("B staff", 3)]));
}

#[tokio::test]
async fn the_preview_digest_changes_when_a_planned_priority_changes() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &set_of(vec![limit_configuration("Kiosk", 2, 1)])).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let scope = resolve_scope(&ScopeSpec::default(), &backup).unwrap();
    let restore_target = RestoreTarget { tenant_id: target.tenant_id.clone(), environment: target.environment };
    let kiosk = |report: &PreviewReport| report.items.iter().find(|i| i.display_name == "Kiosk").unwrap().clone();
    let planned = |report: &PreviewReport| kiosk(report).desired["priority"].clone();

    let alone = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    assert_eq!(planned(&alone.report), 1, "clamped to the end of an empty list");
    let key = kiosk(&alone.report).key;
    let finding = alone.report.findings.iter().find(|f| f.item_key.as_deref() == Some(key.as_str())).unwrap();
    assert_eq!(
        (finding.code, finding.severity),
        (FindingCode::EnrollmentPriorityAdjusted, restore_core::api::Severity::Info)
    );

    sim.seed("fabrikam", &set_of(vec![limit_configuration("Lab", 1, 9)])).unwrap();
    let shared = assess(&client, &scope, &restore_target, &EngineOptions::default()).await.unwrap();
    assert_eq!(planned(&shared.report), 2, "its backup position, after the target's own");
    assert_eq!(kiosk(&shared.report).action, kiosk(&alone.report).action);
    assert_ne!(shared.digest, alone.digest, "the digest covers the planned priority");
}

#[tokio::test]
async fn intunecd_enrollment_configurations_import_and_a_status_page_naming_apps_is_a_blocker() {
    let dir = tempfile::tempdir().unwrap();
    let write = |folder: &str, file: &str, body: serde_json::Value| {
        let folder = dir.path().join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(file), serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    };
    // IntuneCD 2.6.0: `EnrollmentConfigurations` writes every configuration but the status pages,
    // `EnrollmentStatusPage` writes those to `Enrollment Profiles/Windows/ESP/` with the apps named.
    write(
        "Enrollment Configurations",
        "Staff limit_deviceEnrollmentLimitConfiguration.json",
        json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Staff limit",
            "description": "", "priority": 1, "limit": 3, "deviceEnrollmentConfigurationType": "limit",
            "roleScopeTagIds": ["Default"],
            "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                "groupName": GROUP_ALL, "groupType": "StaticMembership"}}]}),
    );
    write(
        "Enrollment Profiles/Windows/ESP",
        "Status page_windows10EnrollmentCompletionPageConfiguration.json",
        json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
            "displayName": "Status page", "description": "", "priority": 1, "showInstallationProgress": true,
            "roleScopeTagIds": ["Default"],
            "selectedMobileAppNames": [{"name": "Company Portal", "type": "#microsoft.graph.winGetApp"}],
            "assignments": []}),
    );
    let mut loaded = load_local(dir.path(), None, BackupFormat::IntuneCd, &Limits::default()).unwrap();
    let types: BTreeSet<&str> = loaded.set.items.iter().map(|i| i.item_type.as_str()).collect();
    assert_eq!(types, BTreeSet::from(["enrollmentConfiguration"]), "{:?}", loaded.findings);
    loaded.set.tenant = Some(BackupTenant { id: "intunecd-source".into(), label: "IntuneCD".into() });
    loaded.set.captured_at = Some("2026-02-01T12:00:00Z".into());

    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (objects, fetcher) = (objects_with(&loaded.set), fetcher());
    let mut run = local_run("enrollment-intunecd", &target, &objects, &fetcher, &client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Blocked);
    let page = loaded.set.items.iter().find(|i| i.display_name == "Status page").unwrap();
    assert!(codes_for(run.report().unwrap(), &page.key()).contains(&FindingCode::AppReferenceNotMapped));
    assert_eq!(writes_to(&sim, "fabrikam"), 0);

    // Without the status page, the limit restores with its group mapped by name.
    loaded.set.items.retain(|i| i.display_name != "Status page");
    let (phase, _) = restore(&loaded.set, &target, &client, "enrollment-intunecd-limit").await;
    assert_eq!(phase, Phase::Succeeded);
    let now = capture_tenant(&client, &target).await;
    let limit = now.items.iter().find(|i| i.display_name == "Staff limit").unwrap();
    assert_eq!(limit.resource["limit"], 3);
    let all = limit.references.groups.iter().find(|g| g.display_name == GROUP_ALL).map(|g| g.id.clone());
    assert_eq!(limit.assignments.as_ref().unwrap()[0]["target"]["groupId"].as_str().map(str::to_string), all);
}
