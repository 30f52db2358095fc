//! Capture of a tenant into a backup set: every catalogue type with its sub-resources and
//! assignments, and the groups, scope tags, filters and templates it references, id and name.

use std::collections::{BTreeMap, BTreeSet};

use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use restore_core::canonical::canonical_json;
use restore_core::catalog::{self, ITEM_TYPES, ItemType};
use restore_core::tenant::{TenantError, TenantPort};
use serde_json::Value;

use crate::error::BackupError;
use crate::native;

/// How many paths one `get_many` call asks for (the adapter batches them further).
const READ_CHUNK: usize = 100;

/// The nil GUID Graph uses for "no filter" and "no template".
const NIL_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// What a capture reports as it goes, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureEvent {
    /// Reading a type started (`index` counts from 1).
    TypeStarted {
        /// Catalogue type name.
        item_type: &'static str,
        /// Position of the type.
        index: usize,
        /// Number of types.
        total: usize,
    },
    /// A type was read completely.
    TypeFinished {
        /// Catalogue type name.
        item_type: &'static str,
        /// Items read.
        items: usize,
    },
    /// Referenced groups were looked up.
    GroupsResolved {
        /// Distinct groups referenced.
        groups: usize,
    },
}

impl std::fmt::Display for CaptureEvent {
    /// One progress line, e.g. `[4/14] deviceConfiguration: reading` (the CLI prints these to stderr).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureEvent::TypeStarted { item_type, index, total } => {
                write!(f, "[{index}/{total}] {item_type}: reading")
            }
            CaptureEvent::TypeFinished { item_type, items } => write!(f, "{item_type}: {items} item(s)"),
            CaptureEvent::GroupsResolved { groups } => write!(f, "referenced groups resolved: {groups}"),
        }
    }
}

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A tenant read failed.
    #[error("reading {path}: {source}")]
    Tenant {
        /// Graph path read.
        path: String,
        /// The tenant's error.
        #[source]
        source: TenantError,
    },
    /// Graph answered with something of the wrong shape.
    #[error("reading {path}: unexpected response: {message}")]
    Response {
        /// Graph path read.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The captured set could not be rendered.
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// Reads every type of the catalogue from `tenant` into a backup set stamped with `tenant_info`
/// and `captured_at`. The set is deterministic for a given tenant state and time: items sorted
/// by type and id, assignments and references sorted. Its digest is the native content digest.
pub async fn capture<T: TenantPort>(
    tenant: &T,
    tenant_info: BackupTenant,
    captured_at: jiff::Timestamp,
    mut progress: impl FnMut(CaptureEvent),
) -> Result<BackupSet, CaptureError> {
    let mut items = Vec::new();
    for (index, item_type) in ITEM_TYPES.iter().enumerate() {
        progress(CaptureEvent::TypeStarted { item_type: item_type.name, index: index + 1, total: ITEM_TYPES.len() });
        let read = match read_type(tenant, item_type).await {
            // An opt-in type (Conditional Access) needs permissions an Intune-only app may lack
            // (Policy.Read.All): the backup goes on without it, and says so in the log.
            Err(CaptureError::Tenant { path, source })
                if source.kind == restore_core::tenant::TenantErrorKind::Authentication
                    && restore_core::engine::conditional_access::requires_opt_in(item_type.name) =>
            {
                tracing::warn!(item_type = item_type.name, %path, "not captured: the app may not read this type");
                Vec::new()
            }
            other => other?,
        };
        tracing::info!(item_type = item_type.name, items = read.len(), "captured type");
        progress(CaptureEvent::TypeFinished { item_type: item_type.name, items: read.len() });
        items.extend(read);
    }
    let group_names = resolve_group_names(tenant, &items).await?;
    progress(CaptureEvent::GroupsResolved { groups: group_names.len() });
    attach_references(&mut items, &group_names);
    attach_condition_references(tenant, &mut items).await?;
    items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    let mut set = BackupSet {
        tenant: Some(tenant_info),
        captured_at: Some(captured_at.to_string()),
        digest: String::new(),
        items,
    };
    set.digest = native::digest(&set)?;
    Ok(set)
}

/// The list path of a type, expanding what Graph lets a list expand.
fn list_path(item_type: &ItemType) -> String {
    match item_type.name {
        "compliancePolicy" => {
            format!("{}?$expand=scheduledActionsForRule($expand=scheduledActionConfigurations)", item_type.collection)
        }
        "notificationTemplate" => format!("{}?$expand=localizedNotificationMessages", item_type.collection),
        _ => item_type.collection.to_string(),
    }
}

/// The path of one item's sub-resource collection.
fn sub_resource_path(item_type: &ItemType, id: &str, sub: &str) -> String {
    let base = format!("{}/{id}/{sub}", item_type.collection);
    match sub {
        "scheduledActionsForRule" => format!("{base}?$expand=scheduledActionConfigurations"),
        // Administrative Templates: each value with its ADMX definition and its presentation
        // values with their presentations (the ids and names a restore maps by).
        restore_core::engine::admx::DEFINITION_VALUES => {
            format!("{base}?$expand={}", restore_core::engine::admx::EXPAND_VALUE_PARTS)
        }
        _ => base,
    }
}

async fn read_type<T: TenantPort>(tenant: &T, item_type: &'static ItemType) -> Result<Vec<BackupItem>, CaptureError> {
    if let Some(singleton) = restore_core::engine::singleton::singleton(item_type) {
        return read_singleton(tenant, item_type, singleton).await;
    }
    if restore_core::engine::apple_enrollment::is_parent_scoped(item_type) {
        return crate::capture_apple::read_under_tokens(tenant, item_type).await;
    }
    let path = list_path(item_type);
    let mut objects = tenant.list(&path).await.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?;
    // Lists leave script bodies out (`scriptContent` is null in a list): each is read on its own.
    if !catalog::omitted_from_lists(item_type).is_empty() {
        objects = read_each(tenant, item_type, objects).await?;
    }
    let mut items = Vec::with_capacity(objects.len());
    // Sub-resources the list did not expand, and assignments, are read per item in batches.
    let mut pending: Vec<(usize, Option<&'static str>, String)> = Vec::new();
    for object in objects {
        let Value::Object(mut resource) = object else {
            return Err(CaptureError::Response { path, message: "a listed object is not a JSON object".into() });
        };
        let id = resource.get("id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
            CaptureError::Response { path: path.clone(), message: "a listed object has no string id".into() }
        })?;
        let mut sub_resources = BTreeMap::new();
        for sub in item_type.sub_resources {
            resource.remove(&format!("{}@odata.context", sub.name));
            match resource.remove(sub.name) {
                Some(Value::Array(expanded)) => {
                    sub_resources.insert(sub.name.to_string(), expanded);
                }
                _ => pending.push((items.len(), Some(sub.name), sub_resource_path(item_type, &id, sub.name))),
            }
        }
        if item_type.assignable {
            pending.push((items.len(), None, format!("{}/{id}/assignments", item_type.collection)));
        }
        items.push(listed_item(item_type, id, Value::Object(resource), sub_resources));
    }
    let paths: Vec<String> = pending.iter().map(|(_, _, p)| p.clone()).collect();
    let collections = read_collections(tenant, &paths).await?;
    for ((index, sub, _), mut values) in pending.into_iter().zip(collections) {
        let item = &mut items[index];
        match sub {
            Some(name) => {
                if name == restore_core::engine::admx::DEFINITION_VALUES {
                    restore_core::engine::admx::sort_for_backup(&mut values);
                }
                item.sub_resources.insert(name.to_string(), values);
            }
            None => {
                values.sort_by_cached_key(canonical_json);
                item.assignments = Some(values);
            }
        }
    }
    Ok(items)
}

/// Reads a tenant-wide singleton (the device-management settings): one item under its fixed id,
/// named by the type's title (it has no name of its own).
async fn read_singleton<T: TenantPort>(
    tenant: &T,
    item_type: &'static ItemType,
    singleton: &restore_core::engine::singleton::Singleton,
) -> Result<Vec<BackupItem>, CaptureError> {
    let path = singleton.read_path;
    let read = tenant.get(path).await.map_err(|source| CaptureError::Tenant { path: path.to_string(), source })?;
    let Some(read) = read else { return Ok(Vec::new()) };
    let resource = singleton.as_object(read);
    Ok(vec![BackupItem {
        item_type: item_type.name.to_string(),
        id: singleton.id.to_string(),
        display_name: item_type.title.to_string(),
        platform: catalog::platform_of(item_type, &resource),
        resource,
        assignments: None,
        sub_resources: BTreeMap::new(),
        references: References::default(),
    }])
}

/// Reads every listed object again on its own (in batches); one gone meanwhile is left out.
async fn read_each<T: TenantPort>(
    tenant: &T,
    item_type: &ItemType,
    listed: Vec<Value>,
) -> Result<Vec<Value>, CaptureError> {
    let paths: Vec<String> = listed
        .iter()
        .map(|o| o.get("id").and_then(Value::as_str).map(|id| format!("{}/{id}", item_type.collection)))
        .collect::<Option<_>>()
        .ok_or_else(|| CaptureError::Response {
            path: item_type.collection.to_string(),
            message: "a listed object has no string id".into(),
        })?;
    let mut objects = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_CHUNK) {
        let results =
            tenant.get_many(chunk).await.map_err(|source| CaptureError::Tenant { path: chunk[0].clone(), source })?;
        for (path, result) in chunk.iter().zip(results) {
            if let Some(object) = result.map_err(|source| CaptureError::Tenant { path: path.clone(), source })? {
                objects.push(object);
            }
        }
    }
    Ok(objects)
}

