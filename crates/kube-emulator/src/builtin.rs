//! The built-in kinds the emulator serves (namespaces, configmaps, secrets, events, leases, CRDs)
//! with the structural schemas used to prune, validate and publish them in OpenAPI.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resource::{Codec, PrinterColumn, ResourceType};
use crate::schema::StructuralSchema;

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    status: bool,
    storage: &'static str,
    codec: Codec,
    columns: Vec<PrinterColumn>,
    schema: Value,
}

fn column(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        json_path: json_path.into(),
        priority: 0,
    }
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn object_reference() -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
        "namespace": {"type": "string"}, "uid": {"type": "string"}, "resourceVersion": {"type": "string"},
        "fieldPath": {"type": "string"}}})
}

fn object_schema(properties: Value) -> Value {
    let mut props =
        json!({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}});
    if let (Some(base), Value::Object(extra)) = (props.as_object_mut(), properties) {
        base.extend(extra);
    }
    json!({"type": "object", "properties": props})
}

fn core_event_schema() -> Value {
    object_schema(json!({
        "involvedObject": object_reference(),
        "reason": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"},
        "source": {"type": "object", "properties": {"component": {"type": "string"}, "host": {"type": "string"}}},
        "firstTimestamp": {"type": "string", "format": "date-time", "nullable": true},
        "lastTimestamp": {"type": "string", "format": "date-time", "nullable": true},
        "eventTime": {"type": "string", "nullable": true},
        "count": {"type": "integer"}, "action": {"type": "string"}, "related": object_reference(),
        "reportingComponent": {"type": "string"}, "reportingInstance": {"type": "string"},
        "series": {"type": "object", "properties": {"count": {"type": "integer"}, "lastObservedTime": {"type": "string"}}}
    }))
}

fn events_v1_schema() -> Value {
    object_schema(json!({
        "regarding": object_reference(), "related": object_reference(),
        "reason": {"type": "string"}, "note": {"type": "string"}, "type": {"type": "string"},
        "action": {"type": "string"}, "eventTime": {"type": "string", "nullable": true},
        "reportingController": {"type": "string"}, "reportingInstance": {"type": "string"},
        "deprecatedSource": {"type": "object", "properties": {"component": {"type": "string"}, "host": {"type": "string"}}},
        "deprecatedFirstTimestamp": {"type": "string", "format": "date-time", "nullable": true},
        "deprecatedLastTimestamp": {"type": "string", "format": "date-time", "nullable": true},
        "deprecatedCount": {"type": "integer"},
        "series": {"type": "object", "properties": {"count": {"type": "integer"}, "lastObservedTime": {"type": "string"}}}
    }))
}

fn builtins() -> Vec<Builtin> {
    vec![
        Builtin {
            group: "",
            version: "v1",
            kind: "Namespace",
            plural: "namespaces",
            short_names: &["ns"],
            namespaced: false,
            status: true,
            storage: "namespaces",
            codec: Codec::Identity,
            columns: vec![
                column("Status", "string", ".status.phase"),
                column("Age", "date", ".metadata.creationTimestamp"),
            ],
            schema: object_schema(json!({
                "spec": {"type": "object", "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"},
                    "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}
            })),
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "ConfigMap",
            plural: "configmaps",
            short_names: &["cm"],
            namespaced: true,
            status: false,
            storage: "configmaps",
            codec: Codec::Identity,
            columns: vec![column("Data", "integer", ".data"), column("Age", "date", ".metadata.creationTimestamp")],
            schema: object_schema(json!({
                "data": string_map(),
                "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                "immutable": {"type": "boolean"}
            })),
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Secret",
            plural: "secrets",
            short_names: &[],
            namespaced: true,
            status: false,
            storage: "secrets",
            codec: Codec::Identity,
            columns: vec![
                column("Type", "string", ".type"),
                column("Data", "integer", ".data"),
                column("Age", "date", ".metadata.creationTimestamp"),
            ],
            schema: object_schema(json!({
                "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                "stringData": string_map(),
                "type": {"type": "string"},
                "immutable": {"type": "boolean"}
            })),
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Event",
            plural: "events",
            short_names: &["ev"],
            namespaced: true,
            status: false,
            storage: "events",
            codec: Codec::Identity,
            columns: vec![
                column("Last Seen", "date", ".lastTimestamp"),
                column("Type", "string", ".type"),
                column("Reason", "string", ".reason"),
                column("Object", "string", ".involvedObject.name"),
                column("Message", "string", ".message"),
            ],
            schema: core_event_schema(),
        },
        Builtin {
            group: "events.k8s.io",
            version: "v1",
            kind: "Event",
            plural: "events",
            short_names: &["ev"],
            namespaced: true,
            status: false,
            storage: "events",
            codec: Codec::EventsV1,
            columns: vec![
                column("Type", "string", ".type"),
                column("Reason", "string", ".reason"),
                column("Object", "string", ".regarding.name"),
                column("Note", "string", ".note"),
            ],
            schema: events_v1_schema(),
        },
        Builtin {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            plural: "leases",
            short_names: &[],
            namespaced: true,
            status: false,
            storage: "coordination.k8s.io/leases",
            codec: Codec::Identity,
            columns: vec![
                column("Holder", "string", ".spec.holderIdentity"),
                column("Age", "date", ".metadata.creationTimestamp"),
            ],
            schema: object_schema(json!({"spec": {"type": "object", "properties": {
                "holderIdentity": {"type": "string", "nullable": true},
                "leaseDurationSeconds": {"type": "integer", "nullable": true},
                "acquireTime": {"type": "string", "nullable": true},
                "renewTime": {"type": "string", "nullable": true},
                "leaseTransitions": {"type": "integer", "nullable": true},
                "strategy": {"type": "string", "nullable": true},
                "preferredHolder": {"type": "string", "nullable": true}
            }}})),
        },
        Builtin {
            group: "apiextensions.k8s.io",
            version: "v1",
            kind: "CustomResourceDefinition",
            plural: "customresourcedefinitions",
            short_names: &["crd", "crds"],
            namespaced: false,
            status: true,
            storage: "apiextensions.k8s.io/customresourcedefinitions",
            codec: Codec::Identity,
            columns: vec![column("Created At", "date", ".metadata.creationTimestamp")],
            schema: object_schema(json!({
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            })),
        },
    ]
}

