//! ConfigMaps owned by a RestoreRun: the full preview report and the execution progress record,
//! gzip-compressed JSON in labelled chunks, read back only when this controller provably wrote them.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::kube::{FIELD_MANAGER, RestoreRun};

/// Label naming the RestoreRun a ConfigMap belongs to.
pub const RUN_LABEL: &str = "tenantatlas.io/restorerun";
/// Label naming what a ConfigMap holds (`report` or `progress`).
pub const KIND_LABEL: &str = "tenantatlas.io/content";
/// Annotation with the chunk index and count (`0/3`).
pub const CHUNK_ANNOTATION: &str = "tenantatlas.io/chunk";
/// Annotation with the digest of the stored document (the preview digest for reports).
pub const DIGEST_ANNOTATION: &str = "tenantatlas.io/digest";
/// Key of the compressed bytes in `binaryData`.
pub const DATA_KEY: &str = "content.json.gz";
/// Largest chunk per ConfigMap (the API server allows ~1 MiB per object).
pub const CHUNK_BYTES: usize = 900 * 1024;
/// Largest document accepted back after decompression (hostile or corrupt data).
pub const MAX_DOCUMENT_BYTES: u64 = 256 * 1024 * 1024;

/// What a stored document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The full preview report.
    Report,
    /// The execution progress record.
    Progress,
}

impl Content {
    /// The value of [`KIND_LABEL`] for this document.
    pub fn label(self) -> &'static str {
        match self {
            Content::Report => "report",
            Content::Progress => "progress",
        }
    }
}

/// Why a stored document could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Kubernetes API refused or failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The stored data is not valid (missing chunk, bad gzip, bad JSON).
    #[error("stored {what} is unreadable: {message}")]
    Corrupt {
        /// Which document.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Compression failed.
    #[error("compressing failed: {0}")]
    Io(#[from] std::io::Error),
    /// A ConfigMap of that name exists and belongs to someone else: it is never taken over.
    #[error("ConfigMap {name} exists and is not this run's; rename it or the RestoreRun")]
    Foreign {
        /// The ConfigMap's name.
        name: String,
    },
    /// A ConfigMap labelled as this run's record was not written by this controller for this run.
    #[error("ConfigMap {name} is labelled as this run's {what} but {why}; it is not trusted")]
    Untrusted {
        /// The ConfigMap's name.
        name: String,
        /// Which document.
        what: &'static str,
        /// What gave it away.
        why: String,
    },
}

/// The name of chunk `index` of a run's document.
pub fn chunk_name(run: &str, content: Content, index: usize) -> String {
    let base = format!("{run}-{}", content.label());
    let base: String = base.chars().take(240).collect();
    if index == 0 { base } else { format!("{base}-{index}") }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn gunzip(bytes: &[u8], what: &'static str) -> Result<Vec<u8>, StoreError> {
    gunzip_at_most(bytes, what, MAX_DOCUMENT_BYTES)
}

/// Decompresses at most `limit` bytes: a larger document is refused, never cut short.
fn gunzip_at_most(bytes: &[u8], what: &'static str, limit: u64) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt { what, message: e.to_string() })?;
    if out.len() as u64 > limit {
        return Err(StoreError::Corrupt { what, message: "larger than allowed".into() });
    }
    Ok(out)
}

fn owner(run: &RestoreRun) -> Option<OwnerReference> {
    run.controller_owner_ref(&())
}

/// Writes `document` (JSON bytes) as gzip chunks owned by `run`, then deletes chunks a larger
/// earlier version left behind. Returns the name of the first ConfigMap.
pub async fn write(
    api: &Api<ConfigMap>,
    run: &RestoreRun,
    content: Content,
    document: &[u8],
    digest: &str,
) -> Result<String, StoreError> {
    let name = run.name_any();
    let compressed = gzip(document)?;
    let chunks: Vec<&[u8]> =
        if compressed.is_empty() { vec![&[][..]] } else { compressed.chunks(CHUNK_BYTES).collect() };
    let count = chunks.len();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let uid = run.uid().unwrap_or_default();
    for (index, chunk) in chunks.iter().enumerate() {
        let object_name = chunk_name(&name, content, index);
        if let Some(existing) = api.get_opt(&object_name).await? {
            let ours = existing.labels().get(RUN_LABEL) == Some(&name)
                && existing.owner_references().iter().any(|o| o.uid == uid);
            if !ours {
                return Err(StoreError::Foreign { name: object_name });
            }
        }
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(object_name.clone()),
                namespace: run.namespace(),
                labels: Some(BTreeMap::from([
                    (RUN_LABEL.to_string(), name.clone()),
                    (KIND_LABEL.to_string(), content.label().to_string()),
                    ("app.kubernetes.io/managed-by".to_string(), "restore-operator".to_string()),
                ])),
                annotations: Some(BTreeMap::from([
                    (CHUNK_ANNOTATION.to_string(), format!("{index}/{count}")),
                    (DIGEST_ANNOTATION.to_string(), digest.to_string()),
                ])),
                owner_references: owner(run).map(|o| vec![o]),
                ..Default::default()
            },
            binary_data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(chunk.to_vec()))])),
            ..Default::default()
        };
        let mut body =
            serde_json::to_value(&cm).map_err(|e| StoreError::Corrupt { what: "configmap", message: e.to_string() })?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "ConfigMap".into();
        api.patch(&object_name, &params, &Patch::Apply(&body)).await?;
    }
    // Remove chunks beyond the new count (an earlier, larger document).
    let selector = format!("{RUN_LABEL}={name},{KIND_LABEL}={}", content.label());
    for cm in api.list(&ListParams::default().labels(&selector)).await? {
        let index = cm
            .annotations()
            .get(CHUNK_ANNOTATION)
            .and_then(|c| c.split('/').next())
            .and_then(|i| i.parse::<usize>().ok());
        // Only chunks of this run's own writes are removed; anything else is left to its owner.
        if index.is_none_or(|i| i >= count) && distrust(&cm, &uid).is_none() {
            api.delete(&cm.name_any(), &DeleteParams::default()).await?;
        }
    }
    Ok(chunk_name(&name, content, 0))
}

