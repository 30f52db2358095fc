//! A stateful Microsoft Graph simulator for Intune, used by tests and the demo: an Entra token
//! endpoint, the catalogue's `/beta` collections, groups, `$batch`, throttling and seeded faults.

mod admx;
mod api;
mod assignments;
pub mod auth;
mod dep;
mod enrollment;
pub mod faults;
mod intents;
pub mod model;
mod odata;
mod policies;
mod reply;
pub mod seed;
mod server;
mod state;
mod store;
pub mod throttle;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use restore_core::backup::BackupSet;
use restore_core::catalog::item_type;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{AppCredential, CredentialError, FEDERATION_AUDIENCE, FederatedCredential, JWT_BEARER};
pub use faults::{FaultConfig, Storm};
pub use seed::{SeedError, SeedSummary};
pub use state::RequestRecord;
pub use throttle::ThrottleConfig;

use crate::api::{DEFAULT_PAGE_SIZE, Paging, SETTINGS_PAGE_SIZE};
use crate::server::Shared;
use crate::state::SimState;
use crate::store::{GROUPS, IdSource, Tenant};

/// How the simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Listen address (default `127.0.0.1:0`: loopback, any free port).
    pub listen: SocketAddr,
    /// Write limit per app per tenant; `None` disables throttling. Default 100 writes / 20 s.
    pub throttle: Option<ThrottleConfig>,
    /// Collection page size when the client sends no `$top` (default 100).
    pub page_size: usize,
    /// Settings Catalog `settings` page size (default 25, as Graph).
    pub settings_page_size: usize,
    /// Lifetime of issued tokens (default 3599 s).
    pub token_lifetime: Duration,
    /// Seed for object ids; `None` draws them at random.
    pub id_seed: Option<u64>,
    /// A fixed server time (RFC 3339) for every timestamp the simulator sets; `None` is the clock.
    pub frozen_time: Option<String>,
    /// Faults to inject from the start.
    pub faults: FaultConfig,
    /// Serve `GET /_sim/state` (the dump of every tenant). Default off.
    pub state_endpoint: bool,
    /// How many requests the log keeps (oldest dropped first).
    pub request_log_capacity: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            throttle: Some(ThrottleConfig::default()),
            page_size: DEFAULT_PAGE_SIZE,
            settings_page_size: SETTINGS_PAGE_SIZE,
            token_lifetime: Duration::from_secs(3599),
            id_seed: None,
            frozen_time: None,
            faults: FaultConfig::default(),
            state_endpoint: false,
            request_log_capacity: 100_000,
        }
    }
}

