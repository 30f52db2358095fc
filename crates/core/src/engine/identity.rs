//! Which target-tenant object a backup item is (DESIGN §3): by source id in the same tenant, otherwise
//! by `@odata.type` + display name, or `name` + `technologies` for Settings Catalog policies.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::backup::BackupItem;
use crate::catalog::{IdentityKey, ItemType};
use crate::engine::enrollment::identity_qualifier;

/// The cross-tenant identity of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    /// `@odata.type` without the `#microsoft.graph.` prefix, lower-case (the base type when absent);
    /// empty for Settings Catalog policies, which have one type.
    pub odata: String,
    /// Display name (`name` for Settings Catalog).
    pub name: String,
    /// `technologies` for Settings Catalog policies.
    pub technologies: Option<String>,
}

impl Identity {
    /// The identity of a Graph object of `item_type` (`fallback_name` when it has no name field).
    pub fn of(item_type: &ItemType, object: &Value, fallback_name: &str) -> Identity {
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        match item_type.identity {
            IdentityKey::DisplayName => Identity {
                odata: qualified(
                    short_odata(object.get("@odata.type").and_then(Value::as_str))
                        .unwrap_or_else(|| item_type.base_odata_type.to_ascii_lowercase()),
                    identity_qualifier(item_type, object)
                        .or_else(|| crate::engine::intents::identity_qualifier(item_type, object)),
                ),
                name: text("displayName").unwrap_or_else(|| fallback_name.to_string()),
                technologies: None,
            },
            IdentityKey::NameAndTechnologies => Identity {
                odata: String::new(),
                name: text("name").unwrap_or_else(|| fallback_name.to_string()),
                technologies: Some(text("technologies").unwrap_or_default()),
            },
        }
    }

    /// The identity of a backup item.
    pub fn of_item(item_type: &ItemType, item: &BackupItem) -> Identity {
        Identity::of(item_type, &item.resource, &item.display_name)
    }

    /// The collection query listing the objects that may carry this identity (filtered by name on
    /// the server; the caller compares the whole identity).
    pub fn query(&self, item_type: &ItemType) -> String {
        self.query_in(item_type, item_type.collection)
    }

    /// [`Identity::query`] in `collection` (a parent-scoped type's collection under its parent).
    pub fn query_in(&self, item_type: &ItemType, collection: &str) -> String {
        let field = match item_type.identity {
            IdentityKey::DisplayName => "displayName",
            IdentityKey::NameAndTechnologies => "name",
        };
        let filter = format!("{field} eq '{}'", self.name.replace('\'', "''"));
        format!("{collection}?$filter={}", encode_query_value(&filter))
    }
}

/// The `@odata.type` with what else tells objects of one type and name apart (the platform of an
/// enrollment restriction), as `type/qualifier`.
fn qualified(odata: String, qualifier: Option<String>) -> String {
    match qualifier {
        Some(q) => format!("{odata}/{q}"),
        None => odata,
    }
}

fn short_odata(odata: Option<&str>) -> Option<String> {
    let odata = odata?;
    Some(odata.strip_prefix("#microsoft.graph.").unwrap_or(odata).to_ascii_lowercase())
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The ids of the objects among `candidates` that are this item: by source id when the backup
/// comes from the same tenant (falling back to the identity, so an object deleted and re-created
/// by an earlier restore is found), otherwise by identity.
pub fn find_matches(item_type: &ItemType, item: &BackupItem, candidates: &[Value], same_tenant: bool) -> Vec<String> {
    if crate::engine::singleton::singleton(item_type).is_some() {
        // A tenant-wide singleton is always the tenant's one object.
        return candidates.iter().filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string)).collect();
    }
    let id_of = |c: &Value| c.get("id").and_then(Value::as_str).map(str::to_string);
    if same_tenant && candidates.iter().any(|c| id_of(c).as_deref() == Some(item.id.as_str())) {
        return vec![item.id.clone()];
    }
    let wanted = Identity::of_item(item_type, item);
    let mut ids: Vec<String> =
        candidates.iter().filter(|c| Identity::of(item_type, c, "") == wanted).filter_map(id_of).collect();
    ids.sort();
    ids
}

/// The objects of one listed collection, indexed to answer [`find_matches`] for many items
/// without scanning the collection for each (a 10,000-object tenant).
pub struct Candidates<'a> {
    item_type: &'a ItemType,
    ids: HashSet<&'a str>,
    by_identity: HashMap<Identity, Vec<String>>,
}

impl<'a> Candidates<'a> {
    /// Indexes `candidates`, objects of `item_type`, by id and by identity.
    pub fn index(item_type: &'a ItemType, candidates: &'a [Value]) -> Self {
        let mut ids = HashSet::new();
        let mut by_identity: HashMap<Identity, Vec<String>> = HashMap::new();
        for candidate in candidates {
            let Some(id) = candidate.get("id").and_then(Value::as_str) else { continue };
            ids.insert(id);
            by_identity.entry(Identity::of(item_type, candidate, "")).or_default().push(id.to_string());
        }
        by_identity.values_mut().for_each(|ids| ids.sort());
        Candidates { item_type, ids, by_identity }
    }

