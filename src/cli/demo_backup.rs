//! The sample tenant of the `demo` command (also used by the acceptance tests and the benchmark):
//! a deterministic backup set of foundations, groups and every restorable policy type, and simulated tenants.

use std::time::Duration;

use graph_sim::{AppCredential, SimConfig, SimError, SimHandle, Simulator};
use restore_core::api::{Environment, IntuneTenantSpec, WriteBudget};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use restore_core::canonical::{digest_of, sha256_digest};
use restore_core::catalog::{item_type, platform_of};
use restore_graph::{Credentials, GraphClient, GraphError, GraphOptions, RetryPolicy, SecretString};
use serde_json::{Value, json};

/// Scope tag "Paris" (id 1 in the sample tenant).
pub const TAG_PARIS: &str = "Paris";
/// Scope tag "Berlin" (id 2).
pub const TAG_BERLIN: &str = "Berlin";
/// The sample's assignment filter.
pub const FILTER: &str = "Windows 11 devices";
/// The sample's notification template.
pub const TEMPLATE: &str = "Noncompliance email";
/// Group every user is in.
pub const GROUP_ALL: &str = "All Staff";
/// Pilot devices group.
pub const GROUP_PILOT: &str = "Pilot";
/// Finance group.
pub const GROUP_FINANCE: &str = "Finance";
/// Every group the sample's assignments reference.
pub const GROUPS: [&str; 3] = [GROUP_ALL, GROUP_PILOT, GROUP_FINANCE];

/// How many policy kinds the sample cycles through (one of each original restorable type and an
/// Administrative Template).
pub const POLICY_KINDS: usize = 9;

/// The nil GUID Graph uses for "no filter" and "no template".
const NIL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// A GUID derived from a name: the sample is the same on every machine.
pub fn sample_guid(name: &str) -> String {
    let digest = sha256_digest(name.as_bytes());
    let hex = &digest["sha256:".len()..];
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

fn named(id: &str, name: &str) -> NamedRef {
    NamedRef { id: id.to_string(), display_name: name.to_string() }
}

fn group_ref(name: &str) -> NamedRef {
    named(&sample_guid(&format!("group/{name}")), name)
}

fn filter_ref() -> NamedRef {
    named(&sample_guid("filter/windows11"), FILTER)
}

fn template_ref() -> NamedRef {
    named(&sample_guid("template/noncompliance"), TEMPLATE)
}

fn tag_ref(name: &str) -> NamedRef {
    match name {
        TAG_PARIS => named("1", TAG_PARIS),
        _ => named("2", TAG_BERLIN),
    }
}

/// An item of `type_name` with the platform its payload implies.
fn item(type_name: &str, id: &str, resource: Value, references: References) -> BackupItem {
    let display_name = resource.get("displayName").or_else(|| resource.get("name")).and_then(Value::as_str);
    let display_name = display_name.unwrap_or_default().to_string();
    let platform = item_type(type_name).map_or_else(|| "any".to_string(), |t| platform_of(t, &resource));
    let assignable = item_type(type_name).is_some_and(|t| t.assignable);
    BackupItem {
        item_type: type_name.to_string(),
        id: id.to_string(),
        display_name,
        platform,
        resource,
        assignments: assignable.then(Vec::new),
        sub_resources: Default::default(),
        references,
    }
}

fn foundations() -> Vec<BackupItem> {
    let mut items = Vec::new();
    for tag in [TAG_PARIS, TAG_BERLIN] {
        let r = tag_ref(tag);
        items.push(item(
            "scopeTag",
            &r.id,
            json!({"@odata.type": "#microsoft.graph.roleScopeTag", "id": r.id, "displayName": tag,
                "description": format!("{tag} office"), "isBuiltIn": false}),
            References::default(),
        ));
    }
    let f = filter_ref();
    items.push(item(
        "assignmentFilter",
        &f.id,
        json!({"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter", "id": f.id,
            "displayName": FILTER, "description": "Windows 11 only", "platform": "windows10AndLater",
            "rule": "(device.osVersion -startsWith \"10.0.22\")", "roleScopeTags": ["0"]}),
        References::default(),
    ));
    let t = template_ref();
    let mut template = item(
        "notificationTemplate",
        &t.id,
        json!({"@odata.type": "#microsoft.graph.notificationMessageTemplate", "id": t.id, "displayName": TEMPLATE,
            "defaultLocale": "en-us", "brandingOptions": "includeCompanyLogo", "roleScopeTagIds": ["0"]}),
        References::default(),
    );
    template.sub_resources.insert(
        "localizedNotificationMessages".into(),
        vec![json!({"id": format!("{}_en-us", t.id), "locale": "en-us", "subject": "Your device is not compliant",
            "messageTemplate": "Please update your device within 24 hours.", "isDefault": true})],
    );
    items.push(template);
    items
}

/// An assignment to `group`, with the sample's filter when `filter` is set.
fn assignment(item_id: &str, group: &str, filter: bool) -> Value {
    let g = group_ref(group);
    let (filter_id, filter_type) =
        if filter { (Value::String(filter_ref().id), "include") } else { (Value::Null, "none") };
    json!({"id": format!("{item_id}_{}", g.id), "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
        "groupId": g.id, "deviceAndAppManagementAssignmentFilterId": filter_id,
        "deviceAndAppManagementAssignmentFilterType": filter_type}})
}

