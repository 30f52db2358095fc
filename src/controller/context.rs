//! What every reconcile shares: the kube client, event recorder, metrics, Graph client cache and
//! each run's in-memory working state (its step runner and executor).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use restore_backup::fetch::Fetcher;
use restore_graph::{GraphClient, GraphOptions, GraphStats, WriteBudgets};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::fence::LeaderFence;
use super::metrics::Metrics;
use super::snapshot::TenantSnapshots;
use crate::driver::{Clock, RunWork};

/// Tunables of the controller.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Longest a single reconcile keeps running steps before it requeues itself (keeps shutdown
    /// and other runs responsive during a long execution).
    pub reconcile_budget: Duration,
    /// Largest change set before the checks warn.
    pub large_change_threshold: Option<u32>,
    /// Namespace of the per-tenant execution Leases (the operator's own namespace); `None`: each
    /// run's namespace.
    pub lock_namespace: Option<String>,
    /// How long an execution's audit record is kept after the run ended or was deleted.
    pub audit_retention: Duration,
    /// RestoreRuns of one IntuneTenant reconciled at once (`None`: as many as the global limit);
    /// the others wait their turn without holding a slot, so one slow tenant never holds them all.
    pub per_tenant_concurrency: Option<usize>,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            reconcile_budget: Duration::from_secs(15),
            large_change_threshold: None,
            lock_namespace: None,
            audit_retention: DEFAULT_AUDIT_RETENTION,
            per_tenant_concurrency: None,
        }
    }
}

/// How long audit records are kept by default (90 days).
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// A run's working state, kept between reconciles (rebuilt from the cluster after a restart).
#[derive(Default)]
pub struct RunState {
    /// The step runner's cached plan and the executor of the approved plan.
    pub work: RunWork,
    /// The phase last seen and when (for phase-duration metrics).
    pub phase_since: Option<(String, std::time::Instant)>,
}

