//! Test support for the engine: a small stateful in-memory tenant behind `TenantPort` (server-set ids,
//! 404s, navigation properties, `$expand`/`$filter`/`$select`, write counts, crash injection), a seeder.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use restore_core::api::{Environment, ScopeSpec};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use restore_core::canonical::{canonical_json, sha256_digest};
use restore_core::catalog::{ITEM_TYPES, ItemType, item_type, platform_of};
use restore_core::engine::enrollment;
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::mapping::{RefKind, collect_refs};
use restore_core::engine::normalize::{MASKED, SERVER_MANAGED};
use restore_core::engine::plan::ExecutionPlan;
use restore_core::engine::scope::{ResolvedScope, resolve_scope};
use restore_core::engine::snapshot::object_path;
use restore_core::engine::{Assessment, EngineOptions, RestoreTarget, assess};
use restore_core::tenant::{TenantError, TenantErrorKind, TenantPort};
use serde_json::{Map, Value, json};

pub mod seed;

/// A Graph call as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Get(String),
    List(String),
    Create(String),
    Update(String),
    Replace(String),
    Action(String),
}

impl Call {
    pub fn is_write(&self) -> bool {
        matches!(self, Call::Create(_) | Call::Update(_) | Call::Replace(_) | Call::Action(_))
    }
}

#[derive(Default)]
struct State {
    collections: BTreeMap<String, Vec<Value>>,
    created_per_name: BTreeMap<String, u32>,
    clock: u64,
    calls: Vec<Call>,
    requests: u64,
    writes: u64,
    crash_at_write: Option<u64>,
    refused_collection: Option<String>,
}

/// An in-memory Intune tenant. Objects are stored with their navigation properties (sub-resources
/// and `assignments`) inline; reads hide them unless `$expand`ed, as Graph does.
pub struct FakeTenant {
    pub tenant_id: String,
    page_size: usize,
    state: Mutex<State>,
}

pub const GROUPS: &str = "groups";

fn err(kind: TenantErrorKind, message: impl Into<String>) -> TenantError {
    TenantError::new(kind, message)
}

fn validation(message: impl Into<String>) -> TenantError {
    err(TenantErrorKind::Validation { code: "ModelValidationFailure".into() }, message)
}

/// Navigation properties of a collection: its type's sub-resources and assignments.
fn navs(collection: &str) -> Vec<&'static str> {
    let Some(t) = ITEM_TYPES.iter().find(|t| t.collection == collection) else { return Vec::new() };
    let mut navs: Vec<&'static str> = t.sub_resources.iter().map(|s| s.name).collect();
    if t.assignable {
        navs.push("assignments");
    }
    navs
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query {
    filter: Option<(String, String)>,
    expand: Vec<String>,
    select: Option<Vec<String>>,
}

fn parse_path(path: &str) -> (String, Query) {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut q = Query { filter: None, expand: Vec::new(), select: None };
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key {
            "$filter" => {
                let text = percent_decode(value);
                let (field, literal) = text.split_once(" eq ").expect("filter of the form `field eq 'value'`");
                let literal = literal.trim().strip_prefix('\'').and_then(|l| l.strip_suffix('\'')).expect("quoted");
                q.filter = Some((field.trim().to_string(), literal.replace("''", "'")));
            }
            "$expand" => {
                let mut depth = 0;
                let mut current = String::new();
                for ch in value.chars() {
                    match ch {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ',' if depth == 0 => {
                            q.expand.push(std::mem::take(&mut current));
                            continue;
                        }
                        _ if depth > 0 => continue,
                        _ => {}
                    }
                    if depth == 0 && ch != ')' {
                        current.push(ch);
                    }
                }
                q.expand.push(current);
            }
            "$select" => q.select = Some(value.split(',').map(str::to_string).collect()),
            other => panic!("the fake does not know query option {other}"),
        }
    }
    (percent_decode(base), q)
}

/// Where a path points.
enum Target {
    Collection(String),
    Object(String, String),
    Nav(String, String, String),
    NavEntry(String, String, String, String),
}

