//! DESIGN §2 rules 10–11 and 14 as far as the wizard owns them: the findings of the trust-boundary
//! review (later blockers reach the gate, backoff, a frozen approved plan, a vouched progress
//! record, waiting for a missing source, finished runs observing edits), one test each.

mod wizard_support;

use restore_core::api::{Environment, Phase};
use restore_core::conditions::{ConditionStatus, reasons, types};
use restore_core::engine::execute::{ProgressRecord, StepRecord, StepStatus};
use restore_core::wizard::{
    MAX_WAIT_POLL, MIN_PREVIEW_TTL, SPEC_EDIT_IGNORED_NOTE, Step, StepError, StepOutcome, retry_delay, validate_spec,
    wait_delay,
};
use wizard_support::*;

fn approved_and_verifying() -> Run {
    let mut run = Run::new(spec());
    run.settle();
    run.approve();
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Preview), "the approval is verified by a fresh preview first");
    run
}

#[test]
fn finding_5_blockers_found_by_the_approval_re_read_reach_the_gate() {
    let mut run = approved_and_verifying();
    run.engine.blockers = 1; // the re-read finds an ambiguous group
    let decision = run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_ne!(decision.step, Some(Step::Execute));
    assert!(!run.executed());
    assert_eq!(run.phase(), Phase::Blocked);
    assert_eq!(run.status.checks.as_ref().unwrap().blockers, 1, "status shows the later preview's blockers");
    assert!(run.status.confirmation.is_none(), "the approval is not accepted");
    assert_eq!(run.condition(types::CHECKS_PASSED).unwrap().reason, reasons::BLOCKERS_FOUND);
}

#[test]
fn finding_5_a_drift_re_check_that_finds_blockers_blocks_the_waiting_run() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    assert_eq!(run.phase(), Phase::AwaitingConfirmation);
    run.engine.blockers = 2;
    run.advance_time(301);
    run.settle();
    assert_eq!(run.phase(), Phase::Blocked);
    run.edit(|s| s.confirmation = Some(confirmation(DIGEST_A)));
    run.settle();
    assert!(!run.executed(), "no write while the latest preview has blockers");
}

#[test]
fn finding_8_a_failing_approval_re_read_backs_off_instead_of_looping() {
    let mut run = approved_and_verifying();
    let failure = |run: &Run| restore_core::wizard::Fact {
        plan: restore_core::wizard::plan_inputs_digest(&run.spec),
        outcome: StepOutcome::Preview(Err(StepError::transient("Graph answered 503"))),
    };
    let mut delays = Vec::new();
    for _ in 0..4 {
        let decision = run.reconcile_with(Some(failure(&run)));
        assert_eq!(decision.step, None, "a failed re-read is not retried in the same reconcile");
        delays.push(decision.requeue_after.expect("a retry is scheduled"));
    }
    assert_eq!(delays[0], retry_delay(1));
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "the delay grows: {delays:?}");
    assert_eq!(run.status.failed_attempts, Some(4));
    // Reconciles woken before the retry time (the run's own status write, a restart) only wait.
    for _ in 0..3 {
        let woken = run.reconcile_with(None);
        assert_eq!(woken.step, None, "no step before the retry time");
        assert!(woken.requeue_after.is_some_and(|d| d <= delays[3]));
    }
    run.advance_time(delays[3].as_secs() as i64 + 1);
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Preview));
    run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_eq!(run.status.failed_attempts, None, "a step that succeeds resets the backoff");
    assert_eq!(run.status.next_attempt_at, None);
}

#[test]
fn finding_8_retry_delays_double_and_are_capped() {
    assert_eq!(retry_delay(1).as_secs(), 30);
    assert_eq!(retry_delay(2).as_secs(), 60);
    assert_eq!(retry_delay(3).as_secs(), 120);
    assert_eq!(retry_delay(50).as_secs(), 600);
    assert_eq!(wait_delay(1).as_secs(), 5, "a wait for a source or a busy tenant looks again soon");
    assert_eq!(wait_delay(3).as_secs(), 20);
    assert_eq!(wait_delay(50), MAX_WAIT_POLL);
}

