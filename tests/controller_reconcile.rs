//! The RestoreRun and IntuneTenant reconcilers, in process, against kube-fake-client and a Graph
//! simulator: every phase transition and every DESIGN §2 rule the controller owns, one test each.
//!
//! kube-fake-client has no watch, no CRD schema or CEL validation and no garbage collection, so
//! these tests call `reconcile` directly (the controller loop, leader election and admission run
//! in the end-to-end tests on the emulator). Server-side apply, merge patches of `/status`, label
//! selectors and `events.k8s.io/v1` Events work on the fake and are checked here.

mod controller_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controller_support::kind_of::KindOf;
use controller_support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use kube_fake_client::{ClientBuilder, interceptor};
use restore_core::api::{Environment, ItemOutcome, Phase, RestoreRunStatus};
use restore_core::backup::BackupSet;
use restore_core::conditions::{Condition, ConditionStatus, find, reasons, types};
use restore_core::engine::execute::{ProgressRecord, StepRecord};
use restore_core::tenant::TenantPort;
use restore_operator::controller::context::Context;
use restore_operator::controller::fence::LeaderFence;
use restore_operator::controller::{ControllerOptions, audit, restorerun, tenant, tenant_lock};
use restore_operator::kube::records::{self as store, Content};
use restore_operator::kube::{IntuneTenant, RestoreRun};
use serde_json::{Value, json};

/// The name of an object patched and the field manager the patch named.
type PatchManager = (String, Option<String>);

/// An object as JSON, with its name.
type NamedObject = (String, Value);

/// A fake cluster, a Graph simulator and a controller context around them.
struct Harness {
    sim: graph_sim::SimHandle,
    client: kube::Client,
    ctx: Arc<Context>,
    options: ControllerOptions,
    backup: BackupSet,
    /// Every status patch the controller sent, in order.
    status_patches: Arc<Mutex<Vec<Value>>>,
    /// Progress-record writes still to refuse (a crash between a Graph write and its record).
    refuse_progress_writes: Arc<AtomicUsize>,
    /// The name of every object the controller (or the test) read with a GET, in order.
    gets: Arc<Mutex<Vec<String>>>,
    /// The label selector of every LIST, in order.
    lists: Arc<Mutex<Vec<String>>>,
    /// The field manager of every PATCH (status included), with the object's name, in order.
    patch_managers: Arc<Mutex<Vec<PatchManager>>>,
    /// What the next GET of the object named in it answers, once, instead of the stored object (a
    /// change the API server made after the reconcile's copy was read, such as a deletion mark).
    /// Only the run is named `RUN`, whatever the kind asked for.
    read_as: Arc<Mutex<Option<NamedObject>>>,
    /// A leadership flag the next status PATCH clears before it answers 409 Conflict (the replica
    /// is deposed while its write is in flight).
    depose_at_next_status_patch: Arc<Mutex<Option<Arc<AtomicBool>>>>,
}

const RUN: &str = "restore-1";
/// The field manager of the test's own edits (a person with kubectl).
const PERSON: &str = "kubectl-patch";

fn options_one_step_per_reconcile() -> ControllerOptions {
    ControllerOptions { reconcile_budget: Duration::ZERO, ..ControllerOptions::default() }
}

impl Harness {
    async fn start(setup: TenantSetup, options: ControllerOptions) -> Harness {
        Self::start_with(setup, options, sample_backup(4)).await
    }

    async fn start_with(setup: TenantSetup, options: ControllerOptions, backup: BackupSet) -> Harness {
        let sim = start_simulator(&setup).await;
        let status_patches = Arc::new(Mutex::new(Vec::new()));
        let refuse_progress_writes = Arc::new(AtomicUsize::new(0));
        let recorded = status_patches.clone();
        let refuse = refuse_progress_writes.clone();
        let gets = Arc::new(Mutex::new(Vec::new()));
        let got = gets.clone();
        let lists = Arc::new(Mutex::new(Vec::new()));
        let listed = lists.clone();
        let patch_managers = Arc::new(Mutex::new(Vec::new()));
        let (managers, status_managers) = (patch_managers.clone(), patch_managers.clone());
        let read_as: Arc<Mutex<Option<NamedObject>>> = Arc::new(Mutex::new(None));
        let answer = read_as.clone();
        let depose_at_next_status_patch: Arc<Mutex<Option<Arc<AtomicBool>>>> = Arc::new(Mutex::new(None));
        let depose = depose_at_next_status_patch.clone();
        let interceptors = interceptor::Funcs::new()
            .get(move |ctx| {
                got.lock().unwrap().push(ctx.name.to_string());
                let mut answer = answer.lock().unwrap();
                let once = answer.take_if(|(name, _)| name == ctx.name);
                Ok(once.map(|(_, object)| object))
            })
            .list(move |ctx| {
                listed.lock().unwrap().push(ctx.params.label_selector.clone().unwrap_or_default());
                Ok(None)
            })
            .patch_status(move |ctx| {
                recorded.lock().unwrap().push(ctx.patch.clone());
                status_managers.lock().unwrap().push((ctx.name.to_string(), ctx.params.field_manager.clone()));
                if let Some(leading) = depose.lock().unwrap().take() {
                    leading.store(false, Ordering::SeqCst);
                    return Err(kube_fake_client::Error::Conflict("injected: the object has been modified".into()));
                }
                Ok(None)
            })
            .patch(move |ctx| {
                managers.lock().unwrap().push((ctx.name.to_string(), ctx.params.field_manager.clone()));
                let progress = ctx.name.ends_with("-progress");
                if progress && refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                    return Err(kube_fake_client::Error::Internal("injected: the API server went away".into()));
                }
                Ok(None)
            });
        let client = ClientBuilder::new()
            .with_resource::<RestoreRun>()
            .with_resource::<IntuneTenant>()
            .with_status_subresource::<KindOf<RestoreRun>>()
            .with_status_subresource::<KindOf<IntuneTenant>>()
            .with_interceptor_funcs(interceptors)
            .build()
            .await
            .expect("fake client builds");
        let ctx = new_context(&client, &options);
        let harness = Harness {
            sim,
            client,
            ctx,
            options,
            backup,
            status_patches,
            refuse_progress_writes,
            gets,
            lists,
            patch_managers,
            read_as,
            depose_at_next_status_patch,
        };
        harness.seed_cluster(Environment::Staging).await;
        harness
    }

    async fn seed_cluster(&self, environment: Environment) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NAMESPACE);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(SECRET_NAME.into()),
                labels: Some([("tenantatlas.io/credentials".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            data: Some([("clientSecret".to_string(), ByteString(CLIENT_SECRET.as_bytes().to_vec()))].into()),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &secret).await.expect("secret is created");
        self.put_backup(BACKUP_CONFIG_MAP, backup_config_map_data(&self.backup)).await;
        let tenant: IntuneTenant =
            serde_json::from_value(tenant_object(&self.sim, environment)).expect("tenant object parses");
        self.tenants().create(&PostParams::default(), &tenant).await.expect("tenant is created");
    }

    async fn put_backup(&self, name: &str, data: std::collections::BTreeMap<String, String>) {
        let cm = ConfigMap {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            data: Some(data),
            ..Default::default()
        };
        self.config_maps().create(&PostParams::default(), &cm).await.expect("configmap is created");
    }

    fn runs(&self) -> Api<RestoreRun> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn tenants(&self) -> Api<IntuneTenant> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Reconciles the IntuneTenant once (credentials checked, `Ready` written).
    async fn verify_tenant(&self) -> IntuneTenant {
        let current = self.tenants().get(TENANT_NAME).await.expect("tenant exists");
        tenant::reconcile(Arc::new(current), self.ctx.clone()).await.expect("tenant reconcile succeeds");
        self.tenants().get(TENANT_NAME).await.expect("tenant exists")
    }

    async fn create_run(&self, object: Value) {
        let run: RestoreRun = serde_json::from_value(object).expect("run object parses");
        self.runs().create(&PostParams::default(), &run).await.expect("run is created");
    }

    async fn run(&self, name: &str) -> RestoreRun {
        self.runs().get(name).await.expect("run exists")
    }

    async fn uid(&self, name: &str) -> String {
        self.run(name).await.uid().expect("the run has a uid")
    }

    async fn status(&self, name: &str) -> RestoreRunStatus {
        self.run(name).await.status.unwrap_or_default()
    }

    /// One reconcile of the run as the controller would do after a watch event; when a failed
    /// step waits for its retry time, that time has passed first (as the requeue would make it).
    async fn reconcile_once(&self, name: &str) {
        let run = self.run(name).await;
        let retry = run.status.as_ref().and_then(|s| s.next_attempt_at.as_deref());
        if let Some(at) = retry.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
            let ahead = at.duration_since(self.ctx.clock.now()).as_secs();
            if ahead >= 0 {
                self.ctx.clock.advance(ahead + 1);
            }
        }
        restorerun::reconcile(Arc::new(run), self.ctx.clone()).await.expect("reconcile succeeds");
    }

    /// Reconciles until `done` holds (at most `max` times).
    async fn reconcile_until(
        &self,
        name: &str,
        max: usize,
        done: impl Fn(&RestoreRunStatus) -> bool,
    ) -> RestoreRunStatus {
        for _ in 0..max {
            self.reconcile_once(name).await;
            let status = self.status(name).await;
            if done(&status) {
                return status;
            }
        }
        panic!("the run did not get there in {max} reconciles: {:#?}", self.status(name).await);
    }

    /// Reconciles until the run sits in `phase`.
    async fn settle_in(&self, name: &str, phase: Phase) -> RestoreRunStatus {
        self.reconcile_until(name, 200, |s| s.phase == Some(phase)).await
    }

    async fn patch_spec(&self, name: &str, patch: &Value) {
        let params = PatchParams { field_manager: Some(PERSON.into()), ..PatchParams::default() };
        self.runs().patch(name, &params, &Patch::Merge(patch)).await.expect("spec patch applies");
    }

    /// A controller restart: the in-memory working state is gone; the cluster and tenant stay.
    fn restart_controller(&mut self) {
        self.ctx = new_context(&self.client, &self.options);
    }

    /// Events about the run, oldest first.
    async fn events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NAMESPACE);
        let mut events = api.list(&ListParams::default()).await.expect("events list").items;
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    async fn event_reasons(&self) -> Vec<String> {
        self.events().await.into_iter().filter_map(|e| e.reason).collect()
    }

    /// The ConfigMaps the operator wrote for a run.
    async fn operator_config_maps(&self) -> Vec<ConfigMap> {
        let selector = format!("{}={RUN}", store::RUN_LABEL);
        self.config_maps().list(&ListParams::default().labels(&selector)).await.expect("list").items
    }

    /// One reconcile after a restart continues from the persisted progress record: the step after
    /// the `done` recorded ones, not the plan's first.
    async fn assert_resumes_after(&self, done: u32) {
        self.reconcile_once(RUN).await;
        let execution = self.status(RUN).await.execution.expect("execution status");
        assert_eq!(execution.completed_steps, done + 1, "resumed from the progress record");
        let (bytes, _) =
            store::read(&self.config_maps(), RUN, &self.uid(RUN).await, Content::Progress).await.unwrap().unwrap();
        let record: restore_core::engine::execute::ProgressRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.steps.len(), done as usize + 1, "the record grows by the step just done");
    }

    /// The phases the status patches after the first `skip` ones set, in order.
    fn phases_written_since(&self, skip: usize) -> Vec<String> {
        let patches = self.status_patches.lock().unwrap();
        patches[skip..].iter().filter_map(|p| p["status"]["phase"].as_str().map(str::to_string)).collect()
    }

    fn writes(&self) -> usize {
        operator_writes(&self.sim).len()
    }

    /// How many times the run's stored preview report was read.
    fn report_reads(&self) -> usize {
        let report = format!("{}={}", store::KIND_LABEL, Content::Report.label());
        self.lists.lock().unwrap().iter().filter(|selector| selector.contains(&report)).count()
    }
}

fn test_fetcher() -> restore_backup::fetch::Fetcher {
    restore_backup::fetch::Fetcher::with_extra_roots(None, restore_backup::Limits::default()).expect("fetcher builds")
}

fn new_context(client: &kube::Client, options: &ControllerOptions) -> Arc<Context> {
    Arc::new(Context::new(client.clone(), test_fetcher(), fast_graph_options(), options.clone()))
}

fn condition<'a>(status: &'a RestoreRunStatus, type_: &str) -> &'a Condition {
    find(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition in {:#?}", status.conditions))
}

fn assert_condition(status: &RestoreRunStatus, type_: &str, expected: ConditionStatus, reason: &str) -> String {
    let c = condition(status, type_);
    assert_eq!((c.status, c.reason.as_str()), (expected, reason), "{type_}: {}", c.message);
    c.message.clone()
}

fn digest(status: &RestoreRunStatus) -> String {
    status.preview.as_ref().expect("a preview").digest.clone()
}

/// A dry-run preview of the sample backup, ready for approval.
async fn previewed(setup: TenantSetup, options: ControllerOptions, ttl: &str) -> Harness {
    let h = Harness::start(setup, options).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, ttl)).await;
    h.settle_in(RUN, Phase::Previewed).await;
    h
}

