//! The policy kinds of issue 14b on the Graph simulator, each through the acceptance path: capture →
//! native backup → restore into an empty tenant of another Entra tenant (references mapped by name)
//! → equal state; a same-tenant drift restore; and the import of IntuneCD's files for the kind.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::{FileTree, Limits, intunecd};
use restore_core::api::{Environment, Phase, WriteBudget};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant};
use restore_core::catalog::item_type;
use restore_core::engine::analysis::PlannedAction;
use restore_core::engine::checks::FindingCode;
use restore_core::engine::preview::PreviewReport;
use restore_graph::GraphClient;
use restore_operator::cli::demo::differences_from_backup;
use restore_operator::cli::demo_backup::{GROUPS, PortalAdmin, SimTenant, every_kind_samples, sample_backup};
use serde_json::{Value, json};
use sim_support::*;

/// A client whose write budget does not pace a run (pacing is covered elsewhere).
fn unpaced_client(sim: &graph_sim::SimHandle, tenant: &SimTenant) -> GraphClient {
    let mut spec = tenant.spec(sim, "graph-app");
    spec.write_budget = WriteBudget { writes: 10_000, per_seconds: 1 };
    tenant.client_for(&spec).unwrap()
}

/// An empty tenant of another Entra tenant holding only the sample's groups, under other ids.
fn empty_target(sim: &graph_sim::SimHandle) -> SimTenant {
    let target = SimTenant::create(sim, "fabrikam", "Fabrikam", Environment::Staging).unwrap();
    sim.add_group("fabrikam", "Unrelated").unwrap();
    for group in GROUPS {
        sim.add_group("fabrikam", group).unwrap();
    }
    target
}

/// The sample's foundations plus the demo sample's objects of `kind`.
fn sample_of(kind: &str) -> BackupSet {
    let mut set = sample_backup(BackupTenant { id: "contoso".into(), label: "Contoso".into() }, 0);
    set.items.extend(every_kind_samples().into_iter().filter(|i| i.item_type == kind));
    set
}

/// Previews `backup` against `tenant`, approves the digest and executes.
async fn restore(
    backup: &BackupSet,
    tenant: &SimTenant,
    client: &GraphClient,
    name: &str,
) -> (Phase, Vec<(FindingCode, Option<String>)>, PreviewReport) {
    let (objects, fetcher) = (objects_with(backup), fetcher());
    let mut run = local_run(name, tenant, &objects, &fetcher, client);
    assert_eq!(run.drive(|_| {}).await.unwrap(), Phase::Previewed, "{}", run.condition_message("Ready"));
    let report = run.report().unwrap().clone();
    let findings = report.findings.iter().map(|f| (f.code, f.item_key.clone())).collect();
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, &tenant.label);
    let phase = run.drive(|_| {}).await.unwrap();
    if phase != Phase::Succeeded {
        eprintln!("{name}: {phase:?}: {}", serde_json::to_string(&run.status.execution).unwrap_or_default());
    }
    (phase, findings, report)
}

fn keys_with_code(findings: &[(FindingCode, Option<String>)], code: FindingCode) -> BTreeSet<String> {
    findings.iter().filter(|(c, _)| *c == code).filter_map(|(_, k)| k.clone()).collect()
}

/// The one captured item of `kind`.
fn only<'b>(backup: &'b BackupSet, kind: &str) -> &'b BackupItem {
    let mut of_kind = backup.items.iter().filter(|i| i.item_type == kind);
    let first = of_kind.next().unwrap_or_else(|| panic!("no {kind} captured"));
    assert!(of_kind.next().is_none(), "one {kind} expected");
    first
}

