//! Reads the target tenant for a resolved scope into a [`TenantSnapshot`]: each needed collection
//! listed once, matched objects read with their sub-resources and assignments, groups looked up by name.
//! Independent reads are issued together (the listings; the object reads and the group lookups):
//! the port bounds how many are in flight for the tenant, so the snapshot pays few round trips.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::future::{try_join, try_join_all};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;

use crate::catalog::{ITEM_TYPES, ItemType, TypeClass};
use crate::engine::identity::{Candidates, encode_query_value};
use crate::engine::mapping::{RefKind, TargetMaps, collect_item_refs, collect_refs};
use crate::engine::scope::ResolvedScope;
use crate::tenant::{TenantError, TenantPort};

/// Paths per Graph `$batch` request (the Graph adapter batches `get_many` in groups of this size).
pub const GRAPH_BATCH_SIZE: u32 = 20;

/// The requests a snapshot made through the tenant port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    /// Collection listings (each may be several pages).
    pub lists: u32,
    /// Single GETs.
    pub gets: u32,
    /// `get_many` calls.
    pub get_many_calls: u32,
    /// Paths read through `get_many`.
    pub batched_paths: u32,
    /// `$batch` requests those paths need at [`GRAPH_BATCH_SIZE`] per request.
    pub batch_requests: u32,
    /// HTTP requests the adapter actually sent for the snapshot (every page of a listing, every
    /// retry), when it counts them; the estimate above counts one page per listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u32>,
}

impl RequestStats {
    /// Graph requests made: as the adapter counted them, else estimated with one page per listing.
    pub fn graph_requests(&self) -> u32 {
        self.sent.unwrap_or(self.lists + self.gets + self.batch_requests)
    }

    pub(crate) fn record_batch(&mut self, paths: usize) {
        let paths = u32::try_from(paths).unwrap_or(u32::MAX);
        self.get_many_calls += 1;
        self.batched_paths += paths;
        self.batch_requests += paths.div_ceil(GRAPH_BATCH_SIZE);
    }
}

/// What the target tenant holds for a scope, as read at one moment. The collection listings
/// the matching reads are not kept: only the objects matched (a 10,000-object tenant is listed whole).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantSnapshot {
    /// Target ids matching each scoped item, by item key (empty: no match).
    pub matches: BTreeMap<String, Vec<String>>,
    /// The full current object (sub-resources and assignments included) of each item with exactly
    /// one match, by item key.
    pub live: BTreeMap<String, Value>,
    /// The target's scope tags, filters, notification templates and the groups looked up.
    pub maps: TargetMaps,
    /// Requests made.
    pub stats: RequestStats,
    /// The target's intent templates by id, listed when the scope holds intents.
    pub intent_templates: Option<BTreeMap<String, crate::engine::intents::IntentTemplate>>,
    /// Where each Apple enrollment profile's token lands in the target, by item key.
    pub enrollment_tokens: BTreeMap<String, crate::engine::mapping::ReferenceMapping>,
    /// The target's enrollment configurations (id, priority list, priority), listed when the scope
    /// holds some: what the preview orders the restored ones among.
    pub enrollment_configurations: Option<Vec<crate::engine::enrollment_priority::ListedConfiguration>>,
}

/// The `$expand` clause reading an object of `item_type` whole, if it has anything to expand.
pub fn expand_clause(item_type: &ItemType, with_assignments: bool) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if item_type.assignable && with_assignments {
        parts.push("assignments".into());
    }
    for sub in item_type.sub_resources {
        parts.push(match sub.name {
            "scheduledActionsForRule" => "scheduledActionsForRule($expand=scheduledActionConfigurations)".into(),
            crate::engine::admx::DEFINITION_VALUES => crate::engine::admx::EXPAND_VALUES.into(),
            name => name.into(),
        });
    }
    (!parts.is_empty()).then(|| format!("$expand={}", parts.join(",")))
}

/// Whether the listed object is not enough and the object must be read on its own (policies omit
/// some properties from listings, such as a script's content).
pub fn needs_object_read(item_type: &ItemType) -> bool {
    item_type.class != TypeClass::Foundation || !item_type.sub_resources.is_empty()
}

/// The path reading one object of `item_type` whole.
pub fn object_path(item_type: &ItemType, id: &str, with_assignments: bool) -> String {
    if let Some(singleton) = crate::engine::singleton::singleton(item_type) {
        return singleton.read_path.to_string();
    }
    match expand_clause(item_type, with_assignments) {
        Some(expand) => format!("{}/{id}?{expand}", item_type.collection),
        None => format!("{}/{id}", item_type.collection),
    }
}

/// The path looking groups up by display name.
pub fn group_by_name_path(name: &str) -> String {
    let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
    format!("groups?$filter={}&$select=id,displayName", encode_query_value(&filter))
}