// ---------------------------------------------------------------------------------------------
// Phase transitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_dry_run_walks_every_step_to_previewed_with_ready_true() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;

    h.reconcile_once(RUN).await;
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::Previewed), "one reconcile runs every step of a dry-run");
    assert_eq!(
        h.event_reasons().await,
        ["ResolvingSource", "Previewed"],
        "an Event when the run is picked up and one when it rests (issue 17: what a reader needs)"
    );
    let ready = assert_condition(&status, types::READY, ConditionStatus::True, reasons::PREVIEW_READY);
    assert!(ready.contains("dry-run preview ready"), "{ready}");
    for step in [types::SOURCE_RESOLVED, types::SCOPED, types::CHECKS_PASSED, types::PREVIEW_READY] {
        assert_eq!(condition(&status, step).status, ConditionStatus::True, "{step}");
    }
    let confirmed = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::DRY_RUN);
    assert!(confirmed.contains(&format!("previewDigest: \"{}\"", digest(&status))), "{confirmed}");
    assert!(
        find(&status.conditions, types::RECONCILING).is_none() && find(&status.conditions, types::STALLED).is_none()
    );

    // The frozen facts and the step summaries.
    let run = h.run(RUN).await;
    assert_eq!(status.observed_generation, run.metadata.generation.or(Some(0)));
    assert_eq!(status.environment, Some(Environment::Staging));
    let frozen = status.tenant.as_ref().unwrap();
    assert_eq!((frozen.id.as_str(), frozen.label.as_str()), (TENANT_ID, TENANT_LABEL));
    assert_eq!(status.source.as_ref().unwrap().digest, h.backup.digest);
    assert_eq!(status.source.as_ref().unwrap().item_count as usize, h.backup.items.len());
    let preview = status.preview.as_ref().unwrap();
    assert_eq!(preview.counts.create as usize, h.backup.items.len(), "an empty tenant: everything is created");
    assert!(preview.digest.starts_with("sha256:"));
    assert_eq!(preview.report.as_deref(), Some(format!("{RUN}-report").as_str()));
    assert!(serde_json::to_vec(&status).unwrap().len() < 100 * 1024, "status stays small");
    assert_eq!(h.writes(), 0, "a dry-run never writes");

    // The full report lives in a ConfigMap owned by the run, gzip-compressed and labelled.
    let maps = h.operator_config_maps().await;
    assert_eq!(maps.len(), 1, "only the report so far");
    let report = &maps[0];
    assert_eq!(report.labels().get(store::KIND_LABEL).map(String::as_str), Some("report"));
    assert_eq!(report.annotations().get(store::DIGEST_ANNOTATION), Some(&preview.digest));
    let owner = &report.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("RestoreRun", RUN, Some(true)));
    let text = gunzip(&report.binary_data.as_ref().unwrap()[store::DATA_KEY].0);
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), h.backup.items.len());
}

#[tokio::test]
async fn a_run_waits_in_pending_while_its_tenant_is_missing_or_not_ready() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    // Not verified yet: no Ready condition.
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    h.reconcile_once(RUN).await;
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::Pending));
    let msg = assert_condition(&status, types::READY, ConditionStatus::False, reasons::TENANT_NOT_READY);
    assert!(msg.contains(TENANT_NAME), "{msg}");
    assert_eq!(condition(&status, types::RECONCILING).status, ConditionStatus::True);

    // A run whose tenant does not exist says so.
    let mut missing = restore_run_object("restore-2", BACKUP_CONFIG_MAP, true, "1h");
    missing["spec"]["tenantRef"]["name"] = json!("no-such-tenant");
    h.create_run(missing).await;
    h.reconcile_once("restore-2").await;
    let status = h.status("restore-2").await;
    assert_eq!(status.phase, Some(Phase::Pending));
    let msg = assert_condition(&status, types::READY, ConditionStatus::False, reasons::TENANT_NOT_FOUND);
    assert!(msg.contains("no-such-tenant") && msg.contains("spec.tenantRef"), "{msg}");

    // Once the tenant is Ready, the run goes on.
    h.verify_tenant().await;
    h.settle_in(RUN, Phase::Previewed).await;
    assert_eq!(h.event_reasons().await.first().map(String::as_str), Some("Pending"));
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn a_run_that_is_not_a_dry_run_waits_for_confirmation_and_says_how_to_approve() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")).await;
    let status = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    let ready = assert_condition(&status, types::READY, ConditionStatus::False, reasons::AWAITING_CONFIRMATION);
    let confirmed = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::AWAITING_CONFIRMATION);
    for msg in [&ready, &confirmed] {
        assert!(msg.contains(&digest(&status)) && msg.contains(TENANT_LABEL), "{msg}");
    }
    assert!(find(&status.conditions, types::STALLED).is_none(), "waiting for a human is not stalled");
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn approving_a_dry_run_executes_it_to_succeeded_and_the_tenant_equals_the_backup() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let before = h.status(RUN).await;
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&before))).await;

    let status = h.settle_in(RUN, Phase::Succeeded).await;
    let reasons_seen = h.event_reasons().await;
    assert_eq!(
        &reasons_seen[2..],
        ["AwaitingConfirmation", "ConfirmationAccepted", "Executing", "ExecutionFinished", "Succeeded"],
        "{reasons_seen:?}"
    );
    assert_condition(&status, types::READY, ConditionStatus::True, reasons::SUCCEEDED);
    assert_condition(&status, types::EXECUTED, ConditionStatus::True, reasons::SUCCEEDED);
    let confirmed = assert_condition(&status, types::CONFIRMED, ConditionStatus::True, reasons::CONFIRMATION_ACCEPTED);
    assert!(confirmed.contains("alice@contoso.com"), "{confirmed}");
    let accepted = status.confirmation.as_ref().unwrap();
    assert_eq!(
        (accepted.digest.as_str(), accepted.approved_by.as_str()),
        (digest(&before).as_str(), "alice@contoso.com")
    );
    // The preview was not redone for the approval: same digest, same source and checks.
    assert_eq!(status.preview.as_ref().unwrap().digest, digest(&before));
    assert_eq!(status.checks, before.checks);
    let execution = status.execution.as_ref().unwrap();
    assert_eq!(execution.counts.created as usize, h.backup.items.len());
    assert_eq!(execution.counts.problems(), 0);
    assert!(execution.finished_at.is_some());
    assert_eq!(execution.completed_steps, execution.total_steps);

    assert_tenant_equals_backup(&h.sim, &h.backup).await;
    assert_eq!(h.writes(), expected_writes(&h.backup), "one create per item and one /assign per assigned item");
    // Rule 7: the operator never deletes tenant objects.
    assert!(operator_writes(&h.sim).iter().all(|w| w.method != "DELETE"));
    // The progress record is stored next to the report.
    let kinds: Vec<String> =
        h.operator_config_maps().await.iter().filter_map(|c| c.labels().get(store::KIND_LABEL).cloned()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"report".to_string()) && kinds.contains(&"progress".to_string()));
    let metrics = h.ctx.render_metrics();
    let finished = format!(
        "restore_operator_restoreruns_finished_total{{namespace=\"{NAMESPACE}\",tenant=\"{TENANT_NAME}\",outcome=\"Succeeded\"}} 1"
    );
    assert!(metrics.contains(&finished), "{metrics}");
}

#[tokio::test]
async fn blockers_end_in_blocked_with_a_warning_event_per_blocker_and_no_write() {
    let setup = TenantSetup { groups: vec![GROUP_ALL], ..TenantSetup::default() };
    let h = Harness::start(setup, ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    let status = h.settle_in(RUN, Phase::Blocked).await;

    let checks = assert_condition(&status, types::CHECKS_PASSED, ConditionStatus::False, reasons::BLOCKERS_FOUND);
    assert!(checks.contains(GROUP_PILOT) && checks.contains("nothing will be written"), "{checks}");
    assert_condition(&status, types::STALLED, ConditionStatus::True, reasons::BLOCKERS_FOUND);
    assert_condition(&status, types::READY, ConditionStatus::False, reasons::BLOCKERS_FOUND);
    assert!(status.checks.as_ref().unwrap().blockers >= 1);
    assert!(status.preview.is_none(), "no preview of a blocked run");
    let events = h.events().await;
    let blocker_events: Vec<&Event> = events.iter().filter(|e| e.action.as_deref() == Some("Check")).collect();
    assert_eq!(blocker_events.len() as u32, status.checks.as_ref().unwrap().blockers);
    assert!(blocker_events.iter().all(|e| e.type_.as_deref() == Some("Warning")));
    assert!(blocker_events[0].note.as_deref().unwrap_or_default().contains(GROUP_PILOT));

    // Even a confirmation cannot release a blocked run.
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, "sha256:whatever")).await;
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    assert_eq!(h.status(RUN).await.phase, Some(Phase::Blocked));
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn a_source_that_cannot_be_read_fails_the_run_with_a_reason() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    let mut data = backup_config_map_data(&h.backup);
    data.insert("manifest.json".into(), "{\"formatVersion\": 1, \"items\": [".into());
    h.put_backup("broken-backup", data).await;
    h.create_run(restore_run_object(RUN, "broken-backup", true, "1h")).await;
    let status = h.settle_in(RUN, Phase::Failed).await;
    let msg = assert_condition(&status, types::SOURCE_RESOLVED, ConditionStatus::False, reasons::SOURCE_INVALID);
    assert!(msg.contains("manifest.json") && msg.contains("create a new RestoreRun"), "{msg}");
    assert_condition(&status, types::STALLED, ConditionStatus::True, reasons::SOURCE_INVALID);
    assert_eq!(h.event_reasons().await.last().map(String::as_str), Some("Failed"));
    assert_eq!(h.events().await.last().unwrap().type_.as_deref(), Some("Warning"));
    assert_eq!(h.writes(), 0);
}

// ---------------------------------------------------------------------------------------------
// DESIGN §2 rule 1: the gate
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rule1_gate_wrong_tenant_label_writes_nothing() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch("Contoso Production", &preview)).await;
    let status = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    for _ in 0..2 {
        h.reconcile_once(RUN).await;
    }
    let msg = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::TENANT_LABEL_MISMATCH);
    assert!(msg.contains("\"Contoso Production\"") && msg.contains(TENANT_LABEL), "{msg}");
    assert_eq!(h.status(RUN).await.phase, Some(Phase::AwaitingConfirmation));
    assert_eq!(h.sim.applied_write_count(), 0, "nothing reached the tenant");
}

#[tokio::test]
async fn rule1_gate_stale_digest_writes_nothing() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let stale = digest(&h.status(RUN).await);
    // Someone creates one of the backup's policies by hand after the preview.
    create_by_hand(&h.sim, &baseline_name(1)).await;
    let admin_writes = h.sim.applied_write_count();

    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &stale)).await;
    let status = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    let msg = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::DIGEST_MISMATCH);
    assert!(msg.contains(&stale) && msg.contains(&digest(&status)), "{msg}");
    assert_ne!(digest(&status), stale, "the tenant was re-read before the approval was accepted");
    let preview = assert_condition(&status, types::PREVIEW_READY, ConditionStatus::True, reasons::PREVIEW_SUPERSEDED);
    assert!(preview.contains(&digest(&status)), "{preview}");
    assert_eq!(status.preview.as_ref().unwrap().counts.update, 1);
    assert!(status.confirmation.is_none());
    assert_eq!(h.sim.applied_write_count(), admin_writes, "the operator wrote nothing");
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn rule1_gate_expired_preview_writes_nothing() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1m").await;
    let old = h.status(RUN).await;
    h.ctx.clock.advance(61);
    // The preview expired; meanwhile the tenant changed.
    create_by_hand(&h.sim, &baseline_name(0)).await;
    let admin_writes = h.sim.applied_write_count();
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&old))).await;
    h.reconcile_once(RUN).await;
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::AwaitingConfirmation));
    assert!(
        status.preview.as_ref().unwrap().generated_at > old.preview.as_ref().unwrap().generated_at,
        "the expired preview was regenerated"
    );
    let msg = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::DIGEST_MISMATCH);
    assert!(msg.contains(&digest(&old)), "{msg}");
    assert_eq!(h.sim.applied_write_count(), admin_writes, "the operator wrote nothing");
    assert!(h.event_reasons().await.contains(&"Previewing".to_string()), "the run went back to Previewing");
}

#[tokio::test]
async fn rule1_gate_an_expired_preview_is_regenerated_before_its_approval_counts() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1m").await;
    let old = h.status(RUN).await;
    h.ctx.clock.advance(61);
    // Graph is down: the expired preview cannot be verified, so the approval is not accepted.
    h.sim.set_faults(graph_sim::FaultConfig {
        storm: Some(graph_sim::Storm { status: 503, requests: 1_000, retry_after_secs: None }),
        ..Default::default()
    });
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&old))).await;
    h.reconcile_once(RUN).await;
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::Previewing));
    let msg = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::PREVIEW_EXPIRED);
    assert!(msg.contains("expired") && msg.contains("regenerating"), "{msg}");
    assert_eq!(h.writes(), 0);

    // Graph is back and nothing changed: the regenerated preview has the same digest, so the
    // approval now counts and the run executes.
    h.sim.set_faults(graph_sim::FaultConfig::default());
    let status = h.settle_in(RUN, Phase::Succeeded).await;
    assert_eq!(digest(&status), digest(&old));
    assert!(status.preview.as_ref().unwrap().expires_at > old.preview.as_ref().unwrap().expires_at);
    assert!(status.confirmation.as_ref().unwrap().accepted_at >= status.preview.as_ref().unwrap().generated_at);
}

