//! Apple automated device enrollment (ADE/DEP) profiles: they live under their enrollment-program
//! token, which a backup records by name and a restore maps by name; `isDefault` is never written.
//!
//! Microsoft Graph (beta) documents the profiles at
//! `deviceManagement/depOnboardingSettings/{depOnboardingSettingId}/enrollmentProfiles` (create, get,
//! update, delete of `depIOSEnrollmentProfile` / `depMacOSEnrollmentProfile`), the token's
//! `tokenName`, and the profile's `setDefaultProfile` action. IntuneCD 2.6.0
//! (`AppleEnrollmentProfiles`) lists the tokens, reads each token's profiles, backs them up without
//! the token's name, takes the token id from the profile id (`{tokenId}_{guid}`), strips
//! `isDefault` and only updates. A token is uploaded from Apple Business Manager: never created.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::backup::{BackupItem, NamedRef};
use crate::catalog::{IdentityKey, ItemType, TypeClass};
use crate::engine::identity::{encode_query_value, find_matches};
use crate::engine::mapping::{RefKind, RefTarget, ReferenceMapping, TargetMaps};
use crate::engine::scope::ResolvedScope;
use crate::engine::snapshot::TenantSnapshot;
use crate::tenant::{TenantError, TenantPort};

/// The catalogue name of Apple enrollment profiles.
pub const APPLE_ENROLLMENT_PROFILE: &str = "appleEnrollmentProfile";
/// What marks the parent's id in a catalogue collection path.
pub const PARENT_ID: &str = "{id}";
/// The token property naming it.
pub const TOKEN_NAME: &str = "tokenName";
/// The profile property `setDefaultProfile` sets: never written by a create or update.
pub const IS_DEFAULT: &str = "isDefault";

/// The tenant's enrollment-program tokens, listed in the same `$batch` as the catalogue's
/// collections when the scope holds Apple enrollment profiles. Not a kind a restore writes.
pub static TOKENS: ItemType = ItemType {
    name: "depOnboardingSetting",
    title: "Apple enrollment program token",
    collection: "deviceManagement/depOnboardingSettings",
    odata_types: &[],
    abstract_base: false,
    base_odata_type: "depOnboardingSetting",
    class: TypeClass::Foundation,
    identity: IdentityKey::DisplayName,
    sub_resources: &[],
    assignable: false,
    assign_body_key: "assignments",
    order: 0,
};

/// Whether `item_type` is the Apple enrollment profile kind.
pub fn is_apple_enrollment(item_type: &ItemType) -> bool {
    item_type.name == APPLE_ENROLLMENT_PROFILE
}

/// Whether objects of `item_type` live under an item of another collection.
pub fn is_parent_scoped(item_type: &ItemType) -> bool {
    item_type.collection.contains(PARENT_ID)
}

/// The collection an object of `item_type` lives in: its catalogue collection, or for a collection
/// under a parent's item, the one under `parent_id` (capture, snapshot, identity look-up and
/// executor all take the path from here). `None` when a parent-scoped type has no parent.
pub fn collection_path(item_type: &ItemType, parent_id: Option<&str>) -> Option<String> {
    match (is_parent_scoped(item_type), parent_id) {
        (false, _) => Some(item_type.collection.to_string()),
        (true, Some(parent)) if !parent.is_empty() => {
            Some(item_type.collection.replace(PARENT_ID, &encode_query_value(parent)))
        }
        (true, _) => None,
    }
}

/// The token id a profile id starts with (`{tokenId}_{guid}`), as IntuneCD reads it.
pub fn token_of_profile_id(profile_id: &str) -> Option<&str> {
    profile_id.split_once('_').map(|(token, _)| token).filter(|t| !t.is_empty())
}

/// The token a backup item records (id in the source tenant, name).
pub fn recorded_token(item: &BackupItem) -> Option<&NamedRef> {
    item.references.enrollment_tokens.first()
}

/// The token reference of a listed token: its id and `tokenName`.
pub fn token_ref(token: &Value) -> Option<NamedRef> {
    let id = token.get("id").and_then(Value::as_str)?;
    let name = token.get(TOKEN_NAME).and_then(Value::as_str).unwrap_or_default();
    Some(NamedRef { id: id.to_string(), display_name: name.to_string() })
}

