//! RestoreRun reconciliation: the shared wizard driver over a Kubernetes run store — status patches,
//! verified report and progress ConfigMaps, and fences (leadership, fresh gate, tenant lock) before writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use restore_core::api::{Phase, RestoreRunStatus, Severity};
use restore_core::conditions::{find, reasons, types};
use restore_core::engine::RestoreTarget;
use restore_core::engine::execute::ProgressRecord;
use restore_core::engine::preview::PreviewReport;
use restore_core::wizard::{TenantObservation, TenantView};
use serde_json::Value;
use tracing::Instrument;

use super::ControllerError;
use super::audit::{self, Ending};
use super::cluster_objects::KubeObjects;
use super::context::Context;
use super::graph_port::LazyGraph;
use super::tenant_lock::{self, Claim};
use crate::driver::{Driver, DriverError, Rest, RunEvent, RunInputs, RunStore, WriteClearance};
use crate::kube::conflicts::fenced_write_retrying_conflicts;
use crate::kube::records::{self, Content, StoreError};
use crate::kube::{FIELD_MANAGER, IntuneTenant, RestoreRun, merge_patch_params};
use crate::runner::SourceContext;

/// The finalizer an executing run carries: deleting it stops writes at an item boundary and leaves
/// an audit record before the run goes (DESIGN §2 rule 14).
pub const FINALIZER: &str = "tenantatlas.io/execution-record";

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

/// Reconciles one RestoreRun, in a span naming its namespace, name and tenant.
pub async fn reconcile(run: Arc<RestoreRun>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = %run.namespace().unwrap_or_default(),
        run = %run.name_any(),
        tenant = %run.spec.tenant_ref.name,
    );
    reconcile_run(run, ctx).instrument(span).await
}

/// How soon a run whose tenant has no free reconcile slot looks again.
const TENANT_SLOT_WAIT: Duration = Duration::from_secs(2);

/// A drift re-check is due this long before the interval ends (timers fire a little late).
const DRIFT_SLACK: Duration = Duration::from_secs(5);

async fn reconcile_run(run: Arc<RestoreRun>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let namespace = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let uid = run.uid().unwrap_or_default();
    if run.meta().deletion_timestamp.is_some() {
        return finish_deletion(&ctx, &namespace, &name).await;
    }
    let Some(_slot) = ctx.tenant_slot(&format!("{namespace}/{}", run.spec.tenant_ref.name)) else {
        tracing::debug!("every reconcile slot of the tenant is taken; waiting");
        return Ok(Action::requeue(TENANT_SLOT_WAIT));
    };
    let Some(run) = current_copy(&ctx, run, &uid).await? else { return Ok(Action::await_change()) };
    if run.meta().deletion_timestamp.is_some() {
        return finish_deletion(&ctx, &namespace, &name).await;
    }
    let tenants: Api<IntuneTenant> = Api::namespaced(ctx.client.clone(), &namespace);
    let tenant = tenants.get_opt(&run.spec.tenant_ref.name).await?;
    let inputs = RunInputs {
        spec: run.spec.clone(),
        generation: run.meta().generation.unwrap_or(0),
        tenant: observe_tenant(tenant.as_ref()),
        awaited_appeared: source_appeared(&ctx, &run).await?,
    };
    ctx.forget_deleted().await;
    let state = ctx.run_state(&uid).await;
    let mut state = state.lock().await;
    let state = &mut *state;
    let cluster = KubeObjects::new(ctx.client.clone());
    // This run's downloads: cancelled when the run is deleted (or the operator stops).
    let fetcher = ctx.fetcher.for_run(&uid);
    let port = LazyGraph::new(&ctx, tenant.as_ref());
    let snapshot_key = tenant
        .as_ref()
        .map(|t| format!("{}/{}@{}", t.namespace().unwrap_or_default(), t.name_any(), super::tenant::spec_version(t)));
    let drift_port =
        snapshot_key.map(|key| LazyGraph::reading(&ctx, tenant.as_ref(), ctx.snapshots.current(&key, ctx.clock.now())));
    let target = RestoreTarget {
        tenant_id: tenant.as_ref().map(|t| t.spec.tenant_id.clone()).unwrap_or_default(),
        environment: tenant.as_ref().map_or(restore_core::api::Environment::Production, |t| t.spec.environment),
    };
    let mut store = KubeRunStore::new(&ctx, &run, &mut state.phase_since);
    let mut driver = Driver {
        run_name: &name,
        source: SourceContext { namespace: &namespace, cluster: &cluster, fetcher: &fetcher },
        port: &port,
        drift_port: drift_port.as_ref(),
        target,
        store: &mut store,
        work: &mut state.work,
        budget: Some(ctx.options.reconcile_budget),
        clock: &ctx.clock,
    };
    let status = run.status.clone().unwrap_or_default();
    let (status, rest) = driver.drive(inputs, status, |event| note_event(&name, &event)).await.map_err(driver_error)?;
    match rest {
        Rest::Deleting => finish_deletion(&ctx, &namespace, &name).await,
        Rest::Continue => Ok(Action::requeue(Duration::from_millis(10))),
        Rest::Settled(requeue) => {
            if status.phase.is_some_and(|p| p.is_terminal()) {
                finish_execution(&ctx, &run, &status).await?;
            }
            // A finished run lets go of its working state; a waiting one of its loaded backup.
            if status.phase.is_some_and(|p| p.is_terminal()) {
                ctx.forget(&uid).await;
            } else if status.phase != Some(Phase::Executing) {
                state.work = ctx.empty_work();
            }
            Ok(requeue.map_or_else(Action::await_change, Action::requeue))
        }
    }
}

