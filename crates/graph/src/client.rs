//! The Graph client: builds requests under `{endpoint}/beta/`, authenticates, paces writes,
//! retries what is safe to retry, follows next links, batches reads (several batches in flight,
//! bounded per tenant), and implements `TenantPort`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, Url};
use restore_core::api::IntuneTenantSpec;
use restore_core::catalog::{ITEM_TYPES, IdentityKey};
use restore_core::tenant::{TenantError, TenantPort};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::credentials::Credentials;
use crate::endpoints::EndpointAllowlist;
use crate::error::GraphError;
use crate::pacing::{WriteBudgets, WritePacer};
use crate::reads::{DEFAULT_READ_CONCURRENCY, ReadGate};
use crate::retry::{RetryBudget, RetryPolicy, retry_after, sleep_for};
use crate::stats::GraphStats;
use crate::token::{TokenSettings, TokenSource, describe_reqwest};

/// Most requests Graph accepts in one `$batch`.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// Timeouts, retry limits and safety switches. Tests shrink them; production keeps the defaults.
#[derive(Clone, Debug)]
pub struct GraphOptions {
    /// Timeout of one HTTP request (answer included).
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Retries of 429, 503, 504 and transport failures.
    pub retry: RetryPolicy,
    /// A cached token is renewed this long before it expires (at most half its lifetime).
    pub token_refresh_margin: Duration,
    /// Allow `http://` endpoints that are not loopback (never in production: tokens would travel
    /// in clear). Loopback `http://` (the simulator) is always allowed.
    pub allow_insecure_http: bool,
    /// Most pages one `list` follows before it gives up (a guard against next-link loops).
    pub max_pages: usize,
    /// Reads of one Entra tenant in flight at once, shared by every client of the tenant made
    /// with the same [`WriteBudgets`] (see [`DEFAULT_READ_CONCURRENCY`]).
    pub read_concurrency: usize,
    /// Checked right before each write is sent, after every wait (pacing, retries): an `Err`
    /// keeps the write from leaving. The operator fences writes on its leader Lease with it.
    pub write_guard: Option<WriteGuard>,
    /// Hosts `graph.endpoint` and `graph.authority` may name. Default: the Microsoft clouds.
    pub endpoints: EndpointAllowlist,
    /// The only folder `workloadIdentity.tokenFile` may lie in (after symbolic links are
    /// resolved). Default: Azure Workload Identity's `/var/run/secrets/azure/tokens`.
    pub federated_token_dir: std::path::PathBuf,
}

/// A check made right before a write is sent (see [`GraphOptions::write_guard`]).
#[derive(Clone)]
pub struct WriteGuard(Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>);

impl WriteGuard {
    /// A guard that lets a write go while the future `check` makes answers `Ok`.
    pub fn new(
        check: impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    ) -> Self {
        WriteGuard(Arc::new(check))
    }

    async fn check(&self) -> Result<(), GraphError> {
        (self.0)().await.map_err(GraphError::WriteRefused)
    }
}

impl std::fmt::Debug for WriteGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGuard")
    }
}

/// Where Azure Workload Identity projects the federated service-account token.
pub const DEFAULT_FEDERATED_TOKEN_DIR: &str = "/var/run/secrets/azure/tokens";

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            token_refresh_margin: Duration::from_secs(300),
            allow_insecure_http: false,
            max_pages: 10_000,
            read_concurrency: DEFAULT_READ_CONCURRENCY,
            write_guard: None,
            endpoints: EndpointAllowlist::default(),
            federated_token_dir: DEFAULT_FEDERATED_TOKEN_DIR.into(),
        }
    }
}

/// An Entra group found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRef {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: String,
}

/// A Microsoft Graph client for one tenant. Cheap to clone; clones share the token cache, the
/// write pacer and the counters.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant_id", &self.inner.tenant_id)
            .field("endpoint", &self.inner.graph_root)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    /// `{endpoint}/`: next links must start with it.
    graph_root: String,
    /// `{endpoint}/beta/`.
    beta: String,
    tenant_id: String,
    tokens: TokenSource,
    pacer: WritePacer,
    reads: ReadGate,
    options: GraphOptions,
    stats: GraphStats,
}