impl State {
    /// The ids of a priority list's configurations (defaults left out), in priority order.
    fn priority_order(&self, collection: &str, list: &str) -> Vec<String> {
        let mut members: Vec<(i64, String)> = (self.collections.get(collection).into_iter().flatten())
            .filter(|o| enrollment_list(collection, o).as_deref() == Some(list))
            .filter_map(|o| Some((enrollment::priority(o).filter(|p| *p > 0)?, o["id"].as_str()?.to_string())))
            .collect();
        members.sort();
        members.into_iter().map(|(_, id)| id).collect()
    }

    /// `setPriority` as the simulator models it: the configuration moves to the position, the others
    /// of its list are renumbered 1..n; a default or a position outside the list is refused.
    fn set_priority(&mut self, collection: &str, id: &str, body: &Value) -> Result<(), TenantError> {
        let object = self.object(collection, id).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
        let list = enrollment_list(collection, object).ok_or_else(|| validation("not an enrollment configuration"))?;
        let wanted = body.get(enrollment::PRIORITY).and_then(Value::as_i64).unwrap_or(0);
        let order = self.priority_order(collection, &list);
        if !order.iter().any(|o| o == id) || wanted < 1 || wanted > order.len() as i64 {
            return Err(validation(format!("priority {wanted} cannot be set on {id}")));
        }
        let now = self.tick();
        for (n, member) in restore_core::engine::enrollment_priority::move_to(&order, id, wanted).iter().enumerate() {
            let o = self.object_mut(collection, member).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
            if o[enrollment::PRIORITY] != json!(n + 1) {
                o[enrollment::PRIORITY] = json!(n + 1);
                o["lastModifiedDateTime"] = json!(now);
            }
        }
        Ok(())
    }

    fn collection_names(&self) -> Vec<String> {
        self.collections.keys().cloned().collect()
    }

    fn resolve(&self, base: &str) -> Option<Target> {
        let mut names = self.collection_names();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for name in names {
            if base == name {
                return Some(Target::Collection(name));
            }
            if let Some(rest) = base.strip_prefix(&format!("{name}/")) {
                let parts: Vec<&str> = rest.split('/').collect();
                return Some(match parts.as_slice() {
                    [id] => Target::Object(name, id.to_string()),
                    [id, nav] => Target::Nav(name, id.to_string(), nav.to_string()),
                    [id, nav, entry] => Target::NavEntry(name, id.to_string(), nav.to_string(), entry.to_string()),
                    _ => return None,
                });
            }
        }
        None
    }

    fn object_mut(&mut self, collection: &str, id: &str) -> Option<&mut Value> {
        self.collections.get_mut(collection)?.iter_mut().find(|o| o["id"] == id)
    }

    fn object(&self, collection: &str, id: &str) -> Option<&Value> {
        self.collections.get(collection)?.iter().find(|o| o["id"] == id)
    }

    fn tick(&mut self) -> String {
        self.clock += 1;
        format!("2026-01-01T00:{:02}:{:02}Z", (self.clock / 60) % 60, self.clock % 60)
    }

    fn new_id(&mut self, tenant: &str, collection: &str, name: &str) -> String {
        let n = self.created_per_name.entry(format!("{collection}\n{name}")).or_default();
        *n += 1;
        let digest = sha256_digest(format!("{tenant}\n{collection}\n{name}\n{n}").as_bytes());
        let hex = &digest["sha256:".len()..];
        format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
    }