/// The built-in resource types.
pub fn builtin_types() -> Vec<ResourceType> {
    builtins()
        .into_iter()
        .map(|b| ResourceType {
            group: b.group.into(),
            version: b.version.into(),
            kind: b.kind.into(),
            list_kind: format!("{}List", b.kind),
            plural: b.plural.into(),
            singular: b.kind.to_lowercase(),
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: Vec::new(),
            namespaced: b.namespaced,
            status_subresource: b.status,
            // Built-in schemas carry no CEL rules, so compiling them cannot fail.
            schema: StructuralSchema::new(b.schema).ok().map(Arc::new),
            printer_columns: b.columns,
            selectable_fields: builtin_selectable_fields(b.kind),
            storage: b.storage.into(),
            codec: b.codec,
            builtin: true,
            storage_version: b.version.into(),
            crd_name: None,
        })
        .collect()
}

fn builtin_selectable_fields(kind: &str) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match kind {
        "Secret" => &[("type", ".type")],
        "Namespace" => &[("status.phase", ".status.phase")],
        "Event" => &[
            ("involvedObject.kind", ".involvedObject.kind"),
            ("involvedObject.name", ".involvedObject.name"),
            ("involvedObject.namespace", ".involvedObject.namespace"),
            ("involvedObject.uid", ".involvedObject.uid"),
            ("reason", ".reason"),
            ("type", ".type"),
        ],
        _ => &[],
    };
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Converts a stored core/v1 Event into events.k8s.io/v1 form.
pub fn core_event_to_events_v1(stored: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let Some(map) = stored.as_object() else { return stored.clone() };
    for (key, value) in map {
        let renamed = match key.as_str() {
            "involvedObject" => "regarding",
            "message" => "note",
            "reportingComponent" => "reportingController",
            "source" => "deprecatedSource",
            "firstTimestamp" => "deprecatedFirstTimestamp",
            "lastTimestamp" => "deprecatedLastTimestamp",
            "count" => "deprecatedCount",
            other => other,
        };
        out.insert(renamed.to_string(), value.clone());
    }
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    Value::Object(out)
}

/// Converts an events.k8s.io/v1 Event into the stored core/v1 form.
pub fn events_v1_to_core_event(served: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let Some(map) = served.as_object() else { return served.clone() };
    for (key, value) in map {
        let renamed = match key.as_str() {
            "regarding" => "involvedObject",
            "note" => "message",
            "reportingController" => "reportingComponent",
            "deprecatedSource" => "source",
            "deprecatedFirstTimestamp" => "firstTimestamp",
            "deprecatedLastTimestamp" => "lastTimestamp",
            "deprecatedCount" => "count",
            other => other,
        };
        out.insert(renamed.to_string(), value.clone());
    }
    out.insert("apiVersion".into(), json!("v1"));
    Value::Object(out)
}
