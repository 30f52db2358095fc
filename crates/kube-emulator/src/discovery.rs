//! Discovery documents: `/version`, `/api`, `/apis`, per group-version resource lists, and
//! aggregated discovery (`apidiscovery.k8s.io/v2`) as kubectl 1.32 asks for it.

use serde_json::{Value, json};

use crate::resource::{Registry, ResourceType};

/// Content type of aggregated discovery answers.
pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the `Accept` header asks for aggregated discovery (v2 or v2beta1).
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        if media.contains("as=APIGroupDiscoveryList") && media.contains("g=apidiscovery.k8s.io") {
            if media.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if media.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-kube-emulator", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

fn resource_entries(resource: &ResourceType) -> Vec<Value> {
    let mut entries = vec![json!({
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": resource.verbs(),
        "shortNames": resource.short_names,
        "categories": resource.categories,
        "storageVersionHash": format!("{:x}", fnv(&format!("{}/{}", resource.storage, resource.storage_version))),
    })];
    if resource.status_subresource {
        entries.push(json!({
            "name": format!("{}/status", resource.plural),
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    entries
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |hash, b| (hash ^ b as u64).wrapping_mul(0x100000001b3))
}

/// `/api` (legacy form).
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

/// `/api/v1` or `/apis/{group}/{version}`: the APIResourceList.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry.all().iter().filter(|t| t.group == group && t.version == version).collect();
    if types.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let resources: Vec<Value> = types.iter().flat_map(|t| resource_entries(t)).collect();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

fn preferred_version(registry: &Registry, group: &str) -> Option<String> {
    let versions = registry.group_versions().remove(group)?;
    versions
        .iter()
        .find(|v| registry.all().iter().any(|t| t.group == group && &t.version == *v && t.storage_version == **v))
        .or(versions.first())
        .cloned()
}

fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let versions = registry.group_versions().remove(group)?;
    let preferred = preferred_version(registry, group)?;
    let entry = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    Some(json!({
        "name": group,
        "versions": versions.iter().map(|v| entry(v)).collect::<Vec<_>>(),
        "preferredVersion": entry(&preferred),
    }))
}

/// `/apis` (legacy form).
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry.groups_in_order().iter().filter_map(|g| api_group(registry, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    let mut doc = api_group(registry, group)?;
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn aggregated_resource(resource: &ResourceType) -> Value {
    let response_kind = json!({"group": resource.group, "version": resource.version, "kind": resource.kind});
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": response_kind,
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": resource.verbs(),
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if resource.status_subresource {
        entry["subresources"] =
            json!([{"subresource": "status", "responseKind": response_kind, "verbs": ["get", "patch", "update"]}]);
    }
    entry
}

fn aggregated_group(registry: &Registry, group: &str) -> Value {
    let mut versions: Vec<String> = registry.group_versions().remove(group).unwrap_or_default();
    if let Some(preferred) = preferred_version(registry, group) {
        versions.retain(|v| *v != preferred);
        versions.insert(0, preferred);
    }
    let version_entries: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = registry
                .all()
                .iter()
                .filter(|t| t.group == group && &t.version == v)
                .map(|t| aggregated_resource(t))
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({"metadata": metadata, "versions": version_entries})
}

/// Aggregated discovery for `/api` (core only) or `/apis` (all named groups).
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let api_version = format!("apidiscovery.k8s.io/{version}");
    let items: Vec<Value> = if core {
        vec![aggregated_group(registry, "")]
    } else {
        registry.groups_in_order().iter().map(|g| aggregated_group(registry, g)).collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}
