//! `restore-operator probe`: read-only requests that exercise every Graph behaviour graph-sim
//! models, written as a sanitized transcript to compare the simulator with a real tenant.
//!
//! Only GETs and `$batch`es of GETs are sent (the Graph client refuses anything else in a probe).
//! The transcript holds no tenant data: per step the request template (fixed paths and made-up
//! values), the status, Graph's `error.code`, and yes/no facts about the answer's structure.

use std::collections::BTreeMap;
use std::path::PathBuf;

use restore_core::catalog::{ITEM_TYPES, IdentityKey, ItemType};
use restore_graph::{GraphClient, GraphError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cli::local_objects::LocalObjects;
use crate::cli::preview::{PreviewError, credentials};

/// Format of the transcript file.
pub const TRANSCRIPT_FORMAT: u32 = 1;

/// A property no Graph type has, to provoke the "unknown property" error with a read.
pub const NO_SUCH_PROPERTY: &str = "restoreProbeNoSuchProperty";

/// Options of `restore-operator probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The IntuneTenant manifest (and, with -f, the Secret holding its credentials).
    #[arg(long, value_name = "FILE")]
    pub tenant: PathBuf,
    /// Further manifests (the Secret named by `auth.clientSecretRef`).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read the client secret from this environment variable instead of a Secret manifest.
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// Where to write the transcript (default: standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Reading the manifests or the credentials failed.
    #[error(transparent)]
    Input(#[from] PreviewError),
    /// The manifests hold no IntuneTenant.
    #[error("no IntuneTenant in {0}")]
    NoTenant(String),
    /// The Graph client could not be built or a request got no answer.
    #[error("Graph: {0}")]
    Graph(#[from] GraphError),
    /// Writing the transcript failed.
    #[error("writing the transcript failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What one probe step saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Stable step name (`filter-or deviceManagement/deviceConfigurations`).
    pub step: String,
    /// The request, as a template without tenant data.
    pub request: String,
    /// HTTP status.
    pub status: u16,
    /// Graph's `error.code`, when the answer is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Structural facts about the answer.
    pub facts: BTreeMap<String, bool>,
}

/// A probe's transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcript {
    /// [`TRANSCRIPT_FORMAT`].
    pub format: u32,
    /// Where it was taken: `graph-sim` or `real tenant` (never the tenant's id or name).
    pub target: String,
    /// The steps, in order.
    pub observations: Vec<Observation>,
}

impl Transcript {
    /// Differences in behaviour from `other`, step by step (status, error code, facts).
    pub fn differences(&self, other: &Transcript) -> Vec<String> {
        let theirs: BTreeMap<&str, &Observation> = other.observations.iter().map(|o| (o.step.as_str(), o)).collect();
        let mut out = Vec::new();
        for mine in &self.observations {
            match theirs.get(mine.step.as_str()) {
                None => out.push(format!("{}: not probed on the other side", mine.step)),
                Some(o) if o.status != mine.status || o.error_code != mine.error_code => out.push(format!(
                    "{}: {} {:?} here, {} {:?} there",
                    mine.step, mine.status, mine.error_code, o.status, o.error_code
                )),
                Some(o) => {
                    for (fact, value) in &mine.facts {
                        if o.facts.get(fact) != Some(value) {
                            out.push(format!("{}: {fact} is {value} here, {:?} there", mine.step, o.facts.get(fact)));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Runs `restore-operator probe`.
pub async fn run(args: &ProbeArgs) -> Result<(), ProbeError> {
    let mut objects = LocalObjects::new();
    for file in std::iter::once(&args.tenant).chain(&args.files) {
        objects.load_file(file).map_err(PreviewError::from)?;
    }
    let tenant =
        objects.tenants().first().cloned().ok_or_else(|| ProbeError::NoTenant(args.tenant.display().to_string()))?;
    let namespace = tenant.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
    let creds = credentials(&tenant.spec, &namespace, &objects, args.client_secret_env.as_deref())?;
    let client = GraphClient::new(&tenant.spec, creds, super::preview::cli_graph_options())?;
    let loopback =
        ["http://127.", "http://localhost", "http://[::1]"].iter().any(|p| tenant.spec.graph.endpoint.starts_with(p));
    let transcript = probe(&client, if loopback { "graph-sim" } else { "real tenant" }).await?;
    let text = serde_json::to_string_pretty(&transcript).map_err(std::io::Error::other)? + "\n";
    match &args.output {
        Some(path) => std::fs::write(path, text)?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Every probe step against `client`.
pub async fn probe(client: &GraphClient, target: &str) -> Result<Transcript, GraphError> {
    let mut observations = Vec::new();
    // A collection under a parent's item (Apple enrollment profiles under a token) has no path of
    // its own to probe.
    for ty in ITEM_TYPES.iter().filter(|t| !restore_core::engine::apple_enrollment::is_parent_scoped(t)) {
        for step in collection_steps(ty) {
            observations.push(step.run(client).await?);
        }
        observations.push(paging_step(client, ty.collection).await?);
    }
    for collection in ["deviceAppManagement/managedAppPolicies", "deviceManagement/compliancePolicies"] {
        observations.push(
            Step::get("model-collection", collection, format!("{collection}?$top=1"), page_facts).run(client).await?,
        );
    }
    observations.push(
        Step::get("unknown-segment", "deviceManagement", "deviceManagement/restoreProbeNoSuchThings".into(), no_facts)
            .run(client)
            .await?,
    );
    observations.push(batch_step(client).await?);
    Ok(Transcript { format: TRANSCRIPT_FORMAT, target: target.to_string(), observations })
}

type Facts = fn(&Value, &str) -> BTreeMap<String, bool>;

struct Step {
    name: String,
    path: String,
    facts: Facts,
    key: &'static str,
}

impl Step {
    fn get(kind: &str, collection: &str, path: String, facts: Facts) -> Step {
        Step { name: format!("{kind} {collection}"), path, facts, key: "displayName" }
    }

    async fn run(&self, client: &GraphClient) -> Result<Observation, GraphError> {
        let (status, body) = client.probe_read(&self.path, None).await?;
        Ok(observe(&self.name, format!("GET {}", self.path), status, body.as_ref(), |b| (self.facts)(b, self.key)))
    }
}

fn name_key(ty: &ItemType) -> &'static str {
    match ty.identity {
        IdentityKey::DisplayName => "displayName",
        IdentityKey::NameAndTechnologies => "name",
    }
}

fn collection_steps(ty: &ItemType) -> Vec<Step> {
    let c = ty.collection;
    let key = name_key(ty);
    let mut steps = vec![
        Step::get("top", c, format!("{c}?$top=1"), page_facts),
        Step::get("top-without-dollar", c, format!("{c}?top=1"), page_facts),
        Step::get("top-above-default", c, format!("{c}?$top=999"), no_facts),
        Step::get(
            "filter-or",
            c,
            format!("{c}?$filter={key}%20eq%20'restore-probe-a'%20or%20{key}%20eq%20'restore-probe-b'"),
            filter_facts,
        ),
        Step { key, ..Step::get("select", c, format!("{c}?$select={key}&$top=5"), select_facts) },
        Step::get("select-unknown", c, format!("{c}?$select={NO_SUCH_PROPERTY}"), no_facts),
    ];
    if ty.assignable {
        steps.push(Step::get("expand-assignments", c, format!("{c}?$expand=assignments&$top=1"), expand_facts));
    }
    steps
}

fn observe(
    step: &str,
    request: String,
    status: u16,
    body: Option<&Value>,
    facts: impl Fn(&Value) -> BTreeMap<String, bool>,
) -> Observation {
    let error_code = body.and_then(|b| b["error"]["code"].as_str()).map(str::to_string);
    let facts = match body {
        Some(b) if (200..300).contains(&status) => facts(b),
        _ => BTreeMap::new(),
    };
    Observation { step: step.to_string(), request, status, error_code, facts }
}

fn no_facts(_: &Value, _: &str) -> BTreeMap<String, bool> {
    BTreeMap::new()
}

fn items(body: &Value) -> Vec<&serde_json::Map<String, Value>> {
    body["value"].as_array().map(|v| v.iter().filter_map(Value::as_object).collect()).unwrap_or_default()
}

/// Facts of a `$top=1` page.
fn page_facts(body: &Value, _: &str) -> BTreeMap<String, bool> {
    BTreeMap::from([
        ("valueIsArray".into(), body["value"].is_array()),
        ("pageWithinTop".into(), items(body).len() <= 1),
    ])
}

fn filter_facts(body: &Value, _: &str) -> BTreeMap<String, bool> {
    let names_match = items(body).iter().all(|i| {
        i.values().any(|v| {
            v.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("restore-probe-a") || s.eq_ignore_ascii_case("restore-probe-b"))
        })
    });
    BTreeMap::from([("valueIsArray".into(), body["value"].is_array()), ("onlyMatchingItems".into(), names_match)])
}

fn select_facts(body: &Value, key: &str) -> BTreeMap<String, bool> {
    let list = items(body);
    let keeps_id = list.iter().all(|i| i.contains_key("id"));
    let only_selected = list.iter().all(|i| i.keys().all(|k| k == "id" || k == key || k.starts_with('@')));
    BTreeMap::from([("keepsId".into(), keeps_id), ("onlySelected".into(), only_selected)])
}

fn expand_facts(body: &Value, _: &str) -> BTreeMap<String, bool> {
    let expanded = items(body).iter().all(|i| i.get("assignments").is_some_and(Value::is_array));
    BTreeMap::from([("assignmentsExpanded".into(), expanded)])
}

/// Paging: a one-item page of a collection holding more offers `@odata.nextLink`, and following it
/// gives the next page (the link's host and token are not recorded, only that it was followed).
async fn paging_step(client: &GraphClient, collection: &str) -> Result<Observation, GraphError> {
    let first = format!("{collection}?$top=1");
    let name = format!("next-page {collection}");
    let (status, body) = client.probe_read(&first, None).await?;
    let link = body
        .as_ref()
        .and_then(|b| b["@odata.nextLink"].as_str())
        .and_then(|link| link.split_once("/beta/").map(|(_, path)| path.to_string()));
    let Some(link) = link else {
        let offered = |_: &Value| BTreeMap::from([("nextLinkOffered".to_string(), false)]);
        return Ok(observe(&name, format!("GET {first}"), status, body.as_ref(), offered));
    };
    let (status, next) = client.probe_read(&link, None).await?;
    Ok(observe(&name, format!("GET @odata.nextLink of {first}"), status, next.as_ref(), |b| {
        BTreeMap::from([
            ("nextLinkOffered".to_string(), true),
            ("nextPageIsArray".to_string(), b["value"].is_array()),
            ("nextPageWithinTop".to_string(), items(b).len() <= 1),
        ])
    }))
}

/// A `$batch` of two GETs with numeric ids, as IntuneCD sends.
async fn batch_step(client: &GraphClient) -> Result<Observation, GraphError> {
    let body = json!({"requests": [
        {"id": 1, "method": "GET", "url": "/deviceManagement/roleScopeTags?$top=1"},
        {"id": 2, "method": "GET", "url": "/deviceManagement/assignmentFilters?$top=1"},
    ]});
    let (status, answer) = client.probe_read("$batch", Some(&body)).await?;
    Ok(observe("batch-numeric-ids", format!("POST $batch {body}"), status, answer.as_ref(), |b| {
        let responses = b["responses"].as_array().cloned().unwrap_or_default();
        let mut ids: Vec<String> = responses.iter().map(|r| r["id"].to_string()).collect();
        ids.sort();
        BTreeMap::from([
            ("idsEchoedAsStrings".into(), ids == ["\"1\"", "\"2\""]),
            ("everySubRequestOk".into(), responses.iter().all(|r| r["status"] == 200)),
        ])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(status: u16, keeps_id: bool) -> Transcript {
        Transcript {
            format: TRANSCRIPT_FORMAT,
            target: "x".into(),
            observations: vec![Observation {
                step: "select c".into(),
                request: "GET c?$select=displayName".into(),
                status,
                error_code: None,
                facts: BTreeMap::from([("keepsId".to_string(), keeps_id)]),
            }],
        }
    }

    #[test]
    fn differences_name_the_step_and_what_differs() {
        assert!(transcript(200, true).differences(&transcript(200, true)).is_empty());
        assert_eq!(transcript(200, true).differences(&transcript(400, true)).len(), 1);
        let diff = transcript(200, true).differences(&transcript(200, false));
        assert!(diff[0].contains("keepsId"), "{diff:?}");
    }
}
