//! The HTTP face of the emulator: routes Kubernetes REST paths to the API core, negotiates
//! Table / metadata / discovery media types, streams watches, and answers errors as `Status`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;

use crate::api::{ApiCore, DeleteOutcome, DeleteParams, FieldValidation, ListParams, Subresource, WriteParams};
use crate::auth::{Impersonation, UserInfo, service_account_of};
use crate::discovery;
use crate::error::ApiError;
use crate::openapi;
use crate::patch::PatchType;
use crate::rbac::Attributes;
use crate::table::{self, Rendering};
use crate::watch::{self, WatchParams};

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The API core.
    pub core: Arc<ApiCore>,
    /// `host:port` the server listens on.
    pub address: String,
}

/// Builds the router: one fallback handler that parses Kubernetes paths itself.
pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn json_response(code: u16, body: &Value, content_type: &str, warnings: &[String]) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status(), "application/json", &[])
}

type Query = HashMap<String, String>;

fn parse_query(uri: &Uri) -> Query {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(query: &Query, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true") | Some("1"))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn write_params(query: &Query, headers: &HeaderMap, user: &UserInfo) -> Result<WriteParams, ApiError> {
    let field_validation = match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of: Ignore, Warn, Strict (got {other})"
            )));
        }
    };
    let user_agent = header_str(headers, header::USER_AGENT);
    let default_manager = user_agent.split('/').next().filter(|s| !s.is_empty()).unwrap_or("unknown").to_string();
    Ok(WriteParams {
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: query.get("fieldManager").cloned(),
        field_validation,
        force: flag(query, "force"),
        default_manager,
        user: Some(user.clone()),
    })
}

/// A parsed resource path.
struct ResourcePath {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_resource_path(core: &ApiCore, segments: &[&str]) -> Option<ResourcePath> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => (String::new(), version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        _ => return None,
    };
    let registry = core.registry();
    let is_namespaced = |plural: &str| registry.find(&group, &version, plural).is_some_and(|t| t.namespaced);
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if is_namespaced(plural) => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (plural.to_string(), None, None),
        [plural, name] => (plural.to_string(), Some(name.to_string()), None),
        [plural, name, sub] => (plural.to_string(), Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(ResourcePath { group, version, namespace, plural, name, subresource })
}

async fn handle(
    axum::extract::State(state): axum::extract::State<HttpState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let query = parse_query(&uri);
    tracing::debug!(%method, path = %path, query = ?uri.query(), "request");
    match route(&state, &method, &path, &query, &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%method, path = %path, code = error.code, reason = error.reason, "request refused");
            error_response(&error)
        }
    }
}

