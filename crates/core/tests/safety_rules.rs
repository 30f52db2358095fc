//! DESIGN §2, the rules the wizard state machine owns (1, 3 and 6), one test per rule and
//! named after it, plus the walk through every phase the wizard can reach.

mod wizard_support;

use restore_core::api::{Environment, Phase};
use restore_core::conditions::{ConditionStatus, reasons, types};
use restore_core::wizard::{Step, StepError, TenantObservation, TenantView};
use wizard_support::*;

fn previewed_run() -> Run {
    let mut run = Run::new(spec());
    run.settle();
    assert_eq!(run.phase(), Phase::Previewed);
    run
}

// ---- Rule 1 -------------------------------------------------------------------------------------

#[test]
fn rule_1_no_write_unless_every_gate_condition_holds() {
    // The positive case: every condition holds, so execution starts.
    let mut run = previewed_run();
    run.approve();
    run.settle();
    assert!(run.executed());
    assert_eq!(run.phase(), Phase::Succeeded);

    // Each condition broken on its own keeps the tenant untouched.
    type Breaker = fn(&mut Run);
    let breakers: [(&str, Breaker); 7] = [
        ("dryRun stays true", |r| {
            let d = r.status.preview.as_ref().unwrap().digest.clone();
            r.edit(|s| s.confirmation = Some(confirmation(&d)));
        }),
        ("digest differs", |r| {
            r.edit(|s| {
                s.dry_run = false;
                s.confirmation = Some(confirmation(DIGEST_B));
            })
        }),
        ("tenant label differs", |r| {
            let d = r.status.preview.as_ref().unwrap().digest.clone();
            r.edit(|s| {
                s.dry_run = false;
                let mut c = confirmation(&d);
                c.tenant = "Contoso Staging".into();
                s.confirmation = Some(c);
            })
        }),
        ("impact not reviewed", |r| {
            let d = r.status.preview.as_ref().unwrap().digest.clone();
            r.edit(|s| {
                s.dry_run = false;
                let mut c = confirmation(&d);
                c.reviewed_impact = false;
                s.confirmation = Some(c);
            })
        }),
        ("no confirmation at all", |r| r.edit(|s| s.dry_run = false)),
        ("environment changed since the first reconcile", |r| {
            r.tenant = tenant(Environment::Staging);
            r.approve();
        }),
        ("approver missing", |r| {
            let d = r.status.preview.as_ref().unwrap().digest.clone();
            r.edit(|s| {
                s.dry_run = false;
                let mut c = confirmation(&d);
                c.approved_by = " ".into();
                s.confirmation = Some(c);
            })
        }),
    ];
    for (what, breaker) in breakers {
        let mut run = previewed_run();
        breaker(&mut run);
        run.settle();
        assert!(!run.executed(), "{what}: execution must not start");
        assert_ne!(run.phase(), Phase::Executing, "{what}");
        let confirmed = run.condition(types::CONFIRMED).unwrap();
        assert_ne!(confirmed.status, ConditionStatus::True, "{what}");
    }
}

#[test]
fn rule_1_blockers_mean_no_write_even_with_a_confirmation() {
    let mut run = Run::new(spec());
    run.engine.blockers = 2;
    run.edit(|s| {
        s.dry_run = false;
        s.confirmation = Some(confirmation(DIGEST_A));
    });
    run.settle();
    assert_eq!(run.phase(), Phase::Blocked);
    assert!(!run.executed());
    assert!(!run.steps.contains(&Step::Preview), "a blocked run is not previewed");
    let stalled = run.condition(types::STALLED).unwrap();
    assert_eq!(stalled.reason, reasons::BLOCKERS_FOUND);
    assert!(stalled.message.contains("group 0 does not exist"), "{}", stalled.message);
}

#[test]
fn rule_1_an_expired_preview_is_regenerated_before_it_can_be_approved() {
    let mut run = previewed_run();
    let first = run.status.preview.clone().unwrap();
    run.advance_time(3601);
    run.approve();
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Preview), "an expired preview is redone first");
    assert_eq!(run.phase(), Phase::Previewing);
    assert_eq!(run.condition(types::CONFIRMED).unwrap().reason, reasons::PREVIEW_EXPIRED);
    assert!(!run.executed());
    // The regenerated preview has the same digest (nothing changed), so the approval stands.
    run.settle();
    assert!(run.executed());
    let second = run.status.preview.clone().unwrap();
    assert_eq!(second.digest, first.digest);
    assert_ne!(second.expires_at, first.expires_at, "the new preview has a new expiry");
}