/// The copy of the run to act on: the cached one, unless its resourceVersion is not the one this
/// controller last saw or wrote (a cache older than our own status write): then read fresh.
async fn current_copy(
    ctx: &Context,
    run: Arc<RestoreRun>,
    uid: &str,
) -> Result<Option<Arc<RestoreRun>>, ControllerError> {
    let run = if ctx.version_differs(uid, run.resource_version().as_deref()) {
        let runs: Api<RestoreRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
        match runs.get_opt(&run.name_any()).await?.filter(|fresh| fresh.uid() == run.uid()) {
            Some(fresh) => Arc::new(fresh),
            None => return Ok(None),
        }
    } else {
        run
    };
    ctx.saw_version(uid, run.resource_version());
    Ok(Some(run))
}

/// Whether a run waiting for its source ConfigMap can look again at once: the ConfigMap now exists
/// (the watch on ConfigMaps woke this reconcile), so it need not wait for its next scheduled look.
async fn source_appeared(ctx: &Context, run: &RestoreRun) -> Result<bool, ControllerError> {
    let status = run.status.as_ref();
    let waiting = status
        .and_then(|s| find(&s.conditions, types::SOURCE_RESOLVED))
        .is_some_and(|c| c.reason == reasons::SOURCE_NOT_FOUND);
    let Some(source) = run.spec.source.config_map_ref.as_ref().filter(|_| waiting) else { return Ok(false) };
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    Ok(config_maps.get_metadata_opt(&source.name).await?.is_some())
}

fn driver_error(e: DriverError) -> ControllerError {
    match e {
        DriverError::NotLeader(why) => ControllerError::Lease(why),
        other => ControllerError::Internal(other.to_string()),
    }
}

fn note_event(run: &str, event: &RunEvent<'_>) {
    if let RunEvent::ProgressRejected = event {
        tracing::warn!(run, "a progress record this controller did not write was set aside");
    }
}

/// After a run reached a terminal phase: its audit record, the tenant released, the finalizer gone.
async fn finish_execution(ctx: &Context, run: &RestoreRun, status: &RestoreRunStatus) -> Result<(), ControllerError> {
    let namespace = run.namespace().unwrap_or_default();
    let runs: Api<RestoreRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(run) = runs.get_opt(&run.name_any()).await?.filter(|r| r.uid() == run.uid()) else { return Ok(()) };
    let run = &run;
    if !run.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    still_leading(ctx).await?;
    audit::write(&config_maps, run, status, Ending::Finished, ctx.options.audit_retention).await?;
    still_leading(ctx).await?;
    release_tenant(ctx, run, status).await?;
    still_leading(ctx).await?;
    remove_finalizer(ctx, run).await
}

/// Refuses once this replica no longer holds the leader Lease: read right before each write that
/// ends a run, so a deposed replica never records a run's end over its successor's.
async fn still_leading(ctx: &Context) -> Result<(), ControllerError> {
    ctx.ensure_leading().await.map_err(ControllerError::Lease)
}

