//! Backup adapter: the native format (read and deterministic write), IntuneCD import, capture from
//! a tenant, and the four sources (folder or archive, URL, ConfigMap, Flux artifact), all hardened.

pub mod budget;
pub mod capture;
mod capture_apple;
pub mod error;
pub mod fetch;
pub mod fuzzing;
pub mod intunecd;
pub mod limits;
pub mod native;
pub mod netpolicy;
pub mod source;
pub mod tree;

use restore_core::backup::BackupSet;
use serde::{Deserialize, Serialize};

pub use error::BackupError;
pub use limits::Limits;
pub use tree::FileTree;

/// What a finding is about. Findings never stop a load; the caller decides what they mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FindingCode {
    /// An item whose type this build does not know; it was left out of the set.
    UnknownType,
    /// An item whose `@odata.type` is not one its type lists; it was kept.
    UnexpectedOdataType,
    /// An item without a sub-resource its type requires; it was kept.
    MissingSubResource,
    /// An IntuneCD folder or file this build does not map; it was skipped.
    UnknownFolder,
}

impl FindingCode {
    /// Stable CamelCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::UnknownType => "UnknownType",
            FindingCode::UnexpectedOdataType => "UnexpectedOdataType",
            FindingCode::MissingSubResource => "MissingSubResource",
            FindingCode::UnknownFolder => "UnknownFolder",
        }
    }
}

/// Something noteworthy about a backup that did not stop it loading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadFinding {
    /// What kind of finding.
    pub code: FindingCode,
    /// The item (`type/id`) or file it is about.
    pub item: String,
    /// What happened, for a human.
    pub message: String,
}

impl LoadFinding {
    pub(crate) fn new(code: FindingCode, item: impl Into<String>, message: impl Into<String>) -> Self {
        LoadFinding { code, item: item.into(), message: message.into() }
    }
}

/// A backup set with the findings met while loading it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The items and their provenance.
    pub set: BackupSet,
    /// Findings, in the order met.
    pub findings: Vec<LoadFinding>,
}

/// The files of a backup folder, or of a `.tar.gz` file, on disk. Anything else — a device such
/// as `/dev/zero`, a FIFO, a socket — is refused before it is opened, and a file is never read
/// past `max_archive_bytes` even if it grows while being read.
pub fn tree_from_path(path: &std::path::Path, limits: &Limits) -> Result<FileTree, BackupError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackupError::NotFound { path: shown.clone() },
        _ => BackupError::io(&shown, e),
    })?;
    if meta.is_dir() {
        return FileTree::from_dir(path, limits);
    }
    if !meta.is_file() {
        return Err(BackupError::UnsupportedEntry {
            path: shown,
            kind: "not a regular file or folder (device, FIFO or socket)".into(),
        });
    }
    if meta.len() > limits.max_archive_bytes {
        return Err(BackupError::ArchiveTooLarge { size: meta.len(), limit: limits.max_archive_bytes });
    }
    let file = std::fs::File::open(path).map_err(|e| BackupError::io(&shown, e))?;
    let mut bytes = Vec::new();
    file.take(limits.max_archive_bytes + 1).read_to_end(&mut bytes).map_err(|e| BackupError::io(&shown, e))?;
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(BackupError::ArchiveTooLarge { size: bytes.len() as u64, limit: limits.max_archive_bytes });
    }
    FileTree::from_tar_gz(&bytes, &shown, limits)
}