/// The acceptance path of one kind: the sample object is captured, restored into an empty tenant of
/// another Entra tenant and compared equal; then changed in the portal by `drifts` (method, path
/// after the object's, body) and restored in the same tenant (one update), equal again. Returns the
/// captured backup and the target's state.
async fn round_trip(kind: &str, drifts: &[(&str, &str, Value)]) -> (BackupSet, BackupSet) {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &sample_of(kind)).unwrap();
    let source_client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&source_client, &source).await;
    let captured = only(&backup, kind).clone();

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, _, report) = restore(&backup, &target, &target_client, "cross-tenant").await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with(&report, PlannedAction::Create).contains(&captured.key()));
    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());

    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let path = format!("{}/{}", item_type(kind).unwrap().collection, captured.id);
    for (method, suffix, body) in drifts {
        admin.call(method, &format!("{path}{suffix}"), Some(body)).await.unwrap();
    }
    let (phase, _, report) = restore(&backup, &source, &source_client, "drift").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Update), [captured.key()]);
    let after = capture_tenant(&source_client, &source).await;
    assert_eq!(differences_from_backup(&backup, &after), Vec::<String>::new());
    (backup, now)
}

/// An IntuneCD backup of `files` (path, JSON), imported, restored into an empty tenant.
async fn restore_intunecd(
    files: &[(&str, Value)],
) -> (BackupSet, Phase, Vec<(FindingCode, Option<String>)>, BackupSet) {
    let tree = FileTree::from_files(
        files.iter().map(|(path, body)| (*path, serde_json::to_vec(body).unwrap())),
        &Limits::default(),
    )
    .unwrap();
    let mut loaded = intunecd::parse(&tree).unwrap();
    // IntuneCD records no tenant; the native archive the run reads needs one.
    loaded.set.tenant = Some(BackupTenant { id: "contoso".into(), label: "Contoso".into() });
    loaded.set.captured_at = Some("2026-01-15T09:00:00Z".into());
    assert!(
        loaded.findings.iter().all(|f| f.code != restore_backup::FindingCode::UnknownType),
        "{:?}",
        loaded.findings
    );
    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, findings, _) = restore(&loaded.set, &target, &client, "intunecd").await;
    let now = capture_tenant(&client, &target).await;
    (loaded.set, phase, findings, now)
}

// ---- App configuration policies for managed apps ---------------------------------------------------

#[tokio::test]
async fn a_managed_app_configuration_round_trips_with_its_apps_settings_and_assignments() {
    let drift = json!({"description": "changed by hand",
        "customSettings": [{"name": "com.microsoft.intune.mam.managedbrowser.homepage", "value": "https://else.example"}]});
    let (backup, now) = round_trip("managedAppConfigurationPolicy", &[("PATCH", "", drift)]).await;
    let restored = only(&now, "managedAppConfigurationPolicy");
    assert_eq!(restored.sub_resources["apps"][0]["mobileAppIdentifier"]["bundleId"], "com.microsoft.msedge");
    assert_eq!(
        restored.resource["customSettings"],
        only(&backup, "managedAppConfigurationPolicy").resource["customSettings"]
    );
    let group = &restored.assignments.as_ref().unwrap()[0]["target"]["groupId"];
    assert_eq!(restored.references.groups[0].display_name, "All Staff");
    assert_eq!(restored.references.groups[0].id, group.as_str().unwrap(), "the group is the target tenant's");
}

#[tokio::test]
async fn intunecd_backs_managed_app_configurations_up_in_its_app_protection_folder() {
    // IntuneCD's AppProtection module lists deviceAppManagement/managedAppPolicies, which holds the
    // targeted managed app configurations too; it writes them to `App Protection/` by display name,
    // without `apps` (the list does not expand them) and with group names in the assignments.
    let (set, phase, findings, now) = restore_intunecd(&[(
        "App Protection/Edge homepage_targetedManagedAppConfiguration.json",
        json!({"@odata.type": "#microsoft.graph.targetedManagedAppConfiguration", "displayName": "Edge homepage",
            "description": "", "roleScopeTagIds": ["Default"], "appGroupType": "selectedPublicApps",
            "targetedAppManagementLevels": "unspecified",
            "customSettings": [{"name": "com.microsoft.intune.mam.managedbrowser.homepage", "value": "https://intranet.example"}],
            "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupName": "Pilot",
                "deviceAndAppManagementAssignmentFilterType": "none"}}]}),
    )])
    .await;
    let item = only(&set, "managedAppConfigurationPolicy");
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with_code(&findings, FindingCode::AppProtectionWithoutApps).contains(&item.key()), "{findings:?}");
    let restored = only(&now, "managedAppConfigurationPolicy");
    assert_eq!(restored.display_name, "Edge homepage");
    assert_eq!(restored.references.groups[0].display_name, "Pilot");
}

