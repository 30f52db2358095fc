//! Normalization: turns a backup item or a live Graph object into the comparable document the diff,
//! the preview digest and the drift checks read — server fields stripped, secrets masked, ids as names.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::backup::BackupItem;
use crate::canonical::canonical_json;
use crate::catalog::ItemType;
use crate::engine::mapping::{IdNames, Rewrite, SCOPE_TAG_KEYS, ZERO_GUID, ensure_default_scope_tag, rewrite_refs};
use crate::secrets::SecretMarks;

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
    // Every ending ends in one of these letters: most keys are ruled out by their last byte.
    if !matches!(key.last().map(u8::to_ascii_lowercase), Some(b'd' | b'e' | b'y' | b't')) {
        return false;
    }
    SECRET_KEY_ENDINGS
        .iter()
        .any(|end| key.len() >= end.len() && key[key.len() - end.len()..].eq_ignore_ascii_case(end.as_bytes()))
}

/// Whether an object key is a server-managed field or an OData annotation other than `@odata.type`.
fn is_server_managed(key: &str) -> bool {
    // [`SERVER_MANAGED`] by length first: most keys are ruled out without comparing their bytes.
    let listed = match key.len() {
        2 => key == "id",
        7 => key == "version",
        9 => key == "isBuiltIn",
        10 => key == "isAssigned",
        11 => key == "isEncrypted",
        12 => key == "settingCount",
        14 => key == "creationSource",
        15 => key == "createdDateTime",
        16 => matches!(key, "deployedAppCount" | "endOfSupportDate" | "modifiedDateTime"),
        17 => key == "supportsScopeTags",
        20 => key == "lastModifiedDateTime",
        22 => key == "secretReferenceValueId",
        28 => key == "deployableContentDisplayName",
        _ => false,
    };
    listed || (key.len() >= 7 && key.bytes().any(|b| b == b'@') && key.contains("@odata.") && key != "@odata.type")
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
    SecretSigns::of_object(map).hold_a_secret_value()
}

/// Whether an entry's value is masked where it stands: `value` of an object holding a secret value,
/// or a string or null under a key that names a secret.
fn masked_here(key: &str, value: &Value, secret_value: bool) -> bool {
    (secret_value && key == "value") || (is_secret_key(key) && (value.is_string() || value.is_null()))
}

/// [`mask_secrets`] then [`strip_server_managed`] in one walk (the same result).
fn mask_and_strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let secret_value = holds_secret_value(map);
            map.retain(|key, _| !is_server_managed(key));
            for (key, v) in map.iter_mut() {
                if masked_here(key, v, secret_value) {
                    *v = Value::String(MASKED.to_string());
                } else {
                    mask_and_strip(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_and_strip),
        _ => {}
    }
}

/// A copy of a borrowed value with secrets masked and server-managed fields left out ([`mask_and_strip`]
/// of a clone, without copying what is left out), every object's keys in sorted order.
fn masked_stripped_copy(value: &Value) -> Value {
    MaskedCopy::default().value(value)
}

/// Makes masked, stripped copies ([`masked_stripped_copy`]) and notes whether any object copied or
/// left out holds a secret value (only such a document can hold a secret a restore cannot write).
#[derive(Default)]
struct MaskedCopy {
    secret_seen: bool,
}

