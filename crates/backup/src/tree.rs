//! The files of a backup as a bounded, validated in-memory tree, whatever they came from: a folder,
//! a `.tar.gz` or ConfigMap data. Every hostile-input check on paths, links and sizes lives here.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::GzDecoder;
use restore_core::canonical::sha256_digest;

use crate::error::BackupError;
use crate::limits::Limits;

/// Relative, `/`-separated paths (no `.`/`..`, no empty components) to file contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTree {
    files: BTreeMap<String, Vec<u8>>,
    /// The limits the files were read within; parsing them draws on the same budget.
    limits: Limits,
}

/// Counts entries and bytes against the limits while a tree is filled.
struct Budget<'a> {
    limits: &'a Limits,
    entries: usize,
    bytes: u64,
}

impl<'a> Budget<'a> {
    fn new(limits: &'a Limits) -> Self {
        Budget { limits, entries: 0, bytes: 0 }
    }

    fn entry(&mut self) -> Result<(), BackupError> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(BackupError::TooManyFiles { limit: self.limits.max_files });
        }
        Ok(())
    }

    fn file_size(&mut self, path: &str, size: u64) -> Result<(), BackupError> {
        if size > self.limits.max_item_bytes {
            return Err(BackupError::FileTooLarge { path: path.to_string(), size, limit: self.limits.max_item_bytes });
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.max_unpacked_bytes {
            return Err(BackupError::UnpackedTooLarge { limit: self.limits.max_unpacked_bytes });
        }
        Ok(())
    }
}

/// Validates a path from an archive, a manifest or a ConfigMap and returns it normalized:
/// `./a//b` becomes `a/b`. Absolute paths, drive letters, `..`, NUL and backslashes are refused.
pub fn safe_relative_path(raw: &str) -> Result<String, BackupError> {
    let refuse_invalid = |reason| BackupError::InvalidPath { path: raw.to_string(), reason };
    if raw.contains('\0') {
        return Err(refuse_invalid("NUL byte"));
    }
    let bytes = raw.as_bytes();
    let drive_letter = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if raw.starts_with('/') || raw.starts_with('\\') || drive_letter {
        return Err(BackupError::AbsolutePath { path: raw.to_string() });
    }
    let components: Vec<&str> = raw.split(['/', '\\']).filter(|c| !c.is_empty() && *c != ".").collect();
    if components.contains(&"..") {
        return Err(BackupError::PathTraversal { path: raw.to_string() });
    }
    if raw.contains('\\') {
        return Err(refuse_invalid("backslash"));
    }
    if components.is_empty() {
        return Err(refuse_invalid("empty"));
    }
    Ok(components.join("/"))
}

impl FileTree {
    /// An empty tree.
    pub fn new() -> Self {
        FileTree::default()
    }

    fn with_limits(limits: &Limits) -> Self {
        FileTree { files: BTreeMap::new(), limits: limits.clone() }
    }

    /// The limits the files were read within (and that parsing them keeps to).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Builds a tree from `(path, bytes)` pairs (e.g. ConfigMap data), checking every path and
    /// the limits on count and size.
    pub fn from_files<P: AsRef<str>>(
        files: impl IntoIterator<Item = (P, Vec<u8>)>,
        limits: &Limits,
    ) -> Result<Self, BackupError> {
        let mut budget = Budget::new(limits);
        let mut tree = FileTree::with_limits(limits);
        for (raw, bytes) in files {
            let path = safe_relative_path(raw.as_ref())?;
            budget.entry()?;
            budget.file_size(&path, bytes.len() as u64)?;
            tree.insert_new(path, bytes)?;
        }
        Ok(tree)
    }

