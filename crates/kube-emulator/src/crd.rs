//! CustomResourceDefinitions: turning a CRD object into served resource types, checking the
//! CRD itself, and the status (`Established`, `NamesAccepted`) the API server gives it.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::FieldCause;
use crate::resource::{Codec, PrinterColumn, ResourceType};
use crate::schema::StructuralSchema;

fn required(field: &str) -> FieldCause {
    FieldCause { reason: "FieldValueRequired", message: format!("{field}: Required value"), field: field.into() }
}

fn invalid(field: &str, value: &str, detail: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        message: format!("{field}: Invalid value: \"{value}\": {detail}"),
        field: field.into(),
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Builds the served types of a CRD, or the causes that make the CRD invalid.
pub fn resource_types_for(crd: &Value) -> Result<Vec<ResourceType>, Vec<FieldCause>> {
    let mut causes = Vec::new();
    let name = str_at(crd, "/metadata/name");
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let kind = str_at(crd, "/spec/names/kind");
    let scope = str_at(crd, "/spec/scope");
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if !group.contains('.') {
        causes.push(invalid("spec.group", group, "should be a domain with at least one dot"));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind"));
    }
    if !matches!(scope, "Namespaced" | "Cluster") {
        causes.push(FieldCause {
            reason: "FieldValueNotSupported",
            message: format!(
                "spec.scope: Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
            field: "spec.scope".into(),
        });
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(required("spec.versions"));
    }
    let storage_versions: Vec<&str> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    if !versions.is_empty() && storage_versions.len() != 1 {
        causes.push(invalid("spec.versions", "", "must have exactly one version marked as storage version"));
    }
    let storage_version = storage_versions.first().copied().unwrap_or_default().to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let list_of = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut types = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let vname = str_at(version, "/name");
        if vname.is_empty() {
            causes.push(required(&format!("spec.versions[{i}].name")));
            continue;
        }
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let schema = match version.pointer("/schema/openAPIV3Schema") {
            Some(raw) => match StructuralSchema::new(raw.clone()) {
                Ok(schema) => Some(Arc::new(schema)),
                Err(problem) => {
                    causes.push(invalid(
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        "",
                        &format!("compilation failed: {problem}"),
                    ));
                    None
                }
            },
            None => {
                causes.push(required(&format!("spec.versions[{i}].schema.openAPIV3Schema")));
                None
            }
        };
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: str_at(c, "/name").into(),
                        type_: str_at(c, "/type").into(),
                        format: str_at(c, "/format").into(),
                        description: str_at(c, "/description").into(),
                        json_path: str_at(c, "/jsonPath").into(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let selectable_fields = version
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        let path = str_at(f, "/jsonPath");
                        (path.trim_start_matches('.').to_string(), path.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        types.push(ResourceType {
            group: group.into(),
            version: vname.into(),
            kind: kind.into(),
            list_kind: names.get("listKind").and_then(Value::as_str).map(String::from).unwrap_or(format!("{kind}List")),
            plural: plural.into(),
            singular: names.get("singular").and_then(Value::as_str).map(String::from).unwrap_or(kind.to_lowercase()),
            short_names: list_of("shortNames"),
            categories: list_of("categories"),
            namespaced: scope == "Namespaced",
            status_subresource: version.pointer("/subresources/status").is_some(),
            schema,
            printer_columns,
            selectable_fields,
            storage: format!("{group}/{plural}"),
            codec: Codec::Identity,
            builtin: false,
            storage_version: storage_version.clone(),
            crd_name: Some(name.to_string()),
        });
    }
    if causes.is_empty() { Ok(types) } else { Err(causes) }
}

/// The status the API server writes on an accepted CRD.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored_versions: Vec<Value> =
        crd.pointer("/status/storedVersions").and_then(Value::as_array).cloned().unwrap_or_default();
    for version in stored {
        if !stored_versions.contains(&version) {
            stored_versions.push(version);
        }
    }
    json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "storedVersions": stored_versions,
    })
}
