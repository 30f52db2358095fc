//! The registry of served resource types: built-in kinds and the kinds that registered CRDs add.
//! Each `ResourceType` knows its names, scope, subresources, schema, printer columns and storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::schema::StructuralSchema;

/// How stored objects map to and from a served version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as served; only `apiVersion` differs between versions.
    Identity,
    /// `events.k8s.io/v1` Event served from core/v1 Event storage (field names differ).
    EventsV1,
}

/// One additional printer column of a table (`kubectl get`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// Format hint (`name`, `date-time`, …).
    pub format: String,
    /// Description shown in the table definition.
    pub description: String,
    /// JSONPath evaluated against the object, e.g. `.status.phase`.
    pub json_path: String,
    /// Priority: 0 in the default view, higher only in `-o wide`.
    pub priority: i64,
}

/// A served resource: one (group, version, plural).
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1alpha1`.
    pub version: String,
    /// Kind, e.g. `RestoreRun`.
    pub kind: String,
    /// List kind, e.g. `RestoreRunList`.
    pub list_kind: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Short names (`rr`).
    pub short_names: Vec<String>,
    /// Categories (`all`, …).
    pub categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether the `/status` subresource is served.
    pub status_subresource: bool,
    /// Structural schema for pruning, defaulting and validation.
    pub schema: Option<Arc<StructuralSchema>>,
    /// Printer columns for tables; empty means the default `Name`, `Age`.
    pub printer_columns: Vec<PrinterColumn>,
    /// Extra field-selector labels (`spec.x`) beyond `metadata.name`/`metadata.namespace`, with their JSONPath.
    pub selectable_fields: Vec<(String, String)>,
    /// Storage key: versions and groups that share objects share this key.
    pub storage: String,
    /// How objects convert between storage and this version.
    pub codec: Codec,
    /// Built-in kinds accept strategic merge patches; custom resources do not.
    pub builtin: bool,
    /// The version objects are stored in (for custom resources with several versions).
    pub storage_version: String,
    /// The CRD that defines this resource, if any.
    pub crd_name: Option<String>,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The path prefix under which this resource's group-version is served.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The verbs served for this resource.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }
}

/// The set of served resource types.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    /// A registry with the built-in kinds.
    pub fn with_builtins() -> Self {
        Self { types: crate::builtin::builtin_types().into_iter().map(Arc::new).collect() }
    }

    /// All served types in registration order (core first, then groups).
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Finds the type served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    /// Finds the type for an `apiVersion` + `kind` pair.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.types.iter().find(|t| t.group == group && t.version == version && t.kind == kind).cloned()
    }

    /// Whether any served version of the group exists.
    pub fn group_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            let versions = map.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        map
    }

    /// Groups in the order they were first registered (core group excluded).
    pub fn groups_in_order(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for t in &self.types {
            if !t.group.is_empty() && !groups.contains(&t.group) {
                groups.push(t.group.clone());
            }
        }
        groups
    }

    /// Replaces every type that a CRD defines with `types` (an empty `types` unregisters the CRD).
    pub fn replace_crd(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.types.retain(|t| t.crd_name.as_deref() != Some(crd_name));
        self.types.extend(types.into_iter().map(Arc::new));
    }

    /// All served versions that share a storage key.
    pub fn sharing_storage(&self, storage: &str) -> Vec<Arc<ResourceType>> {
        self.types.iter().filter(|t| t.storage == storage).cloned().collect()
    }
}

/// Splits `group/version` (or `v1`) into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Reads `.metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str)
}
