//! The one driver of the RestoreRun wizard, for the controller and the CLI alike: the pure `advance`
//! decides, the `StepRunner` and the executor do each step, and a `RunStore` keeps status and records.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use restore_backup::source::ClusterObjects;
use restore_core::api::{Phase, RestoreRunSpec, RestoreRunStatus};
use restore_core::engine::RestoreTarget;
use restore_core::engine::execute::{Executor, ProgressRecord, StepResult};
use restore_core::engine::preview::PreviewReport;
use restore_core::tenant::TenantPort;
use restore_core::wizard::{
    ExecutionFacts, Fact, Step, StepError, StepOutcome, TenantObservation, WizardInput, advance, plan_inputs_digest,
};

use crate::runner::{SourceContext, StepRunner};

/// Most wizard decisions one drive makes before it gives up (a guard against a loop; a 1,000-item
/// execution needs a few thousand).
const MAX_DECISIONS: usize = 200_000;

/// The wizard's clock: the system time, moved forward by tests that need a preview to expire.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> jiff::Timestamp {
        let now = jiff::Timestamp::now();
        let offset = jiff::SignedDuration::from_secs(self.offset_seconds.load(Ordering::SeqCst));
        now.checked_add(offset).unwrap_or(now)
    }

    /// Moves this clock (and every copy of it) `seconds` ahead.
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// What the wizard reads of the world besides its own status: the spec as last seen, its
/// generation, and the referenced tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInputs {
    /// The RestoreRun spec.
    pub spec: RestoreRunSpec,
    /// `metadata.generation`.
    pub generation: i64,
    /// The referenced IntuneTenant.
    pub tenant: TenantObservation,
    /// What the run waits for (its source) has appeared since the last look.
    pub awaited_appeared: bool,
}

/// What a store says right before a write, read fresh (never from a cache).
#[derive(Clone, Debug, PartialEq)]
pub enum WriteClearance {
    /// Nothing changed since the inputs were read: the write may go.
    Go,
    /// The spec or the tenant changed: decide again on these before writing.
    Changed(Box<RunInputs>),
    /// Another run is writing to the same Entra tenant (named here); wait.
    TenantBusy(String),
    /// The run is being deleted: stop at this item boundary.
    Deleting,
}

/// Why the driver stopped before the wizard came to rest.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The store could not be read or written (the run is retried later).
    #[error("{0}")]
    Store(String),
    /// This replica does not hold the leader Lease: it must not write anything.
    #[error("not the leader: {0}")]
    NotLeader(String),
    /// The wizard kept asking for steps.
    #[error("the wizard did not settle after {0} decisions")]
    NoProgress(usize),
}

/// Where a run's status, preview report and progress record live: the cluster (ConfigMaps owned by
/// the RestoreRun, its status subresource) or the memory of a CLI process.
#[allow(async_fn_in_trait)]
pub trait RunStore {
    /// Writes `new` when it differs from `old` (the status as last written).
    async fn write_status(&mut self, old: &RestoreRunStatus, new: &RestoreRunStatus) -> Result<(), DriverError>;
    /// Keeps the full report of the preview `digest`; returns the name to record in status.
    async fn save_report(&mut self, report: &PreviewReport, digest: &str) -> Result<String, DriverError>;
    /// The stored report, if any, as this controller wrote it (the driver checks its digest).
    async fn load_report(&mut self) -> Result<Option<PreviewReport>, DriverError>;
    /// Persists the progress record (after every execution step).
    async fn save_progress(&mut self, record: &ProgressRecord) -> Result<(), DriverError>;
    /// The stored progress record, if any (the driver checks it against status).
    async fn load_progress(&mut self) -> Result<Option<ProgressRecord>, DriverError>;
    /// Reads the run and its tenant fresh, right before a write, and says whether it may go.
    async fn before_write(&mut self, inputs: &RunInputs) -> Result<WriteClearance, DriverError>;
    /// Whether a drift re-check of a run waiting for confirmation is due now (a store that knows
    /// when the run last read its tenant skips the re-checks its own status writes would wake).
    async fn drift_recheck_due(&mut self) -> bool {
        true
    }
    /// Whether an expired preview nobody approved rests until the spec changes (the cluster's
    /// store: nobody may be looking) instead of being regenerated at once (an interactive CLI).
    fn rests_expired_previews(&self) -> bool {
        false
    }
}