/// Adds the target's listed tokens to its maps.
pub fn add_tokens(maps: &mut TargetMaps, listed: &[Value]) {
    for token in listed.iter().filter_map(token_ref) {
        maps.add(RefKind::EnrollmentToken, &token.id, &token.display_name);
    }
}

/// Where an item's token lands in the target: in the same tenant the source token when the target
/// still has it, otherwise the one token of the recorded name (none, several, or no name recorded:
/// not mapped). `None` for an item of another kind.
pub fn map_token(item: &BackupItem, maps: &TargetMaps, same_tenant: bool) -> Option<ReferenceMapping> {
    if item.item_type != APPLE_ENROLLMENT_PROFILE {
        return None;
    }
    let recorded = recorded_token(item);
    let source_id = recorded.map(|t| t.id.clone()).unwrap_or_default();
    let name = recorded.map(|t| t.display_name.clone()).filter(|n| !n.is_empty());
    let tokens = maps.entries(RefKind::EnrollmentToken);
    let target = if same_tenant && !source_id.is_empty() && tokens.iter().any(|t| t.id == source_id) {
        RefTarget::Existing { id: source_id.clone() }
    } else {
        let named = name.as_deref().map(|n| maps.ids_named(RefKind::EnrollmentToken, n)).unwrap_or_default();
        match named.as_slice() {
            [] => RefTarget::Missing,
            [one] => RefTarget::Existing { id: one.clone() },
            _ => RefTarget::Ambiguous { ids: named },
        }
    };
    Some(ReferenceMapping { kind: RefKind::EnrollmentToken, source_id, name, target })
}

/// The blocker's message when a profile's token maps to nothing in the target.
pub fn token_missing_message(reference: &ReferenceMapping) -> String {
    match &reference.name {
        Some(name) => format!(
            "enrollment program token {name:?} does not exist in the target tenant; the profile has nowhere to be written."
        ),
        None if reference.source_id.is_empty() => {
            "the backup records no enrollment program token for this profile; it has nowhere to be written.".to_string()
        }
        None => format!(
            "the backup records enrollment program token {} without its name (IntuneCD backs Apple enrollment profiles up without it), so the token can only be found in the same tenant by id, and the target tenant has no token {}.",
            reference.source_id, reference.source_id
        ),
    }
}

/// The target token of a plan item (its mapped token reference), if any.
pub fn target_token(references: &[ReferenceMapping]) -> Option<&str> {
    references.iter().find(|r| r.kind == RefKind::EnrollmentToken).and_then(|r| match &r.target {
        RefTarget::Existing { id } => Some(id.as_str()),
        _ => None,
    })
}

/// The collection of a plan item: under its mapped token for a parent-scoped kind.
pub fn item_collection(item_type: &ItemType, references: &[ReferenceMapping]) -> Option<String> {
    collection_path(item_type, target_token(references))
}

/// The path of one object of a plan item's type (`None`: a parent-scoped item whose parent is not
/// mapped): parent-scoped objects have nothing to expand.
pub fn object_path_of(
    item_type: &ItemType,
    references: &[ReferenceMapping],
    id: &str,
    with_assignments: bool,
) -> Option<String> {
    if !is_parent_scoped(item_type) {
        return Some(crate::engine::snapshot::object_path(item_type, id, with_assignments));
    }
    item_collection(item_type, references).map(|collection| format!("{collection}/{id}"))
}

/// The snapshot lists the tokens (in its first `$batch`) instead of a parent-scoped collection,
/// which has no path of its own.
pub fn list_tokens_instead(types: &mut Vec<&'static ItemType>) {
    if types.iter().any(|t| is_parent_scoped(t)) {
        types.retain(|t| !is_parent_scoped(t));
        types.push(&TOKENS);
    }
}

fn scoped_profiles(scope: &ResolvedScope) -> impl Iterator<Item = &crate::engine::scope::ScopedItem> {
    scope.items.iter().filter(|i| i.item_type.is_some_and(is_apple_enrollment))
}

