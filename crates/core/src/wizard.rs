//! The RestoreRun wizard as a pure function: spec + current status + observed facts + the time
//! → the status to write and the next step to run. No I/O, no clock reads; adapters do the steps.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::{
    ActionCounts, ApprovedPlan, ChecksStatus, ConfirmationStatus, Environment, ExecutionStatus, ItemResult,
    MAX_STATUS_RESULTS, OutcomeCounts, Phase, PreviewStatus, RestoreRunSpec, RestoreRunStatus, ScopeStatus,
    SourceStatus, TenantIdentity,
};
use crate::canonical::digest_of;
use crate::conditions::{
    Condition, is_true, parse_time, reasons, remove_condition, rfc3339, set_condition, sort_conditions, types,
};
use crate::duration::parse_duration;

/// What a finished run's `Ready` message says after its spec was edited.
pub const SPEC_EDIT_IGNORED_NOTE: &str = "The spec was edited after the run finished and the edit is ignored";

/// How often a run waiting for confirmation re-reads the tenant to catch drift.
pub const DRIFT_RECHECK: Duration = Duration::from_secs(300);
/// How often a blocked run runs its checks again (a missing group may have been created).
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(300);
/// Retry delay after a step failed for a reason that may pass (network, throttling).
pub const TRANSIENT_RETRY: Duration = Duration::from_secs(30);
/// Requeue delay while the tenant is missing or not ready.
pub const TENANT_WAIT: Duration = Duration::from_secs(30);
/// Longest retry delay after steps failed in a row (the delay doubles from [`TRANSIENT_RETRY`]).
pub const MAX_RETRY: Duration = Duration::from_secs(600);
/// Longest interval between two looks for something a run waits for (a source applied after the
/// run, a tenant another run holds).
pub const MAX_WAIT_POLL: Duration = Duration::from_secs(60);
/// Shortest `previewTTL`: a shorter one would expire before a human can approve and make an
/// approved run re-preview without end.
pub const MIN_PREVIEW_TTL: Duration = Duration::from_secs(60);

/// How long a run waiting for something to appear or be released waits before its `failures`-th
/// look: 5 s, doubled per look, at most [`MAX_WAIT_POLL`].
pub fn wait_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    Duration::from_secs(5).saturating_mul(1 << doublings).min(MAX_WAIT_POLL)
}

/// The retry delay after `failures` steps failed in a row: 30 s, doubled per failure, at most
/// [`MAX_RETRY`].
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    TRANSIENT_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// What the controller knows about the referenced IntuneTenant right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantObservation {
    /// No IntuneTenant of that name exists.
    Missing,
    /// The IntuneTenant exists.
    Present(TenantView),
}

/// The facts of an IntuneTenant the wizard needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantView {
    /// Entra tenant id.
    pub id: String,
    /// Hard-confirm label.
    pub label: String,
    /// Current environment.
    pub environment: Environment,
    /// Whether its credentials are verified (`Ready=True`).
    pub ready: bool,
    /// Why it is not ready, when it is not.
    pub not_ready_message: Option<String>,
}

/// A step the adapters run for the wizard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Step {
    /// Fetch and verify the backup.
    ResolveSource,
    /// Resolve the scope.
    Scope,
    /// Run the safety checks.
    Check,
    /// Compute (or refresh) the preview.
    Preview,
    /// Write to the tenant (or resume writing).
    Execute,
}

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    /// `true` when retrying cannot help (invalid backup, digest mismatch, invalid scope).
    pub permanent: bool,
    /// Set when the step waits for something rather than failed: the condition reason to show
    /// (`SourceNotFound`: a source applied after the run; `TenantBusy`: another run writes to the
    /// same Entra tenant).
    pub waiting: Option<&'static str>,
    /// What went wrong, for the human.
    pub message: String,
    /// How long the tenant's service asked to wait (Graph's `Retry-After`), when it said: the
    /// next try comes after that wait (bounded) instead of the growing retry delay.
    pub retry_after: Option<Duration>,
}

impl StepError {
    /// An error that may pass with time.
    pub fn transient(message: impl Into<String>) -> Self {
        StepError { permanent: false, waiting: None, message: message.into(), retry_after: None }
    }

