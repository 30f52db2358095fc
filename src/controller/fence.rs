//! Leadership fencing: right before any write (status, records, the tenant), this replica checks it
//! still holds the leader Lease, so a deposed leader whose reconciles stalled writes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

/// Proof, asked for before each write, that this replica is the leader.
#[derive(Clone)]
pub struct LeaderFence {
    leases: Api<Lease>,
    name: String,
    identity: String,
    leading: Arc<AtomicBool>,
    /// Until when, on this process's monotonic clock, the Lease last read makes this replica the
    /// leader. A process stopped between a check and its write finds it passed when it resumes.
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl LeaderFence {
    /// A fence on the Lease `namespace/name` held as `identity`; `leading` is the flag the lease
    /// watcher clears when it sees leadership go.
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str, leading: Arc<AtomicBool>) -> Self {
        LeaderFence {
            leases: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            leading,
            valid_until: Arc::new(Mutex::new(None)),
        }
    }

    /// `Ok` while the Lease, read now from the API server, names this replica and has not expired.
    pub async fn ensure(&self) -> Result<(), String> {
        if !self.leading.load(Ordering::SeqCst) {
            return Err("leadership was lost".into());
        }
        let lease = self.leases.get_opt(&self.name).await.map_err(|e| format!("reading the leader Lease: {e}"))?;
        let read_at = Instant::now();
        let now = jiff::Timestamp::now();
        let spec = lease.and_then(|l| l.spec);
        let refusal = match &spec {
            None => Some("the leader Lease is gone".to_string()),
            Some(spec) => lease_refusal(spec, &self.identity, now),
        };
        let valid_for = spec.as_ref().and_then(|spec| lease_valid_for(spec, now));
        self.set_valid_until(refusal.is_none().then(|| valid_for.map(|d| read_at + d)).flatten());
        match refusal {
            Some(why) => {
                self.leading.store(false, Ordering::SeqCst);
                Err(why)
            }
            None => Ok(()),
        }
    }

    /// `Ok` while the last [`LeaderFence::ensure`] still holds on this process's clock: checked
    /// with no I/O right before a write is sent, after every wait (pacing, retries, a stopped process).
    pub fn holds_now(&self) -> Result<(), String> {
        if !self.leading.load(Ordering::SeqCst) {
            return Err("leadership was lost".into());
        }
        let valid_until = *self.valid_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match valid_until {
            Some(until) if Instant::now() < until => Ok(()),
            _ => Err("the leader Lease last read has expired; nothing is written until it is read again".into()),
        }
    }

    /// [`LeaderFence::holds_now`], reading the Lease again only when the last reading has run out
    /// (a long pacing wait, or a process that was stopped and resumed).
    pub async fn holds_fresh(&self) -> Result<(), String> {
        match self.holds_now() {
            Ok(()) => Ok(()),
            Err(_) => {
                self.ensure().await?;
                self.holds_now()
            }
        }
    }

    /// The guard the Graph client checks right before each tenant write is sent.
    pub fn write_guard(&self) -> restore_graph::WriteGuard {
        let fence = self.clone();
        restore_graph::WriteGuard::new(move || {
            let fence = fence.clone();
            Box::pin(async move { fence.holds_fresh().await })
        })
    }

    fn set_valid_until(&self, until: Option<Instant>) {
        *self.valid_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }
}

/// How long the Lease stays valid after `now` (`None`: never renewed, or already expired).
pub fn lease_valid_for(spec: &k8s_openapi::api::coordination::v1::LeaseSpec, now: jiff::Timestamp) -> Option<Duration> {
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expires = spec.renew_time.as_ref()?.0.checked_add(jiff::SignedDuration::from_secs(seconds)).ok()?;
    let left = now.duration_until(expires);
    (left.is_positive()).then(|| left.unsigned_abs())
}

/// Why a Lease does not make `identity` the leader at `now`.
pub fn lease_refusal(
    spec: &k8s_openapi::api::coordination::v1::LeaseSpec,
    identity: &str,
    now: jiff::Timestamp,
) -> Option<String> {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder != identity {
        return Some(format!("the leader Lease is held by {holder:?}"));
    }
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expires = spec.renew_time.as_ref().and_then(|t| t.0.checked_add(jiff::SignedDuration::from_secs(seconds)).ok());
    match expires {
        Some(expires) if now < expires => None,
        Some(expires) => Some(format!("this replica's leader Lease expired at {expires}")),
        None => Some("the leader Lease was never renewed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::from_second(renewed).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn finding_9_a_lease_held_by_another_replica_or_expired_fences_every_write() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        assert_eq!(lease_refusal(&lease("replica-a", 990), "replica-a", now), None);
        assert!(lease_refusal(&lease("replica-b", 990), "replica-a", now).unwrap().contains("replica-b"));
        assert!(lease_refusal(&lease("replica-a", 985), "replica-a", now).unwrap().contains("expired"));
    }

    #[test]
    fn finding_9_a_lease_is_valid_for_what_is_left_of_its_duration() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        assert_eq!(lease_valid_for(&lease("replica-a", 990), now), Some(Duration::from_secs(5)));
        assert_eq!(lease_valid_for(&lease("replica-a", 985), now), None, "expired at 1,000");
        assert_eq!(lease_valid_for(&LeaseSpec::default(), now), None, "never renewed");
    }
}