/// Policy number `i` of the sample; the kinds cycle through [`POLICY_KINDS`] shapes.
pub fn sample_policy(i: usize) -> BackupItem {
    let tag = if i.is_multiple_of(2) { Some(tag_ref(TAG_PARIS)) } else { None };
    let tag_ids = tag.as_ref().map_or_else(|| json!(["0"]), |t| json!([t.id]));
    let mut refs = References { scope_tags: tag.into_iter().collect(), ..References::default() };
    let id = sample_guid(&format!("policy/{i}"));
    let (type_name, resource, subs, assignments): (&str, Value, Vec<(&str, Value)>, Vec<Value>) = match i % POLICY_KINDS
    {
        0 => {
            refs.groups.push(group_ref(GROUP_PILOT));
            refs.filters.push(filter_ref());
            (
                "deviceConfiguration",
                json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "id": id,
                    "displayName": format!("Win10 custom {i:02}"), "description": "OMA settings",
                    "roleScopeTagIds": tag_ids,
                    "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingInteger", "displayName": "Lock",
                        "description": null, "omaUri": "./Device/Vendor/MSFT/Policy/Config/DeviceLock/MaxInactivityTimeDeviceLock",
                        "value": 5, "isReadOnly": false}]}),
                vec![],
                vec![assignment(&id, GROUP_PILOT, true)],
            )
        }
        1 => {
            refs.groups.extend([group_ref(GROUP_ALL), group_ref(GROUP_FINANCE)]);
            let finance = group_ref(GROUP_FINANCE);
            (
                "deviceConfiguration",
                json!({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration", "id": id,
                    "displayName": format!("iOS restrictions {i:02}"), "description": null, "roleScopeTagIds": tag_ids,
                    "passcodeRequired": true, "passcodeMinimumLength": 6, "cameraBlocked": false}),
                vec![],
                vec![
                    assignment(&id, GROUP_ALL, false),
                    json!({"id": format!("{id}_{}_x", finance.id), "target": {
                        "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": finance.id}}),
                ],
            )
        }
        2 => {
            refs.groups.push(group_ref(GROUP_FINANCE));
            refs.notification_templates.push(template_ref());
            (
                "compliancePolicy",
                json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "id": id,
                    "displayName": format!("Win10 compliance {i:02}"), "description": "baseline",
                    "roleScopeTagIds": tag_ids, "passwordRequired": true, "passwordMinimumLength": 12,
                    "bitLockerEnabled": true}),
                vec![(
                    "scheduledActionsForRule",
                    json!([{"id": format!("{id}_rule"), "ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                        {"id": format!("{id}_block"), "actionType": "block", "gracePeriodHours": 0,
                            "notificationTemplateId": NIL_GUID, "notificationMessageCCList": []},
                        {"id": format!("{id}_notify"), "actionType": "notification", "gracePeriodHours": 24,
                            "notificationTemplateId": template_ref().id, "notificationMessageCCList": []}]}]),
                )],
                vec![assignment(&id, GROUP_FINANCE, false)],
            )
        }
        3 => {
            refs.groups.push(group_ref(GROUP_ALL));
            refs.filters.push(filter_ref());
            (
                "settingsCatalogPolicy",
                json!({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy", "id": id,
                    "name": format!("Edge baseline {i:02}"), "description": "settings catalog",
                    "platforms": "windows10", "technologies": "mdm", "roleScopeTagIds": tag_ids,
                    "templateReference": {"templateId": "", "templateFamily": "none"}}),
                vec![(
                    "settings",
                    json!([
                        {"id": "0", "settingInstance": {
                            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                            "settingDefinitionId": "device_vendor_msft_policy_config_microsoft_edge_smartscreenenabled",
                            "choiceSettingValue": {"value": "device_vendor_msft_policy_config_microsoft_edge_smartscreenenabled_1",
                                "children": []}}},
                        {"id": "1", "settingInstance": {
                            "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                            "settingDefinitionId": "device_vendor_msft_policy_config_microsoft_edge_homepagelocation",
                            "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                                "value": "https://intranet.example"}}}]),
                )],
                vec![assignment(&id, GROUP_ALL, true)],
            )
        }
        4 => {
            refs.groups.push(group_ref(GROUP_PILOT));
            (
                "powerShellScript",
                json!({"@odata.type": "#microsoft.graph.deviceManagementScript", "id": id,
                    "displayName": format!("Set wallpaper {i:02}"), "description": "",
                    "fileName": format!("wallpaper{i}.ps1"), "scriptContent": "V3JpdGUtSG9zdCAiaGVsbG8i",
                    "runAsAccount": "system", "enforceSignatureCheck": false, "runAs32Bit": false,
                    "roleScopeTagIds": tag_ids}),
                vec![],
                vec![assignment(&id, GROUP_PILOT, false)],
            )
        }
        5 => {
            refs.groups.push(group_ref(GROUP_PILOT));
            (
                "featureUpdateProfile",
                json!({"@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile", "id": id,
                    "displayName": format!("Windows 11 23H2 {i:02}"), "description": "",
                    "featureUpdateVersion": "Windows 11, version 23H2", "roleScopeTagIds": tag_ids,
                    "installLatestWindows10OnWindows11IneligibleDevice": false}),
                vec![],
                vec![assignment(&id, GROUP_PILOT, false)],
            )
        }
        6 => {
            refs.groups.push(group_ref(GROUP_ALL));
            (
                "iosAppProtectionPolicy",
                json!({"@odata.type": "#microsoft.graph.iosManagedAppProtection", "id": id,
                    "displayName": format!("iOS MAM {i:02}"), "description": "", "roleScopeTagIds": tag_ids,
                    "pinRequired": true, "minimumPinLength": 4}),
                vec![(
                    "apps",
                    json!([
                        {"id": format!("{id}_outlook"), "mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier",
                            "bundleId": "com.microsoft.office.outlook"}},
                        {"id": format!("{id}_teams"), "mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier",
                            "bundleId": "com.microsoft.skype.teams"}}]),
                )],
                vec![assignment(&id, GROUP_ALL, false)],
            )
        }
        7 => {
            refs.groups.push(group_ref(GROUP_FINANCE));
            (
                "androidAppProtectionPolicy",
                json!({"@odata.type": "#microsoft.graph.androidManagedAppProtection", "id": id,
                    "displayName": format!("Android MAM {i:02}"), "description": "", "roleScopeTagIds": tag_ids,
                    "pinRequired": true, "minimumPinLength": 6, "screenCaptureBlocked": true}),
                vec![(
                    "apps",
                    json!([{"id": format!("{id}_outlook"), "mobileAppIdentifier": {
                        "@odata.type": "#microsoft.graph.androidMobileAppIdentifier",
                        "packageId": "com.microsoft.office.outlook"}}]),
                )],
                vec![assignment(&id, GROUP_FINANCE, false)],
            )
        }
        _ => {
            refs.groups.push(group_ref(GROUP_ALL));
            (
                "administrativeTemplate",
                json!({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "id": id,
                    "displayName": format!("Admin template {i:02}"), "description": "", "roleScopeTagIds": ["0"]}),
                vec![("definitionValues", json!([]))],
                vec![assignment(&id, GROUP_ALL, false)],
            )
        }
    };
    let mut policy = item(type_name, &id, resource, refs);
    for (name, list) in subs {
        policy.sub_resources.insert(name.to_string(), list.as_array().cloned().unwrap_or_default());
    }
    policy.assignments = Some(assignments);
    policy
}