    /// An error that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError { permanent: true, waiting: None, message: message.into(), retry_after: None }
    }

    /// Something the step needs does not exist yet; the run waits for it.
    pub fn missing(message: impl Into<String>) -> Self {
        StepError {
            permanent: false,
            waiting: Some(reasons::SOURCE_NOT_FOUND),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Every download slot is busy; the run waits its turn.
    pub fn downloads_busy(message: impl Into<String>) -> Self {
        StepError {
            permanent: false,
            waiting: Some(reasons::DOWNLOADS_BUSY),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Another run holds the Entra tenant; this one waits its turn.
    pub fn busy(message: impl Into<String>) -> Self {
        StepError { permanent: false, waiting: Some(reasons::TENANT_BUSY), message: message.into(), retry_after: None }
    }

    /// The same error, with the wait the tenant's service asked for.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// The outcome of a preview step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewFacts {
    /// The preview digest (DESIGN §2 rule 2).
    pub digest: String,
    /// Planned actions.
    pub counts: ActionCounts,
    /// Name of the report ConfigMap, once written.
    pub report: Option<String>,
    /// The checks of this preview: a later preview (drift re-check, approval re-read) may find
    /// blockers the first did not, and the gate must see them.
    pub checks: Option<ChecksStatus>,
}

/// Execution progress reported by the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionFacts {
    /// Steps of the plan completed (the resume point).
    pub completed_steps: u32,
    /// Steps in the plan.
    pub total_steps: u32,
    /// Items by outcome so far.
    pub counts: OutcomeCounts,
    /// Results worth showing (failures and drift first).
    pub results: Vec<ItemResult>,
    /// Whether every step is done.
    pub finished: bool,
    /// Digest of the progress record after `completed_steps` steps.
    pub progress_digest: String,
}

/// The result of a step, as observed by the adapter that ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Source resolution.
    Source(Result<SourceStatus, StepError>),
    /// Scope resolution.
    Scope(Result<ScopeStatus, StepError>),
    /// Safety checks.
    Checks(Result<ChecksStatus, StepError>),
    /// Preview.
    Preview(Result<PreviewFacts, StepError>),
    /// Execution progress.
    Execution(Result<ExecutionFacts, StepError>),
}

impl StepOutcome {
    /// Whether the step succeeded.
    pub fn is_ok(&self) -> bool {
        match self {
            StepOutcome::Source(r) => r.is_ok(),
            StepOutcome::Scope(r) => r.is_ok(),
            StepOutcome::Checks(r) => r.is_ok(),
            StepOutcome::Preview(r) => r.is_ok(),
            StepOutcome::Execution(r) => r.is_ok(),
        }
    }

    /// The wait the tenant's service asked for, when the step failed and it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StepOutcome::Source(Err(e)) | StepOutcome::Scope(Err(e)) | StepOutcome::Checks(Err(e)) => e.retry_after,
            StepOutcome::Preview(Err(e)) | StepOutcome::Execution(Err(e)) => e.retry_after,
            _ => None,
        }
    }
}

/// An observed fact, tagged with the plan inputs it was computed from so a stale fact (from
/// before a spec edit) is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// [`plan_inputs_digest`] of the spec the step ran for.
    pub plan: String,
    /// What the step produced.
    pub outcome: StepOutcome,
}

/// Everything the wizard looks at.
#[derive(Clone, Debug)]
pub struct WizardInput<'a> {
    /// The RestoreRun's name (for the approval hint).
    pub run_name: &'a str,
    /// The RestoreRun spec.
    pub spec: &'a RestoreRunSpec,
    /// `metadata.generation`.
    pub generation: i64,
    /// The status as last written.
    pub status: &'a RestoreRunStatus,
    /// The referenced IntuneTenant.
    pub tenant: &'a TenantObservation,
    /// The result of the step just run, if any.
    pub fact: Option<Fact>,
    /// Something the run waits for appeared (the adapter saw its source ConfigMap arrive): a step
    /// that failed waiting for it is tried now, not at `status.nextAttemptAt`.
    pub awaited_appeared: bool,
    /// The current time.
    pub now: Timestamp,
}

/// What the wizard decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The status to write.
    pub status: RestoreRunStatus,
    /// The step to run now, if any.
    pub step: Option<Step>,
    /// When to look again if nothing else happens.
    pub requeue_after: Option<Duration>,
}

/// The plan inputs of a spec: everything but `dryRun` and `confirmation` (DESIGN §2 rule 3).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanInputs<'a> {
    tenant_ref: &'a crate::api::TenantRef,
    source: &'a crate::api::SourceSpec,
    scope: &'a crate::api::ScopeSpec,
    existing_objects: crate::api::ExistingObjects,
    preview_ttl: &'a str,
}

/// Digest of the plan inputs. Changing `dryRun` or `confirmation` never changes it.
pub fn plan_inputs_digest(spec: &RestoreRunSpec) -> String {
    let inputs = PlanInputs {
        tenant_ref: &spec.tenant_ref,
        source: &spec.source,
        scope: &spec.scope,
        existing_objects: spec.existing_objects,
        preview_ttl: &spec.preview_ttl,
    };
    // Plain data of strings, enums and bools: serialization cannot fail.
    digest_of(&inputs).unwrap_or_default()
}

/// Checks what the CRD schema also enforces, for specs that did not come through an API server
/// (the `preview` command) and as defence in depth.
pub fn validate_spec(spec: &RestoreRunSpec) -> Result<(), String> {
    let s = &spec.source;
    let kinds = [s.url.is_some(), s.config_map_ref.is_some(), s.artifact_ref.is_some()].iter().filter(|k| **k).count();
    if kinds != 1 {
        return Err(format!("spec.source must set exactly one of url, configMapRef, artifactRef (found {kinds})"));
    }
    if let Some(url) = &s.url {
        if !url.starts_with("https://") {
            return Err("spec.source.url must be an https:// URL".into());
        }
        match &s.sha256 {
            Some(sha) if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {}
            Some(_) => return Err("spec.source.sha256 must be 64 lower-case hex characters".into()),
            None => return Err("spec.source.url requires spec.source.sha256".into()),
        }
    }
    if let Some(path) = &s.path
        && (path.starts_with('/') || path.split(['/', '\\']).any(|part| part == ".."))
    {
        return Err(format!("spec.source.path {path:?} must be relative and must not contain '..'"));
    }
    if spec.tenant_ref.name.is_empty() {
        return Err("spec.tenantRef.name must not be empty".into());
    }
    let ttl = parse_duration(&spec.preview_ttl).map_err(|e| format!("spec.previewTTL: {e}"))?;
    if ttl < MIN_PREVIEW_TTL {
        return Err(format!("spec.previewTTL {:?} is shorter than the minimum of 1m", spec.preview_ttl));
    }
    Ok(())
}

