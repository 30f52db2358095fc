//! A RestoreRun's wizard run in one process: the same pure `advance` and the same `StepRunner` the
//! controller uses, with the status kept in memory — what the `preview` and `demo` commands drive.

use std::time::{Duration, Instant};

use restore_backup::fetch::Fetcher;
use restore_backup::source::ClusterObjects;
use restore_core::api::{
    DEFAULT_PREVIEW_TTL, ExistingObjects, Phase, RestoreRunSpec, RestoreRunStatus, ScopeSpec, SourceSpec, TenantRef,
};
use restore_core::conditions::{find, types};
use restore_core::engine::RestoreTarget;
use restore_core::engine::execute::{Executor, ProgressRecord, StepResult};
use restore_core::engine::preview::PreviewReport;
use restore_core::tenant::TenantPort;
use restore_core::wizard::{
    Fact, StepError, StepOutcome, TenantObservation, TenantView, WizardInput, advance, plan_inputs_digest,
};

use crate::runner::{SourceContext, StepRunner};

/// Most wizard decisions one [`LocalRun::drive`] makes before it gives up (a guard against a loop;
/// a 1,000-item execution needs a few thousand).
const MAX_DECISIONS: usize = 200_000;

/// Something a local run reports as it goes.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The phase changed; `message` is the `Ready` condition's message.
    Phase {
        /// The new phase.
        phase: Phase,
        /// Time since the run was created.
        elapsed: Duration,
        /// What the wizard says about it.
        message: &'a str,
    },
    /// One execution step completed.
    Executed(&'a StepResult),
}

/// Why a local run stopped before reaching a phase where it waits or ends.
#[derive(Debug, thiserror::Error)]
pub enum WizardLoopError {
    /// A step failed in a way the controller would retry later (network, throttling).
    #[error("the run stopped in phase {phase}: {message}")]
    Stopped {
        /// The phase it stopped in.
        phase: Phase,
        /// The wizard's message (the `Ready` condition's).
        message: String,
    },
    /// The wizard kept asking for steps.
    #[error("the wizard did not settle after {0} decisions")]
    NoProgress(usize),
}

/// The tenant a local run targets, as the controller would observe its IntuneTenant.
#[derive(Clone, Debug)]
pub struct LocalTenant {
    /// Entra tenant id.
    pub id: String,
    /// Hard-confirm label (`IntuneTenant.spec.displayName`).
    pub label: String,
    /// Its environment.
    pub environment: restore_core::api::Environment,
}

/// A dry-run spec restoring everything from `source` into the IntuneTenant `tenant_ref`, with the
/// defaults the CRD applies.
pub fn dry_run_spec(tenant_ref: &str, source: SourceSpec) -> RestoreRunSpec {
    RestoreRunSpec {
        tenant_ref: TenantRef { name: tenant_ref.into() },
        source,
        scope: ScopeSpec::default(),
        existing_objects: ExistingObjects::default(),
        dry_run: true,
        preview_ttl: DEFAULT_PREVIEW_TTL.into(),
        confirmation: None,
    }
}

/// One RestoreRun walked through the wizard locally. `C` serves the cluster objects its source may
/// reference; `T` is the tenant.
pub struct LocalRun<'a, C: ClusterObjects, T: TenantPort> {
    /// The RestoreRun's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The spec (edit it between [`LocalRun::drive`] calls as a human would edit the object).
    pub spec: RestoreRunSpec,
    /// The status as last decided.
    pub status: RestoreRunStatus,
    generation: i64,
    observed_spec: Option<RestoreRunSpec>,
    tenant: TenantObservation,
    target: RestoreTarget,
    runner: StepRunner,
    executor: Option<Executor>,
    cluster: &'a C,
    fetcher: &'a Fetcher,
    port: &'a T,
    started: Instant,
}

impl<'a, C: ClusterObjects, T: TenantPort> LocalRun<'a, C, T> {
    /// A new run (status empty, generation 1) against `tenant`, read and written through `port`.
    pub fn new(
        name: &str,
        namespace: &str,
        spec: RestoreRunSpec,
        tenant: LocalTenant,
        cluster: &'a C,
        fetcher: &'a Fetcher,
        port: &'a T,
    ) -> Self {
        let target = RestoreTarget { tenant_id: tenant.id.clone(), environment: tenant.environment };
        let view = TenantView {
            id: tenant.id,
            label: tenant.label,
            environment: tenant.environment,
            ready: true,
            not_ready_message: None,
        };
        LocalRun {
            name: name.to_string(),
            namespace: namespace.to_string(),
            spec,
            status: RestoreRunStatus::default(),
            generation: 0,
            observed_spec: None,
            tenant: TenantObservation::Present(view),
            target,
            runner: StepRunner::new(),
            executor: None,
            cluster,
            fetcher,
            port,
            started: Instant::now(),
        }
    }