    /// Checks a write body the way Graph would refuse it, plus the engine's own promises.
    fn check_body(&self, collection: &str, body: &Value) -> Result<(), TenantError> {
        for key in ["id", "createdDateTime", "lastModifiedDateTime", "version", "@odata.context"] {
            if body.get(key).is_some() {
                return Err(validation(format!("read-only property {key} in the body")));
            }
        }
        if canonical_json(body).contains(MASKED) {
            return Err(validation("a masked secret reached a write body"));
        }
        let tags: BTreeSet<String> = self.ids(item_type("scopeTag").unwrap().collection);
        for key in ["roleScopeTagIds", "roleScopeTags"] {
            if let Some(list) = body.get(key).and_then(Value::as_array) {
                if list.is_empty() {
                    return Err(validation(format!("{key} must not be empty")));
                }
                for id in list.iter().filter_map(Value::as_str) {
                    if id != "0" && !tags.contains(id) {
                        return Err(validation(format!("scope tag {id} does not exist")));
                    }
                }
            }
        }
        let mut doc = body.clone();
        if let Some(t) = ITEM_TYPES.iter().find(|t| t.collection == collection)
            && let Some(list) = body.get(t.assign_body_key)
        {
            doc["assignments"] = list.clone();
        }
        for (kind, id) in collect_refs(&doc) {
            let known = match kind {
                RefKind::Group => self.ids(GROUPS),
                RefKind::Filter => self.ids(item_type("assignmentFilter").unwrap().collection),
                RefKind::NotificationTemplate => self.ids(item_type("notificationTemplate").unwrap().collection),
                RefKind::ScopeTag | RefKind::NamedLocation | RefKind::User | RefKind::EnrollmentToken => continue,
            };
            if !known.contains(&id) {
                return Err(validation(format!("{} {id} does not exist", kind.title())));
            }
        }
        Ok(())
    }

    fn ids(&self, collection: &str) -> BTreeSet<String> {
        self.collections
            .get(collection)
            .into_iter()
            .flatten()
            .filter_map(|o| o["id"].as_str().map(str::to_string))
            .collect()
    }
}

/// Gives every entry of a list an id derived from its parent's.
fn number_entries(parent: &str, nav: &str, list: &mut Value) {
    if let Value::Array(items) = list {
        for (i, item) in items.iter_mut().enumerate() {
            if let Value::Object(map) = item {
                map.insert("id".into(), Value::String(format!("{parent}_{nav}_{i}")));
                for (k, v) in map.iter_mut() {
                    if v.is_array() && k != "roleScopeTagIds" {
                        let id = format!("{parent}_{nav}_{i}");
                        number_entries(&id, k, v);
                    }
                }
            }
        }
    }
}

/// The view of a stored object a read returns: navigation properties only when expanded.
fn view(collection: &str, object: &Value, query: &Query) -> Value {
    let mut out = object.clone();
    if let Value::Object(map) = &mut out {
        for nav in navs(collection) {
            if query.expand.iter().any(|e| e == nav) {
                map.entry(nav.to_string()).or_insert(Value::Array(Vec::new()));
            } else {
                map.remove(nav);
            }
        }
        if let Some(select) = &query.select {
            map.retain(|k, _| select.iter().any(|s| s == k));
        }
    }
    out
}

fn matches_filter(object: &Value, filter: &Option<(String, String)>) -> bool {
    filter.as_ref().is_none_or(|(field, value)| object.get(field).and_then(Value::as_str) == Some(value))
}

