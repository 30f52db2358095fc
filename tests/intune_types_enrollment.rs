//! Enrollment kinds on the Graph simulator: Autopilot deployment profiles (assignments added one at
//! a time under `/assignments`, never deleted) through capture → native backup → restore, drift and IntuneCD import.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, Phase};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::preview::PreviewReport;
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

fn codes_for(report: &PreviewReport, key: &str) -> BTreeSet<FindingCode> {
    report.findings.iter().filter(|f| f.item_key.as_deref() == Some(key)).map(|f| f.code).collect()
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
        "{enrollment_writes:?}"
    );
    let now = capture_tenant(&client, &target).await;
    for i in backup.items.iter().filter(|i| i.display_name.contains("Limit")) {
        eprintln!("SRC {}", i.resource);
    }
    for i in now.items.iter().filter(|i| i.display_name.contains("Limit")) {
        eprintln!("NOW {}", i.resource);
    }
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

#[tokio::test]
async fn an_enrollment_priority_is_never_written_it_is_a_finding() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    let third = enrollment_item(
        "c0ffee00-0000-4000-8000-000000000003",
        json!({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration", "displayName": "Kiosk limit",
            "description": "", "priority": 3, "limit": 1, "roleScopeTagIds": ["0"]}),
    );
    sim.seed("contoso", &set_of(vec![third.clone()])).unwrap();
    let backup = capture_tenant(&unpaced_client(&sim, &source), &source).await;

    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, report) = restore(&backup, &target, &client, "priority").await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(codes_for(&report, &third.key()).contains(&FindingCode::EnrollmentPriorityNotRestored));
    let written = sim.objects("fabrikam", ENROLLMENT).unwrap();
    assert_eq!((written[0]["limit"].clone(), written[0]["priority"].clone()), (json!(1), json!(1)));

    // Same tenant: an edited limit is put back without touching the priority (a PATCH carrying
    // one is refused by Graph's rules as the simulator keeps them).
    let admin = PortalAdmin::sign_in(&sim, &target).await.unwrap();
    let id = written[0]["id"].as_str().unwrap();
    admin.call("PATCH", &format!("{ENROLLMENT}/{id}"), Some(&json!({"limit": 9}))).await.unwrap();
    let again = capture_tenant(&client, &target).await;
    let mut edited = again.clone();
    edited
        .items
        .iter_mut()
        .filter(|i| i.item_type == "enrollmentConfiguration")
        .for_each(|i| i.resource["limit"] = json!(1));
    let (phase, report) = restore(&edited, &target, &client, "priority-drift").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Update).len(), 1);
    let now = capture_tenant(&client, &target).await;
    assert_eq!(differences_from_backup(&edited, &now), Vec::<String>::new());
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