/// One object of each kind beyond the [`POLICY_KINDS`] cycle: the script, update-profile and
/// category kinds, a reusable setting, a custom role, an app configuration policy, and device configurations whose restore cannot carry
/// everything (a Wi-Fi pre-shared key, a SCEP certificate profile) or that only the published model
/// lists (Delivery Optimization).
pub fn every_kind_samples() -> Vec<BackupItem> {
    let mut items = every_kind_sample_items();
    items.extend(policy_kind_samples());
    items.extend(intent_kind_samples());
    items.extend(admx_samples());
    items.extend(apple_kind_samples());
    debug_assert_eq!(items.len(), EVERY_KIND_SAMPLES);
    items
}

/// How many objects [`every_kind_samples`] adds to the sample.
pub const EVERY_KIND_SAMPLES: usize =
    15 + POLICY_KIND_SAMPLES + INTENT_KIND_SAMPLES + ADMX_SAMPLES + APPLE_KIND_SAMPLES;

/// How many objects [`admx_samples`] adds (issue 14's Administrative Templates).
pub const ADMX_SAMPLES: usize = 1;

/// An Administrative Template setting three of the simulator's built-in ADMX definitions (a text
/// box, a decimal box, a policy disabled), as a capture reads it: each value with its definition and
/// its presentation values with their presentations expanded.
fn admx_samples() -> Vec<BackupItem> {
    let id = sample_guid("kind/administrative-template");
    let definitions = graph_sim::SimHandle::built_in_admx_definitions();
    let value = |name: &str, enabled: bool, presentation_values: &[Value]| -> Value {
        let mut definition = definitions.iter().find(|d| d["displayName"] == name).cloned().unwrap_or(Value::Null);
        let presentations = definition.as_object_mut().and_then(|d| d.remove("presentations")).unwrap_or(json!([]));
        let presentation_values: Vec<Value> = presentation_values
            .iter()
            .zip(presentations.as_array().into_iter().flatten())
            .enumerate()
            .map(|(i, (pv, presentation))| {
                let mut pv = pv.clone();
                pv["id"] = json!(sample_guid(&format!("kind/administrative-template/{name}/{i}")));
                pv["presentation"] = presentation.clone();
                pv
            })
            .collect();
        json!({"id": sample_guid(&format!("kind/administrative-template/{name}")), "enabled": enabled,
               "configurationType": "policy", "definition": definition, "presentationValues": presentation_values})
    };
    let values = vec![
        value(
            "Configure the home page URL",
            true,
            &[
                json!({"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "https://intranet.example"}),
            ],
        ),
        value(
            "Set disk cache size, in bytes",
            true,
            &[json!({"@odata.type": "#microsoft.graph.groupPolicyPresentationValueDecimal", "value": 104857600})],
        ),
        value("Prevent access to registry editing tools", false, &[]),
    ];
    let mut template = item(
        "administrativeTemplate",
        &id,
        json!({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "id": id,
            "displayName": "Edge - home page and cache (ADMX)", "description": "Administrative Template",
            "roleScopeTagIds": ["0"]}),
        References { groups: vec![group_ref(GROUP_PILOT)], ..References::default() },
    );
    template.sub_resources.insert("definitionValues".into(), values);
    template.assignments = Some(vec![assignment(&id, GROUP_PILOT, false)]);
    vec![template]
}

/// How many objects [`policy_kind_samples`] adds (issue 14b's kinds).
pub const POLICY_KIND_SAMPLES: usize = 3;

/// One object of each policy kind of issue 14b: an app configuration policy for managed apps, a
/// new-style (Settings Catalog) compliance policy and the tenant-wide device-management settings.
fn policy_kind_samples() -> Vec<BackupItem> {
    let id = |name: &str| sample_guid(&format!("kind/{name}"));
    let managed_app_config_id = id("managed-app-configuration");
    let mut managed_app_config = item(
        "managedAppConfigurationPolicy",
        &managed_app_config_id,
        json!({"@odata.type": "#microsoft.graph.targetedManagedAppConfiguration", "id": managed_app_config_id,
            "displayName": "Edge - managed apps homepage", "description": "", "roleScopeTagIds": ["0"],
            "appGroupType": "selectedPublicApps", "targetedAppManagementLevels": "unspecified",
            "customSettings": [{"name": "com.microsoft.intune.mam.managedbrowser.homepage",
                "value": "https://intranet.example"}]}),
        References { groups: vec![group_ref(GROUP_ALL)], ..References::default() },
    );
    managed_app_config.sub_resources.insert(
        "apps".into(),
        vec![json!({"id": format!("{managed_app_config_id}_edge"), "mobileAppIdentifier": {
            "@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.msedge"}})],
    );
    managed_app_config.assignments = Some(vec![assignment(&managed_app_config_id, GROUP_ALL, false)]);
    let settings = restore_core::engine::singleton::DEVICE_MANAGEMENT_SETTINGS;
    let mut device_management_settings = item(
        settings.type_name,
        settings.id,
        json!({"id": settings.id, "deviceComplianceCheckinThresholdDays": 20, "secureByDefault": true,
            "isScheduledActionEnabled": true, "deviceInactivityBeforeRetirementInDay": 180,
            "enableLogCollection": true, "enableAutopilotDiagnostics": true}),
        References::default(),
    );
    // It has no name of its own: a capture names it by the type's title.
    device_management_settings.display_name =
        item_type(settings.type_name).map(|t| t.title.to_string()).unwrap_or_default();
    vec![managed_app_config, settings_compliance_sample(&id("settings-compliance")), device_management_settings]
}

/// How many objects [`intent_kind_samples`] adds (issue 14d's kinds).
pub const INTENT_KIND_SAMPLES: usize = 1;

/// Microsoft's current Windows security baseline template (the simulator lists it).
pub const SAMPLE_INTENT_TEMPLATE: &str = "034ccd46-190c-4afc-adf1-ad7cc11262eb";

/// One endpoint-security intent: a Windows security baseline made from Microsoft's current
/// template, two settings (a boolean and an integer), assigned to All Staff.
fn intent_kind_samples() -> Vec<BackupItem> {
    let id = sample_guid("kind/intent");
    let refs = References { groups: vec![group_ref(GROUP_ALL)], ..References::default() };
    let mut intent = item(
        "endpointSecurityIntent",
        &id,
        json!({"@odata.type": "#microsoft.graph.deviceManagementIntent", "id": id,
            "displayName": "Windows security baseline", "description": "baseline for all staff",
            "templateId": SAMPLE_INTENT_TEMPLATE, "roleScopeTagIds": ["0"]}),
        refs,
    );
    intent.sub_resources.insert(
        "settings".into(),
        vec![
            json!({"@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance", "id": "0",
                "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_firewallBlockStatefulFTP",
                "valueJson": "true", "value": true}),
            json!({"@odata.type": "#microsoft.graph.deviceManagementIntegerSettingInstance", "id": "1",
                "definitionId": "deviceConfiguration--windows10GeneralConfiguration_passwordMinimumLength",
                "valueJson": "12", "value": 12}),
        ],
    );
    intent.assignments = Some(vec![assignment(&id, GROUP_ALL, false)]);
    vec![intent]
}

/// How many objects [`apple_kind_samples`] adds (issue 14e's kind).
pub const APPLE_KIND_SAMPLES: usize = 1;

/// The name of the sample's Apple enrollment-program token (a target tenant needs a token of
/// this name for the sample's enrollment profile to be restored there).
pub const SAMPLE_DEP_TOKEN_NAME: &str = "Contoso ABM";

/// The sample's token id in its source tenant.
pub fn sample_dep_token_id() -> String {
    sample_guid("dep/token")
}

/// An Apple automated device enrollment profile for iPads under the sample's token.
fn apple_kind_samples() -> Vec<BackupItem> {
    let token = sample_dep_token_id();
    let id = format!("{token}_{}", sample_guid("kind/apple-enrollment"));
    let refs = References {
        enrollment_tokens: vec![NamedRef { id: token, display_name: SAMPLE_DEP_TOKEN_NAME.into() }],
        ..References::default()
    };
    vec![item(
        "appleEnrollmentProfile",
        &id,
        json!({"@odata.type": "#microsoft.graph.depIOSEnrollmentProfile", "id": id,
            "displayName": "Shop iPads", "description": "supervised iPads in the shops",
            "isDefault": false, "isMandatory": true, "supervisedModeEnabled": true,
            "requiresUserAuthentication": false, "profileRemovalDisabled": true,
            "enabledSkipKeys": ["Siri", "Privacy"], "supportDepartment": "IT", "supportPhoneNumber": "+1 555 0100"}),
        refs,
    )]
}

/// A Linux compliance policy of `deviceManagement/compliancePolicies`: one setting, a block rule and
/// a notification that copies the Finance group.
fn settings_compliance_sample(id: &str) -> BackupItem {
    let finance = group_ref(GROUP_FINANCE);
    let refs = References {
        groups: vec![group_ref(GROUP_PILOT), finance.clone()],
        notification_templates: vec![template_ref()],
        ..References::default()
    };
    let mut policy = item(
        "settingsCatalogCompliancePolicy",
        id,
        json!({"@odata.type": "#microsoft.graph.deviceManagementCompliancePolicy", "id": id,
            "name": "Linux - disk encryption", "description": "", "platforms": "linux", "technologies": "linuxMdm",
            "roleScopeTagIds": ["0"]}),
        refs,
    );
    policy.sub_resources.insert(
        "settings".into(),
        vec![json!({"id": "0", "settingInstance": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
            "settingDefinitionId": "linux_deviceencryption_required",
            "choiceSettingValue": {"value": "linux_deviceencryption_required_true", "children": []}}})],
    );
    policy.sub_resources.insert(
        "scheduledActionsForRule".into(),
        vec![json!({"id": format!("{id}_rule"), "ruleName": null, "scheduledActionConfigurations": [
            {"id": format!("{id}_block"), "actionType": "block", "gracePeriodHours": 0,
                "notificationTemplateId": NIL_GUID, "notificationMessageCCList": []},
            {"id": format!("{id}_notify"), "actionType": "notification", "gracePeriodHours": 24,
                "notificationTemplateId": template_ref().id, "notificationMessageCCList": [finance.id]}]})],
    );
    policy.assignments = Some(vec![assignment(id, GROUP_PILOT, false)]);
    policy
}

fn every_kind_sample_items() -> Vec<BackupItem> {
    let id = |name: &str| sample_guid(&format!("kind/{name}"));
    let assigned = |type_name: &str, name: &str, resource: Value, group: &str| {
        let item_id = id(name);
        let mut resource = resource;
        resource["id"] = json!(item_id);
        let refs = References { groups: vec![group_ref(group)], ..References::default() };
        let mut it = item(type_name, &item_id, resource, refs);
        it.assignments = Some(vec![assignment(&item_id, group, false)]);
        it
    };
    let plain = |type_name: &str, name: &str, resource: Value| {
        let item_id = id(name);
        let mut resource = resource;
        resource["id"] = json!(item_id);
        item(type_name, &item_id, resource, References::default())
    };
    let mut remediation = assigned(
        "remediationScript",
        "remediation",
        json!({"@odata.type": "#microsoft.graph.deviceHealthScript", "displayName": "Clear stale temp files",
            "description": "remediation", "publisher": "Endpoint team", "runAsAccount": "system",
            "enforceSignatureCheck": false, "runAs32Bit": false, "roleScopeTagIds": ["0"],
            "detectionScriptContent": "ZXhpdCAx", "remediationScriptContent": "UmVtb3ZlLUl0ZW0gJGVudjpURU1QXCogLVJlY3Vyc2U="}),
        GROUP_PILOT,
    );
    if let Some(first) = remediation.assignments.as_mut().and_then(|a| a.first_mut()) {
        first["runRemediationScript"] = json!(true);
    }
    vec![
        remediation,
        assigned(
            "macOSShellScript",
            "shell",
            json!({"@odata.type": "#microsoft.graph.deviceShellScript", "displayName": "Set dock",
                "description": "", "fileName": "dock.sh", "scriptContent": "IyEvYmluL3NoCmRlZmF1bHRzIHdyaXRlIGNvbS5hcHBsZS5kb2NrIHRpbGVzaXplIDQ4",
                "runAsAccount": "user", "retryCount": 1, "blockExecutionNotifications": true, "roleScopeTagIds": ["0"]}),
            GROUP_ALL,
        ),
        assigned(
            "customAttributeScript",
            "custom-attribute",
            json!({"@odata.type": "#microsoft.graph.deviceCustomAttributeShellScript", "displayName": "Battery health",
                "description": "", "customAttributeName": "BatteryHealth", "customAttributeType": "string",
                "fileName": "battery.sh", "scriptContent": "IyEvYmluL3NoCnN5c3RlbV9wcm9maWxlciBTUFBvd2VyRGF0YVR5cGU=",
                "runAsAccount": "system", "roleScopeTagIds": ["0"]}),
            GROUP_ALL,
        ),
        assigned(
            "complianceScript",
            "compliance-script",
            json!({"@odata.type": "#microsoft.graph.deviceComplianceScript", "displayName": "Disk encryption check",
                "description": "", "publisher": "Endpoint team", "runAsAccount": "system",
                "enforceSignatureCheck": false, "runAs32Bit": false, "roleScopeTagIds": ["0"],
                "detectionScriptContent": "QHtCaXRMb2NrZXI9J09uJ30gfCBDb252ZXJ0VG8tSnNvbiAtQ29tcHJlc3M="}),
            GROUP_FINANCE,
        ),
        assigned(
            "qualityUpdateProfile",
            "quality-update",
            json!({"@odata.type": "#microsoft.graph.windowsQualityUpdateProfile", "displayName": "Expedite January fixes",
                "description": "", "roleScopeTagIds": ["0"],
                "expeditedUpdateSettings": {"qualityUpdateRelease": "2026-01-13T00:00:00Z", "daysUntilForcedReboot": 1}}),
            GROUP_PILOT,
        ),
        assigned(
            "driverUpdateProfile",
            "driver-update",
            json!({"@odata.type": "#microsoft.graph.windowsDriverUpdateProfile", "displayName": "Drivers - manual approval",
                "description": "", "approvalType": "manual", "roleScopeTagIds": ["0"]}),
            GROUP_PILOT,
        ),
        plain(
            "deviceCategory",
            "category",
            json!({"@odata.type": "#microsoft.graph.deviceCategory", "displayName": "Kiosk",
                "description": "shared kiosks", "roleScopeTagIds": ["0"]}),
        ),
        plain(
            "reusablePolicySetting",
            "reusable",
            json!({"@odata.type": "#microsoft.graph.deviceManagementReusablePolicySetting", "displayName": "Linux discovery script",
                "description": "", "settingDefinitionId": "linux_customcompliance_discoveryscript_reusablesetting",
                "settingInstance": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                    "settingDefinitionId": "linux_customcompliance_discoveryscript_reusablesetting",
                    "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                        "value": "IyEvYmluL3NoCmVjaG8gJ3t9Jw=="}}}),
        ),
        plain(
            "roleDefinition",
            "role",
            json!({"@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
                "displayName": "Helpdesk - read devices", "description": "custom role", "isBuiltIn": false,
                "roleScopeTagIds": ["0"], "rolePermissions": [{"resourceActions": [{"allowedResourceActions": [
                    "Microsoft.Intune_ManagedDevices_Read", "Microsoft.Intune_RemoteTasks_RebootNow"],
                    "notAllowedResourceActions": []}]}]}),
        ),
        assigned(
            "appConfigurationPolicy",
            "app-configuration",
            json!({"@odata.type": "#microsoft.graph.iosMobileAppConfiguration", "displayName": "Outlook - work accounts",
                "description": "", "roleScopeTagIds": ["0"], "targetedMobileApps": [],
                "settings": [{"appConfigKey": "com.microsoft.outlook.EmailProfile.AccountType",
                    "appConfigKeyType": "stringType", "appConfigKeyValue": "ModernAuth"}]}),
            GROUP_ALL,
        ),
        assigned(
            "deviceConfiguration",
            "delivery-optimization",
            json!({"@odata.type": "#microsoft.graph.windowsDeliveryOptimizationConfiguration",
                "displayName": "Delivery Optimization - LAN", "description": "", "roleScopeTagIds": ["0"],
                "deliveryOptimizationMode": "httpWithPeeringNat", "backgroundDownloadFromHttpDelayInSeconds": 60}),
            GROUP_ALL,
        ),
        assigned(
            "deviceConfiguration",
            "wifi",
            json!({"@odata.type": "#microsoft.graph.windowsWifiConfiguration", "displayName": "Office Wi-Fi",
                "description": "", "roleScopeTagIds": ["0"], "ssid": "Contoso", "networkName": "Contoso",
                "wifiSecurityType": "wpa2Personal", "connectAutomatically": true, "preSharedKey": null}),
            GROUP_ALL,
        ),
        assigned(
            "deviceConfiguration",
            "scep",
            json!({"@odata.type": "#microsoft.graph.iosScepCertificateProfile", "displayName": "iOS SCEP user certificate",
                "description": "", "roleScopeTagIds": ["0"], "subjectNameFormat": "commonName",
                "scepServerUrls": ["https://ndes.example/certsrv/mscep/mscep.dll"], "keySize": "size2048"}),
            GROUP_ALL,
        ),
        assigned(
            "autopilotProfile",
            "autopilot",
            json!({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
                "displayName": "Autopilot - user driven", "description": "Entra-joined, user driven",
                "language": "os-default", "deviceNameTemplate": "CORP-%SERIAL%", "deviceType": "windowsPc",
                "enableWhiteGlove": true, "extractHardwareHash": false, "roleScopeTagIds": ["0"],
                "outOfBoxExperienceSettings": {"hidePrivacySettings": true, "hideEULA": true, "userType": "standard",
                    "deviceUsageType": "singleUser", "skipKeyboardSelectionPage": true, "hideEscapeLink": true}}),
            GROUP_ALL,
        ),
        assigned(
            "enrollmentConfiguration",
            "enrollment-status-page",
            json!({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration",
                "displayName": "Enrollment status - pilot", "description": "block until required apps install",
                "priority": 1, "deviceEnrollmentConfigurationType": "windows10EnrollmentCompletionPageConfiguration",
                "roleScopeTagIds": ["0"], "showInstallationProgress": true, "blockDeviceSetupRetryByUser": false,
                "allowDeviceResetOnInstallFailure": true, "allowLogCollectionOnInstallFailure": true,
                "customErrorMessage": "Call the service desk", "installProgressTimeoutInMinutes": 60,
                "allowDeviceUseOnInstallFailure": false, "selectedMobileAppIds": [],
                "trackInstallProgressForAutopilotOnly": true, "disableUserStatusTrackingAfterFirstUser": true}),
            GROUP_PILOT,
        ),
    ]
}

/// The sample backup: 4 foundations (two scope tags, a filter, a notification template) and
/// `policies` policies of [`POLICY_KINDS`] kinds, captured from `tenant`. Items are sorted by type and
/// id; the digest is a content digest (a real capture gets the native one).
pub fn sample_backup(tenant: BackupTenant, policies: usize) -> BackupSet {
    let mut items = foundations();
    items.extend((0..policies).map(sample_policy));
    items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    let digest = digest_of(&items).unwrap_or_default();
    BackupSet { tenant: Some(tenant), captured_at: Some("2026-01-15T09:00:00Z".into()), digest, items }
}

/// The demo's sample tenant: [`sample_backup`] plus one object of every further kind
/// ([`every_kind_samples`]), so the demo and the round-trip tests cover the whole catalogue.
pub fn sample_backup_with_every_kind(tenant: BackupTenant, policies: usize) -> BackupSet {
    let mut set = sample_backup(tenant, policies);
    set.items.extend(every_kind_samples());
    set.items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    set.digest = digest_of(&set.items).unwrap_or_default();
    set
}

/// One tenant of the simulator with an app registration that has a client secret.
#[derive(Clone, Debug)]
pub struct SimTenant {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Hard-confirm label.
    pub label: String,
    /// Environment.
    pub environment: Environment,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret (Debug-redacted).
    pub secret: SecretString,
}

impl SimTenant {
    /// Adds the tenant and its app to `sim`. The secret is random: it exists only in this process.
    pub fn create(sim: &SimHandle, tenant_id: &str, label: &str, environment: Environment) -> Result<Self, SimError> {
        let secret = SecretString::new(random_secret());
        let client_id = sample_guid(&format!("app/{tenant_id}"));
        sim.add_tenant(tenant_id);
        sim.register_app(tenant_id, &client_id, AppCredential::Secret(secret.expose_secret().to_string()))?;
        Ok(SimTenant { tenant_id: tenant_id.into(), label: label.into(), environment, client_id, secret })
    }

    /// The IntuneTenant spec pointing at the simulator (its secret in the Secret `secret_name`).
    pub fn spec(&self, sim: &SimHandle, secret_name: &str) -> IntuneTenantSpec {
        IntuneTenantSpec {
            tenant_id: self.tenant_id.clone(),
            display_name: self.label.clone(),
            environment: self.environment,
            graph: restore_core::api::GraphEndpoints { endpoint: sim.base_url(), authority: sim.authority_url() },
            auth: restore_core::api::TenantAuth {
                client_id: self.client_id.clone(),
                client_secret_ref: Some(restore_core::api::SecretKeyRef {
                    name: secret_name.into(),
                    key: "clientSecret".into(),
                }),
                certificate_ref: None,
                workload_identity: None,
            },
            write_budget: WriteBudget::default(),
        }
    }

    /// A Graph client for this tenant with `spec`'s write budget and short retry waits (the
    /// simulator answers at once).
    pub fn client_for(&self, spec: &IntuneTenantSpec) -> Result<GraphClient, GraphError> {
        GraphClient::new(spec, Credentials::ClientSecret(self.secret.clone()), local_graph_options())
    }

    /// A Graph client for this tenant on `sim`.
    pub fn client(&self, sim: &SimHandle) -> Result<GraphClient, GraphError> {
        self.client_for(&self.spec(sim, "graph-app"))
    }
}

/// A secret that exists only in this process: 128 bits from the standard library's per-process
/// random hash keys.
fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        hasher.finish()
    };
    format!("sim-{:016x}{:016x}", half(), half())
}

/// Graph options for a simulator on loopback: short timeouts and retry waits.
pub fn local_graph_options() -> GraphOptions {
    GraphOptions {
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 5,
            max_total_wait: Duration::from_secs(10),
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
        },
        // The simulator listens on loopback: allowed explicitly, never by default.
        endpoints: restore_graph::EndpointAllowlist::default().allowing_loopback(),
        ..GraphOptions::default()
    }
}