#[tokio::test]
async fn rule1_gate_environment_changed_since_the_run_started_writes_nothing() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.tenants()
        .patch(TENANT_NAME, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"environment": "production"}})))
        .await
        .unwrap();
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    let status = h.status(RUN).await;
    let msg = assert_condition(&status, types::STALLED, ConditionStatus::True, reasons::ENVIRONMENT_CHANGED);
    assert!(msg.contains("production") && msg.contains("staging") && msg.contains("nothing will be written"), "{msg}");
    assert_eq!(status.environment, Some(Environment::Staging), "the environment stays frozen");
    assert!(status.confirmation.is_none());
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn rule1_gate_unreviewed_impact_or_a_missing_approver_writes_nothing() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    let cases = [
        (
            json!({"reviewedImpact": false, "tenant": TENANT_LABEL, "previewDigest": preview, "approvedBy": "alice"}),
            reasons::IMPACT_NOT_REVIEWED,
        ),
        (
            json!({"reviewedImpact": true, "tenant": TENANT_LABEL, "previewDigest": preview, "approvedBy": " "}),
            reasons::APPROVER_MISSING,
        ),
    ];
    for (confirmation, reason) in cases {
        h.patch_spec(RUN, &json!({"spec": {"dryRun": false, "confirmation": confirmation}})).await;
        let status = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
        assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reason);
    }
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn a_deleted_report_config_map_is_written_again_before_the_approval_executes() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.config_maps().delete(&format!("{RUN}-report"), &Default::default()).await.expect("the report is deleted");
    h.reconcile_once(RUN).await;
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    // The approval re-reads the tenant; the same digest comes out and its report is stored again.
    let status = h.reconcile_until(RUN, 50, |s| s.phase.is_some_and(Phase::is_terminal)).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:#?}", status.conditions);
    let (report, stored) =
        store::read(&h.config_maps(), RUN, &h.uid(RUN).await, Content::Report).await.unwrap().expect("a report");
    assert_eq!(stored, preview);
    let report: restore_core::engine::preview::PreviewReport = serde_json::from_slice(&report).unwrap();
    assert_eq!(report.digest(), preview);
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

// ---------------------------------------------------------------------------------------------
// Rule 3: a plan edit resets every later step; confirmation and dryRun edits never do
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rule3_plan_edit_resets_every_later_step() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let old = h.status(RUN).await;
    let patches_before = h.status_patches.lock().unwrap().len();
    // Approve the old preview and narrow the scope in the same edit.
    let mut patch = approval_patch(TENANT_LABEL, &digest(&old));
    patch["spec"]["scope"] = json!({"mode": "all", "exclude": {"items": ["Office Wi-Fi"]}});
    h.patch_spec(RUN, &patch).await;

    h.reconcile_once(RUN).await;
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::AwaitingConfirmation));
    assert_ne!(status.plan_inputs, old.plan_inputs);
    assert_ne!(digest(&status), digest(&old), "a new preview for the new plan");
    assert_eq!(status.scope.as_ref().unwrap().total, old.scope.as_ref().unwrap().total - 1);
    assert_ne!(status.checks.as_ref().unwrap().checked_at, None);
    let msg = assert_condition(&status, types::CONFIRMED, ConditionStatus::False, reasons::DIGEST_MISMATCH);
    assert!(msg.contains(&digest(&old)), "the old approval names the old preview: {msg}");
    assert_eq!(
        h.phases_written_since(patches_before),
        ["ResolvingSource", "AwaitingConfirmation"],
        "every step ran again (written when picked up and at rest)"
    );
    // The Event recorder folds a repeated phase into a series on the first Event.
    let resolving = h.events().await.into_iter().find(|e| e.reason.as_deref() == Some("ResolvingSource")).unwrap();
    assert_eq!(resolving.series.map(|s| s.count), Some(2));
    assert_eq!(h.writes(), 0);

    // Approving the new preview executes the new plan: the excluded item is not written.
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&status))).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    assert!(only_object_named(&h.sim, "deviceManagement/deviceConfigurations", "Office Wi-Fi").is_none());
}

#[tokio::test]
async fn rule3_confirmation_or_dry_run_edits_do_not_reset() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let old = h.status(RUN).await;
    h.patch_spec(RUN, &approval_patch("Someone else", &digest(&old))).await;
    let status = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    assert_eq!(status.plan_inputs, old.plan_inputs);
    assert_eq!(status.source, old.source);
    assert_eq!(status.scope, old.scope);
    assert_eq!(status.checks, old.checks, "the checks did not run again");
    assert_eq!(status.preview.as_ref().unwrap().generated_at, old.preview.as_ref().unwrap().generated_at);
    h.patch_spec(RUN, &json!({"spec": {"dryRun": true, "confirmation": null}})).await;
    let status = h.settle_in(RUN, Phase::Previewed).await;
    assert_eq!(status.checks, old.checks);
    assert_eq!(digest(&status), digest(&old));
    assert!(!h.event_reasons().await.iter().skip(1).any(|r| r == "ResolvingSource"));
}

// ---------------------------------------------------------------------------------------------
// Rule 4: drift right before a write
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rule4_drift_before_a_write_is_reported_as_drifted() {
    let h = Harness::start(TenantSetup::default(), options_one_step_per_reconcile()).await;
    let admin = admin_graph(&h.sim);
    let existing = create_by_hand(&h.sim, &baseline_name(1)).await;
    let existing_id = existing["id"].as_str().unwrap().to_string();
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    let previewed = h.settle_in(RUN, Phase::Previewed).await;
    assert_eq!(previewed.preview.as_ref().unwrap().counts.update, 1);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&previewed))).await;
    let executing = h.settle_in(RUN, Phase::Executing).await;
    assert_eq!(executing.execution.as_ref().unwrap().completed_steps, 0, "accepted, nothing written yet");

    // The object changes after the approval, before the operator writes it.
    let path = format!("deviceManagement/deviceConfigurations/{existing_id}");
    admin
        .update(
            &path,
            &json!({"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
        "description": "edited by hand during the restore"}),
        )
        .await
        .expect("admin edit");

    let status = h.reconcile_until(RUN, 200, |s| s.phase.is_some_and(Phase::is_terminal)).await;
    assert_eq!(status.phase, Some(Phase::PartiallySucceeded));
    let execution = status.execution.as_ref().unwrap();
    assert_eq!(execution.counts.drifted, 1);
    assert_eq!(execution.counts.failed, 0);
    let drifted = execution.results.iter().find(|r| r.outcome == ItemOutcome::Drifted).expect("a drifted result");
    let source = h.backup.items.iter().find(|i| i.display_name == baseline_name(1)).unwrap();
    assert_eq!(drifted.item, source.key());
    assert!(drifted.message.as_deref().unwrap_or_default().contains("description"), "{drifted:?}");
    assert_condition(&status, types::EXECUTED, ConditionStatus::False, reasons::PARTIALLY_SUCCEEDED);
    assert_condition(&status, types::STALLED, ConditionStatus::True, reasons::PARTIALLY_SUCCEEDED);
    let live = admin.get(&path).await.unwrap().unwrap();
    assert_eq!(live["description"], "edited by hand during the restore", "the drifted object was not overwritten");
    assert_eq!(live["passwordMinimumLength"], 4);
    let last = h.events().await.pop().unwrap();
    assert_eq!((last.reason.as_deref(), last.type_.as_deref()), (Some("PartiallySucceeded"), Some("Warning")));
}

// ---------------------------------------------------------------------------------------------
// Rule 5: resumable execution
// ---------------------------------------------------------------------------------------------

/// Creates (POST to a collection) the operator sent, per path.
fn creates(sim: &graph_sim::SimHandle) -> Vec<String> {
    operator_writes(sim)
        .into_iter()
        .filter(|w| w.method == "POST" && !w.path.ends_with("/assign"))
        .map(|w| w.path)
        .collect()
}

/// `/assign` actions the operator sent.
fn assigns(sim: &graph_sim::SimHandle) -> usize {
    operator_writes(sim).iter().filter(|w| w.path.ends_with("/assign")).count()
}

#[tokio::test]
async fn rule5_resume_after_the_context_is_dropped_mid_execution_with_no_duplicate() {
    let mut h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    // A restart among the creates, and one among the assignments.
    let midway = h.reconcile_until(RUN, 50, |s| s.execution.as_ref().is_some_and(|e| e.completed_steps >= 3)).await;
    assert_eq!(midway.phase, Some(Phase::Executing));
    h.restart_controller();
    h.assert_resumes_after(midway.execution.as_ref().unwrap().completed_steps).await;
    for _ in 0..50 {
        if assigns(&h.sim) >= 2 {
            break;
        }
        h.reconcile_once(RUN).await;
    }
    assert_eq!(h.status(RUN).await.phase, Some(Phase::Executing));
    assert!(assigns(&h.sim) >= 2);
    let done = h.status(RUN).await.execution.unwrap().completed_steps;
    h.restart_controller();
    h.assert_resumes_after(done).await;

    let status = h.settle_in(RUN, Phase::Succeeded).await;
    let created = creates(&h.sim);
    assert_eq!(created.len(), h.backup.items.len(), "one create per item, none repeated: {created:?}");
    assert_eq!(h.writes(), expected_writes(&h.backup), "no write of a finished step was sent again");
    assert_eq!(status.execution.as_ref().unwrap().counts.created as usize, h.backup.items.len());
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

#[tokio::test]
async fn rule5_a_write_whose_progress_record_was_lost_is_not_repeated() {
    let mut h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let done = h
        .reconcile_until(RUN, 50, |s| s.execution.as_ref().is_some_and(|e| e.completed_steps >= 2))
        .await
        .execution
        .unwrap()
        .completed_steps;

    // The next write reaches the tenant but its progress record does not reach the cluster;
    // then the controller restarts.
    let creates_before = creates(&h.sim).len();
    h.refuse_progress_writes.store(1, Ordering::SeqCst);
    h.reconcile_once(RUN).await;
    assert_eq!(creates(&h.sim).len(), creates_before + 1, "the write happened");
    let status = h.status(RUN).await;
    let msg = condition(&status, types::EXECUTED).message.clone();
    assert!(msg.contains("persisting progress"), "{msg}");
    assert_eq!(status.execution.as_ref().unwrap().completed_steps, done, "the lost step is not counted");
    h.restart_controller();
    h.assert_resumes_after(done).await;

    let status = h.settle_in(RUN, Phase::Succeeded).await;
    let created = creates(&h.sim);
    assert_eq!(created.len(), h.backup.items.len(), "the unrecorded create was not sent again: {created:?}");
    assert_eq!(h.writes(), expected_writes(&h.backup));
    assert_eq!(status.execution.as_ref().unwrap().counts.problems(), 0);
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

// ---------------------------------------------------------------------------------------------
// Rule 6: terminal phases
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rule6_terminal_phase_is_terminal() {
    let mut h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let done = h.settle_in(RUN, Phase::Succeeded).await;
    let writes = h.sim.applied_write_count();
    let events = h.events().await.len();

    // Edits after the end, by the same controller and by a restarted one, change nothing.
    let mut patch = approval_patch(TENANT_LABEL, &preview);
    patch["spec"]["scope"] = json!({"mode": "all", "exclude": {"types": ["compliancePolicy"]}});
    patch["spec"]["existingObjects"] = json!("skip");
    h.patch_spec(RUN, &patch).await;
    h.reconcile_once(RUN).await;
    h.restart_controller();
    h.patch_spec(RUN, &json!({"spec": {"dryRun": true}})).await;
    h.reconcile_once(RUN).await;
    h.reconcile_once(RUN).await;

    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.observed_generation, h.run(RUN).await.metadata.generation, "the edit was seen");
    // Finding 12: every condition observes the edit and Ready says it was ignored; nothing else moves.
    let generation = h.run(RUN).await.metadata.generation;
    assert!(status.conditions.iter().all(|c| c.observed_generation == generation));
    let ready = condition(&status, types::READY);
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::True, reasons::SUCCEEDED));
    assert!(ready.message.contains(restore_core::wizard::SPEC_EDIT_IGNORED_NOTE), "{}", ready.message);
    let without_conditions =
        |s: RestoreRunStatus| RestoreRunStatus { observed_generation: None, conditions: vec![], ..s };
    assert_eq!(without_conditions(status), without_conditions(done));
    assert_eq!(h.sim.applied_write_count(), writes, "never executed twice");
    let later: Vec<String> = h.event_reasons().await.into_iter().skip(events).collect();
    assert!(!later.is_empty() && later.iter().all(|r| r == reasons::SPEC_CHANGE_IGNORED), "{later:?}");
}

