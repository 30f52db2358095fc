//! The Graph adapter's typed errors, how Graph's error bodies become them, and how they map
//! onto the core's `TenantError`. Messages carry Graph's words, never a secret or a token.

use std::time::Duration;

use restore_core::tenant::{TenantError, TenantErrorKind};
use serde_json::Value;

/// A failed Graph or token call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The client configuration is unusable (bad URL, unreadable key or certificate…).
    #[error("Graph client configuration: {0}")]
    Config(String),
    /// Entra ID refused the credentials, or Graph refused the token (401).
    #[error("authentication failed: {message}")]
    Authentication {
        /// Entra's `AADSTS…` code and description, or Graph's message.
        message: String,
    },
    /// The app lacks a permission (403).
    #[error("forbidden: {message}")]
    Forbidden {
        /// Graph's message.
        message: String,
    },
    /// Throttled (429) beyond the retry budget; `wait` is the last wait Graph asked for.
    #[error("throttled by Graph; retry after {wait:?}")]
    Throttled {
        /// How long Graph asked to wait (or the backoff the client computed).
        wait: Duration,
        /// The wait Graph's `Retry-After` asked for, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The object does not exist (404).
    #[error("not found: {message}")]
    NotFound {
        /// Graph's message.
        message: String,
    },
    /// A conflicting object exists (409, 412), or a retried create found several candidates.
    #[error("conflict: {message}")]
    Conflict {
        /// Graph's message.
        message: String,
    },
    /// Graph refused the payload (400), with its `error.code` kept.
    #[error("Graph refused the request ({code}): {message}")]
    Validation {
        /// Graph's `error.code`, e.g. `ModelValidationFailure`.
        code: String,
        /// Graph's `error.message`.
        message: String,
    },
    /// A server error (5xx) that outlasted the retries.
    #[error("Graph server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Graph's message.
        message: String,
        /// The wait Graph's `Retry-After` asked for (a 503 may carry one), when it sent one.
        retry_after: Option<Duration>,
    },
    /// Network failure or timeout that outlasted the retries.
    #[error("transport error: {0}")]
    Transport(String),
    /// A response the client could not understand.
    #[error("unexpected Graph response: {0}")]
    Unexpected(String),
    /// The write guard kept a write from being sent (e.g. this replica no longer leads).
    #[error("write not sent: {0}")]
    WriteRefused(String),
}

impl GraphError {
    /// Builds the error for a non-success status from Graph's error body.
    pub(crate) fn from_response(status: u16, body: Option<&Value>, retry_after: Option<Duration>) -> GraphError {
        let error = body.and_then(|b| b.get("error"));
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_str).unwrap_or("").to_string();
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}"));
        // Graph's request id, which Microsoft support asks for, stays with the message (and so with
        // the item's result in the progress record).
        let request_id =
            error.and_then(|e| e.get("innerError")).and_then(|i| i.get("request-id")).and_then(Value::as_str);
        let message = match request_id {
            Some(id) => format!("{message} (request-id {id})"),
            None => message,
        };
        match status {
            400 | 422 => {
                GraphError::Validation { code: if code.is_empty() { "BadRequest".into() } else { code }, message }
            }
            401 => GraphError::Authentication { message },
            403 => GraphError::Forbidden { message },
            404 => GraphError::NotFound { message },
            409 | 412 => GraphError::Conflict { message },
            429 => GraphError::Throttled { wait: retry_after.unwrap_or_default(), retry_after: None },
            500..=599 => GraphError::Server { status, message, retry_after: None },
            _ => GraphError::Unexpected(format!("HTTP {status}: {message}")),
        }
    }

    /// The same error, recording the wait Graph's `Retry-After` asked for (429 and 5xx only).
    pub(crate) fn with_server_wait(mut self, wait: Option<Duration>) -> GraphError {
        if let GraphError::Throttled { retry_after, .. } | GraphError::Server { retry_after, .. } = &mut self {
            *retry_after = wait;
        }
        self
    }

    /// The wait Graph's `Retry-After` asked for, when the error carries one.
    pub fn server_wait(&self) -> Option<Duration> {
        match self {
            GraphError::Throttled { retry_after, .. } | GraphError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, GraphError::Throttled { .. } | GraphError::Server { .. } | GraphError::Transport(_))
    }
}

impl From<GraphError> for TenantError {
    fn from(error: GraphError) -> TenantError {
        let message = error.to_string();
        let retry_after = error.server_wait();
        let kind = match error {
            GraphError::Authentication { .. } | GraphError::Forbidden { .. } => TenantErrorKind::Authentication,
            GraphError::Throttled { .. } => TenantErrorKind::Throttled,
            GraphError::NotFound { .. } => TenantErrorKind::NotFound,
            GraphError::Conflict { .. } => TenantErrorKind::Conflict,
            GraphError::Validation { code, .. } => TenantErrorKind::Validation { code },
            GraphError::Server { .. }
            | GraphError::Transport(_)
            | GraphError::Unexpected(_)
            | GraphError::WriteRefused(_)
            | GraphError::Config(_) => TenantErrorKind::Unavailable,
        };
        TenantError::new(kind, message).with_retry_after(retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_error_bodies_keep_code_and_message() {
        let body = json!({"error": {"code": "ModelValidationFailure", "message": "Cannot create an abstract class."}});
        let error = GraphError::from_response(400, Some(&body), None);
        assert_eq!(
            error,
            GraphError::Validation {
                code: "ModelValidationFailure".into(),
                message: "Cannot create an abstract class.".into()
            }
        );
        let tenant: TenantError = error.into();
        assert_eq!(tenant.kind, TenantErrorKind::Validation { code: "ModelValidationFailure".into() });
    }

    #[test]
    fn the_request_id_stays_with_the_message() {
        let body = json!({"error": {"code": "BadRequest", "message": "Invalid setting.",
            "innerError": {"date": "2026-01-01T00:00:00", "request-id": "6f1c0d3e-1", "client-request-id": "6f1c0d3e-1"}}});
        let error = GraphError::from_response(400, Some(&body), None);
        assert_eq!(
            error.to_string(),
            "Graph refused the request (BadRequest): Invalid setting. (request-id 6f1c0d3e-1)"
        );
    }

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |status| TenantError::from(GraphError::from_response(status, None, None)).kind;
        assert_eq!(kind(401), TenantErrorKind::Authentication);
        assert_eq!(kind(403), TenantErrorKind::Authentication);
        assert_eq!(kind(404), TenantErrorKind::NotFound);
        assert_eq!(kind(409), TenantErrorKind::Conflict);
        assert_eq!(kind(429), TenantErrorKind::Throttled);
        assert_eq!(kind(503), TenantErrorKind::Unavailable);
        assert!(GraphError::from_response(429, None, Some(Duration::from_secs(3))).is_transient());
        assert!(!GraphError::from_response(400, None, None).is_transient());
    }
}