/// Reads collections in batches; a collection that pages (`@odata.nextLink`) is re-read whole
/// with `list`; one that is absent (404, the item went away meanwhile) reads as empty.
async fn read_collections<T: TenantPort>(tenant: &T, paths: &[String]) -> Result<Vec<Vec<Value>>, CaptureError> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_CHUNK) {
        let results =
            tenant.get_many(chunk).await.map_err(|source| CaptureError::Tenant { path: chunk[0].clone(), source })?;
        if results.len() != chunk.len() {
            return Err(CaptureError::Response {
                path: chunk[0].clone(),
                message: format!("batch answered {} of {} reads", results.len(), chunk.len()),
            });
        }
        for (path, result) in chunk.iter().zip(results) {
            let page = result.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?;
            let values = match page {
                None => Vec::new(),
                Some(page) if page.get("@odata.nextLink").is_some() => {
                    tenant.list(path).await.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?
                }
                Some(mut page) => match page.get_mut("value").map(Value::take) {
                    Some(Value::Array(values)) => values,
                    _ => {
                        return Err(CaptureError::Response {
                            path: path.clone(),
                            message: "collection without a value array".into(),
                        });
                    }
                },
            };
            out.push(values);
        }
    }
    Ok(out)
}

fn assignment_targets(item: &BackupItem) -> impl Iterator<Item = &serde_json::Map<String, Value>> {
    item.assignments.iter().flatten().filter_map(|a| a.get("target").and_then(Value::as_object))
}

