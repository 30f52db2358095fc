//! IntuneTenant reconciliation: load the credentials its spec references, obtain a token and do
//! one read, and record `Ready`. Secret material stays in memory; nothing is copied anywhere.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use restore_core::api::IntuneTenantStatus;
use restore_core::conditions::{Condition, reasons, rfc3339, set_condition, types};
use restore_graph::{Credentials, GraphClient, SecretString};

use super::ControllerError;
use super::context::Context;
use crate::kube::{FIELD_MANAGER, IntuneTenant, merge_patch_params};

/// How often a Ready tenant's credentials are checked again.
pub const RECHECK_READY: Duration = Duration::from_secs(900);
/// How soon a failing tenant is checked again.
pub const RECHECK_FAILING: Duration = Duration::from_secs(60);

/// Why a tenant's credentials could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The Secret or key is missing.
    #[error("{0}")]
    SecretMissing(String),
    /// The Secret exists but does not carry the opt-in label.
    #[error("{0}")]
    SecretNotOptedIn(String),
    /// The auth section names no kind (the CRD prevents it; a spec from elsewhere may not).
    #[error("spec.auth sets none of clientSecretRef, certificateRef, workloadIdentity")]
    NoAuthKind,
    /// Reading the Secret failed.
    #[error("reading Secret: {0}")]
    Kube(#[from] kube::Error),
    /// Graph refused or failed.
    #[error("{0}")]
    Graph(#[from] restore_graph::GraphError),
}

impl CredentialError {
    /// The `Ready` reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialError::SecretMissing(_) | CredentialError::NoAuthKind | CredentialError::SecretNotOptedIn(_) => {
                reasons::SECRET_NOT_FOUND
            }
            CredentialError::Kube(_) => reasons::GRAPH_UNAVAILABLE,
            CredentialError::Graph(e) if e.is_transient() => reasons::GRAPH_UNAVAILABLE,
            CredentialError::Graph(_) => reasons::AUTHENTICATION_FAILED,
        }
    }
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// The label a Secret must carry before the operator reads it as an IntuneTenant's credentials:
/// the namespace's owner opts each Secret in, so no other Secret of the namespace (a registry
/// password, another app's token) can be sent to Entra ID through a tenant's spec.
pub const CREDENTIALS_LABEL: &str = "tenantatlas.io/credentials";

/// Whether the Secret's owner opted it in as IntuneTenant credentials.
pub fn is_opted_in(secret: &Secret) -> bool {
    secret.labels().get(CREDENTIALS_LABEL).is_some_and(|v| v == "true")
}

async fn read_secret(api: &Api<Secret>, name: &str) -> Result<(Secret, String), CredentialError> {
    let secret = api.get_opt(name).await?.ok_or_else(|| {
        CredentialError::SecretMissing(format!("Secret {name:?} not found in the tenant's namespace"))
    })?;
    if !is_opted_in(&secret) {
        return Err(CredentialError::SecretNotOptedIn(format!(
            "Secret {name:?} lacks the label {CREDENTIALS_LABEL}: \"true\"; label it to let the operator read it \
             as IntuneTenant credentials"
        )));
    }
    let version = secret.resource_version().unwrap_or_default();
    Ok((secret, version))
}

/// The credentials a tenant's spec references, and a version string that changes when they do.
pub async fn load_credentials(
    client: &kube::Client,
    tenant: &IntuneTenant,
) -> Result<(Credentials, String), CredentialError> {
    let namespace = tenant.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let auth = &tenant.spec.auth;
    let missing_key =
        |secret: &str, key: &str| CredentialError::SecretMissing(format!("Secret {secret:?} has no key {key:?}"));
    if let Some(r) = &auth.client_secret_ref {
        let (secret, version) = read_secret(&api, &r.name).await?;
        let value = secret_value(&secret, &r.key).ok_or_else(|| missing_key(&r.name, &r.key))?;
        return Ok((Credentials::ClientSecret(SecretString::new(value.trim_end().to_string())), version));
    }
    if let Some(r) = &auth.certificate_ref {
        let (secret, version) = read_secret(&api, &r.name).await?;
        let certificate_pem =
            secret_value(&secret, &r.certificate_key).ok_or_else(|| missing_key(&r.name, &r.certificate_key))?;
        let key = secret_value(&secret, &r.private_key_key).ok_or_else(|| missing_key(&r.name, &r.private_key_key))?;
        return Ok((Credentials::Certificate { certificate_pem, private_key_pem: SecretString::new(key) }, version));
    }
    if let Some(w) = &auth.workload_identity {
        return Ok((Credentials::WorkloadIdentity { token_file: w.token_file.clone().into() }, String::new()));
    }
    Err(CredentialError::NoAuthKind)
}

/// The cached Graph client of this version of the tenant, without reading its Secret; else one
/// made from the Secret read now. A rotated Secret is noticed by the IntuneTenant reconcile (the
/// Secret watch wakes it), which reads it and replaces the cached client.
pub async fn run_graph_client(ctx: &Context, tenant: &IntuneTenant) -> Result<GraphClient, CredentialError> {
    let version = format!("{}@{}/", tenant_prefix(tenant), spec_version(tenant));
    let cached = ctx.graph_clients.lock().await.iter().find(|(k, _)| k.starts_with(&version)).map(|(_, c)| c.clone());
    match cached {
        Some(client) => Ok(client),
        None => graph_client(ctx, tenant).await,
    }
}