/// Shared by every reconcile.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Counters shared by every Graph client.
    pub graph_stats: GraphStats,
    /// Options for new Graph clients.
    pub graph_options: GraphOptions,
    /// Graph clients by tenant and credential version.
    pub graph_clients: Mutex<HashMap<String, GraphClient>>,
    /// Downloads for url and Flux sources.
    pub fetcher: Fetcher,
    /// Working state per RestoreRun uid.
    pub runs: Mutex<HashMap<String, Arc<Mutex<RunState>>>>,
    /// Tunables.
    pub options: ControllerOptions,
    /// The RestoreRun cache of the running controller (for counting runs by phase).
    pub run_store: std::sync::OnceLock<kube::runtime::reflector::Store<crate::kube::RestoreRun>>,
    /// Consecutive reconcile failures per object (`Kind/namespace/name`), for the error backoff.
    pub failures: std::sync::Mutex<HashMap<String, u32>>,
    /// Checks, before every write, that this replica still holds the leader Lease (`None`: a
    /// single in-process controller, as in tests).
    pub fence: Option<LeaderFence>,
    /// Write budgets shared by every IntuneTenant naming the same Entra tenant.
    pub write_budgets: WriteBudgets,
    /// The wizard's clock.
    pub clock: Clock,
    /// The tenant snapshots drift re-checks share (one per tenant and drift interval).
    pub snapshots: TenantSnapshots,
    /// Per run uid: the resourceVersion this controller last saw or wrote (an older cached copy is
    /// read again before it is acted on).
    pub seen_versions: std::sync::Mutex<HashMap<String, String>>,
    /// Per run uid: when the run last compared its backup with the tenant (for drift re-checks).
    pub tenant_read_at: std::sync::Mutex<HashMap<String, jiff::Timestamp>>,
    /// Reconcile slots per IntuneTenant (`namespace/name`), when limited.
    pub tenant_slots: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Context {
    /// A context around a client.
    pub fn new(
        client: kube::Client,
        fetcher: Fetcher,
        graph_options: GraphOptions,
        options: ControllerOptions,
    ) -> Self {
        let reporter = Reporter { controller: "restore-operator".into(), instance: std::env::var("POD_NAME").ok() };
        let graph_stats = GraphStats::default();
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Metrics::new(graph_stats.clone()),
            graph_stats,
            graph_options,
            graph_clients: Mutex::new(HashMap::new()),
            fetcher,
            runs: Mutex::new(HashMap::new()),
            options,
            failures: std::sync::Mutex::new(HashMap::new()),
            run_store: std::sync::OnceLock::new(),
            fence: None,
            write_budgets: WriteBudgets::default(),
            clock: Clock::default(),
            snapshots: TenantSnapshots::new(restore_core::wizard::DRIFT_RECHECK),
            seen_versions: std::sync::Mutex::new(HashMap::new()),
            tenant_read_at: std::sync::Mutex::new(HashMap::new()),
            tenant_slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The same context, writing only while `fence` holds.
    pub fn with_fence(mut self, fence: LeaderFence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// `Ok` while the leader Lease, read now, names this replica (always, with no fence set).
    pub async fn ensure_leading(&self) -> Result<(), String> {
        match &self.fence {
            Some(fence) => fence.ensure().await,
            None => Ok(()),
        }
    }

    /// The working state of the run with this uid.
    pub async fn run_state(&self, uid: &str) -> Arc<Mutex<RunState>> {
        let mut runs = self.runs.lock().await;
        runs.entry(uid.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(RunState { work: self.empty_work(), phase_since: None })))
            .clone()
    }

    /// Drops the working state of runs the controller's cache no longer holds (deleted runs).
    pub async fn forget_deleted(&self) {
        let Some(store) = self.run_store.get() else { return };
        let live: std::collections::HashSet<String> =
            store.state().iter().filter_map(|r| r.metadata.uid.clone()).collect();
        lock(&self.seen_versions).retain(|uid, _| live.contains(uid));
        lock(&self.tenant_read_at).retain(|uid, _| live.contains(uid));
        self.runs.lock().await.retain(|uid, _| {
            let kept = live.contains(uid);
            if !kept {
                // A deleted run's download in flight stops now, not at its timeouts.
                self.fetcher.cancel_run(uid);
            }
            kept
        });
    }

    /// Drops the working state of a finished or deleted run.
    pub async fn forget(&self, uid: &str) {
        self.runs.lock().await.remove(uid);
    }

    /// Notes the resourceVersion of the run `uid` this controller just saw or wrote.
    pub fn saw_version(&self, uid: &str, version: Option<String>) {
        if let Some(version) = version {
            lock(&self.seen_versions).insert(uid.to_string(), version);
        }
    }

    /// Whether `version` of the run `uid` is not the one this controller last saw or wrote (a
    /// cached copy older than its own status write, or someone else's change).
    pub fn version_differs(&self, uid: &str, version: Option<&str>) -> bool {
        lock(&self.seen_versions).get(uid).is_some_and(|seen| Some(seen.as_str()) != version)
    }

    /// Notes that the run `uid` compared its backup with the tenant at `at`.
    pub fn read_tenant(&self, uid: &str, at: jiff::Timestamp) {
        lock(&self.tenant_read_at).insert(uid.to_string(), at);
    }

    /// Whether the run `uid` last compared its backup with the tenant at least `interval` before
    /// `now` (or never, as far as this process knows).
    pub fn tenant_read_due(&self, uid: &str, now: jiff::Timestamp, interval: Duration) -> bool {
        lock(&self.tenant_read_at).get(uid).is_none_or(|at| {
            let age = now.duration_since(*at);
            age < jiff::SignedDuration::ZERO || age.unsigned_abs() >= interval
        })
    }

    /// A reconcile slot of the IntuneTenant `key` when one is free (`None`: all are taken; try
    /// again later without holding a global slot). Always granted when tenants are not limited.
    pub fn tenant_slot(&self, key: &str) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(limit) = self.options.per_tenant_concurrency else { return Some(None) };
        let slots = lock(&self.tenant_slots)
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
            .clone();
        slots.try_acquire_owned().ok().map(Some)
    }

    /// Working memory holding nothing loaded yet: what a waiting run keeps instead of its backup,
    /// scope and report (reloaded, and verified by digest, when it next needs them).
    pub fn empty_work(&self) -> RunWork {
        let mut work = RunWork::default();
        work.runner.large_change_threshold = self.options.large_change_threshold;
        work
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Context {
    /// `/metrics`: the exposition, counting the cached RestoreRuns by phase.
    pub fn render_metrics(&self) -> String {
        let runs = self.run_store.get().map(|store| store.state()).unwrap_or_default();
        self.metrics.render_runs(runs.iter().map(|run| super::metrics::RunSample {
            uid: run.metadata.uid.as_deref().unwrap_or_default(),
            namespace: run.metadata.namespace.as_deref().unwrap_or_default(),
            tenant: &run.spec.tenant_ref.name,
            phase: run.status.as_ref().and_then(|s| s.phase).map_or("Pending", |p| p.as_str()),
        }))
    }
}