    /// Reads every file under `root`. Symbolic links, hard links (a link count above one) and
    /// special files are refused; the limits on count and size apply.
    pub fn from_dir(root: &Path, limits: &Limits) -> Result<Self, BackupError> {
        let meta = fs::symlink_metadata(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BackupError::NotFound { path: root.display().to_string() },
            _ => BackupError::io(root.display().to_string(), e),
        })?;
        if !meta.is_dir() {
            return Err(BackupError::io(
                root.display().to_string(),
                io::Error::new(io::ErrorKind::InvalidInput, "not a folder"),
            ));
        }
        let mut budget = Budget::new(limits);
        let mut tree = FileTree::with_limits(limits);
        tree.walk(root, "", &mut budget)?;
        Ok(tree)
    }

    fn walk(&mut self, dir: &Path, prefix: &str, budget: &mut Budget<'_>) -> Result<(), BackupError> {
        let shown = |p: &Path| p.display().to_string();
        let reader = fs::read_dir(dir).map_err(|e| BackupError::io(shown(dir), e))?;
        let mut children = Vec::new();
        for entry in reader {
            let entry = entry.map_err(|e| BackupError::io(shown(dir), e))?;
            budget.entry()?;
            children.push(entry.path());
        }
        children.sort();
        for child in children {
            let name = child
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| BackupError::InvalidPath { path: shown(&child), reason: "not UTF-8" })?;
            let rel = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            let rel = safe_relative_path(&rel)?;
            let meta = fs::symlink_metadata(&child).map_err(|e| BackupError::io(shown(&child), e))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                return Err(BackupError::Symlink { path: rel });
            } else if kind.is_dir() {
                self.walk(&child, &rel, budget)?;
            } else if kind.is_file() {
                if link_count(&meta) > 1 {
                    return Err(BackupError::HardLink { path: rel });
                }
                budget.file_size(&rel, meta.len())?;
                let bytes = read_capped(&child, budget.limits.max_item_bytes)?;
                self.insert_new(rel, bytes)?;
            } else {
                return Err(BackupError::UnsupportedEntry { path: rel, kind: "special file".into() });
            }
        }
        Ok(())
    }

    /// Unpacks a `.tar.gz` held in memory. `subject` names the archive in errors. Sizes, counts and
    /// the decompression ratio are enforced while decompressing, so a bomb stops early.
    pub fn from_tar_gz(bytes: &[u8], subject: &str, limits: &Limits) -> Result<Self, BackupError> {
        let compressed = bytes.len() as u64;
        if compressed > limits.max_archive_bytes {
            return Err(BackupError::ArchiveTooLarge { size: compressed, limit: limits.max_archive_bytes });
        }
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            return Err(BackupError::NotGzip { subject: subject.to_string() });
        }
        let (cap, cap_is_ratio) = limits.unpack_cap(compressed);
        let exceeded = Rc::new(Cell::new(false));
        let reader = CappedReader { inner: GzDecoder::new(bytes), remaining: cap, exceeded: exceeded.clone() };
        let over_cap = || {
            if cap_is_ratio {
                BackupError::DecompressionRatio { compressed, limit: limits.max_decompression_ratio }
            } else {
                BackupError::UnpackedTooLarge { limit: limits.max_unpacked_bytes }
            }
        };
        let archive_error = |e: io::Error| {
            if exceeded.get() {
                over_cap()
            } else if e.kind() == io::ErrorKind::UnexpectedEof {
                BackupError::TruncatedArchive { subject: subject.to_string() }
            } else {
                BackupError::CorruptArchive { subject: subject.to_string(), message: e.to_string() }
            }
        };
        let mut archive = tar::Archive::new(reader);
        let mut budget = Budget::new(limits);
        let mut tree = FileTree::with_limits(limits);
        let entries = archive.entries().map_err(archive_error)?;
        for entry in entries {
            let mut entry = entry.map_err(archive_error)?;
            let raw = entry.path_bytes();
            let raw = std::str::from_utf8(&raw)
                .map_err(|_| BackupError::InvalidPath {
                    path: String::from_utf8_lossy(&raw).into_owned(),
                    reason: "not UTF-8",
                })?
                .to_string();
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            budget.entry()?;
            let checked = safe_relative_path(&raw);
            if kind.is_dir() {
                // `./` is the archive root; any other folder must be a safe path.
                if raw.trim_start_matches("./").trim_end_matches('/').is_empty() {
                    continue;
                }
                checked?;
                continue;
            }
            let path = checked?;
            if kind.is_symlink() {
                return Err(BackupError::Symlink { path });
            }
            if kind.is_hard_link() {
                return Err(BackupError::HardLink { path });
            }
            if !(kind.is_file() || kind.is_contiguous()) {
                return Err(BackupError::UnsupportedEntry { path, kind: format!("{kind:?}") });
            }
            let size = entry.size();
            budget.file_size(&path, size)?;
            let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut content).map_err(archive_error)?;
            tree.insert_new(path, content)?;
        }
        // Drain the rest of the gzip stream so a truncated or corrupt tail is noticed.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(archive_error)?;
        Ok(tree)
    }

    fn insert_new(&mut self, path: String, bytes: Vec<u8>) -> Result<(), BackupError> {
        let nested_under_file = path.match_indices('/').any(|(i, _)| self.files.contains_key(&path[..i]));
        let folder = format!("{path}/");
        let holds_files = self.files.range(folder.clone()..).next().is_some_and(|(k, _)| k.starts_with(&folder));
        if self.files.contains_key(&path) || nested_under_file || holds_files {
            return Err(BackupError::DuplicatePath { path });
        }
        self.files.insert(path, bytes);
        Ok(())
    }

    /// The file at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Every path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Every `(path, bytes)`, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the tree holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files under folder `folder` (a relative path), re-rooted there. `None` or `""`
    /// returns the whole tree.
    pub fn subtree(self, folder: Option<&str>) -> Result<FileTree, BackupError> {
        let Some(folder) = folder.filter(|f| !f.trim_matches('/').is_empty() && *f != ".") else {
            return Ok(self);
        };
        let folder = safe_relative_path(folder)?;
        let prefix = format!("{folder}/");
        let files: BTreeMap<String, Vec<u8>> = self
            .files
            .into_iter()
            .filter_map(|(p, b)| p.strip_prefix(&prefix).map(|rest| (rest.to_string(), b)))
            .collect();
        if files.is_empty() {
            return Err(BackupError::PathNotFound { path: folder });
        }
        Ok(FileTree { files, limits: self.limits })
    }

    /// A `sha256:` digest over every path and content, independent of where the files came from.
    pub fn digest(&self) -> String {
        let mut listing = String::new();
        for (path, bytes) in &self.files {
            listing.push_str(&sha256_digest(bytes));
            listing.push(' ');
            listing.push_str(path);
            listing.push('\n');
        }
        sha256_digest(listing.as_bytes())
    }
}

