//! Write pacing under the tenant's write budget: a bucket of `writes` tokens, where a spent
//! token comes back `window` after its write's answer arrived.
//!
//! Returning a token only after the answer (not after the send) means that two writes `writes`
//! apart are always at least `window` apart as the server sees them, whatever the latency: the
//! server received the earlier one before the client got its answer. So a server enforcing "at
//! most `writes` in any sliding window" (the strictest reading of Intune's limit) never throttles
//! a paced client, and one enforcing fixed windows or a token bucket does not either.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The write pacers of every Entra tenant a process writes to, shared by all the clients of one
/// tenant: two IntuneTenant objects naming the same Entra tenant share one budget (the first
/// client's budget sets it).
#[derive(Clone, Debug, Default)]
pub struct WriteBudgets {
    pacers: Arc<Mutex<HashMap<String, WritePacer>>>,
}

impl WriteBudgets {
    /// Whether clients of the two tenant ids share one budget.
    pub fn shares(&self, a: &str, b: &str) -> bool {
        let window = Duration::from_secs(20);
        Arc::ptr_eq(&self.pacer(a, 100, window).inner, &self.pacer(b, 100, window).inner)
    }

    /// The pacer of `tenant_id`, made with `writes` per `window` if it has none yet.
    pub(crate) fn pacer(&self, tenant_id: &str, writes: u32, window: Duration) -> WritePacer {
        let mut pacers = self.pacers.lock().unwrap_or_else(PoisonError::into_inner);
        pacers.entry(tenant_id.to_ascii_lowercase()).or_insert_with(|| WritePacer::new(writes, window)).clone()
    }
}

/// The shared pacer of one tenant's writes.
#[derive(Clone, Debug)]
pub(crate) struct WritePacer {
    inner: Arc<PacerInner>,
}

#[derive(Debug)]
struct PacerInner {
    writes: usize,
    window: Duration,
    state: Mutex<PacerState>,
    freed: Notify,
}

#[derive(Debug, Default)]
struct PacerState {
    /// Tokens spent by writes still waiting for their answer.
    in_flight: usize,
    /// When each spent, answered token comes back (ascending).
    returns: VecDeque<Instant>,
}

/// A spent token; dropping it (when the answer arrived or the attempt failed) starts its way back.
#[derive(Debug)]
pub(crate) struct WritePermit {
    pacer: Arc<PacerInner>,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        let back_at = Instant::now() + self.pacer.window;
        {
            let mut state = self.pacer.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.in_flight = state.in_flight.saturating_sub(1);
            let at = state.returns.iter().rposition(|t| *t <= back_at).map_or(0, |i| i + 1);
            state.returns.insert(at, back_at);
        }
        self.pacer.freed.notify_waiters();
    }
}

impl WritePacer {
    /// A pacer allowing `writes` per `window`.
    pub fn new(writes: u32, window: Duration) -> Self {
        WritePacer {
            inner: Arc::new(PacerInner {
                writes: writes.max(1) as usize,
                window,
                state: Mutex::new(PacerState::default()),
                freed: Notify::new(),
            }),
        }
    }

    /// Waits for a token; returns it and how long the wait was.
    pub async fn acquire(&self) -> (WritePermit, Duration) {
        let started = Instant::now();
        let mut blocked = false;
        loop {
            let notified = self.inner.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                while state.returns.front().is_some_and(|t| *t <= now) {
                    state.returns.pop_front();
                }
                if state.in_flight + state.returns.len() < self.inner.writes {
                    state.in_flight += 1;
                    let permit = WritePermit { pacer: Arc::clone(&self.inner) };
                    let waited = if blocked { started.elapsed() } else { Duration::ZERO };
                    return (permit, waited);
                }
                state.returns.front().copied()
            };
            blocked = true;
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_is_spent_at_once_then_each_token_returns_a_window_after_its_answer() {
        let pacer = WritePacer::new(3, Duration::from_secs(20));
        let t0 = Instant::now();
        for _ in 0..3 {
            let (permit, waited) = pacer.acquire().await;
            assert_eq!(waited, Duration::ZERO);
            drop(permit);
        }
        let (_permit, waited) = pacer.acquire().await;
        assert_eq!(waited, Duration::from_secs(20));
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_in_flight_holds_its_token_until_answered() {
        let pacer = WritePacer::new(1, Duration::from_secs(1));
        let (permit, _) = pacer.acquire().await;
        let waiter = {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.acquire().await.1 })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "no token while the only write awaits its answer");
        drop(permit);
        let waited = waiter.await.unwrap();
        assert_eq!(waited, Duration::from_secs(6), "5 s in flight, then one window");
    }
}
