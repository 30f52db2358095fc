//! One tenant snapshot per tenant and drift interval: the drift re-checks of runs waiting for
//! confirmation read through it, so the first re-check of an interval reads Graph and the rest reuse it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use restore_core::tenant::{TenantError, TenantErrorKind};
use serde_json::Value;
use tokio::sync::OnceCell;

/// What one read answered, held as JSON text until it is read again: a tree of
/// `serde_json::Value`s takes about five times the memory of its text, and a snapshot of a large
/// tenant is held for a whole interval. A failed read, or a `$batch` with a failed request in it,
/// is never kept: the next reader asks Graph again.
enum Answer {
    One(Option<Packed>),
    Many(Packed),
    Batch(Vec<Option<Packed>>),
}

impl Answer {
    /// The bytes of text it keeps.
    fn bytes(&self) -> usize {
        match self {
            Answer::One(found) => found.as_ref().map_or(0, Packed::bytes),
            Answer::Many(items) => items.bytes(),
            Answer::Batch(found) => found.iter().flatten().map(Packed::bytes).sum(),
        }
    }
}

/// The most JSON text the snapshots of all tenants keep at once: about seven 10,000-item tenants
/// (`docs/performance.md`). Past it an answer is given to its reader and not kept, so a tenant
/// with huge answers, or many tenants at once, cost Graph reads rather than the operator's memory.
pub const KEPT_BYTES_LIMIT: usize = 256 * 1024 * 1024;

/// The text every snapshot keeps, counted against one limit for all tenants.
struct KeptBytes {
    used: AtomicUsize,
    limit: usize,
}

impl KeptBytes {
    /// Counts `bytes` in, or nothing (and `false`) when they would pass the limit.
    fn take(&self, bytes: usize) -> bool {
        let fits = |used: usize| used.checked_add(bytes).filter(|total| *total <= self.limit);
        self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, fits).is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// One JSON value as its compact text.
struct Packed(Box<str>);

impl Packed {
    /// The text of `value`; `None` (so nothing is kept) in the unlikely case it cannot be written.
    fn of(value: &impl serde::Serialize) -> Option<Packed> {
        serde_json::to_string(value).ok().map(|text| Packed(text.into_boxed_str()))
    }

    fn bytes(&self) -> usize {
        self.0.len()
    }

    fn unpack<T: serde::de::DeserializeOwned>(&self) -> Result<T, TenantError> {
        serde_json::from_str(&self.0).map_err(|e| unreadable(&e))
    }
}

fn unreadable(e: &serde_json::Error) -> TenantError {
    TenantError::new(TenantErrorKind::Unavailable, format!("the snapshot's copy of an answer is unusable: {e}"))
}

/// What to keep of one object read: `Some(None)` for an object that was not there.
fn pack_one(found: &Option<Value>) -> Option<Option<Packed>> {
    match found {
        Some(value) => Packed::of(value).map(Some),
        None => Some(None),
    }
}

fn unpack_one(found: &Option<Packed>) -> Result<Option<Value>, TenantError> {
    found.as_ref().map(Packed::unpack).transpose()
}

/// The reads of one tenant during one interval, each asked of Graph at most once.
pub struct Snapshot {
    taken: jiff::Timestamp,
    answers: std::sync::Mutex<HashMap<String, Arc<OnceCell<Answer>>>>,
    budget: Arc<KeptBytes>,
    kept: AtomicUsize,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.budget.give_back(*self.kept.get_mut());
    }
}

impl Snapshot {
    fn new(taken: jiff::Timestamp, budget: Arc<KeptBytes>) -> Self {
        Snapshot { taken, answers: std::sync::Mutex::new(HashMap::new()), budget, kept: AtomicUsize::new(0) }
    }

    /// Whether `answer` fits in what all snapshots may keep; if so it is counted as kept here.
    fn fits(&self, answer: &Answer) -> bool {
        let bytes = answer.bytes();
        let fits = self.budget.take(bytes);
        if fits {
            self.kept.fetch_add(bytes, Ordering::SeqCst);
        } else {
            tracing::debug!(bytes, "the drift snapshots keep as much as they may; this answer is not kept");
        }
        fits
    }

    /// The bytes of text this snapshot keeps.
    pub fn kept_bytes(&self) -> usize {
        self.kept.load(Ordering::SeqCst)
    }

    fn cell(&self, key: String) -> Arc<OnceCell<Answer>> {
        let mut answers = self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        answers.entry(key).or_default().clone()
    }

