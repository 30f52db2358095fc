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

use crate::reads::ReadGate;

/// The write pacers (and read gates) of every Entra tenant a process talks to, shared by all the
/// clients of one tenant: two IntuneTenant objects naming the same Entra tenant share one budget
/// and one read gate (the first client's budget and read concurrency set them).
#[derive(Clone, Debug, Default)]
pub struct WriteBudgets {
    pacers: Arc<Mutex<HashMap<String, WritePacer>>>,
    read_gates: Arc<Mutex<HashMap<String, ReadGate>>>,
    /// Whether a tenant's bucket starts empty (spent when it is made) rather than full.
    starts_spent: bool,
}

impl WriteBudgets {
    /// Budgets for a process that may not be the tenant's first writer (the operator after a
    /// restart, or a replica taking over from a dead leader): it cannot know what was written in
    /// the last window, so each tenant's bucket starts empty, as if its whole budget had been
    /// spent when the bucket is made (the first write of the tenant, which the leader Lease
    /// orders after the previous holder's last one), and fills one window later. A restart
    /// therefore never lets more than a budget's writes into any window, at the cost of one
    /// window's wait before a tenant's first write.
    pub fn after_restart() -> Self {
        WriteBudgets { starts_spent: true, ..WriteBudgets::default() }
    }

    /// Whether clients of the two tenant ids share one budget.
    pub fn shares(&self, a: &str, b: &str) -> bool {
        let window = Duration::from_secs(20);
        Arc::ptr_eq(&self.pacer(a, 100, window).inner, &self.pacer(b, 100, window).inner)
    }

    /// The pacer of `tenant_id`, made with `writes` per `window` if it has none yet.
    pub(crate) fn pacer(&self, tenant_id: &str, writes: u32, window: Duration) -> WritePacer {
        let mut pacers = self.pacers.lock().unwrap_or_else(PoisonError::into_inner);
        let make = || {
            if self.starts_spent {
                WritePacer::spent(writes, window, Instant::now())
            } else {
                WritePacer::new(writes, window)
            }
        };
        pacers.entry(tenant_id.to_ascii_lowercase()).or_insert_with(make).clone()
    }

    /// The read gate of `tenant_id`, letting `concurrency` reads through at once if it has none yet.
    pub(crate) fn read_gate(&self, tenant_id: &str, concurrency: usize) -> ReadGate {
        let mut gates = self.read_gates.lock().unwrap_or_else(PoisonError::into_inner);
        gates.entry(tenant_id.to_ascii_lowercase()).or_insert_with(|| ReadGate::new(concurrency)).clone()
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

    /// A pacer whose whole budget counts as spent at `at`: its tokens come back at `at + window`.
    pub fn spent(writes: u32, window: Duration, at: Instant) -> Self {
        let pacer = WritePacer::new(writes, window);
        {
            let mut state = pacer.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.returns.extend(std::iter::repeat_n(at + window, pacer.inner.writes));
        }
        pacer
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
    async fn after_a_restart_the_bucket_starts_empty_and_fills_one_window_later() {
        let budgets = WriteBudgets::after_restart();
        let pacer = budgets.pacer("tenant", 3, Duration::from_secs(20));
        let t0 = Instant::now();
        let (permit, waited) = pacer.acquire().await;
        assert_eq!(waited, Duration::from_secs(20), "the first write waits one window");
        drop(permit);
        for _ in 0..2 {
            let (_permit, waited) = pacer.acquire().await;
            assert_eq!(waited, Duration::ZERO, "then the whole budget is there");
        }
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
        let (_permit, waited) = pacer.acquire().await;
        assert_eq!(waited, Duration::from_secs(20), "and no more than the budget in one window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_process_never_writes_more_than_the_budget_in_any_window() {
        // The earlier life spent its whole budget just before it was killed; the new one starts.
        let window = Duration::from_secs(20);
        let killed_at = Instant::now();
        let budgets = WriteBudgets::after_restart();
        let pacer = budgets.pacer("tenant", 5, window);
        let mut writes = vec![killed_at; 5];
        for _ in 0..12 {
            let (permit, _) = pacer.acquire().await;
            writes.push(Instant::now());
            drop(permit);
        }
        for (i, at) in writes.iter().enumerate() {
            let in_window = writes[i..].iter().filter(|t| t.duration_since(*at) < window).count();
            assert!(in_window <= 5, "{in_window} writes in the window from write {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_of_a_first_start_begin_full() {
        let pacer = WriteBudgets::default().pacer("tenant", 2, Duration::from_secs(20));
        assert_eq!(pacer.acquire().await.1, Duration::ZERO);
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
