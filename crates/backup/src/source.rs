//! The four places a backup is loaded from — a local folder or archive, an HTTPS URL, a ConfigMap
//! and a Flux artifact — behind one `resolve` entry point that yields the same backup set.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use restore_core::api::{ArtifactKind, ArtifactRef, BackupFormat, SourceSpec};
use tokio::sync::Semaphore;

use crate::error::BackupError;
use crate::fetch::{Fetcher, Schemes};
use crate::limits::Limits;
use crate::tree::FileTree;
use crate::{Loaded, intunecd, native};

/// A ConfigMap's contents, as the cluster adapter reads them (`binaryData` already decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigMapData {
    /// `data`: UTF-8 values.
    pub data: BTreeMap<String, String>,
    /// `binaryData`: raw bytes.
    pub binary_data: BTreeMap<String, Vec<u8>>,
}

/// The artifact a Flux source currently serves (`status.artifact`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// `status.artifact.url`.
    pub url: String,
    /// `status.artifact.digest`, e.g. `sha256:…`.
    pub digest: String,
    /// `status.artifact.revision`, for messages.
    pub revision: Option<String>,
}

/// What the cluster knows about a Flux source object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FluxLookup {
    /// No such object.
    NotFound,
    /// The object exists but has no artifact yet; `message` tells why (its Ready condition).
    NoArtifact {
        /// Why, from the object's conditions.
        message: String,
    },
    /// The current artifact.
    Artifact(ArtifactInfo),
}

/// The cluster reads the sources need. The operator implements it with kube; tests in memory.
/// Errors are messages already free of secrets.
pub trait ClusterObjects: Send + Sync {
    /// The ConfigMap `namespace/name`, or `None` if it does not exist.
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigMapData>, String>> + Send;

    /// The Flux source `kind` `namespace/name` and its artifact.
    fn flux_artifact(
        &self,
        kind: ArtifactKind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<FluxLookup, String>> + Send;
}

/// Separator that stands for `/` in ConfigMap keys (which allow only `[-._a-zA-Z0-9]`).
pub const CONFIG_MAP_KEY_SEPARATOR: &str = "__";

/// The ConfigMap `data` key of a backup file: `items/scopeTag/0.json` → `items__scopeTag__0.json`.
pub fn config_map_key(path: &str) -> String {
    path.replace('/', CONFIG_MAP_KEY_SEPARATOR)
}

/// The backup path a ConfigMap `data` key stands for (the inverse of [`config_map_key`]).
pub fn path_of_config_map_key(key: &str) -> String {
    key.replace(CONFIG_MAP_KEY_SEPARATOR, "/")
}

/// A native backup as ConfigMap `data`: every file under its encoded key. Fails if two paths
/// encode to the same key (a path holding `__`).
pub fn config_map_data(set: &restore_core::backup::BackupSet) -> Result<BTreeMap<String, String>, BackupError> {
    let mut data = BTreeMap::new();
    for (path, bytes) in native::render(set)?.files {
        let text = String::from_utf8(bytes)
            .map_err(|_| BackupError::InvalidPath { path: path.clone(), reason: "content is not UTF-8" })?;
        if data.insert(config_map_key(&path), text).is_some() || path.contains(CONFIG_MAP_KEY_SEPARATOR) {
            return Err(BackupError::DuplicatePath { path });
        }
    }
    Ok(data)
}

/// Loads a backup from its files (already read within the limits) in the given layout.
pub fn load_tree(tree: &FileTree, format: BackupFormat) -> Result<Loaded, BackupError> {
    match format {
        BackupFormat::Native => native::parse(tree),
        BackupFormat::IntuneCd => intunecd::parse(tree),
    }
}

/// Loads a backup from a local folder or `.tar.gz` file; `folder` selects a folder inside it.
pub fn load_local(
    path: &Path,
    folder: Option<&str>,
    format: BackupFormat,
    limits: &Limits,
) -> Result<Loaded, BackupError> {
    let tree = crate::tree_from_path(path, limits)?.subtree(folder)?;
    load_tree(&tree, format)
}

/// Resolves a RestoreRun's `spec.source` in `namespace`: exactly one of `url` + `sha256`,
/// `configMapRef` or `artifactRef`, then `path` inside it, read in `format`. Downloads run on the
/// async runtime; unpacking, hashing and parsing run on a blocking thread (see [`load_off_runtime`]).
pub async fn resolve<C: ClusterObjects>(
    spec: &SourceSpec,
    namespace: &str,
    cluster: &C,
    fetcher: &Fetcher,
) -> Result<Loaded, BackupError> {
    let input = match (&spec.url, &spec.config_map_ref, &spec.artifact_ref) {
        (Some(url), None, None) => url_archive(url, spec.sha256.as_deref(), fetcher).await?,
        (None, Some(reference), None) => {
            let cm = cluster
                .config_map(namespace, &reference.name)
                .await
                .map_err(|message| BackupError::Cluster { message })?
                .ok_or_else(|| BackupError::ConfigMapNotFound {
                    namespace: namespace.into(),
                    name: reference.name.clone(),
                })?;
            config_map_input(cm, namespace, &reference.name, reference.key.as_deref())?
        }
        (None, None, Some(reference)) => flux_archive(reference, namespace, cluster, fetcher).await?,
        _ => {
            return Err(BackupError::InvalidSource {
                message: "set exactly one of url (with sha256), configMapRef or artifactRef".into(),
            });
        }
    };
    let limits = fetcher.limits().clone();
    let folder = spec.path.clone();
    let format = spec.format;
    load_off_runtime(&limits.clone(), move || {
        let tree = input.into_tree(&limits)?;
        load_tree(&tree.subtree(folder.as_deref())?, format)
    })
    .await
}

/// Runs a load (unpacking, hashing, parsing) on a blocking thread, at most
/// `max_concurrent_loads` at once per process, so health checks, Lease renewal and other runs
/// keep their async workers. A panic in the load becomes an error of this load only.
pub async fn load_off_runtime<T: Send + 'static>(
    limits: &Limits,
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    static LOADS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let loads = LOADS.get_or_init(|| Arc::new(Semaphore::new(limits.max_concurrent_loads.max(1)))).clone();
    let _permit =
        loads.acquire_owned().await.map_err(|_| BackupError::LoadFailed { message: "load queue closed".into() })?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BackupError::LoadFailed { message: format!("the load stopped unexpectedly: {e}") })?
}