/// A version of the tenant's spec: the object's uid with its generation (its status writes do not
/// change it), else its resourceVersion. The uid tells a tenant deleted and made again under the
/// same name (its generation starts at 1 again) from the one before it: their Graph clients and
/// snapshots are never shared.
pub fn spec_version(tenant: &IntuneTenant) -> String {
    let uid = tenant.meta().uid.as_deref().unwrap_or_default();
    match tenant.meta().generation {
        Some(generation) => format!("{uid}.g{generation}"),
        None => format!("{uid}.{}", tenant.resource_version().unwrap_or_default()),
    }
}

/// Drops every cached Graph client of the tenant (its credentials were refused).
pub async fn forget_graph_client(ctx: &Context, tenant: &IntuneTenant) {
    let prefix = format!("{}@", tenant_prefix(tenant));
    ctx.graph_clients.lock().await.retain(|k, _| !k.starts_with(&prefix));
}

fn tenant_prefix(tenant: &IntuneTenant) -> String {
    format!("{}/{}", tenant.namespace().unwrap_or_default(), tenant.name_any())
}

/// A Graph client for the tenant (its Secret read now), cached until the tenant or its Secret
/// changes; credentials that no longer load drop the cached client.
pub async fn graph_client(ctx: &Context, tenant: &IntuneTenant) -> Result<GraphClient, CredentialError> {
    let (credentials, secret_version) = match load_credentials(&ctx.client, tenant).await {
        Ok(found) => found,
        Err(e) => {
            forget_graph_client(ctx, tenant).await;
            return Err(e);
        }
    };
    let key = format!("{}@{}/{}", tenant_prefix(tenant), spec_version(tenant), secret_version);
    if let Some(client) = ctx.graph_clients.lock().await.get(&key) {
        return Ok(client.clone());
    }
    let client = GraphClient::new_shared(
        &tenant.spec,
        credentials,
        ctx.graph_options.clone(),
        ctx.graph_stats.clone(),
        &ctx.write_budgets,
    )?;
    let mut cache = ctx.graph_clients.lock().await;
    let prefix = format!("{}/{}@", tenant.namespace().unwrap_or_default(), tenant.name_any());
    cache.retain(|k, _| !k.starts_with(&prefix));
    cache.insert(key, client.clone());
    Ok(client)
}

/// Checks the tenant's credentials and records `Ready`.
pub async fn reconcile(tenant: Arc<IntuneTenant>, ctx: Arc<Context>) -> Result<Action, ControllerError> {
    let name = tenant.name_any();
    let namespace = tenant.namespace().unwrap_or_default();
    let generation = tenant.meta().generation.unwrap_or(0);
    let now = jiff::Timestamp::now();
    let outcome = match graph_client(&ctx, &tenant).await {
        Ok(client) => client.verify().await.map_err(CredentialError::from),
        Err(e) => Err(e),
    };
    let old = tenant.status.clone().unwrap_or_default();
    let mut status = IntuneTenantStatus { observed_generation: Some(generation), ..old.clone() };
    let requeue = match &outcome {
        Ok(()) => {
            let msg = format!("a token was obtained for tenant {} and a Graph read succeeded", tenant.spec.tenant_id);
            set_condition(
                &mut status.conditions,
                Condition::yes(types::READY, reasons::CREDENTIALS_VERIFIED, msg),
                generation,
                now,
            );
            status.conditions.retain(|c| c.type_ != types::STALLED);
            RECHECK_READY
        }
        Err(e) => {
            tracing::warn!(tenant = %name, namespace = %namespace, reason = e.reason(), error = %e, "tenant credentials not usable");
            let msg = format!("{e}; fix spec.auth or its Secret");
            set_condition(
                &mut status.conditions,
                Condition::no(types::READY, e.reason(), msg.clone()),
                generation,
                now,
            );
            if e.reason() == reasons::GRAPH_UNAVAILABLE {
                status.conditions.retain(|c| c.type_ != types::STALLED);
            } else {
                set_condition(&mut status.conditions, Condition::yes(types::STALLED, e.reason(), msg), generation, now);
            }
            RECHECK_FAILING
        }
    };
    status.clamp_to_schema();
    // Skip the write when only the check time would change.
    let unchanged =
        IntuneTenantStatus { last_checked: None, ..status.clone() } == IntuneTenantStatus { last_checked: None, ..old };
    if !unchanged {
        status.last_checked = Some(rfc3339(now));
        let api: Api<IntuneTenant> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = serde_json::json!({"status": status});
        // Only the Lease holder records a verdict: a deposed replica's check may be stale.
        ctx.ensure_leading().await.map_err(ControllerError::Lease)?;
        api.patch_status(&name, &merge_patch_params(FIELD_MANAGER), &Patch::Merge(&patch)).await?;
    }
    Ok(Action::requeue(requeue))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(uid: &str, generation: i64) -> IntuneTenant {
        let spec = serde_json::from_value(serde_json::json!({
            "tenantId": "11111111-1111-1111-1111-111111111111", "displayName": "Prod", "environment": "production",
            "auth": {"clientId": "c", "clientSecretRef": {"name": "s", "key": "k"}}
        }))
        .expect("a tenant spec");
        let mut tenant = IntuneTenant::new("prod", spec);
        tenant.metadata.namespace = Some("intune".into());
        tenant.metadata.uid = Some(uid.into());
        tenant.metadata.generation = Some(generation);
        tenant
    }

    #[test]
    fn a_tenant_made_again_under_its_name_is_a_new_spec_version_and_shares_no_client_or_snapshot() {
        assert_eq!(spec_version(&tenant("uid-1", 1)), spec_version(&tenant("uid-1", 1)));
        assert_ne!(spec_version(&tenant("uid-1", 1)), spec_version(&tenant("uid-2", 1)));
        assert_ne!(spec_version(&tenant("uid-1", 1)), spec_version(&tenant("uid-1", 2)));
    }
}
