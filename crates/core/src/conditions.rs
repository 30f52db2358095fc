//! Condition types, reasons and small constructors, following the Kubernetes API conventions
//! and kstatus: `Ready` always present, `Reconciling` / `Stalled` only while true.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One condition, shaped like `metav1.Condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    #[schemars(length(max = 64))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Stable CamelCase reason.
    #[schemars(length(max = 64))]
    pub reason: String,
    /// What happened and what to do next.
    #[schemars(length(max = 2048))]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[schemars(length(max = 64))]
    pub last_transition_time: String,
    /// The generation this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Tri-state condition status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// Condition types.
pub mod types {
    /// kstatus: the run reached a resting state a human or GitOps tool can rely on.
    pub const READY: &str = "Ready";
    /// kstatus: the controller is working; present only while true.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus: the run cannot progress without a change; present only while true.
    pub const STALLED: &str = "Stalled";
    /// The backup was fetched and verified.
    pub const SOURCE_RESOLVED: &str = "SourceResolved";
    /// The items to restore were selected.
    pub const SCOPED: &str = "Scoped";
    /// The safety checks found no blocker.
    pub const CHECKS_PASSED: &str = "ChecksPassed";
    /// A preview with a digest is ready.
    pub const PREVIEW_READY: &str = "PreviewReady";
    /// A confirmation matching the preview was accepted.
    pub const CONFIRMED: &str = "Confirmed";
    /// Execution finished.
    pub const EXECUTED: &str = "Executed";

    /// Step conditions in wizard order.
    pub const STEPS: [&str; 6] = [SOURCE_RESOLVED, SCOPED, CHECKS_PASSED, PREVIEW_READY, CONFIRMED, EXECUTED];
}

/// Condition reasons (stable CamelCase words).
pub mod reasons {
    /// The step has not run yet.
    pub const NOT_STARTED: &str = "NotStarted";
    /// The step is running.
    pub const IN_PROGRESS: &str = "InProgress";
    /// A plan input changed; the step will run again.
    pub const PLAN_CHANGED: &str = "PlanChanged";
    /// The referenced IntuneTenant does not exist.
    pub const TENANT_NOT_FOUND: &str = "TenantNotFound";
    /// The IntuneTenant exists but its credentials are not ready.
    pub const TENANT_NOT_READY: &str = "TenantNotReady";
    /// The tenant's environment differs from the one frozen into the run.
    pub const ENVIRONMENT_CHANGED: &str = "EnvironmentChanged";
    /// The tenant's id differs from the one frozen into the run.
    pub const TENANT_CHANGED: &str = "TenantChanged";
    /// The spec is invalid.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Fetching the backup failed; will retry.
    pub const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
    /// The source does not exist yet (applied after the run, Flux source not ready); waiting.
    pub const SOURCE_NOT_FOUND: &str = "SourceNotFound";
    /// Every download slot is taken by other runs; this one waits its turn without holding one.
    pub const DOWNLOADS_BUSY: &str = "DownloadsBusy";
    /// Another run is executing against the same Entra tenant; this one waits its turn.
    pub const TENANT_BUSY: &str = "TenantBusy";
    /// The run was deleted while executing; execution stopped at an item boundary.
    pub const EXECUTION_CUT: &str = "ExecutionCut";
    /// The backup is invalid or does not match its digest.
    pub const SOURCE_INVALID: &str = "SourceInvalid";
    /// The backup was fetched and verified.
    pub const SOURCE_RESOLVED: &str = "SourceResolved";
    /// The scope was resolved.
    pub const SCOPE_RESOLVED: &str = "ScopeResolved";
    /// The scope could not be resolved.
    pub const SCOPE_INVALID: &str = "ScopeInvalid";
    /// The checks found blockers.
    pub const BLOCKERS_FOUND: &str = "BlockersFound";
    /// The checks found no blocker.
    pub const NO_BLOCKERS: &str = "NoBlockers";
    /// Reading the tenant for checks or preview failed; will retry.
    pub const TENANT_UNAVAILABLE: &str = "TenantUnavailable";
    /// The preview is ready.
    pub const PREVIEW_READY: &str = "PreviewReady";
    /// The preview expired and is being regenerated.
    pub const PREVIEW_EXPIRED: &str = "PreviewExpired";
    /// A regenerated preview has a new digest.
    pub const PREVIEW_SUPERSEDED: &str = "PreviewSuperseded";
    /// The run is a dry-run; it stops after the preview.
    pub const DRY_RUN: &str = "DryRun";
    /// Waiting for `spec.confirmation`.
    pub const AWAITING_CONFIRMATION: &str = "AwaitingConfirmation";
    /// `spec.confirmation.previewDigest` differs from the preview's digest.
    pub const DIGEST_MISMATCH: &str = "DigestMismatch";
    /// `spec.confirmation.tenant` differs from the tenant's hard-confirm label.
    pub const TENANT_LABEL_MISMATCH: &str = "TenantLabelMismatch";
    /// `spec.confirmation.reviewedImpact` is not true.
    pub const IMPACT_NOT_REVIEWED: &str = "ImpactNotReviewed";
    /// `spec.confirmation.approvedBy` is empty.
    pub const APPROVER_MISSING: &str = "ApproverMissing";
    /// The confirmation matches; the preview is being re-verified against the tenant first.
    pub const VERIFYING_PREVIEW: &str = "VerifyingPreview";
    /// The confirmation matched and was accepted.
    pub const CONFIRMATION_ACCEPTED: &str = "ConfirmationAccepted";
    /// Execution is paused because its gate no longer holds.
    pub const EXECUTION_PAUSED: &str = "ExecutionPaused";
    /// Writing to the tenant.
    pub const EXECUTING: &str = "Executing";
    /// Every item restored.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Some items failed or drifted.
    pub const PARTIALLY_SUCCEEDED: &str = "PartiallySucceeded";
    /// The run failed.
    pub const FAILED: &str = "Failed";
    /// Execution stopped on an error that retrying will not fix.
    pub const EXECUTION_FAILED: &str = "ExecutionFailed";
    /// The spec changed after the run finished or started executing; the change is ignored.
    pub const SPEC_CHANGE_IGNORED: &str = "SpecChangeIgnored";
    /// Tenant credentials work.
    pub const CREDENTIALS_VERIFIED: &str = "CredentialsVerified";
    /// Tenant credentials were refused.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// The credential Secret is missing or incomplete.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// Graph could not be reached; will retry.
    pub const GRAPH_UNAVAILABLE: &str = "GraphUnavailable";
}

