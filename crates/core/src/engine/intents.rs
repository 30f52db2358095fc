//! Endpoint-security and other intents: created from their template (`createInstance`), identified
//! by display name + template id, settings updated by `updateSettings` with the changed ones only.
//!
//! Microsoft Graph (beta) documents the `createInstance` action of `deviceManagementTemplate`
//! (parameters `displayName`, `description`, `settingsDelta`, `roleScopeTagIds`), the
//! `updateSettings` and `assign` actions of `deviceManagementIntent`, and that "intents cannot be
//! created from a deprecated template" (`deviceManagementTemplate.isDeprecated`). IntuneCD 2.6.0
//! (`ManagementIntents`) matches an intent by `displayName` + `templateId`, creates it through
//! `createInstance` and updates it setting by setting, matched by `definitionId`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::canonical::canonical_json;
use crate::catalog::{IdentityKey, ItemType, TypeClass};
use crate::engine::identity::encode_query_value;
use crate::engine::normalize::strip_server_managed;

/// The catalogue name of intents.
pub const INTENT: &str = "endpointSecurityIntent";
/// The intent property naming its template.
pub const TEMPLATE_ID: &str = "templateId";
/// The key an intent's settings are matched by.
pub const SETTING_KEY: &str = "definitionId";

/// The tenant's intent templates, listed in the same `$batch` as the catalogue's collections when
/// the scope holds intents. Not a kind a backup holds or a restore writes.
pub static TEMPLATES: ItemType = ItemType {
    name: "intentTemplate",
    title: "Intent template",
    collection: "deviceManagement/templates",
    odata_types: &[],
    abstract_base: false,
    base_odata_type: "deviceManagementTemplate",
    class: TypeClass::Foundation,
    identity: IdentityKey::DisplayName,
    sub_resources: &[],
    assignable: false,
    assign_body_key: "assignments",
    order: 0,
};

/// Properties of an intent a PATCH never sends: its template (changing it is the separate
/// `migrateToTemplate` action, never part of a restore) and the server's migration flag.
const UNWRITTEN_ON_UPDATE: &[&str] = &[TEMPLATE_ID, "isMigratingToConfigurationPolicy"];

/// The `createInstance` parameters besides the settings (`settingsDelta`).
const CREATE_INSTANCE_PARAMETERS: &[&str] = &["displayName", "description", "roleScopeTagIds"];

/// Whether `item_type` is the intent kind.
pub fn is_intent(item_type: &ItemType) -> bool {
    item_type.name == INTENT
}

/// A template as the target tenant lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentTemplate {
    /// Its display name.
    pub display_name: String,
    /// `versionInfo`, when Graph gives one.
    pub version: Option<String>,
    /// `isDeprecated`: no intent can be created from it.
    pub deprecated: bool,
}

/// The templates of a listing, by id.
pub fn templates_by_id(listed: &[Value]) -> BTreeMap<String, IntentTemplate> {
    listed
        .iter()
        .filter_map(|t| {
            let id = t.get("id").and_then(Value::as_str)?;
            let template = IntentTemplate {
                display_name: t.get("displayName").and_then(Value::as_str).unwrap_or(id).to_string(),
                version: t.get("versionInfo").and_then(Value::as_str).map(str::to_string),
                deprecated: t.get("isDeprecated").and_then(Value::as_bool) == Some(true),
            };
            Some((id.to_ascii_lowercase(), template))
        })
        .collect()
}

fn template_id(resource: &Value) -> Option<&str> {
    resource.get(TEMPLATE_ID).and_then(Value::as_str).filter(|id| !id.is_empty())
}

/// The part of an intent's identity beyond its display name: its template id (two intents of
/// one name made from different templates are different objects).
pub fn identity_qualifier(item_type: &ItemType, object: &Value) -> Option<String> {
    is_intent(item_type).then(|| template_id(object).unwrap_or_default().to_ascii_lowercase())
}