/// Maps each scoped profile's token (kept in the snapshot) and returns the profile collections of
/// the tokens mapped, to be listed with the snapshot's object reads (no request of their own).
pub fn profile_listings(scope: &ResolvedScope, snap: &mut TenantSnapshot, same_tenant: bool) -> Vec<String> {
    let mut paths = BTreeSet::new();
    for scoped in scoped_profiles(scope) {
        let Some(mapping) = map_token(&scoped.item, &snap.maps, same_tenant) else { continue };
        if let Some(path) = scoped.item_type.and_then(|t| item_collection(t, std::slice::from_ref(&mapping))) {
            paths.insert(path);
        }
        snap.enrollment_tokens.insert(scoped.key(), mapping);
    }
    paths.into_iter().collect()
}

/// Matches each scoped profile within its token's listed profiles (displayName and type; the
/// source id in the same tenant); a profile whose token is not mapped matches nothing.
pub async fn match_profiles<T: TenantPort>(
    port: &T,
    scope: &ResolvedScope,
    snap: &mut TenantSnapshot,
    same_tenant: bool,
    paths: &[String],
    pages: Vec<Result<Option<Value>, TenantError>>,
) -> Result<(), TenantError> {
    let mut listings: HashMap<&str, Vec<Value>> = HashMap::new();
    for (path, page) in paths.iter().zip(pages) {
        let mut page = page?.unwrap_or(Value::Null);
        let objects = match page.get_mut("value").map(Value::take) {
            Some(Value::Array(objects)) if page.get("@odata.nextLink").is_none() => objects,
            _ => {
                snap.stats.lists += 1;
                port.list(path).await?
            }
        };
        listings.insert(path.as_str(), objects);
    }
    for scoped in scoped_profiles(scope) {
        let (key, Some(t)) = (scoped.key(), scoped.item_type) else { continue };
        let path = snap.enrollment_tokens.get(&key).and_then(|m| item_collection(t, std::slice::from_ref(m)));
        let candidates = path.and_then(|p| listings.get(p.as_str())).map(Vec::as_slice).unwrap_or_default();
        let ids = find_matches(t, &scoped.item, candidates, same_tenant);
        if let [id] = ids.as_slice()
            && let Some(listed) = candidates.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(id))
        {
            snap.live.insert(key.clone(), listed.clone());
        }
        snap.matches.insert(key, ids);
    }
    Ok(())
}

/// Removes `isDefault` from a create or update body, and from a normalized document (a restore
/// never writes it, so it never makes a profile differ; a finding says when it was the default).
pub fn strip_default_flag(item_type: Option<&ItemType>, doc: &mut Value) {
    if let (Some(t), Value::Object(map)) = (item_type, doc)
        && is_apple_enrollment(t)
    {
        map.remove(IS_DEFAULT);
    }
}