/// How a failed attempt ends.
enum Failure {
    /// Give up with this error.
    Final(GraphError),
    /// A create whose outcome is unknown (the server may have applied it): the caller checks
    /// before sending it again.
    Ambiguous { error: GraphError, wait: Duration },
}

impl From<GraphError> for Failure {
    fn from(error: GraphError) -> Self {
        Failure::Final(error)
    }
}

/// Whether a request may simply be sent again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// GET, PATCH, PUT and set-replacing actions: repeating them is harmless.
    Idempotent,
    /// POST creating an object or adding entries: repeating it could add them twice.
    Create,
}

/// A successful answer.
struct Answer {
    body: Option<Value>,
}

/// How a created object is recognised when its create's answer was lost.
enum CreateIdentity {
    DisplayName { display_name: String, odata_type: Option<String> },
    NameAndTechnologies { name: String, technologies: Option<Value> },
}

impl CreateIdentity {
    fn of(collection: &str, body: &Value) -> Option<CreateIdentity> {
        let ty = ITEM_TYPES.iter().find(|t| t.collection == collection.trim_matches('/'))?;
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
        match ty.identity {
            IdentityKey::DisplayName => Some(CreateIdentity::DisplayName {
                display_name: text("displayName")?,
                odata_type: text("@odata.type"),
            }),
            IdentityKey::NameAndTechnologies => Some(CreateIdentity::NameAndTechnologies {
                name: text("name")?,
                technologies: body.get("technologies").cloned(),
            }),
        }
    }
}

impl GraphClient {
    /// A client for the tenant of `spec` (endpoints, client id, write budget) with `credentials`.
    pub fn new(spec: &IntuneTenantSpec, credentials: Credentials, options: GraphOptions) -> Result<Self, GraphError> {
        Self::new_with_stats(spec, credentials, options, GraphStats::new())
    }

    /// As [`GraphClient::new`], counting into `stats` (shared with the metrics endpoint).
    pub fn new_with_stats(
        spec: &IntuneTenantSpec,
        credentials: Credentials,
        options: GraphOptions,
        stats: GraphStats,
    ) -> Result<Self, GraphError> {
        Self::new_shared(spec, credentials, options, stats, &WriteBudgets::default())
    }

