//! The API server's semantics, independent of HTTP: create, get, list, update, patch, delete
//! with resourceVersions, generations, the status subresource, finalizers, validation and GC.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission_policy::{self, AdmissionRequest, Operation};
use crate::auth::UserInfo;
use crate::crd;
use crate::error::{ApiError, FieldCause};
use crate::fields::{self, Writer};
use crate::meta::{self, metadata_mut, now_rfc3339, rv_of, to_served, to_stored};
use crate::patch::{self, PatchType};
use crate::rbac::{Attributes, Decision, RbacSnapshot};
use crate::resource::{Registry, ResourceType, meta_str};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjectKey, State};

/// Tunables of an emulator instance.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// How many changes the history keeps; older resourceVersions answer 410 Gone.
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks=true` receives a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Longest a watch stays open (a client's `timeoutSeconds` is capped by it).
    pub max_watch_timeout: Duration,
    /// Events buffered per watcher before it is closed as too slow.
    pub watch_buffer: usize,
    /// Namespaces that exist from the start.
    pub initial_namespaces: Vec<String>,
    /// Enforce RBAC on HTTP requests (off: every request is allowed, as in `AlwaysAllow` mode).
    /// The library API (`EmulatorHandle::create`, `apply_yaml`) always acts as the cluster admin.
    pub rbac: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(10),
            max_watch_timeout: Duration::from_secs(1800),
            watch_buffer: 65_536,
            initial_namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(String::from)
                .collect(),
            rbac: false,
        }
    }
}

/// Where a request points: a resource type and, for namespaced kinds, a namespace.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The served resource.
    pub resource: Arc<ResourceType>,
    /// The namespace from the path (`None` for cluster-scoped kinds or all-namespace lists).
    pub namespace: Option<String>,
}

/// How unknown fields in a write are handled (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them with a warning (the server default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteParams {
    /// `dryRun=All`: validate and answer, but store nothing.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (server-side apply).
    pub force: bool,
    /// Manager name derived from the User-Agent when `fieldManager` is absent.
    pub default_manager: String,
    /// Who writes (`None`: the cluster admin).
    pub user: Option<UserInfo>,
}

impl WriteParams {
    fn manager(&self) -> &str {
        self.field_manager.as_deref().filter(|m| !m.is_empty()).unwrap_or(&self.default_manager)
    }
}

/// Options of a list request.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// Options of a delete request (`DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Who deletes (`None`: the cluster admin).
    pub user: Option<UserInfo>,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as served after the write.
    pub object: Value,
    /// Whether the write created the object.
    pub created: bool,
    /// Warnings for the `Warning` header (e.g. unknown fields dropped).
    pub warnings: Vec<String>,
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// The object is gone; its last state.
    Deleted(Value),
    /// Finalizers hold the object; it now carries a `deletionTimestamp`.
    Pending(Value),
}

/// Which subresource a write goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The main resource.
    Main,
    /// `/status`.
    Status,
}

enum Ownership<'a> {
    Update(&'a str),
    AlreadyRecorded,
}

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// The API server core shared by the HTTP layer and the library API.
pub struct ApiCore {
    registry: RwLock<Registry>,
    state: Mutex<State>,
    /// The configuration it was started with.
    pub config: EmulatorConfig,
    stats: Mutex<BTreeMap<String, u64>>,
    rbac_enforced: AtomicBool,
    /// Faults an end-to-end campaign injects (off unless switched on).
    pub faults: crate::faults::ApiFaults,
}

impl std::fmt::Debug for ApiCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCore").field("config", &self.config).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn invalid_for(resource: &ResourceType, name: &str, causes: Vec<FieldCause>) -> ApiError {
    ApiError::invalid(&resource.kind, &resource.group, name, causes)
}

impl ApiCore {
    /// A core with the built-in kinds and the initial namespaces.
    pub fn new(config: EmulatorConfig) -> Self {
        let (sender, _) = broadcast::channel(config.watch_buffer.max(16));
        let core = Self {
            registry: RwLock::new(Registry::with_builtins()),
            state: Mutex::new(State::new(config.history_limit, sender)),
            rbac_enforced: AtomicBool::new(config.rbac),
            config,
            stats: Mutex::new(BTreeMap::new()),
            faults: crate::faults::ApiFaults::default(),
        };
        for ns in core.config.initial_namespaces.clone() {
            if let Some(scope) = core.scope("", "v1", "namespaces", None) {
                let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                // The initial namespaces are valid names; a failure here would only mean a duplicate.
                let _ = core.create(&scope, body, &WriteParams::default());
            }
        }
        if let Some(scope) = core.scope("rbac.authorization.k8s.io", "v1", "clusterroles", None) {
            for role in crate::rbac::bootstrap_cluster_roles() {
                // Fixed, valid objects in an empty store: nothing can refuse them.
                let _ = core.create(&scope, role, &WriteParams::default());
            }
        }
        core
    }

    /// Whether HTTP requests are authorized with RBAC.
    pub fn rbac_enforced(&self) -> bool {
        self.rbac_enforced.load(Ordering::SeqCst)
    }

