//! The Events an execution adds to its phase Events: who approved which preview on acceptance,
//! and the outcome counts when it finishes. Pure: the status before and after a write in, Events out.

use restore_core::api::RestoreRunStatus;
use restore_core::conditions::reasons;

/// Reason of the Event that ends an execution.
pub const EXECUTION_FINISHED: &str = "ExecutionFinished";

/// One Event to publish: warning or not, reason, note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionEvent {
    /// A warning (some item drifted or failed).
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

/// The Events a status write from `old` to `new` calls for.
pub fn execution_events(old: &RestoreRunStatus, new: &RestoreRunStatus) -> Vec<ExecutionEvent> {
    let mut events = Vec::new();
    if let (None, Some(accepted)) = (&old.confirmation, &new.confirmation) {
        events.push(ExecutionEvent {
            warning: false,
            reason: reasons::CONFIRMATION_ACCEPTED,
            note: format!(
                "approved by {} for preview {} (accepted {})",
                accepted.approved_by, accepted.digest, accepted.accepted_at
            ),
        });
    }
    let finished = |s: &RestoreRunStatus| s.execution.as_ref().is_some_and(|e| e.finished_at.is_some());
    if let Some(execution) = new.execution.as_ref().filter(|_| finished(new) && !finished(old)) {
        let c = &execution.counts;
        let progress = execution.progress.as_deref().map(|p| format!("{p} items written; ")).unwrap_or_default();
        events.push(ExecutionEvent {
            warning: c.problems() > 0,
            reason: EXECUTION_FINISHED,
            note: format!(
                "{progress}{} created, {} updated, {} unchanged, {} skipped, {} drifted, {} failed ({} steps)",
                c.created, c.updated, c.unchanged, c.skipped, c.drifted, c.failed, execution.total_steps
            ),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use restore_core::api::{ConfirmationStatus, ExecutionStatus, OutcomeCounts};

    fn accepted() -> RestoreRunStatus {
        RestoreRunStatus {
            confirmation: Some(ConfirmationStatus {
                accepted_at: "2026-01-01T10:00:00Z".into(),
                approved_by: "alice@contoso.com".into(),
                digest: "sha256:abc".into(),
                plan: None,
            }),
            execution: Some(ExecutionStatus { total_steps: 6, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn acceptance_names_the_approver_and_the_preview_digest_once() {
        let events = execution_events(&RestoreRunStatus::default(), &accepted());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "ConfirmationAccepted");
        assert!(events[0].note.contains("alice@contoso.com") && events[0].note.contains("sha256:abc"), "{events:?}");
        assert!(execution_events(&accepted(), &accepted()).is_empty());
    }

    #[test]
    fn the_end_of_an_execution_reports_its_outcome_counts_once() {
        let mut done = accepted();
        if let Some(e) = done.execution.as_mut() {
            e.finished_at = Some("2026-01-01T10:01:00Z".into());
            e.progress = Some("2/2".into());
            e.counts = OutcomeCounts { created: 1, failed: 1, unchanged: 3, ..Default::default() };
        }
        let events = execution_events(&accepted(), &done);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, EXECUTION_FINISHED);
        assert!(events[0].warning);
        assert_eq!(
            events[0].note,
            "2/2 items written; 1 created, 0 updated, 3 unchanged, 0 skipped, 0 drifted, 1 failed (6 steps)"
        );
        assert!(execution_events(&done, &done).is_empty());
    }
}
