//! Microsoft Graph adapter: authentication (secret, certificate, workload identity), paging,
//! `$batch`, write pacing under the tenant's budget, retries, typed errors and counters.

mod client;
mod credentials;
mod endpoints;
mod error;
mod pacing;
mod reads;
mod retry;
mod stats;
mod token;

pub use client::{DEFAULT_FEDERATED_TOKEN_DIR, GraphClient, GraphOptions, GroupRef, MAX_BATCH_REQUESTS, WriteGuard};
pub use credentials::{Credentials, SecretString};
pub use endpoints::{EndpointAllowlist, MICROSOFT_AUTHORITY_HOSTS, MICROSOFT_GRAPH_HOSTS};
pub use error::GraphError;
pub use pacing::WriteBudgets;
pub use reads::DEFAULT_READ_CONCURRENCY;
pub use retry::RetryPolicy;
pub use stats::{GraphStats, GraphStatsSnapshot, RequestCount};
