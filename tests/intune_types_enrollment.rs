//! Enrollment kinds on the Graph simulator: Autopilot deployment profiles (assignments added one at
//! a time under `/assignments`, never deleted) through capture → native backup → restore, drift and IntuneCD import.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::Limits;
use restore_backup::source::load_local;
use restore_core::api::{BackupFormat, Environment, Phase, WriteBudget};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::preview::PreviewReport;
use restore_graph::GraphClient;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{GROUP_ALL, GROUP_PILOT, GROUPS, PortalAdmin, SimTenant, every_kind_samples};
use serde_json::json;
use sim_support::*;

const AUTOPILOT: &str = "deviceManagement/windowsAutopilotDeploymentProfiles";

fn unpaced_client(sim: &graph_sim::SimHandle, tenant: &SimTenant) -> GraphClient {
    let mut spec = tenant.spec(sim, "graph-app");
    spec.write_budget = WriteBudget { writes: 10_000, per_seconds: 1 };
    tenant.client_for(&spec).unwrap()
}

/// An empty tenant holding only the sample's groups, under other ids than the source's.
fn empty_target(sim: &graph_sim::SimHandle) -> SimTenant {
    let target = SimTenant::create(sim, "fabrikam", "Fabrikam", Environment::Staging).unwrap();
    sim.add_group("fabrikam", "Unrelated").unwrap();
    for group in GROUPS {
        sim.add_group("fabrikam", group).unwrap();
    }
    target
}

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