// ---------------------------------------------------------------------------------------------
// Rule 8: no secret in status, events or reports
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rule8_no_secret_in_status_events_or_report_config_maps() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    let report = h.operator_config_maps().await.pop().unwrap();
    let report_text = gunzip(&report.binary_data.as_ref().unwrap()[store::DATA_KEY].0);
    assert!(
        report_text.contains("Office Wi-Fi") && report_text.contains(restore_core::engine::normalize::MASKED),
        "the Wi-Fi profile is in the report, its key masked"
    );
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    let wifi = only_object_named(&h.sim, "deviceManagement/deviceConfigurations", "Office Wi-Fi").unwrap();
    assert_eq!(wifi["preSharedKey"], WIFI_PSK, "the secret was restored to the tenant");

    assert_no_secret("the RestoreRun", &serde_json::to_string(&h.run(RUN).await).unwrap());
    assert_no_secret("the IntuneTenant", &serde_json::to_string(&h.tenants().get(TENANT_NAME).await.unwrap()).unwrap());
    assert_no_secret("status patches", &serde_json::to_string(&*h.status_patches.lock().unwrap()).unwrap());
    assert_no_secret("events", &serde_json::to_string(&h.events().await).unwrap());
    let maps = h.operator_config_maps().await;
    assert_eq!(maps.len(), 2);
    for cm in maps {
        let text = gunzip(&cm.binary_data.as_ref().unwrap()[store::DATA_KEY].0);
        assert_no_secret(&cm.name_any(), &text);
        assert_no_secret(&cm.name_any(), &serde_json::to_string(&cm.metadata).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Rule 9: bad input
// ---------------------------------------------------------------------------------------------

fn corpus(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/backup/tests/malformed").join(name)
}

/// A malformed-corpus folder as ConfigMap `data`.
fn corpus_folder_data(name: &str) -> std::collections::BTreeMap<String, String> {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut std::collections::BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(restore_backup::source::config_map_key(&rel), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(&corpus(name), &corpus(name), &mut out);
    out
}

/// Where a bad-input case's backup comes from.
enum BadSource {
    /// ConfigMap `data` of a native backup folder.
    Files(std::collections::BTreeMap<String, String>),
    /// A `.tar.gz` of the malformed corpus under a `binaryData` key.
    Archive(&'static str),
    /// The good backup (the spec is what is wrong).
    Good,
}

/// One bad input: the run named `name` must fail with `reason` and a message holding `words`.
struct BadInput {
    name: &'static str,
    source: BadSource,
    spec_edit: Value,
    reason: &'static str,
    words: &'static str,
}

#[tokio::test]
async fn rule9_bad_input_fails_with_a_reason_and_writes_nothing() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    let mut tampered = backup_config_map_data(&h.backup);
    let key = tampered.keys().find(|k| k.starts_with("items__deviceConfiguration")).unwrap().clone();
    let edited = tampered[&key].replace("\"passwordMinimumLength\": 8", "\"passwordMinimumLength\": 4");
    assert_ne!(edited, tampered[&key]);
    tampered.insert(key, edited);
    let bad = |name, source, spec_edit, reason, words| BadInput { name, source, spec_edit, reason, words };
    let cases = [
        bad("digest-mismatch", BadSource::Files(tampered), json!({}), reasons::SOURCE_INVALID, "sha256"),
        bad(
            "manifest-invalid",
            BadSource::Files(corpus_folder_data("manifest-invalid-json")),
            json!({}),
            reasons::SOURCE_INVALID,
            "manifest.json",
        ),
        bad("dotdot-path", BadSource::Archive("dotdot-path.tar.gz"), json!({}), reasons::SOURCE_INVALID, ".."),
        bad(
            "decompression-bomb",
            BadSource::Archive("decompression-bomb.tar.gz"),
            json!({}),
            reasons::SOURCE_INVALID,
            "decompression bomb",
        ),
        bad(
            "corrupt-gzip",
            BadSource::Archive("corrupt-gzip.tar.gz"),
            json!({}),
            reasons::SOURCE_INVALID,
            "archive is corrupt",
        ),
        bad(
            "escaping-path",
            BadSource::Good,
            json!({"source": {"configMapRef": {"name": BACKUP_CONFIG_MAP}, "path": "../other"}}),
            reasons::INVALID_SPEC,
            "spec.source.path",
        ),
        bad("bad-ttl", BadSource::Good, json!({"previewTTL": "forever"}), reasons::INVALID_SPEC, "spec.previewTTL"),
        bad("ttl-below-floor", BadSource::Good, json!({"previewTTL": "30s"}), reasons::INVALID_SPEC, "minimum of 1m"),
    ];
    for case in cases {
        let mut run = restore_run_object(case.name, case.name, false, "1h");
        match case.source {
            BadSource::Files(data) => h.put_backup(case.name, data).await,
            BadSource::Archive(file) => {
                let archive = ByteString(std::fs::read(corpus(file)).unwrap());
                let cm = ConfigMap {
                    metadata: ObjectMeta { name: Some(case.name.into()), ..Default::default() },
                    binary_data: Some([("backup.tar.gz".to_string(), archive)].into()),
                    ..Default::default()
                };
                h.config_maps().create(&PostParams::default(), &cm).await.unwrap();
                run["spec"]["source"]["configMapRef"]["key"] = json!("backup.tar.gz");
            }
            BadSource::Good => run["spec"]["source"]["configMapRef"]["name"] = json!(BACKUP_CONFIG_MAP),
        }
        for (k, v) in case.spec_edit.as_object().unwrap() {
            run["spec"][k] = v.clone();
        }
        h.create_run(run).await;
        let status = h.settle_in(case.name, Phase::Failed).await;
        let ready = condition(&status, types::READY);
        let name = case.name;
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, case.reason),
            "{name}: {}",
            ready.message
        );
        assert!(ready.message.contains(case.words), "{name}: {}", ready.message);
        assert!(ready.message.contains("create a new RestoreRun"), "{name}: {}", ready.message);
    }
    assert_eq!(h.sim.applied_write_count(), 0, "no bad input wrote anything");
}

#[tokio::test]
async fn rule9_an_unknown_item_type_is_a_finding_not_a_write() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.put_backup("unknown-type", corpus_folder_data("unknown-type")).await;
    h.create_run(restore_run_object(RUN, "unknown-type", true, "1h")).await;
    let status = h.reconcile_until(RUN, 50, |s| s.checks.is_some() && s.phase != Some(Phase::Checking)).await;
    let checks = status.checks.as_ref().unwrap();
    assert!(
        checks.findings.iter().any(|f| f.code == "UnsupportedType"),
        "the unknown type is reported: {:#?}",
        checks.findings
    );
    assert_eq!(h.writes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Status writes, reports, tenants
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_settled_run_is_not_patched_again() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let patches = h.status_patches.lock().unwrap().len();
    let status = h.status(RUN).await;
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    assert_eq!(h.status_patches.lock().unwrap().len(), patches, "nothing changed, nothing was written");
    assert_eq!(h.status(RUN).await, status);
    // Each status patch is a merge patch of what changed, never the whole status.
    let last = h.status_patches.lock().unwrap().last().cloned().unwrap();
    assert!(last["status"].get("tenant").is_none() && last["status"].get("planInputs").is_none(), "{last}");
}

#[tokio::test]
async fn report_config_maps_are_gzip_chunked_owned_and_labelled() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    let run = h.run(RUN).await;
    // 3 MB that gzip cannot shrink much: several chunks.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: String = (0..3_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let big = serde_json::to_vec(&json!({"noise": noise})).unwrap();
    let api = h.config_maps();
    let first = store::write(&api, &run, Content::Report, &big, "sha256:big").await.unwrap();
    assert_eq!(first, format!("{RUN}-report"));
    let maps = h.operator_config_maps().await;
    assert!(maps.len() >= 2, "{} chunk(s)", maps.len());
    for cm in &maps {
        assert!(cm.binary_data.as_ref().unwrap()[store::DATA_KEY].0.len() <= store::CHUNK_BYTES);
        assert_eq!(cm.owner_references()[0].uid, run.uid().unwrap());
    }
    let (read, digest) = store::read(&api, RUN, &run.uid().unwrap(), Content::Report).await.unwrap().unwrap();
    assert_eq!((read, digest.as_str()), (big, "sha256:big"));

    // A smaller document replaces it and the extra chunks go.
    store::write(&api, &run, Content::Report, b"{\"small\":true}", "sha256:small").await.unwrap();
    assert_eq!(h.operator_config_maps().await.len(), 1);
    let (read, _) = store::read(&api, RUN, &run.uid().unwrap(), Content::Report).await.unwrap().unwrap();
    assert_eq!(read, b"{\"small\":true}");
    assert!(store::read(&api, RUN, &run.uid().unwrap(), Content::Progress).await.unwrap().is_none());
}

#[tokio::test]
async fn a_tenant_is_ready_after_a_token_and_a_read_and_its_secret_is_not_copied() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    let tenant = h.verify_tenant().await;
    let status = tenant.status.clone().unwrap();
    let ready = find(&status.conditions, types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::True, reasons::CREDENTIALS_VERIFIED));
    assert!(status.last_checked.is_some());
    assert_no_secret("the IntuneTenant", &serde_json::to_string(&tenant).unwrap());
    let log = h.sim.request_log();
    assert!(log.iter().any(|r| r.path.contains("oauth2/v2.0/token")), "a token was obtained");
    assert!(log.iter().any(|r| r.method == "GET" && r.path.starts_with("deviceManagement/")), "and one read");
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NAMESPACE);
    assert_eq!(secrets.list(&ListParams::default()).await.unwrap().items.len(), 1, "no Secret was copied");
    let maps = h.config_maps().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(maps.len(), 1, "only the backup ConfigMap");

    // Checked again with nothing new: no status write.
    let patches = h.status_patches.lock().unwrap().len();
    h.verify_tenant().await;
    assert_eq!(h.status_patches.lock().unwrap().len(), patches);
}

#[tokio::test]
async fn finding_4_a_secret_without_the_opt_in_label_is_never_sent_anywhere() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NAMESPACE);
    let unlabel = json!({"metadata": {"labels": {"tenantatlas.io/credentials": null}}});
    secrets.patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&unlabel)).await.unwrap();
    let operator_requests = || h.sim.request_log().iter().filter(|r| r.client_id.as_deref() == Some(CLIENT_ID)).count();
    let before = operator_requests();
    let status = h.verify_tenant().await.status.unwrap();
    let ready = find(&status.conditions, types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, reasons::SECRET_NOT_FOUND));
    assert!(ready.message.contains("tenantatlas.io/credentials"), "{}", ready.message);
    assert_eq!(operator_requests(), before, "nothing was sent with an unlabelled Secret");
}

#[tokio::test]
async fn a_tenant_with_a_wrong_or_missing_secret_is_not_ready_and_says_why() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NAMESPACE);
    let wrong = json!({"data": {"clientSecret": ByteString(b"not-the-secret".to_vec())}});
    secrets.patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&wrong)).await.unwrap();
    let status = h.verify_tenant().await.status.unwrap();
    let ready = find(&status.conditions, types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, reasons::AUTHENTICATION_FAILED));
    assert!(ready.message.contains("fix spec.auth"), "{}", ready.message);
    assert!(!ready.message.contains("not-the-secret"));
    assert_eq!(find(&status.conditions, types::STALLED).map(|c| c.status), Some(ConditionStatus::True));

    secrets.delete(SECRET_NAME, &Default::default()).await.unwrap();
    let status = h.verify_tenant().await.status.unwrap();
    let ready = find(&status.conditions, types::READY).unwrap();
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, reasons::SECRET_NOT_FOUND));
    assert!(ready.message.contains(SECRET_NAME), "{}", ready.message);
}

#[tokio::test]
async fn a_tenant_whose_graph_is_down_is_not_ready_but_not_stalled_and_its_generation_is_observed() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NAMESPACE);
    let secret = |value: &str| json!({"data": {"clientSecret": ByteString(value.as_bytes().to_vec())}});
    secrets.patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&secret("not-the-secret"))).await.unwrap();
    let stalled = h.verify_tenant().await.status.unwrap();
    assert_eq!(find(&stalled.conditions, types::STALLED).map(|c| c.status), Some(ConditionStatus::True));
    // The Secret is mended and the spec edited, but Graph answers nothing but 503 now: an outage
    // is waited out.
    secrets.patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&secret(CLIENT_SECRET))).await.unwrap();
    let edit = json!({"spec": {"displayName": "Contoso Staging (renamed)"}});
    h.tenants().patch(TENANT_NAME, &PatchParams::default(), &Patch::Merge(&edit)).await.unwrap();
    h.sim.set_faults(graph_sim::FaultConfig {
        storm: Some(graph_sim::Storm { status: 503, requests: 100_000, retry_after_secs: None }),
        ..Default::default()
    });
    let tenant = h.verify_tenant().await;
    let status = tenant.status.unwrap();
    assert_ne!(tenant.metadata.generation, stalled.observed_generation, "the edit made a new generation");
    assert_eq!(status.observed_generation, tenant.metadata.generation);
    let ready = find(&status.conditions, types::READY).expect("Ready is kept");
    assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::False, reasons::GRAPH_UNAVAILABLE));
    assert!(find(&status.conditions, types::STALLED).is_none(), "an outage is not a stall: {:?}", status.conditions);
}

