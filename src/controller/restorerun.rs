//! RestoreRun reconciliation: the pure wizard decides, the runner and executor do each step, and
//! every step's result is written to the status subresource (skipped when nothing changed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use restore_core::api::{Phase, RestoreRunStatus, Severity};
use restore_core::conditions::{find, types};
use restore_core::engine::RestoreTarget;
use restore_core::engine::execute::ProgressRecord;
use restore_core::engine::preview::PreviewReport;
use restore_core::wizard::{
    Decision, Fact, Step, StepError, StepOutcome, TenantObservation, TenantView, WizardInput, advance,
    plan_inputs_digest,
};
use serde_json::Value;

use super::ControllerError;
use super::cluster_objects::KubeObjects;
use super::context::{Context, RunState};
use super::store::{self, Content};
use super::tenant::graph_client;
use crate::kube::{IntuneTenant, RestoreRun};
use crate::runner::SourceContext;

/// An RFC 7386 merge patch turning `old` into `new` (removed keys become `null`).
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) => {
                        patch.insert(k.clone(), merge_patch(ov, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// What the controller knows about the referenced tenant.
fn observe_tenant(tenant: Option<&IntuneTenant>) -> TenantObservation {
    match tenant {
        None => TenantObservation::Missing,
        Some(t) => {
            let ready = t.status.as_ref().and_then(|s| find(&s.conditions, types::READY));
            TenantObservation::Present(TenantView {
                id: t.spec.tenant_id.clone(),
                label: t.spec.display_name.clone(),
                environment: t.spec.environment,
                ready: ready.is_some_and(|c| c.is_true()),
                not_ready_message: ready.filter(|c| !c.is_true()).map(|c| c.message.clone()),
            })
        }
    }
}

/// Reconciles one RestoreRun.
pub async fn reconcile(run: Arc<RestoreRun>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let uid = run.uid().unwrap_or_default();
    let generation = run.meta().generation.unwrap_or(0);
    let runs: Api<RestoreRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let tenants: Api<IntuneTenant> = Api::namespaced(ctx.client.clone(), &namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let tenant = tenants.get_opt(&run.spec.tenant_ref.name).await?;
    let observation = observe_tenant(tenant.as_ref());
    ctx.forget_deleted().await;
    let state = ctx.run_state(&uid).await;
    let mut state = state.lock().await;
    let started = Instant::now();
    let mut written = run.status.clone().unwrap_or_default();
    let mut fact: Option<Fact> = None;
    let mut steps_run = 0u32;
    let plan = plan_inputs_digest(&run.spec);
    let cluster = KubeObjects::new(ctx.client.clone());
    let mut graph = None;
    loop {
        let decision = advance(WizardInput {
            run_name: &name,
            spec: &run.spec,
            generation,
            status: &written,
            tenant: &observation,
            fact: fact.take(),
            now: jiff::Timestamp::now(),
        });
        written = write_status(&ctx, &runs, &run, &written, decision.status.clone(), &mut state).await?;
        let Some(step) = decision.step else {
            // A finished run, or a dry-run resting at its preview, lets go of its loaded backup.
            if written.phase.is_some_and(|p| p.is_terminal() || p == Phase::Previewed) {
                ctx.forget(&uid).await;
            }
            return Ok(decision.requeue_after.map_or_else(Action::await_change, Action::requeue));
        };
        // Every reconcile runs at least one step, so a budget shorter than the status write
        // still makes progress; long executions continue in the next reconcile (the progress is
        // already persisted).
        if steps_run > 0 && started.elapsed() >= ctx.options.reconcile_budget {
            return Ok(Action::requeue(Duration::from_millis(10)));
        }
        steps_run += 1;
        let Some(tenant) = tenant.as_ref() else { return Ok(Action::requeue(Duration::from_secs(30))) };
        let target = RestoreTarget { tenant_id: tenant.spec.tenant_id.clone(), environment: tenant.spec.environment };
        // One credential read per reconcile, not one per step (an execution runs many steps).
        if graph.is_none() {
            match graph_client(&ctx, tenant).await {
                Ok(client) => graph = Some(client),
                Err(e) => {
                    fact = Some(failed(plan.clone(), step, StepError::transient(format!("tenant credentials: {e}"))));
                    continue;
                }
            }
        }
        let Some(graph) = graph.as_ref() else { continue };
        let source = SourceContext { namespace: &namespace, cluster: &cluster, fetcher: &ctx.fetcher };
        fact = Some(match step {
            Step::Execute => execute_one(&run, &config_maps, &mut state, &source, graph, &decision).await,
            Step::Preview => {
                let mut fact = state.runner.run_step(step, &run.spec, &source, graph, &target).await;
                if let StepOutcome::Preview(Ok(facts)) = &mut fact.outcome {
                    match store_report(&config_maps, &run, &state, &written, &facts.digest).await {
                        Ok(report) => facts.report = Some(report),
                        Err(e) => fact.outcome = StepOutcome::Preview(Err(StepError::transient(e.to_string()))),
                    }
                }
                fact
            }
            _ => state.runner.run_step(step, &run.spec, &source, graph, &target).await,
        });
    }
}

/// A fact saying `step` failed.
fn failed(plan: String, step: Step, error: StepError) -> Fact {
    let outcome = match step {
        Step::ResolveSource => StepOutcome::Source(Err(error)),
        Step::Scope => StepOutcome::Scope(Err(error)),
        Step::Check => StepOutcome::Checks(Err(error)),
        Step::Preview => StepOutcome::Preview(Err(error)),
        Step::Execute => StepOutcome::Execution(Err(error)),
    };
    Fact { plan, outcome }
}

/// Writes the preview report ConfigMap unless the stored one already has this digest (a report
/// deleted since is written again: execution needs it).
async fn store_report(
    config_maps: &Api<ConfigMap>,
    run: &RestoreRun,
    state: &RunState,
    status: &RestoreRunStatus,
    digest: &str,
) -> Result<String, ControllerError> {
    if let Some(preview) = status.preview.as_ref().filter(|p| p.digest == digest)
        && let Some(report) = &preview.report
        && store::stored_digest(config_maps, &run.name_any(), Content::Report).await?.as_deref() == Some(digest)
    {
        return Ok(report.clone());
    }
    let report =
        state.runner.last_report().ok_or_else(|| ControllerError::Internal("no report after a preview".into()))?;
    let json = serde_json::to_vec(report).map_err(|e| ControllerError::Internal(e.to_string()))?;
    Ok(store::write(config_maps, run, Content::Report, &json, digest).await?)
}

/// Runs one write step of the approved plan and persists the progress record.
async fn execute_one<T: restore_core::tenant::TenantPort>(
    run: &RestoreRun,
    config_maps: &Api<ConfigMap>,
    state: &mut RunState,
    source: &SourceContext<'_, KubeObjects>,
    graph: &T,
    decision: &Decision,
) -> Fact {
    let plan = plan_inputs_digest(&run.spec);
    let Some(approved) = decision.status.confirmation.as_ref().map(|c| c.digest.clone()) else {
        return failed(plan, Step::Execute, StepError::permanent("no accepted confirmation"));
    };
    if state.executor.as_ref().is_none_or(|e| e.progress().preview_digest != approved) {
        match build_executor(run, config_maps, state, source, &approved).await {
            Ok(executor) => state.executor = Some(executor),
            Err(e) => return failed(plan, Step::Execute, e),
        }
    }
    let Some(executor) = state.executor.as_mut() else {
        return failed(plan, Step::Execute, StepError::transient("executor missing"));
    };
    let result = executor.next_step(graph).await;
    let progress = serde_json::to_vec(executor.progress()).unwrap_or_default();
    if let Err(e) = store::write(config_maps, run, Content::Progress, &progress, &approved).await {
        // The write reached the tenant but its record did not: the next attempt re-checks it.
        tracing::warn!(run = %run.name_any(), error = %e, "progress record not persisted");
        state.executor = None;
        return failed(plan, Step::Execute, StepError::transient(format!("persisting progress: {e}")));
    }
    match result {
        Ok(_) => Fact { plan, outcome: StepOutcome::Execution(Ok(executor.facts())) },
        Err(e) => {
            let error: StepError = e.into();
            if !error.permanent {
                state.executor = None;
            }
            failed(plan, Step::Execute, error)
        }
    }
}

/// Rebuilds the executor from the stored report (verified against the approved digest) and the
/// stored progress record.
async fn build_executor(
    run: &RestoreRun,
    config_maps: &Api<ConfigMap>,
    state: &mut RunState,
    source: &SourceContext<'_, KubeObjects>,
    approved: &str,
) -> Result<restore_core::engine::execute::Executor, StepError> {
    let name = run.name_any();
    let transient = |e: store::StoreError| StepError::transient(e.to_string());
    let (bytes, _) = store::read(config_maps, &name, Content::Report)
        .await
        .map_err(transient)?
        .ok_or_else(|| StepError::permanent("the preview report ConfigMap is missing; create a new RestoreRun"))?;
    let report: PreviewReport = serde_json::from_slice(&bytes)
        .map_err(|e| StepError::permanent(format!("the preview report ConfigMap is unreadable: {e}")))?;
    // The report is what gets executed: it must be exactly the approved preview.
    if report.digest() != approved {
        return Err(StepError::permanent(format!(
            "the preview report ConfigMap does not match the approved digest {approved}; it was changed after the preview"
        )));
    }
    let progress = match store::read(config_maps, &name, Content::Progress).await.map_err(transient)? {
        Some((bytes, digest)) if digest == approved => serde_json::from_slice::<ProgressRecord>(&bytes)
            .map_err(|e| StepError::permanent(format!("the progress ConfigMap is unreadable: {e}")))?,
        _ => ProgressRecord::new(approved),
    };
    state.runner.executor(&run.spec, source, &report, progress).await
}

/// Writes the status if it changed (a merge patch of the difference), with Events and metrics.
async fn write_status(
    ctx: &Context,
    runs: &Api<RestoreRun>,
    run: &RestoreRun,
    old: &RestoreRunStatus,
    new: RestoreRunStatus,
    state: &mut RunState,
) -> Result<RestoreRunStatus, ControllerError> {
    if &new == old {
        return Ok(new);
    }
    let old_json = serde_json::to_value(old).map_err(|e| ControllerError::Internal(e.to_string()))?;
    let new_json = serde_json::to_value(&new).map_err(|e| ControllerError::Internal(e.to_string()))?;
    let patch = serde_json::json!({ "status": merge_patch(&old_json, &new_json) });
    runs.patch_status(&run.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    if old.phase != new.phase
        && let Some(phase) = new.phase
    {
        announce_phase(ctx, run, &new, phase, state).await;
    }
    Ok(new)
}

async fn announce_phase(
    ctx: &Context,
    run: &RestoreRun,
    status: &RestoreRunStatus,
    phase: Phase,
    state: &mut RunState,
) {
    let since = state.phase_since.take();
    let labels = super::metrics::RunLabels {
        namespace: run.namespace().unwrap_or_default(),
        tenant: run.spec.tenant_ref.name.clone(),
    };
    let run_seconds = run
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| (jiff::Timestamp::now() - t.0).total(jiff::Unit::Second).unwrap_or(0.0));
    ctx.metrics.run_phase_changed(
        &labels,
        since.as_ref().map(|(p, _)| p.as_str()),
        since.as_ref().map(|(_, t)| t.elapsed().as_secs_f64()),
        phase.as_str(),
        phase.is_terminal(),
        run_seconds,
    );
    state.phase_since = Some((phase.as_str().to_string(), Instant::now()));
    let ready = find(&status.conditions, types::READY).map(|c| c.message.clone()).unwrap_or_default();
    let warning = matches!(phase, Phase::Blocked | Phase::Failed | Phase::PartiallySucceeded);
    tracing::info!(run = %run.name_any(), namespace = ?run.namespace(), phase = %phase, "phase changed");
    let reference = run.object_ref(&());
    let event = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: phase.as_str().to_string(),
        note: Some(ready.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "event not published");
    }
    if phase == Phase::Blocked
        && let Some(checks) = &status.checks
    {
        for finding in checks.findings.iter().filter(|f| f.severity == Severity::Blocker).take(10) {
            let event = Event {
                type_: EventType::Warning,
                reason: finding.code.clone(),
                note: Some(
                    format!("{}: {}", finding.item.clone().unwrap_or_default(), finding.message)
                        .chars()
                        .take(1000)
                        .collect(),
                ),
                action: "Check".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &reference).await {
                tracing::warn!(error = %e, "event not published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_nulls_removed_keys_and_keeps_unchanged_ones_out() {
        let old = json!({"phase": "Previewed", "preview": {"digest": "a", "report": "r"}, "checks": {"blockers": 0}});
        let new = json!({"phase": "ResolvingSource", "preview": {"digest": "a"}});
        assert_eq!(
            merge_patch(&old, &new),
            json!({"phase": "ResolvingSource", "preview": {"report": null}, "checks": null})
        );
    }
}
