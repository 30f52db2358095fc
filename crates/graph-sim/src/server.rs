//! The HTTP side of the simulator: an accept loop on loopback serving HTTP/1.1, routing to the
//! token endpoint, OpenID discovery and the Graph API, and dropping connections when told to.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::is_write;
use crate::auth::{TokenContext, TokenRequest, authenticate, token_response};
use crate::faults::{After, Before};
use crate::reply::{Reply, bad_request, graph_error, not_found};
use crate::state::{Call, RequestRecord, SimState};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// State shared by the server tasks and the handle.
pub(crate) struct Shared {
    pub state: Mutex<SimState>,
    /// Whether `GET /_sim/state` serves the dump of every tenant.
    pub state_endpoint: bool,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves connections until `shutdown` flips to true.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "graph-sim: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let (kill_tx, mut kill_rx) = mpsc::channel::<()>(1);
            let service = service_fn(move |request| handle(Arc::clone(&shared), request, kill_tx.clone()));
            let connection = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = kill_rx.recv() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// What to do with a request.
enum Outcome {
    Reply(Reply),
    /// Close the connection without an answer.
    Drop,
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    kill: mpsc::Sender<()>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let host = header("host").unwrap_or_else(|| "127.0.0.1".to_string());
    let authorization = header("authorization");
    let origin = format!("{}://{host}", scheme_for(&host));
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(to_response(graph_error(413, "RequestEntityTooLarge", "The request body is too large."))),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let outcome = match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] if method == "POST" => {
            Outcome::Reply(token(&shared, tenant, &body, &origin))
        }
        [tenant, "v2.0", ".well-known", "openid-configuration"] if method == "GET" => {
            Outcome::Reply(Reply::json(200, discovery(&origin, tenant)))
        }
        ["beta" | "v1.0", rest @ ..] => {
            let api_path = rest.join("/");
            let version = segments[0];
            let base = format!("{origin}/{version}");
            api(&shared, &method, &api_path, &query, authorization.as_deref(), &body, &base).await
        }
        ["_sim", "state"] if method == "GET" && shared.state_endpoint => {
            let state = shared.lock();
            let tenants: serde_json::Map<String, Value> =
                state.tenants.iter().map(|(id, t)| (id.clone(), t.dump())).collect();
            Outcome::Reply(Reply::json(200, json!({"tenants": tenants})))
        }
        _ => Outcome::Reply(not_found(format!("No route for {method} {path}."))),
    };
    match outcome {
        Outcome::Reply(reply) => Ok(to_response(reply)),
        Outcome::Drop => {
            let _ = kill.send(()).await;
            std::future::pending().await
        }
    }
}

/// The scheme of the URLs the simulator writes (`@odata.nextLink`, contexts). It listens on plain
/// HTTP; a request whose `Host` is a name without a port (`graph.microsoft.com`) came through a
/// TLS-terminating front such as the IntuneCD test's proxy, so its links must be `https`.
fn scheme_for(host: &str) -> &'static str {
    let has_port = host.rsplit_once(':').is_some_and(|(_, port)| port.chars().all(|c| c.is_ascii_digit()));
    let is_ip = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok();
    if has_port || is_ip || host == "localhost" { "http" } else { "https" }
}

fn token(shared: &Shared, tenant: &str, body: &[u8], origin: &str) -> Reply {
    let request = TokenRequest::parse(body);
    let token_endpoint = format!("{origin}/{tenant}/oauth2/v2.0/token");
    let issuer = format!("{origin}/{tenant}/v2.0");
    let mut state = shared.lock();
    let decision = {
        let apps = state.tenants.get(tenant).map(|t| &t.apps);
        let ctx = TokenContext { tenant, apps, token_endpoint: &token_endpoint, issuer: &issuer };
        authenticate(&ctx, &request)
    };
    let reply = match decision {
        Ok(client_id) => {
            let lifetime = state.token_lifetime;
            let access_token = state.tokens.issue(tenant, &client_id, lifetime);
            tracing::debug!(tenant, client_id, "graph-sim: token issued");
            Reply::json(200, token_response(&access_token, lifetime))
        }
        Err(reply) => reply,
    };
    state.record(RequestRecord {
        seq: 0,
        at: Duration::ZERO,
        tenant: Some(tenant.to_string()),
        client_id: None,
        method: "POST".into(),
        path: format!("{tenant}/oauth2/v2.0/token"),
        query: String::new(),
        status: reply.status,
        write: false,
        in_batch: false,
        fault: None,
    });
    reply
}

