//! Kubernetes objects read from YAML manifests on disk instead of a cluster: RestoreRuns, IntuneTenants,
//! Secrets, ConfigMaps and Flux sources, served to the backup sources through `ClusterObjects`.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use restore_backup::source::{ArtifactInfo, ClusterObjects, ConfigMapData, FluxLookup};
use restore_core::api::{ArtifactKind, ConfigMapSourceRef, SourceSpec};
use serde_yaml::Value;

use crate::kube::{IntuneTenant, RestoreRun};

/// The API group of Flux's source objects.
const FLUX_SOURCE_GROUP: &str = "source.toolkit.fluxcd.io/";

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LocalObjectsError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A document is not valid YAML, or not a valid object of its kind.
    #[error("{origin}, document {document}: {message}")]
    Invalid {
        /// The file (or other origin).
        origin: String,
        /// 1-based document number within it.
        document: usize,
        /// What is wrong (never a Secret's value).
        message: String,
    },
}

/// An object's namespace and name. `None` means the manifest named no namespace: it stands for
/// whatever namespace is asked for, as `kubectl apply -f` puts it in the current one.
type Key = (Option<String>, String);

/// The objects of a set of manifests.
#[derive(Clone, Default)]
pub struct LocalObjects {
    restore_runs: Vec<RestoreRun>,
    tenants: Vec<IntuneTenant>,
    config_maps: BTreeMap<Key, ConfigMapData>,
    secrets: BTreeMap<Key, BTreeMap<String, Vec<u8>>>,
    flux: BTreeMap<(ArtifactKind, Option<String>, String), FluxLookup>,
    /// `kind namespace/name` of documents of other kinds, which are not used.
    ignored: Vec<String>,
}

impl std::fmt::Debug for LocalObjects {
    /// Lists what was read; Secret values never appear.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjects")
            .field("restore_runs", &self.restore_runs.len())
            .field("tenants", &self.tenants.len())
            .field("config_maps", &self.config_maps.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("flux_sources", &self.flux.keys().collect::<Vec<_>>())
            .field("ignored", &self.ignored)
            .finish()
    }
}

fn lookup<'m, V>(map: &'m BTreeMap<Key, V>, namespace: &str, name: &str) -> Option<&'m V> {
    map.get(&(Some(namespace.to_string()), name.to_string())).or_else(|| map.get(&(None, name.to_string())))
}

fn text<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |v, key| v.get(*key)).and_then(Value::as_str)
}

impl LocalObjects {
    /// An empty set.
    pub fn new() -> Self {
        LocalObjects::default()
    }