    /// As [`GraphClient::new_with_stats`], pacing writes with the budget `budgets` keeps for the
    /// Entra tenant: every client of one tenant id shares it.
    pub fn new_shared(
        spec: &IntuneTenantSpec,
        credentials: Credentials,
        options: GraphOptions,
        stats: GraphStats,
        budgets: &WriteBudgets,
    ) -> Result<Self, GraphError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = checked_base_url("graph.endpoint", &spec.graph.endpoint, &options)?;
        let authority = checked_base_url("graph.authority", &spec.graph.authority, &options)?;
        let credentials = match credentials {
            Credentials::WorkloadIdentity { token_file } => Credentials::WorkloadIdentity {
                token_file: crate::token::checked_token_file(&token_file, &options.federated_token_dir)?,
            },
            other => other,
        };
        if spec.tenant_id.is_empty()
            || !spec.tenant_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(GraphError::Config(format!("tenant id {:?} is not a GUID or domain", spec.tenant_id)));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("restore-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Config(format!("cannot build the HTTP client: {}", describe_reqwest(&e))))?;
        let token_endpoint = format!("{authority}/{}/oauth2/v2.0/token", spec.tenant_id);
        let settings = TokenSettings {
            token_endpoint,
            client_id: spec.auth.client_id.clone(),
            scope: format!("{endpoint}/.default"),
            refresh_margin: options.token_refresh_margin,
            request_timeout: options.request_timeout,
        };
        let tokens = TokenSource::new(http.clone(), settings, credentials, stats.clone())?;
        let budget = &spec.write_budget;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                graph_root: format!("{endpoint}/"),
                beta: format!("{endpoint}/beta/"),
                tenant_id: spec.tenant_id.clone(),
                tokens,
                pacer: budgets.pacer(
                    &spec.tenant_id,
                    budget.writes,
                    Duration::from_secs(u64::from(budget.per_seconds.max(1))),
                ),
                reads: budgets.read_gate(&spec.tenant_id, options.read_concurrency),
                options,
                stats,
            }),
        })
    }

    /// The counters this client writes to.
    pub fn stats(&self) -> &GraphStats {
        &self.inner.stats
    }

    /// Obtains a token and does one cheap read: what the IntuneTenant `Ready` condition needs.
    pub async fn verify(&self) -> Result<(), GraphError> {
        self.inner.tokens.token().await?;
        self.get_object("deviceManagement/deviceConfigurations?$top=1&$select=id").await.map(|_| ())
    }

    /// Entra groups whose display name equals `display_name` (Graph compares without case).
    pub async fn find_groups_by_display_name(&self, display_name: &str) -> Result<Vec<GroupRef>, GraphError> {
        let path =
            format!("groups?$filter={}&$select=id,displayName", query_escape(&eq_filter("displayName", display_name)));
        let groups = self.list_objects(&path).await?;
        Ok(groups
            .into_iter()
            .filter_map(|g| {
                Some(GroupRef {
                    id: g.get("id")?.as_str()?.to_string(),
                    display_name: g.get("displayName")?.as_str()?.to_string(),
                })
            })
            .collect())
    }

    /// GET one object; `None` on 404.
    pub async fn get_object(&self, path: &str) -> Result<Option<Value>, GraphError> {
        let url = self.url(path)?;
        match self.send(Method::GET, &url, None, false).await {
            Ok(answer) => Ok(answer.body),
            Err(GraphError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// GET a collection, following `@odata.nextLink` to the end.
    pub async fn list_objects(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let mut url = self.url(path)?;
        let mut items = Vec::new();
        for _ in 0..self.inner.options.max_pages {
            let answer = self.send(Method::GET, &url, None, false).await?;
            let mut body =
                answer.body.ok_or_else(|| GraphError::Unexpected("a collection answer without a body".into()))?;
            match body.get_mut("value").map(Value::take) {
                Some(Value::Array(page)) => items.extend(page),
                _ => return Err(GraphError::Unexpected("a collection answer without a 'value' array".into())),
            }
            match body.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) if next.starts_with(&self.inner.graph_root) => url = parse_url(next)?,
                Some(_) => {
                    return Err(GraphError::Unexpected("@odata.nextLink points outside the Graph endpoint".into()));
                }
                None => return Ok(items),
            }
        }
        Err(GraphError::Unexpected(format!("more than {} pages at {path}", self.inner.options.max_pages)))
    }

    /// GET several objects with `$batch` (20 per request); one result per path, in order.
    /// The batches go out together, as many in flight as the tenant's read gate lets through.
    /// Sub-requests throttled or failing with 503/504 are sent again in a later batch.
    pub async fn get_objects(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, GraphError>>, GraphError> {
        if paths.len() == 1 {
            return Ok(vec![self.get_object(&paths[0]).await]);
        }
        let batch_url = self.url("$batch")?;
        let indices: Vec<usize> = (0..paths.len()).collect();
        let batches: Vec<_> = indices
            .chunks(MAX_BATCH_REQUESTS)
            .map(|chunk| self.read_batch(paths, chunk.to_vec(), &batch_url))
            .collect();
        let mut batches = futures::stream::iter(batches).buffer_unordered(self.inner.options.read_concurrency.max(1));
        let mut results: Vec<Option<Result<Option<Value>, GraphError>>> = vec![None; paths.len()];
        while let Some(answers) = batches.next().await {
            for (index, result) in answers? {
                results[index] = Some(result);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(GraphError::Unexpected("$batch answer lacked a response for this request".into()))
                })
            })
            .collect())
    }

    /// One `$batch` of the paths at `chunk` (their indices), sending throttled or unavailable
    /// sub-requests again; the result of each index it got an answer for.
    async fn read_batch(
        &self,
        paths: &[String],
        chunk: Vec<usize>,
        batch_url: &Url,
    ) -> Result<Vec<(usize, Result<Option<Value>, GraphError>)>, GraphError> {
        let mut results = Vec::with_capacity(chunk.len());
        let mut pending = chunk;
        let mut budget = RetryBudget::new();
        while !pending.is_empty() {
            let requests: Vec<Value> = pending
                .iter()
                .map(|&i| json!({"id": i.to_string(), "method": "GET", "url": format!("/{}", paths[i].trim_start_matches('/'))}))
                .collect();
            let body = json!({"requests": requests});
            let answer = self.execute(Method::POST, batch_url, Some(&body), false, Mode::Idempotent, &mut budget).await;
            let answer = match answer {
                Ok(answer) => answer,
                Err(Failure::Final(error) | Failure::Ambiguous { error, .. }) => return Err(error),
            };
            // The sub-responses are taken out of the answer, not copied: a `$batch` of whole objects is large.
            let mut body = answer.body;
            let responses = match body.as_mut().and_then(|b| b.get_mut("responses")).map(Value::take) {
                Some(Value::Array(responses)) => responses,
                _ => return Err(GraphError::Unexpected("a $batch answer without 'responses'".into())),
            };
            let mut again = Vec::new();
            let mut wait: Option<Duration> = None;
            let mut last_retryable: Vec<(usize, GraphError)> = Vec::new();
            for mut response in responses {
                let Some(index) = response.get("id").and_then(Value::as_str).and_then(|id| id.parse::<usize>().ok())
                else {
                    continue;
                };
                if !pending.contains(&index) {
                    continue;
                }
                let status = response.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                let sub_body = response.get_mut("body").map(Value::take);
                let sub_wait = response
                    .get("headers")
                    .and_then(Value::as_object)
                    .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")))
                    .and_then(|(_, v)| v.as_str().and_then(|s| s.parse::<f64>().ok()).or_else(|| v.as_f64()))
                    .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
                match status {
                    200..=299 => results.push((index, Ok(sub_body))),
                    404 => results.push((index, Ok(None))),
                    429 | 503 | 504 => {
                        again.push(index);
                        wait = wait.max(sub_wait);
                        let error = GraphError::from_response(status, sub_body.as_ref(), sub_wait);
                        last_retryable.push((index, error.with_server_wait(sub_wait)));
                    }
                    _ => results.push((index, Err(GraphError::from_response(status, sub_body.as_ref(), None)))),
                }
            }
            if again.is_empty() {
                break;
            }
            if let Some(server_wait) = wait {
                self.inner.reads.pause_for(server_wait);
            }
            let wait = wait.unwrap_or_else(|| self.inner.options.retry.backoff(budget.attempts));
            if !budget.allows(&self.inner.options.retry, wait) {
                results.extend(last_retryable.into_iter().map(|(index, error)| (index, Err(error))));
                break;
            }
            tracing::info!(
                requests = again.len(),
                wait_ms = wait.as_millis() as u64,
                "Graph $batch: sub-requests throttled or unavailable; sending them again"
            );
            self.pause(wait, &mut budget).await;
            pending = again;
        }
        Ok(results)
    }

    /// POST a new object to `collection`; returns it as created.
    ///
    /// A retried POST never creates a second object: **the client checks** before it sends a
    /// create again. When an attempt's outcome is unknown (504, 503, a dropped connection or a
    /// timeout after the request left), the client waits, then looks the object up by its
    /// identity (`@odata.type` + `displayName`, or `name` + `technologies` for Settings Catalog);
    /// if it is there, that object is the result and nothing is posted again. A 429 is retried
    /// directly (Graph did not apply it). For collections outside the catalogue the client
    /// cannot check, so it returns the error and leaves the decision to its caller.
    pub async fn create_object(&self, collection: &str, body: &Value) -> Result<Value, GraphError> {
        let url = self.url(collection)?;
        let identity = CreateIdentity::of(collection, body);
        let mut budget = RetryBudget::new();
        loop {
            match self.execute(Method::POST, &url, Some(body), true, Mode::Create, &mut budget).await {
                Ok(answer) => {
                    return answer
                        .body
                        .ok_or_else(|| GraphError::Unexpected("a create answered without the object".into()));
                }
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Ambiguous { error, wait }) => {
                    let Some(identity) = &identity else { return Err(error) };
                    if !budget.allows(&self.inner.options.retry, wait) {
                        return Err(error);
                    }
                    tracing::warn!(collection, error = %error, "Graph create outcome unknown; checking whether it was applied before sending it again");
                    self.pause(wait, &mut budget).await;
                    if let Some(found) = self.find_created(collection, identity).await? {
                        self.inner.stats.recovered_create();
                        let id = found.get("id").and_then(Value::as_str).unwrap_or_default();
                        tracing::info!(collection, id, "Graph create had been applied; not posting again");
                        return Ok(found);
                    }
                }
            }
        }
    }

    /// PATCH an object.
    pub async fn update_object(&self, path: &str, body: &Value) -> Result<(), GraphError> {
        let url = self.url(path)?;
        self.send(Method::PATCH, &url, Some(body), true).await.map(|_| ())
    }

    /// PUT an object (full replace).
    pub async fn replace_object(&self, path: &str, body: &Value) -> Result<(), GraphError> {
        let url = self.url(path)?;
        self.send(Method::PUT, &url, Some(body), true).await.map(|_| ())
    }

    /// POST an action (`/assign`, `/scheduleActionsForRules`, `/targetApps`…). These actions
    /// replace a whole set, so they are retried like PATCH.
    pub async fn post_action(&self, path: &str, body: &Value) -> Result<Option<Value>, GraphError> {
        let url = self.url(path)?;
        self.send(Method::POST, &url, Some(body), true).await.map(|a| a.body)
    }

    /// POSTs an action that adds entries: retried only when Graph did not apply it (a 429, or a
    /// request that never left); an unknown outcome is returned as the error, never sent again.
    pub async fn post_action_once(&self, path: &str, body: &Value) -> Result<Option<Value>, GraphError> {
        let url = self.url(path)?;
        let mut budget = RetryBudget::new();
        match self.execute(Method::POST, &url, Some(body), true, Mode::Create, &mut budget).await {
            Ok(answer) => Ok(answer.body),
            Err(Failure::Final(error) | Failure::Ambiguous { error, .. }) => Err(error),
        }
    }

    async fn find_created(&self, collection: &str, identity: &CreateIdentity) -> Result<Option<Value>, GraphError> {
        let collection = collection.trim_matches('/');
        let matches: Vec<Value> = match identity {
            CreateIdentity::DisplayName { display_name, odata_type } => {
                let path = format!("{collection}?$filter={}", query_escape(&eq_filter("displayName", display_name)));
                self.list_objects(&path)
                    .await?
                    .into_iter()
                    .filter(|o| o.get("displayName").and_then(Value::as_str) == Some(display_name))
                    .filter(|o| {
                        odata_type.as_deref().is_none_or(|t| o.get("@odata.type").and_then(Value::as_str) == Some(t))
                    })
                    .collect()
            }
            CreateIdentity::NameAndTechnologies { name, technologies } => self
                .list_objects(&format!("{collection}?$select=id,name,technologies"))
                .await?
                .into_iter()
                .filter(|o| o.get("name").and_then(Value::as_str) == Some(name))
                .filter(|o| technologies.as_ref().is_none_or(|t| o.get("technologies") == Some(t)))
                .collect(),
        };
        match matches.as_slice() {
            [] => Ok(None),
            [only] => {
                let id = only.get("id").and_then(Value::as_str).unwrap_or_default();
                self.get_object(&format!("{collection}/{id}")).await
            }
            _ => Err(GraphError::Conflict {
                message: format!(
                    "a create's answer was lost and {} objects with its identity exist in {collection}",
                    matches.len()
                ),
            }),
        }
    }

    /// Sends with retries; an ambiguous failure of a create is never returned here.
    async fn send(&self, method: Method, url: &Url, body: Option<&Value>, write: bool) -> Result<Answer, GraphError> {
        let mut budget = RetryBudget::new();
        match self.execute(method, url, body, write, Mode::Idempotent, &mut budget).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Final(error) | Failure::Ambiguous { error, .. }) => Err(error),
        }
    }

    /// One logical request: attempts, pacing, token refresh on 401, retries within `budget`.
    async fn execute(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        write: bool,
        mode: Mode,
        budget: &mut RetryBudget,
    ) -> Result<Answer, Failure> {
        let inner = &self.inner;
        let policy = &inner.options.retry;
        let mut token_refreshed = false;
        loop {
            budget.attempts += 1;
            let token = match inner.tokens.token().await {
                Ok(token) => token,
                Err(error) if error.is_transient() => {
                    let wait = policy.backoff(budget.attempts);
                    if !budget.allows(policy, wait) {
                        return Err(Failure::Final(error));
                    }
                    tracing::warn!(error = %error, attempt = budget.attempts, "token endpoint unavailable; retrying");
                    self.pause(wait, budget).await;
                    continue;
                }
                Err(error) => return Err(Failure::Final(error)),
            };
            let (permit, read_slot) = if write {
                let (permit, waited) = inner.pacer.acquire().await;
                if !waited.is_zero() {
                    inner.stats.pacing_wait(waited);
                }
                if let Some(guard) = &inner.options.write_guard {
                    guard.check().await?;
                }
                (Some(permit), None)
            } else {
                (None, Some(inner.reads.enter().await.0))
            };
            let mut request = inner
                .http
                .request(method.clone(), url.clone())
                .timeout(inner.options.request_timeout)
                .bearer_auth(token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|bytes| (status, headers, bytes))
                }
                Err(error) => Err(error),
            };
            drop(permit);
            drop(read_slot);
            if write {
                self.report_write_after_deposal(&method, url).await;
            }
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let (status, headers, bytes) = match outcome {
                Ok(parts) => parts,
                Err(error) => {
                    inner.stats.request(method.as_str(), None);
                    let not_sent = error.is_connect();
                    let error = GraphError::Transport(describe_reqwest(&error));
                    tracing::warn!(method = %method, path = url.path(), attempt = budget.attempts, elapsed_ms, error = %error, "Graph request failed");
                    let wait = policy.backoff(budget.attempts);
                    if mode == Mode::Create && !not_sent {
                        return Err(Failure::Ambiguous { error, wait });
                    }
                    if !budget.allows(policy, wait) {
                        return Err(Failure::Final(error));
                    }
                    self.pause(wait, budget).await;
                    continue;
                }
            };
            inner.stats.request(method.as_str(), Some(status));
            tracing::debug!(method = %method, path = url.path(), status, attempt = budget.attempts, elapsed_ms, "Graph request");
            let json: Option<Value> = if bytes.is_empty() { None } else { serde_json::from_slice(&bytes).ok() };
            if (200..300).contains(&status) {
                if !bytes.is_empty() && json.is_none() {
                    return Err(Failure::Final(GraphError::Unexpected(format!(
                        "HTTP {status} with a body that is not JSON"
                    ))));
                }
                return Ok(Answer { body: json });
            }
            let server_wait = retry_after(&headers);
            match status {
                401 if !token_refreshed => {
                    token_refreshed = true;
                    budget.attempts -= 1;
                    inner.tokens.invalidate().await;
                    continue;
                }
                429 | 503 | 504 => {}
                _ => {
                    let error = GraphError::from_response(status, json.as_ref(), server_wait);
                    return Err(Failure::Final(error.with_server_wait(server_wait)));
                }
            }
            if let (false, Some(server_wait)) = (write, server_wait) {
                inner.reads.pause_for(server_wait);
            }
            let wait = server_wait.unwrap_or_else(|| policy.backoff(budget.attempts));
            let error = GraphError::from_response(status, json.as_ref(), Some(wait)).with_server_wait(server_wait);
            tracing::warn!(method = %method, path = url.path(), status, attempt = budget.attempts, wait_ms = wait.as_millis() as u64, retry_after = server_wait.is_some(), "Graph asked to retry");
            if mode == Mode::Create && status != 429 {
                return Err(Failure::Ambiguous { error, wait });
            }
            if !budget.allows(policy, wait) {
                return Err(Failure::Final(error));
            }
            self.pause(wait, budget).await;
        }
    }

    /// One read-only request for `restore-operator probe`, answered whatever its status: a GET of
    /// `path`, or (with `batch`) a POST of a JSON `$batch` whose sub-requests are all GETs. No
    /// retry; the status and the JSON body come back as Graph sent them.
    pub async fn probe_read(&self, path: &str, batch: Option<&Value>) -> Result<(u16, Option<Value>), GraphError> {
        let (method, url) = match batch {
            None => (Method::GET, self.url(path)?),
            Some(body) => {
                let requests = body.get("requests").and_then(Value::as_array);
                let read_only = requests.is_some_and(|r| {
                    r.iter()
                        .all(|q| q.get("method").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("GET")))
                });
                if !read_only {
                    return Err(GraphError::Config("a probe $batch may only hold GET requests".into()));
                }
                (Method::POST, self.url("$batch")?)
            }
        };
        let token = self.inner.tokens.token().await?;
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .timeout(self.inner.options.request_timeout)
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = batch {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| GraphError::Transport(describe_reqwest(&e)))?;
        let status = response.status().as_u16();
        self.inner.stats.request(method.as_str(), Some(status));
        let bytes = response.bytes().await.map_err(|e| GraphError::Transport(describe_reqwest(&e)))?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }

    /// A write that passed the guard may still land after this replica lost the Lease (the
    /// process stalled between the check and the send). Graph has no fencing token to refuse it,
    /// so the late write is logged with what it touched, for the successor's operator to inspect.
    async fn report_write_after_deposal(&self, method: &reqwest::Method, url: &reqwest::Url) {
        let Some(guard) = &self.inner.options.write_guard else { return };
        if let Err(error) = guard.check().await {
            tracing::error!(method = %method, path = url.path(), error = %error,
                "a write passed the leadership check but was sent after the Lease was lost; check this object for a duplicate");
        }
    }

    async fn pause(&self, wait: Duration, budget: &mut RetryBudget) {
        self.inner.stats.retry();
        self.inner.stats.throttle_wait(wait);
        budget.waited += sleep_for(wait).await;
    }

    fn url(&self, path: &str) -> Result<Url, GraphError> {
        let path = path.trim_start_matches('/');
        if path.contains("://") || path.split(['/', '?']).any(|s| s == "..") {
            return Err(GraphError::Config(format!("{path:?} is not a path under /beta")));
        }
        parse_url(&format!("{}{path}", self.inner.beta))
    }
}