/// The path reading one group's name.
pub fn group_by_id_path(id: &str) -> String {
    format!("groups/{}?$select=id,displayName", encode_query_value(id))
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Lists each collection: the first pages together in `$batch`es (one request for up to
/// [`GRAPH_BATCH_SIZE`] collections, so a wider catalogue costs no request per type), and the
/// collections whose first page says there is more read again whole, at once, following
/// `@odata.nextLink`.
async fn list_collections<T: TenantPort>(
    port: &T,
    types: &[&'static ItemType],
    stats: &mut RequestStats,
) -> Result<Vec<Vec<Value>>, TenantError> {
    let paths: Vec<String> = types.iter().map(|t| t.collection.to_string()).collect();
    let pages = port.get_many(&paths).await?;
    stats.record_batch(paths.len());
    let mut first_pages: Vec<Option<Vec<Value>>> = Vec::with_capacity(types.len());
    for (t, page) in types.iter().zip(pages) {
        let mut page = page?.unwrap_or(Value::Null);
        if let Some(singleton) = crate::engine::singleton::singleton(t) {
            // A singleton reads as one object, not a page: its one "member".
            first_pages.push(Some(vec![singleton.as_object(page)]));
            continue;
        }
        let complete = page.get("@odata.nextLink").is_none();
        first_pages.push(match page.get_mut("value").map(Value::take) {
            Some(Value::Array(objects)) if complete => Some(objects),
            _ => None,
        });
    }
    let partial = types.iter().zip(&first_pages).filter(|(_, page)| page.is_none()).map(|(t, _)| t.collection);
    let whole = try_join_all(partial.map(|collection| port.list(collection))).await?;
    stats.lists += u32::try_from(whole.len()).unwrap_or(u32::MAX);
    let mut whole = whole.into_iter();
    Ok(first_pages.into_iter().map(|page| page.unwrap_or_else(|| whole.next().unwrap_or_default())).collect())
}

/// The display names of the groups the scoped items' assignments reference in the backup, sorted.
fn referenced_group_names(scope: &ResolvedScope) -> Vec<String> {
    let mut names = BTreeSet::new();
    for scoped in scope.items.iter().filter(|i| i.item_type.is_some_and(|t| t.assignable)) {
        for (kind, id) in collect_item_refs(&scoped.item, true) {
            if let (RefKind::Group, Some(name)) = (kind, scope.source_names.name(RefKind::Group, &id)) {
                names.insert(name.to_string());
            }
        }
    }
    names.into_iter().collect()
}

/// `get_many` of `paths`, or nothing (no request) when there are none.
async fn read_many<T: TenantPort>(
    port: &T,
    paths: &[String],
) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
    if paths.is_empty() { Ok(Vec::new()) } else { port.get_many(paths).await }
}

/// Reads what the target holds for `scope`. A failed read fails the snapshot (the caller decides
/// whether it is transient); a 404 on a matched object counts as "no longer there".
pub async fn take_snapshot<T: TenantPort>(
    port: &T,
    scope: &ResolvedScope,
    tenant_id: &str,
) -> Result<TenantSnapshot, TenantError> {
    let mut snap = TenantSnapshot::default();
    let sent_before = port.requests_sent();
    let with_assignments = scope.with_assignments();
    let same_tenant = scope.same_tenant(tenant_id);

    // 1. Each collection once: the foundations (for mapping by name) and every scoped type.
    let mut types: Vec<&'static ItemType> = ITEM_TYPES.iter().filter(|t| t.class == TypeClass::Foundation).collect();
    for t in scope.items.iter().filter_map(|i| i.item_type) {
        if !types.iter().any(|seen| seen.name == t.name) {
            types.push(t);
        }
    }
    if types.iter().any(|t| crate::engine::intents::is_intent(t)) {
        types.push(&crate::engine::intents::TEMPLATES);
    }
    crate::engine::apple_enrollment::list_tokens_instead(&mut types);
    let listed = list_collections(port, &types, &mut snap.stats).await?;
    let mut collections: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (t, objects) in types.into_iter().zip(listed) {
        if let Some(kind) = RefKind::of_foundation_type(t.name) {
            for o in &objects {
                if let (Some(id), Some(name)) = (text(o, "id"), text(o, "displayName")) {
                    snap.maps.add(kind, &id, &name);
                }
            }
        }
        collections.insert(t.name, objects);
    }
    if let Some(templates) = collections.remove(crate::engine::intents::TEMPLATES.name) {
        snap.intent_templates = Some(crate::engine::intents::templates_by_id(&templates));
    }
    if let Some(t) =
        scope.items.iter().filter_map(|i| i.item_type).find(|t| crate::engine::enrollment::is_enrollment(t))
    {
        let listed = collections.get(t.name).map(Vec::as_slice).unwrap_or_default();
        snap.enrollment_configurations = Some(crate::engine::enrollment_priority::listed(t, listed));
    }
    if let Some(tokens) = collections.remove(crate::engine::apple_enrollment::TOKENS.name) {
        crate::engine::apple_enrollment::add_tokens(&mut snap.maps, &tokens);
    }

    // 2. Identity matches, and whole reads of the objects matched once.
    let mut reads: Vec<(String, String)> = Vec::new();
    let mut indexes: HashMap<&str, Candidates<'_>> = HashMap::new();
    for scoped in &scope.items {
        let Some(t) = scoped.item_type.filter(|t| !crate::engine::apple_enrollment::is_parent_scoped(t)) else {
            continue;
        };
        let candidates = collections.get(t.name).map(Vec::as_slice).unwrap_or_default();
        let ids = indexes
            .entry(t.name)
            .or_insert_with(|| Candidates::index(t, candidates))
            .matches(&scoped.item, same_tenant);
        if let [id] = ids.as_slice() {
            if needs_object_read(t) {
                reads.push((scoped.key(), object_path(t, id, with_assignments)));
            } else if let Some(listed) = candidates.iter().find(|c| text(c, "id").as_deref() == Some(id)) {
                snap.live.insert(scoped.key(), listed.clone());
            }
        }
        snap.matches.insert(scoped.key(), ids);
    }
    drop(indexes);
    drop(collections);
    let group_names = if with_assignments { referenced_group_names(scope) } else { Vec::new() };
    let mut read_paths: Vec<String> = reads.iter().map(|(_, p)| p.clone()).collect();
    // Apple enrollment profiles: their tokens' collections listed with the object reads.
    let profile_lists = crate::engine::apple_enrollment::profile_listings(scope, &mut snap, same_tenant);
    read_paths.extend(profile_lists.iter().cloned());
    let name_paths: Vec<String> = group_names.iter().map(|n| group_by_name_path(n)).collect();
    let (mut objects, groups) = try_join(read_many(port, &read_paths), read_many(port, &name_paths)).await?;
    let listed_profiles = objects.split_off(objects.len().saturating_sub(profile_lists.len()));
    crate::engine::apple_enrollment::match_profiles(
        port,
        scope,
        &mut snap,
        same_tenant,
        &profile_lists,
        listed_profiles,
    )
    .await?;
    if !read_paths.is_empty() {
        snap.stats.record_batch(read_paths.len());
    }
    if !name_paths.is_empty() {
        snap.stats.record_batch(name_paths.len());
    }
    for ((key, _), result) in reads.into_iter().zip(objects) {
        match result? {
            Some(object) => {
                snap.live.insert(key, object);
            }
            None => {
                snap.matches.insert(key, Vec::new());
            }
        }
    }

    // 3. Groups: the names the backup's assignments reference, then the ids live assignments use.
    if with_assignments {
        for result in groups {
            let page = result?.unwrap_or(Value::Null);
            for g in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(id), Some(name)) = (text(g, "id"), text(g, "displayName")) {
                    snap.maps.add(RefKind::Group, &id, &name);
                }
            }
        }
        let known: BTreeSet<String> = snap.maps.groups.iter().map(|g| g.id.clone()).collect();
        let unknown: Vec<String> = snap
            .live
            .values()
            .flat_map(collect_refs)
            .filter(|(kind, id)| *kind == RefKind::Group && !known.contains(id))
            .map(|(_, id)| id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            let paths: Vec<String> = unknown.iter().map(|id| group_by_id_path(id)).collect();
            let results = port.get_many(&paths).await?;
            snap.stats.record_batch(paths.len());
            for (id, result) in unknown.iter().zip(results) {
                if let Some(name) = result?.as_ref().and_then(|g| text(g, "displayName")) {
                    snap.maps.add(RefKind::Group, id, &name);
                }
            }
        }
    }
    // 4. Conditional Access conditions: named locations, users and groups, by name.
    crate::engine::conditional_access::read_targets(port, scope, &mut snap).await?;
    // 5. Administrative Templates: the ADMX definitions their values set.
    crate::engine::admx::read_targets(port, scope, &mut snap).await?;
    snap.maps.sort();
    if let (Some(before), Some(after)) = (sent_before, port.requests_sent()) {
        snap.stats.sent = Some(u32::try_from(after.saturating_sub(before)).unwrap_or(u32::MAX));
    }
    debug!(
        items = scope.items.len(),
        matched = snap.live.len(),
        graph_requests = snap.stats.graph_requests(),
        "tenant snapshot taken"
    );
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;

    #[test]
    fn whole_reads_expand_sub_resources_and_assignments() {
        let compliance = item_type("compliancePolicy").unwrap();
        assert_eq!(
            object_path(compliance, "c1", true),
            "deviceManagement/deviceCompliancePolicies/c1?$expand=assignments,\
             scheduledActionsForRule($expand=scheduledActionConfigurations)"
        );
        let script = item_type("powerShellScript").unwrap();
        assert_eq!(object_path(script, "p1", false), "deviceManagement/deviceManagementScripts/p1");
        assert!(!needs_object_read(item_type("scopeTag").unwrap()));
        assert!(needs_object_read(script));
    }

    #[test]
    fn group_lookups_are_encoded_filters() {
        assert_eq!(
            group_by_name_path("All Staff"),
            "groups?$filter=displayName%20eq%20%27All%20Staff%27&$select=id,displayName"
        );
    }

    #[test]
    fn batched_reads_count_one_request_per_twenty_paths() {
        let mut stats = RequestStats { lists: 3, ..Default::default() };
        stats.record_batch(41);
        assert_eq!(stats.batch_requests, 3);
        assert_eq!(stats.graph_requests(), 6);
    }
}