/// Why the rule-1 gate is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateRefusal {
    /// Condition reason.
    pub reason: &'static str,
    /// What the human must change.
    pub message: String,
}

/// Whether the preview's expiry is part of the check: it is when a confirmation is accepted,
/// not while an accepted execution continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryCheck {
    /// The preview must not have expired at `now`.
    Enforce,
    /// The preview's expiry is not looked at.
    Ignore,
}

/// Whether the tenant is still the one frozen into the run: same id, same environment.
fn identity_refusal(spec: &RestoreRunSpec, status: &RestoreRunStatus, view: &TenantView) -> Option<GateRefusal> {
    let frozen = status.tenant.as_ref()?;
    if frozen.id != view.id {
        return Some(GateRefusal {
            reason: reasons::TENANT_CHANGED,
            message: format!(
                "IntuneTenant {:?} now points at tenant {} but this run was planned for {}; create a new RestoreRun",
                spec.tenant_ref.name, view.id, frozen.id
            ),
        });
    }
    let env = status.environment?;
    (env != view.environment).then(|| GateRefusal {
        reason: reasons::ENVIRONMENT_CHANGED,
        message: format!(
            "the tenant's environment changed from {} to {}; create a new RestoreRun",
            env.as_str(),
            view.environment.as_str()
        ),
    })
}

/// DESIGN §2 rule 1: every condition under which a write may reach the tenant.
pub fn gate(
    spec: &RestoreRunSpec,
    status: &RestoreRunStatus,
    tenant: &TenantObservation,
    now: Timestamp,
    expiry: ExpiryCheck,
) -> Result<(), GateRefusal> {
    let refuse = |reason, message: String| Err(GateRefusal { reason, message });
    let TenantObservation::Present(view) = tenant else {
        return refuse(reasons::TENANT_NOT_FOUND, format!("IntuneTenant {:?} not found", spec.tenant_ref.name));
    };
    if status.tenant.is_none() || status.environment.is_none() {
        return refuse(reasons::TENANT_NOT_FOUND, "the tenant was not recorded yet".into());
    }
    if let Some(refusal) = identity_refusal(spec, status, view) {
        return Err(refusal);
    }
    if spec.dry_run {
        return refuse(reasons::DRY_RUN, "spec.dryRun is true".into());
    }
    let Some(checks) = &status.checks else {
        return refuse(reasons::NOT_STARTED, "the safety checks have not run".into());
    };
    if checks.blockers > 0 {
        return refuse(reasons::BLOCKERS_FOUND, format!("{} blocker finding(s)", checks.blockers));
    }
    let Some(preview) = status.preview.as_ref().filter(|_| is_true(&status.conditions, types::PREVIEW_READY)) else {
        return refuse(reasons::NOT_STARTED, "no preview is ready".into());
    };
    if expiry == ExpiryCheck::Enforce && preview_expired(preview, now) {
        return refuse(reasons::PREVIEW_EXPIRED, format!("the preview expired at {}", preview.expires_at));
    }
    let Some(confirmation) = &spec.confirmation else {
        return refuse(reasons::AWAITING_CONFIRMATION, "spec.confirmation is not set".into());
    };
    if confirmation.preview_digest != preview.digest {
        return refuse(
            reasons::DIGEST_MISMATCH,
            format!(
                "spec.confirmation.previewDigest is {:?} but the current preview's digest is {}",
                truncate(&confirmation.preview_digest, 80),
                preview.digest
            ),
        );
    }
    if confirmation.tenant != view.label {
        return refuse(
            reasons::TENANT_LABEL_MISMATCH,
            format!(
                "spec.confirmation.tenant is {:?} but the tenant's label is {:?}",
                truncate(&confirmation.tenant, 80),
                view.label
            ),
        );
    }
    if !confirmation.reviewed_impact {
        return refuse(reasons::IMPACT_NOT_REVIEWED, "spec.confirmation.reviewedImpact must be true".into());
    }
    if confirmation.approved_by.trim().is_empty() {
        return refuse(reasons::APPROVER_MISSING, "spec.confirmation.approvedBy must name the approver".into());
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max).collect::<String>() + "…" }
}

/// Whether a preview has expired at `now` (an unreadable expiry counts as expired).
pub fn preview_expired(preview: &PreviewStatus, now: Timestamp) -> bool {
    parse_time(&preview.expires_at).is_none_or(|expires| now >= expires)
}

/// Runs the wizard one step: applies `input.fact`, then decides the next step.
pub fn advance(input: WizardInput<'_>) -> Decision {
    let mut w = Wizard {
        input: &input,
        status: input.status.clone(),
        step: None,
        requeue_after: None,
        backing_off: false,
        waiting: false,
        server_wait: None,
    };
    w.run();
    let Wizard { mut status, step, requeue_after, .. } = w;
    sort_conditions(&mut status.conditions);
    status.clamp_to_schema();
    Decision { status, step, requeue_after }
}

struct Wizard<'a, 'b> {
    input: &'a WizardInput<'b>,
    status: RestoreRunStatus,
    step: Option<Step>,
    requeue_after: Option<Duration>,
    /// The fact just applied was a transient failure: wait before running the step again.
    backing_off: bool,
    /// The failure was a wait for something to appear or be released: poll at most every
    /// [`MAX_WAIT_POLL`] rather than backing off further.
    waiting: bool,
    /// The wait the tenant's service asked for with the failure just applied (Graph's `Retry-After`).
    server_wait: Option<Duration>,
}