async fn route(
    state: &HttpState,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let core = &state.core;
    let user = acting_user(core, headers)?;
    let accept = header_str(headers, header::ACCEPT);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v: &Value| json_response(200, v, "application/json", &[]);
    match segments.as_slice() {
        ["version"] => return Ok(ok(&discovery::version())),
        ["healthz"] | ["livez"] | ["readyz"] => {
            let mut response = Response::new(Body::from("ok"));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return Ok(response);
        }
        ["api"] => {
            return Ok(match discovery::wants_aggregated(accept) {
                Some(v) => {
                    json_response(200, &discovery::aggregated(&core.registry(), true, v), &aggregated_type(v), &[])
                }
                None => ok(&discovery::core_versions(&state.address)),
            });
        }
        ["apis"] => {
            return Ok(match discovery::wants_aggregated(accept) {
                Some(v) => {
                    json_response(200, &discovery::aggregated(&core.registry(), false, v), &aggregated_type(v), &[])
                }
                None => ok(&discovery::group_list(&core.registry())),
            });
        }
        ["api", version] => {
            return discovery::resource_list(&core.registry(), "", version)
                .map(|d| ok(&d))
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["apis", group] => {
            return discovery::group(&core.registry(), group).map(|d| ok(&d)).ok_or_else(|| ApiError::no_route(path));
        }
        ["apis", group, version] => {
            return discovery::resource_list(&core.registry(), group, version)
                .map(|d| ok(&d))
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] if method == Method::POST => {
            let review = serde_json::json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                "metadata": {"creationTimestamp": null},
                "status": {"userInfo": user.to_json()},
            });
            return Ok(json_response(201, &review, "application/json", &[]));
        }
        ["apis", "authorization.k8s.io", "v1", "selfsubjectrulesreviews"] if method == Method::POST => {
            return Ok(rules_review(core, &user, &parse_body(&body, headers)?));
        }
        ["apis", "authorization.k8s.io", "v1", kind @ ("selfsubjectaccessreviews" | "subjectaccessreviews")]
            if method == Method::POST =>
        {
            return access_review(core, &user, kind, &parse_body(&body, headers)?);
        }
        ["openapi", "v3"] => return Ok(ok(&openapi::index(&core.registry()))),
        ["openapi", "v3", "api", version] => {
            return openapi::group_version(&core.registry(), "", version)
                .map(|d| ok(&d))
                .ok_or_else(|| ApiError::no_route(path));
        }
        ["openapi", "v3", "apis", group, version] => {
            return openapi::group_version(&core.registry(), group, version)
                .map(|d| ok(&d))
                .ok_or_else(|| ApiError::no_route(path));
        }
        _ => {}
    }
    let parsed = parse_resource_path(core, &segments).ok_or_else(|| ApiError::no_route(path))?;
    let scope = core
        .scope(&parsed.group, &parsed.version, &parsed.plural, parsed.namespace.as_deref())
        .ok_or_else(|| ApiError::no_route(path))?;
    let resource = scope.resource.clone();
    authorize_request(core, &user, method, query, &parsed, &resource.group)?;
    let subresource = match parsed.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if resource.status_subresource => Subresource::Status,
        Some(_) => return Err(ApiError::no_route(path)),
    };
    let rendering = Rendering::from_accept(accept, query.get("includeObject").map(String::as_str));
    let render = |object: &Value| match rendering {
        Rendering::Full => object.clone(),
        Rendering::Table(include) => table::to_table(&resource, object, include),
        Rendering::Metadata if object.get("items").is_some() => table::partial_metadata_list(object),
        Rendering::Metadata => table::partial_metadata(object),
    };
    let verb_key = |verb: &str| format!("{verb} {}", resource.plural);
    let write = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if write && core.faults.take_conflict(&resource.plural, subresource == Subresource::Status) {
        let name = parsed.name.as_deref().unwrap_or_default();
        tracing::debug!(resource = %resource.plural, name, "injected 409 Conflict");
        return Err(ApiError::conflict(&resource.group, &resource.plural, name, "injected conflict (fault campaign)"));
    }
    match (method.clone(), parsed.name.as_deref()) {
        (Method::GET, None) if flag(query, "watch") => {
            core.count(verb_key("watch"));
            let params = WatchParams {
                resource_version: query.get("resourceVersion").cloned(),
                label_selector: query.get("labelSelector").cloned(),
                field_selector: query.get("fieldSelector").cloned(),
                allow_bookmarks: flag(query, "allowWatchBookmarks"),
                send_initial_events: flag(query, "sendInitialEvents"),
                timeout: query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs),
            };
            let receiver = watch::start(core.clone(), scope.clone(), params)?;
            let stream = futures::stream::unfold(receiver, move |mut rx| {
                let rendering = rendering;
                let resource = resource.clone();
                async move {
                    let mut event = rx.recv().await?;
                    if event["type"] != "ERROR" && event["type"] != "BOOKMARK" {
                        let object = event["object"].clone();
                        event["object"] = match rendering {
                            Rendering::Full => object,
                            Rendering::Table(include) => table::to_table(&resource, &object, include),
                            Rendering::Metadata => table::partial_metadata(&object),
                        };
                    }
                    let mut line = event.to_string();
                    line.push('\n');
                    Some((Ok::<_, std::io::Error>(Bytes::from(line)), rx))
                }
            });
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        (Method::GET, None) => {
            core.count(verb_key("list"));
            let params = ListParams {
                label_selector: query.get("labelSelector").cloned().filter(|s| !s.is_empty()),
                field_selector: query.get("fieldSelector").cloned().filter(|s| !s.is_empty()),
                limit: query.get("limit").and_then(|l| l.parse().ok()),
                continue_token: query.get("continue").cloned(),
                resource_version: query.get("resourceVersion").cloned(),
                resource_version_match: query.get("resourceVersionMatch").cloned(),
            };
            let list = core.list(&scope, &params)?;
            Ok(ok(&render(&list)))
        }
        (Method::GET, Some(name)) => {
            core.count(verb_key("get"));
            Ok(ok(&render(&core.get(&scope, name)?)))
        }
        (Method::POST, None) => {
            core.count(verb_key("create"));
            let object = parse_body(&body, headers)?;
            let written = core.create(&scope, object, &write_params(query, headers, &user)?)?;
            Ok(json_response(201, &written.object, "application/json", &written.warnings))
        }
        (Method::PUT, Some(name)) => {
            core.count(verb_key("update"));
            let object = parse_body(&body, headers)?;
            let written = core.update(&scope, name, object, subresource, &write_params(query, headers, &user)?)?;
            Ok(json_response(200, &written.object, "application/json", &written.warnings))
        }
        (Method::PATCH, Some(name)) => {
            core.count(verb_key("patch"));
            let patch_type = PatchType::from_content_type(header_str(headers, header::CONTENT_TYPE))?;
            if patch_type == PatchType::Apply && core.get(&scope, name).is_err() {
                // An apply that creates the object needs `create` as well (kube-apiserver's patch handler).
                let namespace = parsed.namespace.as_deref().unwrap_or_default();
                let attributes = Attributes::resource("create", &resource.group, &resource.plural, namespace, name);
                require(core, &user, &attributes, &resource.group, Some(name))?;
            }
            let params = write_params(query, headers, &user)?;
            let written = core.patch(&scope, name, patch_type, &body, subresource, &params)?;
            let code = if written.created { 201 } else { 200 };
            Ok(json_response(code, &written.object, "application/json", &written.warnings))
        }
        (Method::DELETE, Some(name)) => {
            core.count(verb_key("delete"));
            let params = delete_params(&body, query, &user)?;
            match core.delete(&scope, name, &params)? {
                DeleteOutcome::Pending(object) => Ok(json_response(202, &object, "application/json", &[])),
                DeleteOutcome::Deleted(object) => {
                    let status = serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": resource.group, "kind": resource.plural,
                                    "uid": object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)}
                    });
                    Ok(ok(&status))
                }
            }
        }
        (Method::DELETE, None) => {
            core.count(verb_key("deletecollection"));
            let params = delete_params(&body, query, &user)?;
            let list = ListParams {
                label_selector: query.get("labelSelector").cloned().filter(|s| !s.is_empty()),
                field_selector: query.get("fieldSelector").cloned().filter(|s| !s.is_empty()),
                ..ListParams::default()
            };
            Ok(ok(&core.delete_collection(&scope, &list, &params)?))
        }
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