/// Why a ConfigMap labelled as a run's record is not to be trusted: it must be owned (as its
/// controller) by the run with `run_uid`, and written only by this controller's field manager.
pub fn distrust(cm: &ConfigMap, run_uid: &str) -> Option<String> {
    let owned = cm.owner_references().iter().any(|o| o.uid == run_uid && o.controller == Some(true));
    if !owned {
        return Some("it is not owned by this RestoreRun".into());
    }
    let managed = cm.managed_fields();
    if let Some(other) = managed.iter().filter_map(|m| m.manager.as_deref()).find(|m| *m != FIELD_MANAGER) {
        return Some(format!("it was also written by {other:?}"));
    }
    None
}

/// Reads a stored document back: `Ok(None)` when none is stored. `digest` is the annotation it
/// was written with, so a caller can tell whether it is the one it expects. Every chunk must be
/// owned by the run `run_uid` and written by this controller only; a chunk index seen twice is
/// refused.
pub async fn read(
    api: &Api<ConfigMap>,
    run_name: &str,
    run_uid: &str,
    content: Content,
) -> Result<Option<(Vec<u8>, String)>, StoreError> {
    let what: &'static str = content.label();
    let selector = format!("{RUN_LABEL}={run_name},{KIND_LABEL}={what}");
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    if list.items.is_empty() {
        return Ok(None);
    }
    let mut chunks: BTreeMap<usize, (Vec<u8>, String)> = BTreeMap::new();
    let mut expected = None;
    for cm in &list.items {
        if let Some(why) = distrust(cm, run_uid) {
            return Err(StoreError::Untrusted { name: cm.name_any(), what, why });
        }
        let chunk = cm.annotations().get(CHUNK_ANNOTATION).cloned().unwrap_or_default();
        let mut parts = chunk.split('/').map(str::parse::<usize>);
        let (Some(Ok(index)), Some(Ok(count))) = (parts.next(), parts.next()) else {
            return Err(StoreError::Corrupt {
                what,
                message: format!("{} has no valid chunk annotation", cm.name_any()),
            });
        };
        if *expected.get_or_insert(count) != count {
            return Err(StoreError::Corrupt { what, message: "chunks of different writes are mixed".into() });
        }
        let bytes = cm.binary_data.as_ref().and_then(|d| d.get(DATA_KEY)).map(|b| b.0.clone()).unwrap_or_default();
        let digest = cm.annotations().get(DIGEST_ANNOTATION).cloned().unwrap_or_default();
        if chunks.insert(index, (bytes, digest)).is_some() {
            return Err(StoreError::Corrupt { what, message: format!("chunk {index} is stored twice") });
        }
    }
    let count = expected.unwrap_or(0);
    if chunks.len() != count || chunks.keys().copied().ne(0..count) {
        return Err(StoreError::Corrupt { what, message: format!("{} of {count} chunks present", chunks.len()) });
    }
    let digests: Vec<&String> = chunks.values().map(|(_, d)| d).collect();
    if digests.windows(2).any(|w| w[0] != w[1]) {
        return Err(StoreError::Corrupt { what, message: "chunks carry different digests".into() });
    }
    let digest = digests.first().map(|d| (*d).clone()).unwrap_or_default();
    let compressed: Vec<u8> = chunks.into_values().flat_map(|(b, _)| b).collect();
    Ok(Some((gunzip(&compressed, what)?, digest)))
}