#[tokio::test]
async fn a_foreign_config_map_with_the_report_name_is_never_taken_over() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    let foreign: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{RUN}-report"), "namespace": "default"},
        "data": {"owner": "someone else"}
    }))
    .unwrap();
    h.config_maps().create(&Default::default(), &foreign).await.unwrap();
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    for _ in 0..10 {
        h.reconcile_once(RUN).await;
    }
    let status = h.status(RUN).await;
    assert_ne!(status.phase, Some(Phase::Previewed), "no preview is recorded without its report");
    let kept = h.config_maps().get(&format!("{RUN}-report")).await.unwrap();
    assert_eq!(kept.data.unwrap().get("owner").map(String::as_str), Some("someone else"), "left untouched");
    assert!(kept.metadata.owner_references.unwrap_or_default().is_empty(), "not adopted by the run");
    let message = condition(&status, "PreviewReady").message.clone();
    assert!(message.contains("is not this run's"), "{message}");
}

/// Rule 1: what is executed is exactly what was approved. A report ConfigMap edited after the
/// preview (still carrying the approved digest as its label) is refused and nothing is written.
#[tokio::test]
async fn rule1_gate_a_report_edited_after_the_preview_is_never_executed() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let approved = digest(&h.status(RUN).await);
    let (bytes, stored) =
        store::read(&h.config_maps(), RUN, &h.uid(RUN).await, Content::Report).await.unwrap().expect("a report");
    assert_eq!(stored, approved);
    let mut report: Value = serde_json::from_slice(&bytes).unwrap();
    let items = report["items"].as_array_mut().unwrap();
    assert!(!items.is_empty());
    items.pop(); // someone drops an item from the plan by hand
    let run = h.run(RUN).await;
    store::write(&h.config_maps(), &run, Content::Report, &serde_json::to_vec(&report).unwrap(), &approved)
        .await
        .unwrap();

    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &approved)).await;
    let status = h.reconcile_until(RUN, 50, |s| s.phase.is_some_and(Phase::is_terminal)).await;
    assert_eq!(status.phase, Some(Phase::Failed), "{:#?}", status.conditions);
    let executed = condition(&status, types::EXECUTED);
    assert!(executed.message.contains("does not match the approved digest"), "{}", executed.message);
    assert_eq!(h.writes(), 0, "no write from an edited report");
}

// ---------------------------------------------------------------------------------------------
// DESIGN §2 rules 10, 11 and 14: the trust-boundary findings, one test each
// ---------------------------------------------------------------------------------------------

/// A run approved and executing, `steps` steps done, one step per reconcile.
async fn executing(steps: u32) -> Harness {
    let h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    h.reconcile_until(RUN, 60, |s| s.execution.as_ref().is_some_and(|e| e.completed_steps >= steps)).await;
    h
}

/// The operator's Graph writes whose path names `id`.
fn writes_to(sim: &graph_sim::SimHandle, id: &str) -> Vec<String> {
    operator_writes(sim).into_iter().map(|w| w.path).filter(|p| p.contains(id)).collect()
}

#[tokio::test]
async fn finding_1_a_forged_progress_record_never_steers_a_write() {
    let mut h = executing(3).await;
    let unrelated = create_by_hand(&h.sim, "Unrelated production policy").await;
    let unrelated_id = unrelated["id"].as_str().unwrap().to_string();
    // Someone with ConfigMap write rewrites the record as the operator would have written it
    // (owned by the run, the operator's field manager, the approved digest): every create points at
    // the unrelated policy, and steps never run are marked done.
    let run = h.run(RUN).await;
    let (bytes, digest) =
        store::read(&h.config_maps(), RUN, &h.uid(RUN).await, Content::Progress).await.unwrap().unwrap();
    let mut forged: ProgressRecord = serde_json::from_slice(&bytes).unwrap();
    for step in &mut forged.steps {
        if step.created_id.is_some() {
            step.created_id = Some(unrelated_id.clone());
        }
    }
    store::write(&h.config_maps(), &run, Content::Progress, &serde_json::to_vec(&forged).unwrap(), &digest)
        .await
        .unwrap();
    h.restart_controller();
    let status = h.settle_in(RUN, Phase::Succeeded).await;
    assert_eq!(writes_to(&h.sim, &unrelated_id), Vec::<String>::new(), "nothing was written to the unrelated policy");
    assert_eq!(status.execution.as_ref().unwrap().counts.problems(), 0);
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
    assert_eq!(creates(&h.sim).len(), h.backup.items.len(), "no duplicate");
}

#[tokio::test]
async fn finding_1_a_progress_record_marking_every_step_done_writes_nothing_wrong_and_finishes_the_real_plan() {
    let mut h = executing(2).await;
    let run = h.run(RUN).await;
    let (bytes, digest) =
        store::read(&h.config_maps(), RUN, &h.uid(RUN).await, Content::Progress).await.unwrap().unwrap();
    let mut forged: ProgressRecord = serde_json::from_slice(&bytes).unwrap();
    let first = forged.steps[0].clone();
    // Every remaining step "done" (copies of a real record with other step ids are refused too).
    for i in 0..40 {
        forged.steps.push(StepRecord { step: format!("{}-{i}", first.step), ..first.clone() });
    }
    store::write(&h.config_maps(), &run, Content::Progress, &serde_json::to_vec(&forged).unwrap(), &digest)
        .await
        .unwrap();
    h.restart_controller();
    h.settle_in(RUN, Phase::Succeeded).await;
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

#[tokio::test]
async fn finding_1_records_not_owned_by_the_run_or_with_a_duplicate_chunk_are_refused() {
    let h = executing(1).await;
    let uid = h.uid(RUN).await;
    let labels =
        [(store::RUN_LABEL.to_string(), RUN.to_string()), (store::KIND_LABEL.to_string(), "progress".to_string())];
    let forged = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{RUN}-progress-7")),
            labels: Some(labels.into()),
            annotations: Some([(store::CHUNK_ANNOTATION.to_string(), "0/1".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    h.config_maps().create(&PostParams::default(), &forged).await.unwrap();
    let refused = store::read(&h.config_maps(), RUN, &uid, Content::Progress).await.unwrap_err();
    assert!(matches!(refused, store::StoreError::Untrusted { .. }), "{refused}");
    // Owned by the run this time (an owner reference names a public uid): the chunk index repeats.
    let run = h.run(RUN).await;
    let mut owned = forged.clone();
    owned.metadata.owner_references = Some(vec![run.controller_owner_ref(&()).unwrap()]);
    h.config_maps().replace(&format!("{RUN}-progress-7"), &PostParams::default(), &owned).await.unwrap();
    let refused = store::read(&h.config_maps(), RUN, &uid, Content::Progress).await.unwrap_err();
    assert!(refused.to_string().contains("stored twice"), "{refused}");
}

/// Bytes gzip cannot shrink (xorshift): a document of `len` of them takes `len / CHUNK_BYTES + 1` chunks.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The emulator with the CRDs (its apply checks names as the API server does), and its RestoreRun
/// and ConfigMap APIs in `default`.
async fn records_on_the_emulator() -> (kube_emulator::EmulatorHandle, Api<RestoreRun>, Api<ConfigMap>) {
    let emulator = kube_emulator::Emulator::start(kube_emulator::EmulatorConfig::default()).await.expect("emulator");
    emulator.load_crds_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")).expect("crds");
    let client = emulator.client().expect("client");
    (emulator, Api::namespaced(client.clone(), "default"), Api::namespaced(client, "default"))
}

/// Creates a RestoreRun named `name` through `runs`.
async fn new_run(runs: &Api<RestoreRun>, name: &str) -> RestoreRun {
    let manifest: RestoreRun = serde_json::from_value(json!({"apiVersion": "tenantatlas.io/v1alpha1", "kind": "RestoreRun",
        "metadata": {"name": name}, "spec": {"tenantRef": {"name": "contoso"}, "source": {"configMapRef": {"name": "backup"}}}}))
    .expect("a run");
    runs.create(&PostParams::default(), &manifest).await.expect("run")
}

/// A record written on the emulator (whose apply checks names as the API server does): each chunk
/// is named, labelled and owned by its run, read back whole, and rewritten by that run alone. A
/// ConfigMap planted under a run's record name is refused and left as it is, and a rewrite into
/// fewer chunks removes only the run's own extra chunks.
#[tokio::test]
async fn finding_1_a_record_is_written_as_its_runs_own_and_a_planted_one_is_neither_overwritten_nor_removed() {
    let (_emulator, runs, config_maps) = records_on_the_emulator().await;
    let run = new_run(&runs, "own").await;
    let uid = run.uid().expect("uid");
    let labels = |name: &str| json!({store::RUN_LABEL: name, store::KIND_LABEL: Content::Report.label()});
    let large = incompressible(store::CHUNK_BYTES + 1024);
    let first = store::write(&config_maps, &run, Content::Report, &large, "sha256:large").await.expect("write");
    assert_eq!(first, "own-report");
    for (name, index) in [("own-report", "0/2"), ("own-report-1", "1/2")] {
        let cm = config_maps.get(name).await.expect("a chunk");
        assert_eq!(cm.labels().get(store::RUN_LABEL).map(String::as_str), Some("own"), "{name}");
        assert_eq!(cm.labels().get(store::KIND_LABEL).map(String::as_str), Some("report"), "{name}");
        assert_eq!(cm.annotations().get(store::CHUNK_ANNOTATION).map(String::as_str), Some(index), "{name}");
        assert_eq!(store::distrust(&cm, &uid), None, "{name}: owned by the run, written by this controller");
    }
    let read = store::read(&config_maps, "own", &uid, Content::Report).await.expect("read");
    assert_eq!(read, Some((large, "sha256:large".to_string())));

    // Labelled as the run's extra chunk but owned by nobody: a rewrite leaves it alone, and a read
    // refuses the record while it is there.
    let stray: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "stray", "labels": labels("own")}})).unwrap();
    config_maps.create(&PostParams::default(), &stray).await.expect("stray");
    let small = br#"{"items":[]}"#.to_vec();
    store::write(&config_maps, &run, Content::Report, &small, "sha256:small").await.expect("a rewrite by the run");
    assert!(config_maps.get_opt("own-report-1").await.unwrap().is_none(), "the run's extra chunk is removed");
    assert!(config_maps.get_opt("stray").await.unwrap().is_some(), "what the run does not own stays");
    let refused = store::read(&config_maps, "own", &uid, Content::Report).await.unwrap_err();
    assert!(matches!(&refused, store::StoreError::Untrusted { name, .. } if name == "stray"), "{refused}");
    config_maps.delete("stray", &Default::default()).await.expect("delete");
    let read = store::read(&config_maps, "own", &uid, Content::Report).await.expect("read");
    assert_eq!(read, Some((small, "sha256:small".to_string())));

    // Planted under a second run's record name before it wrote: labelled as its own, not owned.
    let other = new_run(&runs, "other").await;
    let planted: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "other-report", "labels": labels("other")},
        "data": {"planted": "yes"}}))
        .unwrap();
    config_maps.create(&PostParams::default(), &planted).await.expect("planted");
    let refused = store::write(&config_maps, &other, Content::Report, b"{}", "sha256:other").await.unwrap_err();
    assert!(matches!(&refused, store::StoreError::Foreign { name } if name == "other-report"), "{refused}");
    let left = config_maps.get("other-report").await.expect("still there");
    assert_eq!(left.data.unwrap_or_default().get("planted").map(String::as_str), Some("yes"), "left as it was");
}

/// A record whose chunks do not make one whole write — one missing (a write cut short), one whose
/// index skips, chunks of two writes — is neither read nor taken as already stored (the report is
/// then written again), even when every chunk is owned by the run and written under this
/// controller's field manager (a name any client can send).
#[tokio::test]
async fn finding_1_a_record_that_is_not_one_whole_write_is_neither_read_nor_taken_as_stored() {
    let (_emulator, runs, config_maps) = records_on_the_emulator().await;
    let run = new_run(&runs, "own").await;
    let uid = run.uid().expect("uid");
    let as_this_controller =
        PatchParams { field_manager: Some(restore_operator::kube::FIELD_MANAGER.into()), ..Default::default() };
    let annotate = |name: &'static str, key: &'static str, value: &'static str| {
        let config_maps = config_maps.clone();
        let params = as_this_controller.clone();
        async move {
            let patch = json!({"metadata": {"annotations": {key: value}}});
            config_maps.patch(name, &params, &Patch::Merge(&patch)).await.expect("annotate");
        }
    };
    let two_chunks = incompressible(store::CHUNK_BYTES + 1024);
    let rewrite = || store::write(&config_maps, &run, Content::Report, &two_chunks, "sha256:a");

    rewrite().await.expect("write");
    assert_eq!(store::stored_digest(&config_maps, "own", Content::Report).await.unwrap().as_deref(), Some("sha256:a"));

    config_maps.delete("own-report-1", &Default::default()).await.expect("delete");
    assert_eq!(store::stored_digest(&config_maps, "own", Content::Report).await.unwrap(), None, "a chunk missing");
    let refused = store::read(&config_maps, "own", &uid, Content::Report).await.unwrap_err();
    assert!(refused.to_string().contains("1 of 2 chunks present"), "{refused}");

    rewrite().await.expect("write");
    annotate("own-report", store::DIGEST_ANNOTATION, "sha256:b").await;
    assert_eq!(store::stored_digest(&config_maps, "own", Content::Report).await.unwrap(), None, "two writes' chunks");
    let refused = store::read(&config_maps, "own", &uid, Content::Report).await.unwrap_err();
    assert!(refused.to_string().contains("different digests"), "{refused}");

    rewrite().await.expect("write");
    annotate("own-report-1", store::CHUNK_ANNOTATION, "2/2").await;
    assert_eq!(store::stored_digest(&config_maps, "own", Content::Report).await.unwrap(), None, "an index skips");
    let refused = store::read(&config_maps, "own", &uid, Content::Report).await.unwrap_err();
    assert!(refused.to_string().contains("2 of 2 chunks present"), "{refused}");
}

