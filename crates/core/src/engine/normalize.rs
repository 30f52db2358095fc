//! Normalization: turns a backup item or a live Graph object into the comparable document the diff,
//! the preview digest and the drift checks read — server fields stripped, secrets masked, ids as names.

use serde_json::{Map, Value};

use crate::backup::BackupItem;
use crate::canonical::canonical_json;
use crate::catalog::ItemType;
use crate::engine::mapping::{IdNames, Rewrite, SCOPE_TAG_KEYS, ZERO_GUID, ensure_default_scope_tag, rewrite_refs};

/// What replaces a secret value in every normalized document, diff and report (DESIGN §2 rule 8).
pub const MASKED: &str = "***masked***";

/// The key of an item's assignment list inside a document.
pub const ASSIGNMENTS: &str = "assignments";

/// Keys the server manages, stripped at every depth (DESIGN §3 payload hygiene).
pub const SERVER_MANAGED: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "version",
    "supportsScopeTags",
    "secretReferenceValueId",
    "isEncrypted",
    "isAssigned",
    "isBuiltIn",
    "settingCount",
    "creationSource",
    "deployedAppCount",
    "endOfSupportDate",
    "deployableContentDisplayName",
    "modifiedDateTime",
];

/// Keys that assignments carry as server bookkeeping.
pub const ASSIGNMENT_SERVER_MANAGED: &[&str] = &["source", "sourceId"];

/// Endings of key names (lower-case) whose string values are secrets.
const SECRET_KEY_ENDINGS: &[&str] =
    &["password", "passphrase", "presharedkey", "sharedsecret", "secret", "privatekey", "productkey"];

/// Whether a key names a secret value.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.as_bytes();
    SECRET_KEY_ENDINGS
        .iter()
        .any(|end| key.len() >= end.len() && key[key.len() - end.len()..].eq_ignore_ascii_case(end.as_bytes()))
}

/// Whether an object key is a server-managed field or an OData annotation other than `@odata.type`.
fn is_server_managed(key: &str) -> bool {
    SERVER_MANAGED.contains(&key) || (key.contains("@odata.") && key != "@odata.type")
}

/// Removes server-managed fields and OData annotations (keeping every `@odata.type`) at every depth.
pub fn strip_server_managed(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !is_server_managed(key));
            map.values_mut().for_each(strip_server_managed);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_server_managed),
        _ => {}
    }
}

/// Whether an object is a secret setting whose `value` must be masked: an encrypted OMA-URI setting
/// or a Settings Catalog secret value.
fn holds_secret_value(map: &Map<String, Value>) -> bool {
    map.get("isEncrypted").and_then(Value::as_bool) == Some(true)
        || map.get("secretReferenceValueId").is_some_and(|v| !v.is_null())
        || map.get("@odata.type").and_then(Value::as_str).is_some_and(|t| t.ends_with("SecretSettingValue"))
}

/// Replaces every secret value by [`MASKED`]: values of encrypted OMA-URI and secret settings, and
/// string values of keys that name a secret (`…password`, `…preSharedKey`, `…secret`, …).
pub fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if holds_secret_value(map)
                && let Some(v) = map.get_mut("value")
            {
                *v = Value::String(MASKED.to_string());
            }
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && (v.is_string() || v.is_null()) {
                    *v = Value::String(MASKED.to_string());
                } else {
                    mask_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// The path of the first secret a restore cannot write back (an encrypted OMA-URI value or an
/// encrypted Settings Catalog secret: Graph returns a token, not the value).
pub fn find_unrestorable_secret(value: &Value) -> Option<String> {
    fn walk(value: &Value, at: &PathTo<'_>) -> Option<String> {
        match value {
            Value::Object(map) => {
                let encrypted_oma = map.get("isEncrypted").and_then(Value::as_bool) == Some(true)
                    || map.get("secretReferenceValueId").is_some_and(|v| !v.is_null() && v != "");
                let encrypted_setting =
                    map.get("@odata.type").and_then(Value::as_str).is_some_and(|t| t.ends_with("SecretSettingValue"))
                        && map.get("valueState").and_then(Value::as_str) == Some("encryptedValueToken");
                if encrypted_oma || encrypted_setting {
                    let name = map.get("omaUri").and_then(Value::as_str).map(|u| format!(" ({u})")).unwrap_or_default();
                    let path = at.render();
                    return Some(format!("{}{name}", if path.is_empty() { "(root)" } else { &path }));
                }
                map.iter().find_map(|(k, v)| walk(v, &PathTo::Key(at, k)))
            }
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| walk(v, &PathTo::Index(at, i))),
            _ => None,
        }
    }
    walk(value, &PathTo::Root)
}