/// Why an intent the restore would create cannot be: the backup names no template, or the target
/// lacks it or has deprecated it. `templates` is the target's listing (`None`: not read).
pub fn template_problem(
    item_type: &ItemType,
    resource: &Value,
    templates: Option<&BTreeMap<String, IntentTemplate>>,
) -> Option<String> {
    if !is_intent(item_type) {
        return None;
    }
    let Some(id) = template_id(resource) else {
        return Some("the backup records no templateId for this intent".into());
    };
    let Some(templates) = templates else {
        return Some(format!("the target tenant's templates were not read, so template {id} cannot be checked"));
    };
    match templates.get(&id.to_ascii_lowercase()) {
        None => Some(format!("template {id} does not exist in the target tenant")),
        Some(t) if t.deprecated => Some(format!(
            "template {:?} ({id}{}) is deprecated in the target tenant; Graph creates no intent from a deprecated template",
            t.display_name,
            t.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
        )),
        Some(_) => None,
    }
}

/// Where a new object of `item_type` is POSTed when it is not its collection: an intent is made
/// by its template's `createInstance` action. It is sent through `TenantPort::create`, not as an
/// action: a create whose outcome is unknown is never sent again blindly (the Graph client resends
/// only what it can look up; the executor's retried create step looks the intent up by identity).
pub fn create_instance_path(item_type: &ItemType, resource: &Value) -> Option<String> {
    if !is_intent(item_type) {
        return None;
    }
    let id = template_id(resource).unwrap_or_default();
    Some(format!("{}/{}/createInstance", TEMPLATES.collection, encode_query_value(id)))
}

/// Turns an intent's create body (properties and `settings`) into the `createInstance` body:
/// its documented parameters only, the settings as `settingsDelta`.
pub fn shape_create_body(item_type: &ItemType, body: &mut Value) {
    if !is_intent(item_type) {
        return;
    }
    let Value::Object(map) = body else { return };
    let mut shaped = Map::new();
    for key in CREATE_INSTANCE_PARAMETERS {
        if let Some(value) = map.remove(*key) {
            shaped.insert((*key).to_string(), value);
        }
    }
    shaped.insert("settingsDelta".into(), map.remove("settings").unwrap_or_else(|| Value::Array(Vec::new())));
    *map = shaped;
}

/// Removes from an intent's PATCH body what a restore never changes that way.
pub fn strip_update_body(item_type: &ItemType, body: &mut Value) {
    if let (true, Value::Object(map)) = (is_intent(item_type), body) {
        for key in UNWRITTEN_ON_UPDATE {
            map.remove(*key);
        }
    }
}

/// The desired entries that differ from the live entry of the same `key` (or have none): what an
/// update by key (an intent's `updateSettings`) sends.
pub fn changed_by_key(key: &str, live: &[Value], desired: Vec<Value>) -> Vec<Value> {
    let live_by_key: BTreeMap<String, String> = live
        .iter()
        .filter_map(|entry| {
            let k = entry.get(key)?.as_str()?.to_string();
            let mut stripped = entry.clone();
            strip_server_managed(&mut stripped);
            Some((k, canonical_json(&stripped)))
        })
        .collect();
    desired
        .into_iter()
        .filter(|entry| {
            let wanted = entry.get(key).and_then(Value::as_str).unwrap_or_default();
            live_by_key.get(wanted) != Some(&canonical_json(entry))
        })
        .collect()
}