/// Reads at most `limit` bytes of a file; a file that grew past the limit since its metadata was
/// read is refused rather than read whole.
fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, BackupError> {
    let file = fs::File::open(path).map_err(|e| BackupError::io(path.display().to_string(), e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| BackupError::io(path.display().to_string(), e))?;
    if bytes.len() as u64 > limit {
        return Err(BackupError::FileTooLarge { path: path.display().to_string(), size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn link_count(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
fn link_count(_meta: &fs::Metadata) -> u64 {
    1
}

/// A reader that fails once more than `remaining` bytes were asked of it, recording that it did.
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One probe byte tells a stream that ends exactly at the cap from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other("unpacked size limit reached"))
                }
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_are_normalized() {
        assert_eq!(safe_relative_path("./a//b/./c.json").unwrap(), "a/b/c.json");
    }

    #[test]
    fn hostile_paths_are_refused_with_their_class() {
        assert_eq!(safe_relative_path("/etc/passwd").unwrap_err().class(), "AbsolutePath");
        assert_eq!(safe_relative_path("C:/x").unwrap_err().class(), "AbsolutePath");
        assert_eq!(safe_relative_path("a/../../x").unwrap_err().class(), "PathTraversal");
        assert_eq!(safe_relative_path("a\\..\\x").unwrap_err().class(), "PathTraversal");
        assert_eq!(safe_relative_path("a\\b").unwrap_err().class(), "InvalidPath");
        assert_eq!(safe_relative_path("./").unwrap_err().class(), "InvalidPath");
        assert_eq!(safe_relative_path("a\0b").unwrap_err().class(), "InvalidPath");
    }

    #[test]
    fn a_file_cannot_also_be_a_folder() {
        let limits = Limits::default();
        let err = FileTree::from_files([("a", vec![]), ("a/b", vec![])], &limits).unwrap_err();
        assert_eq!(err.class(), "DuplicatePath");
        let err = FileTree::from_files([("a/b", vec![]), ("a", vec![])], &limits).unwrap_err();
        assert_eq!(err.class(), "DuplicatePath");
    }

    #[test]
    fn subtree_reroots_and_reports_a_missing_folder() {
        let limits = Limits::default();
        let tree = FileTree::from_files([("x/m.json", b"1".to_vec()), ("y/n.json", b"2".to_vec())], &limits).unwrap();
        let sub = tree.clone().subtree(Some("x/")).unwrap();
        assert_eq!(sub.paths().collect::<Vec<_>>(), vec!["m.json"]);
        assert_eq!(tree.clone().subtree(Some("z")).unwrap_err().class(), "PathNotFound");
        assert_eq!(tree.clone().subtree(None).unwrap(), tree);
    }

    #[test]
    fn file_count_and_size_limits_apply_to_plain_files() {
        let limits = Limits { max_files: 1, max_item_bytes: 3, ..Limits::default() };
        let two = FileTree::from_files([("a", vec![]), ("b", vec![])], &limits).unwrap_err();
        assert_eq!(two.class(), "TooManyFiles");
        let big = FileTree::from_files([("a", vec![0; 4])], &limits).unwrap_err();
        assert_eq!(big.class(), "FileTooLarge");
    }

    #[test]
    fn the_tree_digest_depends_on_paths_and_bytes_only() {
        let limits = Limits::default();
        let a = FileTree::from_files([("a", b"1".to_vec()), ("b", b"2".to_vec())], &limits).unwrap();
        let b = FileTree::from_files([("b", b"2".to_vec()), ("./a", b"1".to_vec())], &limits).unwrap();
        let c = FileTree::from_files([("a", b"2".to_vec()), ("b", b"1".to_vec())], &limits).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }
}
