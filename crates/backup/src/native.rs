//! The native backup format: `manifest.json` plus one JSON file per item, in a folder or a
//! `.tar.gz`. Reading verifies every digest; writing is deterministic down to the archive bytes.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use restore_core::backup::{BackupItem, BackupManifest, BackupSet, FORMAT_VERSION, ManifestEntry, ToolInfo};
use restore_core::canonical::{digest_of, is_digest, sha256_digest};
use restore_core::catalog;
use serde_json::{Map, Value};

use crate::budget::LoadBudget;
use crate::error::BackupError;
use crate::limits::Limits;
use crate::tree::{FileTree, safe_relative_path};
use crate::{FindingCode, LoadFinding, Loaded};

/// Name of the manifest file at the root of a native backup.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Name this tool writes into `manifest.tool.name`.
pub const TOOL_NAME: &str = "restore-operator";

/// Reads a native backup folder.
pub fn read_dir(path: &Path, limits: &Limits) -> Result<Loaded, BackupError> {
    parse(&FileTree::from_dir(path, limits)?)
}

/// Reads a native backup `.tar.gz` held in memory; `folder` selects a folder inside it.
pub fn read_tar_gz(bytes: &[u8], folder: Option<&str>, limits: &Limits) -> Result<Loaded, BackupError> {
    parse(&FileTree::from_tar_gz(bytes, "archive", limits)?.subtree(folder)?)
}

/// Reads a native backup from a folder or a `.tar.gz` file on disk.
pub fn read_path(path: &Path, limits: &Limits) -> Result<Loaded, BackupError> {
    parse(&crate::tree_from_path(path, limits)?)
}

/// Parses a native backup from its files: the manifest, then every item it lists, each checked
/// against its digest and its manifest entry. Unknown types become findings. Sizes were bounded
/// when the tree was read; values, depth, items and time are bounded while parsing.
pub fn parse(tree: &FileTree) -> Result<Loaded, BackupError> {
    let mut budget = LoadBudget::new(tree.limits());
    let manifest = parse_manifest(tree, &mut budget)?;
    let mut findings = Vec::new();
    let mut items = Vec::with_capacity(manifest.items.len());
    let mut seen_keys = BTreeSet::new();
    let mut seen_paths = BTreeSet::new();
    for entry in &manifest.items {
        let key = format!("{}/{}", entry.item_type, entry.id);
        budget.item()?;
        if !seen_keys.insert(key.clone()) {
            return Err(BackupError::DuplicateItem { item: key });
        }
        let path = safe_relative_path(&entry.path)?;
        if !seen_paths.insert(path.clone()) {
            return Err(BackupError::DuplicatePath { path });
        }
        if !is_digest(&entry.sha256) {
            return Err(BackupError::InvalidManifest {
                message: format!("{key}: sha256 {:?} is not sha256: + 64 lower-case hex digits", entry.sha256),
            });
        }
        let Some(item_type) = catalog::item_type(&entry.item_type) else {
            findings.push(LoadFinding::new(
                FindingCode::UnknownType,
                &key,
                format!("type {:?} is not one this build knows; the item was left out", entry.item_type),
            ));
            continue;
        };
        let bytes =
            tree.get(&path).ok_or_else(|| BackupError::MissingItemFile { item: key.clone(), path: path.clone() })?;
        if sha256_digest(bytes) != entry.sha256 {
            return Err(BackupError::DigestMismatch { subject: key, expected: entry.sha256.clone() });
        }
        let invalid = |message| BackupError::InvalidItem { item: key.clone(), file: path.clone(), message };
        let value = budget.parse_json(&path, bytes, invalid)?;
        let item: BackupItem = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        check_against_entry(&item, entry, &key, &path)?;
        if !item.resource.is_object() {
            return Err(BackupError::InvalidItem {
                item: key,
                file: path,
                message: "resource is not an object".into(),
            });
        }
        findings.extend(item_findings(item_type, &item));
        items.push(item);
    }
    let digest = digest_of(&manifest).map_err(|e| BackupError::InvalidManifest { message: e.to_string() })?;
    let set = BackupSet { tenant: Some(manifest.tenant), captured_at: Some(manifest.captured_at), digest, items };
    Ok(Loaded { set, findings })
}