#[test]
fn finding_8_a_preview_ttl_under_one_minute_is_refused() {
    let mut short = spec();
    short.preview_ttl = "0s".into();
    assert!(validate_spec(&short).unwrap_err().contains("minimum of 1m"));
    short.preview_ttl = "59s".into();
    assert!(validate_spec(&short).is_err());
    short.preview_ttl = "1m".into();
    assert!(validate_spec(&short).is_ok());
    assert_eq!(MIN_PREVIEW_TTL.as_secs(), 60);
    let mut run = Run::new(spec());
    run.edit(|s| s.preview_ttl = "0s".into());
    run.settle();
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(run.condition(types::SOURCE_RESOLVED).unwrap().reason, reasons::INVALID_SPEC);
}

#[test]
fn finding_4_the_approved_plan_inputs_are_frozen_with_the_confirmation() {
    let mut run = approved_and_verifying();
    let approved_source = run.spec.source.clone();
    let decision = run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_eq!(decision.step, Some(Step::Execute));
    let plan = run.status.confirmation.as_ref().unwrap().plan.clone().expect("the approved plan is recorded");
    assert_eq!(plan.source, approved_source);
    assert_eq!(plan.source_digest, DIGEST_B, "the verified source digest");
    assert_eq!(plan.scope, run.spec.scope);
    // A plan edit during execution is reported and changes nothing recorded.
    run.edit(|s| s.scope.assignments = restore_core::api::IncludeOrSkip::Skip);
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Execute), "the approved plan goes on");
    assert_eq!(run.status.confirmation.as_ref().unwrap().plan.as_ref(), Some(&plan));
    assert_eq!(run.condition(types::EXECUTED).unwrap().reason, reasons::SPEC_CHANGE_IGNORED);
}

#[test]
fn finding_11_a_source_that_does_not_exist_yet_waits_with_a_reason() {
    let mut run = Run::new(spec());
    run.engine.source_error = Some(StepError::missing("ConfigMap backup-2026-11-01 not found"));
    let decision = run.settle();
    assert_eq!(run.phase(), Phase::ResolvingSource, "not Failed");
    assert_eq!(run.condition(types::SOURCE_RESOLVED).unwrap().reason, reasons::SOURCE_NOT_FOUND);
    assert_eq!(run.condition(types::RECONCILING).unwrap().status, ConditionStatus::True);
    assert!(decision.requeue_after.is_some());
    run.engine.source_error = None; // the ConfigMap is applied
    run.advance_time(60);
    run.settle();
    assert_eq!(run.phase(), Phase::Previewed);
}

#[test]
fn finding_12_a_spec_edit_on_a_finished_run_is_observed_and_noted() {
    let mut run = Run::new(spec());
    run.settle();
    run.approve();
    run.settle();
    assert_eq!(run.phase(), Phase::Succeeded);
    run.edit(|s| s.scope.foundations = restore_core::api::IncludeOrSkip::Skip);
    run.settle();
    assert_eq!(run.phase(), Phase::Succeeded);
    assert!(run.status.conditions.iter().all(|c| c.observed_generation == Some(run.generation)));
    let ready = run.condition(types::READY).unwrap();
    assert_eq!(ready.status, ConditionStatus::True);
    assert!(ready.message.contains(SPEC_EDIT_IGNORED_NOTE), "{}", ready.message);
    run.edit(|s| s.dry_run = true);
    run.settle();
    let ready = run.condition(types::READY).unwrap();
    assert_eq!(ready.message.matches(SPEC_EDIT_IGNORED_NOTE).count(), 1, "noted once: {}", ready.message);
}

fn record(steps: usize) -> ProgressRecord {
    let mut record = ProgressRecord::new(DIGEST_A);
    for i in 0..steps {
        record.steps.push(StepRecord {
            step: format!("create/{i}"),
            item: format!("deviceConfiguration/{i}"),
            status: StepStatus::Written,
            created_id: Some(format!("id-{i}")),
            message: None,
        });
    }
    record
}