fn discovery(origin: &str, tenant: &str) -> Value {
    json!({
        "token_endpoint": format!("{origin}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "issuer": format!("{origin}/{tenant}/v2.0"),
        "authorization_endpoint": format!("{origin}/{tenant}/oauth2/v2.0/authorize"),
        "jwks_uri": format!("{origin}/{tenant}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "grant_types_supported": ["client_credentials"],
        "tenant_region_scope": "SIM",
    })
}

async fn api(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    authorization: Option<&str>,
    body: &[u8],
    base: &str,
) -> Outcome {
    let write = is_write(method) && path.trim_matches('/') != "$batch";
    let mut record = RequestRecord {
        seq: 0,
        at: Duration::ZERO,
        tenant: None,
        client_id: None,
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        status: 0,
        write,
        in_batch: false,
        fault: None,
    };
    let grant = shared.lock().tokens.check(authorization);
    let grant = match grant {
        Ok(grant) => grant,
        Err(reply) => return finish(shared, record, reply),
    };
    record.tenant = Some(grant.tenant.clone());
    record.client_id = Some(grant.client_id.clone());
    let (latency, fate) = shared.lock().faults.before();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fate {
        Before::Handle => {}
        Before::Drop => {
            record.fault = Some("drop".into());
            shared.lock().record(record);
            return Outcome::Drop;
        }
        Before::Fail { status, retry_after_secs, cause } => {
            record.fault = Some(cause.into());
            let reply = injected_failure(status, retry_after_secs);
            return finish(shared, record, reply);
        }
    }
    let body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => Some(value),
            Err(error) => {
                return finish(shared, record, bad_request(format!("Unable to read JSON request payload: {error}.")));
            }
        }
    };
    let mut state = shared.lock();
    let handled = state.process(&grant, Call { method, path, raw_query: query, body, base });
    let mut reply = handled.reply;
    if handled.applied_write {
        match state.faults.after_write() {
            After::Answer => {}
            After::Drop => {
                record.status = reply.status;
                record.fault = Some("drop-after-write".into());
                state.record(record);
                return Outcome::Drop;
            }
            After::GatewayTimeout => {
                record.fault = Some("injected-504-after-write".into());
                reply = injected_failure(504, None);
            }
        }
    }
    record.status = reply.status;
    state.record(record);
    Outcome::Reply(reply)
}

fn finish(shared: &Shared, mut record: RequestRecord, reply: Reply) -> Outcome {
    record.status = reply.status;
    shared.lock().record(record);
    Outcome::Reply(reply)
}

fn injected_failure(status: u16, retry_after_secs: Option<u64>) -> Reply {
    let reply = match status {
        429 => return crate::reply::too_many_requests(retry_after_secs),
        503 => graph_error(503, "ServiceUnavailable", "The service is temporarily unavailable. Retry later."),
        504 => graph_error(504, "GatewayTimeout", "The gateway did not receive a response in time."),
        other => graph_error(other, "InjectedFault", "A fault was injected by graph-sim."),
    };
    match retry_after_secs {
        Some(secs) if status == 503 => reply.with_header("Retry-After", secs.to_string()),
        _ => reply,
    }
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    let body = match &reply.body {
        Some(body) => {
            builder = builder.header("content-type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8");
            Bytes::from(serde_json::to_vec(body).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    builder = builder.header("request-id", uuid::Uuid::new_v4().to_string());
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(body)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
