//! DESIGN §2 finding 9 at the fence itself, on the in-process API-server emulator: a replica writes
//! only while the leader Lease it last read names it and has not run out on its own clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use restore_operator::controller::fence::LeaderFence;

const LEASE: &str = "restore-operator";
const ME: &str = "replica-a";

struct Cluster {
    _emulator: kube_emulator::EmulatorHandle,
    client: kube::Client,
    leases: Api<Lease>,
}

async fn cluster() -> Cluster {
    let emulator = kube_emulator::Emulator::start(kube_emulator::EmulatorConfig::default()).await.expect("emulator");
    let client = emulator.client().expect("client");
    let leases = Api::namespaced(client.clone(), "default");
    Cluster { _emulator: emulator, client, leases }
}

fn lease_spec(holder: &str, seconds: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(seconds),
        renew_time: Some(MicroTime(jiff::Timestamp::now())),
        ..LeaseSpec::default()
    }
}

impl Cluster {
    /// Writes the leader Lease as renewed now by `holder` for `seconds`.
    async fn renew(&self, holder: &str, seconds: i32) {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(LEASE.into()), ..ObjectMeta::default() },
            spec: Some(lease_spec(holder, seconds)),
        };
        if self.leases.get_opt(LEASE).await.unwrap().is_none() {
            self.leases.create(&PostParams::default(), &lease).await.unwrap();
        } else {
            let patch = serde_json::json!({"spec": lease.spec});
            self.leases.patch(LEASE, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        }
    }

    fn fence(&self, leading: &Arc<AtomicBool>) -> LeaderFence {
        LeaderFence::new(self.client.clone(), "default", LEASE, ME, leading.clone())
    }
}

fn leading() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

#[tokio::test]
async fn finding_9_nothing_is_written_before_the_lease_was_read() {
    let cluster = cluster().await;
    cluster.renew(ME, 15).await;
    let fence = cluster.fence(&leading());
    let refused = fence.holds_now().unwrap_err();
    assert!(refused.contains("read again"), "{refused}");
}

#[tokio::test]
async fn finding_9_a_lease_this_replica_holds_lets_it_write_until_it_runs_out_on_its_clock() {
    let cluster = cluster().await;
    cluster.renew(ME, 2).await;
    let fence = cluster.fence(&leading());
    fence.ensure().await.unwrap();
    fence.holds_now().expect("the Lease was just renewed for 2 s");
    // A process stopped past the Lease's end finds it run out, with no I/O.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let refused = fence.holds_now().unwrap_err();
    assert!(refused.contains("expired"), "{refused}");
}

#[tokio::test]
async fn finding_9_a_replica_told_it_lost_leadership_writes_nothing_even_with_a_valid_reading() {
    let cluster = cluster().await;
    cluster.renew(ME, 15).await;
    let flag = leading();
    let fence = cluster.fence(&flag);
    fence.ensure().await.unwrap();
    flag.store(false, Ordering::SeqCst);
    assert_eq!(fence.holds_now().unwrap_err(), "leadership was lost");
    assert_eq!(fence.ensure().await.unwrap_err(), "leadership was lost");
}

#[tokio::test]
async fn finding_9_a_lease_another_replica_took_fences_this_one_and_clears_its_flag() {
    let cluster = cluster().await;
    cluster.renew("replica-b", 15).await;
    let flag = leading();
    let fence = cluster.fence(&flag);
    let refused = fence.ensure().await.unwrap_err();
    assert!(refused.contains("replica-b"), "{refused}");
    assert!(!flag.load(Ordering::SeqCst), "the replica knows it does not lead");
    assert!(fence.holds_now().is_err());
}

#[tokio::test]
async fn finding_9_a_missing_lease_fences_every_write() {
    let cluster = cluster().await;
    let fence = cluster.fence(&leading());
    let refused = fence.ensure().await.unwrap_err();
    assert!(refused.contains("gone"), "{refused}");
    assert!(fence.holds_now().is_err());
}

#[tokio::test]
async fn finding_9_a_run_out_reading_is_read_again_before_a_write() {
    let cluster = cluster().await;
    cluster.renew(ME, 1).await;
    let flag = leading();
    let fence = cluster.fence(&flag);
    fence.ensure().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(fence.holds_now().is_err(), "the reading ran out");
    // Renewed meanwhile by this replica's lease loop: the fresh read lets the write go.
    cluster.renew(ME, 15).await;
    fence.holds_fresh().await.expect("read again, still the leader");
    fence.holds_now().expect("valid again without I/O");
    // Taken by another replica after it ran out: the fresh read refuses, and says who holds it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fence = cluster.fence(&flag);
    cluster.renew("replica-b", 15).await;
    let refused = fence.holds_fresh().await.unwrap_err();
    assert!(refused.contains("replica-b"), "{refused}");
    assert!(!flag.load(Ordering::SeqCst));
}