impl FakeTenant {
    /// An empty tenant holding every catalogue collection and `groups`.
    pub fn new(tenant_id: &str) -> FakeTenant {
        let mut state = State::default();
        for t in ITEM_TYPES {
            state.collections.insert(t.collection.to_string(), Vec::new());
        }
        state.collections.insert(GROUPS.to_string(), Vec::new());
        FakeTenant { tenant_id: tenant_id.to_string(), page_size: 100, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Stores an object as the server would (id, timestamps, version, numbered entries); returns its id.
    pub fn insert(&self, collection: &str, body: Value) -> String {
        let mut state = self.lock();
        Self::store(&mut state, &self.tenant_id, collection, body)
    }

    fn store(state: &mut State, tenant: &str, collection: &str, body: Value) -> String {
        let name =
            body.get("displayName").or_else(|| body.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
        let id = match body.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => state.new_id(tenant, collection, &name),
        };
        let now = state.tick();
        let mut object = body;
        object["id"] = json!(id);
        object["createdDateTime"] = json!(now);
        object["lastModifiedDateTime"] = json!(now);
        if collection != GROUPS {
            object["version"] = json!(1);
        }
        for nav in navs(collection) {
            if let Some(list) = object.get_mut(nav) {
                number_entries(&id, nav, list);
            }
        }
        if object.get(enrollment::PRIORITY).is_none()
            && let Some(list) = enrollment_list(collection, &object)
        {
            // Graph numbers a new configuration itself: the next of its list.
            let last = state.priority_order(collection, &list).len();
            object[enrollment::PRIORITY] = json!(last + 1);
        }
        state.collections.entry(collection.to_string()).or_default().push(object);
        id
    }

    pub fn add_group(&self, name: &str) -> String {
        self.insert(GROUPS, json!({"displayName": name}))
    }

    /// Changes a stored object in place (drift made by someone else).
    pub fn edit(&self, collection: &str, id: &str, f: impl FnOnce(&mut Value)) {
        let mut state = self.lock();
        let now = state.tick();
        let object = state.object_mut(collection, id).expect("object to edit");
        f(object);
        object["lastModifiedDateTime"] = json!(now);
    }

    /// Deletes a stored object (drift made by someone else; the engine has no delete).
    pub fn remove(&self, collection: &str, id: &str) {
        let mut state = self.lock();
        let list = state.collections.get_mut(collection).expect("collection");
        let before = list.len();
        list.retain(|o| o["id"] != id);
        assert_eq!(list.len() + 1, before, "{collection}/{id} removed");
    }

    /// Every stored object of a collection, navigation properties included.
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        self.lock().collections.get(collection).cloned().unwrap_or_default()
    }

    /// The id of the object of `collection` with this display name (or `name`).
    pub fn id_named(&self, collection: &str, name: &str) -> String {
        let found: Vec<String> = self
            .objects(collection)
            .iter()
            .filter(|o| o.get("displayName").or_else(|| o.get("name")).and_then(Value::as_str) == Some(name))
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(found.len(), 1, "exactly one {collection} called {name}: {found:?}");
        found[0].clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn write_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Graph requests as Graph would count them (pages of listings, `$batch` of 20).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    pub fn reset_counters(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.requests = 0;
        state.writes = 0;
    }

    /// From now on, the `n`-th write (counting from the next one) is applied and then answered with
    /// a transport error, as when the process dies right after Graph accepted it.
    pub fn crash_at_write(&self, n: u64) {
        let mut state = self.lock();
        state.crash_at_write = Some(state.writes + n);
    }

    pub fn heal(&self) {
        let mut state = self.lock();
        state.crash_at_write = None;
        state.refused_collection = None;
    }

    /// From now on, every create in `collection` is refused as Graph refuses an invalid body (400).
    pub fn refuse_creates_in(&self, collection: &str) {
        self.lock().refused_collection = Some(collection.to_string());
    }

    /// The tenant's content with server bookkeeping stripped, in a canonical order: two tenants
    /// with the same objects, assignments and references compare equal.
    pub fn content(&self) -> BTreeMap<String, Vec<String>> {
        let state = self.lock();
        state
            .collections
            .iter()
            .map(|(name, objects)| {
                let mut texts: Vec<String> = objects
                    .iter()
                    .map(|o| {
                        let mut o = o.clone();
                        strip_bookkeeping(&mut o);
                        canonical_json(&o)
                    })
                    .collect();
                texts.sort();
                (name.clone(), texts)
            })
            .collect()
    }

    fn write<R>(&self, call: Call, f: impl FnOnce(&mut State) -> Result<R, TenantError>) -> Result<R, TenantError> {
        let mut state = self.lock();
        state.calls.push(call);
        state.requests += 1;
        let result = f(&mut state)?;
        state.writes += 1;
        if state.crash_at_write == Some(state.writes) {
            state.crash_at_write = None;
            return Err(err(TenantErrorKind::Unavailable, "connection reset after the request was sent"));
        }
        Ok(result)
    }

    fn do_get(&self, state: &State, path: &str) -> Result<Option<Value>, TenantError> {
        let (base, query) = parse_path(path);
        match state.resolve(&base) {
            Some(Target::Object(collection, id)) => {
                Ok(state.object(&collection, &id).map(|o| view(&collection, o, &query)))
            }
            Some(Target::Collection(collection)) => {
                let value: Vec<Value> = state.collections[&collection]
                    .iter()
                    .filter(|o| matches_filter(o, &query.filter))
                    .map(|o| view(&collection, o, &query))
                    .collect();
                Ok(Some(json!({ "value": value })))
            }
            _ => Err(err(TenantErrorKind::NotFound, format!("no resource at {base}"))),
        }
    }
}

fn strip_bookkeeping(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !matches!(k.as_str(), "createdDateTime" | "lastModifiedDateTime" | "version"));
            map.values_mut().for_each(strip_bookkeeping);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_bookkeeping),
        _ => {}
    }
}