/// A run being deleted: an execution in progress is cut here (it wrote nothing since the last item
/// boundary), recorded in an audit record and an Event, and the finalizer goes.
async fn finish_deletion(ctx: &Context, namespace: &str, name: &str) -> Result<Action, ControllerError> {
    let runs: Api<RestoreRun> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(run) = runs.get_opt(name).await? else { return Ok(Action::await_change()) };
    ctx.fetcher.cancel_run(&run.uid().unwrap_or_default());
    if !run.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let status = run.status.clone().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let (ending, note) = if status.phase == Some(Phase::Executing) {
        let (done, total) = status.execution.as_ref().map_or((0, 0), |e| (e.completed_steps, e.total_steps));
        (Ending::Cut, format!("deleted while executing: stopped after {done} of {total} step(s); see the audit record"))
    } else {
        (Ending::Finished, "deleted after its execution ended".to_string())
    };
    still_leading(ctx).await?;
    audit::write(&config_maps, &run, &status, ending, ctx.options.audit_retention).await?;
    if ending == Ending::Cut {
        publish(ctx, &run, EventType::Warning, reasons::EXECUTION_CUT, &note, "Delete").await;
    }
    still_leading(ctx).await?;
    release_tenant(ctx, &run, &status).await?;
    still_leading(ctx).await?;
    remove_finalizer(ctx, &run).await?;
    Ok(Action::await_change())
}

async fn release_tenant(ctx: &Context, run: &RestoreRun, status: &RestoreRunStatus) -> Result<(), ControllerError> {
    let Some(tenant) = status.tenant.as_ref() else { return Ok(()) };
    let leases = lock_api(ctx, run);
    let holder =
        tenant_lock::holder_of(&run.namespace().unwrap_or_default(), &run.name_any(), &run.uid().unwrap_or_default());
    Ok(tenant_lock::release(&leases, &tenant.id, &holder).await?)
}

fn lock_api(ctx: &Context, run: &RestoreRun) -> Api<Lease> {
    let namespace = ctx.options.lock_namespace.clone().or_else(|| run.namespace()).unwrap_or_default();
    Api::namespaced(ctx.client.clone(), &namespace)
}

async fn remove_finalizer(ctx: &Context, run: &RestoreRun) -> Result<(), ControllerError> {
    let runs: Api<RestoreRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let kept: Vec<&String> = run.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = serde_json::json!({"metadata": {"finalizers": kept, "resourceVersion": run.resource_version()}});
    runs.patch(&run.name_any(), &merge_patch_params(FIELD_MANAGER), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// The run's status, report and progress in the cluster, with every write fenced.
struct KubeRunStore<'a> {
    ctx: &'a Context,
    run: &'a RestoreRun,
    runs: Api<RestoreRun>,
    tenants: Api<IntuneTenant>,
    config_maps: Api<ConfigMap>,
    phase_since: &'a mut Option<(String, Instant)>,
}

impl<'a> KubeRunStore<'a> {
    fn new(ctx: &'a Context, run: &'a RestoreRun, phase_since: &'a mut Option<(String, Instant)>) -> Self {
        let namespace = run.namespace().unwrap_or_default();
        KubeRunStore {
            ctx,
            run,
            runs: Api::namespaced(ctx.client.clone(), &namespace),
            tenants: Api::namespaced(ctx.client.clone(), &namespace),
            config_maps: Api::namespaced(ctx.client.clone(), &namespace),
            phase_since,
        }
    }

    fn uid(&self) -> String {
        self.run.uid().unwrap_or_default()
    }

    async fn fence(&self) -> Result<(), DriverError> {
        self.ctx.ensure_leading().await.map_err(DriverError::NotLeader)
    }

    /// The fence's last reading, checked with no I/O right before a write goes out.
    fn still_leading(&self) -> Result<(), DriverError> {
        match &self.ctx.fence {
            Some(fence) => fence.holds_now().map_err(DriverError::NotLeader),
            None => Ok(()),
        }
    }

    async fn read_record(&self, content: Content) -> Result<Option<Vec<u8>>, DriverError> {
        match records::read(&self.config_maps, &self.run.name_any(), &self.uid(), content).await {
            Ok(found) => Ok(found.map(|(bytes, _)| bytes)),
            Err(e @ (StoreError::Untrusted { .. } | StoreError::Corrupt { .. })) => {
                tracing::warn!(error = %e, "a stored {} is not trusted", content.label());
                Err(DriverError::Store(e.to_string()))
            }
            Err(e) => Err(DriverError::Store(e.to_string())),
        }
    }

    /// Adds the finalizer before the first write, so a deletion cannot lose the record.
    async fn ensure_finalizer(&self, fresh: &RestoreRun) -> Result<(), DriverError> {
        if fresh.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(());
        }
        let mut finalizers = fresh.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        let patch =
            serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": fresh.resource_version()}});
        let patched = self
            .runs
            .patch(&fresh.name_any(), &merge_patch_params(FIELD_MANAGER), &Patch::Merge(&patch))
            .await
            .map_err(store_error)?;
        self.ctx.saw_version(&self.uid(), patched.resource_version());
        Ok(())
    }
}

