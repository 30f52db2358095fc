//! The in-memory backup set every source yields and every later step reads, plus the native
//! format's manifest shape. Loading from disk, archives or the network is the backup adapter's job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the native backup format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A foundation or group an item references, captured with its id *and* display name so a
/// cross-tenant restore can map it by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedRef {
    /// Id in the source tenant.
    pub id: String,
    /// Display name (the key for mapping into another tenant).
    pub display_name: String,
}

/// What an item references in its tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct References {
    /// Entra groups its assignments target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<NamedRef>,
    /// Scope tags in `roleScopeTagIds`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_tags: Vec<NamedRef>,
    /// Assignment filters its assignments use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<NamedRef>,
    /// Notification templates its compliance actions use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_templates: Vec<NamedRef>,
    /// Named locations a Conditional Access policy's conditions use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_locations: Vec<NamedRef>,
    /// Users a Conditional Access policy's conditions include or exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<NamedRef>,
    /// The Apple enrollment-program token an enrollment profile lives under (`tokenName`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enrollment_tokens: Vec<NamedRef>,
}

/// One Intune object in a backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupItem {
    /// Catalogue type name (see [`crate::catalog`]).
    #[serde(rename = "type")]
    pub item_type: String,
    /// Id in the source tenant.
    pub id: String,
    /// Display name (`name` for Settings Catalog).
    pub display_name: String,
    /// Platform (`windows`, `macOS`, `iOS`, `android`, `linux`, `any`).
    pub platform: String,
    /// The Graph resource as read (server-managed fields included; normalization strips them).
    pub resource: Value,
    /// The item's assignments as read; `None` when they were not captured.
    #[serde(default)]
    pub assignments: Option<Vec<Value>>,
    /// Sub-resources by name (`settings`, `scheduledActionsForRule`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sub_resources: BTreeMap<String, Vec<Value>>,
    /// Foundations and groups the item references.
    #[serde(default)]
    pub references: References,
}

impl BackupItem {
    /// `type/id`, the stable key of an item in reports and progress records.
    pub fn key(&self) -> String {
        format!("{}/{}", self.item_type, self.id)
    }
}

/// The tenant a backup was captured from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupTenant {
    /// Entra tenant id.
    pub id: String,
    /// Its label when captured.
    pub label: String,
}

/// The tool that wrote a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Tool version.
    pub version: String,
}

/// One entry of the native manifest's item list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// Catalogue type name.
    #[serde(rename = "type")]
    pub item_type: String,
    /// Id in the source tenant.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Platform.
    pub platform: String,
    /// Path of the item file, relative to the manifest.
    pub path: String,
    /// `sha256:` digest of the item file's bytes.
    pub sha256: String,
}

/// `manifest.json` of a native backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupManifest {
    /// Native format version.
    pub format_version: u32,
    /// Source tenant.
    pub tenant: BackupTenant,
    /// Capture time (RFC 3339).
    pub captured_at: String,
    /// Writer.
    pub tool: ToolInfo,
    /// Items, sorted by type then id.
    pub items: Vec<ManifestEntry>,
}

/// A loaded backup: what every source yields.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSet {
    /// Source tenant, when the format records it.
    pub tenant: Option<BackupTenant>,
    /// Capture time, when the format records it.
    pub captured_at: Option<String>,
    /// `sha256:` digest identifying the backup content (of the archive, or of the manifest).
    pub digest: String,
    /// The items.
    pub items: Vec<BackupItem>,
}