/// Where a walk is in a document, written out only when it is reported.
enum PathTo<'a> {
    Root,
    Key(&'a PathTo<'a>, &'a str),
    Index(&'a PathTo<'a>, usize),
}

impl PathTo<'_> {
    /// `a.b[0].c` (empty at the root).
    fn render(&self) -> String {
        match self {
            PathTo::Root => String::new(),
            PathTo::Key(parent, key) => join_key(&parent.render(), key),
            PathTo::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// `parent.key`, or `key` at the root.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

/// An item's full document as the backup holds it: the resource with its sub-resources as
/// properties and, when `with_assignments` and they were captured, its `assignments`.
pub fn backup_document(item: &BackupItem, with_assignments: bool) -> Value {
    let mut doc = match &item.resource {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    doc.remove(ASSIGNMENTS);
    for (name, values) in &item.sub_resources {
        doc.insert(name.clone(), Value::Array(values.clone()));
    }
    if with_assignments && let Some(assignments) = &item.assignments {
        doc.insert(ASSIGNMENTS.to_string(), Value::Array(assignments.clone()));
    }
    Value::Object(doc)
}

/// Normalizes a full item document (from the backup or read live) for comparison: secrets masked,
/// server-managed fields stripped, an empty scope-tag list read as the default tag, references
/// replaced by their names in `names`, set-like lists sorted, nested nulls dropped, keys sorted.
pub fn normalize(item_type: Option<&ItemType>, doc: &Value, names: &IdNames) -> Value {
    normalize_owned(item_type, doc.clone(), names)
}

/// [`normalize`] of a document the caller gives up (no copy is made).
pub fn normalize_owned(item_type: Option<&ItemType>, mut doc: Value, names: &IdNames) -> Value {
    mask_secrets(&mut doc);
    if let Some(t) = item_type {
        crate::secrets::marks().apply(t.name, &mut doc);
    }
    strip_server_managed(&mut doc);
    crate::engine::admx::normalize_definition_values(item_type, &mut doc);
    if let Some(Value::Array(assignments)) = doc.get_mut(ASSIGNMENTS) {
        for assignment in assignments.iter_mut() {
            if let Value::Object(map) = assignment {
                map.retain(|k, _| !ASSIGNMENT_SERVER_MANAGED.contains(&k.as_str()));
            }
            if let Some(Value::Object(target)) = assignment.get_mut("target")
                && target.get("deviceAndAppManagementAssignmentFilterId").and_then(Value::as_str) == Some(ZERO_GUID)
            {
                target.remove("deviceAndAppManagementAssignmentFilterId");
            }
        }
    }
    ensure_default_scope_tag(&mut doc);
    rewrite_refs(&mut doc, &mut |kind, id| Rewrite::Replace(names.name_or_marker(kind, id)));
    sort_set_like(item_type, &mut doc);
    if let Value::Object(map) = &mut doc {
        map.values_mut().for_each(drop_nulls);
    }
    doc.sort_all_objects();
    doc
}

/// Sorts the lists whose order carries no meaning, so that a re-read in another order compares equal.
fn sort_set_like(item_type: Option<&ItemType>, doc: &mut Value) {
    let Value::Object(map) = doc else { return };
    let mut keys: Vec<&str> = vec![ASSIGNMENTS];
    keys.extend(SCOPE_TAG_KEYS);
    if let Some(t) = item_type {
        keys.extend(t.sub_resources.iter().map(|s| s.name));
    }
    for key in keys {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            for item in items.iter_mut() {
                if let Some(Value::Array(configs)) = item.get_mut("scheduledActionConfigurations") {
                    sort_by_canonical(configs);
                }
            }
            sort_by_canonical(items);
        }
    }
}

fn sort_by_canonical(items: &mut [Value]) {
    items.sort_by_cached_key(canonical_json);
}

/// Removes null-valued keys at every depth below the top level (absent and null mean the same there).
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A copy with every object's keys in sorted order, so pretty printing is canonical.
pub fn canonical_order(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical_order(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_order).collect()),
        scalar => scalar.clone(),
    }
}

