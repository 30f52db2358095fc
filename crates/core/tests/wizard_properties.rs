//! Property tests of the wizard over random sequences of spec edits, tenant changes, engine
//! facts and time: the rule-1 gate, the plan's stability under approval edits, terminal phases.

mod wizard_support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use restore_core::api::{Environment, Phase};
use restore_core::wizard::{Decision, Step, StepError, StepOutcome, TenantObservation, TenantView};
use wizard_support::*;

#[derive(Clone, Debug)]
enum DigestChoice {
    Current,
    A,
    B,
    Garbage,
}

#[derive(Clone, Debug)]
enum Op {
    Reconcile,
    /// The engine answers the last requested step; the flags vary its answer.
    Answer {
        blockers: bool,
        drifted: bool,
        transient: bool,
    },
    EditPlan(u8),
    Confirm {
        digest: DigestChoice,
        right_label: bool,
        reviewed: bool,
        approver: bool,
    },
    ClearConfirmation,
    DryRun(bool),
    Wait(i64),
    TenantEnvironment(Environment),
    TenantLabel(bool),
    TenantMissing,
    TenantBack,
    StaleFact,
}

fn env_strategy() -> impl Strategy<Value = Environment> {
    prop_oneof![Just(Environment::Production), Just(Environment::Staging), Just(Environment::Development)]
}

fn digest_strategy() -> impl Strategy<Value = DigestChoice> {
    prop_oneof![4 => Just(DigestChoice::Current), 1 => Just(DigestChoice::A), 1 => Just(DigestChoice::B), 1 => Just(DigestChoice::Garbage)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Reconcile),
        8 => (prop::bool::weighted(0.1), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(blockers, drifted, transient)| Op::Answer { blockers, drifted, transient }),
        1 => (0u8..3).prop_map(Op::EditPlan),
        4 => (digest_strategy(), prop::bool::weighted(0.8), prop::bool::weighted(0.8), prop::bool::weighted(0.9))
            .prop_map(|(digest, right_label, reviewed, approver)| Op::Confirm { digest, right_label, reviewed, approver }),
        1 => Just(Op::ClearConfirmation),
        3 => any::<bool>().prop_map(Op::DryRun),
        2 => prop_oneof![0i64..120, 3000i64..4000].prop_map(Op::Wait),
        1 => env_strategy().prop_map(Op::TenantEnvironment),
        1 => any::<bool>().prop_map(Op::TenantLabel),
        1 => Just(Op::TenantMissing),
        1 => Just(Op::TenantBack),
        1 => Just(Op::StaleFact),
    ]
}

struct World {
    run: Run,
    pending: Option<Step>,
    env: Environment,
    label_right: bool,
    present: bool,
}

impl World {
    fn new() -> Self {
        World { run: Run::new(spec()), pending: None, env: Environment::Production, label_right: true, present: true }
    }

    fn sync_tenant(&mut self) {
        self.run.tenant = if self.present {
            TenantObservation::Present(TenantView {
                id: TENANT_ID.into(),
                label: if self.label_right { LABEL.into() } else { "Contoso Renamed".into() },
                environment: self.env,
                ready: true,
                not_ready_message: None,
            })
        } else {
            TenantObservation::Missing
        };
    }

    fn note(&mut self, decision: &Decision) {
        self.pending = decision.step;
    }

    /// Applies one op; returns the decision of the reconcile it caused, if any.
    fn apply(&mut self, op: &Op) -> Option<Decision> {
        let fact = match op {
            Op::Reconcile => None,
            Op::Answer { blockers, drifted, transient } => {
                let step = self.pending?;
                self.run.engine.blockers = u32::from(*blockers);
                self.run.engine.digest = if *drifted { DIGEST_B.into() } else { DIGEST_A.into() };
                let mut fact = self.run.engine_fact(step);
                if *transient {
                    let err = StepError::transient("503 from Graph");
                    fact.outcome = match step {
                        Step::ResolveSource => StepOutcome::Source(Err(err)),
                        Step::Scope => StepOutcome::Scope(Err(err)),
                        Step::Check => StepOutcome::Checks(Err(err)),
                        Step::Preview => StepOutcome::Preview(Err(err)),
                        Step::Execute => StepOutcome::Execution(Err(err)),
                    };
                }
                Some(fact)
            }
            Op::EditPlan(n) => {
                let name = format!("backup-{n}");
                self.run.edit(|s| s.source.config_map_ref.as_mut().unwrap().name = name);
                None
            }
            Op::Confirm { digest, right_label, reviewed, approver } => {
                let current = self.run.status.preview.as_ref().map(|p| p.digest.clone()).unwrap_or_default();
                let digest = match digest {
                    DigestChoice::Current => current,
                    DigestChoice::A => DIGEST_A.into(),
                    DigestChoice::B => DIGEST_B.into(),
                    DigestChoice::Garbage => "sha256:nope".into(),
                };
                let mut c = confirmation(&digest);
                if !right_label {
                    c.tenant = "contoso production".into();
                }
                c.reviewed_impact = *reviewed;
                if !approver {
                    c.approved_by.clear();
                }
                self.run.edit(|s| s.confirmation = Some(c));
                None
            }
            Op::ClearConfirmation => {
                self.run.edit(|s| s.confirmation = None);
                None
            }
            Op::DryRun(v) => {
                let v = *v;
                self.run.edit(|s| s.dry_run = v);
                None
            }
            Op::Wait(secs) => {
                self.run.advance_time(*secs);
                None
            }
            Op::TenantEnvironment(env) => {
                self.env = *env;
                self.sync_tenant();
                None
            }
            Op::TenantLabel(right) => {
                self.label_right = *right;
                self.sync_tenant();
                None
            }
            Op::TenantMissing => {
                self.present = false;
                self.sync_tenant();
                None
            }
            Op::TenantBack => {
                self.present = true;
                self.sync_tenant();
                None
            }
            Op::StaleFact => {
                let step = self.pending?;
                let mut fact = self.run.engine_fact(step);
                fact.plan = "sha256:stale".into();
                Some(fact)
            }
        };
        let decision = self.run.reconcile_with(fact);
        self.note(&decision);
        Some(decision)
    }

