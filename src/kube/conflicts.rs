//! Writes the API server answered with 409 Conflict, sent again at once a bounded number of times,
//! each attempt behind the caller's check (the leadership fence) so a retry is never an unfenced write.
//!
//! Only writes that carry no `resourceVersion` go through here: a JSON merge patch of a run's
//! status and a forced server-side apply (or delete) of a record ConfigMap. For those the API server
//! retries its own optimistic-concurrency conflicts internally, so a 409 comes from an admission
//! webhook or an injected fault; waiting the controller's error backoff (2, 4, 8, 16 s …) for it
//! only slows the run. A write that carried a `resourceVersion` must re-read its object first and is
//! not retried here. Every other error, and a conflict that outlasts the attempts, goes back to the
//! caller unchanged.

use std::future::Future;

use crate::kube::records::StoreError;

/// How many times one write is sent at most when the API server keeps answering 409 Conflict.
pub const CONFLICT_ATTEMPTS: usize = 5;

/// An error that may be the API server's 409 Conflict.
pub trait MaybeConflict {
    /// Whether this is a 409 Conflict from the API server.
    fn is_conflict(&self) -> bool;
}

impl MaybeConflict for kube::Error {
    fn is_conflict(&self) -> bool {
        matches!(self, kube::Error::Api(status) if status.is_conflict())
    }
}

impl MaybeConflict for StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Kube(e) if e.is_conflict())
    }
}

/// Why a fenced write did not go through: its check refused it before it was sent (never retried),
/// or the write failed (after its conflicts, if any, were retried).
#[derive(Debug)]
pub enum FencedWriteError<C, W> {
    /// The check before an attempt refused (e.g. the leader Lease is no longer held).
    Refused(C),
    /// The write itself failed.
    Write(W),
}

impl<C, W> FencedWriteError<C, W> {
    /// One error type for both: the check's as it is, the write's through `write_error`.
    pub fn into_error(self, write_error: impl FnOnce(W) -> C) -> C {
        match self {
            FencedWriteError::Refused(c) => c,
            FencedWriteError::Write(w) => write_error(w),
        }
    }
}

/// Runs `check` then `write`; while the write answers 409 Conflict and fewer than
/// [`CONFLICT_ATTEMPTS`] were sent, runs both again at once. The check runs before every attempt,
/// so a replica that lost the Lease between two attempts sends nothing more.
pub async fn fenced_write_retrying_conflicts<T, C, W, Fut>(
    mut check: impl FnMut() -> Result<(), C>,
    mut write: impl FnMut() -> Fut,
) -> Result<T, FencedWriteError<C, W>>
where
    Fut: Future<Output = Result<T, W>>,
    W: MaybeConflict + std::fmt::Display,
{
    let mut attempt = 1;
    loop {
        check().map_err(FencedWriteError::Refused)?;
        match write().await {
            Err(e) if e.is_conflict() && attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "write answered 409 Conflict; sending it again");
                attempt += 1;
            }
            done => return done.map_err(FencedWriteError::Write),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use kube::core::Status;

    use super::*;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure("refused", reason).with_code(code).boxed())
    }

    /// A write answering 409 `conflicts` times, then `Ok(attempt number)`.
    fn conflicting(
        conflicts: usize,
        sent: &Cell<usize>,
    ) -> impl FnMut() -> std::future::Ready<Result<usize, kube::Error>> {
        move || {
            sent.set(sent.get() + 1);
            std::future::ready(if sent.get() <= conflicts { Err(api_error(409, "Conflict")) } else { Ok(sent.get()) })
        }
    }

    #[tokio::test]
    async fn a_conflict_is_sent_again_at_once_until_the_write_goes_through() {
        let sent = Cell::new(0);
        let done =
            fenced_write_retrying_conflicts(|| Ok::<_, String>(()), conflicting(CONFLICT_ATTEMPTS - 1, &sent)).await;
        assert_eq!(done.ok(), Some(CONFLICT_ATTEMPTS));
    }

    #[tokio::test]
    async fn conflicts_that_outlast_the_attempts_go_back_to_the_caller() {
        let sent = Cell::new(0);
        let done = fenced_write_retrying_conflicts(|| Ok::<_, String>(()), conflicting(usize::MAX, &sent)).await;
        assert!(matches!(done, Err(FencedWriteError::Write(e)) if e.is_conflict()));
        assert_eq!(sent.get(), CONFLICT_ATTEMPTS, "bounded");
    }

    #[tokio::test]
    async fn any_other_error_is_not_sent_again() {
        for (code, reason) in [(403, "Forbidden"), (422, "Invalid"), (500, "InternalError"), (404, "NotFound")] {
            let sent = Cell::new(0);
            let done = fenced_write_retrying_conflicts(
                || Ok::<_, String>(()),
                || {
                    sent.set(sent.get() + 1);
                    std::future::ready(Err::<(), _>(api_error(code, reason)))
                },
            )
            .await;
            assert!(matches!(done, Err(FencedWriteError::Write(_))), "{code}");
            assert_eq!(sent.get(), 1, "{code} is not retried");
        }
    }

    #[tokio::test]
    async fn the_check_runs_before_every_attempt_and_a_refusal_sends_nothing_more() {
        let sent = Cell::new(0);
        let checks = Cell::new(0);
        let lease_lost_after_first_attempt = || {
            checks.set(checks.get() + 1);
            if checks.get() == 1 { Ok(()) } else { Err("not the leader".to_string()) }
        };
        let done = fenced_write_retrying_conflicts(lease_lost_after_first_attempt, conflicting(2, &sent)).await;
        assert!(matches!(done, Err(FencedWriteError::Refused(ref why)) if why == "not the leader"));
        assert_eq!((checks.get(), sent.get()), (2, 1), "the retry was checked and not sent");
    }

    #[test]
    fn a_store_error_is_a_conflict_only_when_the_api_server_said_409() {
        assert!(StoreError::Kube(api_error(409, "Conflict")).is_conflict());
        assert!(StoreError::Kube(api_error(0, "Conflict")).is_conflict(), "a Status by reason");
        assert!(!StoreError::Kube(api_error(403, "Forbidden")).is_conflict());
        assert!(!StoreError::Foreign { name: "x".into() }.is_conflict());
    }
}