#[test]
fn finding_1_a_progress_record_is_trusted_only_as_far_as_status_vouches_for_it() {
    let written = record(3);
    let vouched = written.digest_of_first(3);
    assert_eq!(written.clone().vouched_prefix(3, Some(&vouched)), Some(written.clone()));
    // One more step written just before a crash, status not updated yet: the extra step is dropped
    // and runs again.
    let ahead = record(4);
    assert_eq!(ahead.vouched_prefix(3, Some(&vouched)), Some(written.clone()));
    // A forged record: a step marked done with another object's id.
    let mut forged = written.clone();
    forged.steps[1].created_id = Some("an-unrelated-production-policy".into());
    assert_eq!(forged.vouched_prefix(3, Some(&vouched)), None);
    // A record marking every step done while status vouches for none.
    assert_eq!(record(5).vouched_prefix(0, None), Some(ProgressRecord::new(DIGEST_A)));
    assert_eq!(record(2).vouched_prefix(3, Some(&vouched)), None, "a shorter record is not this one");
    assert_eq!(record(3).vouched_prefix(3, None), None, "steps status never vouched for");
}

#[test]
fn environment_is_still_frozen_for_an_approved_run() {
    let mut run = approved_and_verifying();
    run.tenant = tenant(Environment::Staging);
    let decision = run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_ne!(decision.step, Some(Step::Execute));
}

fn gate_ready_status() -> restore_core::api::RestoreRunStatus {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    run.status
}

#[test]
fn rule_1_the_gate_alone_refuses_blockers_and_an_unrecorded_environment() {
    use restore_core::wizard::{ExpiryCheck, gate};
    let mut approved = spec();
    approved.dry_run = false;
    approved.confirmation = Some(confirmation(DIGEST_A));
    let status = gate_ready_status();
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let tenant = tenant(Environment::Production);
    assert_eq!(gate(&approved, &status, &tenant, now, ExpiryCheck::Enforce), Ok(()));
    let mut blocked = status.clone();
    blocked.checks.as_mut().unwrap().blockers = 1;
    assert_eq!(
        gate(&approved, &blocked, &tenant, now, ExpiryCheck::Enforce).unwrap_err().reason,
        reasons::BLOCKERS_FOUND
    );
    let mut unrecorded = status.clone();
    unrecorded.environment = None;
    assert!(gate(&approved, &unrecorded, &tenant, now, ExpiryCheck::Enforce).is_err());
    let mut no_tenant = status;
    no_tenant.tenant = None;
    assert!(gate(&approved, &no_tenant, &tenant, now, ExpiryCheck::Enforce).is_err());
}

#[test]
fn rule_9_validate_spec_refuses_a_plain_http_url_and_a_malformed_sha256() {
    let with_url = |url: &str, sha: Option<&str>| {
        let mut s = spec();
        s.source.config_map_ref = None;
        s.source.url = Some(url.into());
        s.source.sha256 = sha.map(str::to_string);
        validate_spec(&s)
    };
    let good = "0123456789abcdef".repeat(4);
    assert!(with_url("https://backups.example/b.tar.gz", Some(&good)).is_ok());
    assert!(with_url("http://backups.example/b.tar.gz", Some(&good)).unwrap_err().contains("https://"));
    assert!(with_url("https://backups.example/b.tar.gz", None).unwrap_err().contains("requires spec.source.sha256"));
    for bad in [&good[..63], &good.to_uppercase(), &format!("{}g", &good[..63])] {
        assert!(
            with_url("https://backups.example/b.tar.gz", Some(bad)).unwrap_err().contains("64 lower-case hex"),
            "{bad}"
        );
    }
}

#[test]
fn finding_5_a_re_check_that_finds_the_same_checks_keeps_them_as_recorded() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    let recorded = run.status.checks.clone();
    run.advance_time(301);
    run.settle();
    assert_eq!(run.status.checks, recorded, "the same findings are not written again");
}