    /// Sets the large-change threshold of the checks (the runner's default otherwise).
    pub fn with_large_change_threshold(mut self, threshold: Option<u32>) -> Self {
        self.runner.large_change_threshold = threshold;
        self
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    /// The last preview report made for the current plan.
    pub fn report(&self) -> Option<&PreviewReport> {
        self.runner.last_report()
    }

    /// The preview digest in status, if a preview is recorded.
    pub fn digest(&self) -> Option<&str> {
        self.status.preview.as_ref().map(|p| p.digest.as_str())
    }

    /// The execution progress record (what the controller persists after every step).
    pub fn progress(&self) -> Option<&ProgressRecord> {
        self.executor.as_ref().map(Executor::progress)
    }

    /// The message of a condition, or an empty string.
    pub fn condition_message(&self, type_: &str) -> &str {
        find(&self.status.conditions, type_).map_or("", |c| c.message.as_str())
    }

    /// Runs the wizard until it waits for a human (`Previewed`, `AwaitingConfirmation`), stops
    /// (`Blocked`) or ends (a terminal phase), reporting each phase change and execution step.
    pub async fn drive(&mut self, mut on_event: impl FnMut(RunEvent<'_>)) -> Result<Phase, WizardLoopError> {
        if self.observed_spec.as_ref() != Some(&self.spec) {
            // A spec edit bumps metadata.generation, as the API server does.
            self.generation += 1;
            self.observed_spec = Some(self.spec.clone());
        }
        let mut fact: Option<Fact> = None;
        for _ in 0..MAX_DECISIONS {
            let before = self.phase();
            let decision = advance(WizardInput {
                run_name: &self.name,
                spec: &self.spec,
                generation: self.generation,
                status: &self.status,
                tenant: &self.tenant,
                fact: fact.take(),
                now: jiff::Timestamp::now(),
            });
            self.status = decision.status;
            let phase = self.phase();
            if phase != before {
                let message = self.condition_message(types::READY).to_string();
                on_event(RunEvent::Phase { phase, elapsed: self.started.elapsed(), message: &message });
            }
            let Some(step) = decision.step else {
                return match phase {
                    Phase::Previewed | Phase::AwaitingConfirmation | Phase::Blocked => Ok(phase),
                    p if p.is_terminal() => Ok(phase),
                    _ => Err(WizardLoopError::Stopped {
                        phase,
                        message: self.condition_message(types::READY).to_string(),
                    }),
                };
            };
            let namespace = self.namespace.clone();
            let source = SourceContext { namespace: &namespace, cluster: self.cluster, fetcher: self.fetcher };
            let outcome = match step {
                restore_core::wizard::Step::Execute => {
                    StepOutcome::Execution(self.execute_one(&source, &mut on_event).await)
                }
                step => self.runner.run_step(step, &self.spec, &source, self.port, &self.target).await.outcome,
            };
            if !matches!(outcome, StepOutcome::Execution(_)) {
                // A new preview replaces the plan an earlier executor was built for.
                self.executor = None;
            }
            fact = Some(Fact { plan: plan_inputs_digest(&self.spec), outcome });
        }
        Err(WizardLoopError::NoProgress(MAX_DECISIONS))
    }

    /// Runs one execution step, building the executor for the approved preview first.
    async fn execute_one(
        &mut self,
        source: &SourceContext<'_, C>,
        on_event: &mut impl FnMut(RunEvent<'_>),
    ) -> Result<restore_core::wizard::ExecutionFacts, StepError> {
        if self.executor.is_none() {
            let report = self
                .runner
                .last_report()
                .cloned()
                .ok_or_else(|| StepError::permanent("no preview report for the approved preview"))?;
            let progress = ProgressRecord::new(report.digest());
            let executor = self.runner.executor(&self.spec, source, &report, progress).await?;
            self.executor = Some(executor);
        }
        let Some(executor) = self.executor.as_mut() else {
            return Err(StepError::permanent("the executor could not be built"));
        };
        if let Some(result) = executor.next_step(self.port).await? {
            on_event(RunEvent::Executed(&result));
        }
        Ok(executor.facts())
    }
}
