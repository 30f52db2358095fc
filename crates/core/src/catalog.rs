//! The catalogue of Intune object types the operator knows: their Graph collections, the
//! `@odata.type`s each accepts, how items are identified, and whether v1 restores or only previews them.

use serde::{Deserialize, Serialize};

use crate::catalog_model as model;

/// Whether a type is a foundation other items reference, a restorable policy, or preview-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TypeClass {
    /// Scope tags, assignment filters, notification templates: restored first.
    Foundation,
    /// A policy restored in v1.
    Policy,
    /// Shown in the preview, never written in v1.
    PreviewOnly,
}

/// How an item is matched to a target-tenant object across tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentityKey {
    /// `@odata.type` + `displayName`.
    DisplayName,
    /// `name` + `technologies` (Settings Catalog).
    NameAndTechnologies,
}

/// One sub-resource captured with an item and restored with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubResource {
    /// Name of the property / navigation (e.g. `settings`).
    pub name: &'static str,
    /// Whether an item of this type is incomplete without it.
    pub required: bool,
}

/// An Intune object type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemType {
    /// Stable name used in backups, scope selectors and reports.
    pub name: &'static str,
    /// Human name.
    pub title: &'static str,
    /// Graph collection under `/beta`; `{id}` marks the id of the parent object the collection
    /// lives under (see [`crate::engine::apple_enrollment::collection_path`]).
    pub collection: &'static str,
    /// Every type derived from the base type in Microsoft's published model (`#microsoft.graph.`
    /// omitted), generated into [`crate::catalog_model`] by `scripts/gen-graph-model.py`.
    pub odata_types: &'static [&'static str],
    /// Whether the base type itself is abstract (items must carry a derived `@odata.type`).
    pub abstract_base: bool,
    /// The base `@odata.type` (`#microsoft.graph.` omitted).
    pub base_odata_type: &'static str,
    /// Role in a restore.
    pub class: TypeClass,
    /// Identity across tenants.
    pub identity: IdentityKey,
    /// Sub-resources captured and restored with the item.
    pub sub_resources: &'static [SubResource],
    /// Whether the type has assignments (`/assignments`, `/assign`).
    pub assignable: bool,
    /// JSON key of the assignment list in the `/assign` body.
    pub assign_body_key: &'static str,
    /// Restore order within its class (lower first).
    pub order: u8,
}

impl ItemType {
    /// Full `@odata.type` of the base type.
    pub fn base_odata(&self) -> String {
        format!("#microsoft.graph.{}", self.base_odata_type)
    }

    /// Whether `odata` (with or without `#microsoft.graph.`) belongs to this type's collection.
    pub fn accepts_odata(&self, odata: &str) -> bool {
        let short = odata.strip_prefix("#microsoft.graph.").unwrap_or(odata);
        short == self.base_odata_type || self.odata_types.contains(&short)
    }

    /// Whether v1 writes this type.
    pub fn restorable(&self) -> bool {
        self.class != TypeClass::PreviewOnly
    }
}

const NO_SUB: &[SubResource] = &[];