/// The part of `current` a restore of `desired` acts on: exactly `desired`'s top-level keys, with
/// keys the current object lacks read as null. (A write never removes a property it does not name.)
pub fn project_onto(current: &Value, desired: &Value) -> Value {
    let Value::Object(wanted) = desired else { return current.clone() };
    Value::Object(wanted.keys().map(|k| (k.clone(), current.get(k).cloned().unwrap_or(Value::Null))).collect())
}

/// [`project_onto`] of a `current` the caller gives up: its values are moved, not copied.
pub fn project_owned(current: Value, desired: &Value) -> Value {
    let Value::Object(wanted) = desired else { return current };
    let Value::Object(mut have) = current else { return project_onto(&current, desired) };
    Value::Object(wanted.keys().map(|k| (k.clone(), have.remove(k).unwrap_or(Value::Null))).collect())
}

/// Pretty JSON with sorted keys (for a value produced by [`normalize`]).
pub fn pretty(value: &Value) -> String {
    let text = if in_canonical_order(value) {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string_pretty(&canonical_order(value))
    };
    let mut text = text.unwrap_or_default();
    text.push('\n');
    text
}

/// Whether every object's keys are already in sorted order (a normalized document's are).
fn in_canonical_order(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b) && map.values().all(in_canonical_order)
        }
        Value::Array(items) => items.iter().all(in_canonical_order),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use crate::engine::mapping::RefKind;
    use serde_json::json;

    #[test]
    fn server_fields_and_annotations_go_but_every_odata_type_stays() {
        let mut v = json!({
            "@odata.context": "x", "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
            "id": "1", "version": 3, "createdDateTime": "t", "displayName": "A",
            "settings@odata.context": "y",
            "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingString", "id": "9", "value": "v"}]
        });
        strip_server_managed(&mut v);
        assert_eq!(
            v,
            json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "A",
                   "omaSettings": [{"@odata.type": "#microsoft.graph.omaSettingString", "value": "v"}]})
        );
    }

    #[test]
    fn encrypted_values_and_secret_keys_are_masked_but_policy_flags_are_not() {
        let mut v = json!({
            "passwordRequired": true, "passwordMinimumLength": 8, "passwordRequiredType": "alphanumeric",
            "preSharedKey": "hunter2", "networkPassword": null,
            "omaSettings": [{"isEncrypted": true, "value": "c2VjcmV0", "omaUri": "./x"},
                            {"isEncrypted": false, "value": "plain"}]
        });
        mask_secrets(&mut v);
        assert_eq!(v["passwordRequired"], true);
        assert_eq!(v["passwordMinimumLength"], 8);
        assert_eq!(v["passwordRequiredType"], "alphanumeric");
        assert_eq!(v["preSharedKey"], MASKED);
        assert_eq!(v["networkPassword"], MASKED);
        assert_eq!(v["omaSettings"][0]["value"], MASKED);
        assert_eq!(v["omaSettings"][1]["value"], "plain");
    }

    #[test]
    fn encrypted_oma_values_are_found_as_unrestorable() {
        let v = json!({"omaSettings": [{"value": "a"}, {"isEncrypted": true, "omaUri": "./Vendor/X", "value": "b"}]});
        assert_eq!(find_unrestorable_secret(&v).as_deref(), Some("omaSettings[1] (./Vendor/X)"));
        assert_eq!(find_unrestorable_secret(&json!({"omaSettings": [{"value": "a"}]})), None);
    }

    #[test]
    fn normalized_documents_compare_by_names_in_any_order() {
        let dc = item_type("deviceConfiguration");
        let mut source = IdNames::default();
        source.insert(RefKind::Group, "g-src", "Sales");
        source.insert(RefKind::ScopeTag, "5", "Paris");
        let mut target = IdNames::default();
        target.insert(RefKind::Group, "g-tgt", "Sales");
        target.insert(RefKind::ScopeTag, "9", "Paris");
        let desired = json!({"displayName": "A", "roleScopeTagIds": ["5", "0"], "description": null,
            "assignments": [{"id": "x", "source": "direct", "target": {"groupId": "g-src",
                "deviceAndAppManagementAssignmentFilterId": null}}]});
        let current = json!({"roleScopeTagIds": ["0", "9"], "displayName": "A", "description": null,
            "assignments": [{"target": {"groupId": "g-tgt",
                "deviceAndAppManagementAssignmentFilterId": ZERO_GUID}}]});
        let d = normalize(dc, &desired, &source);
        let c = normalize(dc, &current, &target);
        assert_eq!(d, c);
        assert_eq!(d["roleScopeTagIds"], json!(["Default", "Paris"]));
        assert_eq!(d["description"], Value::Null, "top-level nulls stay: a restore clears the field");
    }

    #[test]
    fn secret_key_endings_match_in_any_case_and_only_at_the_end() {
        for key in ["wifiPassword", "PASSWORD", "preSharedKey", "clientSecret", "x.PrivateKey", "productkey"] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["passwordRequired", "secretary", "key", "", "pässword", "passwordé"] {
            assert!(!is_secret_key(key), "{key}");
        }
        assert!(is_secret_key("ÉtéPassword"));
    }

    #[test]
    fn an_unrestorable_secret_is_found_at_its_path_at_any_depth() {
        let v = json!({"a": [{"b": {"c": [1, {"isEncrypted": true}]}}]});
        assert_eq!(find_unrestorable_secret(&v).as_deref(), Some("a[0].b.c[1]"));
        assert_eq!(find_unrestorable_secret(&json!({"isEncrypted": true})).as_deref(), Some("(root)"));
        assert_eq!(find_unrestorable_secret(&json!([{"isEncrypted": true}])).as_deref(), Some("[0]"));
    }

    #[test]
    fn normalized_documents_have_sorted_keys_at_every_depth_and_print_so() {
        let doc = json!({"z": 1, "a": {"y": [{"d": 1, "c": 2}], "b": null}, "m": "x"});
        let normalized = normalize(None, &doc, &IdNames::default());
        assert_eq!(serde_json::to_string(&normalized).unwrap(), r#"{"a":{"y":[{"c":2,"d":1}]},"m":"x","z":1}"#);
        assert!(in_canonical_order(&normalized) && !in_canonical_order(&doc));
        let printed = pretty(&doc);
        assert_eq!(printed, format!("{}\n", serde_json::to_string_pretty(&canonical_order(&doc)).unwrap()));
        assert!(printed.find("\"m\"") < printed.find("\"z\""), "{printed}");
    }

    #[test]
    fn projection_keeps_only_the_desired_keys() {
        let desired = json!({"a": 1, "b": null});
        let current = json!({"a": 2, "c": 3});
        assert_eq!(project_onto(&current, &desired), json!({"a": 2, "b": null}));
        assert_eq!(project_owned(current.clone(), &desired), project_onto(&current, &desired));
        assert_eq!(project_owned(json!([1]), &desired), project_onto(&json!([1]), &desired));
        assert_eq!(project_owned(json!({"a": 1}), &json!("s")), project_onto(&json!({"a": 1}), &json!("s")));
    }
}