/// The raw files of a source, before they are unpacked and parsed off the runtime.
enum SourceInput {
    /// A `.tar.gz` and how to name it in errors.
    Archive { bytes: Vec<u8>, subject: String },
    /// ConfigMap `data`: `(path, bytes)` pairs.
    Files(Vec<(String, Vec<u8>)>),
}

impl SourceInput {
    fn into_tree(self, limits: &Limits) -> Result<FileTree, BackupError> {
        match self {
            SourceInput::Archive { bytes, subject } => FileTree::from_tar_gz(&bytes, &subject, limits),
            SourceInput::Files(files) => FileTree::from_files(files, limits),
        }
    }
}

async fn url_archive(url: &str, sha256: Option<&str>, fetcher: &Fetcher) -> Result<SourceInput, BackupError> {
    let sha = sha256.ok_or_else(|| BackupError::InvalidSource { message: "url needs sha256".into() })?;
    let bytes = fetcher.fetch(url, &format!("sha256:{sha}"), Schemes::HttpsOnly).await?;
    Ok(SourceInput::Archive { bytes, subject: crate::fetch::redact_url(url) })
}

async fn flux_archive<C: ClusterObjects>(
    reference: &ArtifactRef,
    namespace: &str,
    cluster: &C,
    fetcher: &Fetcher,
) -> Result<SourceInput, BackupError> {
    let ns = reference.namespace.as_deref().unwrap_or(namespace);
    let kind = kind_name(reference.kind);
    if ns != namespace && !fetcher.policy().allow_cross_namespace_refs {
        return Err(BackupError::CrossNamespaceRefused {
            kind: kind.into(),
            namespace: ns.into(),
            name: reference.name.clone(),
            run_namespace: namespace.into(),
        });
    }
    let not_ready = |message: String| BackupError::FluxArtifactNotReady {
        kind: kind.into(),
        namespace: ns.into(),
        name: reference.name.clone(),
        message,
    };
    let lookup = cluster
        .flux_artifact(reference.kind, ns, &reference.name)
        .await
        .map_err(|message| BackupError::Cluster { message })?;
    let artifact = match lookup {
        FluxLookup::NotFound => {
            return Err(BackupError::FluxSourceNotFound {
                kind: kind.into(),
                namespace: ns.into(),
                name: reference.name.clone(),
            });
        }
        FluxLookup::NoArtifact { message } => return Err(not_ready(message)),
        FluxLookup::Artifact(artifact) => artifact,
    };
    if !artifact.digest.starts_with("sha256:") {
        return Err(not_ready(format!(
            "artifact digest {:?} is not sha256 (set the source's digest algorithm to sha256)",
            artifact.digest
        )));
    }
    tracing::info!(kind, namespace = ns, name = %reference.name, revision = ?artifact.revision, "fetching Flux artifact");
    let bytes = fetcher.fetch(&artifact.url, &artifact.digest, Schemes::HttpOrHttps).await?;
    Ok(SourceInput::Archive { bytes, subject: format!("{kind} {ns}/{} artifact", reference.name) })
}

fn config_map_input(
    cm: ConfigMapData,
    namespace: &str,
    name: &str,
    key: Option<&str>,
) -> Result<SourceInput, BackupError> {
    match key {
        Some(key) => {
            let mut binary = cm.binary_data;
            let bytes = binary.remove(key).ok_or_else(|| BackupError::ConfigMapKeyMissing {
                namespace: namespace.into(),
                name: name.into(),
                key: key.into(),
            })?;
            Ok(SourceInput::Archive { bytes, subject: format!("ConfigMap {namespace}/{name} key {key}") })
        }
        None => Ok(SourceInput::Files(
            cm.data.into_iter().map(|(k, v)| (path_of_config_map_key(&k), v.into_bytes())).collect(),
        )),
    }
}

fn kind_name(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::GitRepository => "GitRepository",
        ArtifactKind::OciRepository => "OCIRepository",
        ArtifactKind::Bucket => "Bucket",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_map_keys_round_trip_for_native_paths() {
        let path = native::item_path("settingsCatalogPolicy", "ab-12");
        let key = config_map_key(&path);
        assert_eq!(key, "items__settingsCatalogPolicy__ab-12.json");
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
        assert_eq!(path_of_config_map_key(&key), path);
    }
}
