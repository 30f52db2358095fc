//! The policy kinds of issue 14b on the Graph simulator, each through the acceptance path: capture →
//! native backup → restore into an empty tenant of another Entra tenant (references mapped by name)
//! → equal state; a same-tenant drift restore; and the import of IntuneCD's files for the kind.

mod sim_support;

use std::collections::BTreeSet;

use restore_backup::{FileTree, Limits, intunecd};
use restore_core::api::{ConditionalAccessState, Environment, OptInSpec, Phase};
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

// ---- Device-management settings (the tenant-wide singleton) -----------------------------------------

/// The writes the simulator applied for `tenant`, as `METHOD path`.
fn applied_writes(sim: &graph_sim::SimHandle, tenant: &str) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.write && r.tenant.as_deref() == Some(tenant) && (200..300).contains(&r.status))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn tenant_wide_settings_are_only_updated_through_device_management_with_a_warning() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &sample_of("deviceManagementSettings")).unwrap();
    let source_client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&source_client, &source).await;
    let settings = only(&backup, "deviceManagementSettings");
    assert_eq!(settings.resource["deviceComplianceCheckinThresholdDays"], 20);

    // Another tenant has its own settings (every tenant does): the restore updates them, never
    // creates, and warns that the change is tenant-wide.
    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let (phase, findings, report) = restore(&backup, &target, &target_client, "settings").await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Update), [settings.key()]);
    assert!(keys_with_code(&findings, FindingCode::TenantWideSettingChange).contains(&settings.key()), "{findings:?}");
    let settings_writes: Vec<String> = applied_writes(&sim, "fabrikam")
        .into_iter()
        .filter(|w| w.contains("deviceManagement/settings") || w == "PATCH deviceManagement")
        .collect();
    assert_eq!(settings_writes, ["PATCH deviceManagement"], "one PATCH of the parent, no create, no delete");
    let now = capture_tenant(&target_client, &target).await;
    assert_eq!(differences_from_backup(&backup, &now), Vec::<String>::new());

    // Same tenant: a portal change is put back; a second preview changes nothing and warns of nothing.
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let change = json!({"settings": {"deviceComplianceCheckinThresholdDays": 45, "secureByDefault": false}});
    admin.call("PATCH", "deviceManagement", Some(&change)).await.unwrap();
    let (phase, findings, report) = restore(&backup, &source, &source_client, "settings-drift").await;
    assert_eq!(phase, Phase::Succeeded);
    let planned = report.items.iter().find(|i| i.key == settings.key()).unwrap();
    assert_eq!(planned.action, PlannedAction::Update);
    assert_eq!(planned.changed_fields, ["deviceComplianceCheckinThresholdDays", "secureByDefault"]);
    assert!(keys_with_code(&findings, FindingCode::TenantWideSettingChange).contains(&settings.key()));
    let after = capture_tenant(&source_client, &source).await;
    assert_eq!(differences_from_backup(&backup, &after), Vec::<String>::new());
    let (_, findings, report) = restore(&backup, &source, &source_client, "settings-again").await;
    assert!(keys_with(&report, PlannedAction::Unchanged).contains(&settings.key()));
    assert!(keys_with_code(&findings, FindingCode::TenantWideSettingChange).is_empty());
}

#[tokio::test]
async fn intunecd_device_management_settings_import_and_restore_as_the_singleton() {
    // IntuneCD's DeviceManagementSettings module GETs deviceManagement/settings and writes the
    // object as it is to `Device Management Settings/settings.json` (no name, no id).
    let (set, phase, findings, now) = restore_intunecd(&[(
        "Device Management Settings/settings.json",
        json!({"deviceComplianceCheckinThresholdDays": 25, "isScheduledActionEnabled": true, "secureByDefault": true,
            "enhancedJailBreak": false, "deviceInactivityBeforeRetirementInDay": 0, "derivedCredentialProvider": "notConfigured",
            "derivedCredentialUrl": null, "androidDeviceAdministratorEnrollmentEnabled": false,
            "ignoreDevicesForUnsupportedSettingsEnabled": false, "enableLogCollection": true,
            "enableAutopilotDiagnostics": true, "enableEnhancedTroubleshootingExperience": false,
            "enableDeviceGroupMembershipReport": false, "m365AppDiagnosticsEnabled": false}),
    )])
    .await;
    let item = only(&set, "deviceManagementSettings");
    assert_eq!(item.id, "settings");
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with_code(&findings, FindingCode::TenantWideSettingChange).contains(&item.key()));
    assert_eq!(only(&now, "deviceManagementSettings").resource["deviceComplianceCheckinThresholdDays"], 25);
}