/// The scheduled action configurations of a compliance policy's rules (none for other kinds).
fn scheduled_action_configurations(item: &BackupItem) -> impl Iterator<Item = &Value> {
    item.sub_resources
        .get("scheduledActionsForRule")
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("scheduledActionConfigurations").and_then(Value::as_array))
        .flatten()
}

/// Ids of the groups an item references: assignment targets and the groups its compliance
/// notification actions copy (`notificationMessageCCList`).
fn referenced_group_ids(item: &BackupItem) -> impl Iterator<Item = &str> {
    let cc_lists = scheduled_action_configurations(item)
        .filter_map(|config| config.get("notificationMessageCCList").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    assignment_targets(item).filter_map(|t| t.get("groupId").and_then(Value::as_str)).chain(cc_lists)
}

/// Display names of every group an assignment targets, by id (`""` for a group that is gone).
async fn resolve_group_names<T: TenantPort>(
    tenant: &T,
    items: &[BackupItem],
) -> Result<BTreeMap<String, String>, CaptureError> {
    let ids: BTreeSet<String> = items.iter().flat_map(referenced_group_ids).map(str::to_string).collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let paths: Vec<String> = ids.iter().map(|id| format!("groups/{id}?$select=id,displayName")).collect();
    let mut names = BTreeMap::new();
    for (id_chunk, path_chunk) in ids.chunks(READ_CHUNK).zip(paths.chunks(READ_CHUNK)) {
        let results = tenant
            .get_many(path_chunk)
            .await
            .map_err(|source| CaptureError::Tenant { path: path_chunk[0].clone(), source })?;
        for ((id, path), result) in id_chunk.iter().zip(path_chunk).zip(results) {
            let group = result.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?;
            let name = group.as_ref().and_then(|g| g.get("displayName")).and_then(Value::as_str);
            if name.is_none() {
                tracing::warn!(group_id = %id, "an assignment targets a group that could not be read; its name is unknown");
            }
            names.insert(id.clone(), name.unwrap_or_default().to_string());
        }
    }
    Ok(names)
}

/// Fills every item's references from the captured foundations and the group names.
fn attach_references(items: &mut [BackupItem], group_names: &BTreeMap<String, String>) {
    let names_of = |type_name: &str| -> BTreeMap<String, String> {
        items.iter().filter(|i| i.item_type == type_name).map(|i| (i.id.clone(), i.display_name.clone())).collect()
    };
    let tags = names_of("scopeTag");
    let filters = names_of("assignmentFilter");
    let templates = names_of("notificationTemplate");
    let named = |ids: BTreeSet<String>, names: &BTreeMap<String, String>| -> Vec<NamedRef> {
        ids.into_iter().map(|id| NamedRef { display_name: names.get(&id).cloned().unwrap_or_default(), id }).collect()
    };
    for item in items.iter_mut() {
        // Policies list their scope tags in `roleScopeTagIds`, assignment filters in `roleScopeTags`.
        let tag_ids: BTreeSet<String> = ["roleScopeTagIds", "roleScopeTags"]
            .into_iter()
            .filter_map(|key| item.resource.get(key).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let group_ids: BTreeSet<String> = referenced_group_ids(item).map(str::to_string).collect();
        let filter_ids: BTreeSet<String> = assignment_targets(item)
            .filter_map(|t| t.get("deviceAndAppManagementAssignmentFilterId").and_then(Value::as_str))
            .filter(|id| !id.is_empty() && *id != NIL_GUID)
            .map(str::to_string)
            .collect();
        let template_ids: BTreeSet<String> = scheduled_action_configurations(item)
            .filter_map(|config| config.get("notificationTemplateId").and_then(Value::as_str))
            .filter(|id| !id.is_empty() && *id != NIL_GUID)
            .map(str::to_string)
            .collect();
        item.references = References {
            groups: named(group_ids, group_names),
            scope_tags: named(tag_ids, &tags),
            filters: named(filter_ids, &filters),
            notification_templates: named(template_ids, &templates),
            // Recorded when the item was read (the token a profile lives under).
            enrollment_tokens: std::mem::take(&mut item.references.enrollment_tokens),
            ..References::default()
        };
    }
}

/// Names the groups, users and named locations the conditions of the captured Conditional Access
/// policies reference (`conditions.users`, `conditions.locations`), so a restore maps them by name.
async fn attach_condition_references<T: TenantPort>(tenant: &T, items: &mut [BackupItem]) -> Result<(), CaptureError> {
    use restore_core::engine::conditional_access::{CONDITIONAL_ACCESS, NAMED_LOCATIONS};
    use restore_core::engine::mapping::{RefKind, collect_refs};
    let refs: Vec<(usize, Vec<(RefKind, String)>)> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.item_type == CONDITIONAL_ACCESS)
        .map(|(index, i)| (index, collect_refs(&i.resource)))
        .collect();
    if refs.is_empty() {
        return Ok(());
    }
    let mut names: BTreeMap<(RefKind, String), String> = BTreeMap::new();
    let locations = match tenant.list(NAMED_LOCATIONS).await {
        Ok(locations) => locations,
        // The app may read policies but not locations: the references stay unnamed (a restore
        // across tenants then blocks on them rather than guess).
        Err(source) if source.kind == restore_core::tenant::TenantErrorKind::Authentication => {
            tracing::warn!(path = NAMED_LOCATIONS, "named locations not readable; their references stay unnamed");
            Vec::new()
        }
        Err(source) => return Err(CaptureError::Tenant { path: NAMED_LOCATIONS.into(), source }),
    };
    for location in locations {
        if let (Some(id), Some(name)) =
            (location.get("id").and_then(Value::as_str), location.get("displayName").and_then(Value::as_str))
        {
            names.insert((RefKind::NamedLocation, id.to_string()), name.to_string());
        }
    }
    let wanted: BTreeSet<(RefKind, String)> = refs
        .iter()
        .flat_map(|(_, r)| r.iter().cloned())
        .filter(|(kind, _)| matches!(kind, RefKind::Group | RefKind::User))
        .collect();
    let wanted: Vec<(RefKind, String)> = wanted.into_iter().collect();
    let paths: Vec<String> = wanted
        .iter()
        .map(|(kind, id)| match kind {
            RefKind::User => format!("users/{id}?$select=id,displayName"),
            _ => format!("groups/{id}?$select=id,displayName"),
        })
        .collect();
    for (chunk, path_chunk) in wanted.chunks(READ_CHUNK).zip(paths.chunks(READ_CHUNK)) {
        let results = tenant
            .get_many(path_chunk)
            .await
            .map_err(|source| CaptureError::Tenant { path: path_chunk[0].clone(), source })?;
        for ((key, path), result) in chunk.iter().zip(path_chunk).zip(results) {
            let object = result.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?;
            if let Some(name) = object.as_ref().and_then(|o| o.get("displayName")).and_then(Value::as_str) {
                names.insert(key.clone(), name.to_string());
            }
        }
    }
    for (index, found) in refs {
        let item = &mut items[index];
        for (kind, id) in found {
            let named = NamedRef { display_name: names.get(&(kind, id.clone())).cloned().unwrap_or_default(), id };
            let list = match kind {
                RefKind::Group => &mut item.references.groups,
                RefKind::User => &mut item.references.users,
                RefKind::NamedLocation => &mut item.references.named_locations,
                _ => continue,
            };
            if !list.iter().any(|r| r.id == named.id) {
                list.push(named);
            }
        }
        for list in [&mut item.references.groups, &mut item.references.users, &mut item.references.named_locations] {
            list.sort();
        }
    }
    Ok(())
}

/// A backup item of a listed object: its name as its type's identity reads it (`name` for
/// Settings Catalog kinds, else `displayName`; the id when it has none) and its platform.
pub(crate) fn listed_item(
    item_type: &ItemType,
    id: String,
    resource: Value,
    sub_resources: BTreeMap<String, Vec<Value>>,
) -> BackupItem {
    let name_key = if item_type.identity == catalog::IdentityKey::NameAndTechnologies { "name" } else { "displayName" };
    let display_name = resource.get(name_key).and_then(Value::as_str).unwrap_or(&id).to_string();
    BackupItem {
        item_type: item_type.name.to_string(),
        platform: catalog::platform_of(item_type, &resource),
        id,
        display_name,
        resource,
        assignments: None,
        sub_resources,
        references: References::default(),
    }
}