#[test]
fn finding_4_an_accepted_approval_records_when_execution_started() {
    let mut run = approved_and_verifying();
    run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    let execution = run.status.execution.clone().expect("execution status");
    assert_eq!(execution.started_at, run.status.confirmation.as_ref().unwrap().accepted_at);
    assert!(!execution.started_at.is_empty());
    run.settle();
    assert!(!run.status.execution.unwrap().started_at.is_empty(), "kept through the execution facts");
}

#[test]
fn an_execution_whose_items_all_drifted_is_partly_done_not_failed() {
    let mut run = approved_and_verifying();
    run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    let mut counts = restore_core::api::OutcomeCounts::default();
    for _ in 0..3 {
        counts.record(restore_core::api::ItemOutcome::Drifted);
    }
    let facts = restore_core::wizard::ExecutionFacts {
        completed_steps: 3,
        total_steps: 3,
        counts,
        results: vec![],
        finished: true,
        progress_digest: "sha256:progress".into(),
    };
    let plan = restore_core::wizard::plan_inputs_digest(&run.spec);
    run.reconcile_with(Some(restore_core::wizard::Fact { plan, outcome: StepOutcome::Execution(Ok(facts)) }));
    assert_eq!(run.phase(), Phase::PartiallySucceeded, "nothing failed: the tenant changed under the run");
}

#[test]
fn rule_9_an_invalid_spec_is_refused_before_any_step_runs() {
    let mut run = Run::new(spec());
    run.edit(|s| s.source.path = Some("../../etc".into()));
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None, "nothing is fetched for a spec that is refused");
    assert_eq!(run.phase(), Phase::Failed);
    assert_eq!(run.condition(types::SOURCE_RESOLVED).unwrap().reason, reasons::INVALID_SPEC);
}

#[test]
fn finding_4_an_edit_that_makes_the_spec_invalid_during_execution_does_not_stop_the_approved_plan() {
    let mut run = approved_and_verifying();
    let decision = run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_eq!(decision.step, Some(Step::Execute));
    run.edit(|s| s.source.path = Some("../../etc".into()));
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, Some(Step::Execute), "the approved plan goes on");
    assert_eq!(run.phase(), Phase::Executing);
    assert_eq!(run.condition(types::EXECUTED).unwrap().reason, reasons::SPEC_CHANGE_IGNORED);
}

#[test]
fn rule_1_a_refused_approval_quotes_what_was_typed_and_clamps_a_long_value() {
    let mut run = Run::new(spec());
    run.settle();
    let typed = "sha256:not-the-preview";
    run.edit(|s| {
        s.dry_run = false;
        s.confirmation = Some(confirmation(typed));
    });
    run.settle();
    let refused = run.condition(types::CONFIRMED).unwrap().message.clone();
    assert!(refused.contains(&format!("{typed:?}")), "a short value is quoted whole: {refused}");
    let long = format!("sha256:{}", "f".repeat(5000));
    run.edit(|s| s.confirmation = Some(confirmation(&long)));
    run.settle();
    let refused = run.condition(types::CONFIRMED).unwrap().message.clone();
    assert_eq!(run.condition(types::CONFIRMED).unwrap().reason, reasons::DIGEST_MISMATCH);
    assert!(refused.contains(&format!("{:?}", format!("{}…", &long[..80]))), "clamped to 80 characters: {refused}");
    assert!(refused.len() < 1_000, "the 5,000-character value is not repeated: {} bytes", refused.len());
}

#[test]
fn finding_4_the_approved_plans_execution_facts_count_after_a_plan_edit() {
    let mut run = approved_and_verifying();
    run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    let executed = run.engine_fact(Step::Execute); // the driver executes the approved plan
    run.edit(|s| s.scope.assignments = restore_core::api::IncludeOrSkip::Skip);
    run.reconcile_with(Some(executed));
    assert_eq!(run.phase(), Phase::Succeeded, "the approved plan's outcome is recorded");
}

/// The outcome of `step` failing with `error`.
fn failed(step: Step, error: StepError) -> StepOutcome {
    match step {
        Step::ResolveSource => StepOutcome::Source(Err(error)),
        Step::Scope => StepOutcome::Scope(Err(error)),
        Step::Check => StepOutcome::Checks(Err(error)),
        Step::Preview => StepOutcome::Preview(Err(error)),
        Step::Execute => StepOutcome::Execution(Err(error)),
    }
}

