//! Field ownership (`metadata.managedFields`, FieldsV1) and the simplified server-side apply built
//! on it: conflicts between managers, forced takeover and removal of fields an applier dropped.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A set of owned field paths (leaves). Lists are atomic: a list is one leaf.
pub type FieldSet = BTreeSet<Vec<String>>;

/// The fields an object (or an applied configuration) sets, as leaf paths.
/// `apiVersion`, `kind` and identity metadata are not owned by anyone.
pub fn fields_of(object: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    if let Value::Object(map) = object {
        for (key, value) in map {
            match key.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    if let Value::Object(meta) = value {
                        for owned in ["labels", "annotations", "finalizers", "ownerReferences"] {
                            if let Some(v) = meta.get(owned) {
                                collect(v, vec!["metadata".into(), owned.into()], &mut set);
                            }
                        }
                    }
                }
                _ => collect(value, vec![key.clone()], &mut set),
            }
        }
    }
    set
}

fn collect(value: &Value, path: Vec<String>, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut child_path = path.clone();
                child_path.push(key.clone());
                collect(child, child_path, set);
            }
        }
        _ => {
            set.insert(path);
        }
    }
}

/// The leaf paths whose value differs between two objects (added, changed or removed in `new`).
pub fn changed_fields(old: &Value, new: &Value) -> FieldSet {
    let old_fields = fields_of(old);
    let new_fields = fields_of(new);
    let mut changed = FieldSet::new();
    for path in new_fields.iter() {
        if value_at(old, path) != value_at(new, path) {
            changed.insert(path.clone());
        }
    }
    for path in old_fields.difference(&new_fields) {
        if value_at(new, path).is_none() {
            changed.insert(path.clone());
        }
    }
    changed
}

/// The value at a path, if present.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |current, key| current.get(key))
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut current = object;
    for key in parents {
        match current.get_mut(key) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Value::Object(map) = current {
        map.remove(last);
    }
}

/// Whether two paths overlap (equal, or one contains the other).
fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// FieldsV1 JSON (`{"f:spec":{"f:x":{}}}`) from a set of paths.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for key in path {
            let entry = node.entry(format!("f:{key}")).or_insert_with(|| json!({}));
            let Value::Object(next) = entry else { break };
            node = next;
        }
    }
    Value::Object(root)
}

/// Paths from FieldsV1 JSON (keys that are not `f:` are kept whole, as opaque leaves).
pub fn from_fields_v1(fields: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    fn walk(node: &Value, path: Vec<String>, set: &mut FieldSet) {
        match node {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    if key == "." {
                        continue;
                    }
                    let mut child_path = path.clone();
                    child_path.push(key.strip_prefix("f:").unwrap_or(key).to_string());
                    walk(child, child_path, set);
                }
            }
            _ => {
                if !path.is_empty() {
                    set.insert(path);
                }
            }
        }
    }
    walk(fields, Vec::new(), &mut set);
    set
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version the manager wrote through.
    pub api_version: String,
    /// Last write time.
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn same_slot(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }
}