/// Formats a timestamp the way Kubernetes writes `metav1.Time` (RFC 3339, whole seconds, UTC).
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a status timestamp; `None` when it is not RFC 3339.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

impl Condition {
    /// A condition with the given fields; the transition time is settled by [`set_condition`].
    pub fn new(type_: &str, status: ConditionStatus, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: String::new(),
            observed_generation: None,
        }
    }

    /// `type=True`.
    pub fn yes(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, ConditionStatus::True, reason, message)
    }

    /// `type=False`.
    pub fn no(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, ConditionStatus::False, reason, message)
    }

    /// `type=Unknown`.
    pub fn unknown(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, ConditionStatus::Unknown, reason, message)
    }

    /// Whether this condition is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of this type is present and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(Condition::is_true)
}

/// Sets a condition, keeping its `lastTransitionTime` unless its status changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, generation: i64, now: Timestamp) {
    new.observed_generation = Some(generation);
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            new.last_transition_time = if existing.status == new.status && !existing.last_transition_time.is_empty() {
                existing.last_transition_time.clone()
            } else {
                rfc3339(now)
            };
            *existing = new;
        }
        None => {
            new.last_transition_time = rfc3339(now);
            conditions.push(new);
        }
    }
}

/// Removes a condition (kstatus `Reconciling` / `Stalled` are present only while true).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Orders conditions canonically: kstatus first, then the steps in wizard order.
pub fn sort_conditions(conditions: &mut [Condition]) {
    fn rank(t: &str) -> usize {
        match t {
            types::READY => 0,
            types::RECONCILING => 1,
            types::STALLED => 2,
            other => 3 + types::STEPS.iter().position(|s| *s == other).unwrap_or(types::STEPS.len()),
        }
    }
    conditions.sort_by(|a, b| rank(&a.type_).cmp(&rank(&b.type_)).then_with(|| a.type_.cmp(&b.type_)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut conds = Vec::new();
        set_condition(&mut conds, Condition::no(types::READY, reasons::IN_PROGRESS, "a"), 1, at(0));
        let first = conds[0].last_transition_time.clone();
        set_condition(&mut conds, Condition::no(types::READY, reasons::AWAITING_CONFIRMATION, "b"), 2, at(10));
        assert_eq!(conds[0].last_transition_time, first, "same status keeps the time");
        assert_eq!(conds[0].reason, reasons::AWAITING_CONFIRMATION);
        assert_eq!(conds[0].observed_generation, Some(2));
        set_condition(&mut conds, Condition::yes(types::READY, reasons::PREVIEW_READY, "c"), 2, at(20));
        assert_ne!(conds[0].last_transition_time, first, "a new status moves the time");
        assert_eq!(conds[0].last_transition_time, rfc3339(at(20)));
    }

    #[test]
    fn rfc3339_has_whole_seconds_in_utc() {
        let t: Timestamp = "2026-11-27T07:08:40.123456Z".parse().unwrap();
        assert_eq!(rfc3339(t), "2026-11-27T07:08:40Z");
        assert_eq!(parse_time("2026-11-27T07:08:40Z").map(rfc3339), Some("2026-11-27T07:08:40Z".into()));
    }

    #[test]
    fn sorting_puts_kstatus_first_then_steps_in_order() {
        let mut conds = vec![
            Condition::yes(types::EXECUTED, "x", ""),
            Condition::yes(types::SOURCE_RESOLVED, "x", ""),
            Condition::yes(types::READY, "x", ""),
        ];
        sort_conditions(&mut conds);
        let order: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order, [types::READY, types::SOURCE_RESOLVED, types::EXECUTED]);
    }
}