// ---- Conditional Access ------------------------------------------------------------------------------

/// A run that opts in to Conditional Access with `state`.
fn opt_in(
    run: &mut restore_operator::cli::wizard_loop::LocalRun<
        '_,
        restore_operator::cli::local_objects::LocalObjects,
        GraphClient,
    >,
    state: ConditionalAccessState,
) {
    run.spec.scope.opt_in =
        Some(OptInSpec { types: vec!["conditionalAccessPolicy".into()], conditional_access_state: state });
}

/// Previews `backup` against `tenant` with the Conditional Access options, approves and executes
/// unless blocked.
async fn restore_ca(
    backup: &BackupSet,
    tenant: &SimTenant,
    client: &GraphClient,
    name: &str,
    state: Option<ConditionalAccessState>,
) -> (Phase, Vec<(FindingCode, Option<String>)>, PreviewReport) {
    let (objects, fetcher) = (objects_with(backup), fetcher());
    let mut run = local_run(name, tenant, &objects, &fetcher, client);
    if let Some(state) = state {
        opt_in(&mut run, state);
    }
    let phase = run.drive(|_| {}).await.unwrap();
    let report = run.report().unwrap().clone();
    let findings = report.findings.iter().map(|f| (f.code, f.item_key.clone())).collect();
    if phase != Phase::Previewed {
        return (phase, findings, report);
    }
    let digest = run.digest().unwrap().to_string();
    approve(&mut run, &digest, &tenant.label);
    let phase = run.drive(|_| {}).await.unwrap();
    if phase != Phase::Succeeded {
        eprintln!("{name}: {phase:?}: {}", serde_json::to_string(&run.status.execution).unwrap_or_default());
    }
    (phase, findings, report)
}