    /// Turns RBAC enforcement on or off (e.g. after the admin has set up roles and bindings).
    pub fn set_rbac_enforced(&self, enforced: bool) {
        self.rbac_enforced.store(enforced, Ordering::SeqCst);
    }

    /// The RBAC objects now, for one decision or for a CEL `authorizer`.
    pub fn rbac_snapshot(&self, st: &State) -> RbacSnapshot {
        RbacSnapshot::from_state(st, self.rbac_enforced())
    }

    /// Decides a request with RBAC (always allowed while RBAC is off).
    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision {
        if !self.rbac_enforced() {
            return RbacSnapshot::default().authorize(user, attributes);
        }
        let st = self.state();
        self.rbac_snapshot(&st).authorize(user, attributes)
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Registry {
        match self.registry.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn registry_write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        match self.registry.write() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Locks the store (used by watches to take a consistent start).
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Counts one request under `key` (e.g. `watch restoreruns`).
    pub fn count(&self, key: String) {
        *lock(&self.stats).entry(key).or_default() += 1;
    }

    /// Request counters so far.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        lock(&self.stats).clone()
    }

    /// Resolves a scope from group, version, plural and namespace.
    pub fn scope(&self, group: &str, version: &str, plural: &str, namespace: Option<&str>) -> Option<Scope> {
        let resource = self.registry().find(group, version, plural)?;
        let namespace = if resource.namespaced { namespace.map(String::from) } else { None };
        Some(Scope { resource, namespace })
    }

    fn decode(&self, scope: &Scope, body: Value) -> Result<Value, ApiError> {
        let resource = &scope.resource;
        let Value::Object(_) = body else {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): expected a JSON object",
                resource.kind
            )));
        };
        let mut object = body;
        if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
            && api_version != resource.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != resource.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        meta::check_string_maps(&object)?;
        let meta = metadata_mut(&mut object).ok_or_else(|| ApiError::bad_request("object is not a JSON object"))?;
        match (&scope.namespace, meta.get("namespace").and_then(Value::as_str)) {
            (Some(url_ns), Some(body_ns)) if !body_ns.is_empty() && body_ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(url_ns), _) => {
                meta.insert("namespace".into(), json!(url_ns));
            }
            (None, _) if resource.namespaced => {
                return Err(ApiError::bad_request("the namespace of the object is required for a namespaced resource"));
            }
            (None, _) => {
                meta.remove("namespace");
            }
        }
        Ok(object)
    }

    /// Prunes, defaults, applies kind rules and validates an object about to be stored.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        st: &State,
        scope: &Scope,
        object: &mut Value,
        old: Option<&Value>,
        subresource: Subresource,
        params: &WriteParams,
    ) -> Result<Vec<String>, ApiError> {
        let resource = &scope.resource;
        let name = meta_str(object, "name").unwrap_or_default().to_string();
        let mut warnings = Vec::new();
        if let Some(schema) = &resource.schema {
            let removed = schema.prune(object);
            if !removed.is_empty() {
                match params.field_validation {
                    FieldValidation::Strict => {
                        let list =
                            removed.iter().map(|p| format!("unknown field \"{p}\"")).collect::<Vec<_>>().join(", ");
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
                            resource.kind, resource.version, resource.kind
                        )));
                    }
                    FieldValidation::Warn => warnings.extend(removed.iter().map(|p| format!("unknown field \"{p}\""))),
                    FieldValidation::Ignore => {}
                }
            }
            schema.apply_defaults(object);
        }
        self.admit_kind(resource, object, old)?;
        if let Some(schema) = &resource.schema {
            let served_old = old.map(|o| to_served(resource, o));
            let causes = schema.validate(object, served_old.as_ref());
            if !causes.is_empty() {
                return Err(invalid_for(resource, &name, causes));
            }
        }
        let served_old = old.map(|o| to_served(resource, o));
        let operation = if old.is_some() { Operation::Update } else { Operation::Create };
        warnings.extend(self.admit_by_policies(
            st,
            scope,
            &name,
            Some(&*object),
            served_old.as_ref(),
            operation,
            subresource,
            params.user.as_ref(),
            params.dry_run,
        )?);
        Ok(warnings)
    }

    /// ValidatingAdmissionPolicies (they never apply to the admissionregistration kinds themselves).
    #[allow(clippy::too_many_arguments)]
    fn admit_by_policies(
        &self,
        st: &State,
        scope: &Scope,
        name: &str,
        object: Option<&Value>,
        old_object: Option<&Value>,
        operation: Operation,
        subresource: Subresource,
        user: Option<&UserInfo>,
        dry_run: bool,
    ) -> Result<Vec<String>, ApiError> {
        if scope.resource.group == "admissionregistration.k8s.io" || !admission_policy::any_binding(st) {
            return Ok(Vec::new());
        }
        let admin = UserInfo::admin();
        let request = AdmissionRequest {
            operation,
            resource: &scope.resource,
            subresource: if subresource == Subresource::Status { "status" } else { "" },
            namespace: scope.namespace.as_deref().unwrap_or_default(),
            name,
            object,
            old_object,
            user: user.unwrap_or(&admin),
            dry_run,
        };
        admission_policy::admit(st, &self.registry(), Arc::new(self.rbac_snapshot(st)), &request)
    }

    fn admit_kind(&self, resource: &ResourceType, object: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let name = meta_str(object, "name").unwrap_or_default().to_string();
        match (resource.group.as_str(), resource.kind.as_str()) {
            ("", "Namespace") => {
                if old.is_none() {
                    object["spec"] = json!({"finalizers": ["kubernetes"]});
                }
                let phase =
                    if object.pointer("/metadata/deletionTimestamp").is_some() { "Terminating" } else { "Active" };
                object["status"] = json!({"phase": phase});
            }
            ("", "Secret") => {
                if let Some(Value::Object(string_data)) = object.as_object_mut().and_then(|o| o.remove("stringData")) {
                    let engine = base64::engine::general_purpose::STANDARD;
                    for (key, value) in string_data {
                        let text = value.as_str().unwrap_or_default();
                        object["data"][key] = json!(engine.encode(text));
                    }
                }
                if object.get("type").is_none() {
                    object["type"] = json!("Opaque");
                }
                self.check_immutable(resource, object, old, &["data", "type"])?;
            }
            ("", "ConfigMap") => self.check_immutable(resource, object, old, &["data", "binaryData"])?,
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
                admission_policy::check_policy(object).map_err(|causes| invalid_for(resource, &name, causes))?
            }
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
                admission_policy::check_binding(object).map_err(|causes| invalid_for(resource, &name, causes))?
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                crd::resource_types_for(object).map_err(|causes| invalid_for(resource, &name, causes))?;
                if let Some(old) = old {
                    for field in ["/spec/group", "/spec/names/plural", "/spec/scope"] {
                        if object.pointer(field) != old.pointer(field) {
                            let field_name = field.trim_start_matches('/').replace('/', ".");
                            return Err(invalid_for(
                                resource,
                                &name,
                                vec![FieldCause {
                                    reason: "FieldValueInvalid",
                                    message: format!("{field_name}: Invalid value: field is immutable"),
                                    field: field_name,
                                }],
                            ));
                        }
                    }
                }
                let status = crd::established_status(object, &now_rfc3339());
                object["status"] = status;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_immutable(
        &self,
        resource: &ResourceType,
        object: &Value,
        old: Option<&Value>,
        fields: &[&str],
    ) -> Result<(), ApiError> {
        let Some(old) = old else { return Ok(()) };
        if old.get("immutable").and_then(Value::as_bool) != Some(true) {
            return Ok(());
        }
        let name = meta_str(object, "name").unwrap_or_default();
        let mut causes = Vec::new();
        for field in fields.iter().chain(["immutable"].iter()) {
            if object.get(*field) != old.get(*field) {
                causes.push(FieldCause {
                    reason: "FieldValueForbidden",
                    message: format!("{field}: Forbidden: field is immutable when `immutable` is set"),
                    field: field.to_string(),
                });
            }
        }
        if causes.is_empty() { Ok(()) } else { Err(invalid_for(resource, name, causes)) }
    }

    fn check_namespace(&self, st: &State, scope: &Scope, name: &str) -> Result<(), ApiError> {
        let Some(ns) = &scope.namespace else { return Ok(()) };
        match st.get("namespaces", "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(namespace) if namespace.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    scope.resource.plural,
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// POST: creates an object.
    pub fn create(&self, scope: &Scope, body: Value, params: &WriteParams) -> Result<Written, ApiError> {
        let object = self.decode(scope, body)?;
        let mut st = self.state();
        let written = self.create_locked(&mut st, scope, object, params, Ownership::Update(params.manager()))?;
        self.after_write(&mut st);
        drop(st);
        self.sync_crd(scope, &written.object);
        Ok(written)
    }

    fn create_locked(
        &self,
        st: &mut State,
        scope: &Scope,
        mut object: Value,
        params: &WriteParams,
        ownership: Ownership<'_>,
    ) -> Result<Written, ApiError> {
        let resource = scope.resource.clone();
        let meta = metadata_mut(&mut object).ok_or_else(|| ApiError::bad_request("object is not a JSON object"))?;
        if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        let name = match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match meta.get("generateName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(prefix) => meta::generated_name(prefix),
                None => {
                    return Err(invalid_for(
                        &resource,
                        "",
                        vec![FieldCause {
                            reason: "FieldValueRequired",
                            message: "metadata.name: Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            },
        };
        if let Some(cause) = meta::name_cause(&resource, &name) {
            return Err(invalid_for(&resource, &name, vec![cause]));
        }
        meta.insert("name".into(), json!(name));
        for server_field in
            ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"]
        {
            meta.remove(server_field);
        }
        if matches!(ownership, Ownership::Update(_)) {
            meta.remove("managedFields");
        }
        if resource.status_subresource
            && resource.crd_name.is_some()
            && let Value::Object(map) = &mut object
        {
            map.remove("status");
        }
        let warnings = self.admit(st, scope, &mut object, None, Subresource::Main, params)?;
        self.check_namespace(st, scope, &name)?;
        let ns = scope.namespace.clone().unwrap_or_default();
        if st.get(&resource.storage, &ns, &name).is_some() {
            return Err(ApiError::already_exists(&resource.group, &resource.plural, &name));
        }
        let now = now_rfc3339();
        if let Some(meta) = metadata_mut(&mut object) {
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now));
            if resource.crd_name.is_some() {
                meta.insert("generation".into(), json!(1));
            }
        }
        if let Ownership::Update(manager) = ownership {
            let api_version = resource.api_version();
            let writer = Writer { manager, api_version: &api_version, subresource: None, now: &now };
            fields::record_update(None, &mut object, &writer);
        }
        let mut stored = to_stored(&resource, &object);
        if params.dry_run {
            return Ok(Written { object: to_served(&resource, &stored), created: true, warnings });
        }
        let rv = st.next_rv();
        if let Some(meta) = metadata_mut(&mut stored) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        st.put(&resource.storage, stored.clone(), rv);
        Ok(Written { object: to_served(&resource, &stored), created: true, warnings })
    }

    /// GET one object.
    pub fn get(&self, scope: &Scope, name: &str) -> Result<Value, ApiError> {
        let st = self.state();
        let resource = &scope.resource;
        let ns = scope.namespace.clone().unwrap_or_default();
        st.get(&resource.storage, &ns, name)
            .map(|stored| to_served(resource, stored))
            .ok_or_else(|| ApiError::not_found(&resource.group, &resource.plural, name))
    }

    /// LIST objects, with selectors, paging and resourceVersion semantics.
    pub fn list(&self, scope: &Scope, params: &ListParams) -> Result<Value, ApiError> {
        let resource = &scope.resource;
        let labels = params.label_selector.as_deref().map(LabelSelector::parse).transpose()?;
        let fields = params.field_selector.as_deref().map(|f| FieldSelector::parse(f, resource)).transpose()?;
        let st = self.state();
        let (snapshot_rv, start_after) = match params.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, key) = decode_continue(token)?;
                (Some(rv), Some(key))
            }
            None => {
                let exact = params.resource_version_match.as_deref() == Some("Exact");
                let rv = params.resource_version.as_deref().filter(|rv| !rv.is_empty() && *rv != "0");
                match (exact, rv) {
                    (true, Some(rv)) => {
                        let rv = rv
                            .parse::<u64>()
                            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
                        (Some(rv), None)
                    }
                    _ => (None, None),
                }
            }
        };
        let list_rv = snapshot_rv.unwrap_or_else(|| st.current_rv());
        let items = match snapshot_rv {
            Some(rv) => st.snapshot_at(&resource.storage, scope.namespace.as_deref(), rv).ok_or_else(|| {
                if params.continue_token.is_some() {
                    ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         You can start a new list without the continue parameter, or use the continue token \
                         in this response to retrieve the remainder of the results. Continuing with the provided \
                         token results in an inconsistent list - objects that were created, modified, or deleted \
                         between the time the first chunk was returned and now may show up in the list.",
                    )
                } else {
                    ApiError::expired(format!("too old resource version: {rv} ({})", st.oldest_rv() + 1))
                }
            })?,
            None => st.list(&resource.storage, scope.namespace.as_deref()),
        };
        drop(st);
        let mut selected: Vec<(ObjectKey, Value)> = items
            .into_iter()
            .filter(|(key, _)| start_after.as_ref().is_none_or(|after| key > after))
            .map(|(key, stored)| (key, to_served(resource, &stored)))
            .filter(|(_, obj)| labels.as_ref().is_none_or(|l| l.matches_object(obj)))
            .filter(|(_, obj)| fields.as_ref().is_none_or(|f| f.matches(obj)))
            .collect();
        let mut list_meta = json!({"resourceVersion": list_rv.to_string()});
        if let Some(limit) = params.limit.filter(|l| *l > 0)
            && selected.len() > limit
        {
            let remaining = selected.len() - limit;
            selected.truncate(limit);
            if let Some((last_key, _)) = selected.last() {
                list_meta["continue"] = json!(encode_continue(list_rv, last_key));
            }
            if labels.is_none() && fields.is_none() {
                list_meta["remainingItemCount"] = json!(remaining);
            }
        }
        Ok(json!({
            "apiVersion": resource.api_version(),
            "kind": resource.list_kind,
            "metadata": list_meta,
            "items": selected.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
        }))
    }

    /// PUT: replaces an object (or its status).
    pub fn update(
        &self,
        scope: &Scope,
        name: &str,
        body: Value,
        subresource: Subresource,
        params: &WriteParams,
    ) -> Result<Written, ApiError> {
        let object = self.decode(scope, body)?;
        let body_name = meta_str(&object, "name").unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut st = self.state();
        let resource = &scope.resource;
        let ns = scope.namespace.clone().unwrap_or_default();
        let old = st
            .get(&resource.storage, &ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&resource.group, &resource.plural, name))?;
        let body_rv = meta_str(&object, "resourceVersion").unwrap_or_default().to_string();
        if body_rv.is_empty() && resource.crd_name.is_some() {
            return Err(invalid_for(
                resource,
                name,
                vec![FieldCause {
                    reason: "FieldValueInvalid",
                    message: "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }],
            ));
        }
        let written = self.update_locked(
            &mut st,
            scope,
            name,
            object,
            old,
            subresource,
            params,
            Ownership::Update(params.manager()),
        )?;
        self.after_write(&mut st);
        drop(st);
        self.sync_crd(scope, &written.object);
        Ok(written)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_locked(
        &self,
        st: &mut State,
        scope: &Scope,
        name: &str,
        mut object: Value,
        old: Value,
        subresource: Subresource,
        params: &WriteParams,
        ownership: Ownership<'_>,
    ) -> Result<Written, ApiError> {
        let resource = scope.resource.clone();
        let ns = scope.namespace.clone().unwrap_or_default();
        let body_rv = meta_str(&object, "resourceVersion").unwrap_or_default().to_string();
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or_default().to_string();
        if !body_rv.is_empty() && body_rv != old_rv {
            return Err(ApiError::conflict(
                &resource.group,
                &resource.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let old_served = to_served(&resource, &old);
        if let Some(meta) = metadata_mut(&mut object) {
            meta.insert("name".into(), json!(name));
        }
        if subresource == Subresource::Status {
            let status = object.get("status").cloned();
            let mut merged = old_served.clone();
            match status {
                Some(status) => merged["status"] = status,
                None => {
                    if let Value::Object(map) = &mut merged {
                        map.remove("status");
                    }
                }
            }
            if let (Some(meta), Some(new_managed)) =
                (metadata_mut(&mut merged), object.pointer("/metadata/managedFields").cloned())
                && matches!(ownership, Ownership::AlreadyRecorded)
            {
                meta.insert("managedFields".into(), new_managed);
            }
            object = merged;
        } else if resource.status_subresource {
            match old_served.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    if let Value::Object(map) = &mut object {
                        map.remove("status");
                    }
                }
            }
        }
        // Server-managed metadata always comes from the stored object.
        let old_meta = old_served.get("metadata").cloned().unwrap_or_else(|| json!({}));
        if let Some(meta) = metadata_mut(&mut object) {
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            match old_meta.get("generateName") {
                Some(g) => meta.insert("generateName".into(), g.clone()),
                None => meta.remove("generateName"),
            };
            if matches!(ownership, Ownership::Update(_)) {
                match old_meta.get("managedFields") {
                    Some(m) => meta.insert("managedFields".into(), m.clone()),
                    None => meta.remove("managedFields"),
                };
            }
        }
        let deleting = old_served.pointer("/metadata/deletionTimestamp").is_some();
        if deleting {
            let before = meta::finalizers(&old_served);
            let added: Vec<String> = meta::finalizers(&object).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(invalid_for(
                    &resource,
                    name,
                    vec![FieldCause {
                        reason: "FieldValueForbidden",
                        message: format!(
                            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        let warnings = self.admit(st, scope, &mut object, Some(&old), subresource, params)?;
        let mut stored = to_stored(&resource, &object);
        if let Some(meta) = metadata_mut(&mut stored) {
            meta.insert("resourceVersion".into(), json!(old_rv));
        }
        if meta::without_volatile(&stored) == meta::without_volatile(&old) {
            return Ok(Written { object: old_served, created: false, warnings });
        }
        if resource.crd_name.is_some() {
            let drop_status = resource.status_subresource;
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            let changed =
                meta::generation_relevant(&stored, drop_status) != meta::generation_relevant(&old, drop_status);
            if let Some(meta) = metadata_mut(&mut stored) {
                meta.insert("generation".into(), json!(if changed { generation + 1 } else { generation }));
            }
        }
        if let Ownership::Update(manager) = ownership {
            let now = now_rfc3339();
            let api_version = resource.api_version();
            let sub = (subresource == Subresource::Status).then_some("status");
            let writer = Writer { manager, api_version: &api_version, subresource: sub, now: &now };
            fields::record_update(Some(&old), &mut stored, &writer);
        }
        if params.dry_run {
            return Ok(Written { object: to_served(&resource, &stored), created: false, warnings });
        }
        let rv = st.next_rv();
        if let Some(meta) = metadata_mut(&mut stored) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if deleting && meta::finalizers(&stored).is_empty() {
            st.remove(&resource.storage, &ns, name, stored.clone(), rv);
        } else {
            st.put(&resource.storage, stored.clone(), rv);
        }
        Ok(Written { object: to_served(&resource, &stored), created: false, warnings })
    }

    /// PATCH: merge, JSON, strategic merge or server-side apply.
    pub fn patch(
        &self,
        scope: &Scope,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        subresource: Subresource,
        params: &WriteParams,
    ) -> Result<Written, ApiError> {
        let resource = scope.resource.clone();
        let patch_doc: Value = if patch_type == PatchType::Apply {
            serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        if patch_type == PatchType::Strategic && !resource.builtin {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let mut st = self.state();
        let ns = scope.namespace.clone().unwrap_or_default();
        let existing = st.get(&resource.storage, &ns, name).cloned();
        let written = match (patch_type, existing) {
            (PatchType::Apply, existing) => {
                let manager = params.field_manager.clone().filter(|m| !m.is_empty()).ok_or_else(|| {
                    invalid_for(
                        &resource,
                        name,
                        vec![FieldCause {
                            reason: "FieldValueRequired",
                            message: "fieldManager: Required value: is required for apply patch".into(),
                            field: "fieldManager".into(),
                        }],
                    )
                })?;
                let mut applied = self.decode(scope, patch_doc)?;
                let applied_name = meta_str(&applied, "name").unwrap_or_default().to_string();
                if applied_name.is_empty() && existing.is_some() {
                    // Applied to a live object, a body may leave the name out (common for status
                    // applies): the merge keeps the live name. Creating, the body must name the
                    // object, as the API server checks the applied object's name against the URL.
                    if let Some(meta) = metadata_mut(&mut applied) {
                        meta.insert("name".into(), json!(name));
                    }
                } else if applied_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({applied_name}) does not match the name on the URL ({name})"
                    )));
                }
                let now = now_rfc3339();
                let api_version = resource.api_version();
                let sub = (subresource == Subresource::Status).then_some("status");
                let writer = Writer { manager: &manager, api_version: &api_version, subresource: sub, now: &now };
                let live = existing.as_ref().map(|o| to_served(&resource, o));
                let merged = fields::apply(live.as_ref(), &applied, &writer, params.force).map_err(|conflicts| {
                    let summary = conflicts
                        .iter()
                        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
                        .collect::<Vec<_>>()
                        .join("\n- ");
                    let causes = conflicts
                        .iter()
                        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                        .collect();
                    let message = if conflicts.len() == 1 {
                        format!("Apply failed with 1 conflict: {summary}")
                    } else {
                        format!("Apply failed with {} conflicts: {summary}", conflicts.len())
                    };
                    ApiError::apply_conflict(message, causes)
                })?;
                match existing {
                    Some(old) => self.update_locked(
                        &mut st,
                        scope,
                        name,
                        merged,
                        old,
                        subresource,
                        params,
                        Ownership::AlreadyRecorded,
                    )?,
                    None => {
                        if subresource == Subresource::Status {
                            return Err(ApiError::not_found(&resource.group, &resource.plural, name));
                        }
                        self.create_locked(&mut st, scope, merged, params, Ownership::AlreadyRecorded)?
                    }
                }
            }
            (_, None) => return Err(ApiError::not_found(&resource.group, &resource.plural, name)),
            (patch_type, Some(old)) => {
                let mut target = to_served(&resource, &old);
                match patch_type {
                    PatchType::Merge => patch::merge_patch(&mut target, &patch_doc),
                    PatchType::Strategic => patch::strategic_merge_patch(&mut target, &patch_doc),
                    _ => patch::json_patch(&mut target, &patch_doc)?,
                }
                let target = self.decode(scope, target)?;
                let patched_name = meta_str(&target, "name").unwrap_or_default();
                if patched_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({patched_name}) does not match the name on the URL ({name})"
                    )));
                }
                self.update_locked(
                    &mut st,
                    scope,
                    name,
                    target,
                    old,
                    subresource,
                    params,
                    Ownership::Update(params.manager()),
                )?
            }
        };
        self.after_write(&mut st);
        drop(st);
        self.sync_crd(scope, &written.object);
        Ok(written)
    }

    /// DELETE one object, honouring preconditions, finalizers and the propagation policy.
    pub fn delete(&self, scope: &Scope, name: &str, params: &DeleteParams) -> Result<DeleteOutcome, ApiError> {
        let resource = scope.resource.clone();
        let ns = scope.namespace.clone().unwrap_or_default();
        let mut st = self.state();
        let current = st
            .get(&resource.storage, &ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&resource.group, &resource.plural, name))?;
        let preconditions = [
            ("UID", "uid", &params.precondition_uid),
            ("ResourceVersion", "resourceVersion", &params.precondition_resource_version),
        ];
        for (label, field, expected) in preconditions {
            let actual = meta_str(&current, field).unwrap_or_default();
            if let Some(expected) = expected
                && expected != actual
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.plural,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {expected}, {label} in object meta: {actual}"
                    ),
                ));
            }
        }
        let served = to_served(&resource, &current);
        self.admit_by_policies(
            &st,
            scope,
            name,
            None,
            Some(&served),
            Operation::Delete,
            Subresource::Main,
            params.user.as_ref(),
            params.dry_run,
        )?;
        if params.dry_run {
            return Ok(DeleteOutcome::Deleted(served));
        }
        let policy = params.propagation_policy.as_deref();
        if let Some(p) = policy
            && !matches!(p, "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!("unsupported propagation policy: {p}")));
        }
        let outcome = delete_locked(&mut st, &resource.storage, &ns, name, policy);
        self.after_write(&mut st);
        drop(st);
        if resource.kind == "CustomResourceDefinition" && matches!(outcome, DeleteOutcome::Deleted(_)) {
            self.unregister_crd(name);
        }
        Ok(match outcome {
            DeleteOutcome::Deleted(o) => DeleteOutcome::Deleted(to_served(&resource, &o)),
            DeleteOutcome::Pending(o) => DeleteOutcome::Pending(to_served(&resource, &o)),
        })
    }

    /// DELETE a collection: every object the list parameters select.
    pub fn delete_collection(
        &self,
        scope: &Scope,
        list: &ListParams,
        params: &DeleteParams,
    ) -> Result<Value, ApiError> {
        let listed = self.list(scope, &ListParams { limit: None, continue_token: None, ..list.clone() })?;
        let mut deleted = Vec::new();
        for item in listed["items"].as_array().cloned().unwrap_or_default() {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let item_scope = Scope {
                resource: scope.resource.clone(),
                namespace: meta_str(&item, "namespace").map(String::from).or(scope.namespace.clone()),
            };
            match self.delete(&item_scope, &name, params) {
                Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => deleted.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self.state().current_rv();
        Ok(json!({
            "apiVersion": scope.resource.api_version(),
            "kind": scope.resource.list_kind,
            "metadata": {"resourceVersion": rv.to_string()},
            "items": deleted,
        }))
    }

    /// Registers or refreshes the resource types of a CRD after a write to it.
    fn sync_crd(&self, scope: &Scope, served: &Value) {
        if scope.resource.kind != "CustomResourceDefinition" {
            return;
        }
        let Some(name) = meta_str(served, "name") else { return };
        let still_stored = self.state().get(&scope.resource.storage, "", name).cloned();
        match still_stored {
            Some(crd) if crd.pointer("/metadata/deletionTimestamp").is_none() => {
                if let Ok(types) = crd::resource_types_for(&crd) {
                    self.registry_write().replace_crd(name, types);
                    tracing::debug!(crd = name, "registered custom resource");
                }
            }
            _ => self.unregister_crd(name),
        }
    }

    fn unregister_crd(&self, name: &str) {
        let storages: Vec<String> = {
            let registry = self.registry();
            registry.all().iter().filter(|t| t.crd_name.as_deref() == Some(name)).map(|t| t.storage.clone()).collect()
        };
        self.registry_write().replace_crd(name, Vec::new());
        let mut st = self.state();
        for storage in storages {
            for ((ns, obj_name), object) in st.list(&storage, None) {
                let rv = st.next_rv();
                let mut last = object;
                if let Some(meta) = metadata_mut(&mut last) {
                    meta.insert("resourceVersion".into(), json!(rv.to_string()));
                }
                st.remove(&storage, &ns, &obj_name, last, rv);
            }
        }
        self.after_write(&mut st);
        tracing::debug!(crd = name, "unregistered custom resource and removed its objects");
    }

    /// Garbage collection and namespace cleanup until nothing changes.
    fn after_write(&self, st: &mut State) {
        if !st.take_gc_needed() {
            return;
        }
        for _round in 0..64 {
            if !collect_garbage_once(st) {
                st.take_gc_needed();
                return;
            }
        }
        tracing::warn!("garbage collection did not settle after 64 rounds");
    }
}

fn encode_continue(rv: u64, key: &ObjectKey) -> String {
    let token = json!({"rv": rv, "ns": key.0, "name": key.1});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, ObjectKey), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = value.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let ns = value.get("ns").and_then(Value::as_str).ok_or_else(bad)?.to_string();
    let name = value.get("name").and_then(Value::as_str).ok_or_else(bad)?.to_string();
    Ok((rv, (ns, name)))
}

