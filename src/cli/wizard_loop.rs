//! A RestoreRun's wizard run in one process: the controller's driver over an in-memory run store —
//! what the `preview` and `demo` commands drive.

use std::time::{Duration, Instant};

use restore_backup::fetch::Fetcher;
use restore_backup::source::ClusterObjects;
use restore_core::api::{
    DEFAULT_PREVIEW_TTL, ExistingObjects, Phase, RestoreRunSpec, RestoreRunStatus, ScopeSpec, SourceSpec, TenantRef,
};
use restore_core::conditions::{find, types};
use restore_core::engine::RestoreTarget;
use restore_core::engine::execute::{ProgressRecord, StepResult};
use restore_core::engine::preview::PreviewReport;
use restore_core::tenant::TenantPort;
use restore_core::wizard::{TenantObservation, TenantView};

use crate::driver::{
    Clock, Driver, DriverError, RunEvent as DriverEvent, RunInputs, RunStore, RunWork, WriteClearance,
};
use crate::runner::SourceContext;

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
    /// The driver could not go on.
    #[error("{0}")]
    Driver(#[from] DriverError),
}

/// A run's status, report and progress in the memory of this process (trusted: nothing else
/// writes them).
#[derive(Default)]
pub struct MemoryStore {
    report: Option<PreviewReport>,
    progress: Option<ProgressRecord>,
}

impl RunStore for MemoryStore {
    async fn write_status(&mut self, _old: &RestoreRunStatus, _new: &RestoreRunStatus) -> Result<(), DriverError> {
        Ok(())
    }

    async fn save_report(&mut self, report: &PreviewReport, _digest: &str) -> Result<String, DriverError> {
        self.report = Some(report.clone());
        Ok("in-memory".into())
    }

    async fn load_report(&mut self) -> Result<Option<PreviewReport>, DriverError> {
        Ok(self.report.clone())
    }

    async fn save_progress(&mut self, record: &ProgressRecord) -> Result<(), DriverError> {
        self.progress = Some(record.clone());
        Ok(())
    }

    async fn load_progress(&mut self) -> Result<Option<ProgressRecord>, DriverError> {
        Ok(self.progress.clone())
    }

    async fn before_write(&mut self, _inputs: &RunInputs) -> Result<WriteClearance, DriverError> {
        Ok(WriteClearance::Go)
    }
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
    work: RunWork,
    store: MemoryStore,
    clock: Clock,
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
            work: RunWork::default(),
            store: MemoryStore::default(),
            clock: Clock::default(),
            cluster,
            fetcher,
            port,
            started: Instant::now(),
        }
    }

    /// Sets the large-change threshold of the checks (the runner's default otherwise).
    pub fn with_large_change_threshold(mut self, threshold: Option<u32>) -> Self {
        self.work.runner.large_change_threshold = threshold;
        self
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    /// The last preview report made for the current plan.
    pub fn report(&self) -> Option<&PreviewReport> {
        self.work.runner.last_report().or(self.store.report.as_ref())
    }

    /// The preview digest in status, if a preview is recorded.
    pub fn digest(&self) -> Option<&str> {
        self.status.preview.as_ref().map(|p| p.digest.as_str())
    }

    /// The execution progress record (what the controller persists after every step).
    pub fn progress(&self) -> Option<&ProgressRecord> {
        self.store.progress.as_ref()
    }

    /// The clock the wizard decides at (move it forward to let a preview expire or a drift
    /// re-check fall due).
    pub fn clock(&self) -> &Clock {
        &self.clock
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
        let inputs = RunInputs {
            spec: self.spec.clone(),
            generation: self.generation,
            tenant: self.tenant.clone(),
            awaited_appeared: false,
        };
        let namespace = self.namespace.clone();
        let started = self.started;
        let mut driver = Driver {
            run_name: &self.name,
            source: SourceContext { namespace: &namespace, cluster: self.cluster, fetcher: self.fetcher },
            port: self.port,
            drift_port: None,
            target: self.target.clone(),
            store: &mut self.store,
            work: &mut self.work,
            budget: None,
            clock: &self.clock,
        };
        let (status, _) = driver
            .drive(inputs, self.status.clone(), |event| match event {
                DriverEvent::Phase { phase, message } => {
                    on_event(RunEvent::Phase { phase, elapsed: started.elapsed(), message })
                }
                DriverEvent::Executed(result) => on_event(RunEvent::Executed(result)),
                DriverEvent::ProgressRejected => {}
            })
            .await?;
        self.status = status;
        match self.phase() {
            phase @ (Phase::Previewed | Phase::AwaitingConfirmation | Phase::Blocked) => Ok(phase),
            phase if phase.is_terminal() => Ok(phase),
            phase => Err(WizardLoopError::Stopped { phase, message: self.condition_message(types::READY).to_string() }),
        }
    }
}
