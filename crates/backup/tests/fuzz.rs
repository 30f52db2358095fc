//! A short fuzz run that every `cargo test` executes: random and mutated archives, tars, manifests
//! and file trees never panic the loader, hostile paths never get through, and any backup set
//! written in the native format reads back unchanged. Longer runs: see docs/backup-format.md.

use std::collections::BTreeMap;

use proptest::prelude::*;
use restore_backup::fuzzing::{
    fuzz_limits, intunecd_seed_inputs, load_untrusted, load_untrusted_intunecd, seed_inputs,
};
use restore_backup::{FileTree, Limits, native};
use restore_core::backup::{BackupItem, BackupSet, BackupTenant, NamedRef, References};
use serde_json::Value;

/// A seed input with some bytes overwritten, some cut off, some inserted.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seed_inputs();
    (0..seeds.len(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12)).prop_map(
        move |(which, edits)| {
            let mut bytes = seeds[which].clone();
            for (at, byte, op) in edits {
                if bytes.len() <= 1 {
                    break;
                }
                // Never touch the mode byte, so each mode keeps being exercised.
                let i = 1 + at.index(bytes.len() - 1);
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.truncate(i),
                    _ => bytes.insert(i, byte),
                }
            }
            bytes
        },
    )
}

fn path_component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("C:".to_string()),
        Just("items".to_string()),
        Just("manifest.json".to_string()),
        "[a-zA-Z0-9_\\\\. -]{1,8}",
    ]
}

fn hostile_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(path_component(), 1..5))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn item() -> impl Strategy<Value = BackupItem> {
    let types = ["scopeTag", "deviceConfiguration", "settingsCatalogPolicy", "compliancePolicy"];
    (
        prop::sample::select(types.to_vec()),
        any::<String>(),
        any::<String>(),
        prop::collection::btree_map(any::<String>(), json_value(), 0..4),
        prop::option::of(prop::collection::vec(json_value(), 0..3)),
        prop::collection::btree_map("[a-z]{1,8}", prop::collection::vec(json_value(), 0..3), 0..2),
        prop::collection::vec((any::<String>(), any::<String>()), 0..3),
    )
        .prop_map(|(item_type, id, display_name, resource, assignments, sub_resources, groups)| BackupItem {
            item_type: item_type.to_string(),
            id,
            display_name,
            platform: "any".into(),
            resource: Value::Object(resource.into_iter().collect()),
            assignments,
            sub_resources: sub_resources.into_iter().collect::<BTreeMap<_, _>>(),
            references: References {
                groups: groups.into_iter().map(|(id, display_name)| NamedRef { id, display_name }).collect(),
                ..References::default()
            },
        })
}

fn backup_set() -> impl Strategy<Value = BackupSet> {
    prop::collection::vec(item(), 0..6).prop_map(|items| {
        let mut seen = std::collections::BTreeSet::new();
        let items = items.into_iter().filter(|i| seen.insert((i.item_type.clone(), i.id.clone()))).collect();
        BackupSet {
            tenant: Some(BackupTenant { id: "tid".into(), label: "Contoso".into() }),
            captured_at: Some("2025-01-01T00:00:00Z".into()),
            digest: String::new(),
            items,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_in_any_mode_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = load_untrusted(&bytes);
    }

    #[test]
    fn mutated_valid_backups_never_panic(bytes in mutated_seed()) {
        let _ = load_untrusted(&bytes);
    }

    #[test]
    fn no_accepted_path_is_absolute_or_escapes(paths in prop::collection::vec(hostile_path(), 1..6)) {
        let files = paths.iter().map(|p| (p.as_str(), b"{}".to_vec()));
        if let Ok(tree) = FileTree::from_files(files, &fuzz_limits()) {
            for path in tree.paths() {
                prop_assert!(!path.starts_with('/') && !path.contains('\\'), "{}", path);
                prop_assert!(path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "{}", path);
            }
        }
    }

    #[test]
    fn any_set_written_natively_reads_back_unchanged(set in backup_set()) {
        let archive = native::to_tar_gz(&set).unwrap();
        let loaded = native::read_tar_gz(&archive, None, &Limits::default()).unwrap();
        let mut expected = set.items.clone();
        expected.sort_by(|a, b| (&a.item_type, &a.id).cmp(&(&b.item_type, &b.id)));
        prop_assert_eq!(&loaded.set.items, &expected);
        prop_assert_eq!(&loaded.set.digest, &native::digest(&set).unwrap());
        prop_assert_eq!(native::to_tar_gz(&loaded.set).unwrap(), archive);
    }
}

#[test]
fn the_seed_inputs_load_cleanly() {
    for (mode, seed) in seed_inputs().iter().enumerate() {
        let loaded = load_untrusted(seed).unwrap_or_else(|e| panic!("mode {mode}: {e}"));
        assert_eq!(loaded.set.items.len(), 2, "mode {mode}");
    }
}

/// The cargo-fuzz seeds under `fuzz/seeds/load_backup/` are the current seed inputs (rewritten
/// when `RESTORE_BACKUP_WRITE_CORPUS` is set).
#[test]
fn the_committed_fuzz_seeds_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/load_backup");
    let seeds = seed_inputs();
    if std::env::var_os("RESTORE_BACKUP_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    for (i, seed) in seeds.iter().enumerate() {
        let on_disk = std::fs::read(dir.join(format!("seed-{i}"))).unwrap_or_default();
        assert!(&on_disk == seed, "fuzz seed {i} is stale; run with RESTORE_BACKUP_WRITE_CORPUS=1");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Mutated IntuneCD YAML and JSON object files load or fail with a typed error.
    #[test]
    fn mutated_intunecd_files_never_panic(which in 0usize..4, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8)) {
        let mut bytes = intunecd_seed_inputs()[which].clone();
        for (at, byte) in edits {
            let i = 1 + at.index(bytes.len() - 1);
            bytes[i] = byte;
        }
        let _ = load_untrusted_intunecd(&bytes);
    }
}

#[test]
fn the_intunecd_seed_inputs_load_cleanly() {
    for (mode, seed) in intunecd_seed_inputs().iter().enumerate() {
        let loaded = load_untrusted_intunecd(seed).unwrap_or_else(|e| panic!("mode {mode}: {e}"));
        assert!(!loaded.set.items.is_empty(), "mode {mode}");
    }
}

/// The cargo-fuzz seeds under `fuzz/seeds/load_intunecd/` are the current IntuneCD seed inputs.
#[test]
fn the_committed_intunecd_fuzz_seeds_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/load_intunecd");
    let seeds = intunecd_seed_inputs();
    if std::env::var_os("RESTORE_BACKUP_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    for (i, seed) in seeds.iter().enumerate() {
        let on_disk = std::fs::read(dir.join(format!("seed-{i}"))).unwrap_or_default();
        assert!(&on_disk == seed, "IntuneCD fuzz seed {i} is stale; run with RESTORE_BACKUP_WRITE_CORPUS=1");
    }
}