/// Errors of the simulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// No such tenant (add it first).
    #[error("tenant {0:?} does not exist in the simulator")]
    UnknownTenant(String),
    /// A credential could not be registered.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Seeding failed.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// A direct insert was refused by the simulated API.
    #[error("the simulator refused the object ({status}): {body}")]
    Refused {
        /// HTTP status the API answered.
        status: u16,
        /// The error body.
        body: Value,
    },
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds the listener and serves until the handle is dropped.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let listener =
            TcpListener::bind(config.listen).await.map_err(|source| SimError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: config.listen, source })?;
        let paging =
            Paging { page_size: config.page_size.max(1), settings_page_size: config.settings_page_size.max(1) };
        let state = SimState::new(
            IdSource::new(config.id_seed, config.frozen_time.clone()),
            throttle::WriteThrottle::new(config.throttle),
            faults::FaultState::new(config.faults.clone()),
            paging,
            config.token_lifetime,
            config.request_log_capacity.max(1),
        );
        let shared = Arc::new(Shared { state: Mutex::new(state), state_endpoint: config.state_endpoint });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), shutdown_rx));
        tracing::info!(%addr, "graph-sim listening");
        Ok(SimHandle { shared, addr, shutdown, task })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl SimHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Graph endpoint (`IntuneTenant.spec.graph.endpoint`), without `/beta`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The login authority (`IntuneTenant.spec.graph.authority`); token endpoint at
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn authority_url(&self) -> String {
        self.base_url()
    }

    /// Adds an empty tenant (with the built-in `Default` scope tag); no-op if it exists.
    pub fn add_tenant(&self, tenant_id: &str) {
        let mut state = self.shared.lock();
        let SimState { tenants, ids, .. } = &mut *state;
        tenants.entry(tenant_id.to_string()).or_insert_with(|| Tenant::new(ids));
    }

    /// Registers an app (or adds a credential to it) in a tenant.
    pub fn register_app(&self, tenant_id: &str, client_id: &str, credential: AppCredential) -> Result<(), SimError> {
        let mut state = self.shared.lock();
        let tenant = state.tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        tenant.apps.entry(client_id.to_string()).or_default().add(credential)?;
        Ok(())
    }

    /// Adds an Apple enrollment-program token (`depOnboardingSetting`) called `token_name`; returns its id.
    pub fn add_dep_token(&self, tenant_id: &str, token_name: &str) -> Result<String, SimError> {
        let mut state = self.shared.lock();
        let SimState { tenants, ids, .. } = &mut *state;
        let tenant = tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        let (id, seq, now) = (ids.guid(), ids.next_seq(), ids.now());
        Ok(dep::add_token(tenant, id, token_name, seq, &now))
    }

    /// Creates an Entra security group; returns its id.
    pub fn add_group(&self, tenant_id: &str, display_name: &str) -> Result<String, SimError> {
        let mut state = self.shared.lock();
        let SimState { tenants, ids, .. } = &mut *state;
        let tenant = tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        let id = ids.guid();
        api::create_group_resource(tenant, ids, id.clone(), store::object(json!({"displayName": display_name})));
        Ok(id)
    }

    /// Creates a scope tag; returns its id.
    pub fn add_scope_tag(&self, tenant_id: &str, display_name: &str) -> Result<String, SimError> {
        self.insert_object(tenant_id, "scopeTag", json!({"displayName": display_name, "description": ""}))
    }

    /// Creates an assignment filter; returns its id.
    pub fn add_assignment_filter(
        &self,
        tenant_id: &str,
        display_name: &str,
        platform: &str,
        rule: &str,
    ) -> Result<String, SimError> {
        self.insert_object(
            tenant_id,
            "assignmentFilter",
            json!({"displayName": display_name, "platform": platform, "rule": rule}),
        )
    }

    /// Creates an object of a catalogue type through the simulated API's own rules (no token,
    /// no throttle, no faults); returns its id.
    pub fn insert_object(&self, tenant_id: &str, type_name: &str, body: Value) -> Result<String, SimError> {
        let ty = item_type(type_name).ok_or_else(|| {
            SimError::Seed(SeedError::UnknownType { key: type_name.to_string(), item_type: type_name.to_string() })
        })?;
        let mut state = self.shared.lock();
        let SimState { tenants, ids, paging, .. } = &mut *state;
        let tenant = tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        let base = format!("{}/beta", self.base_url());
        let mut api = api::Api { tenant_id, tenant, ids, paging: *paging, base: &base };
        let reply =
            api.handle(&api::ApiRequest { method: "POST", path: ty.collection, raw_query: "", body: Some(body) });
        match (reply.status, reply.body) {
            (201, Some(created)) => Ok(created.get("id").and_then(Value::as_str).unwrap_or_default().to_string()),
            (status, body) => Err(SimError::Refused { status, body: body.unwrap_or(Value::Null) }),
        }
    }

    /// Loads a backup into a tenant, keeping its ids, and creates the groups, scope tags,
    /// filters and notification templates its items reference.
    pub fn seed(&self, tenant_id: &str, set: &BackupSet) -> Result<SeedSummary, SimError> {
        let mut state = self.shared.lock();
        let SimState { tenants, ids, .. } = &mut *state;
        let tenant = tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        Ok(seed::seed_tenant(tenant, ids, set)?)
    }

    /// A deterministic JSON dump of a tenant: `{"apps": [...], "collections": {path: {id: {...}}}}`
    /// with keys sorted; each object has `resource` and, when present, `assignments` and its
    /// sub-collections.
    pub fn dump(&self, tenant_id: &str) -> Result<Value, SimError> {
        let state = self.shared.lock();
        let tenant = state.tenants.get(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        Ok(tenant.dump())
    }

    /// The dump of every tenant: `{"tenants": {id: dump}}`.
    pub fn dump_all(&self) -> Value {
        let state = self.shared.lock();
        let tenants: Map<String, Value> = state.tenants.iter().map(|(id, t)| (id.clone(), t.dump())).collect();
        json!({"tenants": tenants})
    }

    /// The built-in ADMX definitions every simulated tenant has (with their `presentations`), as
    /// `GET deviceManagement/groupPolicyDefinitions?$expand=presentations` answers them.
    pub fn built_in_admx_definitions() -> Vec<Value> {
        admx::built_in().to_vec()
    }

    /// Ingests a custom ADMX definition (with its `presentations`) into a tenant, as importing an
    /// ADMX file in the Intune admin center does: its id and its presentations' ids are the tenant's
    /// own unless the body gives them. Returns the definition's id.
    pub fn ingest_admx_definition(&self, tenant_id: &str, definition: Value) -> Result<String, SimError> {
        let mut state = self.shared.lock();
        let SimState { tenants, ids, .. } = &mut *state;
        let tenant = tenants.get_mut(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        Ok(admx::ingest(tenant, store::object(definition), &mut || ids.guid()))
    }

    /// The objects of one collection (`deviceManagement/deviceConfigurations`, `groups`…), in
    /// creation order.
    pub fn objects(&self, tenant_id: &str, collection: &str) -> Result<Vec<Map<String, Value>>, SimError> {
        let state = self.shared.lock();
        let tenant = state.tenants.get(tenant_id).ok_or_else(|| SimError::UnknownTenant(tenant_id.to_string()))?;
        Ok(tenant
            .collections
            .get(collection)
            .map(|c| c.ordered().into_iter().map(|e| e.resource.clone()).collect())
            .unwrap_or_default())
    }

    /// Ids of the groups with this display name.
    pub fn group_ids(&self, tenant_id: &str, display_name: &str) -> Result<Vec<String>, SimError> {
        Ok(self
            .objects(tenant_id, GROUPS)?
            .into_iter()
            .filter(|g| g.get("displayName").and_then(Value::as_str) == Some(display_name))
            .filter_map(|g| g.get("id").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    /// Replaces the fault configuration (the generator restarts from its seed).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.lock().faults = faults::FaultState::new(faults);
    }

    /// Replaces the write limit (and forgets recent writes).
    pub fn set_throttle(&self, throttle: Option<ThrottleConfig>) {
        self.shared.lock().throttle.set(throttle);
    }

    /// Invalidates every issued token.
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.revoke_all();
    }

    /// The request log, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Writes (POST, PATCH, PUT, DELETE, batched or not) the API applied, including those whose
    /// answer a fault then replaced or dropped.
    pub fn applied_write_count(&self) -> usize {
        let applied = |r: &RequestRecord| {
            (200..300).contains(&r.status) || r.fault.as_deref() == Some("injected-504-after-write")
        };
        self.shared.lock().log.iter().filter(|r| r.write && applied(r)).count()
    }

    /// Requests answered 429 by the throttle (injected 429s not counted).
    pub fn throttled_count(&self) -> usize {
        self.shared.lock().log.iter().filter(|r| r.status == 429 && r.fault.is_none()).count()
    }
}
