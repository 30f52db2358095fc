//! Everything the simulator knows, behind one lock: tenants, tokens, the write throttle, the
//! fault generator and the request log; and the request pipeline that uses them (`$batch` too).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::{Api, ApiRequest, MAX_BATCH, Paging, is_batch_path, is_write};
use crate::auth::{Grant, TokenStore};
use crate::faults::FaultState;
use crate::reply::{Reply, bad_request, too_many_requests};
use crate::store::{IdSource, Tenant};
use crate::throttle::{WriteThrottle, retry_after_secs};

/// One request the simulator answered (batch sub-requests are logged one by one too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Order of arrival.
    pub seq: u64,
    /// Time since the simulator started.
    pub at: Duration,
    /// Tenant of the caller's token (`None` when unauthenticated or a token request).
    pub tenant: Option<String>,
    /// App of the caller's token.
    pub client_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path (for API calls relative to `/beta/`, e.g. `deviceManagement/deviceConfigurations`).
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Status answered (0 when the connection was dropped before an answer).
    pub status: u16,
    /// Whether it was a write (POST, PATCH, PUT, DELETE) to the API.
    pub write: bool,
    /// Whether it came inside a `$batch`.
    pub in_batch: bool,
    /// The injected fault, if any (`storm`, `injected-503`, `drop`, `drop-after-write`…).
    pub fault: Option<String>,
}

/// The simulator's state.
pub(crate) struct SimState {
    pub tenants: BTreeMap<String, Tenant>,
    pub ids: IdSource,
    pub tokens: TokenStore,
    pub throttle: WriteThrottle,
    pub faults: FaultState,
    pub paging: Paging,
    pub token_lifetime: Duration,
    pub log: VecDeque<RequestRecord>,
    pub log_capacity: usize,
    pub started: Instant,
    next_log_seq: u64,
}

/// One authenticated API call as the pipeline sees it.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    /// Path relative to `/beta/`.
    pub path: &'a str,
    pub raw_query: &'a str,
    pub body: Option<Value>,
    /// `{origin}/beta`, for next links and contexts.
    pub base: &'a str,
}

/// What the pipeline decided for one API call.
pub(crate) struct Handled {
    pub reply: Reply,
    /// A write that was applied (post-write faults may still hit its answer).
    pub applied_write: bool,
}

impl SimState {
    pub fn new(
        ids: IdSource,
        throttle: WriteThrottle,
        faults: FaultState,
        paging: Paging,
        token_lifetime: Duration,
        log_capacity: usize,
    ) -> Self {
        SimState {
            tenants: BTreeMap::new(),
            ids,
            tokens: TokenStore::default(),
            throttle,
            faults,
            paging,
            token_lifetime,
            log: VecDeque::new(),
            log_capacity,
            started: Instant::now(),
            next_log_seq: 0,
        }
    }

    /// Appends to the request log, dropping the oldest entries beyond capacity.
    pub fn record(&mut self, mut record: RequestRecord) {
        self.next_log_seq += 1;
        record.seq = self.next_log_seq;
        record.at = self.started.elapsed();
        self.log.push_back(record);
        while self.log.len() > self.log_capacity {
            self.log.pop_front();
        }
    }

    /// Handles one authenticated API call (`path` relative to `/beta/`).
    pub fn process(&mut self, grant: &Grant, call: Call<'_>) -> Handled {
        if is_batch_path(call.path) {
            let reply = match call.method {
                "POST" => self.batch(grant, call.body, call.base),
                other => crate::reply::method_not_allowed(other, call.path),
            };
            return Handled { reply, applied_write: false };
        }
        let write = is_write(call.method);
        let reply = self.single(grant, call);
        Handled { applied_write: write && reply.is_success(), reply }
    }

    fn single(&mut self, grant: &Grant, call: Call<'_>) -> Reply {
        let Call { method, path, raw_query, body, base } = call;
        if is_write(method)
            && let Err(wait) = self.throttle.admit(&grant.tenant, &grant.client_id, Instant::now())
        {
            return too_many_requests(Some(retry_after_secs(wait)));
        }
        let Some(tenant) = self.tenants.get_mut(&grant.tenant) else {
            return crate::reply::graph_error(
                401,
                "InvalidAuthenticationToken",
                "The tenant of this token no longer exists.",
            );
        };
        let mut api = Api { tenant_id: &grant.tenant, tenant, ids: &mut self.ids, paging: self.paging, base };
        api.handle(&ApiRequest { method, path, raw_query, body })
    }

    /// JSON `$batch`: up to 20 requests, each answered in `responses` with its own status.
    fn batch(&mut self, grant: &Grant, body: Option<Value>, base: &str) -> Reply {
        let Some(Value::Array(requests)) = body.as_ref().and_then(|b| b.get("requests")).cloned() else {
            return bad_request("Invalid batch payload format: a 'requests' array is required.");
        };
        if requests.len() > MAX_BATCH {
            return bad_request(format!("The number of requests in a batch exceeds the limit of {MAX_BATCH}."));
        }
        let mut seen = std::collections::HashSet::new();
        for request in &requests {
            let id = batch_request_id(request);
            if id.is_empty() || !seen.insert(id) {
                return bad_request("Each batch request needs a unique, non-empty 'id'.");
            }
        }
        let mut responses = Vec::with_capacity(requests.len());
        for request in requests {
            let id = batch_request_id(&request);
            let method = request.get("method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
            let url = request.get("url").and_then(Value::as_str).unwrap_or_default();
            let url = url.strip_prefix('/').unwrap_or(url);
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let reply = if url.contains("://") {
                bad_request(
                    "Batch request URLs must be relative to the version root, e.g. '/deviceManagement/deviceConfigurations'.",
                )
            } else if is_batch_path(path) {
                bad_request("A batch cannot contain another batch.")
            } else {
                let call = Call { method: &method, path, raw_query: query, body: request.get("body").cloned(), base };
                self.single(grant, call)
            };
            self.record(RequestRecord {
                seq: 0,
                at: Duration::ZERO,
                tenant: Some(grant.tenant.clone()),
                client_id: Some(grant.client_id.clone()),
                method: method.clone(),
                path: path.to_string(),
                query: query.to_string(),
                status: reply.status,
                write: is_write(&method),
                in_batch: true,
                fault: None,
            });
            let mut headers = Map::new();
            if reply.body.is_some() {
                headers.insert("Content-Type".into(), json!("application/json"));
            }
            for (name, value) in &reply.headers {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
            let mut response = Map::new();
            response.insert("id".into(), Value::String(id));
            response.insert("status".into(), json!(reply.status));
            response.insert("headers".into(), Value::Object(headers));
            if let Some(body) = reply.body {
                response.insert("body".into(), body);
            }
            responses.push(Value::Object(response));
        }
        Reply::json(200, json!({"responses": responses}))
    }
}

/// A `$batch` request's `id`: a string, or a number as IntuneCD sends (`"id": 1`), which Graph
/// accepts; the response echoes it as a string ("Combine multiple HTTP requests using JSON
/// batching" shows string ids; the echo of a number as a string is a guess).
fn batch_request_id(request: &Value) -> String {
    match request.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}