/// What a tenant needs for the sample policy: the Pilot group (seeded with the sample's groups), a
/// break-glass user and the Office named location, under this tenant's ids.
async fn ca_directory(admin: &PortalAdmin) -> (String, String) {
    let user = admin
        .call(
            "POST",
            "users",
            Some(&json!({"displayName": "Break Glass", "userPrincipalName": "breakglass@example.test",
            "accountEnabled": true, "mailNickname": "breakglass"})),
        )
        .await
        .unwrap();
    let location = admin
        .call(
            "POST",
            "identity/conditionalAccess/namedLocations",
            Some(&json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": "Office", "isTrusted": true,
            "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]})),
        )
        .await
        .unwrap();
    (user["id"].as_str().unwrap().to_string(), location["id"].as_str().unwrap().to_string())
}

/// MFA for the Pilot group outside the office, the break-glass user excluded (Microsoft Graph docs'
/// create example, with a group, a user and a named location).
fn pilot_mfa_policy(group: &str, user: &str, location: &str, state: &str) -> Value {
    json!({"displayName": "Pilot - MFA outside the office", "state": state,
        "conditions": {"clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {"includeGroups": [group], "excludeUsers": [user]},
            "locations": {"includeLocations": ["All"], "excludeLocations": [location]}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
}

/// A source tenant holding the sample's groups and one Conditional Access policy, and its backup.
async fn ca_source(sim: &graph_sim::SimHandle, policy_state: &str) -> (SimTenant, GraphClient, BackupSet, String) {
    let source = SimTenant::create(sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &sample_of("conditionalAccessPolicy")).unwrap();
    for group in GROUPS {
        if sim.group_ids("contoso", group).unwrap().is_empty() {
            sim.add_group("contoso", group).unwrap();
        }
    }
    let admin = PortalAdmin::sign_in(sim, &source).await.unwrap();
    let (user, location) = ca_directory(&admin).await;
    let pilot = sim.group_ids("contoso", "Pilot").unwrap().remove(0);
    let created = admin
        .call(
            "POST",
            "identity/conditionalAccess/policies",
            Some(&pilot_mfa_policy(&pilot, &user, &location, policy_state)),
        )
        .await
        .unwrap();
    let client = unpaced_client(sim, &source);
    let backup = capture_tenant(&client, &source).await;
    (source, client, backup, created["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn conditional_access_is_written_only_when_the_run_opts_in_and_then_report_only_with_mapped_references() {
    let sim = quiet_simulator().await;
    let (_, _, backup, _) = ca_source(&sim, "enabled").await;
    let policy = only(&backup, "conditionalAccessPolicy");
    let names =
        |list: &[restore_core::backup::NamedRef]| list.iter().map(|r| r.display_name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&policy.references.groups), ["Pilot"]);
    assert_eq!(names(&policy.references.users), ["Break Glass"]);
    assert_eq!(names(&policy.references.named_locations), ["Office"]);

    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    let admin = PortalAdmin::sign_in(&sim, &target).await.unwrap();
    let (target_user, target_location) = ca_directory(&admin).await;
    let target_pilot = sim.group_ids("fabrikam", "Pilot").unwrap().remove(0);

    // "All types" does not include Conditional Access: the item is left out with a finding.
    let (phase, findings, report) = restore_ca(&backup, &target, &target_client, "no-opt-in", None).await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(report.items.iter().all(|i| i.item_type != "conditionalAccessPolicy"));
    assert!(findings.iter().any(|(c, _)| *c == FindingCode::OptInRequired), "{findings:?}");
    assert!(sim.objects("fabrikam", "identity/conditionalAccess/policies").unwrap().is_empty());

    // Opted in: created report-only, its group, user and location the target's.
    let (phase, _, report) =
        restore_ca(&backup, &target, &target_client, "opt-in", Some(ConditionalAccessState::ReportOnly)).await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(keys_with(&report, PlannedAction::Create).last(), Some(&policy.key()));
    let written = sim.objects("fabrikam", "identity/conditionalAccess/policies").unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["state"], "enabledForReportingButNotEnforced", "created report-only");
    assert_eq!(written[0]["conditions"]["users"]["includeGroups"], json!([target_pilot]));
    assert_eq!(written[0]["conditions"]["users"]["excludeUsers"], json!([target_user]));
    assert_eq!(written[0]["conditions"]["locations"]["excludeLocations"], json!([target_location]));
    let now = capture_tenant(&target_client, &target).await;
    let mut report_only = backup.clone();
    for item in report_only.items.iter_mut().filter(|i| i.item_type == "conditionalAccessPolicy") {
        item.resource["state"] = json!("enabledForReportingButNotEnforced");
    }
    assert_eq!(differences_from_backup(&report_only, &now), Vec::<String>::new());
}

#[tokio::test]
async fn a_condition_reference_the_target_cannot_map_blocks_and_nothing_is_written() {
    let sim = quiet_simulator().await;
    let (_, _, backup, _) = ca_source(&sim, "enabled").await;
    let target = empty_target(&sim);
    let target_client = unpaced_client(&sim, &target);
    // The target has the group and the user but no "Office" named location.
    let admin = PortalAdmin::sign_in(&sim, &target).await.unwrap();
    admin
        .call("POST", "users", Some(&json!({"displayName": "Break Glass", "userPrincipalName": "bg@fabrikam.test"})))
        .await
        .unwrap();
    let (phase, findings, _) =
        restore_ca(&backup, &target, &target_client, "unmapped", Some(ConditionalAccessState::ReportOnly)).await;
    assert_eq!(phase, Phase::Blocked);
    let policy = only(&backup, "conditionalAccessPolicy").key();
    assert!(keys_with_code(&findings, FindingCode::UnmappedNamedLocation).contains(&policy), "{findings:?}");
    assert!(sim.objects("fabrikam", "identity/conditionalAccess/policies").unwrap().is_empty());
}

#[tokio::test]
async fn same_tenant_drift_restores_the_conditions_and_leaves_the_state_unless_asked() {
    let sim = quiet_simulator().await;
    let (source, client, backup, id) = ca_source(&sim, "enabled").await;
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let path = format!("identity/conditionalAccess/policies/{id}");
    let drift = json!({"state": "disabled", "conditions": {"clientAppTypes": ["all"],
        "applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]},
        "locations": {"includeLocations": ["All"]}}});
    admin.call("PATCH", &path, Some(&drift)).await.unwrap();

    let (phase, _, report) =
        restore_ca(&backup, &source, &client, "drift", Some(ConditionalAccessState::ReportOnly)).await;
    assert_eq!(phase, Phase::Succeeded);
    let policy = only(&backup, "conditionalAccessPolicy").key();
    assert_eq!(keys_with(&report, PlannedAction::Update), std::slice::from_ref(&policy));
    let live = &sim.objects("contoso", "identity/conditionalAccess/policies").unwrap()[0];
    assert_eq!(live["conditions"], backup.items.iter().find(|i| i.key() == policy).unwrap().resource["conditions"]);
    assert_eq!(live["state"], "disabled", "reportOnly never writes the state of an existing policy");

    let (phase, _, _) = restore_ca(&backup, &source, &client, "state", Some(ConditionalAccessState::FromBackup)).await;
    assert_eq!(phase, Phase::Succeeded);
    assert_eq!(sim.objects("contoso", "identity/conditionalAccess/policies").unwrap()[0]["state"], "enabled");
}

#[tokio::test]
async fn changing_the_state_of_a_policy_that_governs_the_restores_own_sign_in_is_a_blocker() {
    let sim = quiet_simulator().await;
    let source = SimTenant::create(&sim, "contoso", "Contoso", Environment::Staging).unwrap();
    sim.seed("contoso", &sample_of("conditionalAccessPolicy")).unwrap();
    let admin = PortalAdmin::sign_in(&sim, &source).await.unwrap();
    let everyone = json!({"displayName": "Everyone - MFA", "state": "enabled",
        "conditions": {"clientAppTypes": ["all"], "applications": {"includeApplications": ["All"]},
            "users": {"includeUsers": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}});
    let created = admin.call("POST", "identity/conditionalAccess/policies", Some(&everyone)).await.unwrap();
    let client = unpaced_client(&sim, &source);
    let backup = capture_tenant(&client, &source).await;
    let key = only(&backup, "conditionalAccessPolicy").key();
    let path = format!("identity/conditionalAccess/policies/{}", created["id"].as_str().unwrap());
    admin.call("PATCH", &path, Some(&json!({"state": "enabledForReportingButNotEnforced"}))).await.unwrap();
    let writes_before = writes_to(&sim, "contoso");

    // Writing the backup's state would enforce MFA on every sign-in, the restore's included: blocked.
    let (phase, findings, _) =
        restore_ca(&backup, &source, &client, "lockout", Some(ConditionalAccessState::FromBackup)).await;
    assert_eq!(phase, Phase::Blocked);
    assert!(keys_with_code(&findings, FindingCode::ConditionalAccessGovernsOwnSignIn).contains(&key), "{findings:?}");
    assert_eq!(writes_to(&sim, "contoso"), writes_before, "a blocked run writes nothing");

    // The default leaves the state alone: nothing to block, nothing changes.
    let (phase, findings, _) =
        restore_ca(&backup, &source, &client, "safe", Some(ConditionalAccessState::ReportOnly)).await;
    assert_eq!(phase, Phase::Succeeded);
    assert!(keys_with_code(&findings, FindingCode::ConditionalAccessGovernsOwnSignIn).is_empty());
    assert_eq!(
        sim.objects("contoso", "identity/conditionalAccess/policies").unwrap()[0]["state"],
        "enabledForReportingButNotEnforced"
    );
}

#[tokio::test]
async fn intunecd_conditional_access_files_import_and_restore_report_only_when_opted_in() {
    // IntuneCD's ConditionalAccess module lists identity/conditionalAccess/policies and writes each
    // policy as Graph returns it (ids, not names) to `Conditional Access/`.
    let tree = FileTree::from_files(
        [(
            "Conditional Access/Admins - MFA.json",
            serde_json::to_vec(&json!({"displayName": "Admins - MFA", "state": "enabled",                 "conditions": {"clientAppTypes": ["all"], "applications": {"includeApplications": ["All"]},
                    "users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}))
            .unwrap(),
        )],
        &Limits::default(),
    )
    .unwrap();
    let mut loaded = intunecd::parse(&tree).unwrap();
    assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
    loaded.set.tenant = Some(BackupTenant { id: "contoso".into(), label: "Contoso".into() });
    loaded.set.captured_at = Some("2026-01-15T09:00:00Z".into());
    let sim = quiet_simulator().await;
    let target = empty_target(&sim);
    let client = unpaced_client(&sim, &target);
    let (phase, _, _) =
        restore_ca(&loaded.set, &target, &client, "intunecd-ca", Some(ConditionalAccessState::ReportOnly)).await;
    assert_eq!(phase, Phase::Succeeded);
    let written = sim.objects("fabrikam", "identity/conditionalAccess/policies").unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["state"], "enabledForReportingButNotEnforced");
}