/// Starts an in-process simulator on loopback with `config`, and the demo's defaults otherwise.
pub async fn start_simulator(config: SimConfig) -> Result<SimHandle, SimError> {
    Simulator::start(config).await
}

/// Why a portal-admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The request did not get an answer.
    #[error("{method} {path}: {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Graph path.
        path: String,
        /// What happened.
        message: String,
    },
    /// Graph refused it.
    #[error("{method} {path}: Graph answered {status}: {body}")]
    Refused {
        /// HTTP method.
        method: String,
        /// Graph path.
        path: String,
        /// Status code.
        status: u16,
        /// The error body.
        body: String,
    },
}

/// Someone editing the simulated tenant in the Intune portal: plain Graph calls with the tenant's
/// app, outside the operator (used to drift the tenant, deletes included).
pub struct PortalAdmin {
    http: reqwest::Client,
    beta: String,
    token: SecretString,
}

impl PortalAdmin {
    /// Signs in as `tenant`'s app on `sim`.
    pub async fn sign_in(sim: &SimHandle, tenant: &SimTenant) -> Result<Self, PortalError> {
        restore_backup::fetch::install_crypto_provider();
        let http = reqwest::Client::new();
        let path = format!("{}/oauth2/v2.0/token", tenant.tenant_id);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", tenant.client_id.as_str()),
            ("client_secret", tenant.secret.expose_secret()),
            ("scope", &format!("{}/.default", sim.base_url())),
        ];
        let answer: Value =
            Self::answer("POST", &path, http.post(format!("{}/{path}", sim.authority_url())).form(&form)).await?;
        let token = answer.get("access_token").and_then(Value::as_str).unwrap_or_default();
        Ok(PortalAdmin { http, beta: format!("{}/beta", sim.base_url()), token: SecretString::new(token) })
    }

    async fn answer(method: &str, path: &str, request: reqwest::RequestBuilder) -> Result<Value, PortalError> {
        let transport = |e: reqwest::Error| PortalError::Transport {
            method: method.into(),
            path: path.into(),
            message: e.to_string(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(PortalError::Refused { method: method.into(), path: path.into(), status, body: text });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `method` to the Graph `/beta` `path` with an optional JSON body; returns the answer's body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, PortalError> {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| PortalError::Transport {
            method: method.into(),
            path: path.into(),
            message: e.to_string(),
        })?;
        let mut request =
            self.http.request(verb, format!("{}/{path}", self.beta)).bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(method, path, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use restore_core::catalog::ITEM_TYPES;
    use restore_core::catalog::TypeClass;

    fn tenant() -> BackupTenant {
        BackupTenant { id: "t".into(), label: "T".into() }
    }

    #[test]
    fn the_sample_is_deterministic_and_covers_every_restorable_policy_type() {
        assert_eq!(sample_backup(tenant(), POLICY_KINDS).items.len(), 4 + POLICY_KINDS);
        let sample = sample_backup_with_every_kind(tenant(), POLICY_KINDS);
        assert_eq!(sample, sample_backup_with_every_kind(tenant(), POLICY_KINDS));
        assert_eq!(sample.items.len(), 4 + POLICY_KINDS + EVERY_KIND_SAMPLES);
        // Opt-in types (Conditional Access) are left out: a demo run does not opt in.
        let opt_in = restore_core::engine::conditional_access::requires_opt_in;
        for t in ITEM_TYPES
            .iter()
            .filter(|t| (t.class == TypeClass::Policy || t.class == TypeClass::Foundation) && !opt_in(t.name))
        {
            assert!(sample.items.iter().any(|i| i.item_type == t.name), "no {} in the sample", t.name);
        }
        let keys: std::collections::BTreeSet<String> = sample.items.iter().map(BackupItem::key).collect();
        assert_eq!(keys.len(), sample.items.len(), "keys are unique");
        assert_ne!(sample_guid("a"), sample_guid("b"));
        assert_eq!(sample_guid("a").len(), 36);
    }

    #[test]
    fn every_reference_of_the_sample_is_named_so_seeding_creates_it() {
        for policy in (0..POLICY_KINDS).map(sample_policy) {
            let assigned: Vec<&str> =
                policy.assignments.iter().flatten().filter_map(|a| a["target"]["groupId"].as_str()).collect();
            for group in assigned {
                assert!(
                    policy.references.groups.iter().any(|g| g.id == group),
                    "{}: group {group}",
                    policy.display_name
                );
            }
        }
    }

    #[test]
    fn the_random_secret_differs_each_time_and_is_redacted_in_debug() {
        assert_ne!(random_secret(), random_secret());
        let sim_tenant = SimTenant {
            tenant_id: "t".into(),
            label: "T".into(),
            environment: Environment::Staging,
            client_id: "c".into(),
            secret: SecretString::new("visible-secret"),
        };
        assert!(!format!("{sim_tenant:?}").contains("visible-secret"));
    }
}
