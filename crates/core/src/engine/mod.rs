//! The restore engine, free of Kubernetes and HTTP: scope → snapshot → checks → preview (with its
//! digest) → execution plan → resumable executor, generic over any [`TenantPort`].
//!
//! The controller and the CLI call it in the wizard's order:
//! [`scope::resolve_scope`] for the Scope step, [`assess`] for the Check and Preview steps
//! ([`Assessment::checks_status`], [`Assessment::preview_facts`]), then [`plan::ExecutionPlan::build`]
//! and [`execute::Executor`] for the Execute step, persisting [`execute::ProgressRecord`] after each step.

pub mod admx;
pub mod analysis;
pub mod apple_enrollment;
pub mod assignment_writes;
pub mod checks;
pub mod conditional_access;
pub mod diff;
pub mod enrollment;
pub mod enrollment_priority;
pub mod execute;
pub mod identity;
pub mod intents;
pub mod mapping;
pub mod normalize;
pub mod payload;
pub mod plan;
pub mod preview;
pub mod scope;
pub mod singleton;
pub mod snapshot;

use crate::api::{ChecksStatus, Environment, ExistingObjects};
use crate::engine::analysis::{ItemAnalysis, analyze, analyze_taking, count_actions};
use crate::engine::checks::run_checks;
use crate::engine::execute::ExecError;
use crate::engine::mapping::TargetMaps;
use crate::engine::plan::PlanError;
use crate::engine::preview::{PreviewReport, REPORT_FORMAT, ScopeSummary};
use crate::engine::scope::{ResolvedScope, ScopeError};
use crate::engine::snapshot::{RequestStats, TenantSnapshot, take_snapshot};
use crate::tenant::{TenantError, TenantErrorKind, TenantPort};
use crate::wizard::{PreviewFacts, StepError};

/// Default number of creates + updates above which the checks warn of a large change set.
pub const DEFAULT_LARGE_CHANGE_THRESHOLD: u32 = 50;

/// Cuts `text` to at most `max` bytes on a character boundary, ending it with `…` when cut
/// (status fields have schema bounds).
pub(crate) fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The tenant a restore writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreTarget {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Its environment (production raises a warning).
    pub environment: Environment,
}

/// Plan inputs beyond the scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Update existing objects or leave them.
    pub existing_objects: ExistingObjects,
    /// Creates + updates above which a `LargeChangeSet` warning is raised.
    pub large_change_threshold: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            existing_objects: ExistingObjects::Update,
            large_change_threshold: DEFAULT_LARGE_CHANGE_THRESHOLD,
        }
    }
}

/// Why the engine could not assess a scope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Reading the tenant failed.
    #[error("reading the target tenant failed: {0}")]
    Tenant(#[from] TenantError),
}

impl EngineError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Tenant(e) => e.is_transient() || e.kind == TenantErrorKind::Authentication,
        }
    }

    /// The wait the tenant's service asked for, when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            EngineError::Tenant(e) => e.retry_after,
        }
    }
}

/// The checks and the preview of one scope against the tenant as it is now.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// Everything the preview shows.
    pub report: PreviewReport,
    /// The report's digest.
    pub digest: String,
}

impl Assessment {
    /// `status.checks` (the wizard adds the time).
    pub fn checks_status(&self) -> ChecksStatus {
        self.report.checks_status()
    }

    /// The wizard's preview fact.
    pub fn preview_facts(&self) -> PreviewFacts {
        PreviewFacts {
            digest: self.digest.clone(),
            counts: self.report.counts.clone(),
            report: None,
            checks: Some(self.checks_status()),
        }
    }
}

/// Reads the tenant for `scope`, analyses every item, runs the checks and builds the preview.
pub async fn assess<T: TenantPort>(
    port: &T,
    scope: &ResolvedScope,
    target: &RestoreTarget,
    options: &EngineOptions,
) -> Result<Assessment, EngineError> {
    let snapshot = take_snapshot(port, scope, &target.tenant_id).await?;
    // The objects read are normalized where they lie and let go item by item.
    let report = report_from_owned_snapshot(scope, snapshot, target, options);
    let digest = report.digest();
    Ok(Assessment { report, digest })
}

/// The preview of `scope` against what `snapshot` read of the tenant: every item analysed, the
/// checks run (no I/O; the CPU part of [`assess`]).
pub fn report_from_snapshot(
    scope: &ResolvedScope,
    snapshot: &TenantSnapshot,
    target: &RestoreTarget,
    options: &EngineOptions,
) -> PreviewReport {
    let items = analyze(scope, snapshot, options.existing_objects);
    report_of(scope, items, snapshot.maps.clone(), snapshot.stats, target, options)
}

/// [`report_from_snapshot`] of a snapshot the caller gives up: each live object is normalized
/// where it lies instead of copied first, and let go once its item is analysed.
pub fn report_from_owned_snapshot(
    scope: &ResolvedScope,
    mut snapshot: TenantSnapshot,
    target: &RestoreTarget,
    options: &EngineOptions,
) -> PreviewReport {
    let items = analyze_taking(scope, &mut snapshot, options.existing_objects);
    report_of(scope, items, snapshot.maps, snapshot.stats, target, options)
}

/// The report of the analysed items, with the checks run over them.
fn report_of(
    scope: &ResolvedScope,
    items: Vec<ItemAnalysis>,
    mappings: TargetMaps,
    requests: RequestStats,
    target: &RestoreTarget,
    options: &EngineOptions,
) -> PreviewReport {
    let findings = run_checks(scope, &items, target, options);
    PreviewReport {
        format: REPORT_FORMAT,
        tenant_id: target.tenant_id.clone(),
        source_digest: scope.source_digest.clone(),
        source_tenant_id: scope.source_tenant.clone(),
        cross_tenant: !scope.same_tenant(&target.tenant_id),
        scope: ScopeSummary {
            status: scope.status.clone(),
            foundations: scope.foundations,
            assignments: scope.assignments,
            existing_objects: options.existing_objects,
            items: scope.items.iter().map(|i| i.key()).collect(),
        },
        counts: count_actions(items.iter().map(|i| &i.preview)),
        findings,
        items: items.into_iter().map(|i| i.preview).collect(),
        mappings,
        requests,
    }
}

impl From<ScopeError> for StepError {
    fn from(e: ScopeError) -> Self {
        StepError::permanent(e.to_string())
    }
}

impl From<EngineError> for StepError {
    fn from(e: EngineError) -> Self {
        let wait = e.retry_after();
        let error =
            if e.is_transient() { StepError::transient(e.to_string()) } else { StepError::permanent(e.to_string()) };
        error.with_retry_after(wait)
    }
}

impl From<PlanError> for StepError {
    fn from(e: PlanError) -> Self {
        StepError::permanent(e.to_string())
    }
}

impl From<ExecError> for StepError {
    fn from(e: ExecError) -> Self {
        let wait = match &e {
            ExecError::Tenant { source, .. } => source.retry_after,
            _ => None,
        };
        let error =
            if e.is_transient() { StepError::transient(e.to_string()) } else { StepError::permanent(e.to_string()) };
        error.with_retry_after(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_is_cut_on_a_character_boundary_with_an_ellipsis() {
        assert_eq!(bounded("short".into(), 10), "short");
        let cut = bounded("ééééé".into(), 6);
        assert!(cut.len() <= 6 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "é…");
    }
}