/// Answers every step the wizard asks for with the fake engine's fact until it asks for `step`,
/// which fails with `error`.
fn fail_at(mut run: Run, step: Step, error: StepError) -> Run {
    let mut decision = run.reconcile_with(None);
    for _ in 0..20 {
        let asked = decision.step.expect("the wizard asks for a step");
        if asked == step {
            let plan = restore_core::wizard::plan_inputs_digest(&run.spec);
            run.reconcile_with(Some(restore_core::wizard::Fact { plan, outcome: failed(step, error) }));
            return run;
        }
        decision = run.reconcile_with(Some(run.engine_fact(asked)));
    }
    panic!("the wizard never asked for {step:?}");
}

fn approved() -> Run {
    let mut run = Run::new(spec());
    run.settle();
    run.approve();
    run
}

/// A step, the run it starts from, its phase, its condition, and the reasons of a permanent and
/// of a transient error.
type StepCase = (Step, fn() -> Run, Phase, &'static str, &'static str, &'static str);

#[test]
fn rule_6_a_permanent_step_error_fails_the_run_and_a_transient_one_backs_off() {
    let cases: [StepCase; 5] = [
        (
            Step::ResolveSource,
            || Run::new(spec()),
            Phase::ResolvingSource,
            types::SOURCE_RESOLVED,
            reasons::SOURCE_INVALID,
            reasons::SOURCE_UNAVAILABLE,
        ),
        (
            Step::Scope,
            || Run::new(spec()),
            Phase::Scoping,
            types::SCOPED,
            reasons::SCOPE_INVALID,
            reasons::TENANT_UNAVAILABLE,
        ),
        (
            Step::Check,
            || Run::new(spec()),
            Phase::Checking,
            types::CHECKS_PASSED,
            reasons::FAILED,
            reasons::TENANT_UNAVAILABLE,
        ),
        (
            Step::Preview,
            || Run::new(spec()),
            Phase::Previewing,
            types::PREVIEW_READY,
            reasons::FAILED,
            reasons::TENANT_UNAVAILABLE,
        ),
        (
            Step::Execute,
            approved,
            Phase::Executing,
            types::EXECUTED,
            reasons::EXECUTION_FAILED,
            reasons::TENANT_UNAVAILABLE,
        ),
    ];
    for (step, start, phase, condition, permanent_reason, transient_reason) in cases {
        let run = fail_at(start(), step, StepError::permanent("the backup is not a backup"));
        assert_eq!(run.phase(), Phase::Failed, "{step:?}: a permanent error ends the run");
        let c = run.condition(condition).unwrap();
        assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::False, permanent_reason), "{step:?}");
        assert_eq!(run.status.failed_attempts, None, "{step:?}: no retry is counted");
        if step == Step::Execute {
            assert!(run.status.execution.as_ref().unwrap().finished_at.is_some(), "the cut execution has an end");
        }

        let run = fail_at(start(), step, StepError::transient("Graph answered 503"));
        assert_eq!(run.phase(), phase, "{step:?}: a transient error stays in its phase");
        let c = run.condition(condition).unwrap();
        assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::Unknown, transient_reason), "{step:?}");
        assert_eq!(run.status.failed_attempts, Some(1), "{step:?}");
        assert!(run.status.next_attempt_at.is_some(), "{step:?}: backs off");
    }
}

#[test]
fn finding_11_a_missing_source_says_it_waits_for_it_to_appear() {
    let run = fail_at(Run::new(spec()), Step::ResolveSource, StepError::missing("ConfigMap backup-1 not found"));
    let c = run.condition(types::SOURCE_RESOLVED).unwrap();
    assert_eq!(c.reason, reasons::SOURCE_NOT_FOUND);
    assert!(c.message.contains("ConfigMap backup-1 not found; waiting for it to appear"), "{}", c.message);
    let run = fail_at(Run::new(spec()), Step::ResolveSource, StepError::busy("tenant busy"));
    let c = run.condition(types::SOURCE_RESOLVED).unwrap();
    assert!(!c.message.contains("waiting for it to appear"), "only a missing source is awaited: {}", c.message);
}