impl Wizard<'_, '_> {
    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    fn set(&mut self, condition: Condition) {
        set_condition(&mut self.status.conditions, condition, self.input.generation, self.input.now);
    }

    fn run(&mut self) {
        let spec = self.input.spec;
        if self.phase().is_terminal() {
            // Rule 6: a finished run stays finished; only note that the spec edit was ignored.
            self.observe_finished();
            return;
        }
        self.status.observed_generation = Some(self.input.generation);
        let plan = plan_inputs_digest(spec);

        if self.phase() == Phase::Executing {
            if self.status.plan_inputs.as_deref() != Some(plan.as_str()) {
                // The approved plan is being executed; a later plan edit cannot change it.
                self.set(Condition::unknown(
                    types::EXECUTED,
                    reasons::SPEC_CHANGE_IGNORED,
                    "a plan input changed during execution and is ignored; this run finishes the approved plan. \
                     Create a new RestoreRun for the new plan",
                ));
            }
        } else if self.status.plan_inputs.as_deref() != Some(plan.as_str()) {
            self.reset(plan.clone());
        }

        if self.phase() == Phase::Pending
            && let Err(message) = validate_spec(spec)
        {
            self.fail(types::SOURCE_RESOLVED, reasons::INVALID_SPEC, message);
            return;
        }

        // The tenant: frozen at the first sight, required ready for every step.
        let view = match self.input.tenant {
            TenantObservation::Missing => {
                let msg = format!(
                    "IntuneTenant {:?} not found in this namespace; create it or fix spec.tenantRef",
                    spec.tenant_ref.name
                );
                self.progressing(reasons::TENANT_NOT_FOUND, msg);
                self.requeue_after = Some(TENANT_WAIT);
                return;
            }
            TenantObservation::Present(view) => view,
        };
        if self.status.tenant.is_none() || self.status.environment.is_none() {
            self.status.tenant = Some(TenantIdentity { id: view.id.clone(), label: view.label.clone() });
            self.status.environment = Some(view.environment);
        }
        if let Some(refusal) = identity_refusal(self.input.spec, &self.status, view) {
            self.stalled(refusal.reason, format!("{}; nothing will be written", refusal.message));
            self.requeue_after = Some(BLOCKED_RECHECK);
            return;
        }
        if !view.ready {
            let why = view.not_ready_message.clone().unwrap_or_else(|| "credentials not verified yet".into());
            self.progressing(
                reasons::TENANT_NOT_READY,
                format!("IntuneTenant {:?} is not Ready: {why}", spec.tenant_ref.name),
            );
            self.requeue_after = Some(TENANT_WAIT);
            return;
        }

        if let Some(fact) = self.input.fact.clone() {
            let current = fact.plan == plan || self.phase() == Phase::Executing;
            if current {
                self.apply(fact.outcome);
                if self.phase().is_terminal() {
                    return;
                }
            }
        } else if self.retry_pending() && !self.input.awaited_appeared {
            self.backing_off = true;
        }
        self.decide();
    }

    /// A finished run observes every generation (so `kubectl wait --for=condition=Ready` ends) and
    /// says in its `Ready` message that a spec edit after the end was ignored.
    fn observe_finished(&mut self) {
        let generation = self.input.generation;
        let edited = self.status.observed_generation.is_some_and(|seen| seen != generation);
        self.status.observed_generation = Some(generation);
        for condition in &mut self.status.conditions {
            condition.observed_generation = Some(generation);
        }
        if !edited {
            return;
        }
        if let Some(ready) = self.status.conditions.iter_mut().find(|c| c.type_ == types::READY) {
            let base = ready.message.split(SPEC_EDIT_IGNORED_NOTE).next().unwrap_or_default().trim_end().to_string();
            ready.message =
                format!("{base} {SPEC_EDIT_IGNORED_NOTE} (generation {generation}); create a new RestoreRun");
        }
    }

    /// Rule 3: a new plan starts the wizard over.
    fn reset(&mut self, plan: String) {
        let first = self.status.plan_inputs.is_none();
        self.status.plan_inputs = Some(plan);
        self.status.source = None;
        self.status.scope = None;
        self.status.checks = None;
        self.status.preview = None;
        self.status.confirmation = None;
        self.status.execution = None;
        self.status.failed_attempts = None;
        self.status.next_attempt_at = None;
        self.status.phase = Some(Phase::Pending);
        let (reason, message) = if first {
            (reasons::NOT_STARTED, "waiting for the previous steps")
        } else {
            (reasons::PLAN_CHANGED, "a plan input changed; this step runs again")
        };
        for step in types::STEPS {
            self.set(Condition::unknown(step, reason, message));
        }
    }