/// Longest a drive keeps a changed status to itself between steps (a long preview still shows
/// where it is); quick steps are written once, when the run rests.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Something a drive reports as it goes.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The phase changed; `message` is the `Ready` condition's message.
    Phase {
        /// The new phase.
        phase: Phase,
        /// What the wizard says about it.
        message: &'a str,
    },
    /// One execution step completed.
    Executed(&'a StepResult),
    /// A stored progress record did not extend what status vouches for and was set aside.
    ProgressRejected,
}

/// How a drive ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rest {
    /// The wizard rests: look again after this long, or on a change.
    Settled(Option<Duration>),
    /// The time budget ran out with steps still to do: continue soon.
    Continue,
    /// The run is being deleted while executing; nothing more is written.
    Deleting,
}

/// A run's working memory between drives: the step runner's cached plan and the executor.
#[derive(Default)]
pub struct RunWork {
    /// Caches the backup, scope and last assessment of the run's plan.
    pub runner: StepRunner,
    /// The executor of the approved plan, once built.
    pub executor: Option<Executor>,
}

/// One drive of one run: the wizard until it rests, the budget runs out, or the run is deleted.
pub struct Driver<'a, C: ClusterObjects, T: TenantPort, S: RunStore> {
    /// The RestoreRun's name (for the approval hint).
    pub run_name: &'a str,
    /// Where its source is resolved.
    pub source: SourceContext<'a, C>,
    /// The tenant (Graph).
    pub port: &'a T,
    /// The port drift re-checks read through (a snapshot shared by a tenant's waiting runs);
    /// `None`: `port`. The approval's verification and every write always use `port`.
    pub drift_port: Option<&'a T>,
    /// The tenant's identity as the engine needs it.
    pub target: RestoreTarget,
    /// Status, report and progress.
    pub store: &'a mut S,
    /// The run's working memory.
    pub work: &'a mut RunWork,
    /// Longest time to keep running steps (at least one step always runs); `None`: until rest.
    pub budget: Option<Duration>,
    /// The time the wizard decides at.
    pub clock: &'a Clock,
}