    /// The answer to `key`: the one Graph gave when this reader asked it (`ask`, then kept when
    /// `pack` gives what to keep), or else the kept one read back through `unpack`. A kept answer
    /// that cannot be read back (a bug) is logged and asked of Graph again.
    async fn answer<T, F, Fut>(
        &self,
        key: String,
        ask: F,
        pack: impl FnOnce(&T) -> Option<Answer>,
        unpack: impl FnOnce(&Answer) -> Result<T, TenantError>,
    ) -> Result<T, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, TenantError>>,
    {
        let cell = self.cell(key);
        let mut ask = Some(ask);
        let mut asked = None;
        let kept = cell
            .get_or_try_init(|| async {
                let ask = ask.take().ok_or(Miss::NotKept)?;
                let fresh = ask().await.map_err(Miss::Failed)?;
                let packed = pack(&fresh).filter(|answer| self.fits(answer));
                asked = Some(fresh);
                packed.ok_or(Miss::NotKept)
            })
            .await;
        match (asked, kept) {
            (Some(fresh), _) => Ok(fresh),
            (None, Err(Miss::Failed(e))) => Err(e),
            (None, Err(Miss::NotKept)) => Err(unexpected()),
            (None, Ok(kept)) => match (unpack(kept), ask) {
                (Ok(found), _) => Ok(found),
                (Err(e), Some(ask)) => {
                    tracing::error!(error = %e, "a kept Graph answer could not be read back; asking Graph again");
                    ask().await
                }
                (Err(e), None) => Err(e),
            },
        }
    }
}

/// Why a read left nothing in the snapshot.
enum Miss {
    /// Graph's answer was an error: the next reader asks again.
    Failed(TenantError),
    /// The answer was given to its reader but not kept (a `$batch` with a failed request in it).
    NotKept,
}

/// The snapshots of every tenant, each replaced once it is older than the interval.
pub struct TenantSnapshots {
    interval: Duration,
    snapshots: std::sync::Mutex<HashMap<String, Arc<Snapshot>>>,
    budget: Arc<KeptBytes>,
}

impl TenantSnapshots {
    /// Snapshots that last `interval` and keep at most [`KEPT_BYTES_LIMIT`] of text together.
    pub fn new(interval: Duration) -> Self {
        Self::keeping_at_most(interval, KEPT_BYTES_LIMIT)
    }

    /// Snapshots that last `interval` and keep at most `limit` bytes of text together.
    pub fn keeping_at_most(interval: Duration, limit: usize) -> Self {
        let budget = Arc::new(KeptBytes { used: AtomicUsize::new(0), limit });
        TenantSnapshots { interval, snapshots: std::sync::Mutex::new(HashMap::new()), budget }
    }

    /// The bytes of text all snapshots keep now (those still held by a reader included).
    pub fn kept_bytes(&self) -> usize {
        self.budget.used.load(Ordering::SeqCst)
    }

    /// The current snapshot of `tenant` (a key naming the IntuneTenant and its version) at `now`;
    /// a new one when the last is older than the interval. Stale snapshots of any tenant go.
    pub fn current(&self, tenant: &str, now: jiff::Timestamp) -> Arc<Snapshot> {
        let mut snapshots = self.fresh_only(now);
        let budget = &self.budget;
        snapshots.entry(tenant.to_string()).or_insert_with(|| Arc::new(Snapshot::new(now, budget.clone()))).clone()
    }

    /// Lets go of every snapshot older than the interval at `now` (a tenant whose last waiting
    /// run has ended is asked for no more); returns how many tenants still hold one.
    pub fn forget_stale(&self, now: jiff::Timestamp) -> usize {
        self.fresh_only(now).len()
    }