impl TenantPort for FakeTenant {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        let mut state = self.lock();
        state.calls.push(Call::Get(path.to_string()));
        state.requests += 1;
        self.do_get(&state, path)
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        let mut state = self.lock();
        state.calls.push(Call::List(path.to_string()));
        let (base, query) = parse_path(path);
        let Some(Target::Collection(collection)) = state.resolve(&base) else {
            return Err(err(TenantErrorKind::NotFound, format!("no collection at {base}")));
        };
        let value: Vec<Value> = state.collections[&collection]
            .iter()
            .filter(|o| matches_filter(o, &query.filter))
            .map(|o| view(&collection, o, &query))
            .collect();
        state.requests += value.len().div_ceil(self.page_size).max(1) as u64;
        Ok(value)
    }

    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        let mut state = self.lock();
        state.requests += paths.len().div_ceil(20) as u64;
        let results = paths.iter().map(|p| self.do_get(&state, p)).collect();
        for p in paths {
            state.calls.push(Call::Get(p.clone()));
        }
        Ok(results)
    }

    async fn create(&self, collection: &str, body: &Value) -> Result<Value, TenantError> {
        let tenant = self.tenant_id.clone();
        self.write(Call::Create(collection.to_string()), |state| match state.resolve(collection) {
            Some(Target::Collection(name)) if state.refused_collection.as_deref() == Some(name.as_str()) => {
                Err(validation(format!("{name}: the property 'displayName' is invalid")))
            }
            Some(Target::Collection(name)) => {
                state.check_body(&name, body)?;
                let id = FakeTenant::store(state, &tenant, &name, body.clone());
                let stored = state.object(&name, &id).cloned().unwrap_or_default();
                Ok(view(&name, &stored, &Query { filter: None, expand: Vec::new(), select: None }))
            }
            Some(Target::Nav(name, id, nav)) => {
                let now = state.tick();
                let object = state.object_mut(&name, &id).ok_or_else(|| err(TenantErrorKind::NotFound, "no parent"))?;
                let list = object.as_object_mut().unwrap().entry(nav.clone()).or_insert(json!([]));
                let n = list.as_array().unwrap().len();
                let mut entry = body.clone();
                entry["id"] = json!(format!("{id}_{nav}_{n}"));
                list.as_array_mut().unwrap().push(entry.clone());
                object["lastModifiedDateTime"] = json!(now);
                Ok(entry)
            }
            _ => Err(err(TenantErrorKind::NotFound, format!("no collection at {collection}"))),
        })
    }

    async fn update(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.write(Call::Update(path.to_string()), |state| {
            let now = state.tick();
            match state.resolve(path) {
                Some(Target::Object(name, id)) => {
                    state.check_body(&name, body)?;
                    let object = state.object_mut(&name, &id).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
                    for (k, v) in body.as_object().unwrap() {
                        object[k] = v.clone();
                    }
                    object["lastModifiedDateTime"] = json!(now);
                    object["version"] = json!(object["version"].as_u64().unwrap_or(0) + 1);
                    Ok(())
                }
                Some(Target::NavEntry(name, id, nav, entry)) => {
                    let object = state.object_mut(&name, &id).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
                    let list = object
                        .get_mut(&nav)
                        .and_then(Value::as_array_mut)
                        .ok_or_else(|| err(TenantErrorKind::NotFound, "no nav"))?;
                    let found = list
                        .iter_mut()
                        .find(|e| e["id"] == entry.as_str())
                        .ok_or_else(|| err(TenantErrorKind::NotFound, "no entry"))?;
                    for (k, v) in body.as_object().unwrap() {
                        found[k] = v.clone();
                    }
                    Ok(())
                }
                _ => Err(err(TenantErrorKind::NotFound, format!("no object at {path}"))),
            }
        })
    }

    async fn replace(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.write(Call::Replace(path.to_string()), |state| {
            let now = state.tick();
            let Some(Target::Object(name, id)) = state.resolve(path) else {
                return Err(err(TenantErrorKind::NotFound, format!("no object at {path}")));
            };
            state.check_body(&name, body)?;
            let object = state.object_mut(&name, &id).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
            let mut new = body.clone();
            for keep in ["id", "createdDateTime", "assignments"] {
                if let Some(v) = object.get(keep) {
                    new[keep] = v.clone();
                }
            }
            new["lastModifiedDateTime"] = json!(now);
            new["version"] = json!(object["version"].as_u64().unwrap_or(0) + 1);
            for nav in navs(&name) {
                if let Some(list) = new.get_mut(nav) {
                    number_entries(&id, nav, list);
                }
            }
            *object = new;
            Ok(())
        })
    }

    async fn action(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        self.write(Call::Action(path.to_string()), |state| {
            let Some(Target::Nav(name, id, action)) = state.resolve(path) else {
                return Err(err(TenantErrorKind::NotFound, format!("no action at {path}")));
            };
            let t: &ItemType = ITEM_TYPES.iter().find(|t| t.collection == name).unwrap();
            if action == "setPriority" {
                return state.set_priority(&name, &id, body).map(|()| None);
            }
            let (nav, key) = match action.as_str() {
                "assign" => ("assignments", t.assign_body_key),
                "scheduleActionsForRules" => ("scheduledActionsForRule", "deviceComplianceScheduledActionForRules"),
                "targetApps" => ("apps", "apps"),
                other => return Err(validation(format!("unknown action {other}"))),
            };
            let mut list = body.get(key).cloned().ok_or_else(|| validation(format!("{key} missing in the body")))?;
            let mut check = Map::new();
            check.insert(
                if nav == "assignments" { t.assign_body_key.to_string() } else { nav.to_string() },
                list.clone(),
            );
            state.check_body(&name, &Value::Object(check))?;
            if nav == "assignments" {
                for a in list.as_array_mut().unwrap() {
                    a["source"] = json!("direct");
                }
            }
            number_entries(&id, nav, &mut list);
            let now = state.tick();
            let object = state.object_mut(&name, &id).ok_or_else(|| err(TenantErrorKind::NotFound, "gone"))?;
            object[nav] = list;
            object["lastModifiedDateTime"] = json!(now);
            Ok(None)
        })
    }
}

