//! One execution per Entra tenant at a time, across runs, replicas and shards: a coordination Lease
//! per tenant id names the run writing to it; another approved run waits until it is released.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use restore_core::canonical::sha256_digest;

/// How long a holder's claim lasts without renewal (a crashed holder frees the tenant after it).
pub const LOCK_SECONDS: i32 = 60;
/// A claim older than this is renewed on the next write step.
const RENEW_AFTER_SECONDS: i64 = 15;

/// The name of the Lease guarding Entra tenant `tenant_id`.
pub fn lock_name(tenant_id: &str) -> String {
    let digest = sha256_digest(tenant_id.to_ascii_lowercase().as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    format!("restore-operator-tenant-{}", &hex[..16])
}

/// The holder identity of a run: `namespace/name/uid`.
pub fn holder_of(namespace: &str, name: &str, uid: &str) -> String {
    format!("{namespace}/{name}/{uid}")
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This run holds the tenant.
    Held,
    /// Another run holds it (its `namespace/name`).
    Busy(String),
}

/// Claims (or renews) the tenant for `holder`. A conflicting write by another claimant reads as busy.
pub async fn claim(leases: &Api<Lease>, tenant_id: &str, holder: &str) -> Result<Claim, kube::Error> {
    match read_claim(leases, tenant_id, holder).await? {
        ClaimAttempt::Decided(claim) => Ok(claim),
        write @ ClaimAttempt::Write { .. } => write_claim(leases, write).await,
    }
}

/// What a read of the tenant's Lease decided: an answer already, or a write to make.
#[derive(Clone, Debug)]
pub enum ClaimAttempt {
    /// Held with a fresh renewal, or busy under another unexpired holder: nothing to write.
    Decided(Claim),
    /// The Lease to create (no `resourceVersion`) or to replace (the version that was read, so a
    /// claimant that wrote in between makes this write conflict).
    Write { lease: Box<Lease>, create: bool },
}

/// Reads the tenant's Lease and decides whether `holder` holds it, is refused, or must write.
pub async fn read_claim(leases: &Api<Lease>, tenant_id: &str, holder: &str) -> Result<ClaimAttempt, kube::Error> {
    let name = lock_name(tenant_id);
    let existing = leases.get_opt(&name).await?;
    Ok(decide_claim(name, existing.as_ref(), holder, jiff::Timestamp::now()))
}

fn decide_claim(name: String, existing: Option<&Lease>, holder: &str, now: jiff::Timestamp) -> ClaimAttempt {
    let spec = existing.and_then(|l| l.spec.clone()).unwrap_or_default();
    let current = spec.holder_identity.clone().unwrap_or_default();
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    let lasts = spec.lease_duration_seconds.unwrap_or(LOCK_SECONDS);
    let expired = renewed
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(i64::from(lasts))).ok())
        .is_none_or(|until| now >= until);
    if !current.is_empty() && current != holder && !expired {
        return ClaimAttempt::Decided(Claim::Busy(display_holder(&current)));
    }
    let fresh = renewed.is_some_and(|t| now.duration_since(t).as_secs() < RENEW_AFTER_SECONDS);
    if current == holder && fresh {
        return ClaimAttempt::Decided(Claim::Held);
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name),
            resource_version: existing.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some([("app.kubernetes.io/managed-by".to_string(), "restore-operator".to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(LOCK_SECONDS),
            renew_time: Some(MicroTime(now)),
            acquire_time: if current == holder { spec.acquire_time } else { Some(MicroTime(now)) },
            ..LeaseSpec::default()
        }),
    };
    ClaimAttempt::Write { lease: Box::new(lease), create: existing.is_none() }
}

/// Makes the write a read decided on; a conflict (someone claimed in between) reads as busy.
pub async fn write_claim(leases: &Api<Lease>, attempt: ClaimAttempt) -> Result<Claim, kube::Error> {
    let (lease, create) = match attempt {
        ClaimAttempt::Decided(claim) => return Ok(claim),
        ClaimAttempt::Write { lease, create } => (lease, create),
    };
    let params = PostParams { field_manager: Some(crate::kube::FIELD_MANAGER.into()), ..PostParams::default() };
    let written = if create {
        leases.create(&params, &lease).await
    } else {
        leases.replace(&lease.name_any(), &params, &lease).await
    };
    match written {
        Ok(_) => Ok(Claim::Held),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Claim::Busy("another run".into())),
        Err(e) => Err(e),
    }
}

