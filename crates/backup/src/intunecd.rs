//! Import of backups laid out as IntuneCD writes them: one JSON or YAML file per object in a folder
//! per type, server ids removed, groups, filters and scope tags named rather than identified.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use restore_core::backup::{BackupItem, BackupSet, NamedRef, References};
use restore_core::canonical::sha256_digest;
use restore_core::catalog::{self, ItemType};
use serde_json::{Map, Value};

use crate::budget::LoadBudget;
use crate::error::BackupError;
use crate::tree::FileTree;
use crate::{FindingCode, LoadFinding, Loaded};

/// Prefix of the placeholder ids given to groups, filters and scope tags IntuneCD records by name
/// only: `name:All staff`. Mapping into a tenant goes by display name, so the placeholder is
/// never sent to Graph.
pub const NAME_ID_PREFIX: &str = "name:";

/// The key IntuneCD adds to a compliance action to name its notification template (not a Graph
/// property: stripped on import).
pub const IMPORTER_TEMPLATE_NAME: &str = "notificationTemplateName";

/// The key IntuneCD adds to a new-style compliance policy to name its Linux discovery script (a
/// reusable policy setting); not a Graph property, stripped on import.
pub const IMPORTER_DETECTION_SCRIPT_NAME: &str = "detectionScriptName";

/// Prefix of the ids given to objects whose IntuneCD file records no id.
pub const SYNTHETIC_ID_PREFIX: &str = "intunecd-";

