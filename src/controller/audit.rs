//! The audit record of an execution: a ConfigMap the RestoreRun does not own, so it outlives the run
//! (and a GitOps prune); written when an execution ends or is cut, kept for the admin's retention.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use restore_core::api::RestoreRunStatus;
use serde_json::json;

use crate::kube::{FIELD_MANAGER, RestoreRun};

/// Label carried by every audit record.
pub const AUDIT_LABEL: &str = "tenantatlas.io/audit";
/// Label naming the run an audit record is about.
pub const AUDIT_RUN_LABEL: &str = "tenantatlas.io/audit-of";
/// Annotation with the time (RFC 3339) after which the record may be removed.
pub const EXPIRES_ANNOTATION: &str = "tenantatlas.io/expires-at";
/// Key of the record in `data`.
pub const AUDIT_KEY: &str = "audit.json";

/// How an execution ended, as the record says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every step ran (whatever the item outcomes).
    Finished,
    /// The run was deleted while executing: writes stopped at an item boundary.
    Cut,
}

/// The audit record's name for a run.
pub fn record_name(run: &RestoreRun) -> String {
    let uid = run.uid().unwrap_or_default();
    let short: String = uid.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let base: String = run.name_any().chars().take(230).collect();
    format!("{base}-audit-{short}")
}

/// Writes (or rewrites) the audit record of `run` with its last `status`.
pub async fn write(
    api: &Api<ConfigMap>,
    run: &RestoreRun,
    status: &RestoreRunStatus,
    ending: Ending,
    retention: Duration,
) -> Result<(), kube::Error> {
    let now = jiff::Timestamp::now();
    let expires = now.checked_add(jiff::SignedDuration::try_from(retention).unwrap_or_default()).unwrap_or(now);
    let record = json!({
        "run": {"namespace": run.namespace(), "name": run.name_any(), "uid": run.uid()},
        "ending": match ending { Ending::Finished => "Finished", Ending::Cut => "CutByDeletion" },
        "recordedAt": now.to_string(),
        "phase": status.phase,
        "tenant": status.tenant,
        "environment": status.environment,
        "source": status.source,
        "confirmation": status.confirmation,
        "execution": status.execution,
    });
    let name = record_name(run);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: run.namespace(),
            labels: Some(BTreeMap::from([
                (AUDIT_LABEL.to_string(), "true".to_string()),
                (AUDIT_RUN_LABEL.to_string(), run.name_any()),
                ("app.kubernetes.io/managed-by".to_string(), FIELD_MANAGER.to_string()),
            ])),
            annotations: Some(BTreeMap::from([(EXPIRES_ANNOTATION.to_string(), expires.to_string())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(AUDIT_KEY.to_string(), record.to_string())])),
        ..ConfigMap::default()
    };
    let mut body = serde_json::to_value(&cm).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "ConfigMap".into();
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await?;
    Ok(())
}

/// Removes the audit records whose retention has passed; returns how many.
pub async fn sweep(api: &Api<ConfigMap>, now: jiff::Timestamp) -> Result<usize, kube::Error> {
    let records = api.list_metadata(&ListParams::default().labels(&format!("{AUDIT_LABEL}=true"))).await?;
    let mut removed = 0;
    for record in records {
        let expired = record
            .annotations()
            .get(EXPIRES_ANNOTATION)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|expires| now >= expires);
        if expired {
            let namespace = record.namespace().unwrap_or_default();
            let scoped: Api<ConfigMap> = Api::namespaced(api.clone().into_client(), &namespace);
            scoped.delete(&record.name_any(), &DeleteParams::default()).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