    /// Every condition of DESIGN §2 rule 1, checked independently of the wizard's own gate.
    fn gate_holds(&self) -> Result<(), String> {
        let spec = &self.run.spec;
        let status = &self.run.status;
        let TenantObservation::Present(view) = &self.run.tenant else { return Err("tenant missing".into()) };
        if spec.dry_run {
            return Err("dryRun is true".into());
        }
        let checks = status.checks.as_ref().ok_or("no checks")?;
        if checks.blockers != 0 {
            return Err("blockers".into());
        }
        let preview = status.preview.as_ref().ok_or("no preview")?;
        let c = spec.confirmation.as_ref().ok_or("no confirmation")?;
        if c.preview_digest != preview.digest {
            return Err("digest differs".into());
        }
        if c.tenant != view.label {
            return Err("label differs".into());
        }
        if !c.reviewed_impact {
            return Err("impact not reviewed".into());
        }
        if c.approved_by.trim().is_empty() {
            return Err("no approver".into());
        }
        if status.environment != Some(view.environment) {
            return Err("environment changed".into());
        }
        let accepted = status.confirmation.as_ref().ok_or("confirmation not recorded")?;
        if accepted.digest != preview.digest {
            return Err("accepted digest differs from the preview".into());
        }
        if accepted.accepted_at >= preview.expires_at {
            return Err("accepted after the preview expired".into());
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    /// Rule 1 as a property: no sequence of edits, facts and time reaches a write unless every
    /// condition of the gate holds at that moment.
    #[test]
    fn no_sequence_reaches_executing_unless_every_rule_1_condition_holds(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut world = World::new();
        for op in &ops {
            let Some(decision) = world.apply(op) else { continue };
            if decision.step == Some(Step::Execute) {
                prop_assert!(world.gate_holds().is_ok(), "Execute requested after {op:?} but {:?}", world.gate_holds());
                prop_assert_eq!(world.run.phase(), Phase::Executing);
            }
            if world.run.phase() == Phase::Executing && world.run.status.execution.as_ref().is_some_and(|e| e.completed_steps == 0) {
                prop_assert!(world.run.status.confirmation.is_some(), "Executing without a recorded confirmation");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Rule 3 as a property: editing only `confirmation` or `dryRun` never changes the plan or
    /// the preview digest.
    #[test]
    fn an_edit_of_only_confirmation_or_dry_run_never_changes_the_plan_or_digest(
        ops in prop::collection::vec(op_strategy(), 0..30),
        edits in prop::collection::vec(prop_oneof![
            any::<bool>().prop_map(Op::DryRun),
            Just(Op::ClearConfirmation),
            (digest_strategy(), any::<bool>(), any::<bool>(), any::<bool>())
                .prop_map(|(digest, right_label, reviewed, approver)| Op::Confirm { digest, right_label, reviewed, approver }),
        ], 1..6),
    ) {
        let mut world = World::new();
        world.apply(&Op::Reconcile);
        for op in &ops {
            world.apply(op);
        }
        let plan = world.run.status.plan_inputs.clone();
        prop_assert!(plan.is_some());
        let digest = world.run.status.preview.as_ref().map(|p| p.digest.clone());
        let source = world.run.status.source.clone();
        for edit in &edits {
            world.apply(edit);
            prop_assert_eq!(&world.run.status.plan_inputs, &plan);
            prop_assert_eq!(world.run.status.preview.as_ref().map(|p| p.digest.clone()), digest.clone());
            prop_assert_eq!(&world.run.status.source, &source);
        }
    }

    /// Rule 6 as a property: once a run is terminal its phase never changes again.
    #[test]
    fn a_terminal_phase_never_changes(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut world = World::new();
        let mut terminal: Option<Phase> = None;
        for op in &ops {
            world.apply(op);
            let phase = world.run.phase();
            if let Some(t) = terminal {
                prop_assert_eq!(phase, t, "terminal phase changed after {:?}", op);
                prop_assert!(world.run.last.as_ref().is_none_or(|d| d.step.is_none()));
            } else if phase.is_terminal() {
                terminal = Some(phase);
            }
        }
    }
}

/// The generator reaches execution and terminal phases often enough for the properties to bite.
#[test]
fn the_random_walks_reach_execution() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(op_strategy(), 1..40);
    let (mut executing, mut terminal) = (0, 0);
    for _ in 0..2_000 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut world = World::new();
        let mut saw_execute = false;
        for op in &ops {
            if world.apply(op).is_some_and(|d| d.step == Some(Step::Execute)) {
                saw_execute = true;
            }
        }
        executing += usize::from(saw_execute);
        terminal += usize::from(world.run.phase().is_terminal());
    }
    assert!(executing >= 20, "only {executing} of 2000 walks reached Execute");
    assert!(terminal >= 10, "only {terminal} of 2000 walks reached a terminal phase");
}