/// The user a request acts as. kubectl sends no credentials over plain HTTP, so the requester is
/// the cluster admin; `Impersonate-User` / `Impersonate-Group` / `Impersonate-Uid` (`kubectl --as`,
/// `--as-group`, or `as:` in the kubeconfig) switch to another user once RBAC allows the requester
/// the `impersonate` verb on those users, groups, service accounts and uids.
fn acting_user(core: &ApiCore, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let requester = UserInfo::admin();
    let values = |name: &'static str| -> Vec<String> {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect()
    };
    let impersonation = Impersonation {
        user: values("impersonate-user").into_iter().next().filter(|u| !u.is_empty()),
        groups: values("impersonate-group"),
        uid: values("impersonate-uid").into_iter().next(),
    };
    impersonation.check()?;
    let Some(username) = &impersonation.user else { return Ok(requester) };
    let mut checks = vec![match service_account_of(username) {
        Some((namespace, name)) => Attributes::resource("impersonate", "", "serviceaccounts", namespace, name),
        None => Attributes::resource("impersonate", "", "users", "", username),
    }];
    checks.extend(impersonation.groups.iter().map(|g| Attributes::resource("impersonate", "", "groups", "", g)));
    if let Some(uid) = &impersonation.uid {
        checks.push(Attributes::resource("impersonate", "authentication.k8s.io", "uids", "", uid));
    }
    for attributes in checks {
        if !core.authorize(&requester, &attributes).allowed {
            let message = format!(
                "{} {:?} is forbidden: {}",
                attributes.resource,
                attributes.name,
                attributes.forbidden_message(&requester.username)
            );
            return Err(ApiError::forbidden(message));
        }
    }
    Ok(impersonation.acting_user(&requester))
}

/// The RBAC verb of a request (kube-apiserver's request-info resolver).
fn verb_of(method: &Method, query: &Query, has_name: bool) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET" | "HEAD", false) if flag(query, "watch") => "watch",
        ("GET" | "HEAD", false) => "list",
        ("GET" | "HEAD", true) if flag(query, "watch") => "watch",
        ("GET" | "HEAD", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    }
}

