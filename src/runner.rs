//! Runs the wizard's steps with the engine and the adapters (backup sources, a tenant port) and
//! turns each result into the wizard's fact — one implementation for the CLI and the controller.

use restore_backup::fetch::Fetcher;
use restore_backup::source::{ClusterObjects, resolve};
use restore_backup::{LoadFinding, Loaded};
use restore_core::api::{RestoreRunSpec, Severity, SourceStatus};
use restore_core::engine::checks::{Finding, FindingCode};
use restore_core::engine::execute::{Executor, ProgressRecord};
use restore_core::engine::plan::ExecutionPlan;
use restore_core::engine::preview::PreviewReport;
use restore_core::engine::scope::{ResolvedScope, resolve_scope_taking};
use restore_core::engine::{Assessment, EngineOptions, RestoreTarget, assess};
use restore_core::tenant::TenantPort;
use restore_core::wizard::{Fact, PreviewFacts, Step, StepError, StepOutcome, plan_inputs_digest};

/// Where a run's source is resolved: its namespace and the cluster objects it may reference.
pub struct SourceContext<'a, C: ClusterObjects> {
    /// The RestoreRun's namespace.
    pub namespace: &'a str,
    /// ConfigMaps and Flux sources.
    pub cluster: &'a C,
    /// Downloads (with limits and trusted roots).
    pub fetcher: &'a Fetcher,
}

/// What a runner remembers between steps of one plan (dropped when the plan inputs change).
struct PlanState {
    plan: String,
    loaded: Loaded,
    scope: Option<ResolvedScope>,
    assessment: Option<Assessment>,
    /// The assessment was just made by the Check step and not shown yet: the Preview step that
    /// follows it uses it instead of reading the tenant a second time.
    fresh_from_check: bool,
}

/// Runs steps for one RestoreRun, caching the backup, scope and last assessment of its plan.
#[derive(Default)]
pub struct StepRunner {
    state: Option<PlanState>,
    /// Large-change threshold and similar engine options (existingObjects comes from the spec).
    pub large_change_threshold: Option<u32>,
}

impl StepRunner {
    /// A runner with the default engine options.
    pub fn new() -> Self {
        StepRunner::default()
    }

    /// The digest of the backup loaded for the current plan.
    pub fn source_digest(&self) -> Option<String> {
        self.state.as_ref().map(|s| s.loaded.set.digest.clone())
    }

    /// The last preview report made for the current plan (what the report ConfigMap holds).
    pub fn last_report(&self) -> Option<&PreviewReport> {
        self.state.as_ref()?.assessment.as_ref().map(|a| &a.report)
    }

    fn options(&self, spec: &RestoreRunSpec) -> EngineOptions {
        let mut options = EngineOptions { existing_objects: spec.existing_objects, ..EngineOptions::default() };
        if let Some(threshold) = self.large_change_threshold {
            options.large_change_threshold = threshold;
        }
        options
    }

    /// Fetches and verifies the source unless this plan's backup is already loaded.
    async fn ensure_loaded<C: ClusterObjects>(
        &mut self,
        spec: &RestoreRunSpec,
        source: &SourceContext<'_, C>,
    ) -> Result<&mut PlanState, StepError> {
        let plan = plan_inputs_digest(spec);
        if self.state.as_ref().is_none_or(|s| s.plan != plan) {
            let loaded =
                resolve(&spec.source, source.namespace, source.cluster, source.fetcher).await.map_err(source_error)?;
            self.state = Some(PlanState { plan, loaded, scope: None, assessment: None, fresh_from_check: false });
        }
        self.state.as_mut().ok_or_else(|| StepError::transient("the backup was not loaded"))
    }

    /// Resolves this plan's scope unless it is already resolved.
    async fn ensure_scoped<C: ClusterObjects>(
        &mut self,
        spec: &RestoreRunSpec,
        source: &SourceContext<'_, C>,
    ) -> Result<&mut PlanState, StepError> {
        let state = self.ensure_loaded(spec, source).await?;
        if state.scope.is_none() {
            // The items move into the scope: the run holds one copy of its backup, not two.
            state.scope = Some(resolve_scope_taking(&spec.scope, &mut state.loaded.set)?);
        }
        Ok(state)
    }

    /// Reads the tenant and assesses the scope against it (checks + preview), keeping the result.
    async fn assess_now<C: ClusterObjects, T: TenantPort>(
        &mut self,
        spec: &RestoreRunSpec,
        source: &SourceContext<'_, C>,
        port: &T,
        target: &RestoreTarget,
    ) -> Result<&Assessment, StepError> {
        let options = self.options(spec);
        let state = self.ensure_scoped(spec, source).await?;
        let scope = state.scope.as_ref().ok_or_else(|| StepError::transient("scope missing"))?;
        let mut assessment = assess(port, scope, target, &options).await?;
        if !state.loaded.findings.is_empty() {
            assessment.report.findings.extend(state.loaded.findings.iter().map(load_finding));
            assessment.digest = assessment.report.digest();
        }
        Ok(state.assessment.insert(assessment))
    }