/// How an IntuneCD folder maps to catalogue types.
enum FolderKind {
    /// Every file is of this type.
    Single(&'static str),
    /// Files of the named types, told apart by `@odata.type` (App Protection).
    ByOdataType,
    /// One level of sub-folders (named after the template), then files of this type.
    Nested(&'static str),
    /// Compliance scripts, and the reusable policy settings IntuneCD 2.6.0 writes beside them
    /// (its `ReusableSettings` module shares the folder): told apart by `settingInstance`.
    ComplianceScriptsOrReusableSettings,
}

/// The folders IntuneCD writes, relative to the backup root, and the type each holds.
const FOLDERS: &[(&str, FolderKind)] = &[
    ("Scope Tags", FolderKind::Single("scopeTag")),
    ("Filters", FolderKind::Single("assignmentFilter")),
    ("Compliance Policies/Message Templates", FolderKind::Single("notificationTemplate")),
    ("Compliance Policies/Policies", FolderKind::Single("compliancePolicy")),
    ("Device Configurations", FolderKind::Single("deviceConfiguration")),
    ("Settings Catalog", FolderKind::Single("settingsCatalogPolicy")),
    ("Scripts/Powershell", FolderKind::Single("powerShellScript")),
    ("Feature Updates", FolderKind::Single("featureUpdateProfile")),
    ("App Protection", FolderKind::ByOdataType),
    ("Group Policy Configurations", FolderKind::Single("administrativeTemplate")),
    ("Management Intents", FolderKind::Nested("endpointSecurityIntent")),
    ("Enrollment Profiles/Windows", FolderKind::Single("autopilotProfile")),
    ("Enrollment Configurations", FolderKind::Single("enrollmentConfiguration")),
    ("Proactive Remediations", FolderKind::Single("remediationScript")),
    ("Scripts/Shell", FolderKind::Single("macOSShellScript")),
    ("Custom Attributes", FolderKind::Single("customAttributeScript")),
    // IntuneCD 2.6.0 writes reusable policy settings into its compliance scripts folder too.
    ("Compliance Policies/Scripts", FolderKind::ComplianceScriptsOrReusableSettings),
    ("Quality Updates", FolderKind::Single("qualityUpdateProfile")),
    ("Driver Updates", FolderKind::Single("driverUpdateProfile")),
    ("Device Categories", FolderKind::Single("deviceCategory")),
    ("Roles", FolderKind::Single("roleDefinition")),
    // IntuneCD 2.6.0's `EnrollmentStatusPage` module writes the status pages apart from the other
    // enrollment configurations (its `EnrollmentConfigurations` module leaves them out).
    ("Enrollment Profiles/Windows/ESP", FolderKind::Single("enrollmentConfiguration")),
    ("Device Management Settings", FolderKind::Single("deviceManagementSettings")),
    ("Conditional Access", FolderKind::Single("conditionalAccessPolicy")),
    // IntuneCD 2.6.0's `AppleEnrollmentProfiles` module: profiles without their token's name.
    ("Enrollment Profiles/Apple", FolderKind::Single("appleEnrollmentProfile")),
];

/// Folders that hold companions of item files (script bodies, decoded payloads), not items.
const SCRIPT_DATA: &str = "Scripts/Powershell/Script Data";
const MOBILECONFIG: &str = "Device Configurations/mobileconfig";

/// Sub-resources IntuneCD stores under another key than Graph's navigation name.
const SUB_RESOURCE_ALIASES: &[(&str, &str, &str)] = &[("endpointSecurityIntent", "settingsDelta", "settings")];

/// Parses an IntuneCD backup from its files. Unmapped folders are findings; a file that is not
/// valid JSON / YAML, or not an object, stops the load with an error naming it.
pub fn parse(tree: &FileTree) -> Result<Loaded, BackupError> {
    let mut budget = LoadBudget::new(tree.limits());
    let mut findings = Vec::new();
    let mut unknown_folders = BTreeSet::new();
    let mut items: Vec<BackupItem> = Vec::new();
    for (path, bytes) in tree.iter() {
        if !is_data_file(path) || path.starts_with(&format!("{SCRIPT_DATA}/")) {
            continue;
        }
        let Some((folder, kind)) = folder_of(path) else {
            let folder = path.rsplit_once('/').map_or(".", |(f, _)| f);
            if unknown_folders.insert(folder.to_string()) {
                findings.push(LoadFinding::new(
                    FindingCode::UnknownFolder,
                    folder,
                    format!("folder {folder:?} is not one this build maps to a type; its files were skipped"),
                ));
            }
            continue;
        };
        budget.item()?;
        let mut resource = parse_object(path, bytes, &mut budget)?;
        let type_name = match kind {
            FolderKind::Single(name) | FolderKind::Nested(name) => Some(*name),
            FolderKind::ByOdataType => resource
                .get("@odata.type")
                .and_then(Value::as_str)
                .and_then(catalog::item_type_for_odata)
                .filter(|t| t.collection.starts_with("deviceAppManagement/"))
                .map(|t| t.name),
            FolderKind::ComplianceScriptsOrReusableSettings => {
                Some(if resource.contains_key("settingInstance") || resource.contains_key("settingDefinitionId") {
                    "reusablePolicySetting"
                } else {
                    "complianceScript"
                })
            }
        };
        let type_name = if folder == "Compliance Policies/Policies" && is_new_style_compliance(&resource) {
            // IntuneCD names the Linux discovery script a policy references (not a Graph property).
            resource.remove(IMPORTER_DETECTION_SCRIPT_NAME);
            Some("settingsCatalogCompliancePolicy")
        } else {
            type_name
        };
        let Some(item_type) = type_name.and_then(catalog::item_type) else {
            let odata = resource.get("@odata.type").and_then(Value::as_str).unwrap_or("none");
            findings.push(LoadFinding::new(
                FindingCode::UnknownType,
                path,
                format!("{folder}: @odata.type {odata:?} is not a type this build knows; the file was skipped"),
            ));
            continue;
        };
        if item_type.name == "powerShellScript" {
            attach_script_body(tree, path, &mut resource);
        }
        if item_type.name == "deviceConfiguration" {
            attach_mobileconfig(tree, &mut resource);
        }
        let mut item = to_item(item_type, path, resource)?;
        if restore_core::engine::apple_enrollment::is_apple_enrollment(item_type) {
            // IntuneCD records no token name: only the token id the profile id starts with, which
            // maps in the same tenant only (a blocker across tenants names why).
            let token = restore_core::engine::apple_enrollment::token_of_profile_id(&item.id).map(str::to_string);
            item.references.enrollment_tokens =
                token.into_iter().map(|id| NamedRef { id, display_name: String::new() }).collect();
        }
        findings.extend(crate::native::item_findings(item_type, &item));
        items.push(item);
    }
    let mut keys = BTreeSet::new();
    for item in &items {
        if !keys.insert(item.key()) {
            return Err(BackupError::DuplicateItem { item: item.key() });
        }
    }
    items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    let set = BackupSet { tenant: None, captured_at: None, digest: tree.digest(), items };
    Ok(Loaded { set, findings })
}

/// IntuneCD writes the policies of `deviceManagement/compliancePolicies` (Settings Catalog style:
/// `name`, `technologies`, `settings`, no `displayName`) into the same folder as the classic ones.
fn is_new_style_compliance(resource: &Map<String, Value>) -> bool {
    let odata = resource.get("@odata.type").and_then(Value::as_str);
    odata.is_some_and(|o| o.ends_with(".deviceManagementCompliancePolicy"))
        || (odata.is_none() && !resource.contains_key("displayName") && resource.contains_key("technologies"))
}

fn is_data_file(path: &str) -> bool {
    path.ends_with(".json") || path.ends_with(".yaml") || path.ends_with(".yml")
}

fn folder_of(path: &str) -> Option<(&'static str, &'static FolderKind)> {
    let (parent, _) = path.rsplit_once('/')?;
    FOLDERS.iter().find_map(|(folder, kind)| {
        let matches = match kind {
            FolderKind::Nested(_) => {
                parent.strip_prefix(folder).and_then(|r| r.strip_prefix('/')).is_some_and(|r| !r.contains('/'))
            }
            _ => parent == *folder,
        };
        matches.then_some((*folder, kind))
    })
}

fn parse_object(path: &str, bytes: &[u8], budget: &mut LoadBudget) -> Result<Map<String, Value>, BackupError> {
    let value = if path.ends_with(".json") {
        let invalid = |message| BackupError::InvalidItem { item: path.to_string(), file: path.to_string(), message };
        budget.parse_json(path, bytes, invalid)?
    } else {
        budget.parse_yaml(path, bytes)?
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(BackupError::InvalidItem {
            item: path.to_string(),
            file: path.to_string(),
            message: format!("expected an object, found {}", kind_of(&other)),
        }),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The file's stem and the id IntuneCD appended to it with `--append-id` (`name__id`), if any.
fn stem_and_id(path: &str) -> (&str, Option<&str>) {
    let file = path.rsplit_once('/').map_or(path, |(_, f)| f);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    match stem.rsplit_once("__") {
        Some((name, id)) if !id.is_empty() => (name, Some(id)),
        _ => (stem, None),
    }
}

fn to_item(
    item_type: &'static ItemType,
    path: &str,
    mut resource: Map<String, Value>,
) -> Result<BackupItem, BackupError> {
    let invalid = |message: String| BackupError::InvalidItem {
        item: format!("{}/?", item_type.name),
        file: path.to_string(),
        message,
    };
    let name_key = if item_type.identity == catalog::IdentityKey::NameAndTechnologies { "name" } else { "displayName" };
    let singleton = restore_core::engine::singleton::singleton(item_type);
    let display_name = match singleton {
        // A tenant-wide singleton has no name of its own (IntuneCD writes it to `settings.json`).
        Some(_) => item_type.title.to_string(),
        None => resource
            .get(name_key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("{name_key} is missing or not a string")))?,
    };
    let id = match (singleton, resource.get("id").and_then(Value::as_str), stem_and_id(path).1) {
        (Some(singleton), _, _) => singleton.id.to_string(),
        (None, Some(id), _) | (None, None, Some(id)) => id.to_string(),
        (None, None, None) => {
            let hash = sha256_digest(path.as_bytes());
            format!("{SYNTHETIC_ID_PREFIX}{}", &hash["sha256:".len().."sha256:".len() + 16])
        }
    };
    let assignments = match resource.remove("assignments") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list),
        Some(other) => return Err(invalid(format!("assignments is {}, not an array", kind_of(&other)))),
    };
    let mut sub_resources = BTreeMap::new();
    for sub in item_type.sub_resources {
        let stored_as = SUB_RESOURCE_ALIASES
            .iter()
            .find(|(t, _, graph)| *t == item_type.name && *graph == sub.name)
            .map_or(sub.name, |(_, alias, _)| *alias);
        resource.remove(&format!("{stored_as}@odata.context"));
        match resource.remove(stored_as) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                sub_resources.insert(sub.name.to_string(), list);
            }
            Some(other) => return Err(invalid(format!("{stored_as} is {}, not an array", kind_of(&other)))),
        }
    }
    let mut references = References::default();
    // Policies list their scope tags in `roleScopeTagIds`, assignment filters in `roleScopeTags`;
    // IntuneCD writes names in both.
    for key in ["roleScopeTagIds", "roleScopeTags"] {
        if let Some(Value::Array(tags)) = resource.get_mut(key) {
            for tag in tags.iter_mut() {
                if let Some(reference) = scope_tag_reference(tag) {
                    *tag = Value::String(reference.id.clone());
                    references.scope_tags.push(reference);
                }
            }
        }
    }
    let mut assignments = assignments;
    for assignment in assignments.iter_mut().flatten() {
        name_assignment_target(assignment, &mut references);
    }
    for rule in sub_resources.get_mut("scheduledActionsForRule").into_iter().flatten() {
        let configs = rule.get_mut("scheduledActionConfigurations").and_then(Value::as_array_mut);
        for config in configs.into_iter().flatten().filter_map(Value::as_object_mut) {
            // IntuneCD adds the template's name next to its id; Graph has no such property
            // (the published deviceComplianceActionItem type) and a real tenant refuses it.
            let name = config.remove(IMPORTER_TEMPLATE_NAME);
            let id = config.get("notificationTemplateId").and_then(Value::as_str);
            if let (Some(id), Some(Value::String(name))) = (id, name) {
                references.notification_templates.push(NamedRef { id: id.into(), display_name: name });
            }
        }
    }
    for list in [
        &mut references.groups,
        &mut references.scope_tags,
        &mut references.filters,
        &mut references.notification_templates,
    ] {
        list.sort();
        list.dedup();
    }
    let resource = Value::Object(resource);
    let platform = catalog::platform_of(item_type, &resource);
    Ok(BackupItem {
        item_type: item_type.name.to_string(),
        id,
        display_name,
        platform,
        resource,
        assignments,
        sub_resources,
        references,
    })
}