    fn fresh_only(&self, now: jiff::Timestamp) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Snapshot>>> {
        let fresh = |s: &Snapshot| {
            let age = now.duration_since(s.taken);
            age >= jiff::SignedDuration::ZERO && age.unsigned_abs() < self.interval
        };
        let mut snapshots = self.snapshots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        snapshots.retain(|_, s| fresh(s));
        snapshots
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
    /// `get` of `path`, asked of Graph through `ask` only the first time in this snapshot.
    pub async fn get<F, Fut>(&self, path: &str, ask: F) -> Result<Option<Value>, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>, TenantError>>,
    {
        let pack = |found: &Option<Value>| pack_one(found).map(Answer::One);
        let unpack = |kept: &Answer| match kept {
            Answer::One(found) => unpack_one(found),
            _ => Err(unexpected()),
        };
        self.answer(format!("get {path}"), ask, pack, unpack).await
    }

    /// `list` of `path`, asked of Graph through `ask` only the first time in this snapshot.
    pub async fn list<F, Fut>(&self, path: &str, ask: F) -> Result<Vec<Value>, TenantError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Value>, TenantError>>,
    {
        let pack = |items: &Vec<Value>| Packed::of(items).map(Answer::Many);
        let unpack = |kept: &Answer| match kept {
            Answer::Many(items) => items.unpack(),
            _ => Err(unexpected()),
        };
        self.answer(format!("list {path}"), ask, pack, unpack).await
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
        // A batch with a failed request (throttled, refused) is given to its reader, not kept: the
        // next reader asks again rather than see the failure for the rest of the interval.
        let pack = |found: &Vec<Result<Option<Value>, TenantError>>| {
            let packed = found.iter().map(|result| result.as_ref().ok().and_then(pack_one));
            packed.collect::<Option<Vec<_>>>().map(Answer::Batch)
        };
        let unpack = |kept: &Answer| match kept {
            Answer::Batch(found) => found.iter().map(|one| unpack_one(one).map(Ok)).collect(),
            _ => Err(unexpected()),
        };
        self.answer(format!("batch {}", paths.join("\n")), ask, pack, unpack).await
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
    use std::cell::Cell;

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

    #[test]
    fn each_tenant_has_its_own_snapshot_and_a_stale_one_goes_when_any_is_asked_for() {
        let snapshots = TenantSnapshots::new(Duration::from_secs(300));
        assert!(snapshots.is_empty());
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let a = snapshots.current("ns/a@1", t0);
        let b = snapshots.current("ns/b@1", t0 + jiff::SignedDuration::from_secs(200));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!((snapshots.len(), snapshots.is_empty()), (2, false));
        // Past a's interval, asking for b (still fresh) lets a's snapshot go.
        let b_again = snapshots.current("ns/b@1", t0 + jiff::SignedDuration::from_secs(400));
        assert!(Arc::ptr_eq(&b, &b_again));
        assert_eq!(snapshots.len(), 1);
        // Nobody asks again: the sweep lets b's go once its interval is over, not before.
        assert_eq!(snapshots.forget_stale(t0 + jiff::SignedDuration::from_secs(499)), 1);
        assert_eq!(snapshots.forget_stale(t0 + jiff::SignedDuration::from_secs(500)), 0);
        assert!(snapshots.is_empty());
    }

    fn snapshot() -> Snapshot {
        let budget = Arc::new(KeptBytes { used: AtomicUsize::new(0), limit: KEPT_BYTES_LIMIT });
        Snapshot::new("2026-01-01T00:00:00Z".parse().unwrap(), budget)
    }

    #[tokio::test]
    async fn rule_12_the_snapshots_keep_no_more_text_than_their_limit_and_an_answer_past_it_is_asked_again() {
        let a_text = serde_json::to_string(&policy("a")).unwrap().len();
        // Room for one policy's text, not two, across every tenant.
        let snapshots = TenantSnapshots::keeping_at_most(Duration::from_secs(300), a_text * 3 / 2);
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let (first, other) = (snapshots.current("ns/a@1", t0), snapshots.current("ns/b@1", t0));
        let asked = Cell::new(0);
        for _ in 0..2 {
            assert_eq!(first.get("p/a", graph(&asked, Some(policy("a")))).await.unwrap(), Some(policy("a")));
        }
        assert_eq!((asked.get(), first.kept_bytes(), snapshots.kept_bytes()), (1, a_text, a_text), "kept");
        // Another tenant's answer would pass the limit shared by all: given, not kept, asked again.
        for _ in 0..2 {
            assert_eq!(other.get("p/b", graph(&asked, Some(policy("b")))).await.unwrap(), Some(policy("b")));
        }
        assert_eq!((asked.get(), other.kept_bytes(), snapshots.kept_bytes()), (3, 0, a_text));
        // Once the first tenant's snapshot is let go, its text is counted out and the room is free.
        drop(first);
        assert_eq!(snapshots.forget_stale(t0 + jiff::SignedDuration::from_secs(300)), 0);
        assert_eq!(snapshots.kept_bytes(), 0);
        let next = snapshots.current("ns/b@1", t0 + jiff::SignedDuration::from_secs(300));
        assert_eq!(next.get("p/b", graph(&asked, Some(policy("b")))).await.unwrap(), Some(policy("b")));
        assert_eq!(next.get("p/b", graph(&asked, Some(policy("b")))).await.unwrap(), Some(policy("b")));
        assert_eq!((asked.get(), snapshots.kept_bytes()), (4, next.kept_bytes()));
        assert!(next.kept_bytes() > 0);
    }

    /// A Graph stand-in that counts how often it is asked.
    fn graph<T>(asked: &Cell<u32>, answer: T) -> impl FnOnce() -> std::future::Ready<Result<T, TenantError>> {
        move || {
            asked.set(asked.get() + 1);
            std::future::ready(Ok(answer))
        }
    }

    /// A policy as Graph sends one; its floats are among those a parser that rounds twice reads
    /// back one unit off in the last place.
    fn policy(name: &str) -> Value {
        serde_json::from_str(&format!(
            r##"{{"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "{name}",
               "omaSettings": [{{"omaUri": "./Device/Vendor/MSFT/Policy", "value": 5, "isReadOnly": false}}],
               "description": null, "version": 1.5, "weights": [0.30000000000000004, 0.0009037259843202259,
               2.2250738585072014e-308, 1.7976931348623157e308, 123456.789e-3, 9007199254740993]}}"##
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_later_reader_is_given_the_first_answer_as_it_was_without_asking_graph() {
        let (snapshot, asked) = (snapshot(), Cell::new(0));
        let one = Some(policy("a"));
        let many = vec![policy("a"), policy("b")];
        let batch = vec![Ok(Some(policy("a"))), Ok(None)];
        let paths = ["a".to_string(), "b".to_string()];
        for _ in 0..2 {
            assert_eq!(snapshot.get("p/a", graph(&asked, one.clone())).await.unwrap(), one);
            assert_eq!(snapshot.get("p/none", graph(&asked, None)).await.unwrap(), None);
            assert_eq!(snapshot.list("p", graph(&asked, many.clone())).await.unwrap(), many);
            assert_eq!(snapshot.get_many(&paths, graph(&asked, batch.clone())).await.unwrap(), batch);
        }
        assert_eq!(asked.get(), 4, "each read asked Graph once");
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept_and_the_next_reader_asks_again() {
        let (snapshot, asked) = (snapshot(), Cell::new(0));
        let failed = || {
            asked.set(asked.get() + 1);
            std::future::ready(Err::<Option<Value>, _>(TenantError::new(TenantErrorKind::Unavailable, "503")))
        };
        assert!(snapshot.get("p/a", failed).await.is_err());
        assert_eq!(snapshot.get("p/a", graph(&asked, Some(policy("a")))).await.unwrap(), Some(policy("a")));
        assert_eq!(asked.get(), 2);
    }

    #[tokio::test]
    async fn a_batch_with_a_failed_request_is_given_to_its_reader_but_not_kept() {
        let (snapshot, asked) = (snapshot(), Cell::new(0));
        let throttled = TenantError::new(TenantErrorKind::Throttled, "429 after every retry");
        let partial = vec![Ok(Some(policy("a"))), Err(throttled)];
        let whole = vec![Ok(Some(policy("a"))), Ok(Some(policy("b")))];
        let paths = ["a".to_string(), "b".to_string()];
        assert_eq!(snapshot.get_many(&paths, graph(&asked, partial.clone())).await.unwrap(), partial);
        assert_eq!(snapshot.get_many(&paths, graph(&asked, whole.clone())).await.unwrap(), whole);
        assert_eq!(snapshot.get_many(&paths, graph(&asked, partial)).await.unwrap(), whole, "the whole one is kept");
        assert_eq!(asked.get(), 2);
    }

    #[tokio::test]
    async fn a_kept_answer_that_cannot_be_read_back_is_asked_of_graph_again() {
        let (snapshot, asked) = (snapshot(), Cell::new(0));
        // `get` and `list` keys differ: an answer of another kind under a key can only be a bug.
        assert!(snapshot.cell("list p".into()).set(Answer::One(None)).is_ok());
        let many = vec![policy("a")];
        assert_eq!(snapshot.list("p", graph(&asked, many.clone())).await.unwrap(), many);
        assert!(snapshot.cell("get q".into()).set(Answer::One(Some(Packed("{not json".into())))).is_ok());
        assert_eq!(snapshot.get("q", graph(&asked, None)).await.unwrap(), None);
        assert_eq!(asked.get(), 2);
    }
}