// ---- capture, scope, assess, execute ------------------------------------------------------------

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Captures a tenant into a backup set, as the backup crate does: whole objects, sub-resources,
/// assignments, and the names of everything they reference.
pub async fn capture(fake: &FakeTenant) -> BackupSet {
    let mut names: BTreeMap<(RefKind, String), String> = BTreeMap::new();
    for (kind, t) in [
        (RefKind::ScopeTag, "scopeTag"),
        (RefKind::Filter, "assignmentFilter"),
        (RefKind::NotificationTemplate, "notificationTemplate"),
    ] {
        for o in fake.list(item_type(t).unwrap().collection).await.unwrap() {
            names.insert((kind, text(&o, "id").unwrap()), text(&o, "displayName").unwrap());
        }
    }
    for g in fake.list(GROUPS).await.unwrap() {
        names.insert((RefKind::Group, text(&g, "id").unwrap()), text(&g, "displayName").unwrap());
    }
    names.insert((RefKind::ScopeTag, "0".into()), "Default".into());
    let mut items = Vec::new();
    for t in ITEM_TYPES {
        for listed in fake.list(t.collection).await.unwrap() {
            let id = text(&listed, "id").unwrap();
            let full = fake.get(&object_path(t, &id, true)).await.unwrap().unwrap();
            let mut resource = full.clone();
            let mut sub_resources = BTreeMap::new();
            for sub in t.sub_resources {
                if let Some(v) = resource.as_object_mut().unwrap().remove(sub.name) {
                    sub_resources.insert(sub.name.to_string(), v.as_array().cloned().unwrap_or_default());
                }
            }
            let assignments =
                resource.as_object_mut().unwrap().remove("assignments").map(|a| a.as_array().cloned().unwrap());
            let mut references = References::default();
            for (kind, rid) in collect_refs(&full) {
                let Some(name) = names.get(&(kind, rid.clone())) else { continue };
                let r = NamedRef { id: rid, display_name: name.clone() };
                match kind {
                    RefKind::ScopeTag => references.scope_tags.push(r),
                    RefKind::Filter => references.filters.push(r),
                    RefKind::Group => references.groups.push(r),
                    RefKind::NotificationTemplate => references.notification_templates.push(r),
                    RefKind::NamedLocation => references.named_locations.push(r),
                    RefKind::User => references.users.push(r),
                    RefKind::EnrollmentToken => references.enrollment_tokens.push(r),
                }
            }
            let display_name = text(&resource, "displayName").or_else(|| text(&resource, "name")).unwrap_or_default();
            items.push(BackupItem {
                item_type: t.name.to_string(),
                id,
                display_name,
                platform: platform_of(t, &resource),
                resource,
                assignments: if t.assignable { assignments.or(Some(Vec::new())) } else { None },
                sub_resources,
                references,
            });
        }
    }
    items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    let digest = sha256_digest(canonical_json(&serde_json::to_value(&items).unwrap()).as_bytes());
    BackupSet {
        tenant: Some(BackupTenant { id: fake.tenant_id.clone(), label: format!("{} label", fake.tenant_id) }),
        captured_at: Some("2026-01-01T00:00:00Z".into()),
        digest,
        items,
    }
}