#[tokio::test]
async fn finding_2_the_plugin_shows_a_progress_record_only_as_far_as_status_vouches_for_it() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let approved = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &approved)).await;
    let done = h.settle_in(RUN, Phase::Succeeded).await;
    let (run, execution) = (h.run(RUN).await, done.execution.clone().unwrap());
    let shown = store::read_verified_progress(&h.config_maps(), &run, &approved, &execution).await.unwrap().unwrap();
    assert_eq!(shown.steps.len(), execution.completed_steps as usize, "the operator's own record is shown");
    // Steps added after what status vouches for are left out.
    let mut longer = shown.clone();
    longer.steps.push(StepRecord {
        step: "create:x/1".into(),
        item: "x/1".into(),
        status: restore_core::engine::execute::StepStatus::Written,
        created_id: None,
        message: None,
    });
    store::write(&h.config_maps(), &run, Content::Progress, &serde_json::to_vec(&longer).unwrap(), &approved)
        .await
        .unwrap();
    let cut = store::read_verified_progress(&h.config_maps(), &run, &approved, &execution).await.unwrap().unwrap();
    assert_eq!(cut.steps, shown.steps);
    // A rewritten step (an outcome the approver would read) is refused.
    let mut rewritten = shown.clone();
    rewritten.steps[0].status = restore_core::engine::execute::StepStatus::Failed;
    rewritten.steps[0].message = Some("forged".into());
    store::write(&h.config_maps(), &run, Content::Progress, &serde_json::to_vec(&rewritten).unwrap(), &approved)
        .await
        .unwrap();
    let refused = store::read_verified_progress(&h.config_maps(), &run, &approved, &execution).await.unwrap_err();
    assert!(refused.to_string().contains("do not extend what status vouches for"), "{refused}");
    // A record of another preview is refused.
    let other = ProgressRecord { preview_digest: "sha256:other".into(), ..shown };
    store::write(&h.config_maps(), &run, Content::Progress, &serde_json::to_vec(&other).unwrap(), &approved)
        .await
        .unwrap();
    let refused = store::read_verified_progress(&h.config_maps(), &run, &approved, &execution).await.unwrap_err();
    assert!(refused.to_string().contains("not the approved"), "{refused}");
}

#[tokio::test]
async fn finding_2_a_report_edited_after_the_preview_is_neither_shown_nor_executed() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let status = h.status(RUN).await;
    let run = h.run(RUN).await;
    let shown = store::read_verified_report(&h.config_maps(), &run, &digest(&status)).await.unwrap();
    assert!(shown.is_some(), "the operator's own report is shown");
    // Only what the approver reads changes: a name and a diff; the planned states stay.
    let mut report = shown.unwrap();
    report.items[1].display_name = "Set wallpaper".into();
    report.items[1].diff = "+ Write-Host hello".into();
    store::write(&h.config_maps(), &run, Content::Report, &serde_json::to_vec(&report).unwrap(), &digest(&status))
        .await
        .unwrap();
    let refused = store::read_verified_report(&h.config_maps(), &run, &digest(&status)).await.unwrap_err();
    assert!(refused.to_string().contains("does not have the preview digest"), "{refused}");
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&status))).await;
    let failed = h.settle_in(RUN, Phase::Failed).await;
    assert!(condition(&failed, types::READY).message.contains("does not match the approved digest"));
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn finding_3_withdrawing_the_approval_stops_writes_within_one_write() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    // While one reconcile writes, the approver withdraws: dryRun back to true, no confirmation.
    let runs = h.runs();
    let withdraw = async {
        while operator_writes(&h.sim).len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let patch = json!({"spec": {"dryRun": true, "confirmation": null}});
        runs.patch(RUN, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        operator_writes(&h.sim).len()
    };
    let ((), at_withdrawal) = tokio::join!(h.reconcile_once(RUN), withdraw);
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    let written = h.writes();
    assert!(written <= at_withdrawal + 1, "{written} writes, {at_withdrawal} when the approval was withdrawn");
    assert!(written < expected_writes(&h.backup), "the run did not go on to the end");
    let status = h.status(RUN).await;
    assert_eq!(condition(&status, types::EXECUTED).reason, reasons::EXECUTION_PAUSED);
}

#[tokio::test]
async fn finding_4_a_plan_edit_during_execution_has_no_effect_across_restarts() {
    let mut h = executing(3).await;
    // Another backup, no assignments, skip existing objects: none of it may reach this execution.
    h.patch_spec(
        RUN,
        &json!({"spec": {"source": {"configMapRef": {"name": "no-such-backup"}},
            "scope": {"assignments": "skip"}, "existingObjects": "skip"}}),
    )
    .await;
    h.reconcile_once(RUN).await;
    assert_eq!(condition(&h.status(RUN).await, types::EXECUTED).reason, reasons::SPEC_CHANGE_IGNORED);
    h.restart_controller();
    let status = h.settle_in(RUN, Phase::Succeeded).await;
    assert_eq!(status.execution.as_ref().unwrap().counts.problems(), 0, "{:?}", status.execution);
    assert_eq!(assigns(&h.sim), expected_writes(&h.backup) - h.backup.items.len(), "assignments as approved");
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

#[tokio::test]
async fn finding_5_blockers_found_by_the_approval_re_read_stop_the_run() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    // After the preview, a second group named like an assigned one appears.
    h.sim.add_group(TENANT_ID, GROUP_ALL).unwrap();
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let status = h.settle_in(RUN, Phase::Blocked).await;
    assert!(status.checks.as_ref().unwrap().blockers > 0);
    assert!(status.confirmation.is_none());
    assert_ne!(condition(&status, types::CONFIRMED).status, ConditionStatus::True);
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn finding_6_two_approved_runs_on_one_tenant_execute_one_after_the_other() {
    let h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    h.create_run(restore_run_object("restore-2", BACKUP_CONFIG_MAP, true, "1h")).await;
    h.settle_in("restore-2", Phase::Previewed).await;
    for name in [RUN, "restore-2"] {
        let preview = digest(&h.status(name).await);
        h.patch_spec(name, &approval_patch(TENANT_LABEL, &preview)).await;
    }
    // Both approvals are accepted before either run writes.
    h.settle_in(RUN, Phase::Executing).await;
    h.settle_in("restore-2", Phase::Executing).await;
    h.reconcile_until(RUN, 20, |s| s.execution.as_ref().is_some_and(|e| e.completed_steps >= 1)).await;
    let second = h
        .reconcile_until("restore-2", 20, |s| {
            find(&s.conditions, types::RECONCILING).is_some_and(|c| c.reason == reasons::TENANT_BUSY)
        })
        .await;
    assert!(condition(&second, types::RECONCILING).message.contains(&format!("{NAMESPACE}/{RUN}")));
    assert_eq!(second.execution.as_ref().map_or(0, |e| e.completed_steps), 0, "the second run wrote nothing");
    h.settle_in(RUN, Phase::Succeeded).await;
    h.settle_in("restore-2", Phase::Succeeded).await;
    assert_eq!(creates(&h.sim).len(), h.backup.items.len(), "no object was created twice");
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

#[tokio::test]
async fn finding_7_an_object_someone_else_created_after_approval_is_not_adopted() {
    let h = executing(1).await;
    // Same name and properties as a planned create, but assigned to another group.
    let item = h.backup.items.iter().find(|i| i.display_name == baseline_name(1)).unwrap();
    let mut body = item.resource.clone();
    for key in ["id", "createdDateTime", "lastModifiedDateTime", "version", "supportsScopeTags"] {
        body.as_object_mut().unwrap().remove(key);
    }
    let admin = admin_graph(&h.sim);
    let foreign =
        restore_core::tenant::TenantPort::create(&admin, "deviceManagement/deviceConfigurations", &body).await.unwrap();
    let foreign_id = foreign["id"].as_str().unwrap().to_string();
    let pilot = h.sim.group_ids(TENANT_ID, GROUP_PILOT).unwrap().remove(0);
    let assignment = json!({"assignments": [{"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": pilot}}]});
    restore_core::tenant::TenantPort::action(
        &admin,
        &format!("deviceManagement/deviceConfigurations/{foreign_id}/assign"),
        &assignment,
    )
    .await
    .unwrap();
    let status = h.settle_in(RUN, Phase::PartiallySucceeded).await;
    let execution = status.execution.unwrap();
    assert_eq!(execution.counts.drifted, 1);
    assert!(execution.results.iter().any(|r| r.outcome == ItemOutcome::Drifted), "{:?}", execution.results);
    assert_eq!(writes_to(&h.sim, &foreign_id), Vec::<String>::new(), "its assignments were left alone");
}

#[tokio::test]
async fn finding_9_a_replica_that_does_not_hold_the_lease_writes_nothing() {
    let mut h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    lease_held_by(&h, "replica-b").await;
    let fence = LeaderFence::new(h.client.clone(), NAMESPACE, "restore-operator", "replica-a", Arc::new(true.into()));
    h.ctx = Arc::new(
        Context::new(h.client.clone(), test_fetcher(), fast_graph_options(), h.options.clone()).with_fence(fence),
    );
    let patches = h.status_patches.lock().unwrap().len();
    let run = h.run(RUN).await;
    let refused = restorerun::reconcile(Arc::new(run), h.ctx.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("replica-b"), "{refused}");
    assert_eq!(h.status_patches.lock().unwrap().len(), patches, "no status write");
    assert_eq!(h.writes(), 0, "no tenant write");
}

/// A leader Lease held by `holder`, renewed now for 15 s.
async fn lease_held_by(h: &Harness, holder: &str) {
    let leases: Api<Lease> = Api::namespaced(h.client.clone(), NAMESPACE);
    let lease = Lease {
        metadata: ObjectMeta { name: Some("restore-operator".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..Default::default()
        }),
    };
    leases.create(&PostParams::default(), &lease).await.unwrap();
}

#[tokio::test]
async fn finding_9_a_replica_deposed_while_its_write_is_retried_does_not_send_it_again() {
    let mut h = Harness::start(TenantSetup::default(), options_one_step_per_reconcile()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    lease_held_by(&h, "replica-a").await;
    let leading = Arc::new(AtomicBool::new(true));
    let fence = LeaderFence::new(h.client.clone(), NAMESPACE, "restore-operator", "replica-a", leading.clone());
    h.ctx = Arc::new(
        Context::new(h.client.clone(), test_fetcher(), fast_graph_options(), h.options.clone()).with_fence(fence),
    );
    // The first status write is answered 409 Conflict, and this replica loses the Lease meanwhile.
    *h.depose_at_next_status_patch.lock().unwrap() = Some(leading);
    let sent = h.status_patches.lock().unwrap().len();
    let refused = restorerun::reconcile(Arc::new(h.run(RUN).await), h.ctx.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("leadership was lost"), "{refused}");
    assert_eq!(h.status_patches.lock().unwrap().len(), sent + 1, "the conflicted write was not sent again");
}

#[tokio::test]
async fn finding_9_a_replica_that_does_not_hold_the_lease_records_no_tenant_verdict() {
    let mut h = Harness::start(TenantSetup::default(), options_one_step_per_reconcile()).await;
    lease_held_by(&h, "replica-b").await;
    let fence = LeaderFence::new(h.client.clone(), NAMESPACE, "restore-operator", "replica-a", Arc::new(true.into()));
    h.ctx = Arc::new(
        Context::new(h.client.clone(), test_fetcher(), fast_graph_options(), h.options.clone()).with_fence(fence),
    );
    let tenant = h.tenants().get(TENANT_NAME).await.unwrap();
    let refused = tenant::reconcile(Arc::new(tenant), h.ctx.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("replica-b"), "{refused}");
    assert!(h.patch_managers.lock().unwrap().iter().all(|(name, _)| name != TENANT_NAME), "no status write");
    assert!(h.tenants().get(TENANT_NAME).await.unwrap().status.is_none());
}

#[tokio::test]
async fn finding_9_a_replica_that_does_not_hold_the_lease_records_no_runs_end() {
    let mut h = executing(1).await;
    lease_held_by(&h, "replica-a").await;
    let fence = LeaderFence::new(h.client.clone(), NAMESPACE, "restore-operator", "replica-a", Arc::new(true.into()));
    h.ctx = Arc::new(
        Context::new(h.client.clone(), test_fetcher(), fast_graph_options(), h.options.clone()).with_fence(fence),
    );
    h.settle_in(RUN, Phase::Succeeded).await;
    let run = h.run(RUN).await;
    // As when the leader's last reconcile of the run was cut short: terminal, the finalizer still
    // on, no audit record yet. Then the Lease changes hands before the run's end is recorded.
    h.config_maps().delete(&audit::record_name(&run), &Default::default()).await.unwrap();
    h.patch_spec(RUN, &json!({"metadata": {"finalizers": [restorerun::FINALIZER]}})).await;
    // The fake API server counts a metadata change as a new generation: the status observes it, so
    // the reconcile has no status of its own to write.
    let generation = h.run(RUN).await.metadata.generation;
    let mut status = serde_json::to_value(h.status(RUN).await).unwrap();
    status["observedGeneration"] = json!(generation);
    for condition in status["conditions"].as_array_mut().unwrap() {
        condition["observedGeneration"] = json!(generation);
    }
    let observed = json!({ "status": status });
    let params = PatchParams { field_manager: Some(PERSON.into()), ..PatchParams::default() };
    h.runs().patch_status(RUN, &params, &Patch::Merge(&observed)).await.unwrap();
    let leases: Api<Lease> = Api::namespaced(h.client.clone(), NAMESPACE);
    let mut taken = leases.get("restore-operator").await.unwrap();
    taken.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    *h.read_as.lock().unwrap() = Some(("restore-operator".to_string(), serde_json::to_value(&taken).unwrap()));
    let refused = restorerun::reconcile(Arc::new(h.run(RUN).await), h.ctx.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("replica-b"), "{refused}");
    assert!(h.read_as.lock().unwrap().is_none(), "the Lease was read before the run's end was recorded");
    assert!(h.config_maps().get_opt(&audit::record_name(&run)).await.unwrap().is_none(), "no audit record");
    assert_eq!(h.run(RUN).await.finalizers(), [restorerun::FINALIZER.to_string()], "the finalizer stays");
}

#[tokio::test]
async fn finding_10_a_run_marked_for_deletion_after_its_reconcile_began_writes_nothing_more_to_the_tenant() {
    let h = executing(1).await;
    let run = h.run(RUN).await;
    let writes = h.writes();
    // The API server marks the run deleted after this reconcile's copy of it was read.
    let mut marked = run.clone();
    marked.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
    *h.read_as.lock().unwrap() = Some((RUN.to_string(), serde_json::to_value(&marked).unwrap()));
    restorerun::reconcile(Arc::new(run), h.ctx.clone()).await.expect("the reconcile ends as for a deleted run");
    assert!(h.read_as.lock().unwrap().is_none(), "the run was read fresh before the write");
    assert_eq!(h.writes(), writes, "the write waiting for clearance was not sent");
}

#[tokio::test]
async fn every_patch_the_controllers_send_names_the_operator_as_its_field_manager() {
    let h = executing(1).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    let managers = h.patch_managers.lock().unwrap().clone();
    let operators: Vec<_> = managers.iter().filter(|(_, m)| m.as_deref() != Some(PERSON)).collect();
    for object in [RUN, TENANT_NAME] {
        assert!(operators.iter().any(|(name, _)| name == object), "the controllers patched {object}: {managers:?}");
    }
    for (name, manager) in operators {
        assert_eq!(manager.as_deref(), Some(restore_operator::kube::FIELD_MANAGER), "the patch of {name}");
    }
}

#[tokio::test]
async fn finding_10_an_execution_cut_by_deletion_is_recorded_and_the_record_outlives_the_run() {
    let h = executing(2).await;
    let run = h.run(RUN).await;
    assert!(run.finalizers().iter().any(|f| f == restorerun::FINALIZER), "an executing run carries the finalizer");
    let writes = h.writes();
    // The API server marks the run deleted; the finalizer holds it until the cut is recorded.
    let mut deleting = run.clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
    restorerun::reconcile(Arc::new(deleting), h.ctx.clone()).await.unwrap();
    assert_eq!(h.writes(), writes, "nothing more was written");
    assert!(!h.run(RUN).await.finalizers().iter().any(|f| f == restorerun::FINALIZER), "the finalizer is gone");
    let record = h.config_maps().get(&audit::record_name(&run)).await.expect("an audit record");
    assert!(record.owner_references().is_empty(), "not owned by the run: it outlives it");
    let body: Value = serde_json::from_str(&record.data.clone().unwrap()[audit::AUDIT_KEY]).unwrap();
    assert_eq!(body["ending"], "CutByDeletion");
    assert_eq!(body["execution"]["completedSteps"].as_u64(), Some(2));
    assert!(h.event_reasons().await.contains(&reasons::EXECUTION_CUT.to_string()));
    assert!(record.annotations().contains_key(audit::EXPIRES_ANNOTATION));
}

#[tokio::test]
async fn finding_10_a_finished_execution_leaves_an_audit_record_and_no_finalizer() {
    let h = executing(1).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    let run = h.run(RUN).await;
    assert!(run.finalizers().is_empty(), "a finished run is deleted at once");
    let record = h.config_maps().get(&audit::record_name(&run)).await.expect("an audit record");
    let body: Value = serde_json::from_str(&record.data.unwrap()[audit::AUDIT_KEY]).unwrap();
    assert_eq!(body["ending"], "Finished");
    assert_eq!(body["confirmation"]["approvedBy"], "alice@contoso.com");
    // Past its retention the sweep removes it.
    let later = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * 91)).unwrap();
    assert_eq!(audit::sweep(&h.config_maps(), later).await.unwrap(), 1);
}