impl MaskedCopy {
    fn value(&mut self, value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let secret_value = holds_secret_value(map);
                Value::Object(self.entries(map.iter().map(|(key, v)| (key.as_str(), Part::One(v))), secret_value))
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            scalar => scalar.clone(),
        }
    }

    /// The object of `entries`; `secret_value` when it holds a secret value.
    fn entries<'a>(
        &mut self,
        entries: impl Iterator<Item = (&'a str, Part<'a>)>,
        secret_value: bool,
    ) -> Map<String, Value> {
        self.secret_seen |= secret_value;
        let mut kept: Vec<(&str, Part<'_>)> = Vec::new();
        for (key, part) in entries {
            if !is_server_managed(key) {
                kept.push((key, part));
            } else {
                self.secret_seen |= match part {
                    Part::One(left_out) => any_secret_value(left_out),
                    Part::List(left_out) => left_out.iter().any(any_secret_value),
                };
            }
        }
        kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = Map::with_capacity(kept.len());
        for (key, part) in kept {
            let copy = match part {
                Part::One(v) if masked_here(key, v, secret_value) => Value::String(MASKED.to_string()),
                Part::List(_) if secret_value && key == "value" => Value::String(MASKED.to_string()),
                Part::One(v) => self.value(v),
                Part::List(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            };
            map.insert(key.to_string(), copy);
        }
        map
    }
}

/// Whether any object in `value` holds a secret value.
fn any_secret_value(value: &Value) -> bool {
    match value {
        Value::Object(map) => holds_secret_value(map) || map.values().any(any_secret_value),
        Value::Array(items) => items.iter().any(any_secret_value),
        _ => false,
    }
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
/// encrypted Settings Catalog secret: Graph returns a token, not the value) in an item's document
/// given as its parts ([`document_parts`]).
pub fn find_unrestorable_secret_in(parts: &[(&str, Part<'_>)]) -> Option<String> {
    let root = PathTo::Root;
    if let Some(found) = signs_of_parts(parts, |signs| unrestorable_here(signs, &root)) {
        return Some(found);
    }
    parts.iter().find_map(|(key, part)| {
        let at = PathTo::Key(&root, key);
        match part {
            Part::One(v) => walk_for_secret(v, &at),
            Part::List(items) => items.iter().enumerate().find_map(|(i, v)| walk_for_secret(v, &PathTo::Index(&at, i))),
        }
    })
}

fn walk_for_secret(value: &Value, at: &PathTo<'_>) -> Option<String> {
    match value {
        Value::Object(map) => unrestorable_here(SecretSigns::of_object(map), at)
            .or_else(|| map.iter().find_map(|(k, v)| walk_for_secret(v, &PathTo::Key(at, k)))),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| walk_for_secret(v, &PathTo::Index(at, i))),
        _ => None,
    }
}

/// What an object's keys say about the secret it holds, read in one pass over them.
#[derive(Default)]
struct SecretSigns<'a> {
    /// `isEncrypted: true`.
    encrypted: bool,
    /// `secretReferenceValueId`.
    reference: Option<&'a Value>,
    /// A `…SecretSettingValue` `@odata.type`.
    secret_setting: bool,
    /// `valueState: encryptedValueToken`.
    value_token: bool,
    oma_uri: Option<&'a str>,
}

impl<'a> SecretSigns<'a> {
    /// The keys read.
    const KEYS: [&'static str; 5] = ["isEncrypted", "secretReferenceValueId", "@odata.type", "valueState", "omaUri"];

    fn of_object(map: &'a Map<String, Value>) -> Self {
        Self::of_entries(map.iter().map(|(k, v)| (k.as_str(), v)))
    }

    fn of_entries(entries: impl Iterator<Item = (&'a str, &'a Value)>) -> Self {
        let mut signs = SecretSigns::default();
        for (key, v) in entries {
            match key {
                "isEncrypted" => signs.encrypted = v.as_bool() == Some(true),
                "secretReferenceValueId" => signs.reference = Some(v),
                "@odata.type" => signs.secret_setting = v.as_str().is_some_and(|t| t.ends_with("SecretSettingValue")),
                "valueState" => signs.value_token = v.as_str() == Some("encryptedValueToken"),
                "omaUri" => signs.oma_uri = v.as_str(),
                _ => {}
            }
        }
        signs
    }

    /// An encrypted OMA-URI setting or a Settings Catalog secret value: its `value` is masked.
    fn hold_a_secret_value(&self) -> bool {
        self.encrypted || self.reference.is_some_and(|r| !r.is_null()) || self.secret_setting
    }

    /// A secret Graph returns as a reference or a token, which a restore cannot write back.
    fn unrestorable(&self) -> bool {
        self.encrypted
            || self.reference.is_some_and(|r| !r.is_null() && *r != "")
            || (self.secret_setting && self.value_token)
    }
}

/// `f` of the signs of an item's document's top level, given as its parts (a list read as an array).
fn signs_of_parts<R>(parts: &[(&str, Part<'_>)], f: impl FnOnce(SecretSigns<'_>) -> R) -> R {
    let values: Vec<(&str, Cow<'_, Value>)> =
        SecretSigns::KEYS.iter().filter_map(|key| part_named(parts, key).map(|v| (*key, v))).collect();
    f(SecretSigns::of_entries(values.iter().map(|(k, v)| (*k, v.as_ref()))))
}

/// The path of an object that is itself an unrestorable secret (by its `signs`).
fn unrestorable_here(signs: SecretSigns<'_>, at: &PathTo<'_>) -> Option<String> {
    if !signs.unrestorable() {
        return None;
    }
    let name = signs.oma_uri.map(|u| format!(" ({u})")).unwrap_or_default();
    let path = at.render();
    Some(format!("{}{name}", if path.is_empty() { "(root)" } else { &path }))
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

/// How an entry of an item's document is held in the item: one value, or a sub-resource's list.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// A property of the resource.
    One(&'a Value),
    /// A list held apart (a sub-resource, the assignments).
    List(&'a [Value]),
}

impl<'a> Part<'a> {
    /// The part as one value (a list as an array), copied.
    pub fn to_value(self) -> Value {
        match self {
            Part::One(v) => v.clone(),
            Part::List(items) => Value::Array(items.to_vec()),
        }
    }

    fn as_value(self) -> Cow<'a, Value> {
        match self {
            Part::One(v) => Cow::Borrowed(v),
            Part::List(items) => Cow::Owned(Value::Array(items.to_vec())),
        }
    }
}

/// The value of the part named `key`.
fn part_named<'a>(parts: &[(&str, Part<'a>)], key: &str) -> Option<Cow<'a, Value>> {
    parts.iter().find(|(k, _)| *k == key).map(|(_, part)| part.as_value())
}

/// The entries of an item's document ([`backup_document`]), borrowed from the item, in its order.
pub fn document_parts(item: &BackupItem, with_assignments: bool) -> Vec<(&str, Part<'_>)> {
    let mut parts: Vec<(&str, Part<'_>)> = match &item.resource {
        Value::Object(map) => map.iter().map(|(k, v)| (k.as_str(), Part::One(v))).collect(),
        _ => Vec::new(),
    };
    // The document's own list replaces the resource's (the last entry takes its place, as an
    // object's removal does).
    if let Some(at) = parts.iter().position(|(k, _)| *k == ASSIGNMENTS) {
        parts.swap_remove(at);
    }
    for (name, values) in &item.sub_resources {
        set_part(&mut parts, name, Part::List(values));
    }
    if with_assignments && let Some(assignments) = &item.assignments {
        set_part(&mut parts, ASSIGNMENTS, Part::List(assignments));
    }
    parts
}

/// Sets the entry `key` where it stands, or adds it last.
fn set_part<'a>(parts: &mut Vec<(&'a str, Part<'a>)>, key: &'a str, part: Part<'a>) {
    match parts.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = part,
        None => parts.push((key, part)),
    }
}

