//! Errors of the emulator: `ApiError` is what the HTTP API answers (a Kubernetes `Status`),
//! `EmulatorError` is what the library API returns to test code.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` (422) answer, as the API server reports it in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// Machine-readable reason, e.g. `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The human message (already includes the field path, like the API server).
    pub message: String,
    /// Dotted field path, e.g. `spec.source.url`.
    pub field: String,
}

/// An API error answered as a `Status` object with an HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (CamelCase), e.g. `NotFound`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the server names the object.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 NotFound for a named object of a resource (`plural.group`).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(plural, group)))
            .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 404 NotFound for a path that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(plural, group)))
            .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 409 Conflict, e.g. a stale `resourceVersion` on update.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(plural, group)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 409 Conflict from server-side apply when another field manager owns a field.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        Self::new(409, "Conflict", message).with_details(json!({"causes": causes}))
    }

    /// 422 Invalid with field causes, message formatted like the API server.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<FieldCause>) -> Self {
        let qualified_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let summary = if causes.len() == 1 {
            causes[0].message.clone()
        } else {
            format!("[{}]", causes.iter().map(|c| c.message.as_str()).collect::<Vec<_>>().join(", "))
        };
        // In `details.causes` the message does not repeat the field (kubectl prints `field: message`).
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| {
                let prefix = format!("{}: ", c.field);
                let message = c.message.strip_prefix(&prefix).unwrap_or(&c.message);
                json!({"reason": c.reason, "message": message, "field": c.field})
            })
            .collect();
        Self::new(422, "Invalid", format!("{qualified_kind} \"{name}\" is invalid: {summary}"))
            .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes_json}))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 410 Gone with reason `Expired`: a resource version or continue token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object the API server would answer.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

/// Errors of the emulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The API refused the request.
    #[error("API error: {0}")]
    Api(#[from] ApiError),
    /// A YAML or JSON document could not be read.
    #[error("cannot parse document: {0}")]
    Parse(String),
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The listener could not be bound.
    #[error("cannot bind the emulator's listener: {0}")]
    Bind(std::io::Error),
    /// The kube client could not be built.
    #[error("cannot build a kube client: {0}")]
    Client(String),
}