/// The run's stored preview report, shown only when it is exactly the preview whose digest status
/// records (`digest`): every field an approver reads is covered by that digest.
pub async fn read_verified_report(
    api: &Api<ConfigMap>,
    run: &RestoreRun,
    digest: &str,
) -> Result<Option<restore_core::engine::preview::PreviewReport>, StoreError> {
    let uid = run.uid().unwrap_or_default();
    let Some((bytes, _)) = read(api, &run.name_any(), &uid, Content::Report).await? else { return Ok(None) };
    let mut report: restore_core::engine::preview::PreviewReport =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt { what: "report", message: e.to_string() })?;
    // Shared first (the same text either way), so the digest checks the report as it is returned
    // and writes each unchanged item's text once.
    report.share_states_written_alike();
    if report.digest() != digest {
        return Err(StoreError::Untrusted {
            name: chunk_name(&run.name_any(), Content::Report, 0),
            what: "report",
            why: format!("its content does not have the preview digest {digest} recorded in status"),
        });
    }
    Ok(Some(report))
}

/// The run's stored progress record as far as status vouches for it: written for the approved
/// preview `approved`, and its first `completedSteps` steps have the digest status recorded. Steps
/// beyond those (stored before status caught up) are left out; anything else is refused.
pub async fn read_verified_progress(
    api: &Api<ConfigMap>,
    run: &RestoreRun,
    approved: &str,
    execution: &restore_core::api::ExecutionStatus,
) -> Result<Option<restore_core::engine::execute::ProgressRecord>, StoreError> {
    let uid = run.uid().unwrap_or_default();
    let Some((bytes, _)) = read(api, &run.name_any(), &uid, Content::Progress).await? else { return Ok(None) };
    let record: restore_core::engine::execute::ProgressRecord =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt { what: "progress", message: e.to_string() })?;
    let untrusted = |why: String| StoreError::Untrusted {
        name: chunk_name(&run.name_any(), Content::Progress, 0),
        what: "progress",
        why,
    };
    if record.preview_digest != approved {
        return Err(untrusted(format!("it is for preview {}, not the approved {approved}", record.preview_digest)));
    }
    let completed = execution.completed_steps as usize;
    record
        .vouched_prefix(completed, execution.progress_digest.as_deref())
        .map(Some)
        .ok_or_else(|| untrusted("its steps do not extend what status vouches for".into()))
}