    /// Runs one wizard step (all but Execute, see [`StepRunner::executor`]) and returns its fact.
    pub async fn run_step<C: ClusterObjects, T: TenantPort>(
        &mut self,
        step: Step,
        spec: &RestoreRunSpec,
        source: &SourceContext<'_, C>,
        port: &T,
        target: &RestoreTarget,
    ) -> Fact {
        let plan = plan_inputs_digest(spec);
        let outcome = match step {
            Step::ResolveSource => {
                // A resolve step always fetches again: the step exists to verify the source now.
                self.state = None;
                StepOutcome::Source(self.ensure_loaded(spec, source).await.map(|state| source_status(&state.loaded)))
            }
            Step::Scope => StepOutcome::Scope(
                self.ensure_scoped(spec, source)
                    .await
                    .map(|s| s.scope.as_ref().map(|sc| sc.status.clone()).unwrap_or_default()),
            ),
            Step::Check => {
                let result = self.assess_now(spec, source, port, target).await.map(Assessment::checks_status);
                if let Some(state) = self.state.as_mut() {
                    state.fresh_from_check = result.is_ok();
                }
                StepOutcome::Checks(result)
            }
            Step::Preview => {
                // Right after the checks, their assessment is the preview; any later preview (a
                // drift re-check, an approval's verification) reads the tenant again.
                let reuse = self.state.as_mut().filter(|s| s.fresh_from_check && s.assessment.is_some());
                let result = match reuse {
                    Some(state) => {
                        state.fresh_from_check = false;
                        state.assessment.as_ref().ok_or_else(|| StepError::transient("assessment missing"))
                    }
                    None => self.assess_now(spec, source, port, target).await,
                };
                StepOutcome::Preview(result.map(|a| PreviewFacts {
                    digest: a.digest.clone(),
                    counts: a.report.counts.clone(),
                    report: None,
                    checks: Some(a.checks_status()),
                }))
            }
            Step::Execute => StepOutcome::Execution(Err(StepError::permanent(
                "execution runs through StepRunner::executor, one write step at a time",
            ))),
        };
        Fact { plan, outcome }
    }

    /// An executor for the approved preview `report`, resuming from `progress`. The scope is
    /// re-resolved from the (re-verified) source, so a restarted controller rebuilds the same plan.
    pub async fn executor<C: ClusterObjects>(
        &mut self,
        spec: &RestoreRunSpec,
        source: &SourceContext<'_, C>,
        report: &PreviewReport,
        progress: ProgressRecord,
    ) -> Result<Executor, StepError> {
        let state = self.ensure_scoped(spec, source).await?;
        let scope = state.scope.as_ref().ok_or_else(|| StepError::transient("scope missing"))?;
        let plan = ExecutionPlan::build(scope, report)?;
        Ok(Executor::new(plan, progress)?)
    }
}

/// A source that failed to load as a step error: one that does not exist yet (a ConfigMap applied
/// after the run, a Flux source not ready) waits; trouble that may pass is retried; the rest is final.
fn source_error(e: restore_backup::BackupError) -> StepError {
    use restore_backup::BackupError as E;
    match e {
        E::ConfigMapNotFound { .. } | E::FluxSourceNotFound { .. } | E::FluxArtifactNotReady { .. } => {
            StepError::missing(e.to_string())
        }
        E::DownloadSlotsBusy { .. } => StepError::downloads_busy(e.to_string()),
        e if e.is_transient() => StepError::transient(e.to_string()),
        e => StepError::permanent(e.to_string()),
    }
}

/// `status.source` of a loaded backup.
pub fn source_status(loaded: &Loaded) -> SourceStatus {
    SourceStatus {
        digest: loaded.set.digest.clone(),
        captured_at: loaded.set.captured_at.clone(),
        tenant_id: loaded.set.tenant.as_ref().map(|t| t.id.clone()),
        item_count: u32::try_from(loaded.set.items.len()).unwrap_or(u32::MAX),
    }
}

/// A finding of the loader as a check finding: what the backup held that will not be restored.
fn load_finding(f: &LoadFinding) -> Finding {
    use restore_backup::FindingCode as Load;
    let (code, severity, hint) = match f.code {
        Load::UnknownType | Load::UnknownFolder => {
            (FindingCode::UnsupportedType, Severity::Warning, "this build does not restore it; it is left out")
        }
        Load::UnexpectedOdataType => {
            (FindingCode::UnsupportedType, Severity::Warning, "check the item's @odata.type in the backup")
        }
        Load::MissingSubResource => {
            (FindingCode::IncompleteSnapshot, Severity::Warning, "capture the backup again to include it")
        }
    };
    Finding {
        code,
        severity,
        item: Some(f.item.clone()),
        item_key: Some(f.item.clone()),
        message: format!("{}: {}", f.code.as_str(), f.message),
        hint: hint.to_string(),
    }
}