    fn apply(&mut self, outcome: StepOutcome) {
        let now = rfc3339(self.now());
        self.server_wait = outcome.retry_after();
        if outcome.is_ok() {
            self.status.failed_attempts = None;
            self.status.next_attempt_at = None;
        }
        match (self.phase(), outcome) {
            (Phase::ResolvingSource, StepOutcome::Source(result)) => match result {
                Ok(source) => {
                    let msg = format!("backup {} with {} item(s)", source.digest, source.item_count);
                    self.status.source = Some(source);
                    self.set(Condition::yes(types::SOURCE_RESOLVED, reasons::SOURCE_RESOLVED, msg));
                    self.status.phase = Some(Phase::Scoping);
                }
                Err(e) if e.permanent => self.fail(types::SOURCE_RESOLVED, reasons::SOURCE_INVALID, e.message),
                Err(StepError { waiting: Some(reason), message, .. }) => {
                    let message = if reason == reasons::SOURCE_NOT_FOUND {
                        format!("{message}; waiting for it to appear")
                    } else {
                        message
                    };
                    self.retry_later(types::SOURCE_RESOLVED, reason, message)
                }
                Err(e) => self.retry_later(types::SOURCE_RESOLVED, reasons::SOURCE_UNAVAILABLE, e.message),
            },
            (Phase::Scoping, StepOutcome::Scope(result)) => match result {
                Ok(scope) => {
                    let msg = format!(
                        "{} item(s) in scope: {} foundation(s), {} polic(ies), {} preview-only",
                        scope.total, scope.foundations, scope.policies, scope.preview_only
                    );
                    self.status.scope = Some(scope);
                    self.set(Condition::yes(types::SCOPED, reasons::SCOPE_RESOLVED, msg));
                    self.status.phase = Some(Phase::Checking);
                }
                Err(e) if e.permanent => self.fail(types::SCOPED, reasons::SCOPE_INVALID, e.message),
                Err(e) => self.retry_later(types::SCOPED, reasons::TENANT_UNAVAILABLE, e.message),
            },
            (Phase::Checking | Phase::Blocked, StepOutcome::Checks(result)) => match result {
                Ok(checks) => {
                    let blocked = self.record_checks(checks);
                    self.status.phase = Some(if blocked { Phase::Blocked } else { Phase::Previewing });
                }
                Err(e) if e.permanent => self.fail(types::CHECKS_PASSED, reasons::FAILED, e.message),
                Err(e) => self.retry_later(types::CHECKS_PASSED, reasons::TENANT_UNAVAILABLE, e.message),
            },
            (Phase::Previewing | Phase::Previewed | Phase::AwaitingConfirmation, StepOutcome::Preview(result)) => {
                match result {
                    Ok(facts) => self.record_preview(facts),
                    // A failed drift re-check keeps the preview and backs off before the next try.
                    Err(_) if self.phase() != Phase::Previewing => self.note_failed_attempt(),
                    Err(e) if e.permanent => self.fail(types::PREVIEW_READY, reasons::FAILED, e.message),
                    Err(e) => self.retry_later(types::PREVIEW_READY, reasons::TENANT_UNAVAILABLE, e.message),
                }
            }
            (Phase::Executing, StepOutcome::Execution(result)) => match result {
                Ok(facts) => self.record_execution(facts),
                Err(e) if e.permanent => {
                    if let Some(exec) = &mut self.status.execution {
                        exec.finished_at = Some(now);
                    }
                    self.fail(types::EXECUTED, reasons::EXECUTION_FAILED, e.message)
                }
                Err(e) => {
                    self.retry_later(types::EXECUTED, e.waiting.unwrap_or(reasons::TENANT_UNAVAILABLE), e.message)
                }
            },
            // A fact for a step the wizard is not at (late or duplicated): ignored.
            _ => {}
        }
    }

    /// Records the checks' result and their condition; `true` when they found a blocker.
    fn record_checks(&mut self, mut checks: ChecksStatus) -> bool {
        checks.checked_at = Some(rfc3339(self.now()));
        let blocked = checks.blockers > 0;
        if blocked {
            let first = checks
                .findings
                .iter()
                .find(|f| f.severity == crate::api::Severity::Blocker)
                .map(|f| format!(" First: {}", f.message))
                .unwrap_or_default();
            let msg = format!(
                "{} blocker(s), {} warning(s); nothing will be written. Fix the tenant or narrow spec.scope.{first}",
                checks.blockers, checks.warnings
            );
            self.set(Condition::no(types::CHECKS_PASSED, reasons::BLOCKERS_FOUND, msg));
        } else {
            let msg = format!("no blocker, {} warning(s), {} info", checks.warnings, checks.infos);
            self.set(Condition::yes(types::CHECKS_PASSED, reasons::NO_BLOCKERS, msg));
        }
        self.status.checks = Some(checks);
        blocked
    }

    /// The checks a later preview found, when they differ from the recorded ones: blockers stop
    /// the run before the gate can open (the preview that found them is still recorded).
    fn record_later_checks(&mut self, checks: ChecksStatus) {
        let same = self.status.checks.as_ref().is_some_and(|recorded| {
            ChecksStatus { checked_at: None, ..recorded.clone() } == ChecksStatus { checked_at: None, ..checks.clone() }
        });
        if !same && self.record_checks(checks) {
            self.status.phase = Some(Phase::Blocked);
        }
    }

    fn record_preview(&mut self, mut facts: PreviewFacts) {
        let later_checks = facts.checks.take();
        self.record_preview_status(facts);
        if let Some(checks) = later_checks {
            self.record_later_checks(checks);
        }
    }