#[tokio::test]
async fn finding_11_a_source_applied_after_the_run_is_waited_for() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, "applied-later", true, "1h")).await;
    let waiting = h
        .reconcile_until(RUN, 5, |s| {
            find(&s.conditions, types::SOURCE_RESOLVED).is_some_and(|c| c.reason == reasons::SOURCE_NOT_FOUND)
        })
        .await;
    assert_eq!(waiting.phase, Some(Phase::ResolvingSource));
    assert_condition(&waiting, types::RECONCILING, ConditionStatus::True, reasons::SOURCE_NOT_FOUND);
    h.put_backup("applied-later", backup_config_map_data(&h.backup)).await;
    h.settle_in(RUN, Phase::Previewed).await;
}

/// An expired claim on `tenant`, left by a run that crashed ten minutes ago.
fn expired_claim(tenant: &str) -> Lease {
    let renewed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
    Lease {
        metadata: ObjectMeta { name: Some(tenant_lock::lock_name(tenant)), ..ObjectMeta::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some("intune/crashed/uid-0".into()),
            lease_duration_seconds: Some(tenant_lock::LOCK_SECONDS),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }),
    }
}

#[tokio::test]
async fn finding_6_two_claimants_that_read_the_same_lease_cannot_both_hold_the_tenant() {
    let emulator = kube_emulator::Emulator::start(kube_emulator::EmulatorConfig::default()).await.expect("emulator");
    let leases: Api<Lease> = Api::namespaced(emulator.client().expect("client"), "default");
    for (tenant, left_behind) in [("tenant-fresh", None), ("tenant-expired", Some(expired_claim("tenant-expired")))] {
        if let Some(lease) = &left_behind {
            leases.create(&PostParams::default(), lease).await.expect("the crashed run's claim");
        }
        let late = tenant_lock::read_claim(&leases, tenant, "intune/late/uid-b").await.expect("read");
        assert!(matches!(late, tenant_lock::ClaimAttempt::Write { .. }), "{tenant}: a free tenant is claimable");
        let first = tenant_lock::claim(&leases, tenant, "intune/first/uid-a").await.expect("claim");
        assert_eq!(first, tenant_lock::Claim::Held, "{tenant}");
        let second = tenant_lock::write_claim(&leases, late).await.expect("write");
        assert!(matches!(second, tenant_lock::Claim::Busy(_)), "{tenant}: the stale claim must lose, got {second:?}");
        let lease = leases.get(&tenant_lock::lock_name(tenant)).await.expect("lease");
        let spec = lease.spec.clone().unwrap_or_default();
        assert_eq!(spec.holder_identity.as_deref(), Some("intune/first/uid-a"), "{tenant}");
        assert_eq!(spec.lease_duration_seconds, Some(tenant_lock::LOCK_SECONDS), "{tenant}: says how long it lasts");
        assert_eq!(lease.labels().get("app.kubernetes.io/managed-by").map(String::as_str), Some("restore-operator"));
        let busy = tenant_lock::claim(&leases, tenant, "intune/late/uid-b").await.expect("claim");
        assert_eq!(busy, tenant_lock::Claim::Busy("intune/first".into()), "{tenant}: names the holder");
    }
}

#[tokio::test]
async fn finding_6_a_claim_lasts_as_long_as_its_lease_says() {
    let emulator = kube_emulator::Emulator::start(kube_emulator::EmulatorConfig::default()).await.expect("emulator");
    let leases: Api<Lease> = Api::namespaced(emulator.client().expect("client"), "default");
    let mut long = expired_claim("tenant-long");
    if let Some(spec) = long.spec.as_mut() {
        spec.lease_duration_seconds = Some(3600);
    }
    leases.create(&PostParams::default(), &long).await.expect("a claim for an hour");
    let claim = tenant_lock::claim(&leases, "tenant-long", "intune/late/uid-b").await.expect("claim");
    assert_eq!(claim, tenant_lock::Claim::Busy("intune/crashed".into()), "renewed 10 min ago, lasts an hour");
}

#[test]
fn finding_6_every_client_of_one_entra_tenant_shares_one_write_budget() {
    let budgets = restore_graph::WriteBudgets::default();
    assert!(budgets.shares("6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b", "6F1E2D3C-4B5A-4978-8A9B-0C1D2E3F4A5B"));
    assert!(!budgets.shares("6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b", "0b1c2d3e-0000-4000-8000-00000000b4c0"));
}

#[tokio::test]
async fn finding_8_a_failing_approval_re_read_is_retried_with_backoff_not_in_a_loop() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.sim.set_faults(graph_sim::FaultConfig {
        storm: Some(graph_sim::Storm { status: 503, requests: 100_000, retry_after_secs: None }),
        ..Default::default()
    });
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let before = h.sim.request_log().len();
    let run = h.run(RUN).await;
    let action = restorerun::reconcile(Arc::new(run), h.ctx.clone()).await.unwrap();
    let requests = h.sim.request_log().len() - before;
    // One re-read attempt (with the client's own few retries), then a wait of 30 s or more.
    assert!(requests < 40, "{requests} Graph requests in one reconcile");
    // `Action` shows its delay only through Debug: `Action { requeue_after: Some(29.7s) }`.
    let shown = format!("{action:?}");
    let seconds: f64 = shown.split("Some(").nth(1).and_then(|t| t.split('s').next()).unwrap().parse().unwrap();
    assert!((28.0..=30.0).contains(&seconds), "waits about 30 s: {shown}");
    // The reconciles its own status write wakes at once (a watch event) make no request at all.
    let before_woken = h.sim.request_log().len();
    for _ in 0..5 {
        let run = h.run(RUN).await;
        restorerun::reconcile(Arc::new(run), h.ctx.clone()).await.unwrap();
    }
    assert_eq!(h.sim.request_log().len(), before_woken, "no Graph request before the retry time");
    let status = h.status(RUN).await;
    assert_eq!(status.failed_attempts, Some(1));
    assert_eq!(status.phase, Some(Phase::AwaitingConfirmation));
    assert!(status.confirmation.is_none() && h.writes() == 0);
}

#[tokio::test]
async fn finding_12_a_spec_edit_on_a_finished_run_is_observed_and_announced() {
    let h = executing(1).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    h.patch_spec(RUN, &json!({"spec": {"scope": {"assignments": "skip"}}})).await;
    h.reconcile_once(RUN).await;
    let run = h.run(RUN).await;
    let status = run.status.clone().unwrap();
    assert_eq!(status.observed_generation, run.metadata.generation);
    assert!(status.conditions.iter().all(|c| c.observed_generation == run.metadata.generation));
    let ready = condition(&status, types::READY);
    assert_eq!(ready.status, ConditionStatus::True, "kubectl wait --for=condition=Ready ends");
    assert!(ready.message.contains(restore_core::wizard::SPEC_EDIT_IGNORED_NOTE), "{}", ready.message);
    assert_eq!(h.event_reasons().await.last().map(String::as_str), Some(reasons::SPEC_CHANGE_IGNORED));
}

// ---------------------------------------------------------------------------------------------
// Cost by tenant, not by run (issue 17)
// ---------------------------------------------------------------------------------------------

/// Graph requests the simulator has seen so far.
fn graph_requests(h: &Harness) -> usize {
    h.sim.request_log().len()
}

/// Events about the run `name`.
async fn events_of(h: &Harness, name: &str) -> Vec<String> {
    h.events()
        .await
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn cost_a_preview_is_two_status_patches_and_two_events_and_its_own_writes_read_nothing_more() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")).await;
    h.reconcile_once(RUN).await;
    assert_eq!(h.status(RUN).await.phase, Some(Phase::AwaitingConfirmation));
    assert_eq!(h.phases_written_since(0), ["ResolvingSource", "AwaitingConfirmation"], "picked up, then at rest");
    assert_eq!(events_of(&h, RUN).await, ["ResolvingSource", "AwaitingConfirmation"]);
    // Its own status writes wake it again (watch events): no second tenant read, no patch.
    let (requests, patches) = (graph_requests(&h), h.status_patches.lock().unwrap().len());
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    assert_eq!(graph_requests(&h), requests, "the run was previewed a second time");
    assert_eq!(h.status_patches.lock().unwrap().len(), patches);
}

#[tokio::test]
async fn cost_a_waiting_run_holds_no_loaded_backup() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")).await;
    h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    let state = h.ctx.run_state(&h.uid(RUN).await).await;
    assert_eq!(state.lock().await.work.runner.source_digest(), None, "the backup stays loaded while waiting");
    // Approving it reloads the backup (verified against the approved digest) and executes it.
    let digest = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest)).await;
    h.settle_in(RUN, Phase::Succeeded).await;
    assert_tenant_equals_backup(&h.sim, &h.backup).await;
}

