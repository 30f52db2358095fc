//! The error classes of loading and writing a backup: one variant per class, each message naming
//! the file or item at fault. `class()` gives the stable CamelCase name used as a status reason.

use std::io;

/// Why a backup could not be read, fetched or written. Messages name the file or item at fault
/// and never carry credentials (URLs are shown without user info or query string).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The backup path does not exist.
    #[error("{path}: not found")]
    NotFound {
        /// The path given.
        path: String,
    },
    /// The archive (or download) is larger than `Limits::max_archive_bytes`.
    #[error("archive is {size} bytes, over the limit of {limit} bytes (max_archive_bytes)")]
    ArchiveTooLarge {
        /// Bytes seen so far.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The files add up to more than `Limits::max_unpacked_bytes`.
    #[error("backup unpacks to more than {limit} bytes (max_unpacked_bytes)")]
    UnpackedTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The archive expands more than `Limits::max_decompression_ratio` times its size.
    #[error(
        "archive of {compressed} bytes expands more than {limit} times its size (max_decompression_ratio); \
         refused as a decompression bomb"
    )]
    DecompressionRatio {
        /// Compressed size.
        compressed: u64,
        /// The ratio limit.
        limit: u64,
    },
    /// More entries than `Limits::max_files`.
    #[error("backup holds more than {limit} files and folders (max_files)")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// One file is larger than `Limits::max_item_bytes`.
    #[error("{path} is {size} bytes, over the per-file limit of {limit} bytes (max_item_bytes)")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An absolute path (`/x`, `C:\x`) in an archive or manifest.
    #[error("{path}: absolute path refused")]
    AbsolutePath {
        /// The path as written.
        path: String,
    },
    /// A path with a `..` component.
    #[error("{path}: path escaping the backup ('..') refused")]
    PathTraversal {
        /// The path as written.
        path: String,
    },
    /// A path that is empty, not UTF-8 or holds a NUL byte.
    #[error("{path}: invalid path ({reason})")]
    InvalidPath {
        /// The path, lossily decoded.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A symbolic link in a folder or archive.
    #[error("{path}: symbolic link refused")]
    Symlink {
        /// The link.
        path: String,
    },
    /// A hard link in a folder or archive.
    #[error("{path}: hard link refused")]
    HardLink {
        /// The link.
        path: String,
    },
    /// A device, FIFO, socket or other special entry.
    #[error("{path}: unsupported entry type ({kind})")]
    UnsupportedEntry {
        /// The entry.
        path: String,
        /// Its kind.
        kind: String,
    },
    /// The same path twice in an archive.
    #[error("{path}: appears more than once in the archive")]
    DuplicatePath {
        /// The path.
        path: String,
    },
    /// The bytes are not gzip.
    #[error("{subject}: not a gzip-compressed tar archive")]
    NotGzip {
        /// The archive.
        subject: String,
    },
    /// The archive ends early.
    #[error("{subject}: archive is truncated")]
    TruncatedArchive {
        /// The archive.
        subject: String,
    },
    /// The gzip or tar structure is damaged.
    #[error("{subject}: archive is corrupt: {message}")]
    CorruptArchive {
        /// The archive.
        subject: String,
        /// The decoder's complaint.
        message: String,
    },
    /// No `manifest.json` where the backup should be.
    #[error("no manifest.json in {folder} (is this a native backup? is `path` right?)")]
    MissingManifest {
        /// Folder searched, `.` for the root.
        folder: String,
    },
    /// The folder given by `path` is not in the archive.
    #[error("{path}: no such folder in the backup")]
    PathNotFound {
        /// The folder.
        path: String,
    },
    /// A JSON file is not valid JSON.
    #[error("{file}: invalid JSON at line {line} column {column}: {message}")]
    InvalidJson {
        /// The file.
        file: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A JSON file ends before its value does.
    #[error("{file}: truncated JSON (ends at line {line})")]
    TruncatedJson {
        /// The file.
        file: String,
        /// Last line.
        line: usize,
    },
    /// A YAML file is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    InvalidYaml {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// `formatVersion` is not one this build reads.
    #[error("manifest.json: unsupported formatVersion {found} (this build reads {supported})")]
    UnsupportedFormatVersion {
        /// The version found.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
    /// `manifest.json` is valid JSON of the wrong shape.
    #[error("manifest.json: {message}")]
    InvalidManifest {
        /// What is wrong.
        message: String,
    },
    /// An item file is valid JSON / YAML of the wrong shape.
    #[error("{item} ({file}): {message}")]
    InvalidItem {
        /// Item key `type/id`, or the file when unknown.
        item: String,
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A file listed in the manifest is absent.
    #[error("{item}: file {path} listed in manifest.json is missing")]
    MissingItemFile {
        /// Item key.
        item: String,
        /// Path listed.
        path: String,
    },
    /// A `sha256:` digest does not match the bytes. The digest of the bytes received is kept
    /// out of the message: it would tell an attacker what an internal address answered.
    #[error("{subject}: digest mismatch: the content does not have the expected digest {expected}")]
    DigestMismatch {
        /// The item or archive.
        subject: String,
        /// Digest expected.
        expected: String,
    },
    /// Two items share a type and id.
    #[error("{item}: appears more than once in the backup")]
    DuplicateItem {
        /// Item key.
        item: String,
    },
    /// An item file disagrees with its manifest entry.
    #[error("{item} ({file}): {field} is {found:?} in the file but {expected:?} in manifest.json")]
    ManifestMismatch {
        /// Item key (from the manifest).
        item: String,
        /// The file.
        file: String,
        /// The field that differs.
        field: &'static str,
        /// Value in the manifest.
        expected: String,
        /// Value in the file.
        found: String,
    },
    /// A backup set lacks what the native format must record.
    #[error("cannot write a native backup: {message}")]
    IncompleteSet {
        /// What is missing.
        message: String,
    },
    /// The output folder already holds files.
    #[error("{path}: not empty; a native backup is written into a new or empty folder")]
    OutputNotEmpty {
        /// The folder.
        path: String,
    },
    /// The source spec is not usable (none or several sources, bad digest, bad path).
    #[error("invalid source: {message}")]
    InvalidSource {
        /// What is wrong.
        message: String,
    },
    /// A URL the fetcher refuses (scheme, form).
    #[error("{url}: {reason}")]
    UrlRefused {
        /// The URL, redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The URL, redacted.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The download failed in transport (connect, TLS, reset, timeout).
    #[error("{url}: download failed: {message}")]
    Download {
        /// The URL, redacted.
        url: String,
        /// What failed.
        message: String,
    },
    /// The ConfigMap does not exist.
    #[error("ConfigMap {namespace}/{name} not found")]
    ConfigMapNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The ConfigMap lacks the key.
    #[error("ConfigMap {namespace}/{name}: no key {key} in binaryData")]
    ConfigMapKeyMissing {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The key.
        key: String,
    },
    /// The Flux source object does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    FluxSourceNotFound {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The Flux source has no usable artifact yet.
    #[error("{kind} {namespace}/{name}: {message}")]
    FluxArtifactNotReady {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What is missing.
        message: String,
    },
    /// A file nests deeper than `Limits::max_depth`.
    #[error("{file}: nesting depth {depth} is over the limit of {limit} (max_depth)")]
    TooDeep {
        /// The file.
        file: String,
        /// The depth seen (at least).
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// A file (or the whole load) produces more JSON/YAML values than allowed; YAML aliases count
    /// as every value they expand to.
    #[error("{file}: produces more than {limit} values ({scope}); YAML aliases count as what they expand to")]
    TooManyValues {
        /// The file where the budget ran out.
        file: String,
        /// The limit.
        limit: u64,
        /// Which limit: `max_values_per_file` or `max_values_total`.
        scope: &'static str,
    },
    /// A YAML file's aliases expand its strings to far more than the file holds.
    #[error("{file}: YAML aliases expand its strings well past the file's own size; refused as an alias bomb")]
    StringExpansion {
        /// The file.
        file: String,
    },
    /// More items than `Limits::max_items`.
    #[error("backup holds more than {limit} items (max_items)")]
    TooManyItems {
        /// The limit.
        limit: usize,
    },
    /// The load ran past `Limits::load_timeout_seconds`.
    #[error("loading the backup took longer than {seconds} s (load_timeout_seconds)")]
    LoadTimeout {
        /// The limit.
        seconds: u64,
    },
    /// A reference into another namespace, which the operator's admin has not allowed.
    #[error(
        "{kind} {namespace}/{name} is in another namespace than the run ({run_namespace}); \
         cross-namespace references are off (the operator's --allow-cross-namespace-refs)"
    )]
    CrossNamespaceRefused {
        /// Kind referenced.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The run's namespace.
        run_namespace: String,
    },
    /// The server's TLS certificate is not trusted (retrying will not help).
    #[error("{url}: the server's TLS certificate is not trusted: {message} (add its CA with --extra-ca-file)")]
    UntrustedCertificate {
        /// The URL, redacted.
        url: String,
        /// The TLS library's reason.
        message: String,
    },
    /// Every download slot is taken by other runs; the run waits its turn without holding one.
    #[error("all {slots} download slots are busy; the download is retried shortly")]
    DownloadSlotsBusy {
        /// Slots in all.
        slots: usize,
    },
    /// The download was cancelled (the run was deleted or the operator is shutting down).
    #[error("{url}: download cancelled (run deleted or operator shutting down)")]
    Cancelled {
        /// The URL, redacted.
        url: String,
    },
    /// The load stopped unexpectedly (a worker thread failed).
    #[error("loading the backup failed: {message}")]
    LoadFailed {
        /// What happened.
        message: String,
    },
    /// The cluster could not be asked (the adapter's error, already free of secrets).
    #[error("cluster lookup failed: {message}")]
    Cluster {
        /// The adapter's message.
        message: String,
    },
}

impl BackupError {
    /// Stable CamelCase name of the error class, for status reasons and tests.
    pub fn class(&self) -> &'static str {
        match self {
            BackupError::Io { .. } => "Io",
            BackupError::NotFound { .. } => "NotFound",
            BackupError::ArchiveTooLarge { .. } => "ArchiveTooLarge",
            BackupError::UnpackedTooLarge { .. } => "UnpackedTooLarge",
            BackupError::DecompressionRatio { .. } => "DecompressionRatio",
            BackupError::TooManyFiles { .. } => "TooManyFiles",
            BackupError::FileTooLarge { .. } => "FileTooLarge",
            BackupError::AbsolutePath { .. } => "AbsolutePath",
            BackupError::PathTraversal { .. } => "PathTraversal",
            BackupError::InvalidPath { .. } => "InvalidPath",
            BackupError::Symlink { .. } => "Symlink",
            BackupError::HardLink { .. } => "HardLink",
            BackupError::UnsupportedEntry { .. } => "UnsupportedEntry",
            BackupError::DuplicatePath { .. } => "DuplicatePath",
            BackupError::NotGzip { .. } => "NotGzip",
            BackupError::TruncatedArchive { .. } => "TruncatedArchive",
            BackupError::CorruptArchive { .. } => "CorruptArchive",
            BackupError::MissingManifest { .. } => "MissingManifest",
            BackupError::PathNotFound { .. } => "PathNotFound",
            BackupError::InvalidJson { .. } => "InvalidJson",
            BackupError::TruncatedJson { .. } => "TruncatedJson",
            BackupError::InvalidYaml { .. } => "InvalidYaml",
            BackupError::UnsupportedFormatVersion { .. } => "UnsupportedFormatVersion",
            BackupError::InvalidManifest { .. } => "InvalidManifest",
            BackupError::InvalidItem { .. } => "InvalidItem",
            BackupError::MissingItemFile { .. } => "MissingItemFile",
            BackupError::DigestMismatch { .. } => "DigestMismatch",
            BackupError::DuplicateItem { .. } => "DuplicateItem",
            BackupError::ManifestMismatch { .. } => "ManifestMismatch",
            BackupError::IncompleteSet { .. } => "IncompleteSet",
            BackupError::OutputNotEmpty { .. } => "OutputNotEmpty",
            BackupError::InvalidSource { .. } => "InvalidSource",
            BackupError::UrlRefused { .. } => "UrlRefused",
            BackupError::HttpStatus { .. } => "HttpStatus",
            BackupError::Download { .. } => "Download",
            BackupError::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            BackupError::ConfigMapKeyMissing { .. } => "ConfigMapKeyMissing",
            BackupError::FluxSourceNotFound { .. } => "FluxSourceNotFound",
            BackupError::FluxArtifactNotReady { .. } => "FluxArtifactNotReady",
            BackupError::Cluster { .. } => "Cluster",
            BackupError::TooDeep { .. } => "TooDeep",
            BackupError::TooManyValues { .. } => "TooManyValues",
            BackupError::StringExpansion { .. } => "StringExpansion",
            BackupError::TooManyItems { .. } => "TooManyItems",
            BackupError::LoadTimeout { .. } => "LoadTimeout",
            BackupError::CrossNamespaceRefused { .. } => "CrossNamespaceRefused",
            BackupError::UntrustedCertificate { .. } => "UntrustedCertificate",
            BackupError::DownloadSlotsBusy { .. } => "DownloadSlotsBusy",
            BackupError::Cancelled { .. } => "Cancelled",
            BackupError::LoadFailed { .. } => "LoadFailed",
        }
    }

    /// Whether retrying later may succeed (transport trouble, a source not ready yet), as
    /// opposed to a backup that is bad and stays bad.
    pub fn is_transient(&self) -> bool {
        match self {
            BackupError::Download { .. }
            | BackupError::FluxArtifactNotReady { .. }
            | BackupError::Cluster { .. }
            | BackupError::DownloadSlotsBusy { .. }
            | BackupError::Cancelled { .. } => true,
            BackupError::HttpStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<String>, source: io::Error) -> Self {
        BackupError::Io { path: path.into(), source }
    }
}

/// Maps a `serde_json` error on `file` to `InvalidJson` or `TruncatedJson`; shape errors become
/// what `shape` makes of the message.
pub(crate) fn json_error(file: &str, err: serde_json::Error, shape: impl FnOnce(String) -> BackupError) -> BackupError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Eof => BackupError::TruncatedJson { file: file.to_string(), line: err.line() },
        Category::Syntax | Category::Io => BackupError::InvalidJson {
            file: file.to_string(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        },
        Category::Data => shape(err.to_string()),
    }
}
