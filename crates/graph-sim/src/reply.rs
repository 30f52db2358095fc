//! The responses the simulator sends, shaped like Microsoft's: Graph's `{"error":{"code","message",
//! "innerError"}}` bodies for API calls and Entra's `AADSTS` bodies for the token endpoint.

use serde_json::{Value, json};

/// A response before it is written to the wire: status, extra headers and an optional JSON body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, body: Value) -> Self {
        Reply { status, headers: Vec::new(), body: Some(body) }
    }

    /// `204 No Content`.
    pub fn no_content() -> Self {
        Reply { status: 204, headers: Vec::new(), body: None }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A Graph error body: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
pub(crate) fn graph_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    let request_id = uuid::Uuid::new_v4().to_string();
    Reply::json(
        status,
        json!({
            "error": {
                "code": code,
                "message": message.into(),
                "innerError": {
                    "date": jiff::Timestamp::now().to_string(),
                    "request-id": request_id,
                    "client-request-id": request_id,
                }
            }
        }),
    )
}

/// 400 `BadRequest`.
pub(crate) fn bad_request(message: impl Into<String>) -> Reply {
    graph_error(400, "BadRequest", message)
}

/// 400 `ModelValidationFailure`, Intune's answer to a payload its model refuses.
pub(crate) fn model_validation(message: impl Into<String>) -> Reply {
    graph_error(400, "ModelValidationFailure", message)
}

/// 404 `ResourceNotFound`.
pub(crate) fn not_found(message: impl Into<String>) -> Reply {
    graph_error(404, "ResourceNotFound", message)
}

/// 405 for a method the resource does not support.
pub(crate) fn method_not_allowed(method: &str, path: &str) -> Reply {
    graph_error(405, "BadRequest", format!("Request method '{method}' is not supported on '{path}'."))
}

/// 429 `TooManyRequests` with `Retry-After` when `retry_after_secs` is given.
pub(crate) fn too_many_requests(retry_after_secs: Option<u64>) -> Reply {
    let reply = graph_error(
        429,
        "TooManyRequests",
        "Too many requests: the write limit for this application in this tenant was reached. Retry later.",
    );
    match retry_after_secs {
        Some(secs) => reply.with_header("Retry-After", secs.to_string()),
        None => reply,
    }
}

/// An Entra ID (v2.0 token endpoint) error body with its `AADSTS` code.
pub(crate) fn aad_error(status: u16, error: &str, aadsts: u32, description: &str) -> Reply {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = jiff::Timestamp::now().to_string();
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{aadsts}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &aadsts.to_string(),
        }),
    )
}