#[test]
fn rule_1_a_regenerated_preview_with_a_new_digest_supersedes_the_approval() {
    let mut run = previewed_run();
    run.advance_time(3601);
    run.approve(); // names DIGEST_A
    run.engine.digest = DIGEST_B.into(); // the tenant drifted
    run.settle();
    assert!(!run.executed());
    assert_eq!(run.phase(), Phase::AwaitingConfirmation);
    assert_eq!(run.status.preview.as_ref().unwrap().digest, DIGEST_B);
    let confirmed = run.condition(types::CONFIRMED).unwrap();
    assert_eq!(confirmed.reason, reasons::DIGEST_MISMATCH);
    assert!(confirmed.message.contains(DIGEST_B), "tells the new digest: {}", confirmed.message);
}

#[test]
fn rule_1_drift_found_while_awaiting_confirmation_supersedes_the_preview() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    assert_eq!(run.phase(), Phase::AwaitingConfirmation);
    let decision = run.last.clone().unwrap();
    assert!(decision.requeue_after.is_some(), "re-checks drift later");
    run.engine.digest = DIGEST_B.into();
    run.edit(|s| s.confirmation = Some(confirmation(DIGEST_A))); // approves the stale digest
    run.settle();
    assert!(!run.executed(), "a confirmation naming a superseded digest is not accepted");
    assert_eq!(run.status.preview.as_ref().unwrap().digest, DIGEST_B);
}

#[test]
fn rule_1_revoking_the_confirmation_pauses_execution() {
    let mut run = previewed_run();
    run.engine.execution_failures = 0;
    run.approve();
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Preview), "the approved preview is re-verified first");
    assert_eq!(run.condition(types::CONFIRMED).unwrap().reason, reasons::VERIFYING_PREVIEW);
    let decision = run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_eq!(decision.step, Some(Step::Execute));
    assert_eq!(run.phase(), Phase::Executing);
    run.edit(|s| s.dry_run = true);
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None, "no more writes once dryRun is back to true");
    assert_eq!(run.condition(types::EXECUTED).unwrap().reason, reasons::EXECUTION_PAUSED);
    assert_eq!(run.condition(types::STALLED).unwrap().status, ConditionStatus::True);
    run.edit(|s| s.dry_run = false);
    assert_eq!(run.reconcile_with(None).step, Some(Step::Execute), "resumes when the gate holds again");
}

// ---- Rule 3 -------------------------------------------------------------------------------------

#[test]
fn rule_3_changing_a_plan_input_resets_every_later_step() {
    let mut run = previewed_run();
    let plan_before = run.status.plan_inputs.clone();
    run.engine.digest = DIGEST_B.into();
    run.edit(|s| s.source.config_map_ref.as_mut().unwrap().name = "backup-2026-11-20".into());
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::ResolveSource), "a new source is resolved first");
    assert_eq!(run.condition(types::SOURCE_RESOLVED).unwrap().reason, reasons::IN_PROGRESS);
    assert_ne!(run.status.plan_inputs, plan_before);
    assert!(run.status.source.is_none() && run.status.scope.is_none() && run.status.checks.is_none());
    assert!(run.status.preview.is_none() && run.status.confirmation.is_none());
    for step in &types::STEPS[1..] {
        let c = run.condition(step).unwrap();
        assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::Unknown, reasons::PLAN_CHANGED), "{step}");
    }
    run.settle();
    assert_eq!(run.status.preview.as_ref().unwrap().digest, DIGEST_B, "new preview, new digest");
    for edit in [
        (|s: &mut restore_core::api::RestoreRunSpec| s.scope.mode = restore_core::api::ScopeMode::Selected)
            as fn(&mut _),
        |s| s.existing_objects = restore_core::api::ExistingObjects::Skip,
        |s| s.preview_ttl = "30m".into(),
        |s| s.source.path = Some("tenants/contoso".into()),
    ] {
        let mut run = previewed_run();
        run.edit(edit);
        assert_eq!(run.reconcile_with(None).step, Some(Step::ResolveSource));
    }
}