#[test]
fn finding_8_a_failed_drift_re_check_keeps_the_preview_and_backs_off_whatever_the_error() {
    for error in [StepError::permanent("unreadable"), StepError::transient("503")] {
        let mut run = Run::new(spec());
        run.edit(|s| s.dry_run = false);
        run.settle();
        assert_eq!(run.phase(), Phase::AwaitingConfirmation);
        let preview = run.status.preview.clone();
        let wait = run.last.clone().unwrap().requeue_after.expect("re-checks drift later");
        run.advance_time(wait.as_secs() as i64 + 1);
        let run = fail_at(run, Step::Preview, error.clone());
        assert_eq!(run.phase(), Phase::AwaitingConfirmation, "{error:?}: the run is not failed by a re-check");
        assert_eq!(run.status.preview, preview, "{error:?}: the preview is kept");
        assert_eq!(run.status.failed_attempts, Some(1), "{error:?}");
    }
}

#[test]
fn finding_8_a_run_awaiting_confirmation_wakes_just_after_its_preview_expires() {
    let mut run = Run::new(spec());
    run.edit(|s| {
        s.dry_run = false;
        s.preview_ttl = "2m".into();
    });
    run.settle();
    assert_eq!(run.phase(), Phase::AwaitingConfirmation);
    let wake = run.last.clone().unwrap().requeue_after.expect("wakes for the expiry");
    assert_eq!(wake, std::time::Duration::from_secs(121), "one second after the 2m preview expires, not before");
}

#[test]
fn finding_8_a_drift_re_check_that_finds_no_change_keeps_the_preview_and_its_expiry() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    let preview = run.status.preview.clone().unwrap();
    run.advance_time(301);
    run.settle();
    assert_eq!(run.steps.iter().filter(|s| **s == Step::Preview).count(), 2, "re-checked once");
    assert_eq!(run.status.preview.as_ref(), Some(&preview), "same digest: same preview, same approval window");
    assert_eq!(run.condition(types::PREVIEW_READY).unwrap().reason, reasons::PREVIEW_READY);
}

#[test]
fn finding_8_an_expired_preview_with_the_same_digest_is_regenerated_with_a_new_window() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    let first = run.status.preview.clone().unwrap();
    run.advance_time(3601);
    run.settle();
    let second = run.status.preview.clone().unwrap();
    assert_eq!(second.digest, first.digest);
    assert!(second.expires_at > first.expires_at, "a new approval window");
    run.approve();
    run.settle();
    assert!(run.executed());
}

#[test]
fn rule_1_a_preview_with_a_new_digest_says_it_superseded_the_last_one() {
    let mut run = Run::new(spec());
    run.edit(|s| s.dry_run = false);
    run.settle();
    run.engine.digest = DIGEST_B.into();
    run.advance_time(301);
    run.settle();
    let c = run.condition(types::PREVIEW_READY).unwrap();
    assert_eq!(c.reason, reasons::PREVIEW_SUPERSEDED);
    assert!(c.message.contains(DIGEST_B), "{}", c.message);
}

#[test]
fn rule_1_execution_pauses_when_the_accepted_approval_no_longer_names_the_preview() {
    let mut run = approved_and_verifying();
    run.reconcile_with(Some(run.engine_fact(Step::Preview)));
    assert_eq!(run.phase(), Phase::Executing);
    // The spec's confirmation and the preview agree on a digest the accepted approval never named.
    if let Some(preview) = run.status.preview.as_mut() {
        preview.digest = DIGEST_B.into();
    }
    run.edit(|s| s.confirmation = Some(confirmation(DIGEST_B)));
    let decision = run.reconcile_with(None);
    assert_eq!(decision.step, None, "no write for an approval that was not accepted");
    assert_eq!(run.condition(types::EXECUTED).unwrap().reason, reasons::EXECUTION_PAUSED);
}