/// Every type of DESIGN §3, in restore order.
pub const ITEM_TYPES: &[ItemType] = &[
    ItemType {
        name: "scopeTag",
        title: "Scope tag",
        collection: "deviceManagement/roleScopeTags",
        odata_types: model::DEVICE_MANAGEMENT_ROLE_SCOPE_TAGS,
        abstract_base: false,
        base_odata_type: "roleScopeTag",
        class: TypeClass::Foundation,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 0,
    },
    ItemType {
        name: "assignmentFilter",
        title: "Assignment filter",
        collection: "deviceManagement/assignmentFilters",
        odata_types: model::DEVICE_MANAGEMENT_ASSIGNMENT_FILTERS,
        abstract_base: false,
        base_odata_type: "deviceAndAppManagementAssignmentFilter",
        class: TypeClass::Foundation,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 1,
    },
    ItemType {
        name: "notificationTemplate",
        title: "Notification message template",
        collection: "deviceManagement/notificationMessageTemplates",
        odata_types: model::DEVICE_MANAGEMENT_NOTIFICATION_MESSAGE_TEMPLATES,
        abstract_base: false,
        base_odata_type: "notificationMessageTemplate",
        class: TypeClass::Foundation,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "localizedNotificationMessages", required: false }],
        assignable: false,
        assign_body_key: "assignments",
        order: 2,
    },
    ItemType {
        name: "deviceConfiguration",
        title: "Device configuration",
        collection: "deviceManagement/deviceConfigurations",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_CONFIGURATIONS,
        abstract_base: true,
        base_odata_type: "deviceConfiguration",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 10,
    },
    ItemType {
        name: "compliancePolicy",
        title: "Compliance policy",
        collection: "deviceManagement/deviceCompliancePolicies",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_COMPLIANCE_POLICIES,
        abstract_base: true,
        base_odata_type: "deviceCompliancePolicy",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "scheduledActionsForRule", required: true }],
        assignable: true,
        assign_body_key: "assignments",
        order: 11,
    },
    ItemType {
        name: "settingsCatalogPolicy",
        title: "Settings Catalog policy",
        collection: "deviceManagement/configurationPolicies",
        odata_types: model::DEVICE_MANAGEMENT_CONFIGURATION_POLICIES,
        abstract_base: false,
        base_odata_type: "deviceManagementConfigurationPolicy",
        class: TypeClass::Policy,
        identity: IdentityKey::NameAndTechnologies,
        sub_resources: &[SubResource { name: "settings", required: true }],
        assignable: true,
        assign_body_key: "assignments",
        order: 12,
    },
    ItemType {
        name: "powerShellScript",
        title: "PowerShell script",
        collection: "deviceManagement/deviceManagementScripts",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_MANAGEMENT_SCRIPTS,
        abstract_base: false,
        base_odata_type: "deviceManagementScript",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "deviceManagementScriptAssignments",
        order: 13,
    },
    ItemType {
        name: "featureUpdateProfile",
        title: "Windows feature update profile",
        collection: "deviceManagement/windowsFeatureUpdateProfiles",
        odata_types: model::DEVICE_MANAGEMENT_WINDOWS_FEATURE_UPDATE_PROFILES,
        abstract_base: false,
        base_odata_type: "windowsFeatureUpdateProfile",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 14,
    },
    ItemType {
        name: "iosAppProtectionPolicy",
        title: "iOS app protection policy",
        collection: "deviceAppManagement/iosManagedAppProtections",
        odata_types: model::DEVICE_APP_MANAGEMENT_IOS_MANAGED_APP_PROTECTIONS,
        abstract_base: false,
        base_odata_type: "iosManagedAppProtection",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "apps", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 15,
    },
    ItemType {
        name: "androidAppProtectionPolicy",
        title: "Android app protection policy",
        collection: "deviceAppManagement/androidManagedAppProtections",
        odata_types: model::DEVICE_APP_MANAGEMENT_ANDROID_MANAGED_APP_PROTECTIONS,
        abstract_base: false,
        base_odata_type: "androidManagedAppProtection",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "apps", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 16,
    },
    ItemType {
        name: "remediationScript",
        title: "Remediation script",
        collection: "deviceManagement/deviceHealthScripts",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_HEALTH_SCRIPTS,
        abstract_base: false,
        base_odata_type: "deviceHealthScript",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "deviceHealthScriptAssignments",
        order: 17,
    },
    ItemType {
        name: "macOSShellScript",
        title: "macOS shell script",
        collection: "deviceManagement/deviceShellScripts",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_SHELL_SCRIPTS,
        abstract_base: false,
        base_odata_type: "deviceShellScript",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "deviceManagementScriptAssignments",
        order: 18,
    },
    ItemType {
        name: "customAttributeScript",
        title: "macOS custom attribute script",
        collection: "deviceManagement/deviceCustomAttributeShellScripts",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_CUSTOM_ATTRIBUTE_SHELL_SCRIPTS,
        abstract_base: false,
        base_odata_type: "deviceCustomAttributeShellScript",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "deviceManagementScriptAssignments",
        order: 19,
    },
    ItemType {
        name: "complianceScript",
        title: "Compliance script",
        collection: "deviceManagement/deviceComplianceScripts",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_COMPLIANCE_SCRIPTS,
        abstract_base: false,
        base_odata_type: "deviceComplianceScript",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "deviceHealthScriptAssignments",
        order: 20,
    },
    ItemType {
        name: "qualityUpdateProfile",
        title: "Windows quality update profile",
        collection: "deviceManagement/windowsQualityUpdateProfiles",
        odata_types: model::DEVICE_MANAGEMENT_WINDOWS_QUALITY_UPDATE_PROFILES,
        abstract_base: false,
        base_odata_type: "windowsQualityUpdateProfile",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 21,
    },
    ItemType {
        name: "driverUpdateProfile",
        title: "Windows driver update profile",
        collection: "deviceManagement/windowsDriverUpdateProfiles",
        odata_types: model::DEVICE_MANAGEMENT_WINDOWS_DRIVER_UPDATE_PROFILES,
        abstract_base: false,
        base_odata_type: "windowsDriverUpdateProfile",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 22,
    },
    ItemType {
        name: "deviceCategory",
        title: "Device category",
        collection: "deviceManagement/deviceCategories",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_CATEGORIES,
        abstract_base: false,
        base_odata_type: "deviceCategory",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 23,
    },
    ItemType {
        name: "reusablePolicySetting",
        title: "Reusable policy setting",
        collection: "deviceManagement/reusablePolicySettings",
        odata_types: model::DEVICE_MANAGEMENT_REUSABLE_POLICY_SETTINGS,
        abstract_base: false,
        base_odata_type: "deviceManagementReusablePolicySetting",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 24,
    },
    ItemType {
        name: "roleDefinition",
        title: "Intune role definition",
        collection: "deviceManagement/roleDefinitions",
        odata_types: model::DEVICE_MANAGEMENT_ROLE_DEFINITIONS,
        abstract_base: false,
        base_odata_type: "roleDefinition",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 25,
    },
    ItemType {
        name: "appConfigurationPolicy",
        title: "App configuration policy (managed devices)",
        collection: "deviceAppManagement/mobileAppConfigurations",
        odata_types: model::DEVICE_APP_MANAGEMENT_MOBILE_APP_CONFIGURATIONS,
        abstract_base: true,
        base_odata_type: "managedDeviceMobileAppConfiguration",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 26,
    },
    ItemType {
        name: "managedAppConfigurationPolicy",
        title: "App configuration policy (managed apps)",
        collection: "deviceAppManagement/targetedManagedAppConfigurations",
        odata_types: model::DEVICE_APP_MANAGEMENT_TARGETED_MANAGED_APP_CONFIGURATIONS,
        abstract_base: false,
        base_odata_type: "targetedManagedAppConfiguration",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[
            SubResource { name: "apps", required: false },
            SubResource { name: "settings", required: false },
        ],
        assignable: true,
        assign_body_key: "assignments",
        order: 30,
    },
    ItemType {
        name: "settingsCatalogCompliancePolicy",
        title: "Compliance policy (Settings Catalog style)",
        collection: "deviceManagement/compliancePolicies",
        odata_types: model::DEVICE_MANAGEMENT_COMPLIANCE_POLICIES,
        abstract_base: false,
        base_odata_type: "deviceManagementCompliancePolicy",
        class: TypeClass::Policy,
        identity: IdentityKey::NameAndTechnologies,
        sub_resources: &[
            SubResource { name: "settings", required: true },
            SubResource { name: "scheduledActionsForRule", required: true },
        ],
        assignable: true,
        assign_body_key: "assignments",
        order: 31,
    },
    ItemType {
        name: "deviceManagementSettings",
        title: "Device management settings (tenant-wide)",
        collection: "deviceManagement/settings",
        odata_types: model::DEVICE_MANAGEMENT_SETTINGS,
        abstract_base: false,
        base_odata_type: "deviceManagementSettings",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 32,
    },
    ItemType {
        name: "conditionalAccessPolicy",
        title: "Conditional Access policy",
        collection: "identity/conditionalAccess/policies",
        odata_types: model::IDENTITY_CONDITIONAL_ACCESS_POLICIES,
        abstract_base: false,
        base_odata_type: "conditionalAccessPolicy",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 33,
    },
    ItemType {
        name: "administrativeTemplate",
        title: "Administrative Template",
        collection: "deviceManagement/groupPolicyConfigurations",
        odata_types: model::DEVICE_MANAGEMENT_GROUP_POLICY_CONFIGURATIONS,
        abstract_base: false,
        base_odata_type: "groupPolicyConfiguration",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "definitionValues", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 40,
    },
    ItemType {
        name: "endpointSecurityIntent",
        title: "Endpoint security intent",
        collection: "deviceManagement/intents",
        odata_types: model::DEVICE_MANAGEMENT_INTENTS,
        abstract_base: false,
        base_odata_type: "deviceManagementIntent",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "settings", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 41,
    },
    ItemType {
        name: "autopilotProfile",
        title: "Autopilot deployment profile",
        collection: "deviceManagement/windowsAutopilotDeploymentProfiles",
        odata_types: model::DEVICE_MANAGEMENT_WINDOWS_AUTOPILOT_DEPLOYMENT_PROFILES,
        abstract_base: true,
        base_odata_type: "windowsAutopilotDeploymentProfile",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 42,
    },
    ItemType {
        name: "enrollmentConfiguration",
        title: "Enrollment configuration",
        collection: "deviceManagement/deviceEnrollmentConfigurations",
        odata_types: model::DEVICE_MANAGEMENT_DEVICE_ENROLLMENT_CONFIGURATIONS,
        abstract_base: true,
        base_odata_type: "deviceEnrollmentConfiguration",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "enrollmentConfigurationAssignments",
        order: 43,
    },
    ItemType {
        name: "appleEnrollmentProfile",
        title: "Apple automated device enrollment profile",
        collection: "deviceManagement/depOnboardingSettings/{id}/enrollmentProfiles",
        odata_types: model::DEVICE_MANAGEMENT_DEP_ONBOARDING_SETTINGS_ENROLLMENT_PROFILES,
        abstract_base: true,
        base_odata_type: "enrollmentProfile",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: false,
        assign_body_key: "assignments",
        order: 44,
    },
];