    /// What [`find_matches`] answers for `item` against these candidates.
    pub fn matches(&self, item: &BackupItem, same_tenant: bool) -> Vec<String> {
        if crate::engine::singleton::singleton(self.item_type).is_some() {
            // A tenant-wide singleton is always the tenant's one object.
            let mut ids: Vec<String> = self.ids.iter().map(|id| id.to_string()).collect();
            ids.sort();
            return ids;
        }
        if same_tenant && self.ids.contains(item.id.as_str()) {
            return vec![item.id.clone()];
        }
        self.by_identity.get(&Identity::of_item(self.item_type, item)).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::item_type;
    use serde_json::json;

    fn item(t: &str, id: &str, resource: Value) -> BackupItem {
        BackupItem {
            item_type: t.into(),
            id: id.into(),
            display_name: String::new(),
            platform: "windows".into(),
            resource,
            assignments: None,
            sub_resources: Default::default(),
            references: Default::default(),
        }
    }

    #[test]
    fn cross_tenant_identity_is_odata_type_and_display_name() {
        let dc = item_type("deviceConfiguration").unwrap();
        let it = item(
            "deviceConfiguration",
            "s1",
            json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "A"}),
        );
        let candidates = vec![
            json!({"id": "t1", "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "A"}),
            json!({"id": "t2", "@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "displayName": "A"}),
            json!({"id": "t3", "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "B"}),
        ];
        assert_eq!(find_matches(dc, &it, &candidates, false), vec!["t1"]);
    }

    #[test]
    fn settings_catalog_identity_is_name_and_technologies() {
        let sc = item_type("settingsCatalogPolicy").unwrap();
        let it = item("settingsCatalogPolicy", "s1", json!({"name": "P", "technologies": "mdm"}));
        let candidates = vec![
            json!({"id": "t1", "name": "P", "technologies": "mdm"}),
            json!({"id": "t2", "name": "P", "technologies": "mdm,microsoftSense"}),
            json!({"id": "t3", "name": "P", "technologies": "mdm"}),
        ];
        assert_eq!(find_matches(sc, &it, &candidates, false), vec!["t1", "t3"]);
    }

    #[test]
    fn same_tenant_matches_by_id_first_then_by_identity() {
        let dc = item_type("deviceConfiguration").unwrap();
        let it = item("deviceConfiguration", "s1", json!({"displayName": "A"}));
        let renamed = vec![json!({"id": "s1", "displayName": "Renamed"}), json!({"id": "x", "displayName": "A"})];
        assert_eq!(find_matches(dc, &it, &renamed, true), vec!["s1"]);
        let recreated = vec![json!({"id": "new", "displayName": "A"})];
        assert_eq!(find_matches(dc, &it, &recreated, true), vec!["new"]);
    }

    #[test]
    fn the_index_answers_as_a_scan_of_the_collection_does() {
        let dc = item_type("deviceConfiguration").unwrap();
        let sc = item_type("settingsCatalogPolicy").unwrap();
        let custom = "#microsoft.graph.windows10CustomConfiguration";
        let dc_candidates = vec![
            json!({"id": "t2", "@odata.type": custom, "displayName": "A"}),
            json!({"id": "t1", "@odata.type": custom, "displayName": "A"}),
            json!({"id": "t3", "displayName": "A"}),
            json!({"@odata.type": custom, "displayName": "B"}),
            json!({"id": "s1", "@odata.type": custom, "displayName": "Renamed"}),
            json!({"id": 7, "displayName": "C"}),
        ];
        let sc_candidates = vec![
            json!({"id": "t1", "name": "P", "technologies": "mdm"}),
            json!({"id": "t2", "name": "P"}),
            json!({"id": "t3", "name": "P", "technologies": ""}),
        ];
        let items = [
            item("deviceConfiguration", "s1", json!({"@odata.type": custom, "displayName": "A"})),
            item("deviceConfiguration", "s9", json!({"@odata.type": custom, "displayName": "A"})),
            item("deviceConfiguration", "s9", json!({"displayName": "A"})),
            item("deviceConfiguration", "s9", json!({"@odata.type": custom, "displayName": "B"})),
            item("deviceConfiguration", "7", json!({"displayName": "C"})),
            item("deviceConfiguration", "s9", json!({})),
        ];
        let index = Candidates::index(dc, &dc_candidates);
        for it in &items {
            for same_tenant in [true, false] {
                assert_eq!(index.matches(it, same_tenant), find_matches(dc, it, &dc_candidates, same_tenant), "{it:?}");
            }
        }
        let sc_index = Candidates::index(sc, &sc_candidates);
        for resource in [json!({"name": "P", "technologies": "mdm"}), json!({"name": "P"}), json!({"name": "Q"})] {
            let it = item("settingsCatalogPolicy", "x", resource);
            assert_eq!(sc_index.matches(&it, false), find_matches(sc, &it, &sc_candidates, false), "{it:?}");
        }
        assert_eq!(index.matches(&items[1], false), vec!["t1", "t2"]);
    }

    #[test]
    fn the_identity_query_quotes_and_encodes_the_name() {
        let dc = item_type("deviceConfiguration").unwrap();
        let id = Identity::of(dc, &json!({"displayName": "O'Neil & co"}), "");
        assert_eq!(
            id.query(dc),
            "deviceManagement/deviceConfigurations?$filter=displayName%20eq%20%27O%27%27Neil%20%26%20co%27"
        );
    }

    #[test]
    fn the_index_answers_a_tenant_wide_singleton_as_find_matches_does() {
        let settings = crate::engine::singleton::DEVICE_MANAGEMENT_SETTINGS;
        let t = item_type(settings.type_name).unwrap();
        let candidates = vec![json!({"id": settings.id, "secureByDefault": true})];
        let it = item(t.name, "from-another-tenant", json!({"secureByDefault": false}));
        let index = Candidates::index(t, &candidates);
        for same_tenant in [true, false] {
            assert_eq!(index.matches(&it, same_tenant), vec![settings.id.to_string()]);
            assert_eq!(index.matches(&it, same_tenant), find_matches(t, &it, &candidates, same_tenant));
        }
    }
}
