//! One tenant snapshot per tenant and drift interval: the drift re-checks of runs waiting for
//! confirmation read through it, so the first re-check of an interval reads Graph and the rest reuse it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use restore_core::tenant::{TenantError, TenantErrorKind};
use serde_json::Value;
use tokio::sync::OnceCell;

/// What one read answered (errors are never kept: the next reader asks Graph again).
#[derive(Clone)]
enum Answer {
    One(Option<Value>),
    Many(Vec<Value>),
    Batch(Vec<Result<Option<Value>, TenantError>>),
}

/// The reads of one tenant during one interval, each asked of Graph at most once.
pub struct Snapshot {
    taken: jiff::Timestamp,
    answers: std::sync::Mutex<HashMap<String, Arc<OnceCell<Answer>>>>,
}

impl Snapshot {
    fn new(taken: jiff::Timestamp) -> Self {
        Snapshot { taken, answers: std::sync::Mutex::new(HashMap::new()) }
    }

    fn cell(&self, key: String) -> Arc<OnceCell<Answer>> {
        let mut answers = self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        answers.entry(key).or_default().clone()
    }
}

/// The snapshots of every tenant, each replaced once it is older than the interval.
pub struct TenantSnapshots {
    interval: Duration,
    snapshots: std::sync::Mutex<HashMap<String, Arc<Snapshot>>>,
}

impl TenantSnapshots {
    /// Snapshots that last `interval`.
    pub fn new(interval: Duration) -> Self {
        TenantSnapshots { interval, snapshots: std::sync::Mutex::new(HashMap::new()) }
    }

    /// The current snapshot of `tenant` (a key naming the IntuneTenant and its version) at `now`;
    /// a new one when the last is older than the interval. Stale snapshots of any tenant go.
    pub fn current(&self, tenant: &str, now: jiff::Timestamp) -> Arc<Snapshot> {
        let fresh = |s: &Snapshot| {
            let age = now.duration_since(s.taken);
            age >= jiff::SignedDuration::ZERO && age.unsigned_abs() < self.interval
        };
        let mut snapshots = self.snapshots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        snapshots.retain(|_, s| fresh(s));
        snapshots.entry(tenant.to_string()).or_insert_with(|| Arc::new(Snapshot::new(now))).clone()
    }

    /// How many tenants hold a snapshot now.
    pub fn len(&self) -> usize {
        self.snapshots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no tenant holds a snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Snapshot {
    async fn answer<F, Fut>(&self, key: String, ask: F) -> Result<Answer, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, TenantError>>,
    {
        self.cell(key).get_or_try_init(ask).await.cloned()
    }

    /// `get` of `path`, asked of Graph through `ask` only the first time in this snapshot.
    pub async fn get<F, Fut>(&self, path: &str, ask: F) -> Result<Option<Value>, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>, TenantError>>,
    {
        match self.answer(format!("get {path}"), || async { ask().await.map(Answer::One) }).await? {
            Answer::One(found) => Ok(found),
            _ => Err(unexpected()),
        }
    }

    /// `list` of `path`, asked of Graph through `ask` only the first time in this snapshot.
    pub async fn list<F, Fut>(&self, path: &str, ask: F) -> Result<Vec<Value>, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Value>, TenantError>>,
    {
        match self.answer(format!("list {path}"), || async { ask().await.map(Answer::Many) }).await? {
            Answer::Many(items) => Ok(items),
            _ => Err(unexpected()),
        }
    }

    /// `get_many` of `paths`, asked of Graph through `ask` only the first time in this snapshot.
    pub async fn get_many<F, Fut>(
        &self,
        paths: &[String],
        ask: F,
    ) -> Result<Vec<Result<Option<Value>, TenantError>>, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Result<Option<Value>, TenantError>>, TenantError>>,
    {
        let key = format!("batch {}", paths.join("\n"));
        match self.answer(key, || async { ask().await.map(Answer::Batch) }).await? {
            Answer::Batch(found) => Ok(found),
            _ => Err(unexpected()),
        }
    }
}

/// Why a write through a snapshot was refused: drift re-checks only read.
pub fn write_refused() -> TenantError {
    TenantError::new(TenantErrorKind::Unavailable, "a drift re-check only reads the tenant")
}

fn unexpected() -> TenantError {
    TenantError::new(TenantErrorKind::Unavailable, "the snapshot holds another kind of answer for this read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_lasts_one_interval() {
        let snapshots = TenantSnapshots::new(Duration::from_secs(300));
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let first = snapshots.current("ns/a@1", t0);
        let same = snapshots.current("ns/a@1", t0 + jiff::SignedDuration::from_secs(299));
        assert!(Arc::ptr_eq(&first, &same));
        let next = snapshots.current("ns/a@1", t0 + jiff::SignedDuration::from_secs(300));
        assert!(!Arc::ptr_eq(&first, &next));
        assert_eq!(snapshots.len(), 1);
    }
}
