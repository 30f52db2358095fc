//! The controller's writes that carry no resourceVersion — the run's status merge patch and its
//! record ConfigMaps — sent again at once when the API server answers 409 Conflict, a bounded number of times.
//!
//! A 409 on such a write comes from admission or an injected fault (the API server retries its own
//! conflicts for them); these tests inject it through kube-fake-client's interceptors and call
//! `reconcile` directly, as `controller_reconcile.rs` does.

mod controller_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use controller_support::kind_of::KindOf;
use controller_support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube_fake_client::{ClientBuilder, interceptor};
use restore_core::api::{Environment, Phase};
use restore_operator::controller::context::Context;
use restore_operator::controller::{ControllerOptions, restorerun, tenant};
use restore_operator::kube::conflicts::CONFLICT_ATTEMPTS;
use restore_operator::kube::{IntuneTenant, RestoreRun};

const RUN: &str = "restore-1";
/// Conflicts injected in a row: as many as the fault campaign's `conflict-*` points inject.
const CONFLICTS_IN_A_ROW: usize = 4;

/// Which writes answer 409 Conflict, and how many of them.
#[derive(Default)]
struct Conflicts {
    status: Arc<AtomicUsize>,
    report: Arc<AtomicUsize>,
    /// Every status patch and report ConfigMap write sent (conflicted or not).
    sent: Arc<AtomicUsize>,
}

fn spend(left: &AtomicUsize) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

struct Cluster {
    _sim: graph_sim::SimHandle,
    client: kube::Client,
    ctx: Arc<Context>,
}

impl Cluster {
    /// A fake API server holding the tenant, its Secret and a backup ConfigMap, with `conflicts` injected.
    async fn start(conflicts: &Conflicts) -> Cluster {
        let sim = start_simulator(&TenantSetup::default()).await;
        let (status, sent_status) = (conflicts.status.clone(), conflicts.sent.clone());
        let (report, sent_report) = (conflicts.report.clone(), conflicts.sent.clone());
        let conflict = || Err(kube_fake_client::Error::Conflict("injected: admission refused the write".into()));
        let interceptors = interceptor::Funcs::new()
            .patch_status(move |ctx| {
                if ctx.name != RUN {
                    return Ok(None);
                }
                sent_status.fetch_add(1, Ordering::SeqCst);
                if spend(&status) { conflict() } else { Ok(None) }
            })
            .patch(move |ctx| {
                if !ctx.name.ends_with("-report") {
                    return Ok(None);
                }
                sent_report.fetch_add(1, Ordering::SeqCst);
                if spend(&report) { conflict() } else { Ok(None) }
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
        let fetcher = restore_backup::fetch::Fetcher::with_extra_roots(None, restore_backup::Limits::default())
            .expect("fetcher builds");
        let ctx = Arc::new(Context::new(client.clone(), fetcher, fast_graph_options(), ControllerOptions::default()));
        let cluster = Cluster { _sim: sim, client, ctx };
        cluster.seed().await;
        cluster
    }

    async fn seed(&self) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(SECRET_NAME.into()),
                labels: Some([("tenantatlas.io/credentials".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            data: Some([("clientSecret".to_string(), ByteString(CLIENT_SECRET.as_bytes().to_vec()))].into()),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret is created");
        let backup = ConfigMap {
            metadata: ObjectMeta { name: Some(BACKUP_CONFIG_MAP.into()), ..Default::default() },
            data: Some(backup_config_map_data(&sample_backup(4))),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(self.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &backup)
            .await
            .expect("backup is created");
        let tenants: Api<IntuneTenant> = Api::namespaced(self.client.clone(), NAMESPACE);
        let object: IntuneTenant =
            serde_json::from_value(tenant_object(self._sim(), Environment::Staging)).expect("tenant object parses");
        tenants.create(&PostParams::default(), &object).await.expect("tenant is created");
        let created = tenants.get(TENANT_NAME).await.expect("tenant exists");
        tenant::reconcile(Arc::new(created), self.ctx.clone()).await.expect("the tenant is verified");
        let run: RestoreRun =
            serde_json::from_value(restore_run_object(RUN, BACKUP_CONFIG_MAP, true, "1h")).expect("run parses");
        self.runs().create(&PostParams::default(), &run).await.expect("run is created");
    }

    fn _sim(&self) -> &graph_sim::SimHandle {
        &self._sim
    }

    fn runs(&self) -> Api<RestoreRun> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// One reconcile of the dry-run, as after a watch event.
    async fn reconcile(&self) -> Result<(), String> {
        let run = self.runs().get(RUN).await.expect("run exists");
        restorerun::reconcile(Arc::new(run), self.ctx.clone()).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn phase(&self) -> Option<Phase> {
        self.runs().get(RUN).await.expect("run exists").status.and_then(|s| s.phase)
    }

    async fn report_config_maps(&self) -> Vec<ConfigMap> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), NAMESPACE);
        let all = maps.list(&Default::default()).await.expect("config maps list");
        all.items.into_iter().filter(|cm| cm.name_any().ends_with("-report")).collect()
    }
}

#[tokio::test]
async fn status_patches_answered_409_are_sent_again_at_once_and_the_dry_run_still_previews_in_one_reconcile() {
    let conflicts = Conflicts::default();
    let cluster = Cluster::start(&conflicts).await;
    conflicts.status.store(CONFLICTS_IN_A_ROW, Ordering::SeqCst);

    cluster.reconcile().await.expect("the conflicts cost no reconcile error (and no error backoff)");
    assert_eq!(cluster.phase().await, Some(Phase::Previewed));
    assert_eq!(conflicts.status.load(Ordering::SeqCst), 0, "every injected conflict was answered");
}

#[tokio::test]
async fn report_config_map_writes_answered_409_are_sent_again_at_once_and_the_report_is_stored() {
    let conflicts = Conflicts::default();
    let cluster = Cluster::start(&conflicts).await;
    conflicts.report.store(CONFLICTS_IN_A_ROW, Ordering::SeqCst);

    cluster.reconcile().await.expect("the conflicts cost no reconcile error (and no error backoff)");
    assert_eq!(cluster.phase().await, Some(Phase::Previewed));
    assert_eq!(conflicts.report.load(Ordering::SeqCst), 0, "every injected conflict was answered");
    let stored = cluster.report_config_maps().await;
    assert_eq!(stored.len(), 1, "the report was stored once it went through");
    assert_eq!(stored[0].labels().get("tenantatlas.io/restorerun").map(String::as_str), Some(RUN));
}

#[tokio::test]
async fn a_conflict_that_outlasts_the_bounded_attempts_is_the_reconciles_error() {
    let conflicts = Conflicts::default();
    let cluster = Cluster::start(&conflicts).await;
    conflicts.status.store(usize::MAX, Ordering::SeqCst);

    let error = cluster.reconcile().await.expect_err("a write that keeps conflicting fails the reconcile");
    assert!(error.contains("injected: admission refused the write"), "{error}");
    assert_eq!(
        conflicts.sent.load(Ordering::SeqCst),
        CONFLICT_ATTEMPTS,
        "the first status patch, sent a bounded number of times"
    );
    assert_eq!(cluster.phase().await, None, "nothing was written");
}
