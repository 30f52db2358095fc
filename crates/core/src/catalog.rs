//! The catalogue of Intune object types the operator knows: their Graph collections, the
//! `@odata.type`s each accepts, how items are identified, and whether v1 restores or only previews them.

use serde::{Deserialize, Serialize};

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
    /// Graph collection under `/beta`.
    pub collection: &'static str,
    /// Accepted `@odata.type` values (`#microsoft.graph.` omitted); empty means the base type only.
    pub odata_types: &'static [&'static str],
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
        odata_types: &[],
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
        odata_types: &[],
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
        odata_types: &[],
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
        odata_types: &[
            "windows10GeneralConfiguration",
            "windows10CustomConfiguration",
            "windows10EndpointProtectionConfiguration",
            "windowsHealthMonitoringConfiguration",
            "windowsUpdateForBusinessConfiguration",
            "windowsWifiConfiguration",
            "iosGeneralDeviceConfiguration",
            "iosCustomConfiguration",
            "iosDeviceFeaturesConfiguration",
            "macOSGeneralDeviceConfiguration",
            "macOSCustomConfiguration",
            "androidGeneralDeviceConfiguration",
            "androidWorkProfileGeneralDeviceConfiguration",
            "androidDeviceOwnerGeneralDeviceConfiguration",
            "androidCustomConfiguration",
        ],
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
        odata_types: &[
            "windows10CompliancePolicy",
            "iosCompliancePolicy",
            "macOSCompliancePolicy",
            "androidCompliancePolicy",
            "androidWorkProfileCompliancePolicy",
            "androidDeviceOwnerCompliancePolicy",
        ],
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
        odata_types: &[],
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
        odata_types: &[],
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
        odata_types: &[],
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
        odata_types: &[],
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
        odata_types: &[],
        base_odata_type: "androidManagedAppProtection",
        class: TypeClass::Policy,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "apps", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 16,
    },
    ItemType {
        name: "administrativeTemplate",
        title: "Administrative Template",
        collection: "deviceManagement/groupPolicyConfigurations",
        odata_types: &[],
        base_odata_type: "groupPolicyConfiguration",
        class: TypeClass::PreviewOnly,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "definitionValues", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 20,
    },
    ItemType {
        name: "endpointSecurityIntent",
        title: "Endpoint security intent",
        collection: "deviceManagement/intents",
        odata_types: &[],
        base_odata_type: "deviceManagementIntent",
        class: TypeClass::PreviewOnly,
        identity: IdentityKey::DisplayName,
        sub_resources: &[SubResource { name: "settings", required: false }],
        assignable: true,
        assign_body_key: "assignments",
        order: 21,
    },
    ItemType {
        name: "autopilotProfile",
        title: "Autopilot deployment profile",
        collection: "deviceManagement/windowsAutopilotDeploymentProfiles",
        odata_types: &["azureADWindowsAutopilotDeploymentProfile", "activeDirectoryWindowsAutopilotDeploymentProfile"],
        base_odata_type: "windowsAutopilotDeploymentProfile",
        class: TypeClass::PreviewOnly,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "assignments",
        order: 22,
    },
    ItemType {
        name: "enrollmentConfiguration",
        title: "Enrollment configuration",
        collection: "deviceManagement/deviceEnrollmentConfigurations",
        odata_types: &[
            "deviceEnrollmentLimitConfiguration",
            "deviceEnrollmentPlatformRestrictionsConfiguration",
            "deviceEnrollmentPlatformRestrictionConfiguration",
            "deviceEnrollmentWindowsHelloForBusinessConfiguration",
            "windows10EnrollmentCompletionPageConfiguration",
        ],
        base_odata_type: "deviceEnrollmentConfiguration",
        class: TypeClass::PreviewOnly,
        identity: IdentityKey::DisplayName,
        sub_resources: NO_SUB,
        assignable: true,
        assign_body_key: "enrollmentConfigurationAssignments",
        order: 23,
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
            _ if s.starts_with("macos") => Some("macOS"),
            _ if s.starts_with("ios") => Some("iOS"),
            _ if s.starts_with("android") => Some("android"),
            _ => None,
        }
    };
    from_name(&odata)
        .or_else(|| from_name(&item_type.base_odata_type.to_ascii_lowercase()))
        .or(match item_type.name {
            "powerShellScript" | "featureUpdateProfile" => Some("windows"),
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
}