fn parse_manifest(tree: &FileTree, budget: &mut LoadBudget) -> Result<BackupManifest, BackupError> {
    let bytes = tree.get(MANIFEST_FILE).ok_or_else(|| BackupError::MissingManifest { folder: ".".into() })?;
    let value = budget.parse_json(MANIFEST_FILE, bytes, |message| BackupError::InvalidManifest { message })?;
    match value.get("formatVersion") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(found @ (Value::Number(_) | Value::String(_))) => {
            return Err(BackupError::UnsupportedFormatVersion { found: found.to_string(), supported: FORMAT_VERSION });
        }
        _ => return Err(BackupError::InvalidManifest { message: "formatVersion is missing or not a number".into() }),
    }
    let manifest: BackupManifest =
        serde_json::from_value(value).map_err(|e| BackupError::InvalidManifest { message: e.to_string() })?;
    if manifest.captured_at.parse::<jiff::Timestamp>().is_err() {
        return Err(BackupError::InvalidManifest {
            message: format!("capturedAt {:?} is not an RFC 3339 time", manifest.captured_at),
        });
    }
    Ok(manifest)
}

fn check_against_entry(item: &BackupItem, entry: &ManifestEntry, key: &str, path: &str) -> Result<(), BackupError> {
    let pairs = [
        ("type", &entry.item_type, &item.item_type),
        ("id", &entry.id, &item.id),
        ("displayName", &entry.display_name, &item.display_name),
        ("platform", &entry.platform, &item.platform),
    ];
    for (field, expected, found) in pairs {
        if expected != found {
            return Err(BackupError::ManifestMismatch {
                item: key.to_string(),
                file: path.to_string(),
                field,
                expected: expected.clone(),
                found: found.clone(),
            });
        }
    }
    Ok(())
}

/// Findings about a well-formed item of a known type: an `@odata.type` its type does not list,
/// a required sub-resource that is absent.
pub(crate) fn item_findings(item_type: &catalog::ItemType, item: &BackupItem) -> Vec<LoadFinding> {
    let mut findings = Vec::new();
    if let Some(odata) = item.resource.get("@odata.type").and_then(Value::as_str)
        && !item_type.accepts_odata(odata)
    {
        findings.push(LoadFinding::new(
            FindingCode::UnexpectedOdataType,
            item.key(),
            format!("@odata.type {odata:?} is not one the {} type lists", item_type.name),
        ));
    }
    for sub in item_type.sub_resources.iter().filter(|s| s.required) {
        if !item.sub_resources.contains_key(sub.name) {
            findings.push(LoadFinding::new(
                FindingCode::MissingSubResource,
                item.key(),
                format!("required sub-resource {:?} is missing", sub.name),
            ));
        }
    }
    findings
}

/// A native backup rendered to bytes: its manifest and every file (manifest included), sorted by
/// path. The same set always renders to the same bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The manifest written.
    pub manifest: BackupManifest,
    /// `sha256:` digest of the manifest's canonical JSON: the backup's content digest.
    pub digest: String,
    /// `(relative path, bytes)`, sorted by path.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Renders a set as native files: items sorted by type then id, every JSON object's keys sorted,
/// two-space indentation and a final newline. The set must record its tenant and capture time.
pub fn render(set: &BackupSet) -> Result<Rendered, BackupError> {
    let tenant = set.tenant.clone().ok_or_else(|| BackupError::IncompleteSet { message: "no tenant".into() })?;
    let captured_at =
        set.captured_at.clone().ok_or_else(|| BackupError::IncompleteSet { message: "no capture time".into() })?;
    let mut items: Vec<&BackupItem> = set.items.iter().collect();
    items.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
    let mut files = Vec::with_capacity(items.len() + 1);
    let mut entries = Vec::with_capacity(items.len());
    let mut paths = BTreeSet::new();
    for pair in items.windows(2) {
        if pair[0].item_type == pair[1].item_type && pair[0].id == pair[1].id {
            return Err(BackupError::DuplicateItem { item: pair[0].key() });
        }
    }
    for item in items {
        let path = item_path(&item.item_type, &item.id);
        if !paths.insert(path.clone()) {
            return Err(BackupError::DuplicatePath { path });
        }
        let value = serde_json::to_value(item).map_err(|e| BackupError::io(&path, e.into()))?;
        let bytes = stable_json(&value, &path)?;
        entries.push(ManifestEntry {
            item_type: item.item_type.clone(),
            id: item.id.clone(),
            display_name: item.display_name.clone(),
            platform: item.platform.clone(),
            path: path.clone(),
            sha256: sha256_digest(&bytes),
        });
        files.push((path, bytes));
    }
    let manifest = BackupManifest {
        format_version: FORMAT_VERSION,
        tenant,
        captured_at,
        tool: ToolInfo { name: TOOL_NAME.into(), version: env!("CARGO_PKG_VERSION").into() },
        items: entries,
    };
    let manifest_value = serde_json::to_value(&manifest).map_err(|e| BackupError::io(MANIFEST_FILE, e.into()))?;
    files.push((MANIFEST_FILE.to_string(), stable_json(&manifest_value, MANIFEST_FILE)?));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let digest = digest_of(&manifest).map_err(|e| BackupError::io(MANIFEST_FILE, e.into()))?;
    Ok(Rendered { manifest, digest, files })
}

