//! A deterministic sample tenant: foundations, groups and a mix of every restorable policy type with
//! sub-resources, scope tags, filters and assignments (and one preview-only item).

use serde_json::{Value, json};

use super::{FakeTenant, GROUPS};
use restore_core::catalog::item_type;

pub const TAG_PARIS: &str = "Paris";
pub const TAG_BERLIN: &str = "Berlin";
pub const FILTER: &str = "Windows 11 devices";
pub const TEMPLATE: &str = "Noncompliance email";
pub const GROUP_ALL: &str = "All Staff";
pub const GROUP_PILOT: &str = "Pilot";
pub const GROUP_FINANCE: &str = "Finance";

/// Collection of a catalogue type.
pub fn col(type_name: &str) -> &'static str {
    item_type(type_name).unwrap().collection
}

pub fn seed_groups(fake: &FakeTenant) {
    for g in [GROUP_ALL, GROUP_PILOT, GROUP_FINANCE] {
        fake.add_group(g);
    }
}

pub fn seed_foundations(fake: &FakeTenant) {
    for tag in [TAG_PARIS, TAG_BERLIN] {
        fake.insert(
            col("scopeTag"),
            json!({"@odata.type": "#microsoft.graph.roleScopeTag", "displayName": tag,
            "description": format!("{tag} office"), "isBuiltIn": false}),
        );
    }
    fake.insert(
        col("assignmentFilter"),
        json!({"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
        "displayName": FILTER, "description": "", "platform": "windows10AndLater",
        "rule": "(device.osVersion -startsWith \"10.0.22\")", "roleScopeTags": ["0"]}),
    );
    fake.insert(
        col("notificationTemplate"),
        json!({"@odata.type": "#microsoft.graph.notificationMessageTemplate",
        "displayName": TEMPLATE, "defaultLocale": "en-us", "brandingOptions": "includeCompanyLogo",
        "roleScopeTagIds": ["0"],
        "localizedNotificationMessages": [{"locale": "en-us", "subject": "Your device is not compliant",
            "messageTemplate": "Please update your device.", "isDefault": true}]}),
    );
}

fn id(fake: &FakeTenant, collection: &str, name: &str) -> String {
    fake.id_named(collection, name)
}

fn group_target(fake: &FakeTenant, group: &str, filter: bool) -> Value {
    let mut target = json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": id(fake, GROUPS, group),
        "deviceAndAppManagementAssignmentFilterId": null, "deviceAndAppManagementAssignmentFilterType": "none"});
    if filter {
        target["deviceAndAppManagementAssignmentFilterId"] = json!(id(fake, col("assignmentFilter"), FILTER));
        target["deviceAndAppManagementAssignmentFilterType"] = json!("include");
    }
    target
}

pub fn assignment(fake: &FakeTenant, group: &str, filter: bool) -> Value {
    json!({"target": group_target(fake, group, filter)})
}

fn tags(fake: &FakeTenant, tag: Option<&str>) -> Value {
    match tag {
        Some(tag) => json!([id(fake, col("scopeTag"), tag)]),
        None => json!(["0"]),
    }
}

