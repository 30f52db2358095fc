//! `restore-operator run`: the kube-runtime controllers for RestoreRun and IntuneTenant behind
//! leader election, with `/metrics`, `/healthz`, `/readyz` and graceful shutdown on SIGTERM.

pub mod audit;
pub mod cluster_objects;
pub mod context;
pub mod execution_events;
pub mod fence;
pub mod graph_port;
pub mod metrics;
pub mod restorerun;
pub mod retention;
pub mod snapshot;
pub mod tenant;
pub mod tenant_lock;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::kube::{IntuneTenant, RestoreRun};
use context::Context;
pub use context::ControllerOptions;

/// Errors of a reconcile or of the controller process.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A stored report or progress record could not be written or read.
    #[error("{0}")]
    Store(#[from] crate::kube::records::StoreError),
    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(String),
    /// The metrics/health listener failed.
    #[error("http listener: {0}")]
    Listen(#[from] std::io::Error),
    /// A bug: an invariant of the controller did not hold.
    #[error("internal: {0}")]
    Internal(String),
}

/// How `run` is set up.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Name of the coordination.k8s.io Lease used for leader election.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// This replica's identity in the Lease (defaults to the pod name).
    pub identity: String,
    /// Seconds a leader's lease lasts without renewal.
    pub lease_seconds: u64,
    /// RestoreRuns reconciled at once.
    pub concurrency: u16,
    /// Reconcile only RestoreRuns and IntuneTenants with these labels (this replica's shard).
    pub watch_label_selector: Option<String>,
    /// Reconcile tunables.
    pub options: ControllerOptions,
    /// PEM roots trusted for url sources besides the system's.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Graph client options.
    pub graph: restore_graph::GraphOptions,
    /// The admin's download policy for backup sources.
    pub fetch_policy: restore_backup::fetch::FetchPolicy,
    /// Finished runs older than this are deleted (`None`: kept forever).
    pub history_limit: Option<Duration>,
    /// Watch Secrets only in these namespaces (empty: as `namespace`).
    pub secret_namespaces: Vec<String>,
}

/// First retry delay after a failed reconcile; doubled per consecutive failure.
const ERROR_BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest retry delay after failed reconciles.
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The delay before retrying after the `failures`-th consecutive failure: exponential, capped,
/// with up to 20 % jitter so many failing objects do not retry in step.
pub fn error_backoff(failures: u32, jitter: f64) -> Duration {
    let exp = ERROR_BACKOFF_BASE.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)));
    exp.min(ERROR_BACKOFF_MAX).mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0))
}

fn object_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

fn error_policy<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    let kind = K::kind(&()).to_string();
    ctx.metrics.reconcile_error(&kind);
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(object_key(object.as_ref())).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = error_backoff(failures, rand_fraction());
    tracing::warn!(kind = %kind, object = %object.name_any(), failures, retry_in_ms = delay.as_millis() as u64, error = %error, "reconcile failed");
    Action::requeue(delay)
}

