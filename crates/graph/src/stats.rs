//! Cheap shared counters of the client's Graph traffic — requests by method and status,
//! throttling waits, retries, write pacing, token acquisitions — for the metrics endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Counters shared by clones; one set can serve several clients.
#[derive(Clone, Debug, Default)]
pub struct GraphStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    throttle_waits: AtomicU64,
    throttle_wait_micros: AtomicU64,
    retries: AtomicU64,
    pacing_waits: AtomicU64,
    pacing_wait_micros: AtomicU64,
    token_acquisitions: AtomicU64,
    recovered_creates: AtomicU64,
}

/// One row of the request counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCount {
    /// HTTP method.
    pub method: String,
    /// Status code, or `transport` when no response came.
    pub status: String,
    /// Requests.
    pub count: u64,
}

/// A point-in-time copy of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphStatsSnapshot {
    /// Requests by method and status (each HTTP request, retries included; a `$batch` counts once).
    pub requests: Vec<RequestCount>,
    /// Waits after a 429 or a retryable 5xx/transport failure.
    pub throttle_waits: u64,
    /// Their total length in seconds.
    pub throttle_wait_seconds: f64,
    /// Requests sent again.
    pub retries: u64,
    /// Writes that waited for the write budget.
    pub pacing_waits: u64,
    /// Their total wait in seconds.
    pub pacing_wait_seconds: f64,
    /// Tokens obtained from Entra ID.
    pub token_acquisitions: u64,
    /// Creates whose answer was lost and whose object was found instead of posting again.
    pub recovered_creates: u64,
}

impl GraphStatsSnapshot {
    /// Requests with this method and status.
    pub fn count(&self, method: &str, status: &str) -> u64 {
        self.requests.iter().filter(|r| r.method == method && r.status == status).map(|r| r.count).sum()
    }
}

impl GraphStats {
    /// New zeroed counters.
    pub fn new() -> Self {
        GraphStats::default()
    }

    pub(crate) fn request(&self, method: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "transport".to_string(), |s| s.to_string());
        let mut map = self.inner.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry((method.to_string(), status)).or_default() += 1;
    }

    pub(crate) fn throttle_wait(&self, wait: Duration) {
        self.inner.throttle_waits.fetch_add(1, Ordering::Relaxed);
        self.inner.throttle_wait_micros.fetch_add(micros(wait), Ordering::Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn pacing_wait(&self, wait: Duration) {
        self.inner.pacing_waits.fetch_add(1, Ordering::Relaxed);
        self.inner.pacing_wait_micros.fetch_add(micros(wait), Ordering::Relaxed);
    }

    pub(crate) fn token_acquired(&self) {
        self.inner.token_acquisitions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn recovered_create(&self) {
        self.inner.recovered_creates.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> GraphStatsSnapshot {
        let requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((method, status), count)| RequestCount {
                method: method.clone(),
                status: status.clone(),
                count: *count,
            })
            .collect();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GraphStatsSnapshot {
            requests,
            throttle_waits: load(&self.inner.throttle_waits),
            throttle_wait_seconds: load(&self.inner.throttle_wait_micros) as f64 / 1e6,
            retries: load(&self.inner.retries),
            pacing_waits: load(&self.inner.pacing_waits),
            pacing_wait_seconds: load(&self.inner.pacing_wait_micros) as f64 / 1e6,
            token_acquisitions: load(&self.inner.token_acquisitions),
            recovered_creates: load(&self.inner.recovered_creates),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counters_and_snapshots_sum_them() {
        let stats = GraphStats::new();
        let other = stats.clone();
        stats.request("GET", Some(200));
        other.request("GET", Some(200));
        other.request("POST", None);
        stats.throttle_wait(Duration::from_millis(1500));
        stats.throttle_wait(Duration::from_millis(500));
        let snap = stats.snapshot();
        assert_eq!(snap.count("GET", "200"), 2);
        assert_eq!(snap.count("POST", "transport"), 1);
        assert_eq!(snap.throttle_waits, 2);
        assert!((snap.throttle_wait_seconds - 2.0).abs() < 1e-9);
    }
}