/// Deletes or marks an object for deletion (store-level; used by the API and the collector).
fn delete_locked(st: &mut State, storage: &str, ns: &str, name: &str, policy: Option<&str>) -> DeleteOutcome {
    let Some(mut object) = st.get(storage, ns, name).cloned() else {
        return DeleteOutcome::Deleted(Value::Null);
    };
    let mut finalizers = meta::finalizers(&object);
    let already_deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    let is_namespace = storage == "namespaces";
    let extra = match policy {
        Some("Foreground") => Some(FOREGROUND),
        Some("Orphan") => Some(ORPHAN),
        _ => None,
    };
    if let Some(f) = extra
        && !already_deleting
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_string());
    }
    if finalizers.is_empty() && !is_namespace {
        let rv = st.next_rv();
        if let Some(meta) = metadata_mut(&mut object) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        st.remove(storage, ns, name, object.clone(), rv);
        return DeleteOutcome::Deleted(object);
    }
    if already_deleting {
        return DeleteOutcome::Pending(object);
    }
    meta::set_finalizers(&mut object, &finalizers);
    let rv = st.next_rv();
    if let Some(meta) = metadata_mut(&mut object) {
        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if let Some(generation) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
            meta.insert("generation".into(), json!(generation + 1));
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    if is_namespace {
        object["status"] = json!({"phase": "Terminating"});
    }
    st.put(storage, object.clone(), rv);
    DeleteOutcome::Pending(object)
}