/// Limits an intent's normalized live document to the settings the desired one names (by
/// `definitionId`), as [`crate::engine::normalize::project_onto`] does for properties: a restore
/// sets the settings the backup holds and leaves the others as the tenant has them. Returns the
/// `definitionId`s left out, sorted.
pub fn project_settings(item_type: &ItemType, live: &mut Value, desired: &Value) -> Vec<String> {
    if !is_intent(item_type) {
        return Vec::new();
    }
    let definition = |s: &Value| s.get(SETTING_KEY).and_then(Value::as_str).map(str::to_string);
    let wanted: std::collections::BTreeSet<String> =
        desired.get("settings").and_then(Value::as_array).into_iter().flatten().filter_map(definition).collect();
    let Some(Value::Array(settings)) = live.get_mut("settings") else { return Vec::new() };
    let mut left = Vec::new();
    settings.retain(|s| match definition(s) {
        Some(id) if !wanted.contains(&id) => {
            left.push(id);
            false
        }
        _ => true,
    });
    left.sort();
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    fn intent() -> &'static ItemType {
        item_type(INTENT).unwrap()
    }

    #[test]
    fn an_intent_is_created_by_its_templates_create_instance_with_its_settings_as_delta() {
        let resource = json!({"templateId": "034ccd46-190c-4afc-adf1-ad7cc11262eb"});
        assert_eq!(
            create_instance_path(intent(), &resource).as_deref(),
            Some("deviceManagement/templates/034ccd46-190c-4afc-adf1-ad7cc11262eb/createInstance")
        );
        assert_eq!(create_instance_path(item_type("deviceConfiguration").unwrap(), &resource), None);
        let mut body = json!({"@odata.type": "#microsoft.graph.deviceManagementIntent", "displayName": "B",
            "description": "d", "templateId": "t", "roleScopeTagIds": ["0"], "isMigratingToConfigurationPolicy": false,
            "settings": [{"definitionId": "x", "valueJson": "true"}]});
        shape_create_body(intent(), &mut body);
        assert_eq!(
            body,
            json!({"displayName": "B", "description": "d", "roleScopeTagIds": ["0"],
                "settingsDelta": [{"definitionId": "x", "valueJson": "true"}]})
        );
    }

    #[test]
    fn a_missing_or_deprecated_template_is_named() {
        let templates = templates_by_id(&[
            json!({"id": "A1", "displayName": "Baseline", "versionInfo": "2", "isDeprecated": false}),
            json!({"id": "b2", "displayName": "Old baseline", "versionInfo": "1", "isDeprecated": true}),
        ]);
        let t = intent();
        assert_eq!(template_problem(t, &json!({"templateId": "a1"}), Some(&templates)), None);
        let deprecated = template_problem(t, &json!({"templateId": "b2"}), Some(&templates)).unwrap();
        assert!(deprecated.contains("\"Old baseline\" (b2, version 1) is deprecated"), "{deprecated}");
        let missing = template_problem(t, &json!({"templateId": "c3"}), Some(&templates)).unwrap();
        assert!(missing.contains("c3 does not exist"), "{missing}");
        assert!(template_problem(t, &json!({}), Some(&templates)).unwrap().contains("no templateId"));
        assert_eq!(template_problem(item_type("deviceConfiguration").unwrap(), &json!({}), None), None);
    }

    #[test]
    fn only_changed_settings_are_sent_matched_by_definition_id() {
        let live = vec![
            json!({"id": "s1", "definitionId": "a", "valueJson": "true"}),
            json!({"id": "s2", "definitionId": "b", "valueJson": "1"}),
        ];
        let desired = vec![
            json!({"definitionId": "a", "valueJson": "true"}),
            json!({"definitionId": "b", "valueJson": "2"}),
            json!({"definitionId": "c", "valueJson": "\"x\""}),
        ];
        let changed = changed_by_key(SETTING_KEY, &live, desired);
        let ids: Vec<&str> = changed.iter().filter_map(|s| s["definitionId"].as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn settings_the_backup_does_not_name_are_left_out_of_the_comparison_and_reported() {
        let desired = json!({"settings": [{"definitionId": "a", "valueJson": "1"}]});
        let mut live =
            json!({"settings": [{"definitionId": "z", "valueJson": "2"}, {"definitionId": "a", "valueJson": "3"}]});
        assert_eq!(project_settings(intent(), &mut live, &desired), ["z"]);
        assert_eq!(live, json!({"settings": [{"definitionId": "a", "valueJson": "3"}]}));
        let mut other = live.clone();
        assert!(project_settings(item_type("deviceConfiguration").unwrap(), &mut other, &json!({})).is_empty());
    }

    #[test]
    fn the_template_is_part_of_an_intents_identity_and_never_patched() {
        let t = intent();
        assert_eq!(identity_qualifier(t, &json!({"templateId": "ABC"})), Some("abc".into()));
        assert_eq!(identity_qualifier(item_type("deviceConfiguration").unwrap(), &json!({"templateId": "x"})), None);
        let mut patch = json!({"displayName": "B", "templateId": "t", "isMigratingToConfigurationPolicy": false});
        strip_update_body(t, &mut patch);
        assert_eq!(patch, json!({"displayName": "B"}));
    }
}
