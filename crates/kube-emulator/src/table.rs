//! Server-side printing: `meta.k8s.io/v1` Table and PartialObjectMetadata answers for
//! `kubectl get`, built from a resource's printer columns (JSONPath) like the API server.

use serde_json::{Value, json};

use crate::jsonpath;
use crate::resource::{PrinterColumn, ResourceType};

/// How the client asked to see objects (from the `Accept` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The objects themselves.
    Full,
    /// A Table; `include_object` is `Object`, `Metadata` (default) or `None`.
    Table(IncludeObject),
    /// PartialObjectMetadata / PartialObjectMetadataList.
    Metadata,
}

/// What a table row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// PartialObjectMetadata.
    Metadata,
    /// The whole object.
    Object,
}

impl Rendering {
    /// Picks the rendering from an `Accept` header and the `includeObject` parameter.
    pub fn from_accept(accept: &str, include_object: Option<&str>) -> Self {
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
            match as_ {
                Some("Table") => {
                    let include = match include_object {
                        Some("Object") => IncludeObject::Object,
                        Some("None") => IncludeObject::None,
                        _ => IncludeObject::Metadata,
                    };
                    return Self::Table(include);
                }
                Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") => return Self::Metadata,
                Some(_) => continue,
                None => return Self::Full,
            }
        }
        Self::Full
    }
}

/// An object reduced to PartialObjectMetadata.
pub fn partial_metadata(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A list reduced to PartialObjectMetadataList.
pub fn partial_metadata_list(list: &Value) -> Value {
    let items: Vec<Value> =
        list["items"].as_array().map(|i| i.iter().map(partial_metadata).collect()).unwrap_or_default();
    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list.get("metadata").cloned().unwrap_or(json!({})), "items": items})
}

fn columns(resource: &ResourceType) -> Vec<PrinterColumn> {
    let mut cols = vec![PrinterColumn {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: "Name must be unique within a namespace.".into(),
        json_path: ".metadata.name".into(),
        priority: 0,
    }];
    if resource.printer_columns.is_empty() {
        cols.push(PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created."
                .into(),
            json_path: ".metadata.creationTimestamp".into(),
            priority: 0,
        });
    } else {
        cols.extend(resource.printer_columns.iter().cloned());
    }
    cols
}

/// Kubernetes' human-readable duration (`5m`, `3h12m`, `2d`), as `kubectl get` shows ages.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    let days = (hours / 24) % 365;
    if hours < 24 * 365 * 8 && days != 0 { format!("{years}y{days}d") } else { format!("{years}y") }
}

fn cell(object: &Value, column: &PrinterColumn) -> Value {
    let values = jsonpath::evaluate(object, &column.json_path).unwrap_or_default();
    let Some(first) = values.first() else { return Value::Null };
    match column.type_.as_str() {
        "date" => match first.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
            Some(at) => json!(human_duration(jiff::Timestamp::now().duration_since(at).as_secs())),
            None => Value::Null,
        },
        "integer" | "number" => match first {
            Value::Object(map) => json!(map.len()),
            Value::Array(items) => json!(items.len()),
            other => other.clone(),
        },
        "boolean" => first.clone(),
        _ => {
            let text: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            json!(text.join(","))
        }
    }
}

fn row(resource: &ResourceType, object: &Value, include: IncludeObject) -> Value {
    let cells: Vec<Value> = columns(resource).iter().map(|c| cell(object, c)).collect();
    let mut row = json!({"cells": cells});
    match include {
        IncludeObject::Object => row["object"] = object.clone(),
        IncludeObject::Metadata => row["object"] = partial_metadata(object),
        IncludeObject::None => {}
    }
    row
}

/// A Table of one object or of a list's items.
pub fn to_table(resource: &ResourceType, object_or_list: &Value, include: IncludeObject) -> Value {
    let (objects, metadata) = match object_or_list.get("items").and_then(Value::as_array) {
        Some(items) => (items.clone(), object_or_list.get("metadata").cloned().unwrap_or(json!({}))),
        None => (
            vec![object_or_list.clone()],
            json!({"resourceVersion": object_or_list.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""))}),
        ),
    };
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": if c.type_ == "date" { "string" } else { c.type_.as_str() },
                   "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects.iter().map(|o| row(resource, o, include)).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn accept_header_selects_rendering() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(Rendering::from_accept(kubectl, None), Rendering::Table(IncludeObject::Metadata));
        assert_eq!(Rendering::from_accept("application/json", Some("Object")), Rendering::Full);
        assert_eq!(
            Rendering::from_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", None),
            Rendering::Metadata
        );
    }
}