#[test]
fn rule_3_changing_only_confirmation_or_dry_run_never_resets() {
    let mut run = previewed_run();
    let before = run.status.clone();
    run.edit(|s| s.confirmation = Some(confirmation(DIGEST_B)));
    run.edit(|s| s.dry_run = false);
    run.edit(|s| s.dry_run = true);
    run.edit(|s| s.confirmation = None);
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None);
    assert_eq!(run.status.plan_inputs, before.plan_inputs);
    assert_eq!(run.status.preview, before.preview);
    assert_eq!(run.status.source, before.source);
    assert!(
        !run.steps.contains(&Step::ResolveSource)
            || run.steps.iter().filter(|s| **s == Step::ResolveSource).count() == 1
    );
}

// ---- Rule 6 -------------------------------------------------------------------------------------

#[test]
fn rule_6_terminal_phases_are_terminal() {
    for failures in [0, 5, 12] {
        let mut run = previewed_run();
        run.engine.execution_failures = failures;
        run.approve();
        run.settle();
        let terminal = run.phase();
        let expected = match failures {
            0 => Phase::Succeeded,
            12 => Phase::Failed,
            _ => Phase::PartiallySucceeded,
        };
        assert_eq!(terminal, expected);
        let steps_before = run.steps.len();
        let execution_before = run.status.execution.clone();
        // Plan edits, confirmations, dry-run flips, stray facts and time do nothing.
        run.edit(|s| s.source.config_map_ref.as_mut().unwrap().name = "other".into());
        run.settle();
        run.edit(|s| s.dry_run = true);
        run.approve();
        run.advance_time(86_400);
        run.settle();
        let stray = run.engine_fact(Step::Execute);
        run.reconcile_with(Some(stray));
        assert_eq!(run.phase(), terminal);
        assert_eq!(run.steps.len(), steps_before, "no step after a terminal phase");
        assert_eq!(run.status.execution, execution_before);
        assert_eq!(run.status.observed_generation, Some(run.generation), "kstatus still sees the edit observed");
    }
}

#[test]
fn rule_6_a_failed_source_is_terminal_too() {
    let mut run = Run::new(spec());
    run.engine.source_error = Some(StepError::permanent("archive digest sha256:00… does not match spec.source.sha256"));
    run.settle();
    assert_eq!(run.phase(), Phase::Failed);
    let stalled = run.condition(types::STALLED).unwrap();
    assert!(stalled.message.contains("does not match"));
    run.engine.source_error = None;
    run.edit(|s| s.source.config_map_ref.as_mut().unwrap().name = "fixed".into());
    run.settle();
    assert_eq!(run.phase(), Phase::Failed);
}

// ---- Every phase --------------------------------------------------------------------------------

#[test]
fn a_dry_run_stops_at_previewed_and_is_ready() {
    let run = previewed_run();
    let ready = run.condition(types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::True, reasons::PREVIEW_READY));
    assert!(run.condition(types::RECONCILING).is_none() && run.condition(types::STALLED).is_none());
    assert_eq!(run.status.observed_generation, Some(run.generation));
    assert_eq!(run.status.environment, Some(Environment::Production));
    assert_eq!(run.status.tenant.as_ref().unwrap().label, LABEL);
    assert_eq!(run.status.preview.as_ref().unwrap().changes, 5);
    assert_eq!(
        run.steps,
        [Step::ResolveSource, Step::Scope, Step::Check, Step::Preview],
        "each step ran once, in wizard order"
    );
}

#[test]
fn awaiting_confirmation_tells_the_exact_fields_and_values() {
    let mut run = previewed_run();
    run.edit(|s| s.dry_run = false);
    run.settle();
    assert_eq!(run.phase(), Phase::AwaitingConfirmation);
    let ready = run.condition(types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, reasons::AWAITING_CONFIRMATION));
    for needle in ["spec.confirmation", "reviewedImpact: true", LABEL, DIGEST_A, "approvedBy", "restore-1"] {
        assert!(ready.message.contains(needle), "message lacks {needle:?}: {}", ready.message);
    }
    assert!(run.condition(types::RECONCILING).is_none() && run.condition(types::STALLED).is_none());
}

