//! The read gate of one Entra tenant, shared by every client of that tenant: at most a bounded
//! number of reads in flight at once, and a pause every read observes after Graph asked to wait.
//!
//! Graph documents Intune's limits as counts per 20-second window: 1,000 requests of any kind
//! (100 of them writes) per app per tenant, 2,000 (200) per tenant for all apps, each `$batch`
//! sub-request counting as one request. A preview of up to about 1,000 objects (50 `$batch`es
//! of 20, a few listings) fits in one window whatever the concurrency; a bigger one meets the
//! limit whatever the concurrency, and Graph answers 429 with `Retry-After`. So the concurrency
//! only shapes the burst — [`DEFAULT_READ_CONCURRENCY`] `$batch`es, 160 sub-requests, a sixth of
//! a window's allowance per round trip — and a 429 or 503 with `Retry-After` on any read holds
//! back every read of the tenant until the server's wait is over, instead of letting the other
//! readers run into the limit too.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Reads of one tenant in flight at once unless [`crate::GraphOptions::read_concurrency`] says
/// otherwise: eight `$batch`es of 20 (160 object reads) per round trip.
pub const DEFAULT_READ_CONCURRENCY: usize = 8;

/// The shared read gate of one tenant.
#[derive(Clone, Debug)]
pub(crate) struct ReadGate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    slots: Arc<Semaphore>,
    /// Until when Graph asked this tenant's reads to wait.
    paused_until: Mutex<Option<Instant>>,
}

/// A read in flight; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ReadPermit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl ReadGate {
    /// A gate letting `concurrency` reads (at least one) through at once.
    pub fn new(concurrency: usize) -> Self {
        ReadGate {
            inner: Arc::new(GateInner {
                slots: Arc::new(Semaphore::new(concurrency.max(1))),
                paused_until: Mutex::new(None),
            }),
        }
    }

    /// Waits for a slot, and for the end of any pause Graph asked for; returns the slot and how
    /// long the wait was.
    pub async fn enter(&self) -> (ReadPermit, Duration) {
        let started = Instant::now();
        loop {
            if let Some(until) = self.paused_until() {
                tokio::time::sleep_until(until).await;
            }
            // The semaphore is never closed (`None` would only let the read through unbounded).
            let slot = Arc::clone(&self.inner.slots).acquire_owned().await.ok();
            // A pause may have begun while this read waited for its slot.
            if self.paused_until().is_none() {
                return (ReadPermit { _slot: slot }, started.elapsed());
            }
        }
    }

    /// Holds back every read of the tenant for `wait` (a longer pause already set is kept).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.inner.paused_until.lock().unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// The end of the current pause, if one is still running.
    fn paused_until(&self) -> Option<Instant> {
        let mut paused = self.inner.paused_until.lock().unwrap_or_else(PoisonError::into_inner);
        match *paused {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *paused = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_more_reads_than_the_concurrency_are_in_flight() {
        let gate = ReadGate::new(2);
        let (first, _) = gate.enter().await;
        let (_second, _) = gate.enter().await;
        let third = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.1 })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!third.is_finished(), "a third read waits while two are in flight");
        drop(first);
        assert_eq!(third.await.unwrap(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_new_reads_until_it_ends_and_a_shorter_one_never_shortens_it() {
        let gate = ReadGate::new(4);
        gate.pause_for(Duration::from_secs(5));
        gate.pause_for(Duration::from_secs(1));
        let (_read, waited) = gate.enter().await;
        assert_eq!(waited, Duration::from_secs(5));
        let (_next, waited) = gate.enter().await;
        assert_eq!(waited, Duration::ZERO, "the pause is over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_waiting_for_a_slot_when_a_pause_begins_waits_for_the_pause_too() {
        let gate = ReadGate::new(1);
        let (first, _) = gate.enter().await;
        let second = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.1 })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        gate.pause_for(Duration::from_secs(4));
        drop(first);
        assert_eq!(second.await.unwrap(), Duration::from_secs(5));
    }
}