/// Looks a type up by its stable name.
pub fn item_type(name: &str) -> Option<&'static ItemType> {
    ITEM_TYPES.iter().find(|t| t.name == name)
}

/// Finds the type whose collection accepts this `@odata.type`.
pub fn item_type_for_odata(odata: &str) -> Option<&'static ItemType> {
    ITEM_TYPES.iter().find(|t| t.accepts_odata(odata))
}

/// Properties a list of `item_type` leaves out (script bodies): each object is read on its own.
/// Graph documents the PowerShell case; for the other script kinds it is what IntuneCD's reading
/// each script by id implies (a guess for the exact fields).
pub fn omitted_from_lists(item_type: &ItemType) -> &'static [&'static str] {
    match item_type.name {
        "powerShellScript" | "macOSShellScript" | "customAttributeScript" => &["scriptContent"],
        "remediationScript" => &["detectionScriptContent", "remediationScriptContent"],
        "complianceScript" => &["detectionScriptContent"],
        _ => &[],
    }
}

/// Whether the item is a built-in object every tenant has, never written: the Default scope tag
/// (id `0`) and Intune's built-in role definitions (`isBuiltIn`).
pub fn is_built_in(item_type: &ItemType, id: &str, resource: &serde_json::Value) -> bool {
    let flagged = resource.get("isBuiltIn").and_then(|b| b.as_bool()) == Some(true);
    match item_type.name {
        "scopeTag" => id == "0" || flagged,
        "roleDefinition" => flagged || resource.get("isBuiltInRoleDefinition").and_then(|b| b.as_bool()) == Some(true),
        _ => false,
    }
}