impl<C: ClusterObjects, T: TenantPort, S: RunStore> Driver<'_, C, T, S> {
    /// Runs the wizard from `status` on `inputs`; returns the status as last written and how it
    /// rests. Every write step is preceded by a fresh read of the run and its tenant.
    pub async fn drive(
        &mut self,
        mut inputs: RunInputs,
        mut status: RestoreRunStatus,
        mut on_event: impl FnMut(RunEvent<'_>),
    ) -> Result<(RestoreRunStatus, Rest), DriverError> {
        let started = Instant::now();
        let mut fact: Option<Fact> = None;
        let mut stepped = false;
        let rest_expired = self.store.rests_expired_previews();
        if rest_expired && expired_preview_rests(&status, &inputs) {
            // Nobody approved it: regenerating it would read the tenant for no reader.
            return Ok((status, Rest::Settled(None)));
        }
        // What the store holds: status is written when the run rests, when it was just picked up,
        // at most every STATUS_EVERY while previewing, and during execution once per item written
        // (steps inside one item are not written).
        let mut written = status.clone();
        let mut written_at = Instant::now();
        for _ in 0..MAX_DECISIONS {
            let decision = advance(WizardInput {
                awaited_appeared: inputs.awaited_appeared && fact.is_none(),
                run_name: self.run_name,
                spec: &inputs.spec,
                generation: inputs.generation,
                status: &status,
                tenant: &inputs.tenant,
                fact: fact.take(),
                now: self.clock.now(),
            });
            let mut decided = decision.status;
            if status.phase != Some(Phase::Executing) && decided.phase == Some(Phase::Executing) {
                // Built before the acceptance is written, so status and its Event give the real step count.
                self.prepare_execution(&decided, &mut on_event).await;
            }
            self.note_progress(&mut decided);
            let before = status.phase;
            status = decided;
            if status.phase != before
                && let Some(phase) = status.phase
            {
                let ready = restore_core::conditions::find(&status.conditions, restore_core::conditions::types::READY);
                on_event(RunEvent::Phase { phase, message: ready.map_or("", |c| c.message.as_str()) });
            }
            let Some(step) = decision.step else {
                self.store.write_status(&written, &status).await?;
                return Ok((status, Rest::Settled(decision.requeue_after)));
            };
            let drift = step == Step::Preview && is_drift_recheck(&status);
            let rests = (drift && !self.store.drift_recheck_due().await)
                || (rest_expired && step == Step::Preview && expired_preview_rests(&status, &inputs));
            if rests || (stepped && self.budget.is_some_and(|b| started.elapsed() >= b)) {
                self.store.write_status(&written, &status).await?;
                return Ok((status, if rests { Rest::Settled(decision.requeue_after) } else { Rest::Continue }));
            }
            // A new run or a new generation: show at once that it was picked up.
            let picked_up = written.phase.is_none_or(|p| p == Phase::Pending)
                || written.observed_generation != Some(inputs.generation);
            let due = if step == Step::Execute {
                worth_writing(&written, &status)
            } else {
                picked_up || written_at.elapsed() >= STATUS_EVERY
            };
            if due {
                self.store.write_status(&written, &status).await?;
                written = status.clone();
                written_at = Instant::now();
            }
            stepped = true;
            let plan = plan_inputs_digest(&inputs.spec);
            let outcome = match step {
                Step::Execute => match self.store.before_write(&inputs).await? {
                    WriteClearance::Go => StepOutcome::Execution(self.execute_one(&status, &mut on_event).await),
                    WriteClearance::Changed(fresh) => {
                        // Decide again on what the cluster says now; the write waits for that.
                        inputs = *fresh;
                        continue;
                    }
                    WriteClearance::TenantBusy(holder) => StepOutcome::Execution(Err(StepError::busy(format!(
                        "another run ({holder}) is writing to this Entra tenant; this run waits its turn"
                    )))),
                    WriteClearance::Deleting => {
                        self.store.write_status(&written, &status).await?;
                        return Ok((status, Rest::Deleting));
                    }
                },
                Step::Preview => {
                    let port = if drift && inputs.spec.confirmation.is_none() {
                        self.drift_port.unwrap_or(self.port)
                    } else {
                        self.port
                    };
                    self.preview(&inputs.spec, port).await
                }
                _ => self.run_step(step, &inputs.spec).await,
            };
            if !matches!(outcome, StepOutcome::Execution(_)) {
                // A new plan or preview replaces what an earlier executor was built for.
                self.work.executor = None;
            }
            fact = Some(Fact { plan, outcome });
        }
        Err(DriverError::NoProgress(MAX_DECISIONS))
    }

    /// Builds the executor of a just-accepted plan (reads only); a failure is left to the first
    /// execution step, which reports it.
    async fn prepare_execution(&mut self, status: &RestoreRunStatus, on_event: &mut impl FnMut(RunEvent<'_>)) {
        if self.work.executor.is_none()
            && let Ok(executor) = self.build_executor(status, on_event).await
        {
            self.work.executor = Some(executor);
        }
    }

    /// Sets `execution.progress` (items written / items the plan writes) and, before the first
    /// step, the plan's step count from the executor.
    fn note_progress(&self, status: &mut RestoreRunStatus) {
        let approved = status.confirmation.as_ref().map(|c| c.digest.as_str());
        let Some(executor) =
            self.work.executor.as_ref().filter(|e| Some(e.progress().preview_digest.as_str()) == approved)
        else {
            return;
        };
        let Some(execution) = status.execution.as_mut() else { return };
        execution.progress = Some(written_items(executor));
        if execution.total_steps == 0 {
            let facts = executor.facts();
            execution.total_steps = facts.total_steps;
            let message =
                format!("writing to the tenant: {}/{} step(s) done", facts.completed_steps, facts.total_steps);
            let reason = restore_core::conditions::reasons::EXECUTING;
            status.conditions.iter_mut().filter(|c| c.reason == reason).for_each(|c| c.message = message.clone());
        }
    }

    async fn run_step(&mut self, step: Step, spec: &RestoreRunSpec) -> StepOutcome {
        self.work.runner.run_step(step, spec, &self.source, self.port, &self.target).await.outcome
    }

    /// The preview step through `port`, with its report kept in the store before the preview is
    /// recorded.
    async fn preview(&mut self, spec: &RestoreRunSpec, port: &T) -> StepOutcome {
        let mut outcome =
            self.work.runner.run_step(Step::Preview, spec, &self.source, port, &self.target).await.outcome;
        if let StepOutcome::Preview(Ok(facts)) = &mut outcome {
            let Some(report) = self.work.runner.last_report() else {
                return StepOutcome::Preview(Err(StepError::transient("no report after a preview")));
            };
            match self.store.save_report(report, &facts.digest).await {
                Ok(name) => facts.report = Some(name),
                Err(e) => return StepOutcome::Preview(Err(StepError::transient(e.to_string()))),
            }
        }
        outcome
    }

    /// One write step of the approved plan, then its progress record.
    async fn execute_one(
        &mut self,
        status: &RestoreRunStatus,
        on_event: &mut impl FnMut(RunEvent<'_>),
    ) -> Result<ExecutionFacts, StepError> {
        let Some(confirmation) = status.confirmation.as_ref() else {
            return Err(StepError::permanent("no accepted confirmation"));
        };
        if self.work.executor.as_ref().is_none_or(|e| e.progress().preview_digest != confirmation.digest) {
            let executor = self.build_executor(status, on_event).await?;
            self.work.executor = Some(executor);
        }
        let Some(executor) = self.work.executor.as_mut() else {
            return Err(StepError::transient("the executor could not be built"));
        };
        let result = executor.next_step(self.port).await;
        if let Err(e) = self.store.save_progress(executor.progress()).await {
            // The write reached the tenant but its record did not: the next attempt re-checks it.
            tracing::warn!(error = %e, "progress record not persisted");
            self.work.executor = None;
            return Err(StepError::transient(format!("persisting progress: {e}")));
        }
        match result {
            Ok(done) => {
                if let Some(done) = &done {
                    on_event(RunEvent::Executed(done));
                }
                Ok(executor.facts())
            }
            Err(e) => {
                let error: StepError = e.into();
                if !error.permanent {
                    self.work.executor = None;
                }
                Err(error)
            }
        }
    }

    /// Rebuilds the executor of the approved plan: the plan inputs frozen at approval, the stored
    /// report checked against the approved digest, and as much of the stored progress record as
    /// status vouches for.
    async fn build_executor(
        &mut self,
        status: &RestoreRunStatus,
        on_event: &mut impl FnMut(RunEvent<'_>),
    ) -> Result<Executor, StepError> {
        let Some(confirmation) = status.confirmation.as_ref() else {
            return Err(StepError::permanent("no accepted confirmation"));
        };
        let approved = confirmation.digest.as_str();
        let Some(plan) = confirmation.plan.as_ref() else {
            return Err(StepError::permanent("the accepted confirmation records no plan; create a new RestoreRun"));
        };
        let store_error = |e: DriverError| StepError::transient(e.to_string());
        let report = self.store.load_report().await.map_err(store_error)?.ok_or_else(|| {
            StepError::permanent("the preview report is missing; create a new RestoreRun".to_string())
        })?;
        // The report is what gets executed: it must be exactly the approved preview.
        if report.digest() != approved {
            return Err(StepError::permanent(format!(
                "the stored preview report does not match the approved digest {approved}; it was changed after the \
                 preview, so nothing more is written"
            )));
        }
        let progress = self.vouched_progress(status, approved, on_event).await?;
        let frozen = approved_spec(plan);
        let executor = self.work.runner.executor(&frozen, &self.source, &report, progress).await?;
        let loaded = self.work.runner.source_digest().unwrap_or_default();
        if loaded != plan.source_digest {
            return Err(StepError::permanent(format!(
                "the approved backup {} now gives {loaded}; nothing more is written. Create a new RestoreRun",
                plan.source_digest
            )));
        }
        Ok(executor)
    }

    /// The stored progress record as far as status vouches for it; a record this controller did not
    /// write is set aside (its steps run again, which rule 5 makes safe) and never trusted.
    async fn vouched_progress(
        &mut self,
        status: &RestoreRunStatus,
        approved: &str,
        on_event: &mut impl FnMut(RunEvent<'_>),
    ) -> Result<ProgressRecord, StepError> {
        let execution = status.execution.as_ref();
        let completed = execution.map_or(0, |e| e.completed_steps as usize);
        let vouched_digest = execution.and_then(|e| e.progress_digest.as_deref());
        let stored = self.store.load_progress().await.map_err(|e| StepError::transient(e.to_string()))?;
        let Some(stored) = stored.filter(|r| r.preview_digest == approved) else {
            return Ok(ProgressRecord::new(approved));
        };
        match stored.vouched_prefix(completed, vouched_digest) {
            Some(record) => Ok(record),
            None => {
                on_event(RunEvent::ProgressRejected);
                tracing::warn!("the stored progress record does not extend what status vouches for; it is set aside");
                Ok(ProgressRecord::new(approved))
            }
        }
    }
}

/// Whether the wizard's preview step is a drift re-check: a run waiting for confirmation reading
/// its tenant again (not the re-read that verifies an approval).
fn is_drift_recheck(status: &RestoreRunStatus) -> bool {
    use restore_core::conditions::{find, reasons, types};
    status.phase == Some(Phase::AwaitingConfirmation)
        && find(&status.conditions, types::CONFIRMED).is_none_or(|c| c.reason != reasons::VERIFYING_PREVIEW)
}

/// Whether the run's preview expired with no approval in its spec and the spec has not changed
/// since: the preview rests (is not regenerated, reads nothing) until the spec changes.
fn expired_preview_rests(status: &RestoreRunStatus, inputs: &RunInputs) -> bool {
    use restore_core::conditions::{find, reasons, types};
    status.phase == Some(Phase::Previewing)
        && inputs.spec.confirmation.is_none()
        && find(&status.conditions, types::PREVIEW_READY).is_some_and(|c| c.reason == reasons::PREVIEW_EXPIRED)
        && status.observed_generation == Some(inputs.generation)
}

/// The spec the approved plan was made from: the current spec's approval fields with the plan
/// inputs frozen at approval.
pub fn approved_spec(plan: &restore_core::api::ApprovedPlan) -> RestoreRunSpec {
    RestoreRunSpec {
        tenant_ref: restore_core::api::TenantRef { name: String::new() },
        source: plan.source.clone(),
        scope: plan.scope.clone(),
        existing_objects: plan.existing_objects,
        dry_run: false,
        preview_ttl: restore_core::api::DEFAULT_PREVIEW_TTL.into(),
        confirmation: None,
    }
}

/// `written/total`: items with at least one completed step over the items the plan writes.
fn written_items(executor: &Executor) -> String {
    let plan = executor.plan();
    let writing: std::collections::BTreeSet<&str> =
        plan.order().iter().filter(|k| plan.item(k).is_some_and(|i| i.action.writes())).map(String::as_str).collect();
    let written: std::collections::BTreeSet<&str> =
        executor.progress().steps.iter().map(|s| s.item.as_str()).filter(|k| writing.contains(k)).collect();
    format!("{}/{}", written.len(), writing.len())
}

/// Whether `new` is worth a status write after `written`: always, except during execution when
/// only the step counter, the progress digest, the step count in messages or the count of items
/// verified as planned moved. Writes follow `progress` (an item written), drift and failures, and
/// the phase: one write per item at most, never a stream of identical watch events. Status lagging
/// the progress record is safe: steps it does not vouch for run again after a restart (rule 5).
fn worth_writing(written: &RestoreRunStatus, new: &RestoreRunStatus) -> bool {
    let executing = |s: &RestoreRunStatus| s.phase == Some(Phase::Executing) && s.execution.is_some();
    if !(executing(written) && executing(new)) {
        return new != written;
    }
    let coarse = |s: &RestoreRunStatus| {
        let mut s = s.clone();
        if let Some(e) = s.execution.as_mut() {
            e.completed_steps = 0;
            e.progress_digest = None;
            // Items verified as planned show in the final write; drift and failures at once.
            let c = &mut e.counts;
            (c.created, c.updated, c.unchanged, c.skipped) = (0, 0, 0, 0);
        }
        for c in &mut s.conditions {
            c.message.clear();
            c.last_transition_time.clear();
        }
        s
    };
    coarse(written) != coarse(new)
}
