//! A step that failed because Graph throttled or was unavailable comes back when Graph's
//! `Retry-After` said (bounded), not after a retry delay grown by the failures before it.

mod wizard_support;

use std::time::Duration;

use restore_core::engine::EngineError;
use restore_core::engine::execute::ExecError;
use restore_core::tenant::{TenantError, TenantErrorKind};
use restore_core::wizard::{
    Fact, MAX_RETRY, Step, StepError, StepOutcome, plan_inputs_digest, retry_delay, wait_delay,
};
use wizard_support::*;

fn approved_and_verifying() -> Run {
    let mut run = Run::new(spec());
    run.settle();
    run.approve();
    assert_eq!(run.reconcile_with(None).step, Some(Step::Preview), "the approval is verified first");
    run
}

fn failed_preview(run: &Run, retry_after: Option<Duration>) -> Fact {
    let error = StepError::transient("Graph answered 429").with_retry_after(retry_after);
    Fact { plan: plan_inputs_digest(&run.spec), outcome: StepOutcome::Preview(Err(error)) }
}

#[test]
fn a_step_failed_with_retry_after_is_tried_again_after_that_wait_however_often_it_failed() {
    let mut run = approved_and_verifying();
    for failures in 1..=4 {
        let decision = run.reconcile_with(Some(failed_preview(&run, Some(Duration::from_secs(2)))));
        assert_eq!(decision.requeue_after, Some(Duration::from_secs(2)), "failure {failures}");
        assert_eq!(run.status.failed_attempts, Some(failures));
        run.advance_time(2);
        assert_eq!(run.reconcile_with(None).step, Some(Step::Preview), "tried again once the wait is over");
    }
    // Without a Retry-After the grown delay applies again.
    let decision = run.reconcile_with(Some(failed_preview(&run, None)));
    assert_eq!(decision.requeue_after, Some(retry_delay(5)));
}

#[test]
fn graphs_retry_after_is_bounded_below_by_a_second_and_above_by_the_longest_retry() {
    let mut run = approved_and_verifying();
    let decision = run.reconcile_with(Some(failed_preview(&run, Some(Duration::ZERO))));
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(1)));
    run.advance_time(1);
    run.reconcile_with(None);
    let decision = run.reconcile_with(Some(failed_preview(&run, Some(Duration::from_secs(86_400)))));
    assert_eq!(decision.requeue_after, Some(MAX_RETRY));
}

#[test]
fn the_retry_after_a_tenant_call_met_reaches_the_step_error_of_a_preview_and_of_an_execution() {
    let throttled =
        TenantError::new(TenantErrorKind::Throttled, "throttled").with_retry_after(Some(Duration::from_secs(3)));
    let from_preview: StepError = EngineError::Tenant(throttled.clone()).into();
    assert_eq!((from_preview.permanent, from_preview.retry_after), (false, Some(Duration::from_secs(3))));
    let from_execution: StepError = ExecError::Tenant { step: "s1".into(), source: throttled }.into();
    assert_eq!((from_execution.permanent, from_execution.retry_after), (false, Some(Duration::from_secs(3))));
    let plain: StepError = EngineError::Tenant(TenantError::new(TenantErrorKind::Unavailable, "down")).into();
    assert_eq!(plain.retry_after, None);
}

#[test]
fn a_source_or_checks_step_throttled_by_graph_comes_back_when_graph_said() {
    let throttled = || StepError::transient("Graph answered 429").with_retry_after(Some(Duration::from_secs(7)));
    let mut run = Run::new(spec());
    run.engine.source_error = Some(throttled());
    let decision = run.settle();
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(7)), "the source step waits what Graph said");

    let mut run = Run::new(spec());
    let mut decision = run.reconcile_with(None);
    while decision.step != Some(Step::Check) {
        let step = decision.step.expect("the wizard walks to the checks");
        decision = run.reconcile_with(Some(run.engine_fact(step)));
    }
    let failed = Fact { plan: plan_inputs_digest(&run.spec), outcome: StepOutcome::Checks(Err(throttled())) };
    let decision = run.reconcile_with(Some(failed));
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(7)), "the checks wait what Graph said");
}

#[test]
fn a_run_waiting_for_something_to_appear_looks_again_on_the_short_wait_not_the_retry_delay() {
    let mut run = Run::new(spec());
    run.engine.source_error = Some(StepError::missing("ConfigMap backup-2026-11-01 not found"));
    let decision = run.settle();
    assert_eq!(decision.requeue_after, Some(wait_delay(1)));
    assert!(wait_delay(1) < retry_delay(1));
}
