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
/// `2` a `manifest.json` next to the files of a small valid backup; `3` a raw tar read as IntuneCD;
/// `4` ConfigMap `data` (`key NUL value NUL …`, keys with `__` for `/`) read as native.
pub fn load_untrusted(input: &[u8]) -> Result<Loaded, BackupError> {
    let limits = fuzz_limits();
    let Some((&mode, rest)) = input.split_first() else {
        return Err(BackupError::InvalidSource { message: "empty input".into() });
    };
    match mode % 5 {
        0 => load_tree(&FileTree::from_tar_gz(rest, "fuzz", &limits)?, BackupFormat::Native),
        1 => load_tree(&FileTree::from_tar_gz(&gzip(rest)?, "fuzz", &limits)?, BackupFormat::Native),
        2 => {
            let mut files = seed_files();
            files.retain(|(path, _)| path != native::MANIFEST_FILE);
            files.push((native::MANIFEST_FILE.to_string(), rest.to_vec()));
            load_tree(&FileTree::from_files(files, &limits)?, BackupFormat::Native)
        }
        3 => load_tree(&FileTree::from_tar_gz(&gzip(rest)?, "fuzz", &limits)?, BackupFormat::IntuneCd),
        _ => {
            let mut parts = rest.split(|&b| b == 0);
            let mut files = Vec::new();
            while let (Some(key), Some(value)) = (parts.next(), parts.next()) {
                let key = String::from_utf8_lossy(key);
                files.push((crate::source::path_of_config_map_key(&key), value.to_vec()));
            }
            load_tree(&FileTree::from_files(files, &limits)?, BackupFormat::Native)
        }
    }
}

/// Reads `input` as one IntuneCD object file, next to a script body and a mobileconfig payload.
/// The first byte picks the file: even a YAML file (`Filters/f.yaml`), odd a JSON file of another
/// type (`Device Configurations/d.json`), so both parsers and the field mapping are reached.
pub fn load_untrusted_intunecd(input: &[u8]) -> Result<Loaded, BackupError> {
    let limits = fuzz_limits();
    let Some((&mode, rest)) = input.split_first() else {
        return Err(BackupError::InvalidSource { message: "empty input".into() });
    };
    let path = match mode % 4 {
        0 => "Filters/f.yaml",
        1 => "Device Configurations/d.json",
        2 => "Scripts/Powershell/s.yaml",
        _ => "Settings Catalog/p.json",
    };
    let files = vec![
        (path.to_string(), rest.to_vec()),
        ("Scripts/Powershell/Script Data/s.ps1".to_string(), b"Write-Output 1".to_vec()),
        ("Device Configurations/mobileconfig/p.mobileconfig".to_string(), b"<plist/>".to_vec()),
    ];
    load_tree(&FileTree::from_files(files, &limits)?, BackupFormat::IntuneCd)
}

/// Seed inputs for [`load_untrusted_intunecd`].
pub fn intunecd_seed_inputs() -> Vec<Vec<u8>> {
    let yaml = b"displayName: Corp\nplatform: windows10AndLater\nrule: (device.model -eq \"x\")\nroleScopeTagIds:\n  - Default\nassignments:\n  - target: &t {groupName: All, deviceAndAppManagementAssignmentFilterId: f}\n  - target: *t\n";
    let json = br##"{"@odata.type": "#microsoft.graph.macOSCustomConfiguration", "displayName": "Wifi", "payloadFileName": "p.mobileconfig", "omaSettings": [{"isEncrypted": true, "value": "x"}], "assignments": [{"target": {"groupName": "All staff"}}]}"##;
    let script = b"displayName: Wallpaper\nfileName: s.ps1\nrunAsAccount: system\n";
    let catalog = br#"{"name": "Edge", "platforms": "windows10", "technologies": "mdm", "settings": [{"settingInstance": {"settingDefinitionId": "a", "children": [[[]]]}}]}"#;
    vec![
        [&[0u8][..], yaml].concat(),
        [&[1u8][..], json].concat(),
        [&[2u8][..], script].concat(),
        [&[3u8][..], catalog].concat(),
    ]
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
    let mut config_map = vec![4u8];
    for (path, bytes) in &files {
        config_map.extend_from_slice(crate::source::config_map_key(path).as_bytes());
        config_map.push(0);
        config_map.extend_from_slice(bytes);
        config_map.push(0);
    }
    vec![[&[0u8][..], &archive].concat(), [&[1u8][..], &raw_tar].concat(), [&[2u8][..], &manifest].concat(), config_map]
}