    fn record_preview_status(&mut self, facts: PreviewFacts) {
        let now = self.now();
        let ttl = parse_duration(&self.input.spec.preview_ttl).unwrap_or(Duration::from_secs(3600));
        let expires = now.checked_add(ttl).unwrap_or(now);
        let unchanged =
            self.status.preview.as_ref().is_some_and(|p| {
                p.digest == facts.digest && !preview_expired(p, now) && self.phase() != Phase::Previewing
            });
        let superseded = self.status.preview.as_ref().is_some_and(|p| p.digest != facts.digest);
        if !unchanged {
            let changes = facts.counts.changes();
            self.status.preview = Some(PreviewStatus {
                digest: facts.digest.clone(),
                generated_at: rfc3339(now),
                expires_at: rfc3339(expires),
                changes,
                counts: facts.counts,
                report: facts.report,
            });
        } else if let (Some(p), Some(report)) = (&mut self.status.preview, facts.report) {
            p.report = Some(report);
        }
        let (reason, msg) = if superseded {
            (
                reasons::PREVIEW_SUPERSEDED,
                format!("the tenant or backup changed since the last preview; the new digest is {}", facts.digest),
            )
        } else {
            (reasons::PREVIEW_READY, format!("preview {} is ready", facts.digest))
        };
        self.set(Condition::yes(types::PREVIEW_READY, reason, msg));
        if self.phase() == Phase::Previewing {
            self.status.phase = Some(Phase::AwaitingConfirmation);
        }
    }

    fn record_execution(&mut self, facts: ExecutionFacts) {
        let now = rfc3339(self.now());
        let exec = self
            .status
            .execution
            .get_or_insert_with(|| ExecutionStatus { started_at: now.clone(), ..Default::default() });
        exec.completed_steps = facts.completed_steps;
        exec.total_steps = facts.total_steps;
        exec.counts = facts.counts.clone();
        exec.results = facts.results;
        exec.results.truncate(MAX_STATUS_RESULTS);
        exec.progress_digest = Some(facts.progress_digest);
        if !facts.finished {
            return;
        }
        exec.finished_at = Some(now);
        let c = &facts.counts;
        let summary = format!(
            "{} created, {} updated, {} unchanged, {} skipped, {} drifted, {} failed",
            c.created, c.updated, c.unchanged, c.skipped, c.drifted, c.failed
        );
        let (phase, reason, status) = if c.problems() == 0 {
            (Phase::Succeeded, reasons::SUCCEEDED, true)
        } else if c.failed > 0 && c.problems() == c.total() {
            (Phase::Failed, reasons::FAILED, false)
        } else {
            (Phase::PartiallySucceeded, reasons::PARTIALLY_SUCCEEDED, false)
        };
        let condition = if status {
            Condition::yes(types::EXECUTED, reason, summary.clone())
        } else {
            Condition::no(types::EXECUTED, reason, format!("{summary}; see status.execution.results and the report"))
        };
        self.set(condition);
        self.status.phase = Some(phase);
        remove_condition(&mut self.status.conditions, types::RECONCILING);
        match phase {
            Phase::Succeeded => {
                self.set(Condition::yes(types::READY, reason, format!("restore finished: {summary}")));
                remove_condition(&mut self.status.conditions, types::STALLED);
            }
            _ => {
                let msg = format!("restore finished with problems: {summary}; create a new RestoreRun to retry");
                self.set(Condition::no(types::READY, reason, msg.clone()));
                self.set(Condition::yes(types::STALLED, reason, msg));
            }
        }
    }

    /// Chooses the next step for the (possibly updated) phase and writes the kstatus summary.
    fn decide(&mut self) {
        match self.phase() {
            Phase::Pending => {
                self.status.phase = Some(Phase::ResolvingSource);
                self.decide();
            }
            Phase::ResolvingSource => {
                self.run_step(Step::ResolveSource, types::SOURCE_RESOLVED, "fetching and verifying the backup")
            }
            Phase::Scoping => self.run_step(Step::Scope, types::SCOPED, "selecting the items to restore"),
            Phase::Checking => self.run_step(Step::Check, types::CHECKS_PASSED, "running the safety checks"),
            Phase::Previewing => {
                self.run_step(Step::Preview, types::PREVIEW_READY, "comparing the backup with the tenant")
            }
            Phase::Blocked => {
                let msg = find_message(&self.status.conditions, types::CHECKS_PASSED);
                self.stalled(reasons::BLOCKERS_FOUND, msg);
                let due = self
                    .status
                    .checks
                    .as_ref()
                    .and_then(|c| c.checked_at.as_deref())
                    .and_then(parse_time)
                    .and_then(|t| t.checked_add(BLOCKED_RECHECK).ok())
                    .is_none_or(|due| self.now() >= due);
                if due && self.input.fact.is_none() {
                    self.step = Some(Step::Check);
                } else {
                    self.requeue_after = Some(BLOCKED_RECHECK);
                }
            }
            Phase::Previewed | Phase::AwaitingConfirmation => self.await_confirmation(),
            Phase::Executing => self.continue_execution(),
            Phase::Succeeded | Phase::PartiallySucceeded | Phase::Failed => {}
        }
    }