/// Reads `metadata.managedFields` of a stored object.
pub fn read_managed(object: &Value) -> Vec<ManagedEntry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| ManagedEntry {
                    manager: e.get("manager").and_then(Value::as_str).unwrap_or_default().into(),
                    operation: e.get("operation").and_then(Value::as_str).unwrap_or("Update").into(),
                    api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or_default().into(),
                    time: e.get("time").and_then(Value::as_str).unwrap_or_default().into(),
                    subresource: e.get("subresource").and_then(Value::as_str).map(String::from),
                    fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields`, dropping entries that own nothing.
pub fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries.iter().filter(|e| !e.fields.is_empty()).map(ManagedEntry::to_json).collect();
    if let Some(meta) = crate::meta::metadata_mut(object) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Who is writing, and how, for field ownership.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// API version of the request.
    pub api_version: &'a str,
    /// `status` for status-subresource writes.
    pub subresource: Option<&'a str>,
    /// Current time (RFC 3339).
    pub now: &'a str,
}

/// Records an `Update` by `writer`: it takes ownership of every field it changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let changed = match old {
        Some(old) => changed_fields(old, new),
        None => fields_of(new),
    };
    if changed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    let present = fields_of(new);
    for entry in entries.iter_mut() {
        entry.fields.retain(|p| !changed.contains(p) && present.iter().any(|q| overlaps(p, q)));
    }
    let owned: FieldSet = changed.into_iter().filter(|p| present.contains(p)).collect();
    upsert(&mut entries, writer, "Update", owned, true);
    write_managed(new, &entries);
}

fn upsert(entries: &mut Vec<ManagedEntry>, writer: &Writer<'_>, operation: &str, fields: FieldSet, extend: bool) {
    match entries.iter_mut().find(|e| e.same_slot(writer.manager, operation, writer.subresource)) {
        Some(entry) => {
            if extend {
                entry.fields.extend(fields);
            } else {
                entry.fields = fields;
            }
            entry.time = writer.now.to_string();
            entry.api_version = writer.api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: writer.manager.to_string(),
            operation: operation.to_string(),
            api_version: writer.api_version.to_string(),
            time: writer.now.to_string(),
            subresource: writer.subresource.map(String::from),
            fields,
        }),
    }
}

/// A field owned by another manager with a different value than the applied configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyConflict {
    /// The other manager.
    pub manager: String,
    /// The field path, dotted with a leading dot (`.spec.x`).
    pub field: String,
}

/// Server-side apply of `applied` by `writer` onto `live` (None when creating).
/// Returns the merged object with updated managed fields, or the conflicts when not forced.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<ApplyConflict>> {
    let base = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = live.map(read_managed).unwrap_or_default();
    let mut applied_fields = fields_of(applied);
    if let Some(sub) = writer.subresource {
        applied_fields.retain(|p| p.first().map(String::as_str) == Some(sub));
    }
    let mut conflicts = Vec::new();
    for entry in entries.iter_mut() {
        if entry.same_slot(writer.manager, "Apply", writer.subresource) {
            continue;
        }
        let contested: Vec<Vec<String>> = entry
            .fields
            .iter()
            .filter(|owned| {
                applied_fields
                    .iter()
                    .any(|mine| overlaps(owned, mine) && value_at(applied, mine) != value_at(&base, mine))
            })
            .cloned()
            .collect();
        if contested.is_empty() {
            continue;
        }
        if entry.manager == writer.manager || force {
            entry.fields.retain(|p| !contested.contains(p));
        } else {
            conflicts.extend(
                contested
                    .into_iter()
                    .map(|p| ApplyConflict { manager: entry.manager.clone(), field: format!(".{}", p.join(".")) }),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let mut merged = base.clone();
    let previous: FieldSet = entries
        .iter()
        .find(|e| e.same_slot(writer.manager, "Apply", writer.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for dropped in previous.difference(&applied_fields) {
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !e.same_slot(writer.manager, "Apply", writer.subresource))
            .any(|e| e.fields.iter().any(|p| overlaps(p, dropped)));
        let still_applied = applied_fields.iter().any(|p| overlaps(p, dropped));
        if !owned_elsewhere && !still_applied {
            remove_at(&mut merged, dropped);
        }
    }
    let mut patch = applied.clone();
    if let Some(sub) = writer.subresource
        && let Value::Object(map) = &mut patch
    {
        map.retain(|k, _| k == sub || k == "apiVersion" || k == "kind");
    }
    if let Value::Object(map) = &mut patch
        && let Some(Value::Object(meta)) = map.get_mut("metadata")
    {
        meta.retain(|k, _| {
            matches!(
                k.as_str(),
                "labels"
                    | "annotations"
                    | "finalizers"
                    | "ownerReferences"
                    | "name"
                    | "namespace"
                    | "generateName"
                    | "resourceVersion"
                    | "uid"
            )
        });
    }
    crate::patch::merge_patch(&mut merged, &patch);
    upsert(&mut entries, writer, "Apply", applied_fields, false);
    write_managed(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer { manager, api_version: "v1", subresource: None, now: "2026-01-01T00:00:00Z" }
    }

    #[test]
    fn fields_v1_round_trips() {
        let set =
            fields_of(&json!({"spec": {"a": 1, "b": {"c": [1, 2]}}, "metadata": {"name": "x", "labels": {"k": "v"}}}));
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
        assert!(set.contains(&vec!["metadata".to_string(), "labels".into(), "k".into()]));
        assert!(!set.iter().any(|p| p.last().map(String::as_str) == Some("name")));
    }

    #[test]
    fn apply_conflicts_with_another_manager_unless_forced() {
        let first = apply(None, &json!({"spec": {"a": 1, "b": 2}}), &writer("alice"), false).unwrap();
        let conflict = apply(Some(&first), &json!({"spec": {"a": 5}}), &writer("bob"), false).unwrap_err();
        assert_eq!(conflict, vec![ApplyConflict { manager: "alice".into(), field: ".spec.a".into() }]);
        let same_value = apply(Some(&first), &json!({"spec": {"a": 1}}), &writer("bob"), false);
        assert!(same_value.is_ok(), "applying an identical value shares ownership");
        let forced = apply(Some(&first), &json!({"spec": {"a": 5}}), &writer("bob"), true).unwrap();
        assert_eq!(forced["spec"], json!({"a": 5, "b": 2}));
        let managers: Vec<String> = read_managed(&forced).into_iter().map(|e| e.manager).collect();
        assert_eq!(managers, vec!["alice", "bob"]);
    }

    #[test]
    fn apply_removes_fields_the_manager_stopped_applying() {
        let first = apply(None, &json!({"spec": {"a": 1, "b": 2}}), &writer("alice"), false).unwrap();
        let second = apply(Some(&first), &json!({"spec": {"a": 1}}), &writer("alice"), false).unwrap();
        assert_eq!(second["spec"], json!({"a": 1}));
    }
}