#[test]
fn every_step_reports_progress_through_reconciling() {
    let mut run = Run::new(spec());
    let expected = [
        (Step::ResolveSource, Phase::ResolvingSource),
        (Step::Scope, Phase::Scoping),
        (Step::Check, Phase::Checking),
        (Step::Preview, Phase::Previewing),
    ];
    let mut decision = run.reconcile_with(None);
    for (step, phase) in expected {
        assert_eq!(decision.step, Some(step));
        assert_eq!(run.phase(), phase);
        let reconciling = run.condition(types::RECONCILING).unwrap();
        assert_eq!((reconciling.status, reconciling.reason.as_str()), (ConditionStatus::True, phase.as_str()));
        assert_eq!(run.condition(types::READY).unwrap().status, ConditionStatus::False);
        decision = run.reconcile_with(Some(run.engine_fact(step)));
    }
}

#[test]
fn a_transient_source_failure_retries_later_without_failing() {
    let mut run = Run::new(spec());
    run.engine.source_error = Some(StepError::transient("connection reset"));
    run.reconcile_with(None);
    let decision = run.reconcile_with(Some(run.engine_fact(Step::ResolveSource)));
    assert_eq!(decision.step, None);
    assert!(decision.requeue_after.is_some());
    assert_eq!(run.phase(), Phase::ResolvingSource);
    assert_eq!(run.condition(types::SOURCE_RESOLVED).unwrap().reason, reasons::SOURCE_UNAVAILABLE);
    run.engine.source_error = None;
    run.settle();
    assert_eq!(run.phase(), Phase::ResolvingSource, "not before the retry time");
    run.advance_time(decision.requeue_after.unwrap().as_secs() as i64);
    run.settle();
    assert_eq!(run.phase(), Phase::Previewed);
}

#[test]
fn a_missing_or_unready_tenant_waits_without_freezing_a_wrong_identity() {
    let mut run = Run::new(spec());
    run.tenant = TenantObservation::Missing;
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None);
    assert!(run.status.tenant.is_none());
    assert_eq!(run.condition(types::READY).unwrap().reason, reasons::TENANT_NOT_FOUND);
    run.tenant = TenantObservation::Present(TenantView {
        id: TENANT_ID.into(),
        label: LABEL.into(),
        environment: Environment::Staging,
        ready: false,
        not_ready_message: Some("AADSTS7000215: invalid client secret".into()),
    });
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None);
    assert_eq!(run.status.environment, Some(Environment::Staging), "frozen at the first sight");
    assert!(run.condition(types::READY).unwrap().message.contains("invalid client secret"));
}

#[test]
fn an_invalid_spec_fails_with_a_reason() {
    let mut run = Run::new(spec());
    run.edit(|s| s.source.path = Some("../../etc".into()));
    run.settle();
    assert_eq!(run.phase(), Phase::Failed);
    let c = run.condition(types::SOURCE_RESOLVED).unwrap();
    assert_eq!(c.reason, reasons::INVALID_SPEC);
    assert!(c.message.contains("'..'"), "{}", c.message);
}

#[test]
fn a_blocked_run_rechecks_later_and_continues_when_the_blocker_is_gone() {
    let mut run = Run::new(spec());
    run.engine.blockers = 1;
    run.settle();
    assert_eq!(run.phase(), Phase::Blocked);
    assert_eq!(run.reconcile_with(None).step, None, "not re-checked right away");
    run.advance_time(301);
    run.engine.blockers = 0; // the missing group was created
    run.settle();
    assert_eq!(run.phase(), Phase::Previewed);
}

#[test]
fn unchanged_reconciles_write_the_same_status() {
    let mut run = previewed_run();
    let before = run.status.clone();
    run.advance_time(120);
    run.reconcile_with(None);
    assert_eq!(run.status, before, "no field, not even a timestamp, changes when nothing happened");
}