/// Adds policy number `i` (types cycle); returns its (collection, name).
pub fn seed_policy(fake: &FakeTenant, i: usize) -> (&'static str, String) {
    let tag = if i.is_multiple_of(2) { Some(TAG_PARIS) } else { None };
    match i % 8 {
        0 => {
            let name = format!("Win10 custom {i:02}");
            let collection = col("deviceConfiguration");
            fake.insert(
                collection,
                json!({
                "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": name,
                "description": "OMA settings", "roleScopeTagIds": tags(fake, tag), "supportsScopeTags": true,
                "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingInteger", "displayName": "Lock",
                    "omaUri": "./Device/Vendor/MSFT/Policy/Config/DeviceLock/MaxInactivityTimeDeviceLock", "value": 5,
                    "isEncrypted": false, "secretReferenceValueId": null}],
                "assignments": [assignment(fake, GROUP_PILOT, true)]}),
            );
            (collection, name)
        }
        1 => {
            let name = format!("iOS restrictions {i:02}");
            let collection = col("deviceConfiguration");
            fake.insert(
                collection,
                json!({
                "@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration", "displayName": name,
                "description": null, "roleScopeTagIds": tags(fake, tag), "passcodeRequired": true,
                "passcodeMinimumLength": 6, "cameraBlocked": false,
                "assignments": [assignment(fake, GROUP_ALL, false),
                    {"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget",
                        "groupId": id(fake, GROUPS, GROUP_FINANCE)}}]}),
            );
            (collection, name)
        }
        2 => {
            let name = format!("Win10 compliance {i:02}");
            let collection = col("compliancePolicy");
            fake.insert(collection, json!({
                "@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": name,
                "description": "baseline", "roleScopeTagIds": tags(fake, tag), "passwordRequired": true,
                "passwordMinimumLength": 12, "bitLockerEnabled": true,
                "scheduledActionsForRule": [{"ruleName": "PasswordRequired", "scheduledActionConfigurations": [
                    {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": "00000000-0000-0000-0000-000000000000",
                        "notificationMessageCCList": []},
                    {"actionType": "notification", "gracePeriodHours": 24,
                        "notificationTemplateId": id(fake, col("notificationTemplate"), TEMPLATE),
                        "notificationMessageCCList": []}]}],
                "assignments": [assignment(fake, GROUP_FINANCE, false)]}));
            (collection, name)
        }
        3 => {
            let name = format!("Edge baseline {i:02}");
            let collection = col("settingsCatalogPolicy");
            fake.insert(collection, json!({
                "name": name, "description": "settings catalog", "platforms": "windows10", "technologies": "mdm",
                "roleScopeTagIds": tags(fake, tag), "settingCount": 2, "creationSource": null,
                "templateReference": {"templateId": "", "templateFamily": "none"},
                "settings": [
                    {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSetting", "settingInstance": {
                        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                        "settingDefinitionId": "device_vendor_msft_policy_config_microsoft_edge_smartscreenenabled",
                        "choiceSettingValue": {"value": "device_vendor_msft_policy_config_microsoft_edge_smartscreenenabled_1", "children": []}}},
                    {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSetting", "settingInstance": {
                        "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                        "settingDefinitionId": "device_vendor_msft_policy_config_microsoft_edge_homepagelocation",
                        "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                            "value": "https://intranet.example"}}}],
                "assignments": [assignment(fake, GROUP_ALL, true)]}));
            (collection, name)
        }
        4 => {
            let name = format!("Set wallpaper {i:02}");
            let collection = col("powerShellScript");
            fake.insert(
                collection,
                json!({
                "@odata.type": "#microsoft.graph.deviceManagementScript", "displayName": name, "description": "",
                "fileName": format!("wallpaper{i}.ps1"), "scriptContent": "V3JpdGUtSG9zdCAiaGVsbG8i",
                "runAsAccount": "system", "enforceSignatureCheck": false, "runAs32Bit": false,
                "roleScopeTagIds": tags(fake, tag),
                "assignments": [assignment(fake, GROUP_PILOT, false)]}),
            );
            (collection, name)
        }
        5 => {
            let name = format!("Windows 11 23H2 {i:02}");
            let collection = col("featureUpdateProfile");
            fake.insert(
                collection,
                json!({
                "@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile", "displayName": name, "description": "",
                "featureUpdateVersion": "Windows 11, version 23H2", "roleScopeTagIds": tags(fake, tag),
                "deployableContentDisplayName": "Windows 11, version 23H2", "endOfSupportDate": "2026-11-10T00:00:00Z",
                "installLatestWindows10OnWindows11IneligibleDevice": false,
                "assignments": [assignment(fake, GROUP_PILOT, false)]}),
            );
            (collection, name)
        }
        6 => {
            let name = format!("iOS MAM {i:02}");
            let collection = col("iosAppProtectionPolicy");
            fake.insert(collection, json!({
                "@odata.type": "#microsoft.graph.iosManagedAppProtection", "displayName": name, "description": "",
                "roleScopeTagIds": tags(fake, tag), "pinRequired": true, "minimumPinLength": 4,
                "isAssigned": true, "deployedAppCount": 2,
                "apps": [
                    {"mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.office.outlook"}},
                    {"mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.skype.teams"}}],
                "assignments": [assignment(fake, GROUP_ALL, false)]}));
            (collection, name)
        }
        _ => {
            let name = format!("Admin template {i:02}");
            let collection = col("administrativeTemplate");
            fake.insert(
                collection,
                json!({
                "@odata.type": "#microsoft.graph.groupPolicyConfiguration", "displayName": name, "description": "",
                "roleScopeTagIds": ["0"], "definitionValues": [],
                "assignments": [assignment(fake, GROUP_ALL, false)]}),
            );
            (collection, name)
        }
    }
}

/// Groups, foundations and `policies` policies.
pub fn seed_tenant(fake: &FakeTenant, policies: usize) -> Vec<(&'static str, String)> {
    seed_groups(fake);
    seed_foundations(fake);
    (0..policies).map(|i| seed_policy(fake, i)).collect()
}
