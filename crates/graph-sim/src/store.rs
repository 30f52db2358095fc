//! The simulator's state: tenants with their app registrations and Graph objects, the id and
//! clock source, and the deterministic JSON dump tests assert on.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::auth::AppRegistration;

/// The key of the Entra groups collection in a tenant's store.
pub(crate) const GROUPS: &str = "groups";
/// Collection of scope tags (seeded with the built-in `Default`, id `0`).
pub(crate) const SCOPE_TAGS: &str = "deviceManagement/roleScopeTags";

/// One stored object: its resource, its assignments and its sub-collections.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entity {
    /// Creation order within the tenant.
    pub seq: u64,
    /// The resource as Graph returns it (with `id`, `@odata.type`, timestamps…).
    pub resource: Map<String, Value>,
    /// Assignments (each with an `id`).
    pub assignments: Vec<Value>,
    /// Sub-collections by navigation name (`settings`, `scheduledActionsForRule`, `apps`…).
    pub subs: BTreeMap<String, Vec<Value>>,
}

impl Entity {
    /// The resource's `id`.
    pub fn id(&self) -> &str {
        self.resource.get("id").and_then(Value::as_str).unwrap_or_default()
    }
}

/// The objects of one collection, by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Collection {
    pub entities: BTreeMap<String, Entity>,
}

impl Collection {
    /// Entities in creation order.
    pub fn ordered(&self) -> Vec<&Entity> {
        let mut list: Vec<&Entity> = self.entities.values().collect();
        list.sort_by_key(|e| e.seq);
        list
    }
}

/// One tenant.
#[derive(Debug, Default)]
pub(crate) struct Tenant {
    pub apps: HashMap<String, AppRegistration>,
    pub collections: BTreeMap<String, Collection>,
    pub next_scope_tag_id: u64,
    /// Custom ADMX definitions ingested into the tenant (the built-in ones are every tenant's:
    /// `crate::admx`).
    pub admx_definitions: Vec<Value>,
}

impl Tenant {
    /// A tenant with the built-in `Default` scope tag.
    pub fn new(ids: &mut IdSource) -> Self {
        let mut tenant = Tenant { next_scope_tag_id: 1, ..Tenant::default() };
        let default_tag = json!({
            "@odata.type": "#microsoft.graph.roleScopeTag",
            "id": "0",
            "displayName": "Default",
            "description": "",
            "isBuiltIn": true,
        });
        tenant.insert(SCOPE_TAGS, object(default_tag), ids.next_seq());
        tenant
    }

    /// The collection at `path`, created empty on first use.
    pub fn collection(&mut self, path: &str) -> &mut Collection {
        self.collections.entry(path.to_string()).or_default()
    }

    /// Looks an entity up.
    pub fn entity(&self, path: &str, id: &str) -> Option<&Entity> {
        self.collections.get(path).and_then(|c| c.entities.get(id))
    }

    /// Whether an object with this id exists in `path`.
    pub fn contains(&self, path: &str, id: &str) -> bool {
        self.entity(path, id).is_some()
    }

    /// Inserts (or overwrites) a resource that already carries its `id`.
    pub fn insert(&mut self, path: &str, resource: Map<String, Value>, seq: u64) -> &mut Entity {
        let id = resource.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let collection = self.collection(path);
        collection
            .entities
            .insert(id.clone(), Entity { seq, resource, assignments: Vec::new(), subs: BTreeMap::new() });
        collection.entities.get_mut(&id).expect("entity inserted just above")
    }

    /// The deterministic dump: collections by path, objects by id, each with its assignments
    /// and sub-collections.
    pub fn dump(&self) -> Value {
        let mut collections = Map::new();
        for (path, collection) in &self.collections {
            let mut objects = Map::new();
            for (id, entity) in &collection.entities {
                let mut entry = Map::new();
                entry.insert("resource".into(), Value::Object(entity.resource.clone()));
                if !entity.assignments.is_empty() {
                    entry.insert("assignments".into(), Value::Array(entity.assignments.clone()));
                }
                for (name, items) in &entity.subs {
                    entry.insert(name.clone(), Value::Array(items.clone()));
                }
                objects.insert(id.clone(), Value::Object(entry));
            }
            collections.insert(path.clone(), Value::Object(objects));
        }
        let mut apps: Vec<&String> = self.apps.keys().collect();
        apps.sort();
        json!({"apps": apps, "collections": collections})
    }
}

/// Ids, creation order and server timestamps.
#[derive(Debug)]
pub(crate) struct IdSource {
    rng: StdRng,
    seq: u64,
    frozen_time: Option<String>,
}

impl IdSource {
    /// Seeded (deterministic ids) when `seed` is given.
    pub fn new(seed: Option<u64>, frozen_time: Option<String>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        IdSource { rng, seq: 0, frozen_time }
    }

    /// A new GUID.
    pub fn guid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid().to_string()
    }

    /// The next creation sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The server time as Graph writes it (RFC 3339, UTC).
    pub fn now(&self) -> String {
        match &self.frozen_time {
            Some(time) => time.clone(),
            None => jiff::Timestamp::now().to_string(),
        }
    }
}

/// The object inside a JSON value (empty when it is not an object).
pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