fn parse_url(text: &str) -> Result<Url, GraphError> {
    Url::parse(text).map_err(|e| GraphError::Config(format!("invalid URL: {e}")))
}

/// Validates an endpoint: https, or http on loopback (or anywhere when explicitly allowed).
fn checked_base_url(field: &str, text: &str, options: &GraphOptions) -> Result<String, GraphError> {
    let allow_insecure_http = options.allow_insecure_http;
    let url = Url::parse(text).map_err(|e| GraphError::Config(format!("{field} {text:?} is not a URL: {e}")))?;
    options.endpoints.check(field, &url)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure_http => {}
        "http" => {
            return Err(GraphError::Config(format!("{field} {text:?} must use https (http is only for loopback)")));
        }
        other => return Err(GraphError::Config(format!("{field} {text:?}: unsupported scheme {other}"))),
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// `key eq 'value'` with quotes doubled, as OData escapes them.
fn eq_filter(key: &str, value: &str) -> String {
    format!("{key} eq '{}'", value.replace('\'', "''"))
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl TenantPort for GraphClient {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        Ok(self.get_object(path).await?)
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        Ok(self.list_objects(path).await?)
    }

    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        let results = self.get_objects(paths).await?;
        Ok(results.into_iter().map(|r| r.map_err(TenantError::from)).collect())
    }

    async fn create(&self, collection: &str, body: &Value) -> Result<Value, TenantError> {
        Ok(self.create_object(collection, body).await?)
    }

    async fn update(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        Ok(self.update_object(path, body).await?)
    }

    async fn replace(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        Ok(self.replace_object(path, body).await?)
    }

    async fn action(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        Ok(self.post_action(path, body).await?)
    }

    async fn action_once(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        Ok(self.post_action_once(path, body).await?)
    }

    fn requests_sent(&self) -> Option<u64> {
        Some(self.stats().snapshot().requests.iter().map(|r| r.count).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_except_on_loopback() {
        let open = |insecure| GraphOptions {
            allow_insecure_http: insecure,
            endpoints: EndpointAllowlist::default().allowing_loopback().allowing("graph.example.com"),
            ..GraphOptions::default()
        };
        assert_eq!(
            checked_base_url("e", "https://graph.microsoft.com/", &open(false)).unwrap(),
            "https://graph.microsoft.com"
        );
        assert!(checked_base_url("e", "http://127.0.0.1:8080", &open(false)).is_ok());
        assert!(checked_base_url("e", "http://localhost:8080", &open(false)).is_ok());
        assert!(checked_base_url("e", "http://[::1]:8080", &open(false)).is_ok());
        assert!(checked_base_url("e", "http://graph.example.com", &open(false)).is_err());
        assert!(checked_base_url("e", "http://graph.example.com", &open(true)).is_ok());
        assert!(checked_base_url("e", "ftp://127.0.0.1", &open(true)).is_err());
    }

    #[test]
    fn finding_4_an_endpoint_or_authority_outside_the_allowlist_is_refused_by_default() {
        let strict = GraphOptions::default();
        let err = checked_base_url("graph.authority", "https://attacker.example/", &strict).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
        assert!(checked_base_url("graph.endpoint", "http://127.0.0.1:8080", &strict).is_err());
        assert!(checked_base_url("graph.authority", "https://login.microsoftonline.us", &strict).is_ok());
    }

    #[test]
    fn filters_escape_quotes_and_query_values_are_percent_encoded() {
        assert_eq!(eq_filter("displayName", "O'Brien"), "displayName eq 'O''Brien'");
        assert_eq!(query_escape("a b&c#'"), "a%20b%26c%23%27");
    }

    #[test]
    fn the_identity_of_a_create_comes_from_the_catalogue() {
        let body = json!({"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "Baseline"});
        assert!(matches!(
            CreateIdentity::of("deviceManagement/deviceConfigurations", &body),
            Some(CreateIdentity::DisplayName { ref display_name, .. }) if display_name == "Baseline"
        ));
        let sc = json!({"name": "SC", "technologies": "mdm"});
        assert!(matches!(
            CreateIdentity::of("/deviceManagement/configurationPolicies", &sc),
            Some(CreateIdentity::NameAndTechnologies { .. })
        ));
        assert!(CreateIdentity::of("groups", &json!({"displayName": "G"})).is_none());
        assert!(CreateIdentity::of("deviceManagement/deviceConfigurations", &json!({})).is_none());
    }
}