/// Whether the backup says the profile was its token's default.
pub fn was_default(item_type: &ItemType, resource: &Value) -> bool {
    is_apple_enrollment(item_type) && resource.get(IS_DEFAULT).and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    fn profile(token: Option<(&str, &str)>) -> BackupItem {
        let mut item: BackupItem = serde_json::from_value(json!({
            "type": APPLE_ENROLLMENT_PROFILE, "id": "tok1_p1", "displayName": "iPads", "platform": "iOS",
            "resource": {"@odata.type": "#microsoft.graph.depIOSEnrollmentProfile", "displayName": "iPads", "isDefault": true}
        }))
        .unwrap();
        if let Some((id, name)) = token {
            item.references.enrollment_tokens.push(NamedRef { id: id.into(), display_name: name.into() });
        }
        item
    }

    fn maps(tokens: &[(&str, &str)]) -> TargetMaps {
        let mut maps = TargetMaps::default();
        add_tokens(
            &mut maps,
            &tokens.iter().map(|(id, name)| json!({"id": id, "tokenName": name})).collect::<Vec<_>>(),
        );
        maps
    }

    #[test]
    fn a_parent_scoped_collection_is_under_its_parent_and_other_collections_are_as_catalogued() {
        let apple = item_type(APPLE_ENROLLMENT_PROFILE).unwrap();
        assert_eq!(
            collection_path(apple, Some("t 1")).as_deref(),
            Some("deviceManagement/depOnboardingSettings/t%201/enrollmentProfiles")
        );
        assert_eq!(collection_path(apple, None), None);
        assert_eq!(collection_path(apple, Some("")), None, "an empty parent id names no collection");
        let dc = item_type("deviceConfiguration").unwrap();
        assert_eq!(collection_path(dc, None).as_deref(), Some(dc.collection));
    }

    #[test]
    fn the_token_maps_by_name_across_tenants_and_by_id_in_the_same_tenant() {
        let item = profile(Some(("tok1", "Contoso ABM")));
        let target = |m: &TargetMaps, same| map_token(&item, m, same).map(|r| r.target);
        assert_eq!(target(&maps(&[("x", "Contoso ABM")]), false), Some(RefTarget::Existing { id: "x".into() }));
        assert_eq!(target(&maps(&[("x", "Other")]), false), Some(RefTarget::Missing));
        assert_eq!(
            target(&maps(&[("x", "Contoso ABM"), ("y", "Contoso ABM")]), false),
            Some(RefTarget::Ambiguous { ids: vec!["x".into(), "y".into()] })
        );
        assert_eq!(target(&maps(&[("tok1", "Renamed")]), true), Some(RefTarget::Existing { id: "tok1".into() }));
        let unnamed = profile(Some(("tok1", "")));
        assert_eq!(map_token(&unnamed, &maps(&[("tok1", "")]), false).map(|r| r.target), Some(RefTarget::Missing));
    }

    #[test]
    fn is_default_is_never_written_and_a_profile_id_names_its_token() {
        let apple = item_type(APPLE_ENROLLMENT_PROFILE).unwrap();
        let item = profile(None);
        assert!(was_default(apple, &item.resource));
        let mut body = item.resource.clone();
        strip_default_flag(Some(apple), &mut body);
        assert_eq!(body.get(IS_DEFAULT), None);
        assert_eq!(token_of_profile_id("tok1_p1"), Some("tok1"));
        assert_eq!(token_of_profile_id("p1"), None);
    }

    #[test]
    fn a_missing_token_blocker_names_the_token_or_says_why_it_cannot_be_found() {
        let missing = |source_id: &str, name: Option<&str>| ReferenceMapping {
            kind: RefKind::EnrollmentToken,
            source_id: source_id.into(),
            name: name.map(str::to_string),
            target: RefTarget::Missing,
        };
        assert!(
            token_missing_message(&missing("tok1", Some("Contoso ABM"))).contains("\"Contoso ABM\" does not exist")
        );
        assert!(token_missing_message(&missing("", None)).contains("records no enrollment program token"));
        let unnamed = token_missing_message(&missing("tok1", None));
        assert!(unnamed.contains("without its name") && unnamed.contains("no token tok1"), "{unnamed}");
    }

    fn mapped(target: RefTarget) -> Vec<ReferenceMapping> {
        vec![ReferenceMapping { kind: RefKind::EnrollmentToken, source_id: "tok1".into(), name: None, target }]
    }

    #[test]
    fn a_profile_is_read_and_written_under_its_mapped_token_only() {
        let apple = item_type(APPLE_ENROLLMENT_PROFILE).unwrap();
        let existing = mapped(RefTarget::Existing { id: "tokT".into() });
        assert_eq!(target_token(&existing), Some("tokT"));
        assert_eq!(
            object_path_of(apple, &existing, "p9", true).as_deref(),
            Some("deviceManagement/depOnboardingSettings/tokT/enrollmentProfiles/p9")
        );
        for unmapped in [RefTarget::Missing, RefTarget::Ambiguous { ids: vec!["a".into(), "b".into()] }] {
            assert_eq!(target_token(&mapped(unmapped.clone())), None);
            assert_eq!(object_path_of(apple, &mapped(unmapped), "p9", true), None);
        }
        let mut other_kind = existing.clone();
        other_kind[0].kind = RefKind::Group;
        assert_eq!(target_token(&other_kind), None, "only the token reference names the parent");
        let dc = item_type("deviceConfiguration").unwrap();
        assert_eq!(object_path_of(dc, &[], "d1", true), Some(crate::engine::snapshot::object_path(dc, "d1", true)));
    }

    #[test]
    fn the_snapshot_lists_the_tokens_instead_of_a_collection_under_a_token() {
        let apple = item_type(APPLE_ENROLLMENT_PROFILE).unwrap();
        let dc = item_type("deviceConfiguration").unwrap();
        let mut with_profiles = vec![dc, apple];
        list_tokens_instead(&mut with_profiles);
        let names: Vec<&str> = with_profiles.iter().map(|t| t.name).collect();
        assert_eq!(names, ["deviceConfiguration", TOKENS.name]);
        let mut without = vec![dc];
        list_tokens_instead(&mut without);
        assert_eq!(without.len(), 1, "no token listing without a profile in scope");
    }

    #[test]
    fn is_default_is_only_a_profiles_flag() {
        let apple = item_type(APPLE_ENROLLMENT_PROFILE).unwrap();
        let dc = item_type("deviceConfiguration").unwrap();
        let mut other = json!({"isDefault": true});
        strip_default_flag(Some(dc), &mut other);
        strip_default_flag(None, &mut other);
        assert_eq!(other, json!({"isDefault": true}), "another kind's isDefault is its own property");
        assert!(!was_default(dc, &json!({"isDefault": true})));
        assert!(!was_default(apple, &json!({"isDefault": false})));
        assert!(!was_default(apple, &json!({})));
    }

    /// A token's profile collection as Graph lists it page by page.
    struct Profiles(Vec<Value>);

    impl TenantPort for Profiles {
        async fn get(&self, _: &str) -> Result<Option<Value>, TenantError> {
            Ok(None)
        }
        async fn list(&self, _: &str) -> Result<Vec<Value>, TenantError> {
            Ok(self.0.clone())
        }
        async fn get_many(&self, _: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
            unreachable!("the profiles ride in the snapshot's batch")
        }
        async fn create(&self, _: &str, _: &Value) -> Result<Value, TenantError> {
            unreachable!("a preview never writes")
        }
        async fn update(&self, _: &str, _: &Value) -> Result<(), TenantError> {
            unreachable!("a preview never writes")
        }
        async fn replace(&self, _: &str, _: &Value) -> Result<(), TenantError> {
            unreachable!("a preview never writes")
        }
        async fn action(&self, _: &str, _: &Value) -> Result<Option<Value>, TenantError> {
            unreachable!("a preview never writes")
        }
    }

    #[tokio::test]
    async fn a_profile_is_matched_among_its_mapped_tokens_profiles_reading_further_pages_when_listed_in_part() {
        let backup = crate::backup::BackupSet {
            tenant: None,
            captured_at: None,
            digest: String::new(),
            items: vec![profile(Some(("tok1", "Contoso ABM")))],
        };
        let scope = crate::engine::scope::resolve_scope(&Default::default(), &backup).unwrap();
        let key = scope.items[0].key();
        let listed = vec![
            json!({"id": "tokT_a", "displayName": "iPads", "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile"}),
            json!({"id": "tokT_b", "displayName": "Macs", "@odata.type": "#microsoft.graph.depMacOSEnrollmentProfile"}),
        ];
        for next_link in [false, true] {
            let mut snap = TenantSnapshot { maps: maps(&[("tokT", "Contoso ABM")]), ..Default::default() };
            let paths = profile_listings(&scope, &mut snap, false);
            assert_eq!(paths, ["deviceManagement/depOnboardingSettings/tokT/enrollmentProfiles"]);
            assert_eq!(snap.enrollment_tokens[&key].target, RefTarget::Existing { id: "tokT".into() });
            let mut page = json!({"value": if next_link { vec![listed[1].clone()] } else { listed.clone() }});
            if next_link {
                page["@odata.nextLink"] = json!("https://graph.microsoft.com/beta/next");
            }
            match_profiles(&Profiles(listed.clone()), &scope, &mut snap, false, &paths, vec![Ok(Some(page))])
                .await
                .unwrap();
            assert_eq!(snap.matches[&key], ["tokT_a"], "listed in part: {next_link}");
            assert_eq!(snap.live[&key]["id"], "tokT_a");
            assert_eq!(snap.stats.lists, u32::from(next_link), "only a partial page is listed again whole");
        }
        let mut unmapped = TenantSnapshot { maps: maps(&[("tokT", "Another token")]), ..Default::default() };
        let paths = profile_listings(&scope, &mut unmapped, false);
        assert!(paths.is_empty());
        match_profiles(&Profiles(listed), &scope, &mut unmapped, false, &paths, Vec::new()).await.unwrap();
        assert_eq!(unmapped.matches[&key], Vec::<String>::new(), "an unmapped token's profile matches nothing");
        assert!(!unmapped.live.contains_key(&key));
    }
}
