//! Faults an end-to-end campaign injects into the emulated API server: the next writes of a
//! resource (or of its status) answer 409 Conflict, and open watches are cut or expired (410 Gone).

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// How the open watches were last cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchCut {
    /// Counts the cuts; a watch ends when it changes.
    pub generation: u64,
    /// Whether the cut watches receive a 410 Gone `ERROR` event first (as when the API server's
    /// history no longer holds their resourceVersion) rather than a plain disconnect.
    pub gone: bool,
}

/// The fault switches of one emulator (all off at start).
#[derive(Debug)]
pub struct ApiFaults {
    conflicts: Mutex<Vec<ConflictRule>>,
    cuts: watch::Sender<WatchCut>,
    injected: Mutex<u64>,
}

#[derive(Debug)]
struct ConflictRule {
    plural: String,
    status: bool,
    remaining: u32,
}

impl Default for ApiFaults {
    fn default() -> Self {
        ApiFaults {
            conflicts: Mutex::new(Vec::new()),
            cuts: watch::Sender::new(WatchCut::default()),
            injected: Mutex::new(0),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ApiFaults {
    /// The next `count` writes (create, update, patch, delete) of `plural` — of its `status`
    /// subresource when `status` — answer 409 Conflict without being applied.
    pub fn conflict_next_writes(&self, plural: &str, status: bool, count: u32) {
        lock(&self.conflicts).push(ConflictRule { plural: plural.to_string(), status, remaining: count });
    }

    /// Ends every open watch now; with `gone`, each first receives a 410 Gone `ERROR` event.
    pub fn cut_watches(&self, gone: bool) {
        self.cuts.send_modify(|cut| {
            cut.generation += 1;
            cut.gone = gone;
        });
    }

    /// Faults injected so far (conflicts answered; watch cuts count once each).
    pub fn injected(&self) -> u64 {
        *lock(&self.injected) + self.cuts.borrow().generation
    }

    /// Whether this write must answer 409 (and spends one of its rule's conflicts).
    pub(crate) fn take_conflict(&self, plural: &str, status: bool) -> bool {
        let mut rules = lock(&self.conflicts);
        let Some(rule) = rules.iter_mut().find(|r| r.plural == plural && r.status == status && r.remaining > 0) else {
            return false;
        };
        rule.remaining -= 1;
        *lock(&self.injected) += 1;
        true
    }

    /// A receiver a watch selects on to learn it was cut.
    pub(crate) fn watch_cuts(&self) -> watch::Receiver<WatchCut> {
        self.cuts.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_rule_answers_its_count_then_stops() {
        let faults = ApiFaults::default();
        faults.conflict_next_writes("configmaps", false, 2);
        assert!(!faults.take_conflict("configmaps", true), "the status rule is another");
        assert!(faults.take_conflict("configmaps", false));
        assert!(faults.take_conflict("configmaps", false));
        assert!(!faults.take_conflict("configmaps", false));
        assert_eq!(faults.injected(), 2);
    }

    #[tokio::test]
    async fn a_cut_reaches_every_open_watch() {
        let faults = ApiFaults::default();
        let mut a = faults.watch_cuts();
        let mut b = faults.watch_cuts();
        faults.cut_watches(true);
        a.changed().await.unwrap();
        b.changed().await.unwrap();
        assert!(a.borrow().gone && b.borrow().gone);
    }
}