    /// Reads every document of a YAML file (`---`-separated; `kind: List` is unpacked).
    pub fn load_file(&mut self, path: &Path) -> Result<(), LocalObjectsError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| LocalObjectsError::Read { path: shown.clone(), source })?;
        self.load_str(&text, &shown)
    }

    /// Reads every document of YAML `text`; `origin` names it in errors.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<(), LocalObjectsError> {
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let invalid = |message: String| LocalObjectsError::Invalid {
                origin: origin.to_string(),
                document: index + 1,
                message,
            };
            let value =
                serde::Deserialize::deserialize(document).map_err(|e: serde_yaml::Error| invalid(e.to_string()))?;
            self.add(value).map_err(invalid)?;
        }
        Ok(())
    }

    /// Adds one object (a mapping with `apiVersion` and `kind`); `null` documents are skipped.
    fn add(&mut self, value: Value) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        let kind = text(&value, &["kind"]).ok_or("the document has no kind")?.to_string();
        let api_version = text(&value, &["apiVersion"]).unwrap_or_default().to_string();
        let namespace = text(&value, &["metadata", "namespace"]).map(str::to_string);
        let name = text(&value, &["metadata", "name"]).unwrap_or_default().to_string();
        let decode_error = |e: serde_yaml::Error| format!("{kind} {name:?}: {e}");
        match (kind.as_str(), api_version.as_str()) {
            ("List", _) => {
                let items = value.get("items").and_then(Value::as_sequence).cloned().unwrap_or_default();
                for item in items {
                    self.add(item)?;
                }
            }
            ("RestoreRun", v) if v.starts_with(restore_core::api::GROUP) => {
                self.restore_runs.push(serde_yaml::from_value(value).map_err(decode_error)?);
            }
            ("IntuneTenant", v) if v.starts_with(restore_core::api::GROUP) => {
                self.tenants.push(serde_yaml::from_value(value).map_err(decode_error)?);
            }
            ("ConfigMap", "v1") => {
                let cm: ConfigMap = serde_yaml::from_value(value).map_err(decode_error)?;
                let data = ConfigMapData {
                    data: cm.data.unwrap_or_default(),
                    binary_data: cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(),
                };
                self.config_maps.insert((namespace, name), data);
            }
            ("Secret", "v1") => {
                // Decoding errors of a Secret could quote its content: report only where it failed.
                let secret: Secret =
                    serde_yaml::from_value(value).map_err(|_| format!("Secret {name:?} is not a valid Secret"))?;
                let mut data: BTreeMap<String, Vec<u8>> =
                    secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                data.extend(secret.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
                self.secrets.insert((namespace, name), data);
            }
            (kind_name @ ("GitRepository" | "OCIRepository" | "Bucket"), v) if v.starts_with(FLUX_SOURCE_GROUP) => {
                let kind = match kind_name {
                    "GitRepository" => ArtifactKind::GitRepository,
                    "OCIRepository" => ArtifactKind::OciRepository,
                    _ => ArtifactKind::Bucket,
                };
                self.flux.insert((kind, namespace, name), flux_lookup(&value));
            }
            _ => self.ignored.push(format!("{kind} {}/{name}", namespace.as_deref().unwrap_or("-"))),
        }
        Ok(())
    }

    /// Adds a ConfigMap held in memory (the `--backup` override and the demo use one).
    pub fn insert_config_map(&mut self, namespace: Option<&str>, name: &str, data: ConfigMapData) {
        self.config_maps.insert((namespace.map(str::to_string), name.to_string()), data);
    }

    /// Adds an in-memory ConfigMap holding a backup `.tar.gz` under `binaryData[key]`, and returns the
    /// `spec.source` that reads it.
    pub fn insert_archive(&mut self, namespace: Option<&str>, name: &str, key: &str, archive: Vec<u8>) -> SourceSpec {
        let data = ConfigMapData { binary_data: [(key.to_string(), archive)].into(), ..ConfigMapData::default() };
        self.insert_config_map(namespace, name, data);
        SourceSpec {
            config_map_ref: Some(ConfigMapSourceRef { name: name.into(), key: Some(key.into()) }),
            ..SourceSpec::default()
        }
    }

    /// The RestoreRuns read.
    pub fn restore_runs(&self) -> &[RestoreRun] {
        &self.restore_runs
    }

    /// The IntuneTenants read.
    pub fn tenants(&self) -> &[IntuneTenant] {
        &self.tenants
    }

    /// The IntuneTenant `name` in `namespace` (or one that names no namespace).
    pub fn tenant(&self, namespace: &str, name: &str) -> Option<&IntuneTenant> {
        let matches = |t: &&IntuneTenant| t.metadata.name.as_deref() == Some(name);
        let exact = self.tenants.iter().filter(matches).find(|t| t.metadata.namespace.as_deref() == Some(namespace));
        exact.or_else(|| self.tenants.iter().filter(matches).find(|t| t.metadata.namespace.is_none()))
    }

    /// The data of the Secret `name` in `namespace` (`data` decoded, `stringData` merged over it).
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        lookup(&self.secrets, namespace, name)
    }

    /// `kind namespace/name` of the documents of kinds this command does not use.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }
}

/// What a Flux source object's status says about its artifact.
fn flux_lookup(value: &Value) -> FluxLookup {
    let artifact = value.get("status").and_then(|s| s.get("artifact"));
    let url = artifact.and_then(|a| text(a, &["url"]));
    let digest = artifact.and_then(|a| text(a, &["digest"]));
    match (url, digest) {
        (Some(url), Some(digest)) => FluxLookup::Artifact(ArtifactInfo {
            url: url.to_string(),
            digest: digest.to_string(),
            revision: artifact.and_then(|a| text(a, &["revision"])).map(str::to_string),
        }),
        _ => {
            let ready = value
                .get("status")
                .and_then(|s| s.get("conditions"))
                .and_then(Value::as_sequence)
                .and_then(|c| c.iter().find(|c| text(c, &["type"]) == Some("Ready")))
                .and_then(|c| text(c, &["message"]));
            FluxLookup::NoArtifact {
                message: ready.unwrap_or("the manifest has no status.artifact with url and digest").to_string(),
            }
        }
    }
}

impl ClusterObjects for LocalObjects {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, String> {
        Ok(lookup(&self.config_maps, namespace, name).cloned())
    }

