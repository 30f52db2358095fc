//! The tenant port of one reconcile: the IntuneTenant's Graph client, built (credentials read) only
//! when a step first talks to the tenant, so a resting run costs no Secret read.

use std::sync::Arc;

use restore_core::tenant::{TenantError, TenantErrorKind, TenantPort};
use restore_graph::GraphClient;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::context::Context;
use super::snapshot::{Snapshot, write_refused};
use super::tenant::{forget_graph_client, run_graph_client};
use crate::kube::IntuneTenant;

/// A Graph client made on first use from the tenant's credentials.
pub struct LazyGraph<'a> {
    ctx: &'a Context,
    tenant: Option<&'a IntuneTenant>,
    client: OnceCell<GraphClient>,
    /// Reads answered from this shared snapshot (drift re-checks); writes refused.
    snapshot: Option<Arc<Snapshot>>,
}

impl<'a> LazyGraph<'a> {
    /// The port of `tenant` (`None`: every call fails, the tenant is missing).
    pub fn new(ctx: &'a Context, tenant: Option<&'a IntuneTenant>) -> Self {
        LazyGraph { ctx, tenant, client: OnceCell::new(), snapshot: None }
    }

    /// A read-only port of `tenant` answering from `snapshot` what it already holds.
    pub fn reading(ctx: &'a Context, tenant: Option<&'a IntuneTenant>, snapshot: Arc<Snapshot>) -> Self {
        LazyGraph { ctx, tenant, client: OnceCell::new(), snapshot: Some(snapshot) }
    }

    async fn client(&self) -> Result<&GraphClient, TenantError> {
        self.client
            .get_or_try_init(|| async {
                let tenant = self
                    .tenant
                    .ok_or_else(|| TenantError::new(TenantErrorKind::Unavailable, "the IntuneTenant is missing"))?;
                run_graph_client(self.ctx, tenant)
                    .await
                    .map_err(|e| TenantError::new(TenantErrorKind::Authentication, format!("tenant credentials: {e}")))
            })
            .await
    }

    fn writable(&self) -> Result<(), TenantError> {
        if self.snapshot.is_some() { Err(write_refused()) } else { Ok(()) }
    }

    /// Passes `result` on; refused credentials drop the cached client, so the next attempt reads
    /// the Secret again (a rotation this process did not see, e.g. a tenant another shard checks).
    async fn checked<T>(&self, result: Result<T, TenantError>) -> Result<T, TenantError> {
        if let (Err(e), Some(tenant)) = (&result, self.tenant)
            && e.kind == TenantErrorKind::Authentication
        {
            forget_graph_client(self.ctx, tenant).await;
        }
        result
    }
}

impl TenantPort for LazyGraph<'_> {
    async fn get(&self, path: &str) -> Result<Option<Value>, TenantError> {
        match &self.snapshot {
            Some(snapshot) => {
                snapshot.get(path, || async { self.checked(self.client().await?.get(path).await).await }).await
            }
            None => self.checked(self.client().await?.get(path).await).await,
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, TenantError> {
        match &self.snapshot {
            Some(snapshot) => {
                snapshot.list(path, || async { self.checked(self.client().await?.list(path).await).await }).await
            }
            None => self.checked(self.client().await?.list(path).await).await,
        }
    }

    async fn get_many(&self, paths: &[String]) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError> {
        match &self.snapshot {
            Some(snapshot) => {
                snapshot
                    .get_many(paths, || async { self.checked(self.client().await?.get_many(paths).await).await })
                    .await
            }
            None => self.checked(self.client().await?.get_many(paths).await).await,
        }
    }

    async fn create(&self, collection: &str, body: &Value) -> Result<Value, TenantError> {
        self.writable()?;
        self.checked(self.client().await?.create(collection, body).await).await
    }

    async fn update(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.writable()?;
        self.checked(self.client().await?.update(path, body).await).await
    }

    async fn replace(&self, path: &str, body: &Value) -> Result<(), TenantError> {
        self.writable()?;
        self.checked(self.client().await?.replace(path, body).await).await
    }

    async fn action(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        self.writable()?;
        self.checked(self.client().await?.action(path, body).await).await
    }

    async fn action_once(&self, path: &str, body: &Value) -> Result<Option<Value>, TenantError> {
        self.writable()?;
        self.checked(self.client().await?.action_once(path, body).await).await
    }
}