/// An item's full document as the backup holds it: the resource with its sub-resources as
/// properties and, when `with_assignments` and they were captured, its `assignments`.
pub fn backup_document(item: &BackupItem, with_assignments: bool) -> Value {
    Value::Object(
        document_parts(item, with_assignments).into_iter().map(|(k, p)| (k.to_string(), p.to_value())).collect(),
    )
}

/// An item's document ([`document_parts`]) with secrets masked and server-managed fields left out,
/// every object's keys in sorted order: only what is kept is copied. Marked content is not yet
/// digested ([`with_marks`]). Also whether an object of the document holds a secret value (when
/// not, [`find_unrestorable_secret_in`] finds nothing).
pub fn masked_stripped_document_noting_secrets(parts: &[(&str, Part<'_>)]) -> (Value, bool) {
    let secret_value = signs_of_parts(parts, |signs| signs.hold_a_secret_value());
    let mut copy = MaskedCopy::default();
    let doc = Value::Object(copy.entries(parts.iter().copied(), secret_value));
    (doc, copy.secret_seen)
}

/// `masked` (a document masked and stripped) with the content `item_type` marks secret digested.
/// Where every marked value is a scalar, its digest does not depend on the fields stripped;
/// otherwise the document is made again from `whole` (the same document before masking) in the
/// marks' own order: mask, digest, strip.
pub fn with_marks(item_type: Option<&ItemType>, masked: Value, whole: impl FnOnce() -> Value) -> Value {
    with_marks_of(crate::secrets::marks(), item_type, masked, whole)
}

/// [`with_marks`] with the given marks.
fn with_marks_of(
    marks: &SecretMarks,
    item_type: Option<&ItemType>,
    mut masked: Value,
    whole: impl FnOnce() -> Value,
) -> Value {
    let Some(t) = item_type.filter(|t| marks.marks_type(t.name)) else { return masked };
    if marks.marks_only_scalars(t.name, &masked) {
        marks.apply(t.name, &mut masked);
        return masked;
    }
    let mut doc = whole();
    mask_secrets(&mut doc);
    marks.apply(t.name, &mut doc);
    strip_server_managed(&mut doc);
    doc
}

/// Normalizes a full item document (from the backup or read live) for comparison: secrets masked,
/// server-managed fields stripped, an empty scope-tag list read as the default tag, references
/// replaced by their names in `names`, set-like lists sorted, nested nulls dropped, keys sorted.
pub fn normalize(item_type: Option<&ItemType>, doc: &Value, names: &IdNames) -> Value {
    let masked = with_marks(item_type, masked_stripped_copy(doc), || doc.clone());
    normalize_masked(item_type, masked, names)
}

/// [`normalize`] of a document the caller gives up (no copy is made).
pub fn normalize_owned(item_type: Option<&ItemType>, doc: Value, names: &IdNames) -> Value {
    normalize_masked(item_type, masked_owned(crate::secrets::marks(), item_type, doc), names)
}

/// An owned document with secrets masked, `marks` digested and server-managed fields removed.
fn masked_owned(marks: &SecretMarks, item_type: Option<&ItemType>, mut doc: Value) -> Value {
    match item_type.filter(|t| marks.marks_type(t.name)) {
        Some(t) if !marks.marks_only_scalars(t.name, &doc) => {
            mask_secrets(&mut doc);
            marks.apply(t.name, &mut doc);
            strip_server_managed(&mut doc);
        }
        marked => {
            mask_and_strip(&mut doc);
            if let Some(t) = marked {
                marks.apply(t.name, &mut doc);
            }
        }
    }
    doc
}

/// The rest of [`normalize`] for a document already masked, digested and stripped.
pub fn normalize_masked(item_type: Option<&ItemType>, mut doc: Value, names: &IdNames) -> Value {
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
    match &mut doc {
        Value::Object(map) => {
            map.values_mut().for_each(drop_nulls_and_sort);
            sort_keys_if_needed(map);
        }
        other => other.sort_all_objects(),
    }
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

/// Removes null-valued keys at every depth (absent and null mean the same below the top level) and
/// puts every object's keys in sorted order.
fn drop_nulls_and_sort(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls_and_sort);
            sort_keys_if_needed(map);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls_and_sort),
        _ => {}
    }
}