#[tokio::test]
async fn cost_drift_rechecks_of_one_tenant_share_one_snapshot_per_interval() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    let names = ["wait-1", "wait-2", "wait-3"];
    for name in names {
        h.create_run(restore_run_object(name, BACKUP_CONFIG_MAP, false, "2h")).await;
        h.settle_in(name, Phase::AwaitingConfirmation).await;
    }
    let first = digest(&h.status(names[0]).await);
    h.ctx.clock.advance(restore_core::wizard::DRIFT_RECHECK.as_secs() as i64);
    let before = graph_requests(&h);
    h.reconcile_once(names[0]).await;
    let one_snapshot = graph_requests(&h) - before;
    assert!(one_snapshot > 0, "the first re-check of the interval reads the tenant");
    for name in &names[1..] {
        h.reconcile_once(name).await;
    }
    assert_eq!(graph_requests(&h) - before, one_snapshot, "the other runs of the tenant reuse its snapshot");
    // Drift is still seen: in the next interval's snapshot.
    create_by_hand(&h.sim, &baseline_name(0)).await;
    h.ctx.clock.advance(restore_core::wizard::DRIFT_RECHECK.as_secs() as i64);
    for name in names {
        h.reconcile_once(name).await;
        let status = h.status(name).await;
        assert_ne!(digest(&status), first, "{name} saw the drift");
        assert_condition(&status, types::PREVIEW_READY, ConditionStatus::True, reasons::PREVIEW_SUPERSEDED);
    }
    assert_eq!(h.writes(), 0);
}

#[tokio::test]
async fn a_new_runs_first_preview_reads_the_tenant_live_not_the_shared_drift_snapshot() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object("waiting", BACKUP_CONFIG_MAP, false, "2h")).await;
    h.settle_in("waiting", Phase::AwaitingConfirmation).await;
    h.ctx.clock.advance(restore_core::wizard::DRIFT_RECHECK.as_secs() as i64);
    h.reconcile_once("waiting").await;
    let snapshot_counts = h.status("waiting").await.preview.expect("a preview").counts;
    // Changed after this interval's shared snapshot was taken.
    create_by_hand(&h.sim, &baseline_name(0)).await;
    h.create_run(restore_run_object("fresh", BACKUP_CONFIG_MAP, false, "2h")).await;
    let fresh = h.settle_in("fresh", Phase::AwaitingConfirmation).await;
    assert_ne!(fresh.preview.expect("a preview").counts, snapshot_counts, "the new run saw the tenant as it is now");
}

#[tokio::test]
async fn an_expired_preview_regenerated_after_a_spec_edit_reads_the_tenant_live_not_the_shared_drift_snapshot() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object("waiting", BACKUP_CONFIG_MAP, false, "2h")).await;
    h.settle_in("waiting", Phase::AwaitingConfirmation).await;
    h.create_run(restore_run_object("expiring", BACKUP_CONFIG_MAP, false, "1m")).await;
    h.settle_in("expiring", Phase::AwaitingConfirmation).await;
    h.ctx.clock.advance(restore_core::wizard::DRIFT_RECHECK.as_secs() as i64);
    h.reconcile_once("waiting").await;
    let snapshot_counts = h.status("waiting").await.preview.expect("a preview").counts;
    h.reconcile_once("expiring").await;
    assert_eq!(h.status("expiring").await.phase, Some(Phase::Previewing), "expired and resting");
    // Changed after this interval's shared snapshot was taken; then an edit wakes the expired run.
    create_by_hand(&h.sim, &baseline_name(0)).await;
    h.patch_spec("expiring", &json!({"spec": {"dryRun": true}})).await;
    let status = h.settle_in("expiring", Phase::Previewed).await;
    assert_ne!(
        status.preview.expect("a preview").counts,
        snapshot_counts,
        "the regenerated preview read the tenant now"
    );
}

#[tokio::test]
async fn cost_an_execution_reads_its_stored_report_once_not_once_per_write() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let before = h.report_reads();
    h.settle_in(RUN, Phase::Succeeded).await;
    let (reads, writes) = (h.report_reads() - before, h.writes());
    assert!(writes >= 8, "a plan of several writes: {writes}");
    // Storing the approval's new preview lists the old report's chunks; the executor reads it once.
    assert!(reads <= 2, "the executor is built once from the verified report and kept: {reads} reads, {writes} writes");
}

#[tokio::test]
async fn cost_an_execution_writes_status_once_per_item_written_not_once_per_step() {
    let h = previewed(TenantSetup::default(), ControllerOptions::default(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let before = h.status_patches.lock().unwrap().len();
    let status = h.settle_in(RUN, Phase::Succeeded).await;
    let patches: Vec<Value> = h.status_patches.lock().unwrap()[before..].to_vec();
    let items = status.preview.as_ref().expect("a preview").changes as usize;
    let shown: Vec<&str> = patches.iter().filter_map(|p| p["status"]["execution"]["progress"].as_str()).collect();
    let each_item: Vec<String> = (0..=items).map(|k| format!("{k}/{items}")).collect();
    assert_eq!(shown, each_item, "every item written shows in status as it is written");
    let patches = patches.len();
    let steps = status.execution.as_ref().expect("execution status").total_steps as usize;
    assert!(steps > items + 3, "the plan has more steps ({steps}) than items ({items})");
    // The approval's verification, its acceptance, one per item written, the end, and one that
    // observes the generation the fake API server bumps when the finalizer is added.
    assert!(patches <= items + 4, "{patches} status patches for {items} items in {steps} steps");
}

#[tokio::test]
async fn execution_progress_counts_items_written_over_items_the_plan_writes() {
    let h = executing(1).await;
    let status = h.status(RUN).await;
    let items = status.preview.as_ref().expect("a preview").changes;
    assert!(items > 1);
    let progress = status.execution.and_then(|e| e.progress);
    assert_eq!(progress, Some(format!("1/{items}")), "after the first write");
    let status = h.settle_in(RUN, Phase::Succeeded).await;
    assert_eq!(status.execution.and_then(|e| e.progress), Some(format!("{items}/{items}")));
}

#[tokio::test]
async fn cost_an_expired_preview_rests_without_reading_the_tenant_until_the_spec_changes() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1m")).await;
    let old = h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    h.ctx.clock.advance(61);
    let before = graph_requests(&h);
    for _ in 0..3 {
        h.reconcile_once(RUN).await;
    }
    let status = h.status(RUN).await;
    assert_eq!(status.phase, Some(Phase::Previewing));
    assert_condition(&status, types::PREVIEW_READY, ConditionStatus::Unknown, reasons::PREVIEW_EXPIRED);
    assert_eq!(graph_requests(&h), before, "an expired preview nobody approved is not regenerated");
    // An approval (a new generation) regenerates it before it can count.
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &digest(&old))).await;
    let status = h.reconcile_until(RUN, 20, |s| s.phase == Some(Phase::Succeeded)).await;
    assert!(graph_requests(&h) > before);
    assert!(status.preview.as_ref().unwrap().generated_at > old.preview.as_ref().unwrap().generated_at);
}

#[tokio::test]
async fn cost_a_stale_cached_copy_after_our_own_status_write_is_not_previewed_again() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).await;
    let stale = h.run(RUN).await;
    h.reconcile_once(RUN).await;
    assert_eq!(h.status(RUN).await.phase, Some(Phase::Previewed));
    let events = events_of(&h, RUN).await.len();
    let (requests, patches) = (graph_requests(&h), h.status_patches.lock().unwrap().len());
    // The watch delivers the copy from before our status writes.
    restorerun::reconcile(Arc::new(stale), h.ctx.clone()).await.expect("reconcile succeeds");
    assert_eq!(graph_requests(&h), requests, "the stale copy was previewed again");
    assert_eq!(h.status_patches.lock().unwrap().len(), patches);
    assert_eq!(events_of(&h, RUN).await.len(), events, "a second Previewed event");
    assert_eq!(h.status(RUN).await.phase, Some(Phase::Previewed));
}

#[tokio::test]
async fn cost_a_cached_graph_client_reads_no_secret_but_a_rotated_secret_is_noticed() {
    let h = Harness::start(TenantSetup::default(), ControllerOptions::default()).await;
    h.verify_tenant().await;
    let secret_reads = || h.gets.lock().unwrap().iter().filter(|n| *n == SECRET_NAME).count();
    h.create_run(restore_run_object(RUN, BACKUP_CONFIG_MAP, false, "1h")).await;
    h.settle_in(RUN, Phase::AwaitingConfirmation).await;
    assert_eq!(secret_reads(), 1, "only the tenant check read the Secret");
    // The Secret loses its opt-in label: the tenant check (woken by the Secret watch) reads it,
    // and the runs' cached client goes with it.
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NAMESPACE);
    let unlabel = json!({"metadata": {"labels": {"tenantatlas.io/credentials": null}}});
    secrets.patch(SECRET_NAME, &PatchParams::default(), &Patch::Merge(&unlabel)).await.unwrap();
    h.verify_tenant().await;
    assert_eq!(secret_reads(), 2);
    assert!(h.ctx.graph_clients.lock().await.is_empty(), "a client of refused credentials stays cached");
}

// ---------------------------------------------------------------------------------------------
// Fairness (issue 17)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fairness_a_slow_tenant_holds_only_its_own_slots_and_a_fast_tenants_runs_progress() {
    let options = ControllerOptions { per_tenant_concurrency: Some(1), ..ControllerOptions::default() };
    let h = Harness::start(TenantSetup::default(), options).await;
    h.verify_tenant().await;
    // A second IntuneTenant on its own (slow) Graph.
    let slow_sim = start_simulator(&TenantSetup::default()).await;
    let mut slow_tenant = tenant_object(&slow_sim, Environment::Staging);
    slow_tenant["metadata"]["name"] = json!("slow-tenant");
    let slow_tenant: IntuneTenant = serde_json::from_value(slow_tenant).unwrap();
    h.tenants().create(&PostParams::default(), &slow_tenant).await.unwrap();
    let current = h.tenants().get("slow-tenant").await.unwrap();
    tenant::reconcile(Arc::new(current), h.ctx.clone()).await.unwrap();
    slow_sim.set_faults(graph_sim::FaultConfig { latency_min_ms: 400, latency_max_ms: 400, ..Default::default() });
    for (name, tenant) in [("slow-1", "slow-tenant"), ("slow-2", "slow-tenant"), ("fast-1", TENANT_NAME)] {
        let mut run = restore_run_object(name, BACKUP_CONFIG_MAP, true, "1h");
        run["spec"]["tenantRef"]["name"] = json!(tenant);
        h.create_run(run).await;
    }

    let slow = tokio::spawn({
        let (run, ctx) = (h.run("slow-1").await, h.ctx.clone());
        async move { restorerun::reconcile(Arc::new(run), ctx).await }
    });
    eventually(Duration::from_secs(10), Duration::from_millis(20), "slow-1 reads its tenant", || async {
        (!slow_sim.request_log().is_empty()).then_some(())
    })
    .await;
    let slow_requests = slow_sim.request_log().len();
    // The slow tenant's other run does not take a slot: it waits its turn, untouched.
    restorerun::reconcile(Arc::new(h.run("slow-2").await), h.ctx.clone()).await.unwrap();
    assert_eq!(h.status("slow-2").await.phase, None, "slow-2 ran beside slow-1");
    // The fast tenant's run goes all the way while slow-1 still reads.
    h.reconcile_once("fast-1").await;
    assert_eq!(h.status("fast-1").await.phase, Some(Phase::Previewed));
    assert!(!slow.is_finished(), "the slow tenant was not slow enough to show anything");
    slow.await.unwrap().unwrap();
    assert_eq!(h.status("slow-1").await.phase, Some(Phase::Previewed));
    assert!(slow_sim.request_log().len() > slow_requests);
    // Its slot is free again.
    h.reconcile_once("slow-2").await;
    assert_eq!(h.status("slow-2").await.phase, Some(Phase::Previewed));
}

#[tokio::test]
async fn the_status_that_accepts_an_approval_already_gives_the_plans_step_count() {
    let h = previewed(TenantSetup::default(), options_one_step_per_reconcile(), "1h").await;
    let preview = digest(&h.status(RUN).await);
    let before = h.status_patches.lock().unwrap().len();
    h.patch_spec(RUN, &approval_patch(TENANT_LABEL, &preview)).await;
    let done = h.reconcile_until(RUN, 60, |s| s.execution.as_ref().is_some_and(|e| e.completed_steps >= 1)).await;
    let total = done.execution.unwrap().total_steps;
    assert!(total > 1, "a plan of several steps: {total}");
    let patches = h.status_patches.lock().unwrap();
    let accepted = patches[before..]
        .iter()
        .find(|p| p["status"]["phase"] == "Executing")
        .expect("a status patch that enters Executing");
    assert_eq!(accepted["status"]["execution"]["totalSteps"], json!(total), "{accepted}");
    let executing = accepted["status"]["conditions"].as_array().unwrap().iter().find(|c| c["reason"] == "Executing");
    let message = executing.and_then(|c| c["message"].as_str()).unwrap_or_default();
    assert!(message.contains(&format!("0/{total} step(s) done")), "{message}");
}