/// The digest a run's stored document carries, when every one of its chunks is present and they
/// agree (metadata only: nothing is downloaded or decompressed).
pub async fn stored_digest(
    api: &Api<ConfigMap>,
    run_name: &str,
    content: Content,
) -> Result<Option<String>, StoreError> {
    let selector = format!("{RUN_LABEL}={run_name},{KIND_LABEL}={}", content.label());
    let list = api.list_metadata(&ListParams::default().labels(&selector)).await?;
    let mut chunks = BTreeMap::new();
    for cm in &list.items {
        let annotations = cm.annotations();
        let chunk = annotations.get(CHUNK_ANNOTATION).and_then(|c| c.split_once('/'));
        let Some((Ok(index), Ok(count))) = chunk.map(|(i, n)| (i.parse::<usize>(), n.parse::<usize>())) else {
            return Ok(None);
        };
        chunks.insert(index, (count, annotations.get(DIGEST_ANNOTATION).cloned().unwrap_or_default()));
    }
    let Some((count, digest)) = chunks.values().next().cloned() else { return Ok(None) };
    let complete = chunks.keys().copied().eq(0..count) && chunks.values().all(|c| *c == (count, digest.clone()));
    Ok(complete.then_some(digest))
}

/// Whether this ConfigMap belongs to a run (for the controller's `owns` watch mapping).
pub fn run_of(cm: &ConfigMap) -> Option<String> {
    cm.labels().get(RUN_LABEL).cloned()
}

/// The object kind of a RestoreRun, for owner references made by hand.
pub fn run_kind() -> String {
    RestoreRun::kind(&()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_refuses_garbage() {
        let doc = br#"{"items":[1,2,3]}"#.repeat(1000);
        let z = gzip(&doc).unwrap();
        assert!(z.len() < doc.len() / 10);
        assert_eq!(gunzip(&z, "report").unwrap(), doc);
        assert!(matches!(gunzip(b"not gzip", "report"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_stored_document_over_the_size_limit_is_refused_and_one_at_the_limit_is_read_whole() {
        let doc = br#"{"items":[1,2,3]}"#.repeat(100);
        let z = gzip(&doc).unwrap();
        let limit = doc.len() as u64;
        assert_eq!(gunzip_at_most(&z, "report", limit).unwrap(), doc);
        let refused = gunzip_at_most(&z, "report", limit - 1);
        assert!(
            matches!(&refused, Err(StoreError::Corrupt { message, .. }) if message == "larger than allowed"),
            "{refused:?}"
        );
    }

    /// The run must be the record's controller (an owner reference alone, or another controller,
    /// is not enough), and no field manager but this controller's may have written it.
    #[test]
    fn a_record_is_trusted_only_when_its_run_is_its_controller_and_only_this_controller_wrote_it() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let owner = |uid: &str, controller: Option<bool>| OwnerReference {
            api_version: "tenantatlas.io/v1alpha1".into(),
            kind: "RestoreRun".into(),
            name: "r1".into(),
            uid: uid.into(),
            controller,
            ..Default::default()
        };
        let record = |owners: Vec<OwnerReference>, managers: &[&str]| ConfigMap {
            metadata: ObjectMeta {
                owner_references: Some(owners),
                managed_fields: Some(
                    managers
                        .iter()
                        .map(|m| ManagedFieldsEntry { manager: Some(m.to_string()), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(distrust(&record(vec![owner("run-uid", Some(true))], &[FIELD_MANAGER]), "run-uid"), None);
        for owners in [
            vec![owner("run-uid", None)],
            vec![owner("run-uid", Some(false))],
            vec![owner("other-uid", Some(true))],
            vec![owner("other-uid", Some(true)), owner("run-uid", Some(false))],
            vec![],
        ] {
            let why = distrust(&record(owners.clone(), &[FIELD_MANAGER]), "run-uid");
            assert_eq!(why.as_deref(), Some("it is not owned by this RestoreRun"), "{owners:?}");
        }
        let edited = record(vec![owner("run-uid", Some(true))], &[FIELD_MANAGER, "kubectl-edit"]);
        assert_eq!(distrust(&edited, "run-uid").as_deref(), Some("it was also written by \"kubectl-edit\""));
    }

    #[test]
    fn chunk_names_are_stable_and_bounded() {
        assert_eq!(chunk_name("r1", Content::Report, 0), "r1-report");
        assert_eq!(chunk_name("r1", Content::Progress, 2), "r1-progress-2");
        assert!(chunk_name(&"x".repeat(253), Content::Report, 12).len() <= 253);
    }
}