    fn await_confirmation(&mut self) {
        let spec = self.input.spec;
        let Some(preview) = self.status.preview.clone() else {
            self.status.phase = Some(Phase::Previewing);
            return self.decide();
        };
        let changes = format!(
            "{} to create, {} to update, {} unchanged, {} skipped, {} preview-only",
            preview.counts.create,
            preview.counts.update,
            preview.counts.unchanged,
            preview.counts.skip,
            preview.counts.preview_only
        );
        let label = self.status.tenant.as_ref().map(|t| t.label.clone()).unwrap_or_default();
        let how_to_approve = format!(
            "set spec.dryRun: false and spec.confirmation: {{reviewedImpact: true, tenant: {label:?}, previewDigest: {:?}, \
             approvedBy: <your username>}} (or run: kubectl restorerun approve {}) before {}",
            preview.digest, self.input.run_name, preview.expires_at
        );
        if spec.dry_run {
            self.status.phase = Some(Phase::Previewed);
            self.set(Condition::no(
                types::CONFIRMED,
                reasons::DRY_RUN,
                format!("dry-run: nothing will be written. To execute, {how_to_approve}"),
            ));
            self.ready(reasons::PREVIEW_READY, format!("dry-run preview ready: {changes}"));
            return;
        }
        let fresh_preview = matches!(&self.input.fact, Some(Fact { outcome: StepOutcome::Preview(Ok(_)), .. }));
        match gate(spec, &self.status, self.input.tenant, self.now(), ExpiryCheck::Enforce) {
            Ok(()) if fresh_preview => self.accept_confirmation(),
            Ok(()) => {
                // Approve what the tenant looks like now: re-read it once before accepting.
                self.status.phase = Some(Phase::AwaitingConfirmation);
                let msg = "confirmation matches; re-reading the tenant to verify the preview before executing";
                self.set(Condition::unknown(types::CONFIRMED, reasons::VERIFYING_PREVIEW, msg));
                if self.backing_off {
                    self.progressing(reasons::TENANT_UNAVAILABLE, msg.into());
                    self.requeue_after = Some(self.retry_after());
                } else {
                    self.progressing(reasons::VERIFYING_PREVIEW, msg.into());
                    self.step = Some(Step::Preview);
                }
            }
            Err(refusal) if refusal.reason == reasons::PREVIEW_EXPIRED => {
                self.status.phase = Some(Phase::Previewing);
                let msg = format!("{}; regenerating it before it can be approved", refusal.message);
                self.set(Condition::unknown(types::PREVIEW_READY, reasons::PREVIEW_EXPIRED, msg.clone()));
                self.set(Condition::no(types::CONFIRMED, reasons::PREVIEW_EXPIRED, msg.clone()));
                self.progressing(reasons::PREVIEW_EXPIRED, msg);
                self.step = Some(Step::Preview);
            }
            Err(refusal) => {
                self.status.phase = Some(Phase::AwaitingConfirmation);
                let msg = if refusal.reason == reasons::AWAITING_CONFIRMATION {
                    format!("preview ready ({changes}). To approve, {how_to_approve}")
                } else {
                    format!("confirmation not accepted: {}. To approve, {how_to_approve}", refusal.message)
                };
                self.set(Condition::no(types::CONFIRMED, refusal.reason, msg.clone()));
                self.waiting(reasons::AWAITING_CONFIRMATION, msg);
                // Re-read the tenant now and then so drift supersedes a stale preview.
                if self.input.fact.is_none() && !self.backing_off {
                    self.step = Some(Step::Preview);
                }
                if self.backing_off {
                    self.requeue_after = Some(self.retry_after());
                    return;
                }
                let until_expiry = parse_time(&preview.expires_at)
                    .and_then(|e| self.now().until(e).ok())
                    .and_then(|span| span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).ok())
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or(Duration::ZERO);
                self.requeue_after = Some(DRIFT_RECHECK.min(until_expiry + Duration::from_secs(1)));
            }
        }
    }

    fn accept_confirmation(&mut self) {
        let now = rfc3339(self.now());
        let (Some(confirmation), Some(preview)) = (&self.input.spec.confirmation, &self.status.preview) else {
            return;
        };
        let spec = self.input.spec;
        let plan = ApprovedPlan {
            source: spec.source.clone(),
            source_digest: self.status.source.as_ref().map(|s| s.digest.clone()).unwrap_or_default(),
            scope: spec.scope.clone(),
            existing_objects: spec.existing_objects,
        };
        self.status.confirmation = Some(ConfirmationStatus {
            accepted_at: now.clone(),
            approved_by: confirmation.approved_by.clone(),
            digest: preview.digest.clone(),
            plan: Some(plan),
        });
        let msg = format!("approved by {} for preview {}", confirmation.approved_by, preview.digest);
        self.set(Condition::yes(types::CONFIRMED, reasons::CONFIRMATION_ACCEPTED, msg));
        self.status.execution = Some(ExecutionStatus { started_at: now, ..Default::default() });
        self.status.phase = Some(Phase::Executing);
        self.continue_execution();
    }

    fn continue_execution(&mut self) {
        let spec = self.input.spec;
        let accepted = self.status.confirmation.as_ref().map(|c| c.digest.clone());
        let gate = gate(spec, &self.status, self.input.tenant, self.now(), ExpiryCheck::Ignore);
        let refusal = match (gate, accepted) {
            (Ok(()), Some(digest)) if self.status.preview.as_ref().is_some_and(|p| p.digest == digest) => None,
            (Ok(()), _) => Some(GateRefusal {
                reason: reasons::DIGEST_MISMATCH,
                message: "the accepted confirmation does not name the current preview".into(),
            }),
            (Err(refusal), _) => Some(refusal),
        };
        if let Some(refusal) = refusal {
            let msg = format!(
                "execution paused: {}. Writes resume when spec.dryRun is false and spec.confirmation matches again",
                refusal.message
            );
            self.set(Condition::unknown(types::EXECUTED, reasons::EXECUTION_PAUSED, msg.clone()));
            self.stalled(reasons::EXECUTION_PAUSED, msg);
            return;
        }
        if self.backing_off {
            let msg = find_message(&self.status.conditions, types::EXECUTED);
            let reason = find_reason(&self.status.conditions, types::EXECUTED)
                .unwrap_or(reasons::TENANT_UNAVAILABLE)
                .to_string();
            self.progressing(&reason, msg);
            self.requeue_after = Some(self.retry_after());
            return;
        }
        let (done, total) = self.status.execution.as_ref().map_or((0, 0), |e| (e.completed_steps, e.total_steps));
        let msg = format!("writing to the tenant: {done}/{total} step(s) done");
        if find_reason(&self.status.conditions, types::EXECUTED) != Some(reasons::SPEC_CHANGE_IGNORED) {
            self.set(Condition::unknown(types::EXECUTED, reasons::EXECUTING, msg.clone()));
        }
        self.progressing(reasons::EXECUTING, msg);
        self.step = Some(Step::Execute);
    }

    fn run_step(&mut self, step: Step, condition: &str, what: &str) {
        let phase = self.phase();
        if self.backing_off {
            let msg = find_message(&self.status.conditions, condition);
            let reason = find_reason(&self.status.conditions, condition).unwrap_or(reasons::IN_PROGRESS).to_string();
            self.progressing(&reason, msg);
            self.requeue_after = Some(self.retry_after());
            return;
        }
        self.set(Condition::unknown(condition, reasons::IN_PROGRESS, what));
        self.progressing(phase.as_str(), format!("{what} ({phase})"));
        self.step = Some(step);
    }

    fn retry_later(&mut self, condition: &str, reason: &str, message: String) {
        self.waiting = [reasons::SOURCE_NOT_FOUND, reasons::TENANT_BUSY, reasons::DOWNLOADS_BUSY].contains(&reason);
        self.note_failed_attempt();
        let msg = format!("{message}; retrying in {}s", self.retry_after().as_secs());
        self.set(Condition::unknown(condition, reason, msg));
    }

    /// Counts a step that failed for a reason that may pass and backs off before the next try.
    fn note_failed_attempt(&mut self) {
        let failures = self.status.failed_attempts.unwrap_or(0).saturating_add(1);
        self.status.failed_attempts = Some(failures);
        let delay = match self.server_wait {
            // Graph said when to come back: then, not after a delay grown by earlier failures.
            Some(wait) => wait.clamp(Duration::from_secs(1), MAX_RETRY),
            None if self.waiting => wait_delay(failures),
            None => retry_delay(failures),
        };
        let at = self.now().checked_add(delay).unwrap_or(self.now());
        self.status.next_attempt_at = Some(rfc3339(at));
        self.backing_off = true;
    }

    /// How long until the failed step is tried again (at least a second).
    fn retry_after(&self) -> Duration {
        let remaining = self
            .status
            .next_attempt_at
            .as_deref()
            .and_then(parse_time)
            .and_then(|at| self.now().until(at).ok())
            .and_then(|span| span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).ok())
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(Duration::ZERO);
        remaining.max(Duration::from_secs(1))
    }

    /// Whether a failed step's retry time is still ahead: a reconcile before it (one woken by this
    /// run's own status write, or a restart) waits instead of running the step again.
    fn retry_pending(&self) -> bool {
        self.status.next_attempt_at.as_deref().and_then(parse_time).is_some_and(|at| self.now() < at)
    }

    fn fail(&mut self, condition: &str, reason: &str, message: String) {
        self.status.phase = Some(Phase::Failed);
        let msg = format!("{message}. The run failed and is final; create a new RestoreRun to try again");
        self.set(Condition::no(condition, reason, msg.clone()));
        remove_condition(&mut self.status.conditions, types::RECONCILING);
        self.set(Condition::no(types::READY, reason, msg.clone()));
        self.set(Condition::yes(types::STALLED, reason, msg));
        self.step = None;
        self.requeue_after = None;
    }

    /// kstatus InProgress: Ready=False, Reconciling=True.
    fn progressing(&mut self, reason: &str, message: String) {
        self.set(Condition::no(types::READY, reason, message.clone()));
        self.set(Condition::yes(types::RECONCILING, reason, message));
        remove_condition(&mut self.status.conditions, types::STALLED);
    }

    /// Waiting for a human: Ready=False, neither Reconciling nor Stalled.
    fn waiting(&mut self, reason: &str, message: String) {
        self.set(Condition::no(types::READY, reason, message));
        remove_condition(&mut self.status.conditions, types::RECONCILING);
        remove_condition(&mut self.status.conditions, types::STALLED);
    }

    /// kstatus Failed: Ready=False, Stalled=True.
    fn stalled(&mut self, reason: &str, message: String) {
        self.set(Condition::no(types::READY, reason, message.clone()));
        self.set(Condition::yes(types::STALLED, reason, message));
        remove_condition(&mut self.status.conditions, types::RECONCILING);
    }

    /// kstatus Current: Ready=True.
    fn ready(&mut self, reason: &str, message: String) {
        self.set(Condition::yes(types::READY, reason, message));
        remove_condition(&mut self.status.conditions, types::RECONCILING);
        remove_condition(&mut self.status.conditions, types::STALLED);
    }
}

fn find_reason<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    crate::conditions::find(conditions, type_).map(|c| c.reason.as_str())
}

fn find_message(conditions: &[Condition], type_: &str) -> String {
    crate::conditions::find(conditions, type_).map(|c| c.message.clone()).unwrap_or_default()
}