fn owner_exists(st: &State, dependent_ns: &str, owner: &Value) -> bool {
    let Some(uid) = owner.get("uid").and_then(Value::as_str) else { return false };
    match st.by_uid(uid) {
        Some((_, (owner_ns, owner_name))) => {
            owner.get("name").and_then(Value::as_str) == Some(owner_name.as_str())
                && (owner_ns.is_empty() || owner_ns == dependent_ns)
        }
        None => false,
    }
}

/// Writes a modified object back with a fresh resourceVersion.
fn rewrite(st: &mut State, storage: &str, mut object: Value) {
    let rv = st.next_rv();
    if let Some(meta) = metadata_mut(&mut object) {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    let ns = meta_str(&object, "namespace").unwrap_or_default().to_string();
    let name = meta_str(&object, "name").unwrap_or_default().to_string();
    let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    if deleting && meta::finalizers(&object).is_empty() {
        st.remove(storage, &ns, &name, object, rv);
    } else {
        st.put(storage, object, rv);
    }
}

/// One pass of the garbage collector and namespace controller; true when it changed anything.
fn collect_garbage_once(st: &mut State) -> bool {
    let mut all: Vec<(String, Value)> = Vec::new();
    for storage in st.storages() {
        for (_, object) in st.list(&storage, None) {
            all.push((storage.clone(), object));
        }
    }
    let uid_of = |o: &Value| meta_str(o, "uid").unwrap_or_default().to_string();
    let owned_by = |o: &Value, uid: &str| {
        o.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(uid)))
    };
    for (storage, object) in &all {
        if object.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let uid = uid_of(object);
        let finalizers = meta::finalizers(object);
        if finalizers.iter().any(|f| f == ORPHAN) {
            for (dep_storage, dependent) in all.iter().filter(|(_, d)| owned_by(d, &uid)) {
                let mut dependent = dependent.clone();
                if let Some(Value::Array(refs)) = dependent.pointer_mut("/metadata/ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                }
                rewrite(st, dep_storage, dependent);
            }
            let mut owner = object.clone();
            meta::set_finalizers(&mut owner, &finalizers.iter().filter(|f| *f != ORPHAN).cloned().collect::<Vec<_>>());
            rewrite(st, storage, owner);
            return true;
        }
        if finalizers.iter().any(|f| f == FOREGROUND) {
            let dependents: Vec<&(String, Value)> = all.iter().filter(|(_, d)| owned_by(d, &uid)).collect();
            if dependents.is_empty() {
                let mut owner = object.clone();
                let rest: Vec<String> = finalizers.iter().filter(|f| *f != FOREGROUND).cloned().collect();
                meta::set_finalizers(&mut owner, &rest);
                rewrite(st, storage, owner);
                return true;
            }
            let mut changed = false;
            for (dep_storage, dependent) in dependents {
                if dependent.pointer("/metadata/deletionTimestamp").is_none() {
                    let ns = meta_str(dependent, "namespace").unwrap_or_default().to_string();
                    let name = meta_str(dependent, "name").unwrap_or_default().to_string();
                    delete_locked(st, dep_storage, &ns, &name, Some("Foreground"));
                    changed = true;
                }
            }
            if changed {
                return true;
            }
        }
        if storage == "namespaces" {
            let ns = meta_str(object, "name").unwrap_or_default().to_string();
            let mut changed = false;
            let mut remaining = 0;
            for (obj_storage, contained) in all.iter().filter(|(_, o)| meta_str(o, "namespace") == Some(ns.as_str())) {
                remaining += 1;
                if contained.pointer("/metadata/deletionTimestamp").is_none() {
                    let name = meta_str(contained, "name").unwrap_or_default().to_string();
                    delete_locked(st, obj_storage, &ns, &name, None);
                    changed = true;
                }
            }
            if remaining == 0 {
                let rv = st.next_rv();
                let mut last = object.clone();
                if let Some(meta) = metadata_mut(&mut last) {
                    meta.insert("resourceVersion".into(), json!(rv.to_string()));
                }
                last["spec"] = json!({});
                st.remove(storage, "", &ns, last, rv);
                return true;
            }
            if changed {
                return true;
            }
        }
    }
    for (storage, object) in &all {
        let Some(refs) = object.pointer("/metadata/ownerReferences").and_then(Value::as_array) else { continue };
        if refs.is_empty() || object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let ns = meta_str(object, "namespace").unwrap_or_default().to_string();
        let live: Vec<Value> = refs.iter().filter(|r| owner_exists(st, &ns, r)).cloned().collect();
        if live.is_empty() {
            let name = meta_str(object, "name").unwrap_or_default().to_string();
            tracing::debug!(storage = %storage, namespace = %ns, name = %name, "collecting object whose owners are gone");
            delete_locked(st, storage, &ns, &name, Some("Background"));
            return true;
        }
        if live.len() != refs.len() {
            let mut updated = object.clone();
            if let Some(meta) = metadata_mut(&mut updated) {
                meta.insert("ownerReferences".into(), Value::Array(live));
            }
            rewrite(st, storage, updated);
            return true;
        }
    }
    false
}

/// Expired-watch helper: whether a resourceVersion can still be watched from.
pub fn rv_is_watchable(st: &State, rv: u64) -> bool {
    rv >= st.oldest_rv()
}

/// The resourceVersion of a served object (used by watch code).
pub fn object_rv(object: &Value) -> u64 {
    rv_of(object)
}