/// Sorts an object's keys unless they are in order already (a copy made in order needs no pass).
fn sort_keys_if_needed(map: &mut Map<String, Value>) {
    if !map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b) {
        map.sort_keys();
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
    // Already the desired keys in the desired order (an object that has not drifted): kept as it is.
    if have.len() == wanted.len() && have.keys().eq(wanted.keys()) {
        return Value::Object(have);
    }
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

    /// The unrestorable-secret search over a whole document (the preview searches an item's parts).
    fn find_unrestorable_secret(value: &Value) -> Option<String> {
        walk_for_secret(value, &PathTo::Root)
    }
    use crate::catalog::item_type;
    use crate::engine::mapping::RefKind;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_server_managed_keys_are_exactly_the_listed_ones_and_the_annotations() {
        for key in SERVER_MANAGED {
            assert!(is_server_managed(key), "{key}");
            for other in [format!("{key}x"), key[1..].to_string(), key.to_uppercase(), format!("x{}", &key[1..])] {
                assert!(!is_server_managed(&other), "{other}");
            }
        }
        for key in ["@odata.context", "settings@odata.context", "@odata.", "x@odata.bind"] {
            assert!(is_server_managed(key), "{key}");
        }
        for key in ["@odata.type", "@odata", "odata.x", "displayName", "", "a@b", "@"] {
            assert!(!is_server_managed(key), "{key}");
        }
    }

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
    fn rule_8_an_unrestorable_secret_is_an_encrypted_oma_value_or_an_encrypted_secret_setting_and_nothing_else() {
        let secret_setting = "#microsoft.graph.deviceManagementConfigurationSecretSettingValue";
        let found = [
            (json!({"isEncrypted": true}), "(root)"),
            (json!({"secretReferenceValueId": "r1", "omaUri": "./Vendor/X"}), "(root) (./Vendor/X)"),
            (json!({"@odata.type": secret_setting, "valueState": "encryptedValueToken"}), "(root)"),
            (json!({"a": {"secretReferenceValueId": "r1"}}), "a"),
        ];
        for (doc, path) in found {
            assert_eq!(find_unrestorable_secret(&doc).as_deref(), Some(path), "{doc}");
        }
        for doc in [
            json!({"isEncrypted": false, "secretReferenceValueId": null}),
            json!({"secretReferenceValueId": ""}),
            json!({"@odata.type": secret_setting, "valueState": "notEncrypted"}),
            json!({"@odata.type": secret_setting}),
            json!({"@odata.type": "#microsoft.graph.omaSettingString", "valueState": "encryptedValueToken"}),
            json!({"valueState": "encryptedValueToken"}),
        ] {
            assert_eq!(find_unrestorable_secret(&doc), None, "{doc}");
        }
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

    /// The normalization pipeline as it was written first, step by step on a whole copy: the
    /// specification the one-walk copies are held to.
    mod reference {
        use super::super::*;

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

        pub fn masked(item_type: Option<&ItemType>, doc: Value) -> Value {
            masked_by(crate::secrets::marks(), item_type, doc)
        }

        pub fn masked_by(marks: &SecretMarks, item_type: Option<&ItemType>, mut doc: Value) -> Value {
            mask_secrets(&mut doc);
            if let Some(t) = item_type {
                marks.apply(t.name, &mut doc);
            }
            strip_server_managed(&mut doc);
            doc
        }

        pub fn normalize(item_type: Option<&ItemType>, doc: Value, names: &IdNames) -> Value {
            let mut doc = normalize_masked(item_type, masked(item_type, doc), names);
            // `normalize_masked`'s own ending again, as two whole passes.
            if let Value::Object(map) = &mut doc {
                map.values_mut().for_each(drop_nulls);
            }
            doc.sort_all_objects();
            doc
        }
    }

    #[test]
    fn rule_8_the_top_level_of_an_items_document_masks_its_value_by_the_same_secret_signs_as_any_object() {
        let flags = [None, Some(json!(true)), Some(json!(false))];
        let refs = [None, Some(json!(null)), Some(json!("")), Some(json!("r"))];
        let types = [
            None,
            Some(json!("#microsoft.graph.deviceManagementConfigurationSecretSettingValue")),
            Some(json!("#microsoft.graph.omaSettingString")),
        ];
        let mut combinations = Vec::new();
        for encrypted in &flags {
            for reference_id in &refs {
                for odata in &types {
                    combinations.push((encrypted.clone(), reference_id.clone(), odata.clone()));
                }
            }
        }
        for (encrypted, reference_id, odata) in combinations {
            for value_held_apart in [false, true] {
                let mut resource = Map::new();
                for (key, v) in
                    [("isEncrypted", &encrypted), ("secretReferenceValueId", &reference_id), ("@odata.type", &odata)]
                {
                    if let Some(v) = v {
                        resource.insert(key.into(), v.clone());
                    }
                }
                let mut sub_resources = std::collections::BTreeMap::new();
                if value_held_apart {
                    sub_resources.insert("value".to_string(), vec![json!("x")]);
                } else {
                    resource.insert("value".into(), json!("x"));
                }
                let item = BackupItem {
                    item_type: "deviceConfiguration".into(),
                    id: "1".into(),
                    display_name: "A".into(),
                    platform: "windows".into(),
                    resource: Value::Object(resource),
                    assignments: None,
                    sub_resources,
                    references: Default::default(),
                };
                let whole = reference::backup_document(&item, false);
                let expected = reference::masked(None, whole.clone());
                assert_eq!(
                    masked_stripped_document_noting_secrets(&document_parts(&item, false)).0,
                    expected,
                    "{whole}"
                );
                let masks = expected["value"] == MASKED;
                let signs = encrypted == Some(json!(true))
                    || reference_id.as_ref().is_some_and(|r| !r.is_null())
                    || odata.as_ref().is_some_and(|o| o.as_str().is_some_and(|o| o.ends_with("SecretSettingValue")));
                assert_eq!(masks, signs, "{whole}");
            }
        }
    }

    /// Documents whose keys and values reach every rule of normalization: server fields and
    /// annotations, secret flags and keys, the marked `payload`, references, nulls, nesting.
    fn document() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "id",
            "version",
            "@odata.type",
            "@odata.context",
            "x@odata.bind",
            "isEncrypted",
            "secretReferenceValueId",
            "value",
            "valueState",
            "omaUri",
            "password",
            "wifiPreSharedKey",
            "displayName",
            "description",
            "roleScopeTagIds",
            "payload",
            "assignments",
            "target",
            "groupId",
            "deviceAndAppManagementAssignmentFilterId",
            "settings",
            "definitionValues",
            "a",
            "b",
            "Z",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0..4i64).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "x",
                "g1",
                "7",
                "0",
                ZERO_GUID,
                "encryptedValueToken",
                "#microsoft.graph.deviceManagementConfigurationSecretSettingValue",
                "#microsoft.graph.omaSettingString",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    fn backup_item() -> impl Strategy<Value = BackupItem> {
        let lists = || prop::collection::vec(document(), 0..3);
        let sub_names = prop::sample::select(vec!["settings", "assignments", "value", "isEncrypted", "apps"]);
        (
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "id",
                        "assignments",
                        "payload",
                        "value",
                        "isEncrypted",
                        "description",
                        "roleScopeTagIds",
                        "a",
                    ]),
                    document(),
                ),
                0..6,
            ),
            prop::collection::btree_map(sub_names, lists(), 0..3),
            prop::option::of(lists()),
        )
            .prop_map(|(resource, sub_resources, assignments)| BackupItem {
                item_type: "deviceConfiguration".into(),
                id: "1".into(),
                display_name: "A".into(),
                platform: "windows".into(),
                resource: Value::Object(resource.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
                assignments,
                sub_resources: sub_resources.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                references: Default::default(),
            })
    }

    fn types() -> Vec<Option<&'static ItemType>> {
        vec![None, item_type("deviceConfiguration"), item_type("administrativeTemplate"), item_type("compliancePolicy")]
    }

    fn names() -> IdNames {
        let mut names = IdNames::default();
        names.insert(RefKind::Group, "g1", "Sales");
        names.insert(RefKind::ScopeTag, "7", "Paris");
        names
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn rule_8_normalizing_in_one_walk_is_the_same_as_masking_digesting_and_stripping_first(doc in document()) {
            for t in types() {
                let expected = reference::normalize(t, doc.clone(), &names());
                prop_assert_eq!(&normalize(t, &doc, &names()), &expected);
                let owned = normalize_owned(t, doc.clone(), &names());
                prop_assert_eq!(serde_json::to_string(&owned).unwrap(), serde_json::to_string(&expected).unwrap());
            }
        }

        #[test]
        fn an_items_document_parts_are_its_document_in_its_order(item in backup_item(), with_assignments in any::<bool>()) {
            let whole = reference::backup_document(&item, with_assignments);
            prop_assert_eq!(
                serde_json::to_string(&backup_document(&item, with_assignments)).unwrap(),
                serde_json::to_string(&whole).unwrap()
            );
            let parts = document_parts(&item, with_assignments);
            prop_assert_eq!(find_unrestorable_secret_in(&parts), find_unrestorable_secret(&whole));
            let (copy, secret_seen) = masked_stripped_document_noting_secrets(&parts);
            if !secret_seen {
                prop_assert_eq!(find_unrestorable_secret(&whole), None);
            }
            prop_assert_eq!(crate::engine::mapping::collect_refs(&copy), crate::engine::mapping::collect_refs(&whole));
            prop_assert_eq!(
                crate::engine::mapping::collect_item_refs(&item, with_assignments),
                crate::engine::mapping::collect_refs_in_place(&mut whole.clone())
            );
            for t in types() {
                let masked = with_marks(t, copy.clone(), || whole.clone());
                let expected = reference::masked(t, whole.clone());
                prop_assert_eq!(&masked, &expected);
                prop_assert_eq!(
                    serde_json::to_string(&normalize_masked(t, masked, &names())).unwrap(),
                    serde_json::to_string(&reference::normalize(t, whole.clone(), &names())).unwrap()
                );
            }
        }

        #[test]
        fn rule_8_marked_fields_at_any_depth_are_digested_as_if_masked_digested_and_stripped_in_turn(item in backup_item()) {
            // Paths through lists and objects, to scalars, objects and lists, and through stripped fields.
            let marks = ["payload", "settings.value", "a.b", "value", "a.id.b", "assignments.target", "Z.a.b"]
                .into_iter()
                .fold(SecretMarks::none(), |marks, path| marks.marking("deviceConfiguration", path));
            let t = item_type("deviceConfiguration");
            let whole = reference::backup_document(&item, true);
            let expected = reference::masked_by(&marks, t, whole.clone());
            let copy = masked_stripped_document_noting_secrets(&document_parts(&item, true)).0;
            prop_assert_eq!(&with_marks_of(&marks, t, copy, || whole.clone()), &expected);
            prop_assert_eq!(&masked_owned(&marks, t, whole.clone()), &expected);
        }

        #[test]
        fn an_object_with_the_desired_keys_is_projected_as_it_is(doc in document(), desired in document()) {
            prop_assert_eq!(project_owned(doc.clone(), &desired), project_onto(&doc, &desired));
            prop_assert_eq!(project_owned(desired.clone(), &desired), project_onto(&desired, &desired));
        }
    }
}
