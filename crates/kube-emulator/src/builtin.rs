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

impl Builtin {
    /// A kind with no short names, no status subresource, identity storage under `plural`.
    fn new(group: &'static str, kind: &'static str, plural: &'static str, namespaced: bool, schema: Value) -> Self {
        Self {
            group,
            version: "v1",
            kind,
            plural,
            short_names: &[],
            namespaced,
            status: false,
            storage: plural,
            codec: Codec::Identity,
            columns: vec![column("Age", "date", ".metadata.creationTimestamp")],
            schema,
        }
    }

    fn short_names(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }

    fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    fn stored_in(mut self, storage: &'static str, codec: Codec) -> Self {
        self.storage = storage;
        self.codec = codec;
        self
    }

    /// Columns before the trailing `Age` (an empty list keeps only `Age`).
    fn columns(mut self, columns: &[(&str, &str, &str)], age: bool) -> Self {
        let mut all: Vec<PrinterColumn> = columns.iter().map(|(n, t, p)| column(n, t, p)).collect();
        if age {
            all.push(column("Age", "date", ".metadata.creationTimestamp"));
        }
        self.columns = all;
        self
    }
}

fn builtins() -> Vec<Builtin> {
    let namespace_schema = object_schema(json!({
        "spec": {"type": "object", "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"},
            "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}
    }));
    let config_map_schema = object_schema(json!({
        "data": string_map(),
        "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
        "immutable": {"type": "boolean"}
    }));
    let secret_schema = object_schema(json!({
        "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
        "stringData": string_map(),
        "type": {"type": "string"},
        "immutable": {"type": "boolean"}
    }));
    let lease_schema = object_schema(json!({"spec": {"type": "object", "properties": {
        "holderIdentity": {"type": "string", "nullable": true},
        "leaseDurationSeconds": {"type": "integer", "nullable": true},
        "acquireTime": {"type": "string", "nullable": true},
        "renewTime": {"type": "string", "nullable": true},
        "leaseTransitions": {"type": "integer", "nullable": true},
        "strategy": {"type": "string", "nullable": true},
        "preferredHolder": {"type": "string", "nullable": true}
    }}}));
    let crd_schema = object_schema(json!({
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }));
    let preserved_object = || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let preserved_list =
        || json!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let role_schema = object_schema(json!({"rules": preserved_list(), "aggregationRule": preserved_object()}));
    let binding_schema = object_schema(json!({"roleRef": preserved_object(), "subjects": preserved_list()}));
    let spec_schema = object_schema(json!({"spec": preserved_object(), "status": preserved_object()}));
    let service_account_schema = object_schema(json!({
        "secrets": preserved_list(), "imagePullSecrets": preserved_list(),
        "automountServiceAccountToken": {"type": "boolean"}
    }));
    const RBAC: &str = "rbac.authorization.k8s.io";
    const ADMISSION: &str = "admissionregistration.k8s.io";
    vec![
        Builtin::new("", "ServiceAccount", "serviceaccounts", true, service_account_schema)
            .short_names(&["sa"])
            .columns(&[("Secrets", "integer", ".secrets")], true),
        Builtin::new(RBAC, "Role", "roles", true, role_schema.clone()).stored_in(crate::rbac::ROLES, Codec::Identity),
        Builtin::new(RBAC, "ClusterRole", "clusterroles", false, role_schema)
            .stored_in(crate::rbac::CLUSTER_ROLES, Codec::Identity),
        Builtin::new(RBAC, "RoleBinding", "rolebindings", true, binding_schema.clone())
            .stored_in(crate::rbac::ROLE_BINDINGS, Codec::Identity)
            .columns(&[("Role", "string", ".roleRef.name")], true),
        Builtin::new(RBAC, "ClusterRoleBinding", "clusterrolebindings", false, binding_schema)
            .stored_in(crate::rbac::CLUSTER_ROLE_BINDINGS, Codec::Identity)
            .columns(&[("Role", "string", ".roleRef.name")], true),
        Builtin::new(ADMISSION, "ValidatingAdmissionPolicy", "validatingadmissionpolicies", false, spec_schema.clone())
            .stored_in(crate::admission_policy::POLICIES, Codec::Identity)
            .columns(&[("Validations", "integer", ".spec.validations")], true),
        Builtin::new(
            ADMISSION,
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
            spec_schema.clone(),
        )
        .stored_in(crate::admission_policy::BINDINGS, Codec::Identity)
        .columns(&[("PolicyName", "string", ".spec.policyName")], true),
        // Stored only, so a rendered chart applies whole: no controller runs them.
        Builtin::new("", "Service", "services", true, spec_schema.clone())
            .short_names(&["svc"])
            .with_status()
            .columns(&[("Type", "string", ".spec.type"), ("Cluster-IP", "string", ".spec.clusterIP")], true),
        Builtin::new("apps", "Deployment", "deployments", true, spec_schema)
            .short_names(&["deploy"])
            .with_status()
            .stored_in("apps/deployments", Codec::Identity)
            .columns(&[("Ready", "string", ".status.readyReplicas")], true),
        Builtin::new("", "Namespace", "namespaces", false, namespace_schema)
            .short_names(&["ns"])
            .with_status()
            .columns(&[("Status", "string", ".status.phase")], true),
        Builtin::new("", "ConfigMap", "configmaps", true, config_map_schema)
            .short_names(&["cm"])
            .columns(&[("Data", "integer", ".data")], true),
        Builtin::new("", "Secret", "secrets", true, secret_schema)
            .columns(&[("Type", "string", ".type"), ("Data", "integer", ".data")], true),
        Builtin::new("", "Event", "events", true, core_event_schema()).short_names(&["ev"]).columns(
            &[
                ("Last Seen", "date", ".lastTimestamp"),
                ("Type", "string", ".type"),
                ("Reason", "string", ".reason"),
                ("Object", "string", ".involvedObject.name"),
                ("Message", "string", ".message"),
            ],
            false,
        ),
        Builtin::new("events.k8s.io", "Event", "events", true, events_v1_schema())
            .short_names(&["ev"])
            .stored_in("events", Codec::EventsV1)
            .columns(
                &[
                    ("Type", "string", ".type"),
                    ("Reason", "string", ".reason"),
                    ("Object", "string", ".regarding.name"),
                    ("Note", "string", ".note"),
                ],
                false,
            ),
        Builtin::new("coordination.k8s.io", "Lease", "leases", true, lease_schema)
            .stored_in("coordination.k8s.io/leases", Codec::Identity)
            .columns(&[("Holder", "string", ".spec.holderIdentity")], true),
        Builtin::new(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            crd_schema,
        )
        .short_names(&["crd", "crds"])
        .with_status()
        .stored_in("apiextensions.k8s.io/customresourcedefinitions", Codec::Identity)
        .columns(&[("Created At", "date", ".metadata.creationTimestamp")], false),
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

/// Field names of core/v1 Event and their events.k8s.io/v1 counterparts.
const EVENT_FIELD_NAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename_event_fields(event: &Value, to_events_v1: bool, api_version: &str) -> Value {
    let Some(map) = event.as_object() else { return event.clone() };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        let renamed = EVENT_FIELD_NAMES
            .iter()
            .find_map(|(core, v1)| match to_events_v1 {
                true if key == core => Some(*v1),
                false if key == v1 => Some(*core),
                _ => None,
            })
            .unwrap_or(key);
        out.insert(renamed.to_string(), value.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    Value::Object(out)
}

/// Converts a stored core/v1 Event into events.k8s.io/v1 form.
pub fn core_event_to_events_v1(stored: &Value) -> Value {
    rename_event_fields(stored, true, "events.k8s.io/v1")
}

/// Converts an events.k8s.io/v1 Event into the stored core/v1 form.
pub fn events_v1_to_core_event(served: &Value) -> Value {
    rename_event_fields(served, false, "v1")
}