fn authorize_request(
    core: &ApiCore,
    user: &UserInfo,
    method: &Method,
    query: &Query,
    parsed: &ResourcePath,
    group: &str,
) -> Result<(), ApiError> {
    let verb = verb_of(method, query, parsed.name.is_some());
    let name = parsed.name.as_deref().unwrap_or_default();
    let namespace = parsed.namespace.as_deref().unwrap_or_default();
    let attributes = Attributes::resource(verb, group, &parsed.plural, namespace, name)
        .with_subresource(parsed.subresource.as_deref().unwrap_or_default());
    require(core, user, &attributes, group, parsed.name.as_deref())
}

/// 403 with kube-apiserver's message unless RBAC allows the request.
fn require(
    core: &ApiCore,
    user: &UserInfo,
    attributes: &Attributes,
    group: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if core.authorize(user, attributes).allowed {
        return Ok(());
    }
    let qualified =
        if group.is_empty() { attributes.resource.clone() } else { format!("{}.{group}", attributes.resource) };
    let subject = match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{qualified} {name:?}"),
        None => qualified,
    };
    let message = format!("{subject} is forbidden: {}", attributes.forbidden_message(&user.username));
    let mut error = ApiError::forbidden(message);
    error.details =
        Some(serde_json::json!({"name": name.unwrap_or_default(), "group": group, "kind": attributes.resource}));
    Err(error)
}

/// SelfSubjectRulesReview (`kubectl auth can-i --list`): the user's rules in the namespace.
fn rules_review(core: &ApiCore, user: &UserInfo, review: &Value) -> Response {
    let namespace = review.pointer("/spec/namespace").and_then(Value::as_str).unwrap_or_default();
    let rules = {
        let st = core.state();
        core.rbac_snapshot(&st).rules_for(user, namespace)
    };
    let (non_resource, resource): (Vec<Value>, Vec<Value>) =
        rules.into_iter().partition(|r| r.get("nonResourceURLs").is_some());
    let answer = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "metadata": {"creationTimestamp": null}, "spec": {"namespace": namespace},
        "status": {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false},
    });
    json_response(201, &answer, "application/json", &[])
}

/// SelfSubjectAccessReview (any authenticated user, for itself) and SubjectAccessReview (needs
/// `create` on subjectaccessreviews; decides for the user in the spec).
fn access_review(core: &ApiCore, user: &UserInfo, kind: &str, review: &Value) -> Result<Response, ApiError> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let (subject, kind_name) = if kind == "subjectaccessreviews" {
        let attributes = Attributes::resource("create", "authorization.k8s.io", kind, "", "");
        require(core, user, &attributes, "authorization.k8s.io", None)?;
        (UserInfo::from_review_spec(&spec), "SubjectAccessReview")
    } else {
        (user.clone(), "SelfSubjectAccessReview")
    };
    let decision = core.authorize(&subject, &Attributes::from_review_spec(&spec));
    let mut status = serde_json::json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = Value::String(decision.reason);
    }
    let answer = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": kind_name,
        "metadata": {"creationTimestamp": null}, "spec": spec, "status": status,
    });
    Ok(json_response(201, &answer, "application/json", &[]))
}

fn aggregated_type(version: &str) -> String {
    discovery::AGGREGATED_CONTENT_TYPE.replace("v=v2", &format!("v={version}"))
}

fn parse_body(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let content_type = header_str(headers, header::CONTENT_TYPE);
    if content_type.contains("protobuf") {
        return crate::proto::decode(body);
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
        )));
    }
    if content_type.contains("yaml") {
        serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))
    }
}

fn delete_params(body: &[u8], query: &Query, user: &UserInfo) -> Result<DeleteParams, ApiError> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || options.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|v| v == "All"));
    let mut propagation = options.get("propagationPolicy").and_then(Value::as_str).map(String::from);
    if propagation.is_none() {
        propagation = query.get("propagationPolicy").cloned();
    }
    if propagation.is_none() {
        propagation = match options.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        };
    }
    Ok(DeleteParams {
        propagation_policy: propagation,
        precondition_uid: options.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from),
        precondition_resource_version: options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run,
        user: Some(user.clone()),
    })
}
