//! One entry point that reads arbitrary bytes as a backup, shared by the cargo-fuzz target and the
//! proptest run: whatever the input, loading returns a backup or a typed error, never a panic.

use flate2::Compression;
use flate2::write::GzEncoder;
use restore_core::api::BackupFormat;
use std::io::{Read, Write};

use crate::error::BackupError;
use crate::limits::Limits;
use crate::source::load_tree;
use crate::tree::FileTree;
use crate::{Loaded, native};

/// Limits small enough that a fuzzer's inputs reach them, large enough to load real backups.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_archive_bytes: 1 << 20,
        max_unpacked_bytes: 4 << 20,
        max_files: 256,
        max_item_bytes: 1 << 20,
        max_decompression_ratio: 50,
        ratio_grace_bytes: 64 << 10,
        max_items: 256,
        max_depth: 64,
        max_values_per_file: 50_000,
        max_values_total: 200_000,
        load_timeout_seconds: 5,
        max_concurrent_loads: 1,
    }
}

/// Reads `input` as a backup. The first byte picks how the rest is read:
/// `0` a `.tar.gz`; `1` a raw tar (gzipped here, so mutations reach the tar parser);
/// `2` a `manifest.json` next to the files of a small valid backup; `3` a raw tar read as IntuneCD.
pub fn load_untrusted(input: &[u8]) -> Result<Loaded, BackupError> {
    let limits = fuzz_limits();
    let Some((&mode, rest)) = input.split_first() else {
        return Err(BackupError::InvalidSource { message: "empty input".into() });
    };
    match mode % 4 {
        0 => load_tree(&FileTree::from_tar_gz(rest, "fuzz", &limits)?, BackupFormat::Native),
        1 => load_tree(&FileTree::from_tar_gz(&gzip(rest)?, "fuzz", &limits)?, BackupFormat::Native),
        2 => {
            let mut files = seed_files();
            files.retain(|(path, _)| path != native::MANIFEST_FILE);
            files.push((native::MANIFEST_FILE.to_string(), rest.to_vec()));
            load_tree(&FileTree::from_files(files, &limits)?, BackupFormat::Native)
        }
        _ => load_tree(&FileTree::from_tar_gz(&gzip(rest)?, "fuzz", &limits)?, BackupFormat::IntuneCd),
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, BackupError> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).map_err(|e| BackupError::io("fuzz input", e))?;
    encoder.finish().map_err(|e| BackupError::io("fuzz input", e))
}

/// The files of a small valid native backup (two items), a starting point for mutation and the
/// base of the malformed corpus.
pub fn seed_files() -> Vec<(String, Vec<u8>)> {
    use restore_core::backup::{BackupItem, BackupSet, BackupTenant, References};
    let item = |item_type: &str, id: &str, name: &str| BackupItem {
        item_type: item_type.into(),
        id: id.into(),
        display_name: name.into(),
        platform: "any".into(),
        resource: serde_json::json!({ "id": id, "displayName": name }),
        assignments: None,
        sub_resources: Default::default(),
        references: References::default(),
    };
    let set = BackupSet {
        tenant: Some(BackupTenant { id: "tid".into(), label: "Fuzz".into() }),
        captured_at: Some("2025-01-01T00:00:00Z".into()),
        digest: String::new(),
        items: vec![item("scopeTag", "1", "Helpdesk"), item("assignmentFilter", "f1", "Corp")],
    };
    let Ok(mut rendered) = native::render(&set) else {
        return Vec::new();
    };
    // A fixed tool version keeps committed seeds and corpus files valid across releases.
    rendered.manifest.tool.version = "fixture".into();
    let manifest = serde_json::to_value(&rendered.manifest)
        .ok()
        .and_then(|m| native::stable_json(&m, native::MANIFEST_FILE).ok())
        .unwrap_or_default();
    for (path, bytes) in &mut rendered.files {
        if path == native::MANIFEST_FILE {
            *bytes = manifest.clone();
        }
    }
    rendered.files
}

/// Seed inputs for each mode, for a fuzzer's initial corpus.
pub fn seed_inputs() -> Vec<Vec<u8>> {
    let files = seed_files();
    let archive = native::tar_gz_of(&files).unwrap_or_default();
    let manifest = files.iter().find(|(p, _)| p == native::MANIFEST_FILE).map(|(_, b)| b.clone()).unwrap_or_default();
    let mut raw_tar = Vec::new();
    // The archive was just written here; a read error would only leave the tar seed empty.
    let _ = flate2::read::GzDecoder::new(archive.as_slice()).read_to_end(&mut raw_tar);
    vec![[&[0u8][..], &archive].concat(), [&[1u8][..], &raw_tar].concat(), [&[2u8][..], &manifest].concat()]
}