/// A scope tag as IntuneCD records it: by name, or by id when the backup ran without names
/// (`0` is the built-in `Default`).
fn scope_tag_reference(tag: &Value) -> Option<NamedRef> {
    let text = tag.as_str()?;
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let display_name = if text == "0" { "Default" } else { text };
        return Some(NamedRef { id: text.to_string(), display_name: display_name.to_string() });
    }
    Some(NamedRef { id: format!("{NAME_ID_PREFIX}{text}"), display_name: text.to_string() })
}

/// Rewrites an IntuneCD assignment target (`groupName`, filter name in the filter id field) to
/// the native shape (`groupId` and filter id holding `name:` placeholders) and records the names.
fn name_assignment_target(assignment: &mut Value, references: &mut References) {
    let Some(target) = assignment.get_mut("target").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::String(group)) = target.remove("groupName") {
        target.remove("groupType");
        target.remove("membershipRule");
        let id = format!("{NAME_ID_PREFIX}{group}");
        target.insert("groupId".into(), Value::String(id.clone()));
        references.groups.push(NamedRef { id, display_name: group });
    }
    let filter_key = "deviceAndAppManagementAssignmentFilterId";
    if let Some(Value::String(filter)) = target.get(filter_key).cloned()
        && !filter.is_empty()
        && filter != "00000000-0000-0000-0000-000000000000"
    {
        let id = format!("{NAME_ID_PREFIX}{filter}");
        target.insert(filter_key.into(), Value::String(id.clone()));
        references.filters.push(NamedRef { id, display_name: filter });
    }
}