fn store_error(e: impl std::fmt::Display) -> DriverError {
    DriverError::Store(e.to_string())
}

impl RunStore for KubeRunStore<'_> {
    async fn write_status(&mut self, old: &RestoreRunStatus, new: &RestoreRunStatus) -> Result<(), DriverError> {
        if new == old {
            return Ok(());
        }
        self.fence().await?;
        let old_json = serde_json::to_value(old).map_err(store_error)?;
        let new_json = serde_json::to_value(new).map_err(store_error)?;
        let patch = serde_json::json!({ "status": merge_patch(&old_json, &new_json) });
        let (name, params, patch) = (self.run.name_any(), merge_patch_params(FIELD_MANAGER), Patch::Merge(&patch));
        let patched =
            fenced_write_retrying_conflicts(|| self.still_leading(), || self.runs.patch_status(&name, &params, &patch))
                .await
                .map_err(|e| e.into_error(store_error))?;
        self.ctx.saw_version(&self.uid(), patched.resource_version());
        // Acceptance and outcome Events come before the phase's own Event.
        for event in super::execution_events::execution_events(old, new) {
            let type_ = if event.warning { EventType::Warning } else { EventType::Normal };
            publish(self.ctx, self.run, type_, event.reason, &event.note, "Execute").await;
        }
        if old.phase != new.phase
            && let Some(phase) = new.phase
        {
            announce_phase(self.ctx, self.run, new, phase, self.phase_since).await;
        } else if new.phase.is_some_and(|p| p.is_terminal()) && old.observed_generation != new.observed_generation {
            let note = find(&new.conditions, types::READY).map(|c| c.message.clone()).unwrap_or_default();
            publish(self.ctx, self.run, EventType::Normal, reasons::SPEC_CHANGE_IGNORED, &note, "Reconcile").await;
        }
        Ok(())
    }

    async fn save_report(&mut self, report: &PreviewReport, digest: &str) -> Result<String, DriverError> {
        // Every preview compared the backup with the tenant: the next drift re-check is an interval away.
        self.ctx.read_tenant(&self.uid(), self.ctx.clock.now());
        let name = self.run.name_any();
        let stored = records::stored_digest(&self.config_maps, &name, Content::Report).await.map_err(store_error)?;
        if stored.as_deref() == Some(digest) {
            return Ok(records::chunk_name(&name, Content::Report, 0));
        }
        self.fence().await?;
        let json = serde_json::to_vec(report).map_err(store_error)?;
        fenced_write_retrying_conflicts(
            || self.still_leading(),
            || records::write(&self.config_maps, self.run, Content::Report, &json, digest),
        )
        .await
        .map_err(|e| e.into_error(store_error))
    }

    async fn load_report(&mut self) -> Result<Option<PreviewReport>, DriverError> {
        let Some(bytes) = self.read_record(Content::Report).await? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| store_error(format!("the stored report is unreadable: {e}")))
    }

    async fn save_progress(&mut self, record: &ProgressRecord) -> Result<(), DriverError> {
        self.fence().await?;
        let json = serde_json::to_vec(record).map_err(store_error)?;
        fenced_write_retrying_conflicts(
            || self.still_leading(),
            || records::write(&self.config_maps, self.run, Content::Progress, &json, &record.preview_digest),
        )
        .await
        .map_err(|e| e.into_error(store_error))?;
        Ok(())
    }

    async fn load_progress(&mut self) -> Result<Option<ProgressRecord>, DriverError> {
        // A record that is not provably this controller's is no record: the vouched prefix starts over.
        let bytes = match self.read_record(Content::Progress).await {
            Ok(bytes) => bytes,
            Err(DriverError::Store(why)) => {
                tracing::warn!(why, "the stored progress record is set aside");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    async fn before_write(&mut self, inputs: &RunInputs) -> Result<WriteClearance, DriverError> {
        self.fence().await?;
        let fresh = self.runs.get_opt(&self.run.name_any()).await.map_err(store_error)?;
        let Some(fresh) = fresh.filter(|r| r.uid() == self.run.uid() && r.meta().deletion_timestamp.is_none()) else {
            return Ok(WriteClearance::Deleting);
        };
        let tenant = self.tenants.get_opt(&fresh.spec.tenant_ref.name).await.map_err(store_error)?;
        let now = RunInputs {
            spec: fresh.spec.clone(),
            generation: fresh.meta().generation.unwrap_or(0),
            tenant: observe_tenant(tenant.as_ref()),
            awaited_appeared: inputs.awaited_appeared,
        };
        if &now != inputs {
            return Ok(WriteClearance::Changed(Box::new(now)));
        }
        self.ensure_finalizer(&fresh).await?;
        let TenantObservation::Present(view) = &now.tenant else { return Ok(WriteClearance::Changed(Box::new(now))) };
        let holder = tenant_lock::holder_of(&fresh.namespace().unwrap_or_default(), &fresh.name_any(), &self.uid());
        match tenant_lock::claim(&lock_api(self.ctx, self.run), &view.id, &holder).await.map_err(store_error)? {
            Claim::Held => Ok(WriteClearance::Go),
            Claim::Busy(other) => Ok(WriteClearance::TenantBusy(other)),
        }
    }

    async fn drift_recheck_due(&mut self) -> bool {
        let interval = restore_core::wizard::DRIFT_RECHECK.saturating_sub(DRIFT_SLACK);
        self.ctx.tenant_read_due(&self.uid(), self.ctx.clock.now(), interval)
    }

    fn rests_expired_previews(&self) -> bool {
        true
    }
}

/// Publishes an Event about the run (failures are logged, never fatal).
async fn publish(ctx: &Context, run: &RestoreRun, type_: EventType, reason: &str, note: &str, action: &str) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &run.object_ref(&())).await {
        tracing::warn!(error = %e, "event not published");
    }
}