/// What a restore of an item cannot carry, from its `@odata.type` in Microsoft's published model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarryLimits {
    /// Write-only secret properties Graph reads back as `null` (Wi-Fi pre-shared keys, VPN shared
    /// secrets): the object is written without them and the admin re-enters them.
    pub write_only_secrets: Vec<&'static str>,
    /// Navigations to certificate profiles (trusted root, client identity): a backup does not carry
    /// them, so the object is written without the link and the admin links the certificate again.
    pub certificate_links: Vec<&'static str>,
    /// Why the item can only be previewed (a profile issuing certificates, a type Graph cannot write).
    pub preview_only: Option<String>,
}

fn short_odata(odata: &str) -> &str {
    odata.strip_prefix("#microsoft.graph.").unwrap_or(odata)
}

fn listed(table: &'static [(&'static str, &'static [&'static str])], odata: &str) -> Vec<&'static str> {
    table.iter().find(|(name, _)| *name == odata).map(|(_, values)| values.to_vec()).unwrap_or_default()
}

/// What a restore of `resource` (an item of `item_type`) cannot carry.
pub fn carry_limits(item_type: &ItemType, resource: &serde_json::Value) -> CarryLimits {
    let odata =
        resource.get("@odata.type").and_then(|o| o.as_str()).map(short_odata).unwrap_or(item_type.base_odata_type);
    let preview_only = if model::CERTIFICATE_ISSUING.contains(&odata) {
        Some(format!(
            "{odata} issues certificates (SCEP, PKCS or imported PFX): its certification authority, connector and trusted root link are not in a backup"
        ))
    } else if odata == "unsupportedDeviceConfiguration" {
        Some("Graph reads this profile as unsupportedDeviceConfiguration and cannot write it back".to_string())
    } else {
        None
    };
    CarryLimits {
        write_only_secrets: listed(model::WRITE_ONLY_SECRETS, odata),
        certificate_links: listed(model::CERTIFICATE_LINKS, odata),
        preview_only,
    }
}

