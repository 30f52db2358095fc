//! A scripted driver for the wizard: a RestoreRun's spec and status, a tenant, and a fake engine
//! that answers each requested step, so tests read as a story of edits and reconciles.

#![allow(dead_code)]

use jiff::Timestamp;
use restore_core::api::*;
use restore_core::wizard::*;

pub const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const LABEL: &str = "Contoso Production";
pub const TENANT_ID: &str = "11111111-2222-3333-4444-555555555555";

pub fn spec() -> RestoreRunSpec {
    serde_json::from_value(serde_json::json!({
        "tenantRef": {"name": "contoso"},
        "source": {"configMapRef": {"name": "backup-2026-11-01"}},
    }))
    .unwrap()
}

pub fn tenant(environment: Environment) -> TenantObservation {
    TenantObservation::Present(TenantView {
        id: TENANT_ID.into(),
        label: LABEL.into(),
        environment,
        ready: true,
        not_ready_message: None,
    })
}

pub fn confirmation(digest: &str) -> Confirmation {
    Confirmation {
        reviewed_impact: true,
        tenant: LABEL.into(),
        preview_digest: digest.into(),
        approved_by: "alice@contoso.com".into(),
    }
}

/// What the fake engine answers for each step.
#[derive(Clone, Debug)]
pub struct EngineScript {
    pub blockers: u32,
    pub digest: String,
    pub source_error: Option<StepError>,
    pub execution_failures: u32,
}

impl Default for EngineScript {
    fn default() -> Self {
        EngineScript { blockers: 0, digest: DIGEST_A.into(), source_error: None, execution_failures: 0 }
    }
}

pub struct Run {
    pub spec: RestoreRunSpec,
    pub generation: i64,
    pub status: RestoreRunStatus,
    pub tenant: TenantObservation,
    pub now: Timestamp,
    pub engine: EngineScript,
    /// Every step the wizard asked for, in order.
    pub steps: Vec<Step>,
    /// Execute steps requested while the gate did not hold (must stay empty).
    pub last: Option<Decision>,
}

impl Run {
    pub fn new(spec: RestoreRunSpec) -> Self {
        Run {
            spec,
            generation: 1,
            status: RestoreRunStatus::default(),
            tenant: tenant(Environment::Production),
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            engine: EngineScript::default(),
            steps: Vec::new(),
            last: None,
        }
    }

    pub fn edit(&mut self, change: impl FnOnce(&mut RestoreRunSpec)) {
        change(&mut self.spec);
        self.generation += 1;
    }

    pub fn advance_time(&mut self, secs: i64) {
        self.now = self.now.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
    }

    /// One reconcile with an optional fact.
    pub fn reconcile_with(&mut self, fact: Option<Fact>) -> Decision {
        let decision = advance(WizardInput {
            run_name: "restore-1",
            spec: &self.spec,
            generation: self.generation,
            status: &self.status,
            tenant: &self.tenant,
            fact,
            now: self.now,
        });
        self.status = decision.status.clone();
        if let Some(step) = decision.step {
            self.steps.push(step);
        }
        self.last = Some(decision.clone());
        decision
    }

    /// What the fake engine's checks find.
    pub fn checks_status(&self) -> ChecksStatus {
        ChecksStatus {
            blockers: self.engine.blockers,
            warnings: 1,
            infos: 0,
            checked_at: None,
            findings: (0..self.engine.blockers)
                .map(|i| FindingSummary {
                    code: "MissingGroup".into(),
                    severity: Severity::Blocker,
                    item: Some(format!("deviceConfiguration/{i}")),
                    message: format!("group {i} does not exist in the target tenant"),
                })
                .collect(),
        }
    }

    /// What the fake engine reports for a step.
    pub fn engine_fact(&self, step: Step) -> Fact {
        let plan = plan_inputs_digest(&self.spec);
        let outcome = match step {
            Step::ResolveSource => StepOutcome::Source(match &self.engine.source_error {
                Some(e) => Err(e.clone()),
                None => Ok(SourceStatus {
                    digest: DIGEST_B.into(),
                    captured_at: Some("2026-11-01T00:00:00Z".into()),
                    tenant_id: Some(TENANT_ID.into()),
                    item_count: 12,
                }),
            }),
            Step::Scope => {
                StepOutcome::Scope(Ok(ScopeStatus { total: 12, policies: 9, foundations: 3, ..Default::default() }))
            }
            Step::Check => StepOutcome::Checks(Ok(self.checks_status())),
            Step::Preview => StepOutcome::Preview(Ok(PreviewFacts {
                digest: self.engine.digest.clone(),
                counts: ActionCounts { create: 2, update: 3, unchanged: 7, skip: 0, preview_only: 0 },
                report: Some("restore-1-report".into()),
                checks: Some(self.checks_status()),
            })),
            Step::Execute => {
                let total = 12;
                let mut counts = OutcomeCounts::default();
                for _ in 0..(total - self.engine.execution_failures) {
                    counts.record(ItemOutcome::Updated);
                }
                for _ in 0..self.engine.execution_failures {
                    counts.record(ItemOutcome::Failed);
                }
                StepOutcome::Execution(Ok(ExecutionFacts {
                    completed_steps: total,
                    total_steps: total,
                    counts,
                    results: vec![],
                    finished: true,
                    progress_digest: "sha256:progress".into(),
                }))
            }
        };
        Fact { plan, outcome }
    }

    /// Reconciles, and answers each requested step with the engine's fact, until the wizard rests.
    pub fn settle(&mut self) -> Decision {
        let mut decision = self.reconcile_with(None);
        for _ in 0..20 {
            let Some(step) = decision.step else { return decision };
            let fact = self.engine_fact(step);
            decision = self.reconcile_with(Some(fact));
        }
        panic!("the wizard did not settle: {:?}", self.status.phase);
    }

    pub fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    pub fn condition(&self, type_: &str) -> Option<&restore_core::conditions::Condition> {
        restore_core::conditions::find(&self.status.conditions, type_)
    }

    pub fn executed(&self) -> bool {
        self.steps.contains(&Step::Execute)
    }

    pub fn approve(&mut self) {
        let digest = self.status.preview.as_ref().unwrap().digest.clone();
        self.edit(|s| {
            s.dry_run = false;
            s.confirmation = Some(confirmation(&digest));
        });
    }
}