async fn announce_phase(
    ctx: &Context,
    run: &RestoreRun,
    status: &RestoreRunStatus,
    phase: Phase,
    phase_since: &mut Option<(String, Instant)>,
) {
    let since = phase_since.take();
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
    *phase_since = Some((phase.as_str().to_string(), Instant::now()));
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

    /// A tenant that is not Ready passes its own condition's message on (a wrong secret's AADSTS
    /// code), so the run's `TenantNotReady` says why; a Ready tenant has no such message.
    #[test]
    fn a_tenant_not_ready_passes_its_message_on_and_a_ready_one_has_none() {
        let tenant = |status: &str, message: &str| -> IntuneTenant {
            serde_json::from_value(json!({
                "apiVersion": "tenantatlas.io/v1alpha1", "kind": "IntuneTenant", "metadata": {"name": "contoso"},
                "spec": {"tenantId": "00000000-0000-4000-8000-000000000001", "displayName": "Contoso",
                    "environment": "staging", "auth": {"clientId": "app", "clientSecretRef": {"name": "s", "key": "k"}}},
                "status": {"conditions": [{"type": "Ready", "status": status, "reason": "Checked", "message": message,
                    "lastTransitionTime": "2026-11-28T00:00:00Z"}]}
            }))
            .expect("a tenant")
        };
        let view = |t: &IntuneTenant| match observe_tenant(Some(t)) {
            TenantObservation::Present(view) => (view.ready, view.not_ready_message),
            TenantObservation::Missing => panic!("the tenant is there"),
        };
        assert_eq!(
            view(&tenant("False", "AADSTS7000215: invalid client secret")),
            (false, Some("AADSTS7000215: invalid client secret".into()))
        );
        assert_eq!(view(&tenant("True", "token acquired")), (true, None));
    }

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