/// IntuneCD writes a PowerShell script's body to `Script Data/<fileName without .ps1>.ps1`; the
/// body found there becomes `scriptContent` (base64, as Graph holds it).
fn attach_script_body(tree: &FileTree, path: &str, resource: &mut Map<String, Value>) {
    let Some(file_name) = resource.get("fileName").and_then(Value::as_str) else {
        return;
    };
    let base = file_name.strip_suffix(".ps1").unwrap_or(file_name);
    let base: String =
        base.chars().map(|c| if "/\\:*?<>\"|".contains(c) || c.is_control() { '_' } else { c }).collect();
    let stem = match stem_and_id(path).1 {
        Some(id) => format!("{base}__{id}"),
        None => base,
    };
    if let Some(body) = tree.get(&format!("{SCRIPT_DATA}/{stem}.ps1")) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body);
        resource.insert("scriptContent".into(), Value::String(encoded));
    }
}

/// Custom Apple profiles keep their payload in `mobileconfig/<payloadFileName>`; when the JSON
/// lacks `payload`, the file found there becomes it (base64, as Graph holds it).
fn attach_mobileconfig(tree: &FileTree, resource: &mut Map<String, Value>) {
    if resource.get("payload").is_some_and(|p| !p.is_null()) {
        return;
    }
    let Some(file_name) = resource.get("payloadFileName").and_then(Value::as_str) else {
        return;
    };
    if let Some(body) = tree.get(&format!("{MOBILECONFIG}/{file_name}")) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body);
        resource.insert("payload".into(), Value::String(encoded));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn tree(files: &[(&str, &str)]) -> FileTree {
        FileTree::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec())), &Limits::default()).unwrap()
    }

    #[test]
    fn group_and_filter_names_become_placeholder_ids_with_named_references() {
        let t = tree(&[(
            "Device Configurations/Wifi_windowsWifiConfiguration.json",
            r##"{"@odata.type": "#microsoft.graph.windowsWifiConfiguration", "displayName": "Wifi",
                "roleScopeTagIds": ["Default", "Helpdesk"],
                "assignments": [{"intent": "apply", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                  "groupName": "All staff", "groupType": "StaticMembership",
                  "deviceAndAppManagementAssignmentFilterId": "Corp laptops",
                  "deviceAndAppManagementAssignmentFilterType": "include"}}]}"##,
        )]);
        let loaded = parse(&t).unwrap();
        let item = &loaded.set.items[0];
        assert_eq!(item.item_type, "deviceConfiguration");
        assert_eq!(item.platform, "windows");
        let target = &item.assignments.as_ref().unwrap()[0]["target"];
        assert_eq!(target["groupId"], "name:All staff");
        assert!(target.get("groupName").is_none());
        assert_eq!(target["deviceAndAppManagementAssignmentFilterId"], "name:Corp laptops");
        assert_eq!(
            item.references.groups,
            vec![NamedRef { id: "name:All staff".into(), display_name: "All staff".into() }]
        );
        assert_eq!(item.references.filters[0].display_name, "Corp laptops");
        let tags: Vec<_> = item.references.scope_tags.iter().map(|r| r.display_name.as_str()).collect();
        assert_eq!(tags, vec!["Default", "Helpdesk"]);
        assert_eq!(item.resource["roleScopeTagIds"][1], "name:Helpdesk");
    }

    #[test]
    fn ids_come_from_the_file_name_suffix_or_are_synthesized_stably() {
        let body = r#"{"displayName": "Tag"}"#;
        let t = tree(&[("Scope Tags/Tag__7.json", body), ("Scope Tags/Other.yaml", "displayName: Other\n")]);
        let loaded = parse(&t).unwrap();
        let ids: Vec<_> = loaded.set.items.iter().map(|i| i.id.as_str()).collect();
        assert!(ids.contains(&"7"));
        let synthetic = ids.iter().find(|i| i.starts_with(SYNTHETIC_ID_PREFIX)).unwrap();
        assert_eq!(parse(&t).unwrap().set.items.iter().filter(|i| i.id == *synthetic).count(), 1);
    }

    #[test]
    fn unmapped_folders_are_one_finding_each_and_not_items() {
        let t = tree(&[("Applications/a.json", "{}"), ("Applications/b.json", "{}"), ("README.md", "# backup")]);
        let loaded = parse(&t).unwrap();
        assert!(loaded.set.items.is_empty());
        assert_eq!(loaded.findings.len(), 1);
        assert_eq!(loaded.findings[0].code, FindingCode::UnknownFolder);
    }

    #[test]
    fn importer_only_notification_template_name_is_stripped_from_compliance_actions() {
        let t = tree(&[(
            "Compliance Policies/Policies/Win_windows10CompliancePolicy.json",
            r##"{"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": "Win",
                "scheduledActionsForRule": [{"ruleName": null, "scheduledActionConfigurations": [
                  {"actionType": "block", "gracePeriodHours": 0, "notificationTemplateId": "00000000-0000-0000-0000-000000000000"},
                  {"actionType": "notification", "gracePeriodHours": 24, "notificationTemplateId": "t-1",
                   "notificationTemplateName": "Reminder", "notificationMessageCCList": []}]}]}"##,
        )]);
        let item = &parse(&t).unwrap().set.items[0];
        let configs = &item.sub_resources["scheduledActionsForRule"][0]["scheduledActionConfigurations"];
        assert!(configs.as_array().unwrap().iter().all(|c| c.get(IMPORTER_TEMPLATE_NAME).is_none()), "{configs}");
        assert_eq!(
            item.references.notification_templates,
            vec![NamedRef { id: "t-1".into(), display_name: "Reminder".into() }]
        );
    }

    #[test]
    fn filter_scope_tag_names_are_translated_like_policy_scope_tags() {
        let t = tree(&[(
            "Filters/Corp.json",
            r##"{"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter", "displayName": "Corp",
                "platform": "windows10AndLater", "rule": "(device.deviceOwnership -eq \"Corporate\")",
                "roleScopeTags": ["Default", "Paris"]}"##,
        )]);
        let item = &parse(&t).unwrap().set.items[0];
        assert_eq!(item.resource["roleScopeTags"], serde_json::json!(["name:Default", "name:Paris"]));
        let tags: Vec<_> = item.references.scope_tags.iter().map(|r| r.display_name.as_str()).collect();
        assert_eq!(tags, vec!["Default", "Paris"]);
    }

    #[test]
    fn new_style_compliance_in_the_compliance_folder_is_its_own_kind() {
        let t = tree(&[
            (
                "Compliance Policies/Policies/Linux_compliance.json",
                r##"{"name": "Linux", "platforms": "linux", "technologies": "linuxMdm", "settings": []}"##,
            ),
            (
                "Compliance Policies/Policies/Win_windows10CompliancePolicy.json",
                r##"{"@odata.type": "#microsoft.graph.windows10CompliancePolicy", "displayName": "Win",
                    "scheduledActionsForRule": [{"scheduledActionConfigurations": [{"actionType": "block"}]}]}"##,
            ),
        ]);
        let loaded = parse(&t).unwrap();
        let kinds: Vec<_> = loaded.set.items.iter().map(|i| i.item_type.as_str()).collect();
        assert_eq!(kinds, ["compliancePolicy", "settingsCatalogCompliancePolicy"]);
        let linux = &loaded.set.items[1];
        assert_eq!((linux.display_name.as_str(), linux.platform.as_str()), ("Linux", "linux"));
        assert!(linux.sub_resources.contains_key("settings"));
    }

    #[test]
    fn a_yaml_file_that_is_not_a_mapping_names_the_file() {
        let t = tree(&[("Filters/f.yaml", "- a\n- b\n")]);
        let err = parse(&t).unwrap_err();
        assert_eq!(err.class(), "InvalidItem");
        assert!(err.to_string().contains("Filters/f.yaml"), "{err}");
    }
}