/// The content digest a set gets once written: what [`parse`] reports for the written backup.
pub fn digest(set: &BackupSet) -> Result<String, BackupError> {
    Ok(render(set)?.digest)
}

/// Writes a set as a native backup folder at `dir` (created if absent; must be empty).
/// Returns the manifest written.
pub fn write_dir(set: &BackupSet, dir: &Path) -> Result<BackupManifest, BackupError> {
    let rendered = render(set)?;
    let shown = dir.display().to_string();
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::OutputNotEmpty { path: shown });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| BackupError::io(&shown, e))?;
        }
        Err(e) => return Err(BackupError::io(&shown, e)),
    }
    for (rel, bytes) in &rendered.files {
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| BackupError::io(parent.display().to_string(), e))?;
        }
        fs::write(&target, bytes).map_err(|e| BackupError::io(target.display().to_string(), e))?;
    }
    Ok(rendered.manifest)
}

/// Renders a set as a deterministic `.tar.gz`: entries sorted, folders listed before their files,
/// mode 0644/0755, uid/gid 0, no owner names, mtime 0, gzip header without time or name.
pub fn to_tar_gz(set: &BackupSet) -> Result<Vec<u8>, BackupError> {
    tar_gz_of(&render(set)?.files)
}

/// Writes a set as a deterministic `.tar.gz` file at `path`. Returns the manifest written.
pub fn write_tar_gz(set: &BackupSet, path: &Path) -> Result<BackupManifest, BackupError> {
    let rendered = render(set)?;
    let bytes = tar_gz_of(&rendered.files)?;
    fs::write(path, bytes).map_err(|e| BackupError::io(path.display().to_string(), e))?;
    Ok(rendered.manifest)
}

/// Writes a set to `path`: a deterministic `.tar.gz` when the name ends in `.tar.gz` or `.tgz`,
/// otherwise a folder. Returns the manifest written.
pub fn write_path(set: &BackupSet, path: &Path) -> Result<BackupManifest, BackupError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") { write_tar_gz(set, path) } else { write_dir(set, path) }
}