/// A number in [0, 1) for jitter, from the clock (no need for cryptographic randomness).
fn rand_fraction() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// Runs a reconcile and forgets the object's failure count when it succeeds.
async fn with_backoff_reset<K, F, Fut>(
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, ControllerError>
where
    K: kube::Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, ControllerError>>,
{
    let key = object_key(object.as_ref());
    let result = reconcile(object, ctx.clone()).await;
    if result.is_ok() {
        ctx.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
    }
    result
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown`.
async fn serve_http(
    listen: SocketAddr,
    ctx: Arc<Context>,
    leading: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    use axum::{Router, http::StatusCode, routing::get};
    let metrics_ctx = ctx.clone();
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics_ctx.render_metrics() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if leading.load(Ordering::SeqCst) { (StatusCode::OK, "leader") } else { (StatusCode::OK, "standby") }
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing in-flight reconciles (executions stay resumable)");
        token.cancel();
    });
}

/// Runs the controllers: waits for leadership, reconciles until SIGTERM or lost leadership.
pub async fn run(config: RunConfig) -> Result<(), ControllerError> {
    let client = Client::try_default().await?;
    let fetcher = restore_backup::fetch::Fetcher::with_policy(
        config.extra_roots_pem.as_deref(),
        restore_backup::Limits::default(),
        config.fetch_policy.clone(),
    )
    .map_err(|e| ControllerError::Internal(e.to_string()))?;
    let leading = Arc::new(AtomicBool::new(false));
    let mut options = config.options.clone();
    options.lock_namespace.get_or_insert_with(|| config.lease_namespace.clone());
    let fence = fence::LeaderFence::new(
        client.clone(),
        &config.lease_namespace,
        &config.lease_name,
        &config.identity,
        leading.clone(),
    );
    // Every tenant write is checked against the leader Lease right before it is sent.
    let graph = restore_graph::GraphOptions { write_guard: Some(fence.write_guard()), ..config.graph.clone() };
    let mut ctx = Context::new(client.clone(), fetcher.clone(), graph, options).with_fence(fence);
    // This replica may follow a killed one: each tenant's write budget starts spent (issue 17).
    ctx.write_budgets = restore_graph::WriteBudgets::after_restart();
    let ctx = Arc::new(ctx);
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    // Downloads stop at shutdown instead of holding the Lease until they time out.
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            fetcher.shutdown();
        }
    });
    let http = tokio::spawn(serve_http(config.listen, ctx.clone(), leading.clone(), shutdown.clone()));

    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(config.lease_seconds)
        .with_grace((config.lease_seconds / 3).max(1))
        .build()
        .await
        .map_err(|e| ControllerError::Lease(e.to_string()))?;
    let (mut lease, lease_task) = manager.watch().await;
    tracing::info!(
        identity = %config.identity,
        lease = %config.lease_name,
        shard = config.watch_label_selector.as_deref().unwrap_or("(all)"),
        "waiting for leadership"
    );
    loop {
        if *lease.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = lease.changed() => if changed.is_err() {
                return Err(ControllerError::Lease("the lease manager stopped".into()));
            },
            _ = shutdown.cancelled() => {
                drop(lease);
                let _ = lease_task.await;
                return Ok(());
            }
        }
    }
    leading.store(true, Ordering::SeqCst);
    tracing::info!(identity = %config.identity, "leading; starting controllers");

    // Losing the lease stops the controllers at once: two replicas never execute the same run.
    // On shutdown the lease is kept (and renewed) until the in-flight reconciles have finished,
    // so a standby cannot start writing while this replica still does.
    let lost = shutdown.child_token();
    let lost_leadership = Arc::new(AtomicBool::new(false));
    let controllers_done = CancellationToken::new();
    let lease_holder = {
        let (lost, lost_leadership, leading, controllers_done) =
            (lost.clone(), lost_leadership.clone(), leading.clone(), controllers_done.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = lease.changed() => {
                        if changed.is_err() || !*lease.borrow_and_update() {
                            leading.store(false, Ordering::SeqCst);
                            lost_leadership.store(true, Ordering::SeqCst);
                            tracing::error!("leadership lost; stopping");
                            lost.cancel();
                            return;
                        }
                    }
                    // Dropping the receiver makes the lease manager release the lease.
                    _ = controllers_done.cancelled() => return,
                }
            }
        })
    };

    let (runs, tenants, secrets, config_maps) = match &config.namespace {
        Some(ns) => (
            Api::<RestoreRun>::namespaced(client.clone(), ns),
            Api::<IntuneTenant>::namespaced(client.clone(), ns),
            Api::<Secret>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
        ),
        None => {
            (Api::all(client.clone()), Api::all(client.clone()), Api::all(client.clone()), Api::all(client.clone()))
        }
    };
    // A shard sees only its own runs and tenants; the per-Entra-tenant Leases stay global.
    let sharded = || match &config.watch_label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let run_controller = Controller::new(runs.clone(), sharded());
    let run_store = run_controller.store();
    let _ = ctx.run_store.set(run_store.clone());
    let tenant_store = run_store.clone();
    let waiting_store = run_store.clone();
    let backup_config_maps: Api<PartialObjectMeta<ConfigMap>> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let run_controller = run_controller
        .owns(config_maps.clone(), watcher::Config::default().labels(crate::kube::records::RUN_LABEL))
        // A run waiting for its source ConfigMap wakes as soon as it appears (metadata only: the
        // backups themselves are never cached).
        .watches(backup_config_maps, watcher::Config::default(), move |cm: PartialObjectMeta<ConfigMap>| {
            runs_waiting_for(&waiting_store, cm.namespace(), &cm.name_any())
        })
        // Every tenant: a run of this shard may name a tenant another shard checks.
        .watches(tenants.clone(), watcher::Config::default(), move |tenant: IntuneTenant| {
            let ns = tenant.namespace();
            let name = tenant.name_any();
            tenant_store
                .state()
                .into_iter()
                .filter(|r| r.namespace() == ns && r.spec.tenant_ref.name == name)
                .map(|r| ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on({
            let lost = lost.clone();
            async move { lost.cancelled().await }
        })
        .run(|o, c| with_backoff_reset(o, c, restorerun::reconcile), error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "restorerun controller event");
            }
        });

    let tenant_controller = Controller::new(tenants.clone(), sharded());
    let tenant_reader = tenant_controller.store();
    let secret_apis = if config.secret_namespaces.is_empty() {
        vec![secrets]
    } else {
        config.secret_namespaces.iter().map(|ns| Api::<Secret>::namespaced(client.clone(), ns)).collect()
    };
    let tenant_controller = secret_apis
        .into_iter()
        .fold(tenant_controller, |controller, secrets| {
            let tenant_reader = tenant_reader.clone();
            controller.watches(secrets, watcher::Config::default(), move |secret: Secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                tenant_reader
                    .state()
                    .into_iter()
                    .filter(|t| t.namespace() == ns && references_secret(t, &name))
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            })
        })
        .graceful_shutdown_on({
            let lost = lost.clone();
            async move { lost.cancelled().await }
        })
        .run(|o, c| with_backoff_reset(o, c, tenant::reconcile), error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "tenant controller event");
            }
        });

    let retention = config.history_limit.map(|limit| {
        tokio::spawn(retention::run_periodically(client.clone(), config.namespace.clone(), limit, lost.clone()))
    });
    let sweeper = sweep_audit_records(config_maps, lost.clone());
    let snapshots = forget_stale_snapshots(ctx.clone(), lost.clone());
    tokio::join!(run_controller, tenant_controller, sweeper, snapshots);
    lost.cancel();
    if let Some(task) = retention {
        let _ = task.await;
    }
    leading.store(false, Ordering::SeqCst);
    shutdown.cancel();
    controllers_done.cancel();
    let _ = lease_holder.await;
    tracing::info!("controllers stopped; releasing the lease");
    let _ = lease_task.await;
    let _ = http.await;
    if lost_leadership.load(Ordering::SeqCst) {
        return Err(ControllerError::Lease("leadership lost; exiting so a new leader takes over".into()));
    }
    tracing::info!("stopped");
    Ok(())
}

/// The runs resolving their source from the ConfigMap `namespace/name`.
fn runs_waiting_for(
    runs: &kube::runtime::reflector::Store<RestoreRun>,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<RestoreRun>> {
    runs.state()
        .into_iter()
        .filter(|r| r.namespace() == namespace)
        .filter(|r| r.spec.source.config_map_ref.as_ref().is_some_and(|c| c.name == name))
        .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(restore_core::api::Phase::ResolvingSource))
        .map(|r| ObjectRef::from_obj(&*r))
        .collect()
}

/// Lets go of tenant snapshots past their drift interval, every interval, until `stop`: a
/// snapshot is otherwise let go only when a run is reconciled.
async fn forget_stale_snapshots(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(restore_core::wizard::DRIFT_RECHECK) => {}
            _ = stop.cancelled() => return,
        }
        let held = ctx.snapshots.forget_stale(ctx.clock.now());
        tracing::debug!(tenants = held, "stale tenant snapshots let go");
    }
}

/// How often expired audit records are looked for.
const AUDIT_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Removes audit records past their retention, at start and then hourly, until `stop`.
async fn sweep_audit_records(config_maps: Api<ConfigMap>, stop: CancellationToken) {
    loop {
        match audit::sweep(&config_maps, jiff::Timestamp::now()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired audit records removed"),
            Err(e) => tracing::warn!(error = %e, "audit records not swept"),
        }
        tokio::select! {
            _ = tokio::time::sleep(AUDIT_SWEEP_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Whether a tenant's auth references the Secret `name`.
fn references_secret(tenant: &IntuneTenant, name: &str) -> bool {
    let auth = &tenant.spec.auth;
    auth.client_secret_ref.as_ref().is_some_and(|r| r.name == name)
        || auth.certificate_ref.as_ref().is_some_and(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_backoff_doubles_and_is_capped() {
        assert_eq!(error_backoff(1, 0.0), Duration::from_secs(2));
        assert_eq!(error_backoff(2, 0.0), Duration::from_secs(4));
        assert_eq!(error_backoff(5, 0.0), Duration::from_secs(32));
        assert_eq!(error_backoff(40, 0.0), ERROR_BACKOFF_MAX);
        assert_eq!(error_backoff(1, 1.0), Duration::from_millis(2400));
    }
}
