//! OpenAPI v3 documents (`/openapi/v3` and one per group-version) built from the registry, so
//! kubectl finds the `fieldValidation` parameter (server-side validation) and the kinds' schemas.

use serde_json::{Map, Value, json};

use crate::resource::{Registry, ResourceType};

/// The schema name of a kind, e.g. `io.tenantatlas.v1alpha1.RestoreRun`.
pub fn schema_name(resource: &ResourceType) -> String {
    let prefix = if resource.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        resource.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{prefix}.{}.{}", resource.version, resource.kind)
}

/// The key of a group-version in the `/openapi/v3` index (`api/v1`, `apis/g/v`).
pub fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.group_versions() {
        for version in versions {
            let key = group_version_key(&group, &version);
            let doc = group_version(registry, &group, &version).unwrap_or(Value::Null);
            let hash = format!("{:016X}", fnv(&doc.to_string()));
            paths.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}));
        }
    }
    json!({"paths": paths})
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |hash, b| (hash ^ b as u64).wrapping_mul(0x100000001b3))
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param("dryRun", "When present, indicates that modifications should not be persisted."),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict.",
        ),
    ]
}

fn operation(resource: &ResourceType, action: &str, op_id: &str, params: Vec<Value>) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(resource))});
    let mut op = json!({
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
    });
    if matches!(action, "put" | "post" | "patch") {
        let media = if action == "patch" {
            vec!["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
        } else {
            vec!["application/json"]
        };
        let content: Map<String, Value> =
            media.into_iter().map(|m| (m.to_string(), json!({"schema": {"type": "object"}}))).collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry.all().iter().filter(|t| t.group == group && t.version == version).cloned().collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &types {
        let base = t.group_version_path();
        let collection = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        let item = format!("{collection}/{{name}}");
        let id = format!("{}{}", t.kind, t.version);
        let mut patch_params = write_params();
        patch_params.push(query_param("force", "Force is going to \"force\" Apply requests."));
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(t, "list", &format!("list{id}"), vec![query_param("labelSelector", ""), query_param("fieldSelector", ""), query_param("watch", "")]),
                "post": operation(t, "post", &format!("create{id}"), write_params()),
                "delete": operation(t, "deletecollection", &format!("deletecollection{id}"), vec![]),
            }),
        );
        paths.insert(
            item.clone(),
            json!({
                "get": operation(t, "get", &format!("read{id}"), vec![]),
                "put": operation(t, "put", &format!("replace{id}"), write_params()),
                "patch": operation(t, "patch", &format!("patch{id}"), patch_params.clone()),
                "delete": operation(t, "delete", &format!("delete{id}"), vec![]),
            }),
        );
        if t.status_subresource {
            paths.insert(
                format!("{item}/status"),
                json!({
                    "get": operation(t, "get", &format!("read{id}Status"), vec![]),
                    "put": operation(t, "put", &format!("replace{id}Status"), write_params()),
                    "patch": operation(t, "patch", &format!("patch{id}Status"), patch_params),
                }),
            );
        }
        let mut schema = t.schema.as_ref().map(|s| s.raw.clone()).unwrap_or_else(|| json!({"type": "object"}));
        schema["x-kubernetes-group-version-kind"] = json!([{"group": t.group, "version": t.version, "kind": t.kind}]);
        schemas.insert(schema_name(t), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
