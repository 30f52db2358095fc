//! The port through which the core reads and writes a tenant: Graph paths under `/beta` and
//! JSON bodies. The Graph adapter implements it over HTTP; tests implement it in memory.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

/// What kind of failure a tenant call met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantErrorKind {
    /// The object does not exist (404).
    NotFound,
    /// A conflicting object exists (409).
    Conflict,
    /// Graph refused the payload (400, with Graph's `error.code`).
    Validation {
        /// Graph's `error.code`, e.g. `ModelValidationFailure`.
        code: String,
    },
    /// Credentials were refused (401/403).
    Authentication,
    /// Throttled beyond the client's retry budget (429).
    Throttled,
    /// A server error or transport failure that outlasted the client's retries.
    Unavailable,
}

/// A failed tenant call. Messages never hold secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TenantError {
    /// Failure kind.
    pub kind: TenantErrorKind,
    /// What happened.
    pub message: String,
    /// How long the service asked the caller to wait before trying again (Graph's `Retry-After`
    /// on a 429 or 503), when it said.
    pub retry_after: Option<Duration>,
}

impl TenantError {
    /// An error of the given kind.
    pub fn new(kind: TenantErrorKind, message: impl Into<String>) -> Self {
        TenantError { kind, message: message.into(), retry_after: None }
    }

    /// The same error, with the wait the service asked for.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, TenantErrorKind::Throttled | TenantErrorKind::Unavailable)
    }
}

/// Reads and writes one tenant. Paths are relative to the Graph `/beta` root, e.g.
/// `deviceManagement/deviceConfigurations/{id}`; query strings may be included.
pub trait TenantPort: Send + Sync {
    /// GET one object; `Ok(None)` on 404.
    fn get(&self, path: &str) -> impl Future<Output = Result<Option<Value>, TenantError>> + Send;

    /// GET a collection, following `@odata.nextLink` to the end.
    fn list(&self, path: &str) -> impl Future<Output = Result<Vec<Value>, TenantError>> + Send;

    /// GET several objects (batched where the adapter can); one result per path, in order.
    fn get_many(
        &self,
        paths: &[String],
    ) -> impl Future<Output = Result<Vec<Result<Option<Value>, TenantError>>, TenantError>> + Send;

    /// POST a new object to a collection; returns the created object (with its new `id`).
    fn create(&self, collection: &str, body: &Value) -> impl Future<Output = Result<Value, TenantError>> + Send;

    /// PATCH an object.
    fn update(&self, path: &str, body: &Value) -> impl Future<Output = Result<(), TenantError>> + Send;

    /// PUT an object or sub-collection (full replace).
    fn replace(&self, path: &str, body: &Value) -> impl Future<Output = Result<(), TenantError>> + Send;

    /// POST an action such as `/assign`; returns the response body, if any.
    fn action(&self, path: &str, body: &Value) -> impl Future<Output = Result<Option<Value>, TenantError>> + Send;

    /// POST an action that must not be repeated blindly (it adds entries, e.g.
    /// `updateDefinitionValues` with `added`): when its outcome is unknown (a timeout or a 5xx after
    /// it left) it is not sent again; the error goes to the caller, who re-reads the object first.
    fn action_once(&self, path: &str, body: &Value) -> impl Future<Output = Result<Option<Value>, TenantError>> + Send {
        self.action(path, body)
    }

    /// HTTP requests sent so far (every page, retry and `$batch`), when the adapter counts them.
    fn requests_sent(&self) -> Option<u64> {
        None
    }
}