/// The platform an item targets, derived from its `@odata.type` (and `platforms` for Settings
/// Catalog): `windows`, `macOS`, `iOS`, `android`, `linux`, or `any`.
pub fn platform_of(item_type: &ItemType, resource: &serde_json::Value) -> String {
    if let Some(platforms) = resource.get("platforms").and_then(|p| p.as_str()) {
        let p = platforms.to_ascii_lowercase();
        return match () {
            _ if p.contains("windows") => "windows",
            _ if p.contains("macos") => "macOS",
            _ if p.contains("ios") => "iOS",
            _ if p.contains("android") => "android",
            _ if p.contains("linux") => "linux",
            _ => "any",
        }
        .to_string();
    }
    let odata = resource
        .get("@odata.type")
        .and_then(|o| o.as_str())
        .unwrap_or("")
        .strip_prefix("#microsoft.graph.")
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_name = |s: &str| -> Option<&'static str> {
        match () {
            _ if s.starts_with("windows") || s.starts_with("azuread") || s.starts_with("activedirectory") => {
                Some("windows")
            }
            _ if s.starts_with("macos") || s.starts_with("depmacos") => Some("macOS"),
            _ if s.starts_with("ios") || s.starts_with("depios") => Some("iOS"),
            _ if s.starts_with("android") => Some("android"),
            _ => None,
        }
    };
    from_name(&odata)
        .or_else(|| from_name(&item_type.base_odata_type.to_ascii_lowercase()))
        .or(match item_type.name {
            "powerShellScript"
            | "featureUpdateProfile"
            | "remediationScript"
            | "complianceScript"
            | "qualityUpdateProfile"
            | "driverUpdateProfile" => Some("windows"),
            "macOSShellScript" | "customAttributeScript" => Some("macOS"),
            _ => None,
        })
        .unwrap_or("any")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_collections_are_unique() {
        let mut names: Vec<_> = ITEM_TYPES.iter().map(|t| t.name).collect();
        let mut cols: Vec<_> = ITEM_TYPES.iter().map(|t| t.collection).collect();
        names.sort();
        cols.sort();
        names.dedup();
        cols.dedup();
        assert_eq!(names.len(), ITEM_TYPES.len());
        assert_eq!(cols.len(), ITEM_TYPES.len());
    }

    #[test]
    fn odata_types_resolve_to_their_collection() {
        assert_eq!(
            item_type_for_odata("#microsoft.graph.windows10CustomConfiguration").map(|t| t.name),
            Some("deviceConfiguration")
        );
        assert_eq!(
            item_type_for_odata("#microsoft.graph.iosCompliancePolicy").map(|t| t.name),
            Some("compliancePolicy")
        );
        assert!(item_type_for_odata("#microsoft.graph.somethingElse").is_none());
        let dc = item_type("deviceConfiguration").unwrap();
        assert!(!dc.accepts_odata("#microsoft.graph.iosCompliancePolicy"));
    }

    #[test]
    fn foundations_come_before_policies_and_preview_only_last() {
        let orders: Vec<_> = ITEM_TYPES.iter().map(|t| (t.class, t.order)).collect();
        let mut sorted = orders.clone();
        sorted.sort_by_key(|(_, o)| *o);
        assert_eq!(orders, sorted);
        assert!(ITEM_TYPES.iter().filter(|t| t.class == TypeClass::PreviewOnly).all(|t| !t.restorable()));
    }

    #[test]
    fn every_published_device_configuration_and_compliance_subtype_is_accepted() {
        let dc = item_type("deviceConfiguration").unwrap();
        assert!(dc.odata_types.len() > 100, "generated from the model, not a hand list");
        for odata in ["windowsDeliveryOptimizationConfiguration", "iosUpdateConfiguration", "macOSWiFiConfiguration"] {
            assert_eq!(item_type_for_odata(odata).map(|t| t.name), Some("deviceConfiguration"), "{odata}");
        }
        assert_eq!(item_type_for_odata("aospDeviceOwnerCompliancePolicy").map(|t| t.name), Some("compliancePolicy"));
    }

    #[test]
    fn secrets_and_certificate_links_a_restore_cannot_carry_come_from_the_model() {
        let dc = item_type("deviceConfiguration").unwrap();
        let wifi = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.windowsWifiConfiguration"}));
        assert_eq!(wifi.write_only_secrets, ["preSharedKey"]);
        assert_eq!(wifi.preview_only, None);
        let vpn = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.iosikEv2VpnConfiguration"}));
        assert_eq!(vpn.write_only_secrets, ["sharedSecret"]);
        let eap = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.androidEnterpriseWiFiConfiguration"}));
        assert!(eap.certificate_links.contains(&"rootCertificateForServerValidation"));
        let scep = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.iosScepCertificateProfile"}));
        assert!(scep.preview_only.is_some_and(|why| why.contains("certification authority")));
        let pfx = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.windows10PkcsCertificateProfile"}));
        assert!(pfx.preview_only.is_some());
        let general = carry_limits(dc, &json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration"}));
        assert_eq!(general, CarryLimits::default());
    }

    #[test]
    fn platform_comes_from_the_odata_type_or_settings_catalog_platforms() {
        let dc = item_type("deviceConfiguration").unwrap();
        assert_eq!(platform_of(dc, &json!({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration"})), "iOS");
        let sc = item_type("settingsCatalogPolicy").unwrap();
        assert_eq!(platform_of(sc, &json!({"platforms": "windows10"})), "windows");
        let ps = item_type("powerShellScript").unwrap();
        assert_eq!(platform_of(ps, &json!({})), "windows");
        let tag = item_type("scopeTag").unwrap();
        assert_eq!(platform_of(tag, &json!({})), "any");
    }

    #[test]
    fn apple_enrollment_profiles_are_ios_or_macos_by_their_dep_type() {
        let profile = item_type("appleEnrollmentProfile").unwrap();
        let of = |odata: &str| platform_of(profile, &json!({"@odata.type": format!("#microsoft.graph.{odata}")}));
        assert_eq!(of("depIOSEnrollmentProfile"), "iOS");
        assert_eq!(of("depMacOSEnrollmentProfile"), "macOS");
        // tvOS and visionOS have no platform of their own in the scope's vocabulary.
        assert_eq!(of("depTvOSEnrollmentProfile"), "any");
    }
}