// ---- New-style compliance policies (deviceManagement/compliancePolicies) ---------------------------

#[tokio::test]
async fn a_settings_catalog_compliance_policy_round_trips_with_settings_rules_and_mapped_references() {
    // The portal changes the description and replaces the rules with a bare block action: the
    // restore writes the properties back and the rules through setScheduledActions.
    let rules = json!({"scheduledActions": [{"ruleName": null, "scheduledActionConfigurations": [
        {"actionType": "block", "gracePeriodHours": 72, "notificationTemplateId": "", "notificationMessageCCList": []}]}]});
    let drifts = [("PATCH", "", json!({"description": "changed by hand"})), ("POST", "/setScheduledActions", rules)];
    let (backup, now) = round_trip("settingsCatalogCompliancePolicy", &drifts).await;
    let source = only(&backup, "settingsCatalogCompliancePolicy");
    let restored = only(&now, "settingsCatalogCompliancePolicy");
    assert_eq!(restored.display_name, "Linux - disk encryption", "identified by name");
    assert_eq!(restored.sub_resources["settings"].len(), 1);
    let actions = &restored.sub_resources["scheduledActionsForRule"][0]["scheduledActionConfigurations"];
    let notify = actions.as_array().unwrap().iter().find(|a| a["actionType"] == "notification").unwrap();
    let template = &restored.references.notification_templates[0];
    assert_eq!(notify["notificationTemplateId"], template.id.as_str(), "the template is the target's");
    assert_ne!(Some(template.id.as_str()), source.references.notification_templates.first().map(|t| t.id.as_str()));
    let cc = notify["notificationMessageCCList"][0].as_str().unwrap();
    assert_eq!(restored.references.groups.iter().find(|g| g.id == cc).unwrap().display_name, "Finance");
}

#[tokio::test]
async fn intunecd_new_style_compliance_policies_import_from_the_compliance_folder_and_restore() {
    // IntuneCD's DeviceCompliance module writes them into `Compliance Policies/Policies/` by `name`,
    // with the rules read by `$expand=scheduledActionConfigurations`, the template's name beside its
    // id and the Linux discovery script's name (`detectionScriptName`), which are not Graph's.
    let (set, phase, _, now) = restore_intunecd(&[(
        "Compliance Policies/Policies/Linux encryption.json",
        json!({"name": "Linux encryption", "description": "", "platforms": "linux", "technologies": "linuxMdm",
            "roleScopeTagIds": ["Default"], "detectionScriptName": null, "settingCount": 1,
            "settings": [{"id": "0", "settingInstance": {
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                "settingDefinitionId": "linux_deviceencryption_required",
                "choiceSettingValue": {"value": "linux_deviceencryption_required_true", "children": []}}}],
            "scheduledActionsForRule": [{"ruleName": null, "scheduledActionConfigurations": [
                {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": "00000000-0000-0000-0000-000000000000",
                    "notificationMessageCCList": []}]}],
            "assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupName": "Finance",
                "deviceAndAppManagementAssignmentFilterType": "none"}}]}),
    )])
    .await;
    assert!(only(&set, "settingsCatalogCompliancePolicy").resource.get("detectionScriptName").is_none());
    assert_eq!(phase, Phase::Succeeded);
    let restored = only(&now, "settingsCatalogCompliancePolicy");
    assert_eq!(restored.display_name, "Linux encryption");
    assert_eq!(restored.references.groups[0].display_name, "Finance");
    assert_eq!(
        restored.sub_resources["settings"][0]["settingInstance"]["settingDefinitionId"],
        "linux_deviceencryption_required"
    );
}
