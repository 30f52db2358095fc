//! Seeding a simulated tenant from a backup: items keep their source ids (so a same-tenant
//! restore matches by id), and the groups, scope tags, filters and templates they name exist.

use restore_core::backup::{BackupItem, BackupSet, NamedRef};
use restore_core::catalog::item_type;
use serde_json::{Map, Value, json};

use crate::api::{
    apply_type_defaults, check_unknown_property, create_group_resource, fill_server_defaults, number_sub_items,
    refresh_derived, resource_type, stamp_times,
};
use crate::model::model;
use crate::store::{GROUPS, IdSource, SCOPE_TAGS, Tenant, object};

/// Why a seed failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// An item's type is not in the catalogue.
    #[error("item {key}: type {item_type:?} is not in the catalogue")]
    UnknownType {
        /// `type/id` of the item.
        key: String,
        /// Its type.
        item_type: String,
    },
    /// An item does not fit Microsoft's published model (a real tenant could not hold it).
    #[error("item {key}: {message}")]
    Model {
        /// `type/id` of the item.
        key: String,
        /// The validation message.
        message: String,
    },
}

/// What a seed created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Backup items stored.
    pub items: usize,
    /// Groups created from the items' references.
    pub groups: usize,
    /// Scope tags created from references (not present as items).
    pub scope_tags: usize,
    /// Assignment filters created from references.
    pub filters: usize,
    /// Notification templates created from references.
    pub notification_templates: usize,
}

/// Stores every item of `set` in `tenant` with its own id, then creates what they reference.
pub(crate) fn seed_tenant(tenant: &mut Tenant, ids: &mut IdSource, set: &BackupSet) -> Result<SeedSummary, SeedError> {
    let mut summary = SeedSummary::default();
    for item in &set.items {
        store_item(tenant, ids, item)?;
        summary.items += 1;
    }
    for item in &set.items {
        let refs = &item.references;
        for group in &refs.groups {
            if !tenant.contains(GROUPS, &group.id) {
                create_group_resource(
                    tenant,
                    ids,
                    group.id.clone(),
                    object(json!({"displayName": group.display_name})),
                );
                summary.groups += 1;
            }
        }
        for tag in &refs.scope_tags {
            summary.scope_tags += usize::from(ensure_ref(tenant, ids, SCOPE_TAGS, "roleScopeTag", tag, json!({})));
        }
        for filter in &refs.filters {
            let extra = json!({"platform": "windows10AndLater", "rule": "(device.deviceName -ne \"\")"});
            summary.filters += usize::from(ensure_ref(
                tenant,
                ids,
                "deviceManagement/assignmentFilters",
                "deviceAndAppManagementAssignmentFilter",
                filter,
                extra,
            ));
        }
        for template in &refs.notification_templates {
            summary.notification_templates += usize::from(ensure_ref(
                tenant,
                ids,
                "deviceManagement/notificationMessageTemplates",
                "notificationMessageTemplate",
                template,
                json!({"brandingOptions": "none"}),
            ));
        }
    }
    tenant.next_scope_tag_id = next_scope_tag_id(tenant);
    Ok(summary)
}

fn store_item(tenant: &mut Tenant, ids: &mut IdSource, item: &BackupItem) -> Result<(), SeedError> {
    let ty = item_type(&item.item_type)
        .ok_or_else(|| SeedError::UnknownType { key: item.key(), item_type: item.item_type.clone() })?;
    let mut resource = object(item.resource.clone());
    resource.remove("@odata.context");
    resource.insert("id".into(), Value::String(item.id.clone()));
    // A tenant-wide singleton reads without a type annotation (a complex property's value).
    if restore_core::engine::singleton::singleton(ty).is_none() {
        resource.entry("@odata.type").or_insert_with(|| Value::String(ty.base_odata()));
    }
    let type_name = resource_type(ty, &resource);
    let mut whole = resource.clone();
    if model().types.get(&type_name).is_some_and(|t| !t.entity) {
        // A complex-typed singleton (the device-management settings) has no id property; the
        // simulator keys it by the operator's fixed id.
        whole.remove("id");
    }
    for (name, items) in &item.sub_resources {
        whole.insert(name.clone(), Value::Array(items.clone()));
    }
    if let Err(reply) = check_unknown_property(&type_name, &whole) {
        let message = reply.body.as_ref().and_then(|b| b["error"]["message"].as_str()).unwrap_or_default().to_string();
        return Err(SeedError::Model { key: item.key(), message });
    }
    let mut type_defaults = Map::new();
    apply_type_defaults(ty, &mut type_defaults);
    for (key, value) in type_defaults {
        resource.entry(key).or_insert(value);
    }
    crate::enrollment::seed_fields(ty, &mut resource);
    fill_server_defaults(&type_name, &mut resource);
    let now = ids.now();
    if !resource.contains_key("createdDateTime") && !resource.contains_key("lastModifiedDateTime") {
        stamp_times(&type_name, &mut resource, &now);
    }
    let mut subs = item.sub_resources.clone();
    for sub in ty.sub_resources {
        if let Some(Value::Array(inline)) = resource.remove(sub.name) {
            subs.entry(sub.name.to_string()).or_insert(inline);
        }
    }
    for (name, items) in subs.iter_mut() {
        if items.iter().any(|i| i.get("id").is_none()) {
            number_sub_items(name, &item.id, items, ids);
        }
    }
    let mut assignments = item.assignments.clone().unwrap_or_default();
    let assignment_type = model().navigation_element(&type_name, "assignments");
    for assignment in assignments.iter_mut().filter_map(Value::as_object_mut) {
        if !assignment.contains_key("id") {
            assignment.insert("id".into(), Value::String(format!("{}_{}", item.id, ids.guid())));
        }
        if let Some(assignment_type) = assignment_type {
            fill_server_defaults(assignment_type, assignment);
        }
    }
    let collection = crate::dep::seed_collection(tenant, ids, ty, item);
    let seq = ids.next_seq();
    let entity = tenant.insert(&collection, resource, seq);
    entity.subs = subs;
    entity.assignments = assignments;
    // A seeded backup without `settingCount` (or `isAssigned`) reads back with the server's.
    refresh_derived(ty, entity);
    Ok(())
}

/// Creates a referenced foundation with its source id and name unless it exists; true if created.
fn ensure_ref(
    tenant: &mut Tenant,
    ids: &mut IdSource,
    collection: &str,
    odata: &str,
    named: &NamedRef,
    extra: Value,
) -> bool {
    if tenant.contains(collection, &named.id) {
        return false;
    }
    let mut resource = Map::new();
    resource.insert("@odata.type".into(), Value::String(format!("#microsoft.graph.{odata}")));
    resource.insert("id".into(), Value::String(named.id.clone()));
    resource.insert("displayName".into(), Value::String(named.display_name.clone()));
    resource.extend(object(extra));
    stamp_times(odata, &mut resource, &ids.now());
    fill_server_defaults(odata, &mut resource);
    let seq = ids.next_seq();
    tenant.insert(collection, resource, seq);
    true
}

fn next_scope_tag_id(tenant: &Tenant) -> u64 {
    let highest = tenant
        .collections
        .get(SCOPE_TAGS)
        .map(|c| c.entities.keys().filter_map(|id| id.parse::<u64>().ok()).max().unwrap_or(0))
        .unwrap_or(0);
    highest.max(tenant.next_scope_tag_id.saturating_sub(1)) + 1
}