/// Packs `(path, bytes)` files into a deterministic `.tar.gz` (see [`to_tar_gz`]).
pub fn tar_gz_of(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, BackupError> {
    let archive_error = |e: io::Error| BackupError::io("archive", e);
    let encoder = GzEncoder::new(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mut folders = BTreeSet::new();
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, bytes) in sorted {
        for (i, _) in path.match_indices('/') {
            let folder = &path[..i];
            if folders.insert(folder.to_string()) {
                let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
                builder.append_data(&mut header, format!("{folder}/"), io::empty()).map_err(archive_error)?;
            }
        }
        let mut header = fixed_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        builder.append_data(&mut header, path, bytes.as_slice()).map_err(archive_error)?;
    }
    let mut encoder = builder.into_inner().map_err(archive_error)?;
    encoder.flush().map_err(archive_error)?;
    encoder.finish().map_err(archive_error)
}

fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Relative path of an item file: `items/<type>/<id>.json`. Ids other than letters, digits and
/// `-` (or very long ones) are made safe and suffixed with a hash of the real id, so the path
/// is unique, portable, and also a valid ConfigMap key once `/` is encoded.
pub fn item_path(item_type: &str, id: &str) -> String {
    format!("items/{}/{}.json", safe_file_stem(item_type), safe_file_stem(id))
}

fn safe_file_stem(raw: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if !raw.is_empty() && raw.len() <= 100 && raw.chars().all(plain) {
        return raw.to_string();
    }
    let cleaned: String = raw.chars().take(64).map(|c| if plain(c) { c } else { '-' }).collect();
    let hash = sha256_digest(raw.as_bytes());
    format!("{cleaned}-{}", &hash["sha256:".len().."sha256:".len() + 12])
}

/// JSON with every object's keys sorted, two-space indentation and a trailing newline.
pub fn stable_json(value: &Value, what: &str) -> Result<Vec<u8>, BackupError> {
    let mut bytes = serde_json::to_vec_pretty(&sorted_keys(value)).map_err(|e| BackupError::io(what, e.into()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(map.len());
            for key in keys {
                out.insert(key.clone(), sorted_keys(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use restore_core::backup::{BackupTenant, NamedRef, References};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn sample_set() -> BackupSet {
        let mut sub = BTreeMap::new();
        sub.insert("settings".to_string(), vec![json!({"id": "0", "settingInstance": {"b": 1, "a": 2}})]);
        BackupSet {
            tenant: Some(BackupTenant { id: "tid".into(), label: "Contoso".into() }),
            captured_at: Some("2025-01-02T03:04:05Z".into()),
            digest: String::new(),
            items: vec![
                BackupItem {
                    item_type: "settingsCatalogPolicy".into(),
                    id: "b-2".into(),
                    display_name: "Edge".into(),
                    platform: "windows".into(),
                    resource: json!({"name": "Edge", "platforms": "windows10", "id": "b-2"}),
                    assignments: Some(vec![json!({"target": {"groupId": "g1"}})]),
                    sub_resources: sub,
                    references: References {
                        groups: vec![NamedRef { id: "g1".into(), display_name: "All staff".into() }],
                        ..References::default()
                    },
                },
                BackupItem {
                    item_type: "scopeTag".into(),
                    id: "0".into(),
                    display_name: "Default".into(),
                    platform: "any".into(),
                    resource: json!({"displayName": "Default", "id": "0"}),
                    assignments: None,
                    sub_resources: BTreeMap::new(),
                    references: References::default(),
                },
            ],
        }
    }

    #[test]
    fn a_written_folder_reads_back_as_the_same_items_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let set = sample_set();
        let manifest = write_dir(&set, &dir.path().join("b")).unwrap();
        assert_eq!(manifest.items[0].item_type, "scopeTag");
        let loaded = read_dir(&dir.path().join("b"), &Limits::default()).unwrap();
        assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
        let mut expected = set.items.clone();
        expected.reverse();
        assert_eq!(loaded.set.items, expected);
        assert_eq!(loaded.set.tenant, set.tenant);
        assert_eq!(loaded.set.digest, digest(&set).unwrap());
    }

    #[test]
    fn the_archive_is_byte_identical_for_the_same_set_whatever_the_item_order() {
        let set = sample_set();
        let mut reordered = set.clone();
        reordered.items.reverse();
        assert_eq!(to_tar_gz(&set).unwrap(), to_tar_gz(&reordered).unwrap());
        let loaded = read_tar_gz(&to_tar_gz(&set).unwrap(), None, &Limits::default()).unwrap();
        assert_eq!(loaded.set.digest, digest(&set).unwrap());
        assert_eq!(loaded.set.items.len(), 2);
    }

    #[test]
    fn writing_refuses_a_non_empty_folder_and_a_set_without_provenance() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), b"").unwrap();
        assert_eq!(write_dir(&sample_set(), dir.path()).unwrap_err().class(), "OutputNotEmpty");
        let mut set = sample_set();
        set.tenant = None;
        assert_eq!(render(&set).unwrap_err().class(), "IncompleteSet");
        let mut twice = sample_set();
        twice.items.push(twice.items[0].clone());
        assert_eq!(render(&twice).unwrap_err().class(), "DuplicateItem");
    }

    #[test]
    fn odd_ids_get_safe_unique_file_names() {
        assert_eq!(item_path("scopeTag", "0"), "items/scopeTag/0.json");
        let odd = item_path("enrollmentConfiguration", "abc_DefaultLimit/../x");
        assert!(odd.starts_with("items/enrollmentConfiguration/abc-DefaultLimit----x-"), "{odd}");
        assert_ne!(item_path("t", "a_b"), item_path("t", "a.b"));
        assert!(safe_relative_path(&odd).is_ok());
    }

    #[test]
    fn json_keys_are_sorted_at_every_depth() {
        let bytes = stable_json(&json!({"b": {"z": 1, "y": [{"d": 1, "c": 2}]}, "a": 0}), "x").unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let order: Vec<usize> =
            ["\"a\"", "\"b\"", "\"y\"", "\"z\"", "\"c\"", "\"d\""].iter().map(|k| text.find(k).unwrap()).collect();
        assert!(order[0] < order[1] && order[2] < order[3] && order[4] < order[5], "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn unknown_types_are_findings_and_the_rest_loads() {
        let mut set = sample_set();
        set.items[1].item_type = "somethingNew".into();
        let rendered = render(&set).unwrap();
        let tree = FileTree::from_files(rendered.files, &Limits::default()).unwrap();
        let loaded = parse(&tree).unwrap();
        assert_eq!(loaded.set.items.len(), 1);
        assert_eq!(loaded.findings.len(), 1);
        assert_eq!(loaded.findings[0].code, FindingCode::UnknownType);
        assert_eq!(loaded.findings[0].item, "somethingNew/0");
    }
}