    async fn flux_artifact(&self, kind: ArtifactKind, namespace: &str, name: &str) -> Result<FluxLookup, String> {
        let found = self
            .flux
            .get(&(kind, Some(namespace.to_string()), name.to_string()))
            .or_else(|| self.flux.get(&(kind, None, name.to_string())));
        Ok(found.cloned().unwrap_or(FluxLookup::NotFound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: graph-app, namespace: intune}
type: Opaque
data:
  clientSecret: c2VjcmV0LXZhbHVl
stringData:
  other: plain
---
apiVersion: v1
kind: ConfigMap
metadata: {name: backup}
data:
  manifest.json: "{}"
binaryData:
  backup.tar.gz: AAEC
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: intune-backups, namespace: flux-system}
status:
  artifact: {url: "http://source-controller/a.tar.gz", digest: "sha256:abc", revision: "main@sha1:1"}
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {name: pending, namespace: flux-system}
status:
  conditions: [{type: Ready, status: "False", message: "authentication failed"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: intune}
---
"#;

    #[tokio::test]
    async fn every_kind_a_source_needs_is_read_and_served_by_namespace_and_name() {
        let mut objects = LocalObjects::new();
        objects.load_str(MANIFESTS, "test.yaml").unwrap();

        let secret = objects.secret("intune", "graph-app").unwrap();
        assert_eq!(secret["clientSecret"], b"secret-value");
        assert_eq!(secret["other"], b"plain");
        assert!(objects.secret("other-namespace", "graph-app").is_none());

        // A ConfigMap without a namespace serves whichever namespace asks.
        let cm = objects.config_map("intune", "backup").await.unwrap().unwrap();
        assert_eq!(cm.data["manifest.json"], "{}");
        assert_eq!(cm.binary_data["backup.tar.gz"], vec![0, 1, 2]);
        assert!(objects.config_map("intune", "missing").await.unwrap().is_none());

        match objects.flux_artifact(ArtifactKind::GitRepository, "flux-system", "intune-backups").await.unwrap() {
            FluxLookup::Artifact(a) => {
                assert_eq!((a.url.as_str(), a.digest.as_str()), ("http://source-controller/a.tar.gz", "sha256:abc"));
                assert_eq!(a.revision.as_deref(), Some("main@sha1:1"));
            }
            other => panic!("{other:?}"),
        }
        let pending = objects.flux_artifact(ArtifactKind::OciRepository, "flux-system", "pending").await.unwrap();
        assert_eq!(pending, FluxLookup::NoArtifact { message: "authentication failed".into() });
        let missing = objects.flux_artifact(ArtifactKind::Bucket, "flux-system", "pending").await.unwrap();
        assert_eq!(missing, FluxLookup::NotFound);
        assert_eq!(objects.ignored(), ["Deployment intune/web"]);
    }

    #[test]
    fn restore_runs_and_tenants_are_typed_and_lists_are_unpacked() {
        let mut objects = LocalObjects::new();
        let list = r#"
apiVersion: v1
kind: List
items:
- apiVersion: tenantatlas.io/v1alpha1
  kind: IntuneTenant
  metadata: {name: contoso, namespace: intune}
  spec:
    tenantId: 6f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b
    displayName: Contoso Production
    environment: production
    auth: {clientId: app, clientSecretRef: {name: graph-app}}
- apiVersion: tenantatlas.io/v1alpha1
  kind: RestoreRun
  metadata: {name: restore}
  spec:
    tenantRef: {name: contoso}
    source: {configMapRef: {name: backup}}
"#;
        objects.load_str(list, "list.yaml").unwrap();
        assert_eq!(objects.restore_runs().len(), 1);
        assert!(objects.restore_runs()[0].spec.dry_run, "dryRun defaults to true");
        let tenant = objects.tenant("intune", "contoso").unwrap();
        assert_eq!(tenant.spec.display_name, "Contoso Production");
        assert_eq!(tenant.spec.auth.client_secret_ref.as_ref().unwrap().key, "clientSecret");
        assert!(objects.tenant("other", "contoso").is_none());
    }

    #[test]
    fn invalid_documents_name_the_file_and_document_and_never_echo_a_secret() {
        let mut objects = LocalObjects::new();
        let bad_secret =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {clientSecret: not-base64-TOPSECRET!}\n";
        let error = objects.load_str(bad_secret, "secret.yaml").unwrap_err().to_string();
        assert!(error.starts_with("secret.yaml, document 1: Secret \"s\""), "{error}");
        assert!(!error.contains("TOPSECRET"), "{error}");

        let error = objects.load_str("---\nkind: [\n", "broken.yaml").unwrap_err().to_string();
        assert!(error.starts_with("broken.yaml, document 1:"), "{error}");
        let error = objects.load_str("apiVersion: v1\nmetadata: {name: x}\n", "nokind.yaml").unwrap_err();
        assert!(error.to_string().contains("no kind"), "{error}");
        let error = objects
            .load_str(
                "apiVersion: tenantatlas.io/v1alpha1\nkind: RestoreRun\nmetadata: {name: r}\nspec: {}\n",
                "r.yaml",
            )
            .unwrap_err();
        assert!(error.to_string().contains("RestoreRun \"r\""), "{error}");
    }
}