/// Releases the tenant if `holder` holds it (an execution that ended or was cut).
pub async fn release(leases: &Api<Lease>, tenant_id: &str, holder: &str) -> Result<(), kube::Error> {
    let name = lock_name(tenant_id);
    let Some(lease) = leases.get_opt(&name).await? else { return Ok(()) };
    if lease.spec.and_then(|s| s.holder_identity).as_deref() == Some(holder) {
        leases.delete(&name, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// `namespace/name` of a holder identity (its uid left out).
fn display_holder(holder: &str) -> String {
    holder.rsplit_once('/').map_or(holder, |(run, _)| run).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_entra_tenant_whatever_the_spelling() {
        assert_eq!(lock_name("ABC-def"), lock_name("abc-DEF"));
        assert_ne!(lock_name("tenant-a"), lock_name("tenant-b"));
        assert!(lock_name("x").len() <= 63);
        assert_eq!(display_holder(&holder_of("intune", "restore-1", "uid-1")), "intune/restore-1");
    }

    const ME: &str = "intune/restore-1/uid-1";

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_000_000 + second).unwrap()
    }

    fn claimed(holder: &str, acquired: i64, renewed: i64) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("lock".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(LOCK_SECONDS),
                acquire_time: Some(MicroTime(at(acquired))),
                renew_time: Some(MicroTime(at(renewed))),
                ..LeaseSpec::default()
            }),
        }
    }

    fn written(attempt: ClaimAttempt) -> (LeaseSpec, Option<String>, bool) {
        match attempt {
            ClaimAttempt::Write { lease, create } => (lease.spec.unwrap(), lease.metadata.resource_version, create),
            ClaimAttempt::Decided(claim) => panic!("expected a write, decided {claim:?}"),
        }
    }

    #[test]
    fn finding_6_a_claim_this_run_renewed_lately_is_held_without_a_write() {
        let lease = claimed(ME, 0, 100);
        let attempt = decide_claim("lock".into(), Some(&lease), ME, at(110));
        assert!(matches!(attempt, ClaimAttempt::Decided(Claim::Held)), "{attempt:?}");
    }

    #[test]
    fn finding_6_a_claim_due_for_renewal_is_renewed_on_the_version_read_keeping_when_it_was_acquired() {
        let lease = claimed(ME, 0, 100);
        let (spec, version, create) = written(decide_claim("lock".into(), Some(&lease), ME, at(115)));
        assert_eq!(spec.renew_time, Some(MicroTime(at(115))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))), "still the same claim");
        assert_eq!((version.as_deref(), create), (Some("7"), false), "a replace that conflicts if someone wrote");
    }

    #[test]
    fn finding_6_another_runs_claim_is_busy_until_it_expires_then_taken_anew() {
        let other = "intune/restore-2/uid-2";
        let lease = claimed(other, 0, 100);
        let busy = decide_claim("lock".into(), Some(&lease), ME, at(159));
        assert!(matches!(&busy, ClaimAttempt::Decided(Claim::Busy(run)) if run == "intune/restore-2"), "{busy:?}");
        let (spec, version, create) = written(decide_claim("lock".into(), Some(&lease), ME, at(160)));
        assert_eq!(spec.holder_identity.as_deref(), Some(ME));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(160))), "a new claim");
        assert_eq!((version.as_deref(), create), (Some("7"), false));
        let (_, _, create) = written(decide_claim("lock".into(), None, ME, at(0)));
        assert!(create, "no Lease yet: created");
    }

    #[tokio::test]
    async fn finding_6_a_claim_is_written_by_the_operator_and_only_a_conflict_reads_as_busy() {
        let emulator =
            kube_emulator::Emulator::start(kube_emulator::EmulatorConfig::default()).await.expect("emulator");
        let leases: Api<Lease> = Api::namespaced(emulator.client().expect("client"), "default");
        assert_eq!(claim(&leases, "tenant-a", ME).await.unwrap(), Claim::Held);
        let lease = leases.get(&lock_name("tenant-a")).await.unwrap();
        let managers: Vec<_> = lease.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
        assert_eq!(managers, [crate::kube::FIELD_MANAGER], "written under the operator's field manager");
        // A replace of a Lease that is not there is an error to retry, not another run's claim.
        let mut missing = claimed(ME, 0, 0);
        missing.metadata.name = Some(lock_name("tenant-b"));
        let attempt = ClaimAttempt::Write { lease: Box::new(missing), create: false };
        assert!(write_claim(&leases, attempt).await.is_err());
    }
}