/// A tenant seeded with the sample foundations, groups and `policies` policies, its backup, and the
/// scope of everything in that backup.
pub async fn seeded(tenant_id: &str, policies: usize) -> (FakeTenant, BackupSet, ResolvedScope) {
    let tenant = FakeTenant::new(tenant_id);
    seed::seed_tenant(&tenant, policies);
    let backup = capture(&tenant).await;
    let scope = scope_all(&backup);
    (tenant, backup, scope)
}

/// A tenant holding only the sample groups (the usual cross-tenant target).
pub fn groups_only(tenant_id: &str) -> FakeTenant {
    let tenant = FakeTenant::new(tenant_id);
    seed::seed_groups(&tenant);
    tenant
}

pub fn target(fake: &FakeTenant) -> RestoreTarget {
    RestoreTarget { tenant_id: fake.tenant_id.clone(), environment: Environment::Staging }
}

pub fn scope_all(backup: &BackupSet) -> ResolvedScope {
    resolve_scope(&ScopeSpec::default(), backup).unwrap()
}

pub async fn preview(fake: &FakeTenant, scope: &ResolvedScope) -> Assessment {
    assess(fake, scope, &target(fake), &EngineOptions::default()).await.unwrap()
}

/// Builds the plan from the report as a restarted controller would: through its JSON.
pub fn plan_from_stored_report(scope: &ResolvedScope, assessment: &Assessment) -> ExecutionPlan {
    let stored = serde_json::to_string(&assessment.report).unwrap();
    let report = serde_json::from_str(&stored).unwrap();
    ExecutionPlan::build(scope, &report).unwrap()
}

/// Executes an approved preview to the end.
pub async fn execute(fake: &FakeTenant, scope: &ResolvedScope, assessment: &Assessment) -> Executor {
    let plan = plan_from_stored_report(scope, assessment);
    let mut executor = Executor::new(plan, ProgressRecord::new(&assessment.digest)).unwrap();
    executor.run_to_end(fake).await.unwrap();
    executor
}

/// The keys of a report's items with the given action name.
pub fn keys_with(assessment: &Assessment, action: &str) -> Vec<String> {
    assessment
        .report
        .items
        .iter()
        .filter(|i| serde_json::to_value(i.action).unwrap() == action)
        .map(|i| i.key.clone())
        .collect()
}

pub fn server_managed_keys() -> &'static [&'static str] {
    SERVER_MANAGED
}

/// The priority list of an enrollment configuration stored in `collection` (`None`: another kind).
fn enrollment_list(collection: &str, object: &Value) -> Option<String> {
    let t = ITEM_TYPES.iter().find(|t| t.collection == collection)?;
    enrollment::priority_list(t, object)
}
